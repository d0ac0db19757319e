"""The main job on this machine: a host agent, a cold run that seeds a canonical, two quick runs.

Everything is real — the Docker engine in swarm mode, the host agent on a Unix socket, git
checkouts, snapshots of real volumes — except that the swarm deployer stands in for abra and the
probe uses a loopback port instead of a proxy. It uses the test recipe ``ccci-web`` (two releases)
with two pull-request heads: one harmless, one that ships an image that cannot start.

Run it with ``make demo`` (as root: the agent archives volumes). It leaves nothing behind.
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
sys.path.insert(0, str(ROOT))  # the demo borrows the test suite's image and recipe builders

from tests.deploy_fixtures import RECIPES, build_recipe_repo, unused_port  # noqa: E402 - after the path insert
from tests.gitrepo import commit, git  # noqa: E402 - after the path insert
from tests.images import ensure_busybox_image  # noqa: E402 - after the path insert

RECIPE = "ccci-web"
DOMAIN = f"demo{uuid.uuid4().hex[:4]}.ccci.example"
CC_CI = [sys.executable, "-m", "ccci_core.cli"]
RECIPE_TEST = """import os
import urllib.request


def test_serves_a_released_version():
    with urllib.request.urlopen(os.environ["CCCI_APP_URL"] + "/version", timeout=5) as answer:
        assert answer.read().decode().strip() in {"1.0", "1.1"}
"""


def say(text: str) -> None:
    """Print a banner line."""
    print(f"\n\033[1m=== {text}\033[0m", flush=True)


def docker(*args: str, stdin: bytes | None = None) -> str:
    """Run docker and return its stdout."""
    done = subprocess.run(["docker", *args], input=stdin, capture_output=True, check=True)
    return done.stdout.decode()


def remove_stack(stack: str) -> None:
    """Remove ``stack``, wait for its containers to go, then its volumes, secrets and configs."""
    subprocess.run(["docker", "stack", "rm", stack], capture_output=True, check=False)
    for _ in range(120):
        if not docker("ps", "-aq", "--filter", f"label=com.docker.stack.namespace={stack}"):
            break
        time.sleep(0.5)
    for kind in ("volume", "secret", "config"):
        names = docker(kind, "ls", "-q", "--filter", f"name={stack}_").split()
        if names:
            subprocess.run(["docker", kind, "rm", *names], capture_output=True, check=False)


def pull_request(repo: Path, number: int, old: str, new: str) -> None:
    """Make ``refs/pull/<number>/head``: the latest release with one compose.yml edit."""
    git(repo, "checkout", "-q", "-b", f"pr-{number}", "1.1.0+1.1")
    compose = (repo / "compose.yml").read_text().replace(old, new)
    sha = commit(repo, {"compose.yml": compose}, f"PR {number}")
    git(repo, "update-ref", f"refs/pull/{number}/head", sha)
    git(repo, "checkout", "-q", "main")
    git(repo, "branch", "-q", "-D", f"pr-{number}")


def cc_ci(env: dict[str, str], *args: str) -> int:
    """Run ``cc-ci`` with ``env``, its output going straight to the terminal."""
    print(f"$ cc-ci {' '.join(args)}", flush=True)
    return subprocess.run([*CC_CI, *args], env=env, check=False).returncode


def main() -> int:
    """Run the demo and return 0 when every run ended as expected."""
    if docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip() != "active":
        print("the engine is not in swarm mode: docker swarm init --advertise-addr 127.0.0.1")
        return 2
    work = Path(tempfile.mkdtemp(prefix="ccci-demo-"))
    tag = uuid.uuid4().hex[:8]
    web, bad = f"ccci-demo/web:{tag}", f"ccci-demo/bad:{tag}"
    agent = None
    try:
        say("images, built locally from Debian's busybox-static (no registry)")
        base = ensure_busybox_image()
        docker("build", "-q", "-t", web, "-", stdin=f"FROM {base}\n".encode())
        docker("build", "-q", "-t", bad, "-", stdin=f"FROM {base}\nRUN rm /bin/busybox\n".encode())

        say(f"recipe {RECIPE}: releases 1.0.0+1.0 and 1.1.0+1.1, PR #1 harmless, PR #2 bad image")
        repo = work / "recipes" / RECIPE
        build_recipe_repo(RECIPES / RECIPE, repo)
        pull_request(repo, 1, "APP_VERSION=1.1", "APP_VERSION=1.1\n      - PR=1")
        pull_request(repo, 2, "${WEB_IMAGE}", bad)
        port = unused_port()
        tests = work / "tests" / RECIPE
        tests.mkdir(parents=True)
        (tests / "recipe_meta.py").write_text(
            'WARM_CANONICAL = True\nHEALTH_PATH = "/version"\nDEPLOY_TIMEOUT = 60\n'
            'MARKER_PATH = "/data/ccci-marker"\n'
            f'EXTRA_ENV = {{"WEB_IMAGE": "{web}", "HTTP_PORT": "{port}"}}\n'
        )
        (tests / "test_web.py").write_text(RECIPE_TEST)

        env = {
            **os.environ,
            "CCCI_DOMAIN": DOMAIN,
            "CCCI_STATE_DIR": str(work / "state"),
            "CCCI_AGENT_SOCKET": str(work / "agent.sock"),
            "CCCI_SOCKET_GROUP": "root",
            "CCCI_DEPLOYER": "swarm",
            "CCCI_HEALTH_PROBE": "loopback",
            "CCCI_RECIPES_DIR": str(work / "recipes"),
            "CCCI_TESTS_DIR": str(work / "tests"),
            "CCCI_RUNS_DIR": str(work / "runs"),
            "CCCI_APPS_DIR": str(work / "apps"),
            "RECIPE": RECIPE,
        }
        say("the host agent on its Unix socket")
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        agent = subprocess.Popen([*CC_CI, "agent", "serve"], env=env, **quiet)
        for _ in range(100):
            if subprocess.run([*CC_CI, "status"], env=env, capture_output=True).returncode == 0:
                break
            time.sleep(0.1)

        expected = {"cold on latest": 0, "quick, PR #1": 0, "quick, PR #2": 1}
        got = {}
        say("!testme on latest: a full cold run; green, so it seeds the canonical")
        got["cold on latest"] = cc_ci(env, "run")
        cc_ci(env, "status")
        say("!testme --quick on PR #1: reattach the canonical, upgrade in place, restore")
        got["quick, PR #1"] = cc_ci(env, "run", "--quick", "--ref", "refs/pull/1/head")
        say("!testme --quick on PR #2 (an image that cannot start): FAIL, known-good restored")
        got["quick, PR #2"] = cc_ci(env, "run", "--quick", "--ref", "refs/pull/2/head")
        cc_ci(env, "status")

        say("what happened")
        for name, code in got.items():
            verdict = (
                "as expected" if code == expected[name] else f"UNEXPECTED (want {expected[name]})"
            )
            print(f"  {name:<15} exit {code}  {verdict}")
        return 0 if got == expected else 1
    finally:
        say("cleaning up: the agent, the canonical's stack, volumes and secrets, the images")
        if agent is not None:
            agent.terminate()
            agent.wait()
        stack = f"warm-{RECIPE}_{DOMAIN.replace('.', '_')}"
        remove_stack(stack)
        subprocess.run(["docker", "image", "rm", web, bad], capture_output=True, check=False)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
