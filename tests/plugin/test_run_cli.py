"""``cc-ci run`` as a real process: the Drone contract, exit codes, the log, SIGTERM and SIGKILL."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest

from ccci_core.agent_client import AgentClient
from ccci_core.deploy.stack import live_stacks
from ccci_core.docker_engine import SECRET_OWNER
from ccci_core.names import AppName, canonical_app, cold_app, run_hex_of, stack_name
from ccci_core.run_result import RunResult, find_result
from tests.agent_server import ROOT
from tests.deploy_fixtures import BASE_DOMAIN, RECIPES, SUFFIX, _reap, build_recipe_repo, stacks
from tests.gitrepo import commit
from tests.plugin.conftest import RECIPE, Agent, _digests, agent_server

DRONE_PREFIXES = ("CCCI_", "PLUGIN_", "DRONE_")
DRONE_PARAMETERS = {"RECIPE", "REF"}
SUMMARY_ROW = re.compile(r"  (\S+(?: \S+)?) +(PASS|FAIL|SKIP) +\d+\.\ds(?:  .*)?")
COLD_APP_LINE = re.compile(r"^cold app (\S+-([0-9a-f]{6})\.\S+) \(stack \S+\)$", re.MULTILINE)
STEP_LINE = re.compile(r"^(PASS|FAIL|SKIP) (.+?) \((\d+\.\d)s\)(?: — (.*))?$", re.MULTILINE)


def clean_environ() -> dict[str, str]:
    """Return this process's environment without any Drone or cc-ci variable."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(DRONE_PREFIXES) and key not in DRONE_PARAMETERS
    }


@dataclass
class Finished:
    """What a ``cc-ci run`` process left: its exit status, log, stderr and result file."""

    code: int
    log: str
    err: str
    result_file: Path

    @property
    def result(self) -> dict[str, Any]:
        """Return the JSON result the run wrote."""
        data: dict[str, Any] = json.loads(self.result_file.read_text())
        return data

    def steps(self) -> dict[str, tuple[str, str]]:
        """Return each step's verdict and detail as the log printed them when it ended."""
        return {m[2]: (m[1], m[4] or "") for m in STEP_LINE.finditer(self.log)}


class Started:
    """A ``cc-ci run`` process writing its log and stderr to files."""

    def __init__(self, env: Mapping[str, str], folder: Path, *flags: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.out_path, self.err_path = folder / "stdout.log", folder / "stderr.log"
        self.result_file = Path(env.get("CCCI_RESULT_FILE", folder / "result.json"))
        with self.out_path.open("wb") as out, self.err_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ccci_core.cli", "run", *flags],
                cwd=ROOT,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )

    def log(self) -> str:
        """Return what the run has printed so far."""
        return self.out_path.read_text()

    def wait(self) -> Finished:
        """Wait for the process to end."""
        code = self.proc.wait()
        return Finished(code, self.log(), self.err_path.read_text(), self.result_file)


@pytest.fixture
def start() -> Iterator[Callable[..., Started]]:
    """Start ``cc-ci run`` processes; one a failed test leaves running is cancelled and awaited.

    Otherwise its stack, run dir and lease would still be live when the next test looks.
    """
    begun: list[Started] = []

    def begin(env: Mapping[str, str], folder: Path, *flags: str) -> Started:
        begun.append(Started(env, folder, *flags))
        return begun[-1]

    yield begin
    for started in begun:
        if started.proc.poll() is None:
            started.proc.send_signal(signal.SIGTERM)  # the run tears down what it made
            try:
                started.proc.wait(timeout=600)
            except subprocess.TimeoutExpired:
                started.proc.kill()
                started.proc.wait()


def run_cli(env: Mapping[str, str], folder: Path, *flags: str) -> Finished:
    """Run ``cc-ci run`` to its end."""
    return Started(env, folder, *flags).wait()


