"""Fixtures of the plugin's tests: runs on the engine, and runs on fakes without it.

End to end, everything runs for real: the swarm deployer on the engine, the host agent in a
subprocess on a Unix socket, git checkouts of a recipe repository with release tags and
pull-request head refs. ``make_run`` builds a run whose agent and apps are the in-memory fakes of
``tests.plugin.fakes``, over a real (tiny) recipe repository and the real catalog and report.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest

from ccci_core import recipe_meta
from ccci_core.agent_client import AgentClient
from ccci_core.catalog import Catalog
from ccci_core.deploy.stack import live_stacks
from ccci_core.deploy.swarm import SwarmDeployer
from ccci_core.names import canonical_app, new_run_hex
from ccci_core.recipe_meta import RecipeMeta
from ccci_plugin.agent import SocketAgent
from ccci_plugin.apps import Apps
from ccci_plugin.cancel import Cancellation
from ccci_plugin.context import Run
from ccci_plugin.keycloak import Realms
from ccci_plugin.report import RunReport
from ccci_plugin.request import RunRequest
from ccci_plugin.run import perform
from tests.agent_server import running_agent
from tests.deploy_fixtures import (
    BASE_DOMAIN,
    RECIPES,
    SUFFIX,
    _reap,
    build_recipe_repo,
    stacks,
    unused_port,
)
from tests.gitrepo import commit, git, init
from tests.plugin.fakes import FakeAgent, FakeApps, YamlLoader

RECIPE = "ccci-web"
RECIPE_TEST = '''"""The ccci-web recipe's own test: the app serves a known version."""

import os
import urllib.request


def test_serves_a_released_version():
    """GET /version answers with a version this recipe released."""
    with urllib.request.urlopen(os.environ["CCCI_APP_URL"] + "/version", timeout=5) as answer:
        assert answer.read().decode().strip() in {"1.0", "1.1"}
'''


def _pr_head(repo: Path, number: int, edits: dict[str, Callable[[str], str]]) -> str:
    """Add ``refs/pull/<number>/head``: the latest release with some files edited."""
    git(repo, "checkout", "-q", "-b", f"pr-{number}", "1.1.0+1.1")
    files = {name: edit((repo / name).read_text()) for name, edit in edits.items()}
    sha = commit(repo, files, f"PR {number}")
    git(repo, "update-ref", f"refs/pull/{number}/head", sha)
    git(repo, "checkout", "-q", "main")
    git(repo, "branch", "-q", "-D", f"pr-{number}")
    return sha


def _entrypoint(version: str, script: str) -> dict[str, Callable[[str], str]]:
    """Edits giving a head its own entrypoint (a new config version: configs are immutable)."""
    return {
        "entrypoint.sh": lambda text: text.replace("httpd -f", f"{script}\nhttpd -f"),
        "abra.sh": lambda text: text.replace(
            "ENTRYPOINT_VERSION=v1", f"ENTRYPOINT_VERSION={version}"
        ),
    }


SHOW_SCHEMA = "[ -f /data/schema ] && cp /data/schema /www/schema"
KNOWN_GOOD_TEST = '''"""A test that sees known-good data: no schema migration in it."""

import os
import urllib.error
import urllib.request


def test_data_is_known_good():
    """The app's data carries no schema a later version wrote."""
    try:
        urllib.request.urlopen(os.environ["CCCI_APP_URL"] + "/schema", timeout=5)
    except urllib.error.HTTPError as answer:
        assert answer.code == 404
    else:
        raise AssertionError("the data holds a schema another version migrated to")
