"""The Docker engine adapter: the few calls warmsnap and prune need, errors mapped to EngineError.

``docker`` is imported inside :meth:`DockerEngine.from_env` so the CLI can build its parser without
it. An app's volumes are those ``docker stack deploy`` labels
``com.docker.stack.namespace=<stack>``.

A container *holds* a volume when it mounts it by name (running or stopped: Swarm may restart it),
or when it bind-mounts, writable, a host path at, above or below the volume's mountpoint
(``-v /var/lib/docker/volumes/<v>/_data:/x``, or the whole volumes directory). A read-only bind
cannot change the data, so it does not hold it.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

from .errors import EngineError

STACK_LABEL = "com.docker.stack.namespace"
_VOLUME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")
_WATCH_FILTERS = {"type": ["volume", "container"], "event": ["mount", "start"]}

T = TypeVar("T")


@dataclass(frozen=True)
class Volume:
    """A Docker volume and where the local driver keeps its files."""

    name: str
    mountpoint: Path
    driver: str = "local"
    options: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def stack(self) -> str | None:
        """Return the stack ``docker stack deploy`` labelled this volume with, if any."""
        return self.labels.get(STACK_LABEL)


@dataclass
class MountWatch:
    """What the engine saw mount a watched volume while the watch was open."""

    mounts: list[str] = field(default_factory=list)

    @property
    def touched(self) -> bool:
        """Return whether anything may have mounted a watched volume."""
        return bool(self.mounts)


class Engine(Protocol):
    """What the agent asks of Docker."""

    def stack_volumes(self, stack: str) -> list[Volume]:
        """Return the volumes labelled with ``stack``, sorted by name."""

    def volume(self, name: str) -> Volume | None:
        """Return the volume called ``name``, or None when there is none."""

    def stack_services(self, stack: str) -> list[str]:
        """Return the names of the services of ``stack``."""

    def holders(self, volumes: Sequence[Volume]) -> dict[str, list[str]]:
        """Return, per volume that has any, the containers (running or stopped) holding it."""

    def watch_mounts(self, volumes: Sequence[Volume]) -> Any:
        """Return a context manager yielding a :class:`MountWatch` of ``volumes``."""

    def create_volume(self, name: str, stack: str) -> Volume:
        """Create a local volume labelled as ``docker stack deploy`` would."""

    def remove_volume(self, name: str) -> None:
        """Remove a volume."""


def check_volume_name(name: object) -> str:
    """Return ``name`` if it is safe as a file name and a Docker volume name."""
    if not isinstance(name, str) or not _VOLUME_RE.fullmatch(name):
        raise EngineError(f"unexpected volume name {name!r}")
    return name


def _nested(a: str, b: str) -> bool:
    a, b = a.rstrip("/") or "/", b.rstrip("/") or "/"
    return a == b or b.startswith(a.rstrip("/") + "/") or a.startswith(b.rstrip("/") + "/")


def _identities(path: str) -> list[tuple[int, int]]:
    """Return ``(st_dev, st_ino)`` of ``path`` and each directory above it ([] if it is gone)."""
    found: list[tuple[int, int]] = []
    for folder in (Path(path), *Path(path).parents):
        try:
            st = folder.stat()
        except OSError:
            if not found:
                return []  # the path itself is gone: an ancestor's identity would mislead
            continue
        found.append((st.st_dev, st.st_ino))
    return found


def paths_overlap(a: str, b: str) -> bool:
    """Return whether one host path is the other or lies inside it, however it is spelled.

    Spelled paths and symlink-resolved ones are compared, then the directories themselves (device
    and inode), which also sees the same directory reached through another bind mount of it.
    """
    real_a, real_b = os.path.realpath(a), os.path.realpath(b)
    if _nested(a, b) or _nested(real_a, real_b):
        return True
    chain_a, chain_b = _identities(real_a), _identities(real_b)
    return bool(chain_a and chain_b) and (chain_a[0] in chain_b or chain_b[0] in chain_a)


def mount_holds(mount: dict[str, Any], volume: Volume) -> bool:
    """Return whether one entry of a container's ``Mounts`` holds ``volume``."""
    if mount.get("Type") == "volume":
        return bool(mount.get("Name") == volume.name)
    if mount.get("Type") == "bind" and mount.get("RW", True):
        source = str(mount.get("Source") or "")
        return source.startswith("/") and paths_overlap(source, str(volume.mountpoint))
    return False


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
        return Volume(
            check_volume_name(attrs["Name"]),
            Path(attrs["Mountpoint"]),
            driver=str(attrs.get("Driver") or ""),
            options=dict(attrs.get("Options") or {}),
            labels=dict(attrs.get("Labels") or {}),
        )

    def stack_volumes(self, stack: str) -> list[Volume]:
        """Return the volumes labelled with ``stack``, sorted by name."""
        found = self._call(
            "volume ls",
            lambda: self._client.volumes.list(filters={"label": f"{STACK_LABEL}={stack}"}),
        )
        return sorted((self._volume(v.attrs) for v in found), key=lambda v: v.name)

    def volume(self, name: str) -> Volume | None:
        """Return the volume called ``name``, or None when there is none."""
        import docker

        check_volume_name(name)
        try:
            found = self._call("volume inspect", lambda: self._client.volumes.get(name))
        except EngineError as exc:
            if isinstance(exc.__cause__, docker.errors.NotFound):
                return None
            raise
        return self._volume(found.attrs)

    def stack_services(self, stack: str) -> list[str]:
        """Return the names of the services of ``stack``."""
        found = self._call(
            "service ls",
            lambda: self._client.services.list(filters={"label": f"{STACK_LABEL}={stack}"}),
        )
        return sorted(s.name for s in found)

    def _containers(self) -> list[dict[str, Any]]:
        # The list endpoint already carries every container's mounts: no inspect per container.
        found = self._call("ps", lambda: self._client.api.containers(all=True))
        return list(found)

    def holders(self, volumes: Sequence[Volume]) -> dict[str, list[str]]:
        """Return, per volume that has any, the containers (running or stopped) holding it.

        One container listing serves every volume (this runs at every poll of a wait).
        """
        containers = self._containers()
        found = {
            volume.name: sorted(
                _container_name(c)
                for c in containers
                if any(mount_holds(m, volume) for m in c.get("Mounts") or [])
            )
            for volume in volumes
        }
        return {name: users for name, users in found.items() if users}

    @contextmanager
    def watch_mounts(self, volumes: Sequence[Volume]) -> Iterator[MountWatch]:
        """Yield a watch that records every mount of ``volumes`` until the block ends.

        The engine's event stream is read from a thread for the whole window (its replay buffer
        is short), and replayed once more at the end for the last instants. Named mounts are
        volume ``mount`` events; a bind mount shows only as a container ``start``, so a started
        container is inspected, and one already gone counts as a mount (it cannot be ruled out).
        """
        since = f"{time.time():.9f}"
        watch = MountWatch()
        seen: list[dict[str, Any]] = []
        stream = self._call(
            "events",
            lambda: self._client.api.events(since=since, filters=_WATCH_FILTERS, decode=True),
        )
        reader = threading.Thread(target=_drain, args=(stream, seen), daemon=True)
        reader.start()
        try:
            yield watch
        finally:
            until = f"{time.time():.9f}"
            tail = self._call(
                "events",
                lambda: list(
                    self._client.api.events(
                        since=since, until=until, filters=_WATCH_FILTERS, decode=True
                    )
                ),
            )
            stream.close()
            reader.join(timeout=5)
        watch.mounts = self._mounts_of(volumes, [*seen, *tail])

    def _mounts_of(self, volumes: Sequence[Volume], events: Iterable[dict[str, Any]]) -> list[str]:
        names = {v.name for v in volumes}
        found: set[str] = set()
        started: set[str] = set()
        for event in events:
            actor = event.get("Actor") or {}
            attributes = actor.get("Attributes") or {}
            if event.get("Type") == "volume" and actor.get("ID") in names:
                found.add(f"{attributes.get('container', '?')[:12]} mounted {actor['ID']}")
            elif event.get("Type") == "container" and actor.get("ID"):
                started.add(str(actor["ID"]))
        for ident in sorted(started):
            mounts = self._container_mounts(ident)
            if mounts is None:
                found.add(f"{ident[:12]} started and is gone (its mounts are unknown)")
                continue
            for volume in volumes:
                if any(mount_holds(m, volume) for m in mounts):
                    found.add(f"{ident[:12]} mounted {volume.name}")
        return sorted(found)

    def _container_mounts(self, ident: str) -> list[dict[str, Any]] | None:
        """Return a container's mounts, or None when it no longer exists."""
        import docker

        try:
            attrs = self._call("inspect", partial(self._client.api.inspect_container, ident))
        except EngineError as exc:
            if isinstance(exc.__cause__, docker.errors.NotFound):
                return None
            raise
        return list(attrs.get("Mounts") or [])

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


def _container_name(container: dict[str, Any]) -> str:
    names = container.get("Names") or [container.get("Id", "?")[:12]]
    return str(names[0]).lstrip("/")


def _drain(stream: Any, into: list[dict[str, Any]]) -> None:
    """Collect events until the stream is closed (its end or a closed socket end the loop)."""
    try:
        for event in stream:
            into.append(event)
    except Exception:  # noqa: S110 - a closed stream may raise anything; the replay covers
        pass