def assert_refused(finished: Finished, reason: str) -> None:
    """The run exited 2 with ``reason`` in its output and no traceback."""
    said = finished.log + finished.err
    assert (2, True, False) == (finished.code, reason in said, "Traceback" in said), said


# -- refused before the run starts: no engine needed ---------------------------------------------


@pytest.fixture
def offline_env(tmp_path: Path) -> dict[str, str]:
    """Settings that never reach the engine or an agent (the run is refused before)."""
    return clean_environ() | {
        "CCCI_DEPLOYER": "swarm",
        "CCCI_RECIPES_DIR": str(tmp_path / "recipes"),
        "CCCI_TESTS_DIR": str(tmp_path / "tests"),
        "CCCI_AGENT_SOCKET": str(tmp_path / "no-agent.sock"),
        "CCCI_RUNS_DIR": str(tmp_path / "runs"),
        "CCCI_APPS_DIR": str(tmp_path / "apps"),
        "CCCI_RESULT_FILE": str(tmp_path / "result.json"),
    }


@pytest.mark.parametrize(
    ("env", "flags", "reason"),
    [
        ({}, [], "no recipe: set RECIPE"),
        ({"RECIPE": "../x"}, [], "RECIPE: invalid recipe '../x'"),
        ({"PLUGIN_RECIPE": "Web"}, [], "PLUGIN_RECIPE: invalid recipe 'Web'"),
        ({"RECIPE": RECIPE}, ["--recipe", "warm-web"], "flag: invalid recipe 'warm-web'"),
        ({"RECIPE": RECIPE, "REF": "--upload-pack=x"}, [], "REF: invalid ref"),
        ({"RECIPE": RECIPE, "CCCI_QUICK": "maybe"}, [], "CCCI_QUICK: expected 1/0"),
        ({"RECIPE": RECIPE, "CCCI_PR": "-3"}, [], "CCCI_PR: expected a pull request number"),
        ({"RECIPE": RECIPE, "CCCI_DEPLOYER": "helm"}, [], "CCCI_DEPLOYER: Input should be"),
        ({"RECIPE": RECIPE, "CCCI_DOMAIN": "ci"}, [], "CCCI_DOMAIN: 'ci' is not a lowercase DNS"),
        ({"RECIPE": RECIPE, "CCCI_LEASE_WAIT_S": "-1"}, [], "CCCI_LEASE_WAIT_S: Input should be"),
        ({"RECIPE": RECIPE, "CCCI_SHA": "abc"}, [], "CCCI_SHA: expected a 40-digit"),
        (
            {"RECIPE": RECIPE, "CCCI_RESULT_FILE": "/nonexistent-ccci/result.json"},
            [],
            "CCCI_RESULT_FILE: /nonexistent-ccci is not a directory",
        ),
    ],
    ids=[
        "missing-recipe",
        "invalid-recipe",
        "invalid-plugin-setting",
        "invalid-flag",
        "invalid-ref",
        "invalid-quick",
        "invalid-pr",
        "unknown-deployer",
        "bad-domain",
        "negative-lease-wait",
        "short-sha",
        "result-file-in-no-directory",
    ],
)
def test_refused_before_the_run_starts(
    offline_env: dict[str, str],
    tmp_path: Path,
    env: dict[str, str],
    flags: list[str],
    reason: str,
) -> None:
    """Bad input or settings exit 2 with one line on stderr; no result file, nothing on disk."""
    finished = run_cli(offline_env | env, tmp_path / "run", *flags)
    assert_refused(finished, reason)
    assert [f"cc-ci: {finished.err.strip().removeprefix('cc-ci: ')}"] == finished.err.splitlines()
    assert (False, False) == (finished.result_file.exists(), (tmp_path / "runs").exists())


# -- runs on the engine with a real agent ---------------------------------------------------------


@pytest.fixture(scope="module")
def agent() -> Iterator[Agent]:
    """This module's host agent; its runs never promote, so it reaps no canonical after."""
    with agent_server() as running:
        yield running
        assert not (running.state_dir / RECIPE).exists(), "a run of this module promoted"


