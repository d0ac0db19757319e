"""Fixtures shared by every test: the Docker engine and the locally built base image."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from tests.images import ensure_busybox_image

# Recipe repositories, unique apps, the swarm deployer: shared by every suite that deploys.
pytest_plugins = ["tests.deploy_fixtures"]


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """A client of the real engine; CI starts it in swarm mode, so its absence is an error."""
    client = docker.from_env()
    info = client.info()
    assert "active" == info["Swarm"]["LocalNodeState"], "the engine must be in swarm mode"
    yield client
    client.close()


@pytest.fixture(scope="session")
def busybox_image(docker_client: docker.DockerClient) -> str:
    """The tag of the busybox base image, imported once per session."""
    return ensure_busybox_image()
