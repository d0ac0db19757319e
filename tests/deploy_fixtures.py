"""Fixtures for deploying the test recipes (``tests/recipes``) on the real engine (a pytest plugin).

Later suites reuse these: ``recipes_dir`` (real git repositories, one tag per release),
``catalog``, ``tests_dir`` (a ``CCCI_TESTS_DIR``), ``web_image``, ``make_app`` (unique cold apps,
torn down after the test whatever happened), ``swarm_deployer`` and ``free_port``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from ccci_core.catalog import Catalog
from ccci_core.deploy.errors import DeployError
from ccci_core.deploy.stack import Stack
from ccci_core.deploy.swarm import SwarmDeployer
from ccci_core.docker_engine import SECRET_OWNER, SdkDocker
from ccci_core.names import AppName, cold_app
from ccci_core.versions import Version
from tests.gitrepo import git, init

HERE = Path(__file__).resolve().parent
RECIPES = HERE / "recipes"
TESTS_DIR = HERE / "recipe-tests"
# Unique per test process: several suites may share one engine (developers, worktrees).
BASE_DOMAIN = f"t{uuid.uuid4().hex[:4]}.ccci.example"
SUFFIX = len("api_key_v1")  # the longest object suffix of the test recipes


def build_recipe_repo(source: Path, dest: Path) -> list[str]:
    """Commit each ``source/<version>/`` tree into a git repository at ``dest``; tag each."""
    init(dest)
    tags = sorted((p.name for p in source.iterdir() if p.is_dir()), key=Version.parse)
    for tag in tags:
        for old in dest.iterdir():
            if old.name != ".git":
                shutil.rmtree(old) if old.is_dir() else old.unlink()
        # copy, not copy2: a kept mtime and size would hide the change from git
        shutil.copytree(source / tag, dest, dirs_exist_ok=True, copy_function=shutil.copy)
        git(dest, "add", "--all")
        git(dest, "commit", "--quiet", "-m", f"release {tag}")
        git(dest, "tag", tag)
    return tags


def unused_port() -> int:
    """Return a TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def recipes_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A recipes directory holding every test recipe as a git repository."""
    root = tmp_path_factory.mktemp("recipes")
    for source in sorted(p for p in RECIPES.iterdir() if p.is_dir()):
        build_recipe_repo(source, root / source.name)
    return root


@pytest.fixture
def catalog(recipes_dir: Path) -> Catalog:
    """A catalog of the test recipes."""
    return Catalog(recipes_dir)


@pytest.fixture
def tests_dir() -> Path:
    """A CCCI_TESTS_DIR with the test recipes' ``recipe_meta.py``."""
    return TESTS_DIR


@pytest.fixture(scope="session")
def web_image(busybox_image: str) -> Iterator[str]:
    """An image built FROM the busybox image for this session; removed at the end."""
    tag = f"ccci-test/web:{uuid.uuid4().hex[:10]}"
    dockerfile = f"FROM {busybox_image}\nRUN echo ok > /www/index.html\n"
    subprocess.run(
        ["docker", "build", "--quiet", "--tag", tag, "-"],
        input=dockerfile.encode(),
        check=True,
        capture_output=True,
        timeout=300,
    )
    yield tag
    subprocess.run(["docker", "image", "rm", tag], check=False, capture_output=True)


@pytest.fixture
def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    return unused_port()


def stacks(client: docker.DockerClient) -> SdkDocker:
    """Return the Docker adapter over ``client``, as the deployers and the plugin use it."""
    return SdkDocker(client, DeployError)


def _reap(client: docker.DockerClient, stack_name: str) -> None:
    """Remove whatever a test left of ``stack_name`` (stack, containers, volumes, secrets)."""
    subprocess.run(["docker", "stack", "rm", stack_name], check=False, capture_output=True)
    stack = Stack(stacks(client), stack_name)
    for _ in range(120):
        if stack.gone():
            break
        time.sleep(0.5)
    for volume in stack.volumes():
        client.volumes.get(volume).remove(force=True)
    for secret in client.secrets.list(filters={"label": f"{SECRET_OWNER}={stack_name}"}):
        secret.remove()


@pytest.fixture
def make_app(docker_client: docker.DockerClient) -> Iterator[Callable[..., AppName]]:
    """Return a factory of unique cold app names; everything of them is reaped after the test."""
    made: list[AppName] = []

    def make(recipe: str, suffix: int = SUFFIX) -> AppName:
        app = cold_app(recipe, BASE_DOMAIN, uuid.uuid4().hex[:6], suffix=suffix)
        made.append(app)
        return app

    yield make
    for app in made:
        _reap(docker_client, app.stack)


@pytest.fixture
def swarm_deployer(docker_client: docker.DockerClient, tmp_path: Path) -> SwarmDeployer:
    """A swarm deployer keeping app envs under the test's tmp directory."""
    return SwarmDeployer(stacks(docker_client), tmp_path / "apps")