@pytest.fixture(scope="module")
def module_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The module's CCCI_RUNS_DIR and CCCI_APPS_DIR."""
    return tmp_path_factory.mktemp("runs"), tmp_path_factory.mktemp("apps")


@pytest.fixture
def cli_env(
    plugin_recipes: Path,
    plugin_tests_dir: Path,
    agent: Agent,
    module_dirs: tuple[Path, Path],
    tmp_path: Path,
) -> dict[str, str]:
    """Drone's environment for one run of the test recipe on the real engine and agent."""
    runs_dir, apps_dir = module_dirs
    return clean_environ() | {
        "CCCI_DEPLOYER": "swarm",
        "CCCI_RECIPES_DIR": str(plugin_recipes),
        "CCCI_TESTS_DIR": str(plugin_tests_dir),
        "CCCI_AGENT_SOCKET": str(agent.socket),
        "CCCI_DOMAIN": BASE_DOMAIN,
        "CCCI_HEALTH_PROBE": "loopback",
        "CCCI_RUNS_DIR": str(runs_dir),
        "CCCI_APPS_DIR": str(apps_dir),
        "CCCI_RESULT_FILE": str(tmp_path / "result.json"),
        "CCCI_LEASE_WAIT_S": "0",
        "RECIPE": RECIPE,
        "DRONE_BUILD_NUMBER": "42",
    }


def leases(agent: Agent) -> list[dict[str, Any]]:
    """Return the agent's live leases."""
    listing: dict[str, Any] = AgentClient(agent.socket).get("/v1/leases")
    return list(listing["leases"])


def engine_objects(client: docker.DockerClient, stack: str) -> list[str]:
    """Return every Docker object of ``stack`` on the engine (asked independently of the plugin)."""
    prefix = f"{stack}_"
    found = []
    for kind, collection in [
        ("service", client.services),
        ("volume", client.volumes),
        ("secret", client.secrets),
        ("config", client.configs),
        ("network", client.networks),
    ]:
        named = collection.list(filters={"name": prefix})
        found += [f"{kind} {item.name}" for item in named if item.name.startswith(prefix)]
    owned = client.secrets.list(filters={"label": f"{SECRET_OWNER}={stack}"})
    found += [f"secret {s.name}" for s in owned]
    label = {"label": f"com.docker.stack.namespace={stack}"}
    found += [
        f"container {c.name}"
        for c in client.containers.list(all=True, filters=label, ignore_removed=True)
    ]
    return sorted(set(found))


def cold_stacks(client: docker.DockerClient) -> dict[str, str]:
    """Return the live cold stacks of the test recipe by run hex."""
    found = {}
    for stack in live_stacks(stacks(client)):
        run_hex = run_hex_of(stack)
        if run_hex and cold_app(RECIPE, BASE_DOMAIN, run_hex, suffix=SUFFIX).stack == stack:
            found[run_hex] = stack
    return found


def wait_for_cold_app(client: docker.DockerClient, started: Started) -> str:
    """Return the run hex the run logged once its cold stack has a container (and a volume)."""
    while started.proc.poll() is None:
        logged = COLD_APP_LINE.search(started.log())
        if logged is not None:
            stack = cold_app(RECIPE, BASE_DOMAIN, logged[2], suffix=SUFFIX).stack
            label = {"label": f"com.docker.stack.namespace={stack}"}
            if client.containers.list(all=True, filters=label, ignore_removed=True):
                return logged[2]
        time.sleep(0.1)
    pytest.fail(f"the run ended before its cold app had a container:\n{started.log()}")


def assert_nothing_left(
    client: docker.DockerClient, run_hex: str, module_dirs: tuple[Path, Path], agent: Agent
) -> None:
    """Nothing of the run is left: engine objects, env file, run dir, lease."""
    app = cold_app(RECIPE, BASE_DOMAIN, run_hex, suffix=SUFFIX)
    runs_dir, apps_dir = module_dirs
    assert [] == engine_objects(client, app.stack)
    assert ([], []) == (sorted(runs_dir.iterdir()), sorted(apps_dir.glob(f"{app.domain}*")))
    assert [] == leases(agent)


