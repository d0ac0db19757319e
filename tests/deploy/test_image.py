"""The plugin image (``Dockerfile``): built without a registry, it runs a cold run as Drone would.

The base is built here (``tests.images.ensure_python_base_image``: debootstrap, ``docker
import``, reused between runs by the hash of its recipe), the project is installed from a
wheelhouse built on the host, and the image runs against the host's engine and a real host agent,
configured only by what Drone would pass it: the example pipeline's settings as ``PLUGIN_*``, the
build parameters and ``DRONE_*``, its volumes and ``network_mode: host``.
"""

from __future__ import annotations

import grp
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from ccci_core.agent_client import AgentClient
from ccci_core.names import stack_name
from tests.agent_server import ROOT, running_agent
from tests.deploy.pipeline import DOCKER_SOCKET, WORKSPACE, agent_socket, plugin_step, settings_env
from tests.deploy_fixtures import BASE_DOMAIN, RECIPES, build_recipe_repo, unused_port
from tests.images import ensure_python_base_image
from tests.plugin.conftest import RECIPE, RECIPE_TEST
from tests.plugin.test_run_cli import COLD_APP_LINE, engine_objects

PLUGIN_UID = 10001  # the Dockerfile's default: not root, no account on the host


def _docker(*args: str, timeout: int = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], check=False, capture_output=True, text=True, timeout=timeout
    )


@dataclass(frozen=True)
class PluginImage:
    """The built plugin image and what it took."""

    tag: str
    socket_gid: int  # the image user's primary group: the agent's socket group on the host
    build_seconds: float
    size_bytes: int
    context: Path  # the Dockerfile and the wheelhouse
    build_args: list[str]  # ``--build-arg`` … as the image was built

    def build(self, tag: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Build the image again as ``tag`` with more build arguments (the cache is shared)."""
        extra = [word for arg in args for word in ("--build-arg", arg)]
        return _docker(
            "build", "--force-rm", "--tag", tag, *self.build_args, *extra, str(self.context)
        )


@pytest.fixture(scope="session")
def socket_group() -> grp.struct_group:
    """The host group of the Docker socket: the test agent's socket group too (one gid for both)."""
    return grp.getgrgid(Path(DOCKER_SOCKET).stat().st_gid)


@pytest.fixture(scope="session")
def python_base(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A Debian base with Python, git and the host's Docker CLI, built locally once."""
    cli = shutil.which("docker")
    assert cli is not None, ".ci/run installs the docker CLI"
    tag = ensure_python_base_image(Path(cli).resolve(), tmp_path_factory.mktemp("base"))
    version = _docker(
        "run", "--rm", tag, "python3", "-c", "import sys; print(sys.version_info[:2])"
    )
    assert str(tuple(sys.version_info[:2])) == version.stdout.strip(), (
        "the wheelhouse is built by this Python: the base must have the same minor version"
    )
    return tag


@pytest.fixture(scope="session")
def plugin_image(
    python_base: str,
    socket_group: grp.struct_group,
    tmp_path_factory: pytest.TempPathFactory,
    docker_client: docker.DockerClient,
) -> Iterator[PluginImage]:
    """The plugin image, built from a wheelhouse FROM the local base; removed at the end."""
    context = tmp_path_factory.mktemp("image-context")
    shutil.copy(ROOT / "Dockerfile", context / "Dockerfile")
    shutil.copy(ROOT / ".dockerignore", context / ".dockerignore")
    wheelhouse, project = context / "wheelhouse", f"{ROOT}[plugin]"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(wheelhouse), project],
        check=True,
        capture_output=True,
        timeout=1800,
    )
    name = f"ccci-test/plugin-{uuid.uuid4().hex[:10]}"
    build_args = [
        "--build-arg",
        f"BASE_IMAGE={python_base}",
        "--build-arg",
        "APT_PACKAGES=",  # the base has git, certificates and tini
        "--build-arg",
        f"SOCKET_GID={socket_group.gr_gid}",
        "--build-arg",
        f"DOCKER_GID={socket_group.gr_gid}",
    ]
    # The build stage is tagged too, so removing both tags leaves nothing dangling behind.
    tags = [f"{name}:build", f"{name}:latest"]
    started = time.monotonic()
    try:
        for tag, target in zip(tags, (["--target", "build"], []), strict=True):
            built = _docker("build", "--quiet", "--tag", tag, *target, *build_args, str(context))
            assert 0 == built.returncode, built.stderr
        seconds = time.monotonic() - started
        size = docker_client.images.get(tags[1]).attrs["Size"]
        yield PluginImage(tags[1], socket_group.gr_gid, seconds, size, context, build_args)
    finally:
        for tag in reversed(tags):
            _docker("image", "rm", tag)


