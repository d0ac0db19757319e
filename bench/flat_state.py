"""Show that state stays flat: many quick runs (PASS and FAIL alternating) on one canonical.

After each run, through the real ``cc-ci run --quick`` (host agent on its socket, swarm deployer,
real volumes and snapshots), it counts what a run could leak: the state directory's bytes and
files, snapshot generations, the canonical's Docker volumes, secrets and configs, the images of
the test recipe, and what a restore left beside the volumes. Every figure after the last run must
equal its value after the first. The canonical is seeded by one cold run on latest first.

Runs: ``BENCH_FLAT_RUNS`` (default 50; ``BENCH_QUICK=1``: 2, one of each). The test recipe is
``ccci-web`` with two pull-request heads: PR #1 harmless (PASS), PR #2 answers a version its
recipe test refuses (FAIL: the known-good data is restored). Needs root and the engine in swarm
mode; leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the bench borrows the demo's and the test suite's builders

from bench.results import Figure, quick, record  # noqa: E402 - after the path insert
from demo.warm import RECIPE_TEST, docker, pull_request, remove_stack  # noqa: E402 - after the path insert
from tests.deploy_fixtures import RECIPES, build_recipe_repo, unused_port  # noqa: E402 - after the path insert
from tests.images import ensure_busybox_image  # noqa: E402 - after the path insert

RECIPE = "ccci-web"
CC_CI = [sys.executable, "-m", "ccci_core.cli"]
COUNTED = (
    "state bytes",
    "state files",
    "snapshot generations",
    "volumes",
    "secrets",
    "configs",
    "images",
    "restore leftovers",
)


def tree(root: Path) -> tuple[int, int]:
    """Return the bytes and the number of files under ``root`` (symlinks counted, not followed)."""
    size = files = 0
    for folder, _, names in os.walk(root):
        for name in names:
            size += os.lstat(Path(folder) / name).st_size
            files += 1
    return size, files


def counts(state: Path, stack: str, image_ref: str) -> dict[str, int]:
    """Return every figure that must stay flat."""
    size, files = tree(state)
    volumes = docker("volume", "ls", "-q", "--filter", f"name={stack}_").split()
    leftovers = 0
    for name in volumes:
        mountpoint = Path(docker("volume", "inspect", "-f", "{{.Mountpoint}}", name).strip())
        leftovers += sum(1 for p in mountpoint.parent.iterdir() if p != mountpoint)
    return {
        "state bytes": size,
        "state files": files,
        "snapshot generations": len(list((state / RECIPE / "snapshots").iterdir())),
        "volumes": len(volumes),
        "secrets": len(docker("secret", "ls", "-q", "--filter", f"name={stack}_").split()),
        "configs": len(docker("config", "ls", "-q", "--filter", f"name={stack}_").split()),
        "images": len(docker("images", "-q", "--filter", f"reference={image_ref}").split()),
        "restore leftovers": leftovers,
    }


def settle(state: Path, stack: str, image_ref: str) -> dict[str, int]:
    """Return the counts once the agent's background deletions are done (10 s at most)."""
    for _ in range(100):
        now = counts(state, stack, image_ref)
        if now["restore leftovers"] == 0 and not any(state.rglob(".tmp-*")):
            return now
        time.sleep(0.1)
    return now


def main() -> int:
    """Seed a canonical, run the quick runs, print the counts after each and record the figures."""
    runs = 2 if quick() else int(os.environ.get("BENCH_FLAT_RUNS", "50"))
    work = Path(tempfile.mkdtemp(prefix="ccci-flat-"))
    domain = f"flat{uuid.uuid4().hex[:4]}.ccci.example"
    stack = f"warm-{RECIPE}_{domain.replace('.', '_')}"
    tag = uuid.uuid4().hex[:8]
    image_ref = f"ccci-flat/web:{tag}"
    agent = None
    try:
        docker(
            "build", "-q", "-t", image_ref, "-", stdin=f"FROM {ensure_busybox_image()}\n".encode()
        )
        repo = work / "recipes" / RECIPE
        build_recipe_repo(RECIPES / RECIPE, repo)
        pull_request(repo, 1, "APP_VERSION=1.1", "APP_VERSION=1.1\n      - PR=1")
        pull_request(repo, 2, "APP_VERSION=1.1", "APP_VERSION=9.9")
        tests = work / "tests" / RECIPE
        tests.mkdir(parents=True)
        (tests / "recipe_meta.py").write_text(
            'WARM_CANONICAL = True\nHEALTH_PATH = "/version"\nDEPLOY_TIMEOUT = 60\n'
            'MARKER_PATH = "/data/ccci-marker"\n'
            f'EXTRA_ENV = {{"WEB_IMAGE": "{image_ref}", "HTTP_PORT": "{unused_port()}"}}\n'
        )
        (tests / "test_web.py").write_text(RECIPE_TEST)
        state = work / "state"
        env = {
            **os.environ,
            "CCCI_DOMAIN": domain,
            "CCCI_STATE_DIR": str(state),
            "CCCI_AGENT_SOCKET": str(work / "agent.sock"),
            "CCCI_SOCKET_GROUP": "root",
            "CCCI_DEPLOYER": "swarm",
            "CCCI_HEALTH_PROBE": "loopback",
            "CCCI_RECIPES_DIR": str(work / "recipes"),
            "CCCI_TESTS_DIR": str(tests.parent),
            "CCCI_RUNS_DIR": str(work / "runs"),
            "CCCI_APPS_DIR": str(work / "apps"),
            "RECIPE": RECIPE,
        }
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        agent = subprocess.Popen([*CC_CI, "agent", "serve"], env=env, **quiet)
        for _ in range(100):
            if subprocess.run([*CC_CI, "status"], env=env, capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        if subprocess.run([*CC_CI, "run"], env=env, capture_output=True).returncode != 0:
            raise SystemExit("flat_state: the seeding cold run failed")

        rows: list[dict[str, int]] = []
        unexpected = []
        print(f"flat state: {runs} quick runs on {stack}")
        print(f"{'run':>4} {'verdict':8}" + "".join(f"{c:>{len(c) + 2}}" for c in COUNTED))
        for n in range(1, runs + 1):
            ref, want = ("refs/pull/1/head", 0) if n % 2 else ("refs/pull/2/head", 1)
            argv = [*CC_CI, "run", "--quick", "--ref", ref]
            code = subprocess.run(argv, env=env, capture_output=True).returncode
            if code != want:
                unexpected.append(n)
            rows.append(settle(state, stack, image_ref))
            verdict = {0: "PASS", 1: "FAIL"}.get(code, f"exit {code}")
            print(f"{n:>4} {verdict:8}" + "".join(f"{rows[-1][c]:>{len(c) + 2}}" for c in COUNTED))
    finally:
        if agent is not None:
            agent.terminate()
            agent.wait()
        remove_stack(stack)
        subprocess.run(["docker", "image", "rm", image_ref], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)

    first, last = rows[0], rows[-1]
    figures = [
        Figure(
            f"after {runs} quick runs: {what}",
            f"= after run 1 ({first[what]})",
            str(last[what]),
            last[what] == first[what],
        )
        for what in COUNTED
    ]
    figures.append(
        Figure("quick runs with the expected verdict", f"{runs}", str(runs - len(unexpected)),
               not unexpected)
    )  # fmt: skip
    record("flat state", figures, {"runs": rows, "unexpected_verdicts": unexpected})
    return 0 if not unexpected else 1


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("bench: run as root (the host agent archives volumes)")
    sys.exit(main())