@pytest.mark.docker
def test_green_run_through_the_process(
    cli_env: dict[str, str],
    tmp_path: Path,
    docker_client: docker.DockerClient,
    module_dirs: tuple[Path, Path],
    agent: Agent,
) -> None:
    """A green run exits 0: a line per step with its time, the summary, and the JSON result.

    Precedence is exercised on the way: the build parameter RECIPE beats PLUGIN_RECIPE, and the
    --ref flag beats REF (either loser would have refused the run).
    """
    env = cli_env | {"PLUGIN_RECIPE": "not-a-recipe", "REF": "9.9.9+9"}
    env["DRONE_BUILD_LINK"] = "https://drone.example/coop-cloud/ci/42"
    finished = run_cli(env, tmp_path / "run", "--ref", "1.0.0+1.0")

    assert 0 == finished.code, finished.log + finished.err
    assert "" == finished.err
    lines = finished.log.splitlines()
    assert ["cc-ci: cold lane, recipe ccci-web, ref 1.0.0+1.0, build 42"] == lines[:1]
    assert "build: https://drone.example/coop-cloud/ci/42" == lines[1]
    steps = finished.steps()
    expected = {
        "lease": "PASS",
        "install": "PASS",
        "upgrade": "SKIP",
        "recipe tests": "PASS",
        "teardown": "PASS",
    }
    assert expected == {name: verdict for name, (verdict, _) in steps.items()}
    assert "no release older than the target to upgrade from" == steps["upgrade"][1]
    assert "1 passed" in steps["recipe tests"][1]
    assert steps["teardown"][1].endswith("nothing left")
    for name in expected:  # each step announced itself before it ended
        assert lines.index(f"--- {name}") < next(
            i for i, line in enumerate(lines) if STEP_LINE.match(line) and f" {name} (" in line
        )
    summary = lines[lines.index("steps:") - 6 :]
    assert [
        "lane      cold",
        "recipe    ccci-web",
        "ref       1.0.0+1.0",
        f"commit    {finished.result['commit']}",
        "target    1.0.0+1.0",
        "canonical untouched (a run with a REF (a pull request) never promotes)",
        "steps:",
    ] == summary[:7]
    assert re.fullmatch(r"[0-9a-f]{40}", finished.result["commit"])
    rows = [SUMMARY_ROW.fullmatch(row) for row in summary[7:-2]]
    assert expected == {row[1]: row[2] for row in rows if row is not None}, summary
    assert "verdict   PASS" == summary[-2]
    assert RunResult(
        verdict="pass",
        lane="cold",
        recipe=RECIPE,
        canonical="untouched (a run with a REF (a pull request) never promotes)",
    ) == find_result(lines)

    result = finished.result
    assert ("pass", 0, "cold", RECIPE, "1.0.0+1.0", "42") == (
        result["verdict"],
        result["exit"],
        result["lane"],
        result["recipe"],
        result["ref"],
        result["build"],
    )
    assert expected == {s["name"]: s["status"].upper() for s in result["steps"]}
    assert all(s["seconds"] >= 0 for s in result["steps"])
    logged = COLD_APP_LINE.search(finished.log)
    assert logged is not None
    assert_nothing_left(docker_client, logged[2], module_dirs, agent)