@pytest.mark.docker
def test_the_image_says_its_version(plugin_image: PluginImage) -> None:
    """``cc-ci --version`` runs in the image, as its non-root user."""
    from ccci_core import __version__

    done = _docker("run", "--rm", "--entrypoint", "cc-ci", plugin_image.tag, "--version")
    assert (0, f"cc-ci {__version__}") == (done.returncode, done.stdout.strip()), done.stderr
    uid = _docker("run", "--rm", "--entrypoint", "id", plugin_image.tag, "-u")
    assert str(PLUGIN_UID) == uid.stdout.strip()
    print(  # measured, for the report (pytest -s)
        f"plugin image: built in {plugin_image.build_seconds:.0f}s, "
        f"{plugin_image.size_bytes / 1e6:.0f} MB"
    )


SLOW_START = """import pathlib, time
pathlib.Path("/slow/started").write_text("yes")
time.sleep(60)
"""


@pytest.mark.docker
def test_a_sigterm_before_python_set_its_handlers_is_not_lost(
    plugin_image: PluginImage, docker_client: docker.DockerClient
) -> None:
    """PID 1 is tini: a SIGTERM that lands while Python is still starting (a ``sitecustomize``
    that sleeps holds it there) kills ``cc-ci run`` at once, exit 143 (128 + SIGTERM).

    Without tini Python is PID 1, and the kernel drops a signal PID 1 has no handler for: the
    container would sleep on, to be killed by the stop timeout (137).
    """
    entrypoint = docker_client.images.get(plugin_image.tag).attrs["Config"]["Entrypoint"]
    assert ["/usr/bin/tini", "--", "cc-ci", "run"] == entrypoint
    slow = Path(tempfile.mkdtemp(prefix="ccci-slow-"))
    name = f"ccci-tini-{uuid.uuid4().hex[:6]}"
    try:
        slow.chmod(0o777)  # the image's user writes the marker
        (slow / "sitecustomize.py").write_text(SLOW_START)
        started = _docker(
            "run", "--detach", "--name", name, "--volume", f"{slow}:/slow",
            "--env", "PYTHONPATH=/slow", plugin_image.tag,
        )  # fmt: skip
        assert 0 == started.returncode, started.stderr
        while not (slow / "started").exists():  # Python is in its start-up, no handler yet
            assert docker_client.containers.get(name).attrs["State"]["Running"]
            time.sleep(0.1)
        stopped = _docker("stop", "--time", "30", name)
        assert 0 == stopped.returncode, stopped.stderr
        state = docker_client.containers.get(name).attrs["State"]
        assert 143 == state["ExitCode"], _docker("logs", name).stdout
    finally:
        _docker("rm", "--force", name)
        shutil.rmtree(slow, ignore_errors=True)


