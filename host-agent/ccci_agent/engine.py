"""The Docker engine adapter: the few calls warmsnap and prune need, errors mapped to EngineError.

``docker`` is imported inside :meth:`DockerEngine.from_env` so the CLI can build its parser without
it. An app's volumes are those ``docker stack deploy`` labels
``com.docker.stack.namespace=<stack>``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from .errors import EngineError

STACK_LABEL = "com.docker.stack.namespace"
_VOLUME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")

T = TypeVar("T")


@dataclass(frozen=True)
class Volume:
    """A Docker volume and where the local driver keeps its files."""

    name: str
    mountpoint: Path


class Engine(Protocol):
    """What the agent asks of Docker."""

    def stack_volumes(self, stack: str) -> list[Volume]:
        """Return the volumes labelled with ``stack``, sorted by name."""

    def stack_services(self, stack: str) -> list[str]:
        """Return the names of the services of ``stack``."""

    def volume_holders(self, volume: str) -> list[str]:
        """Return the containers (running or stopped) that reference ``volume``."""

    def create_volume(self, name: str, stack: str) -> Volume:
        """Create a local volume labelled as ``docker stack deploy`` would."""

    def remove_volume(self, name: str) -> None:
        """Remove a volume."""


def check_volume_name(name: object) -> str:
    """Return ``name`` if it is safe as a file name and a Docker volume name."""
    if not isinstance(name, str) or not _VOLUME_RE.fullmatch(name):
        raise EngineError(f"unexpected volume name {name!r}")
    return name


class DockerEngine:
    """The real engine through docker-py."""

    def __init__(self, client: Any) -> None:
        self._client = client

    @classmethod
    def from_env(cls) -> DockerEngine:
        """Connect to the engine named by ``DOCKER_HOST`` (default: the local socket)."""
        import docker

        try:
            return cls(docker.from_env())
        except docker.errors.DockerException as exc:
            raise EngineError(f"cannot reach the Docker engine: {exc}") from exc

    def _call(self, what: str, call: Callable[[], T]) -> T:
        import docker
        import requests

        try:
            return call()
        # docker-py lets the transport's errors through (a stopped daemon is a ConnectionError).
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise EngineError(f"docker {what} failed: {exc}") from exc

    def _volume(self, attrs: dict[str, Any]) -> Volume:
        return Volume(check_volume_name(attrs["Name"]), Path(attrs["Mountpoint"]))

    def stack_volumes(self, stack: str) -> list[Volume]:
        """Return the volumes labelled with ``stack``, sorted by name."""
        found = self._call(
            "volume ls",
            lambda: self._client.volumes.list(filters={"label": f"{STACK_LABEL}={stack}"}),
        )
        return sorted((self._volume(v.attrs) for v in found), key=lambda v: v.name)

    def stack_services(self, stack: str) -> list[str]:
        """Return the names of the services of ``stack``."""
        found = self._call(
            "service ls",
            lambda: self._client.services.list(filters={"label": f"{STACK_LABEL}={stack}"}),
        )
        return sorted(s.name for s in found)

    def volume_holders(self, volume: str) -> list[str]:
        """Return the containers (running or stopped) that reference ``volume``."""
        found = self._call(
            "ps", lambda: self._client.containers.list(all=True, filters={"volume": volume})
        )
        return sorted(c.name for c in found)

    def create_volume(self, name: str, stack: str) -> Volume:
        """Create a local volume labelled as ``docker stack deploy`` would."""
        created = self._call(
            "volume create",
            lambda: self._client.volumes.create(
                check_volume_name(name), driver="local", labels={STACK_LABEL: stack}
            ),
        )
        return self._volume(created.attrs)

    def remove_volume(self, name: str) -> None:
        """Remove a volume."""
        self._call("volume rm", lambda: self._client.volumes.get(name).remove())