@pytest.mark.docker
@pytest.mark.parametrize(
    ("env", "reason", "failed_step"),
    [
        ({"RECIPE": "no-such-recipe"}, "no recipe repository 'no-such-recipe'", None),
        ({"REF": "9.9.9+9"}, "recipe 'ccci-web' has no such tag or commit", None),
        ({"REF": "refs/pull/99/head"}, "has no such pull request head", None),
        (
            {"CCCI_AGENT_SOCKET": "/nonexistent/agent.sock"},
            "the host agent is not reachable",
            "lease",
        ),
    ],
    ids=["unknown-recipe", "unknown-ref", "unknown-pull-head", "agent-not-reachable"],
)
def test_refused_by_the_run(
    cli_env: dict[str, str],
    tmp_path: Path,
    module_dirs: tuple[Path, Path],
    agent: Agent,
    env: dict[str, str],
    reason: str,
    failed_step: str | None,
) -> None:
    """What only the run can find out exits 2 with the reason in the log and the result file."""
    finished = run_cli(cli_env | env, tmp_path / "run")
    assert_refused(finished, reason)
    result = finished.result
    assert ("error", 2) == (result["verdict"], result["exit"])
    assert reason in result["notes"][-1]
    failed = [s["name"] for s in result["steps"] if s["status"] == "fail"]
    assert ([] if failed_step is None else [failed_step]) == failed
    assert "install" not in finished.steps()
    assert f"error: stopped: {result['notes'][-1].removeprefix('stopped: ')}" in finished.log
    assert ([], []) == (sorted(module_dirs[0].iterdir()), leases(agent))


@pytest.mark.docker
def test_a_failure_before_the_first_step_is_red(
    cli_env: dict[str, str], tmp_path: Path, module_dirs: tuple[Path, Path], agent: Agent
) -> None:
    """A run that breaks before any step ran (git cannot clone the recipe) exits 1, not 0."""
    recipes = tmp_path / "recipes"
    (recipes / RECIPE / ".git").mkdir(parents=True)  # looks like a repository, is not one
    finished = run_cli(cli_env | {"CCCI_RECIPES_DIR": str(recipes)}, tmp_path / "run")
    assert (1, "fail", 1) == (finished.code, finished.result["verdict"], finished.result["exit"])
    assert "verdict   FAIL" == finished.log.splitlines()[-2], finished.log
    assert "stopped: git failed" in finished.log
    assert "Traceback" not in finished.log + finished.err
    assert ([], []) == (sorted(module_dirs[0].iterdir()), leases(agent))


@pytest.mark.docker
def test_sigterm_mid_run_tears_down_and_releases_the_lease(
    cli_env: dict[str, str],
    tmp_path: Path,
    docker_client: docker.DockerClient,
    module_dirs: tuple[Path, Path],
    agent: Agent,
    start: Callable[..., Started],
) -> None:
    """Drone's cancel (SIGTERM) mid-install: teardown completes, exit 1, nothing left, no lease.

    A second SIGTERM once the teardown has begun must not abort it.
    """
    started = start(cli_env | {"REF": "1.1.0+1.1"}, tmp_path / "run")
    run_hex = wait_for_cold_app(docker_client, started)
    started.proc.send_signal(signal.SIGTERM)
    while started.proc.poll() is None and "--- teardown" not in started.log():
        time.sleep(0.05)
    started.proc.send_signal(signal.SIGTERM)
    finished = started.wait()

    assert 1 == finished.code, finished.log + finished.err
    assert "Traceback" not in finished.log + finished.err
    steps = finished.steps()
    assert ("FAIL", "cancelled by SIGTERM") == steps["install"]
    assert "PASS" == steps["teardown"][0], finished.log
    assert {"lease", "install", "teardown"} == set(steps)
    assert "stopped: cancelled by SIGTERM" in finished.log
    assert "received SIGTERM during teardown; finishing the teardown first" in finished.log
    assert "verdict   FAIL" == finished.log.splitlines()[-2]
    result = finished.result
    assert ("fail", 1) == (result["verdict"], result["exit"])
    assert (
        f"cold app {cold_app(RECIPE, BASE_DOMAIN, run_hex, suffix=SUFFIX).domain}" in finished.log
    )
    assert_nothing_left(docker_client, run_hex, module_dirs, agent)