'''


@dataclass(frozen=True)
class Heads:
    """The pull-request heads of the test recipe."""

    crashing: str = "refs/pull/1/head"  # the app exits at once, in a loop
    wrong_version: str = "refs/pull/2/head"  # healthy, but the recipe's test fails
    bad_image: str = "refs/pull/3/head"  # ships an image with no shell: the app cannot start
    migrating: str = "refs/pull/4/head"  # healthy, passes, writes schema 2 into the data
    harmless: str = "refs/pull/5/head"  # healthy, passes, serves /schema if the data has one


@pytest.fixture(scope="module")
def bad_image(busybox_image: str) -> Iterator[str]:
    """A locally built image a bad PR head ships; removed at the end if the run did not."""
    tag = f"ccci-test/bad:{uuid.uuid4().hex[:10]}"
    subprocess.run(
        ["docker", "build", "--quiet", "--tag", tag, "-"],
        input=f"FROM {busybox_image}\nRUN rm /bin/busybox\n".encode(),
        check=True,
        capture_output=True,
        timeout=300,
    )
    yield tag
    subprocess.run(["docker", "image", "rm", tag], check=False, capture_output=True)


@pytest.fixture(scope="module")
def plugin_recipes(tmp_path_factory: pytest.TempPathFactory, bad_image: str) -> Path:
    """A recipes dir with ccci-web: two releases and the PR heads of :class:`Heads`."""
    root = tmp_path_factory.mktemp("plugin-recipes")
    repo = root / RECIPE
    build_recipe_repo(RECIPES / RECIPE, repo)
    entry, exit_at_once = 'command: ["sh", "/entrypoint.sh"]', 'command: ["sh", "-c", "exit 3"]'
    _pr_head(repo, 1, {"compose.yml": lambda t: t.replace(entry, exit_at_once)})
    _pr_head(repo, 2, {"compose.yml": lambda t: t.replace("APP_VERSION=1.1", "APP_VERSION=9.9")})
    _pr_head(repo, 3, {"compose.yml": lambda t: t.replace("${WEB_IMAGE}", bad_image)})
    _pr_head(repo, 4, _entrypoint("v4", f"echo 2 > /data/schema\n{SHOW_SCHEMA}"))
    _pr_head(repo, 5, _entrypoint("v5", SHOW_SCHEMA))
    return root


@pytest.fixture(scope="module")
def http_port() -> int:
    """A loopback port for the test recipe's host-mode publish (one app at a time)."""
    return unused_port()


@pytest.fixture(scope="module")
def make_tests_dir(
    tmp_path_factory: pytest.TempPathFactory, web_image: str, http_port: int
) -> Callable[..., Path]:
    """Return a factory of CCCI_TESTS_DIRs: ccci-web enrolled, its image, its port, one test."""

    def make(test: str, meta: str = "") -> Path:
        root = tmp_path_factory.mktemp("plugin-tests")
        folder = root / RECIPE
        folder.mkdir()
        (folder / "recipe_meta.py").write_text(
            meta + "WARM_CANONICAL = True\n"
            'HEALTH_PATH = "/version"\n'
            "DEPLOY_TIMEOUT = 60\n"
            'MARKER_PATH = "/data/ccci-marker"\n'
            f'EXTRA_ENV = {{"WEB_IMAGE": "{web_image}", "HTTP_PORT": "{http_port}"}}\n'
        )
        (folder / "test_app.py").write_text(test)
        return root

    return make


@pytest.fixture(scope="module")
def plugin_tests_dir(make_tests_dir: Callable[..., Path]) -> Path:
    """The CCCI_TESTS_DIR most runs use: the recipe's test checks the served version."""
    return make_tests_dir(RECIPE_TEST)


def _digests(root: Path) -> dict[str, str]:
    """Return the sha256 (or link target) of every entry below ``root``."""
    found = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            found[key] = f"-> {path.readlink()}"
        elif path.is_file():
            found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            found[key] = "dir"
    return found


@dataclass
class Agent:
    """The running host agent of a test module."""

    socket: Path
    state_dir: Path

    def client(self) -> AgentClient:
        """Return a client of the agent."""
        return AgentClient(self.socket)

    def fingerprint(self, recipe: str = RECIPE) -> dict[str, str]:
        """Return the sha256 of the registry and of every snapshot file of ``recipe``."""
        app = self.state_dir / recipe
        files = [app / "canonical.json", *sorted((app / "snapshot").resolve().iterdir())]
        return {
            str(p.relative_to(self.state_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in files
        }

    def volume_equals_snapshot(self, volume: str, mountpoint: Path, scratch: Path) -> bool:
        """Return whether a volume holds exactly the bytes of its known-good snapshot tar."""
        tar = (self.state_dir / RECIPE / "snapshot").resolve() / f"{volume}.tar"
        subprocess.run(["tar", "-x", "-f", str(tar), "-C", str(scratch)], check=True)
        return _digests(scratch) == _digests(mountpoint)


@contextmanager
def agent_server() -> Iterator[Agent]:
    """Run the host agent on a socket of its own (one live run at most) until the block ends."""
    base = Path(tempfile.mkdtemp(prefix="ccci-plugin-"))
    path, state_dir = base / "agent.sock", base / "state"
    env = {"CCCI_DOMAIN": BASE_DOMAIN, "CCCI_MAX_TESTS": "2", "CCCI_SOCKET_GROUP": "root"}
    try:
        with running_agent(path, state_dir, env):
            yield Agent(path, state_dir)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def agent(docker_client: docker.DockerClient) -> Iterator[Agent]:
    """The host agent on a socket of its own; the canonical's Docker objects are reaped after."""
    try:
        with agent_server() as running:
            yield running
    finally:
        _reap(docker_client, canonical_app(RECIPE, BASE_DOMAIN, suffix=SUFFIX).stack)


@dataclass
class Outcome:
    """What a run returned and printed."""

    code: int
    log: str
    run: Run


@pytest.fixture(scope="module")
def run_recipe(
    docker_client: docker.DockerClient,
    plugin_recipes: Path,
    plugin_tests_dir: Path,
    agent: Agent,
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[..., Outcome]:
    """Return a function performing one run of ccci-web the way ``cc-ci run`` wires it."""
    apps_dir = tmp_path_factory.mktemp("apps")

    def run_recipe(
        ref: str | None = None,
        quick: bool = False,
        *,
        tests_dir: Path = plugin_tests_dir,
        lease_wait: float = 0,
        realms: Realms | None = None,
        agent_adapter: Callable[[SocketAgent], Any] = lambda real: real,
        sha: str | None = None,
    ) -> Outcome:
        request = RunRequest(RECIPE, ref, quick, sha=sha)
        scratch = tmp_path_factory.mktemp("run")
        out = io.StringIO()
        report = RunReport(request, out)
        run_hex = new_run_hex(live_stacks(stacks(docker_client)))
        meta = recipe_meta.load(tests_dir, RECIPE)
        with Cancellation(report.say) as cancel:
            run = Run(
                request=request,
                domain=BASE_DOMAIN,
                catalog=Catalog(plugin_recipes),
                apps=Apps(
                    SwarmDeployer(stacks(docker_client), apps_dir),
                    stacks(docker_client),
                    meta,
                    "loopback",
                    {},
                ),
                agent=agent_adapter(SocketAgent(agent.client())),
                report=report,
                run_dir=scratch / "run",
                checkouts=scratch / "recipes",
                run_hex=run_hex,
                cancel=cancel,
                tests_dir=tests_dir,
            )
            code = perform(
                run, lease_wait=lease_wait, result_file=scratch / "result.json", realms=realms
            )
        return Outcome(code, out.getvalue(), run)

    return run_recipe


# -- runs on the fakes: no engine, no agent process -----------------------------------------------

FAKE_DOMAIN = "ci.example.org"
FAKE_HEX = "abc123"
LATEST, BASE = "1.1.0+1.1", "1.0.0+1.0"


def _compose(tag: str) -> str:
    return f"services:\n  app:\n    image: web:{tag}\nvolumes:\n  data: {{}}\n"


@dataclass(frozen=True)
class FakeRecipe:
    """A recipes dir holding RECIPE: releases BASE and LATEST, and two pull-request heads."""

    root: Path
    heads: dict[str, str]  # refs/pull/N/head → its commit

    def commit(self, ref: str) -> str:
        """Return the commit of a release tag or pull-request head."""
        return self.heads.get(ref) or git(self.root / RECIPE, "rev-parse", f"{ref}^{{commit}}")


@pytest.fixture(scope="session")
def fake_recipe(tmp_path_factory: pytest.TempPathFactory) -> FakeRecipe:
    """A real git repository of RECIPE, cheap enough for every engine-free run."""
    root = tmp_path_factory.mktemp("fake-recipes")
    repo = init(root / RECIPE)
    commit(repo, {"compose.yml": _compose("1.0"), ".env.sample": "X=1\n"}, "1.0", tag=BASE)
    commit(repo, {"compose.yml": _compose("1.1")}, "1.1", tag=LATEST)
    heads = {}
    for number in (1, 2):
        sha = commit(repo, {"compose.yml": _compose(f"pr{number}")}, f"PR {number}")
        heads[f"refs/pull/{number}/head"] = sha
        git(repo, "update-ref", f"refs/pull/{number}/head", sha)
        git(repo, "reset", "-q", "--hard", LATEST)
    return FakeRecipe(root, heads)


@pytest.fixture
def fake_agent() -> FakeAgent:
    """An in-memory host agent: one lease at a time, no canonical yet."""
    return FakeAgent()


@pytest.fixture
def fake_apps() -> FakeApps:
    """In-memory apps of RECIPE: enrolled (WARM_CANONICAL), with a data marker."""
    return FakeApps(RecipeMeta(RECIPE, {"WARM_CANONICAL": True, "MARKER_PATH": "/data/marker"}))


@pytest.fixture
def make_run(
    fake_recipe: FakeRecipe, fake_agent: FakeAgent, fake_apps: FakeApps, tmp_path: Path
) -> Callable[..., Run]:
    """Return a factory of runs of RECIPE over the fakes (``recipe_test``: a test file's text)."""
    made = 0

    def make(
        ref: str | None = None,
        quick: bool = False,
        *,
        sha: str | None = None,
        recipe_test: str | None = None,
    ) -> Run:
        nonlocal made
        made += 1
        scratch = tmp_path / f"run-{made}"
        tests_dir = scratch / "tests"
        (tests_dir / RECIPE).mkdir(parents=True)
        if recipe_test is not None:
            (tests_dir / RECIPE / "test_app.py").write_text(recipe_test)
        request = RunRequest(RECIPE, ref, quick, sha=sha)
        report = RunReport(request, io.StringIO())
        return Run(
            request=request,
            domain=FAKE_DOMAIN,
            catalog=Catalog(fake_recipe.root),
            apps=fake_apps,  # type: ignore[arg-type]
            agent=fake_agent,
            report=report,
            run_dir=scratch / "run",
            checkouts=scratch / "run" / "recipes",
            run_hex=FAKE_HEX,
            cancel=Cancellation(report.say),  # not entered: no signal handlers in tests
            tests_dir=tests_dir,
            loader=YamlLoader(),
        )

    return make


def verdicts(run: Run) -> dict[str, str]:
    """Return each step of the run's report and its verdict (pass, fail, skip)."""
    return {step.name: str(step.verdict) for step in run.report.steps}


def log(run: Run) -> list[str]:
    """Return the lines the run printed."""
    out = run.report.out
    assert isinstance(out, io.StringIO)
    return out.getvalue().splitlines()
