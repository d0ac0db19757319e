"""Quick vs cold on a real PostgreSQL first boot, through the real ``cc-ci run``.

The bench recipe ``bench/recipes/ccci-pg`` (two releases, a release note, a PR head) runs the
PostgreSQL image of ``bench/pg_image.py`` (Debian packages, no registry). Its first boot runs
initdb and loads a table of ``SEED_ROWS`` rows (~1 kB each), then waits ``INIT_SECONDS`` (a
stand-in for an app such as keycloak that initialises itself for a minute); its health check is
``pg_isready`` plus a query; 1.1 migrates the schema at start. Two variants: ``300 MB`` of data,
and ``300 MB + 60 s`` of first-boot initialisation (``BENCH_QUICK=1``: one tiny variant).

For each variant: a cold run on latest seeds the canonical (not measured), then a cold run and a
quick run of the same PR head, with the host agent on its socket, the swarm deployer and real
volumes. Printed: each lane's wall time, their ratio, the time of every step of both runs, and
the floor: the quick run's upgrade and tests, which the cold run does too, over the cold run.
Needs root and the engine in swarm mode; leaves nothing behind but the cached image.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the bench borrows the demo's and the test suite's builders

from bench import pg_image  # noqa: E402 - after the path insert
from bench.results import Figure, quick, record  # noqa: E402 - after the path insert
from demo.warm import remove_stack  # noqa: E402 - after the path insert
from tests.deploy_fixtures import build_recipe_repo  # noqa: E402 - after the path insert
from tests.gitrepo import commit, git  # noqa: E402 - after the path insert

SOURCE = ROOT / "bench" / "recipes" / "ccci-pg"
CC_CI = [sys.executable, "-m", "ccci_core.cli"]
RECIPE_TEST = """import os
import subprocess


def _psql(query):
    stack = os.environ["CCCI_APP_STACK"]
    ids = subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=com.docker.swarm.service.name={stack}_db"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    assert ids, "no running db container"
    argv = ["psql", "-h", "/run/postgresql", "-U", "postgres", "-tAc", query]
    done = subprocess.run(["docker", "exec", ids[0], *argv], capture_output=True, text=True)
    assert 0 == done.returncode, done.stderr
    return done.stdout.strip()


def test_the_seeded_rows_are_there():
    assert int(_psql("select count(*) from items")) > 0


def test_the_schema_is_migrated():
    assert "1.1" == _psql("select version from schema_version")