@pytest.mark.docker
def test_sigterm_during_teardown_lets_it_finish_and_stops_the_run(
    cli_env: dict[str, str],
    tmp_path: Path,
    docker_client: docker.DockerClient,
    module_dirs: tuple[Path, Path],
    agent: Agent,
    start: Callable[..., Started],
) -> None:
    """A cancel landing in a green run's teardown: the teardown completes, the run is red."""
    started = start(cli_env | {"REF": "1.0.0+1.0"}, tmp_path / "run")
    while started.proc.poll() is None and "--- teardown" not in started.log():
        time.sleep(0.05)
    started.proc.send_signal(signal.SIGTERM)
    finished = started.wait()

    assert 1 == finished.code, finished.log + finished.err
    steps = finished.steps()
    assert {"PASS"} == {steps[name][0] for name in ("lease", "install", "teardown")}, finished.log
    assert "received SIGTERM during teardown; finishing the teardown first" in finished.log
    assert ("fail", "cancelled by SIGTERM") == (
        finished.result["verdict"],
        finished.result["stopped"],
    )
    logged = COLD_APP_LINE.search(finished.log)
    assert logged is not None
    assert_nothing_left(docker_client, logged[2], module_dirs, agent)


@pytest.fixture
def reaped(
    docker_client: docker.DockerClient, agent: Agent, module_dirs: tuple[Path, Path]
) -> Iterator[set[str]]:
    """Collect stacks a killed run left; after the test reap them, their files and every lease."""
    stacks: set[str] = set()
    yield stacks
    for stack in stacks:
        _reap(docker_client, stack)
    for folder in module_dirs:
        for path in folder.iterdir():
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    client = AgentClient(agent.socket)
    for lease in leases(agent):
        client.delete(f"/v1/leases/{lease['id']}?force=1")  # as root, like an operator


@pytest.mark.docker
def test_sigkill_mid_run_leaves_what_a_janitor_recognises(
    cli_env: dict[str, str],
    tmp_path: Path,
    docker_client: docker.DockerClient,
    module_dirs: tuple[Path, Path],
    agent: Agent,
    start: Callable[..., Started],
    reaped: set[str],
) -> None:
    """After SIGKILL every leftover carries the run's hex, and its lease is held until its TTL."""
    run_hex, app, finished = killed_mid_install(
        start, cli_env, tmp_path / "run", docker_client, reaped
    )

    assert (-signal.SIGKILL, False) == (finished.code, finished.result_file.exists())
    # What a janitor sees: a live stack whose name yields the run hex, every object named by it.
    assert app.stack == cold_stacks(docker_client).get(run_hex)
    objects = engine_objects(docker_client, app.stack)
    kinds = {kind for kind, _ in map(str.split, objects)}
    assert {"service", "secret", "config", "volume", "container"} <= kinds, objects
    assert {run_hex} == {run_hex_of(name) for _, name in map(str.split, objects)}
    # On disk, only this module's runs write here: everything left is named by the hex too.
    runs_dir, apps_dir = module_dirs
    assert [f"{RECIPE}-{run_hex}"] == [p.name for p in runs_dir.iterdir()]
    envs = [p.name.removesuffix(".env") for p in apps_dir.iterdir()]
    assert [run_hex] == [run_hex_of(stack_name(domain)) for domain in envs]
    # The lease is not released: it is held until its TTL runs out.
    held = leases(agent)
    assert [(RECIPE, "cold")] == [(lease["recipe"], lease["lane"]) for lease in held]