@pytest.mark.docker
def test_abra_is_pinned_by_its_sha256(plugin_image: PluginImage, python_base: str) -> None:
    """ABRA_URL is installed only with the sha256 it must have: a mismatch or none fails the build.

    No abra release is reachable here: the base's own ``/usr/bin/true`` (it answers ``--version``)
    stands in, fetched by URL like a release.
    """
    url = "ABRA_URL=file:///usr/bin/true"
    digest = _docker("run", "--rm", python_base, "sha256sum", "/usr/bin/true").stdout.split()[0]
    tag = f"{plugin_image.tag.rsplit(':', 1)[0]}:abra"
    try:
        unpinned = plugin_image.build(tag, url)
        wrong = plugin_image.build(tag, url, f"ABRA_SHA256={'0' * 64}")
        said = unpinned.stdout + unpinned.stderr
        assert (True, True) == (unpinned.returncode != 0, "ABRA_URL needs ABRA_SHA256" in said), (
            said
        )
        said = wrong.stdout + wrong.stderr
        assert (True, True) == (wrong.returncode != 0, "FAILED" in said), said
        pinned = plugin_image.build(tag, url, f"ABRA_SHA256={digest}")
        assert 0 == pinned.returncode, pinned.stdout + pinned.stderr
        ran = _docker("run", "--rm", "--entrypoint", "abra", tag, "--version")
        assert (0, "true") == (ran.returncode, ran.stdout.split()[0]), ran.stderr
    finally:
        _docker("image", "rm", tag)


@pytest.mark.docker
def test_bad_input_is_exit_2_without_a_traceback(plugin_image: PluginImage) -> None:
    """The entrypoint refuses a bad build parameter the way ``cc-ci run`` does on the host."""
    done = _docker("run", "--rm", "--env", "RECIPE=../x", plugin_image.tag)
    assert (2, False) == (done.returncode, "Traceback" in done.stderr), done.stderr
    assert "cc-ci: RECIPE: invalid recipe '../x'" in done.stderr


@dataclass(frozen=True)
class DroneStep:
    """The plugin step as Drone starts it: ``docker run`` arguments, and the host dirs it mounts."""

    argv: list[str]  # ``docker run …`` up to the image
    name: str  # the container's
    host: dict[str, Path]  # agent, abra, runs, apps, src (the workspace), state (the agent's)
    agent: AgentClient

    def stack_objects(self, client: docker.DockerClient, log: str) -> list[str]:
        """Return what is left on the engine of the cold app the run's log names."""
        logged = COLD_APP_LINE.search(log)
        assert logged is not None, log
        return engine_objects(client, stack_name(logged[1]))


@pytest.fixture
def drone_step(
    plugin_image: PluginImage,
    socket_group: grp.struct_group,
    web_image: str,
    tmp_path: Path,
) -> Iterator[DroneStep]:
    """A Drone step of the example pipeline on the test recipe, a real host agent behind it.

    Configured only through the example's settings (``PLUGIN_*``, a few values replaced for this
    machine), the build parameter ``RECIPE`` and ``DRONE_*``; its volumes mounted where the example
    declares them, the CI repository's ``tests/`` in the workspace, the host's network. The
    container is removed at the end, whatever happened.
    """
    settings = plugin_step()["settings"]
    host = {what: tmp_path / what for what in ("agent", "abra", "runs", "apps", "src", "state")}
    for folder in host.values():
        folder.mkdir()
    for writable in ("runs", "apps", "abra"):
        os.chown(host[writable], PLUGIN_UID, socket_group.gr_gid)
    host["agent"].chmod(0o755)  # the socket itself is 0660, group ``socket_group``
    build_recipe_repo(RECIPES / RECIPE, host["abra"] / "recipes" / RECIPE)
    meta = host["src"] / "tests" / RECIPE
    meta.mkdir(parents=True)
    (meta / "recipe_meta.py").write_text(  # not enrolled: a run on latest promotes nothing
        'HEALTH_PATH = "/version"\nDEPLOY_TIMEOUT = 120\nMARKER_PATH = "/data/ccci-marker"\n'
        f'EXTRA_ENV = {{"WEB_IMAGE": "{web_image}", "HTTP_PORT": "{unused_port()}"}}\n'
    )
    (meta / "test_app.py").write_text(RECIPE_TEST)

    container = {
        "agent": agent_socket(settings).parent,
        "abra": Path(settings["abra_dir"]),
        "runs": Path(settings["runs_dir"]),
        "apps": Path(settings["apps_dir"]),
    }
    volumes = [f"{DOCKER_SOCKET}:{DOCKER_SOCKET}", f"{host['src']}:{WORKSPACE}"]
    volumes += [f"{host[what]}:{path}" for what, path in container.items()]
    env = settings_env(
        {
            "deployer": "swarm",  # no abra here
            "health_probe": "loopback",
            "domain": BASE_DOMAIN,
            "lease_wait_s": "0",
            "result_file": f"{settings['runs_dir']}/result.json",
        },
        secret="unused",
    )
    env |= {
        "RECIPE": RECIPE,
        "DRONE_BUILD_NUMBER": "7",
        "DRONE_BUILD_LINK": "https://drone.example/coop-cloud/ci/7",
        "DRONE_REPO": "coop-cloud/ci",
        "DRONE_BUILD_EVENT": "custom",
        "DRONE_WORKSPACE": str(WORKSPACE),
    }
    name = f"ccci-test-plugin-run-{uuid.uuid4().hex[:10]}"
    argv = ["run", "--name", name, "--network", "host", "--workdir", str(WORKSPACE)]
    for volume in volumes:
        argv += ["--volume", volume]
    for key, value in env.items():
        argv += ["--env", f"{key}={value}"]
    argv.append(plugin_image.tag)
    agent_env = {"CCCI_DOMAIN": BASE_DOMAIN, "CCCI_SOCKET_GROUP": socket_group.gr_name}
    try:
        with running_agent(host["agent"] / agent_socket(settings).name, host["state"], agent_env):
            yield DroneStep(argv, name, host, AgentClient(host["agent"] / "agent.sock"))
    finally:
        _docker("rm", "--force", name)


