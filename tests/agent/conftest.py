"""Fixtures of the agent tests: a state directory, canonical apps and their volumes, the app."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
from flask.testing import FlaskClient

from ccci_agent.app import create_app
from ccci_agent.canonical import Canonicals
from ccci_agent.errors import EngineError
from ccci_agent.services import AgentServices, build_services
from ccci_agent.settings import AgentSettings
from ccci_agent.store import StateDir
from ccci_core.docker_engine import STACK_LABEL, SdkDocker
from ccci_core.names import canonical_app

BASE_DOMAIN = "ci.example.net"
VOLUME = "data"


@pytest.fixture
def state(tmp_path: Path) -> StateDir:
    """An empty state directory."""
    state = StateDir(tmp_path / "state")
    state.ensure()
    return state


@dataclass
class App:
    """A canonical under test: its recipe, domain, stack and one real volume."""

    recipe: str
    domain: str
    stack: str
    volume: str
    mountpoint: Path


@pytest.fixture
def make_app(docker_client: docker.DockerClient) -> Iterator[Callable[[], App]]:
    """Make unique canonical apps with one labelled volume each; remove their stacks' volumes."""
    made: list[App] = []

    def make() -> App:
        recipe = f"t-{uuid.uuid4().hex[:8]}"
        name = canonical_app(recipe, BASE_DOMAIN, suffix=len(VOLUME))
        volume = docker_client.volumes.create(
            f"{name.stack}_{VOLUME}", labels={STACK_LABEL: name.stack}
        )
        made.append(
            App(recipe, name.domain, name.stack, volume.name, Path(volume.attrs["Mountpoint"]))
        )
        return made[-1]

    yield make
    for app in made:
        for container in docker_client.containers.list(
            all=True, filters={"label": f"ccci-test={app.recipe}"}
        ):
            container.remove(force=True)
        for leftover in docker_client.volumes.list(filters={"label": f"{STACK_LABEL}={app.stack}"}):
            leftover.remove(force=True)


@pytest.fixture
def app(make_app: Callable[[], App]) -> App:
    """A unique canonical app with one labelled volume; removes every volume of its stack."""
    return make_app()


@pytest.fixture
def canonicals(state: StateDir) -> Canonicals:
    """The registry on the real engine, with a short wait for lingering containers."""
    return Canonicals(
        state, SdkDocker.from_env(EngineError), BASE_DOMAIN, wait_timeout=1.0, poll_interval=0.1
    )


@pytest.fixture
def settings(tmp_path: Path) -> AgentSettings:
    """Agent settings on a temporary state directory, two runs at most."""
    return AgentSettings(state_dir=tmp_path / "state", domain=BASE_DOMAIN, max_tests=2)


@pytest.fixture
def services(settings: AgentSettings) -> AgentServices:
    """The agent's services on the real engine, their state directory created."""
    services = build_services(settings, SdkDocker.from_env(EngineError))
    services.state.ensure()
    return services


@pytest.fixture
def client(services: AgentServices) -> FlaskClient:
    """A test client of the agent app on ``services``; every peer is allowed (see test_server)."""
    return create_app(services=services, authorize=lambda environ: True).test_client()
