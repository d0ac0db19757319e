"""The Docker adapter maps every failure of the engine to EngineError."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import docker
import pytest

from ccci_agent.engine import DockerEngine, Engine
from ccci_agent.errors import EngineError


@pytest.fixture
def dead_engine(tmp_path: Path) -> DockerEngine:
    """An adapter whose daemon socket does not exist."""
    client = docker.DockerClient(base_url=f"unix://{tmp_path}/none.sock", version="1.41")
    return DockerEngine(client)


@pytest.mark.parametrize(
    "call",
    [
        lambda e: e.stack_volumes("s"),
        lambda e: e.stack_services("s"),
        lambda e: e.volume_holders("v"),
        lambda e: e.create_volume("v", "s"),
        lambda e: e.remove_volume("v"),
    ],
)
def test_unreachable_daemon_is_an_engine_error(
    dead_engine: DockerEngine, call: Callable[[Engine], object]
) -> None:
    """A stopped daemon is reported as EngineError, never as a requests exception."""
    with pytest.raises(EngineError):
        call(dead_engine)


def test_from_env_with_a_dead_daemon_is_an_engine_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connecting to a socket nobody serves fails with EngineError."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    with pytest.raises(EngineError):
        DockerEngine.from_env()


@pytest.mark.docker
def test_missing_volume_is_an_engine_error() -> None:
    """Removing a volume that does not exist is an EngineError from the real engine."""
    with pytest.raises(EngineError, match="volume rm"):
        DockerEngine.from_env().remove_volume("ccci-test-no-such-volume-4f1c")