"""
# (label, SEED_ROWS, INIT_SECONDS, goal: quick <= goal x cold)
VARIANTS = [("300 MB", 290_000, 0, 0.25), ("300 MB + 60 s init", 290_000, 60, 0.10)]
QUICK_VARIANTS = [("tiny", 2_000, 0, 0.25)]
SHARED_STEPS = ("upgrade", "recipe tests")  # both lanes upgrade to the head in place, then test


def pull_request(repo: Path, latest: str) -> None:
    """Make ``refs/pull/1/head``: ``latest`` with one harmless compose.yml edit."""
    git(repo, "checkout", "-q", "-b", "pr-1", latest)
    compose = (
        (repo / "compose.yml")
        .read_text()
        .replace("APP_VERSION=1.1", "APP_VERSION=1.1\n      - PR=1")
    )
    git(repo, "update-ref", "refs/pull/1/head", commit(repo, {"compose.yml": compose}, "PR 1"))
    git(repo, "checkout", "-q", "main")
    git(repo, "branch", "-q", "-D", "pr-1")


def run(env: dict[str, str], work: Path, *args: str) -> tuple[float, dict[str, Any]]:
    """Run ``cc-ci run ARGS``; return its wall time and its result file."""
    result = work / f"result-{uuid.uuid4().hex[:6]}.json"
    start = time.perf_counter()
    done = subprocess.run(
        [*CC_CI, "run", *args], env={**env, "CCCI_RESULT_FILE": str(result)},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - start
    if done.returncode != 0:
        print(done.stdout[-4000:], done.stderr[-2000:], sep="\n")
        raise SystemExit(f"quick_vs_cold: cc-ci run {' '.join(args)} exited {done.returncode}")
    return wall, json.loads(result.read_text())


def variant(label: str, rows: int, init: int, image: str, work: Path) -> dict[str, Any]:
    """Seed a canonical of one variant, then time a cold and a quick run of its PR head."""
    recipe = f"ccci-pg-{uuid.uuid4().hex[:4]}"
    domain = f"qvc{uuid.uuid4().hex[:4]}.ccci.example"
    base = work / label.replace(" ", "-").replace("+", "")
    repo = base / "recipes" / recipe
    pull_request(repo, build_recipe_repo(SOURCE, repo)[-1])
    tests = base / "tests" / recipe
    tests.mkdir(parents=True)
    extra = {"PG_IMAGE": image, "SEED_ROWS": str(rows), "INIT_SECONDS": str(init)}
    (tests / "recipe_meta.py").write_text(
        "WARM_CANONICAL = True\nHEALTH_SERVICE = 'db'\nDEPLOY_TIMEOUT = 900\n"
        f"MARKER_PATH = '/var/lib/postgresql/data/ccci-marker'\nEXTRA_ENV = {extra!r}\n"
    )
    (tests / "test_db.py").write_text(RECIPE_TEST)
    env = {
        **os.environ,
        "CCCI_DOMAIN": domain,
        "CCCI_STATE_DIR": str(base / "state"),
        "CCCI_AGENT_SOCKET": str(base / "agent.sock"),
        "CCCI_SOCKET_GROUP": "root",
        "CCCI_DEPLOYER": "swarm",
        "CCCI_HEALTH_PROBE": "exec",
        "CCCI_RECIPES_DIR": str(base / "recipes"),
        "CCCI_TESTS_DIR": str(tests.parent),
        "CCCI_RUNS_DIR": str(base / "runs"),
        "CCCI_APPS_DIR": str(base / "apps"),
        "RECIPE": recipe,
    }
    stack = f"warm-{recipe}_{domain.replace('.', '_')}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    agent = subprocess.Popen([*CC_CI, "agent", "serve"], env=env, **quiet)
    try:
        for _ in range(100):
            if subprocess.run([*CC_CI, "status"], env=env, capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        seed, _ = run(env, base)
        cold, cold_result = run(env, base, "--ref", "refs/pull/1/head")
        fast, quick_result = run(env, base, "--quick", "--ref", "refs/pull/1/head")
        data = sum(
            p.stat().st_size for p in (base / "state" / recipe / "snapshot").resolve().glob("*.tar")
        )
    finally:
        agent.terminate()
        agent.wait()
        remove_stack(stack)
    steps = {
        lane: {s["name"]: s["seconds"] for s in result["steps"]}
        for lane, result in (("cold", cold_result), ("quick", quick_result))
    }
    return {"seed": seed, "cold": cold, "quick": fast, "steps": steps, "snapshot_bytes": data}


def main() -> int:
    """Run every variant, print the lanes and their steps, record the figures."""
    image = pg_image.ensure()
    work = Path(tempfile.mkdtemp(prefix="ccci-qvc-", dir="/var/tmp"))
    figures, raw = [], {}
    try:
        for label, rows, init, goal in QUICK_VARIANTS if quick() else VARIANTS:
            got = variant(label, rows, init, image, work)
            raw[label] = got
            ratio = got["quick"] / got["cold"]
            mb = got["snapshot_bytes"] / 1e6
            print(
                f"\nquick vs cold, {label} ({mb:.0f} MB snapshot; seeding cold {got['seed']:.0f} s)"
            )
            print(
                f"  cold  {got['cold']:7.1f} s\n  quick {got['quick']:7.1f} s  ({ratio:.2f}x cold)"
            )
            for lane, steps in got["steps"].items():
                print(f"  {lane:5} " + ", ".join(f"{k} {v:.1f}s" for k, v in steps.items()))
            # What no quick lane can skip: the in-place upgrade to the head and the recipe's
            # tests, which the cold lane runs too (its upgrade step also recreates the app).
            shared = sum(got["steps"]["quick"].get(step, 0.0) for step in SHARED_STEPS)
            floor = shared / got["cold"]
            print(
                f"  floor {shared:7.1f} s  ({floor:.2f}x cold): the quick run's "
                f"{' and '.join(SHARED_STEPS)}, which the cold run does as well"
            )
            figures.append(
                Figure(f"quick / cold, {label}", f"<= {goal}x", f"{ratio:.2f}x", ratio <= goal)
            )
            figures.append(Figure(f"floor / cold, {label}", "-", f"{floor:.2f}x", None))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    record("quick vs cold", figures, raw)
    return 0


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("bench: run as root (the host agent archives volumes)")
    sys.exit(main())