@pytest.mark.docker
def test_a_cold_run_in_the_image_as_drone_starts_it(
    drone_step: DroneStep, docker_client: docker.DockerClient
) -> None:
    """A cold run of the test recipe on latest passes inside the image and exits 0.

    Install, upgrade from the older release, the recipe's own test (a child pytest in the image)
    and teardown; the lease released, nothing left on the engine or in the mounted dirs.
    """
    done = _docker(*drone_step.argv, timeout=1800)
    said = done.stdout + done.stderr
    assert (0, False) == (done.returncode, "Traceback" in said), said
    assert "verdict   PASS" in done.stdout
    assert [] == drone_step.agent.get("/v1/leases")["leases"]
    result = json.loads((drone_step.host["runs"] / "result.json").read_text())
    assert ("pass", "cold", "7") == (result["verdict"], result["lane"], result["build"])
    assert ["lease", "install", "upgrade", "recipe tests", "teardown"] == [
        s["name"] for s in result["steps"] if s["status"] == "pass"
    ]
    assert ["result.json"] == sorted(p.name for p in drone_step.host["runs"].iterdir())
    assert [] == list(drone_step.host["apps"].iterdir())
    assert [] == drone_step.stack_objects(docker_client, done.stdout)


@pytest.mark.docker
def test_drones_cancel_tears_the_run_down(
    drone_step: DroneStep, docker_client: docker.DockerClient
) -> None:
    """``docker stop`` (Drone's cancel: SIGTERM to the entrypoint, PID 1) fails the run at once.

    The step it lands in fails, the teardown runs and leaves nothing, the lease is released and
    the container exits 1, well within the stop timeout (no SIGKILL).
    """
    detached = [*drone_step.argv[:1], "--detach", *drone_step.argv[1:]]
    assert 0 == _docker(*detached).returncode
    while True:  # until its cold app has a container (or the run ended: the assert below says)
        log = _docker("logs", drone_step.name).stdout
        state = docker_client.containers.get(drone_step.name).attrs["State"]
        if not state["Running"] or (COLD_APP_LINE.search(log) and "--- upgrade" in log):
            break
        time.sleep(0.2)
    assert state["Running"], log
    stopped = _docker("stop", "--time", "300", drone_step.name)
    assert 0 == stopped.returncode, stopped.stderr
    state = docker_client.containers.get(drone_step.name).attrs["State"]
    log = _docker("logs", drone_step.name).stdout
    assert (1, False) == (state["ExitCode"], state["OOMKilled"]), log
    assert ("cancelled by SIGTERM" in log, "verdict   FAIL" in log) == (True, True), log
    assert [] == drone_step.agent.get("/v1/leases")["leases"]
    assert [] == drone_step.stack_objects(docker_client, log), log
