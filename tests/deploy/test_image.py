"""The plugin image (``Dockerfile``): built without a registry, it runs a cold run as Drone would.

The base is built here (``tests.images.ensure_python_base_image``: debootstrap, ``docker
import``, reused between runs by the hash of its recipe), the project is installed from a
wheelhouse built on the host, and the image runs against the host's engine and a real host agent,
configured only by what Drone would pass it: the example pipeline's settings as ``PLUGIN_*``, the
build parameters and ``DRONE_*``, its volumes and ``network_mode: host``.
"""

from __future__ import annotations

import grp
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from ccci_core.agent_client import AgentClient
from tests.agent_server import ROOT, running_agent
from tests.deploy.pipeline import DOCKER_SOCKET, WORKSPACE, agent_socket, plugin_step, settings_env
from tests.deploy_fixtures import BASE_DOMAIN, RECIPES, build_recipe_repo, unused_port
from tests.images import ensure_python_base_image
from tests.plugin.conftest import RECIPE, RECIPE_TEST

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
        "APT_PACKAGES=",  # the base has git and certificates
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
        yield PluginImage(tags[1], socket_group.gr_gid, seconds, size)
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


@pytest.mark.docker
def test_bad_input_is_exit_2_without_a_traceback(plugin_image: PluginImage) -> None:
    """The entrypoint refuses a bad build parameter the way ``cc-ci run`` does on the host."""
    done = _docker("run", "--rm", "--env", "RECIPE=../x", plugin_image.tag)
    assert (2, False) == (done.returncode, "Traceback" in done.stderr), done.stderr
    assert "cc-ci: RECIPE: invalid recipe '../x'" in done.stderr


@pytest.mark.docker
def test_a_cold_run_in_the_image_as_drone_starts_it(
    plugin_image: PluginImage,
    socket_group: grp.struct_group,
    web_image: str,
    tmp_path: Path,
) -> None:
    """A cold run of the test recipe on latest passes inside the image and exits 0.

    Configured only through the example pipeline's settings (``PLUGIN_*``), the build parameter
    ``RECIPE`` and ``DRONE_*``; its volumes mounted as the example declares them, the CI
    repository's ``tests/`` in the workspace, the host's network.
    """
    settings = plugin_step()["settings"]
    host = {what: tmp_path / what for what in ("agent", "abra", "runs", "apps", "src", "state")}
    for folder in host.values():
        folder.mkdir()
    for writable in ("runs", "apps", "abra"):
        os.chown(host[writable], PLUGIN_UID, socket_group.gr_gid)
    host["agent"].chmod(0o755)  # the socket itself is 0660, group ``socket_group``
    build_recipe_repo(RECIPES / RECIPE, host["abra"] / "recipes" / RECIPE)
    port = unused_port()
    meta = host["src"] / "tests" / RECIPE
    meta.mkdir(parents=True)
    (meta / "recipe_meta.py").write_text(  # not enrolled: a run on latest promotes nothing
        'HEALTH_PATH = "/version"\nDEPLOY_TIMEOUT = 120\nMARKER_PATH = "/data/ccci-marker"\n'
        f'EXTRA_ENV = {{"WEB_IMAGE": "{web_image}", "HTTP_PORT": "{port}"}}\n'
    )
    (meta / "test_app.py").write_text(RECIPE_TEST)

    container = {
        "docker": DOCKER_SOCKET,
        "agent": agent_socket(settings).parent,
        "abra": Path(settings["abra_dir"]),
        "runs": Path(settings["runs_dir"]),
        "apps": Path(settings["apps_dir"]),
    }
    volumes = [f"{DOCKER_SOCKET}:{DOCKER_SOCKET}"]
    volumes += [f"{host[what]}:{container[what]}" for what in ("agent", "abra", "runs", "apps")]
    volumes += [f"{host['src']}:{WORKSPACE}"]
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
    agent_env = {"CCCI_DOMAIN": BASE_DOMAIN, "CCCI_SOCKET_GROUP": socket_group.gr_name}
    socket = host["agent"] / agent_socket(settings).name
    try:
        with running_agent(socket, host["state"], agent_env):
            done = _docker(*argv, plugin_image.tag, timeout=1800)
            leases = AgentClient(socket).get("/v1/leases")["leases"]
    finally:
        _docker("rm", "--force", name)
    said = done.stdout + done.stderr
    assert 0 == done.returncode, said
    assert "Traceback" not in said
    assert "verdict   PASS" in done.stdout
    assert [] == leases
    result = (host["runs"] / "result.json").read_text()
    assert '"verdict": "pass"' in result
    assert ["result.json"] == sorted(p.name for p in host["runs"].iterdir())
    assert [] == list(host["apps"].iterdir())