def cc_ci(env: Mapping[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    """Run a ``cc-ci`` host command (``janitor``, ``sweep``) as its unit does."""
    return subprocess.run(
        [sys.executable, "-m", "ccci_core.cli", *argv],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        check=False,
    )


def janitor(env: Mapping[str, str], *flags: str) -> subprocess.CompletedProcess[str]:
    """Run ``cc-ci janitor``."""
    return cc_ci(env, "janitor", *flags)


def killed_mid_install(
    start: Callable[..., Started],
    env: Mapping[str, str],
    folder: Path,
    client: docker.DockerClient,
    reaped: set[str],
) -> tuple[str, AppName, Finished]:
    """Start a run, SIGKILL it once its cold app has a container; return hex, app, what ended."""
    started = start(dict(env) | {"REF": "1.1.0+1.1"}, folder)
    run_hex = wait_for_cold_app(client, started)
    app = cold_app(RECIPE, BASE_DOMAIN, run_hex, suffix=SUFFIX)
    reaped.add(app.stack)
    started.proc.send_signal(signal.SIGKILL)
    return run_hex, app, started.wait()


@pytest.mark.docker
def test_the_janitor_removes_a_killed_runs_leftovers_once_its_lease_is_gone(
    cli_env: dict[str, str],
    tmp_path: Path,
    docker_client: docker.DockerClient,
    module_dirs: tuple[Path, Path],
    agent: Agent,
    start: Callable[..., Started],
    reaped: set[str],
) -> None:
    """A SIGKILLed run: kept while its lease lives; then stack, volumes, secrets, env, dir go.

    A canonical-shaped volume (``warm-*``) on the same domain is never a candidate.
    """
    warm = f"{stack_name('warm-ccci-web.' + BASE_DOMAIN)}_data"
    docker_client.volumes.create(warm, labels={"com.docker.stack.namespace": warm[:-5]})
    try:
        run_hex, app, _ = killed_mid_install(
            start, cli_env, tmp_path / "run", docker_client, reaped
        )
        [lease] = leases(agent)
        assert run_hex == lease["run_hex"]  # the lease names the run's objects

        kept = janitor(cli_env)
        assert (0, "") == (kept.returncode, kept.stderr), kept.stdout + kept.stderr
        assert f"kept stack {app.stack} (run {run_hex} is live)" in kept.stdout
        assert engine_objects(docker_client, app.stack)

        AgentClient(agent.socket).delete(f"/v1/leases/{lease['id']}?force=1")  # as if expired
        runs_dir, apps_dir = module_dirs
        old = time.time() - 3600
        for path in [*runs_dir.rglob("*"), runs_dir / f"{RECIPE}-{run_hex}"]:
            os.utime(path, (old, old), follow_symlinks=False)
        dry = janitor(cli_env, "--dry-run")
        assert f"would remove stack {app.stack}" in dry.stdout, dry.stdout + dry.stderr
        assert engine_objects(docker_client, app.stack)  # a dry run removes nothing

        swept = janitor(cli_env)

        assert (0, "") == (swept.returncode, swept.stderr), swept.stdout + swept.stderr
        assert [] == engine_objects(docker_client, app.stack), swept.stdout
        assert ([], []) == (sorted(runs_dir.iterdir()), sorted(apps_dir.iterdir()))
        assert warm in {v.name for v in docker_client.volumes.list()}
        assert "janitor: nothing left by dead runs" in janitor(cli_env).stdout
    finally:
        docker_client.volumes.get(warm).remove()


def sweep(env: Mapping[str, str], *flags: str) -> tuple[int, dict[str, Any], str]:
    """Run ``cc-ci sweep --json`` as its timer does; return the code, the summary, stderr."""
    done = cc_ci(env, "sweep", "--json", *flags)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else {}, done.stderr


@pytest.fixture
def promoting_agent(docker_client: docker.DockerClient) -> Iterator[Agent]:
    """An agent of its own for a run that promotes; the canonical it makes is reaped after."""
    try:
        with agent_server() as running:
            yield running
    finally:
        _reap(docker_client, canonical_app(RECIPE, BASE_DOMAIN, suffix=SUFFIX).stack)


@pytest.mark.docker
def test_the_sweep_promotes_green_keeps_a_red_canonical_and_yields_to_a_person(
    cli_env: dict[str, str],
    tmp_path: Path,
    docker_client: docker.DockerClient,
    plugin_tests_dir: Path,
    promoting_agent: Agent,
    reaped: set[str],
) -> None:
    """A live lease skips the sweep. Sweep 1: both recipes green, both promote. Then ccci-red's
    latest crashes.

    Sweep 2, with a person's run leasing during ccci-red's run: ccci-red is red and its canonical
    byte-identical; ccci-web is not started, and the summary says why.
    """
    agent, red = promoting_agent, "ccci-red"
    recipes, tests_dir = tmp_path / "recipes", tmp_path / "tests"
    build_recipe_repo(RECIPES / RECIPE, recipes / RECIPE)
    build_recipe_repo(RECIPES / RECIPE, recipes / red)
    shutil.copytree(plugin_tests_dir / RECIPE, tests_dir / RECIPE)
    shutil.copytree(plugin_tests_dir / RECIPE, tests_dir / red)
    env = cli_env | {
        "CCCI_RECIPES_DIR": str(recipes),
        "CCCI_TESTS_DIR": str(tests_dir),
        "CCCI_AGENT_SOCKET": str(agent.socket),
        "CCCI_SWEEP_YIELD_S": "0",
    }
    try:
        client = AgentClient(agent.socket)
        held = client.post("/v1/leases", {"recipe": RECIPE, "lane": "cold"})
        code, skipped, err = sweep(env)
        assert (0, []) == (code, skipped["recipes"]), err
        assert f"run {held['id']} ({RECIPE}, cold) is in flight" in skipped["skipped"]
        client.delete(f"/v1/leases/{held['id']}?force=1")

        code, first, err = sweep(env)
        # The infra recipes are not in this catalog: both are reported, the sweep goes on.
        assert all(o.startswith("not reconciled: ") for o in first["infra"].values())
        assert "1.1.0+1.1" == client.get(f"/v1/canonicals/{RECIPE}")["version"]
        assert (0, [(red, "pass", True), (RECIPE, "pass", True)]) == (
            code,
            [(r["recipe"], r["result"], r["promoted"]) for r in first["recipes"]],
        ), err
        canonical = agent.state_dir / red
        before = _digests(canonical)
        compose = (recipes / red / "compose.yml").read_text()
        crashing = compose.replace("1.1.0+1.1", "1.2.0+1.2").replace(
            'command: ["sh", "/entrypoint.sh"]', 'command: ["sh", "-c", "exit 3"]'
        )
        commit(recipes / red, {"compose.yml": crashing}, "a release that crashes", tag="1.2.0+1.2")

        err_path = tmp_path / "sweep.err"
        with err_path.open("w") as errors:
            proc = subprocess.Popen(
                [sys.executable, "-m", "ccci_core.cli", "sweep", "--json"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
            )
            while proc.poll() is None and f"recipe {red}" not in err_path.read_text():
                time.sleep(0.1)
            person = AgentClient(agent.socket).post(
                "/v1/leases", {"recipe": "other", "lane": "cold"}
            )
            out, _ = proc.communicate()
        second = json.loads(out)
        AgentClient(agent.socket).delete(f"/v1/leases/{person['id']}?force=1")

        assert 0 == proc.returncode, err_path.read_text()[-3000:]
        by_recipe = {r["recipe"]: r for r in second["recipes"]}
        assert ("fail", False) == (by_recipe[red]["result"], by_recipe[red]["promoted"])
        assert by_recipe[red]["detail"].startswith("install"), by_recipe[red]
        assert ("skipped", f"run {person['id']} (other) arrived: the sweep yields") == (
            by_recipe[RECIPE]["result"],
            by_recipe[RECIPE]["detail"],
        )
        assert before == _digests(canonical)  # the red run left the known-good alone
        last = client.get("/v1/status")["last_sweep"]
        assert [red, RECIPE] == [r["recipe"] for r in last["recipes"]]
        assert [] == leases(agent)
    finally:
        _reap(docker_client, canonical_app(red, BASE_DOMAIN, suffix=SUFFIX).stack)
