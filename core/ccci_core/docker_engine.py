"""The one adapter to the Docker engine: small protocols, small typed values, one error mapping.

Every component talks to Docker through :class:`SdkDocker` (docker-py underneath), and its
decision logic through one of three protocols, so an in-memory fake can stand in for the engine:

- :class:`DockerStacks` — services, tasks, containers and the named objects of a stack: what the
  deployers, the health check and the plugin ask;
- :class:`DockerVolumes` — volumes, who holds them, and who mounts them while we work: what the
  host agent asks;
- :class:`DockerPrune` — stopped containers, dangling images and build cache: what ``cc-ci prune``
  lists and removes, never younger than :data:`PRUNE_AGE` (the engine's ``until`` filter, set here
  and nowhere else), never a tagged image, a volume or a network.

Every failure of docker-py (a ``DockerException``, or the transport's ``requests`` errors that it
lets through when the daemon goes away) becomes the error class the component passes in
(``DeployError`` in the core, ``EngineError`` in the agent): one mapping, each component its own
exception root. ``docker`` is imported inside the calls so the CLIs build their parsers without it.

A container *holds* a volume when it mounts it by name (running or stopped: Swarm may restart it),
or when it bind-mounts, writable, a host path at, above or below the volume's mountpoint
(``-v /var/lib/docker/volumes/<v>/_data:/x``, or the whole volumes directory). A read-only bind
cannot change the data, so it does not hold it.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from .errors import CcciError

STACK_LABEL = "com.docker.stack.namespace"  # set by `docker stack deploy` on services, volumes...
SERVICE_LABEL = "com.docker.swarm.service.name"  # set by Swarm on a service's task containers
SECRET_OWNER = "ccci.stack"  # noqa: S105 - a label name, not a password; set by the swarm deployer on the secrets it generates
DEFAULT_STOP_GRACE = 10.0  # s: Swarm's stop grace period when the spec sets none
DONE = frozenset({"exited", "dead", "created"})  # container states that hold no process
ObjectKind = Literal["volume", "secret", "config", "network"]
_VOLUME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,254}")
_WATCH_FILTERS = {"type": ["volume", "container"], "event": ["mount", "start"]}
PRUNE_AGE = timedelta(hours=24)  # nothing younger is ever pruned (the design's invariant 9)
_PRUNE_UNTIL = f"{PRUNE_AGE // timedelta(hours=1)}h"  # PRUNE_AGE as a Go duration: "24h"

T = TypeVar("T")
ErrorFactory = Callable[[str], CcciError]


# -- typed values ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Port:
    """A published port of a service."""

    target: int
    published: int
    mode: str  # "ingress" or "host"


@dataclass(frozen=True)
class Service:
    """A Swarm service as the decisions need it."""

    id: str
    name: str
    labels: Mapping[str, str]
    image: str
    replicas: int | None  # None: a global service (one task per node)
    spec: str  # the current container spec, canonical JSON: equal to Task.spec on the current spec
    update_state: str | None = None
    update_message: str = ""
    ports: tuple[Port, ...] = ()
    stop_grace: float = DEFAULT_STOP_GRACE  # s: what Swarm gives a task between signal and kill

    @property
    def stack(self) -> str | None:
        """Return the stack ``docker stack deploy`` labelled the service with, if any."""
        return self.labels.get(STACK_LABEL)


@dataclass(frozen=True)
class Task:
    """One task of a service, history included."""

    id: str
    desired_state: str
    state: str
    timestamp: datetime
    spec: str  # canonical JSON of the container spec it runs
    error: str = ""  # Swarm's error, else its message, else the state
    exit_code: int | None = None
    container_id: str | None = None


@dataclass(frozen=True)
class Health:
    """A container's healthcheck state and its last probe."""

    status: str  # "starting", "healthy" or "unhealthy"
    last_exit: int | None = None
    last_output: str = ""


@dataclass(frozen=True)
class Container:
    """A container, running or not."""

    id: str
    name: str
    state: str  # "running", "exited", ...
    image: str
    health: Health | None = None  # None: the image has no healthcheck
    service: str | None = None  # the Swarm service of a task's container (SERVICE_LABEL)

    @property
    def done(self) -> bool:
        """Return whether the container holds no process."""
        return self.state in DONE


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


@dataclass(frozen=True)
class Reclaimable:
    """A stopped container or a dangling image: what a prune removes once it is old enough."""

    id: str
    name: str  # a container's name; an image's short id
    # What the engine's ``until`` compares: when it was created (an image: its config's date),
    # not when it stopped or lost its tag.
    created: datetime
    size: int  # bytes: a container's writable layer; an image's, shared layers included
    used_by: tuple[str, ...] = ()  # an image: the containers (running or not) made from it


@dataclass(frozen=True)
class Pruned:
    """What one prune removed (ids) and the space the engine says it freed."""

    removed: tuple[str, ...] = ()
    space: int = 0


def timestamp(text: str | None) -> datetime:
    """Parse Docker's RFC 3339 timestamps (nanoseconds, ``Z``); missing is the distant past."""
    if not text:
        return datetime.min.replace(tzinfo=UTC)
    head, _, frac = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00")


def spec_key(container_spec: Mapping[str, Any] | None) -> str:
    """Return a container spec as canonical JSON, so equal specs compare equal."""
    return json.dumps(container_spec or {}, sort_keys=True)


# -- protocols -------------------------------------------------------------------------------


class DockerStacks(Protocol):
    """What the deployers, the health check and the plugin ask of Docker."""

    def services(self, stack: str | None = None) -> list[Service]:
        """Return the services of ``stack`` (every service when None), sorted by name."""

    def tasks(self, service: Service) -> list[Task]:
        """Return every task of ``service``, history included."""

    def containers(self, labels: Mapping[str, str], *, stopped: bool = True) -> list[Container]:
        """Return the containers carrying every one of ``labels`` (running ones only if not
        ``stopped``); one removed while listing is not there."""

    def container(self, ident: str) -> Container | None:
        """Return a container by id or name, or None once it is gone."""

    def remove_container(self, ident: str) -> bool:
        """Remove a stopped container; return False if a removal is already under way."""

    def stop_container(self, ident: str, grace: float) -> None:
        """Stop a container as Swarm stops a task: its stop signal, ``grace`` seconds, then kill
        (one already stopped or gone is fine)."""

    def exec(self, ident: str, argv: Sequence[str]) -> tuple[int, str]:
        """Run ``argv`` in a running container; return its exit code and output."""

    def objects(
        self, kind: ObjectKind, *, stack: str | None = None, label: str | None = None
    ) -> list[str]:
        """Return the names of ``kind`` objects labelled with ``stack`` or carrying ``label``
        (``key=value``), sorted."""

    def named(self, kind: ObjectKind, prefix: str) -> list[str]:
        """Return the names of ``kind`` objects starting with ``prefix``, sorted."""

    def remove(self, kind: ObjectKind, name: str) -> None:
        """Remove a volume, secret, config or network."""

    def create_secret(self, name: str, data: bytes, labels: Mapping[str, str]) -> None:
        """Create a secret."""

    def images_in_use(self) -> set[str]:
        """Return the images some container or service uses."""

    def remove_image(self, ref: str) -> bool:
        """Remove an image by reference; return False when there is no such image."""


class DockerVolumes(Protocol):
    """What the host agent asks of Docker."""

    def stack_volumes(self, stack: str) -> list[Volume]:
        """Return the volumes labelled with ``stack``, sorted by name."""

    def volume(self, name: str) -> Volume | None:
        """Return the volume called ``name``, or None when there is none."""

    def stack_services(self, stack: str) -> list[str]:
        """Return the names of the services of ``stack``."""

    def holders(self, volumes: Sequence[Volume]) -> dict[str, list[str]]:
        """Return, per volume that has any, the containers (running or stopped) holding it."""

    def watch_mounts(self, volumes: Sequence[Volume]) -> AbstractContextManager[MountWatch]:
        """Return a context manager yielding a :class:`MountWatch` of ``volumes``."""

    def create_volume(self, name: str, stack: str) -> Volume:
        """Create a local volume labelled as ``docker stack deploy`` would."""

    def remove_volume(self, name: str) -> None:
        """Remove a volume."""


class DockerPrune(Protocol):
    """What ``cc-ci prune`` asks of Docker: what is stopped or dangling, and to prune it.

    Each prune removes only what was created (build cache: last used) over :data:`PRUNE_AGE` ago.
    There is no way here to prune a tagged image, a volume or a network.
    """

    def stopped_containers(self) -> list[Reclaimable]:
        """Return the containers that hold no process (created, exited, dead), oldest first."""

    def dangling_images(self) -> list[Reclaimable]:
        """Return the untagged images no other image builds on, oldest first, with their users."""

    def prune_containers(self) -> Pruned:
        """Remove the stopped containers created over PRUNE_AGE ago."""

    def prune_images(self) -> Pruned:
        """Remove the dangling images created over PRUNE_AGE ago that no container uses."""

    def prune_build_cache(self) -> Pruned:
        """Remove the build cache unused for PRUNE_AGE (not ``--all``: dangling records only)."""


# -- holders ---------------------------------------------------------------------------------


def check_volume_name(name: object, error: ErrorFactory) -> str:
    """Return ``name`` if it is safe as a file name and a Docker volume name, else raise."""
    if not isinstance(name, str) or not _VOLUME_RE.fullmatch(name):
        raise error(f"unexpected volume name {name!r}")
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


def mount_holds(mount: Mapping[str, Any], volume: Volume) -> bool:
    """Return whether one entry of a container's ``Mounts`` holds ``volume``."""
    if mount.get("Type") == "volume":
        return bool(mount.get("Name") == volume.name)
    if mount.get("Type") == "bind" and mount.get("RW", True):
        source = str(mount.get("Source") or "")
        return source.startswith("/") and paths_overlap(source, str(volume.mountpoint))
    return False


# -- the adapter -----------------------------------------------------------------------------


class SdkDocker:
    """The real engine through docker-py; implements :class:`DockerStacks`,
    :class:`DockerVolumes` and :class:`DockerPrune`, raising ``error`` for every failure."""

    def __init__(self, client: Any, error: ErrorFactory) -> None:
        self._client = client
        self._error = error

    @classmethod
    def from_env(cls, error: ErrorFactory, *, timeout: int = 60) -> SdkDocker:
        """Connect to the engine named by ``DOCKER_HOST`` (default: the local socket); each call
        may take ``timeout`` seconds (docker-py's default, 60; a prune may need more)."""
        import docker

        try:
            return cls(docker.from_env(timeout=timeout), error)
        except docker.errors.DockerException as exc:
            raise error(f"cannot reach the Docker engine: {exc}") from exc

    @contextmanager
    def _mapped(self, what: str) -> Iterator[None]:
        """Map every docker-py failure inside to the component's error (the one mapping)."""
        import docker
        import requests

        try:
            yield
        # docker-py lets the transport's errors through: a daemon gone away is a ConnectionError.
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise self._error(f"docker: {what} failed: {exc}") from exc

    def _call(self, what: str, call: Callable[[], T]) -> T:
        with self._mapped(what):
            return call()

    def _found(self, what: str, call: Callable[[], T]) -> T | None:
        """Return ``call()``, or None when the engine answers 404."""
        import docker

        try:
            with self._mapped(what):
                return call()
        except CcciError as exc:
            if isinstance(exc.__cause__, docker.errors.NotFound):
                return None
            raise

    # -- stacks --------------------------------------------------------------------------------

    def services(self, stack: str | None = None) -> list[Service]:
        """Return the services of ``stack`` (every service when None), sorted by name."""
        filters = {"label": f"{STACK_LABEL}={stack}"} if stack is not None else None
        found = self._call("listing services", lambda: self._client.api.services(filters=filters))
        return sorted((_service(attrs) for attrs in found), key=lambda s: s.name)

    def tasks(self, service: Service) -> list[Task]:
        """Return every task of ``service``, history included."""
        found = self._call(
            f"listing tasks of {service.name}",
            lambda: self._client.api.tasks(filters={"service": service.id}),
        )
        return [_task(t) for t in found]

    def containers(self, labels: Mapping[str, str], *, stopped: bool = True) -> list[Container]:
        """Return the containers carrying every one of ``labels``; one removed meanwhile is not."""
        filters = {"label": [f"{key}={value}" for key, value in labels.items()]}
        found = self._call(
            "listing containers",
            lambda: self._client.api.containers(all=stopped, filters=filters),
        )
        listed = (self.container(str(c["Id"])) for c in found)
        return [c for c in listed if c is not None]

    def container(self, ident: str) -> Container | None:
        """Return a container by id or name, or None once it is gone."""
        attrs = self._found(
            f"inspecting container {ident}", lambda: self._client.api.inspect_container(ident)
        )
        return None if attrs is None else _container(attrs)

    def remove_container(self, ident: str) -> bool:
        """Remove a stopped container; return False if a removal is already under way."""
        import docker

        try:
            with self._mapped(f"removing container {ident}"):
                self._client.api.remove_container(ident)
        except CcciError as exc:
            if isinstance(exc.__cause__, docker.errors.NotFound):
                return True  # Swarm was quicker
            if isinstance(exc.__cause__, docker.errors.APIError):
                return False  # a removal already in progress
            raise
        return True

    def stop_container(self, ident: str, grace: float) -> None:
        """Stop a container: its stop signal, ``grace`` seconds, then kill; gone is fine."""
        seconds = max(0, math.ceil(grace))  # the API counts whole seconds
        self._found(
            f"stopping container {ident}",
            # The SDK adds the grace to its HTTP timeout: the call returns once it stopped.
            lambda: self._client.api.stop(ident, timeout=seconds),
        )

    def exec(self, ident: str, argv: Sequence[str]) -> tuple[int, str]:
        """Run ``argv`` in a running container; return its exit code and output."""

        def run() -> tuple[int, str]:
            created = self._client.api.exec_create(ident, list(argv))
            output = self._client.api.exec_start(created["Id"])
            code = self._client.api.exec_inspect(created["Id"]).get("ExitCode")
            return int(code if code is not None else -1), bytes(output).decode("utf-8", "replace")

        return self._call(f"exec in {ident}", run)

    def _collection(self, kind: ObjectKind) -> Any:
        return getattr(self._client, f"{kind}s")

    def objects(
        self, kind: ObjectKind, *, stack: str | None = None, label: str | None = None
    ) -> list[str]:
        """Return the names of ``kind`` objects labelled with ``stack`` or carrying ``label``."""
        wanted = [f"{STACK_LABEL}={stack}"] if stack is not None else []
        wanted += [label] if label is not None else []
        found = self._call(
            f"listing {kind}s",
            lambda: self._collection(kind).list(filters={"label": wanted}),
        )
        return sorted(str(item.name) for item in found)

    def named(self, kind: ObjectKind, prefix: str) -> list[str]:
        """Return the names of ``kind`` objects starting with ``prefix`` (the filter is a
        substring match: check the start)."""
        found = self._call(
            f"listing {kind}s", lambda: self._collection(kind).list(filters={"name": prefix})
        )
        return sorted(str(i.name) for i in found if str(i.name).startswith(prefix))

    def remove(self, kind: ObjectKind, name: str) -> None:
        """Remove a volume, secret, config or network."""
        self._call(f"removing {kind} {name}", lambda: self._collection(kind).get(name).remove())

    def create_secret(self, name: str, data: bytes, labels: Mapping[str, str]) -> None:
        """Create a secret."""
        self._call(
            f"creating secret {name}",
            lambda: self._client.secrets.create(name=name, data=data, labels=dict(labels)),
        )

    def images_in_use(self) -> set[str]:
        """Return the images some container (running or not) or service uses."""
        found = self._call(
            "listing what uses images", lambda: self._client.api.containers(all=True)
        )
        return {str(c.get("Image")) for c in found} | {s.image for s in self.services()}

    def remove_image(self, ref: str) -> bool:
        """Remove an image by reference; return False when there is no such image."""
        removed = self._found(
            f"removing image {ref}", lambda: self._client.api.remove_image(ref) or True
        )
        return removed is not None

    # -- volumes -------------------------------------------------------------------------------

    def _volume(self, attrs: Mapping[str, Any]) -> Volume:
        return Volume(
            check_volume_name(attrs["Name"], self._error),
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
        check_volume_name(name, self._error)
        found = self._found("volume inspect", lambda: self._client.volumes.get(name))
        return None if found is None else self._volume(found.attrs)

    def stack_services(self, stack: str) -> list[str]:
        """Return the names of the services of ``stack``."""
        return [s.name for s in self.services(stack)]

    def holders(self, volumes: Sequence[Volume]) -> dict[str, list[str]]:
        """Return, per volume that has any, the containers (running or stopped) holding it.

        One container listing serves every volume (this runs at every poll of a wait); the list
        endpoint already carries every container's mounts, so no inspect per container.
        """
        containers = self._call("ps", lambda: list(self._client.api.containers(all=True)))
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
            attrs = self._found("inspect", partial(self._client.api.inspect_container, ident))
            if attrs is None:
                found.add(f"{ident[:12]} started and is gone (its mounts are unknown)")
                continue
            for volume in volumes:
                if any(mount_holds(m, volume) for m in attrs.get("Mounts") or []):
                    found.add(f"{ident[:12]} mounted {volume.name}")
        return sorted(found)

    def create_volume(self, name: str, stack: str) -> Volume:
        """Create a local volume labelled as ``docker stack deploy`` would."""
        created = self._call(
            "volume create",
            lambda: self._client.volumes.create(
                check_volume_name(name, self._error), driver="local", labels={STACK_LABEL: stack}
            ),
        )
        return self._volume(created.attrs)

    def remove_volume(self, name: str) -> None:
        """Remove a volume."""
        self._call("volume rm", lambda: self._client.volumes.get(name).remove())

    # -- prune ---------------------------------------------------------------------------------

    def stopped_containers(self) -> list[Reclaimable]:
        """Return the containers that hold no process (created, exited, dead), oldest first."""
        found = self._call(
            "listing stopped containers",
            lambda: self._client.api.containers(
                all=True, size=True, filters={"status": sorted(DONE)}
            ),
        )
        return sorted(
            (
                Reclaimable(
                    id=str(c["Id"]),
                    name=_container_name(c),
                    created=_unix(c.get("Created")),
                    size=int(c.get("SizeRw") or 0),
                )
                for c in found
            ),
            key=lambda r: (r.created, r.id),
        )

    def dangling_images(self) -> list[Reclaimable]:
        """Return the untagged images no other image builds on, oldest first, with their users."""
        # Without all=True the engine leaves out intermediate images (another image builds on
        # them), as its prune does.
        images = self._call(
            "listing dangling images",
            lambda: self._client.api.images(filters={"dangling": True}),
        )
        containers = self._call(
            "listing what uses images", lambda: self._client.api.containers(all=True)
        )
        users: dict[str, list[str]] = {}
        for c in containers:
            users.setdefault(str(c.get("ImageID", "")), []).append(str(c["Id"]))
        return sorted(
            (
                Reclaimable(
                    id=str(i["Id"]),
                    name=str(i["Id"]).removeprefix("sha256:")[:12],
                    created=_unix(i.get("Created")),
                    size=int(i.get("Size") or 0),
                    used_by=tuple(sorted(users.get(str(i["Id"]), ()))),
                )
                for i in images
            ),
            key=lambda r: (r.created, r.id),
        )

    def prune_containers(self) -> Pruned:
        """Remove the stopped containers created over PRUNE_AGE ago."""
        answer = self._call(
            "pruning stopped containers",
            lambda: self._client.api.prune_containers(filters={"until": _PRUNE_UNTIL}),
        )
        return Pruned(_ids(answer.get("ContainersDeleted")), int(answer.get("SpaceReclaimed") or 0))

    def prune_images(self) -> Pruned:
        """Remove the dangling images created over PRUNE_AGE ago that no container uses."""
        listed = self._call(
            "listing dangling images",
            lambda: self._client.api.images(filters={"dangling": True}, quiet=True),
        )
        # dangling=true is what keeps every tagged image (no --all): the local store is the cache.
        answer = self._call(
            "pruning dangling images",
            lambda: self._client.api.prune_images(
                filters={"dangling": True, "until": _PRUNE_UNTIL}
            ),
        )
        # The engine lists each deleted image, then the layers it freed: keep the images. One that
        # turned dangling between the two calls is left out of the list, not of the space.
        deleted = _ids(d.get("Deleted") for d in answer.get("ImagesDeleted") or ())
        images = set(map(str, listed))
        return Pruned(
            tuple(d for d in deleted if d in images),
            int(answer.get("SpaceReclaimed") or 0),
        )

    def prune_build_cache(self) -> Pruned:
        """Remove the build cache unused for PRUNE_AGE (not ``--all``: dangling records only)."""
        answer = self._call(
            "pruning build cache",
            lambda: self._client.api.prune_builds(filters={"until": _PRUNE_UNTIL}),
        )
        return Pruned(_ids(answer.get("CachesDeleted")), int(answer.get("SpaceReclaimed") or 0))


# -- reading docker's JSON into the typed values ------------------------------------------------


def _unix(seconds: object) -> datetime:
    """Read a Unix time in seconds (the list endpoints' ``Created``); missing is the past."""
    if not isinstance(seconds, int | float):
        return datetime.min.replace(tzinfo=UTC)
    return datetime.fromtimestamp(seconds, UTC)


def _ids(values: Iterable[object] | None) -> tuple[str, ...]:
    return tuple(str(v) for v in values or () if v)


def _service(attrs: Mapping[str, Any]) -> Service:
    spec = attrs.get("Spec") or {}
    container_spec = (spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}
    mode = spec.get("Mode") or {}
    replicated = mode.get("Replicated")
    update = attrs.get("UpdateStatus") or {}
    ports = ((attrs.get("Endpoint") or {}).get("Ports")) or []
    return Service(
        id=str(attrs.get("ID", "")),
        name=str(spec.get("Name", "")),
        labels=dict(spec.get("Labels") or {}),
        image=str(container_spec.get("Image", "")),
        replicas=int(replicated.get("Replicas", 1)) if replicated is not None else None,
        spec=spec_key(container_spec),
        update_state=update.get("State"),
        update_message=str(update.get("Message", "")),
        ports=tuple(
            Port(int(p["TargetPort"]), int(p["PublishedPort"]), str(p.get("PublishMode", "")))
            for p in ports
            if "TargetPort" in p and "PublishedPort" in p
        ),
        stop_grace=(
            int(container_spec["StopGracePeriod"]) / 1e9
            if container_spec.get("StopGracePeriod") is not None
            else DEFAULT_STOP_GRACE
        ),
    )


def _task(attrs: Mapping[str, Any]) -> Task:
    status = attrs.get("Status") or {}
    container_status = status.get("ContainerStatus") or {}
    exit_code = container_status.get("ExitCode")
    return Task(
        id=str(attrs.get("ID", "")),
        desired_state=str(attrs.get("DesiredState", "")),
        state=str(status.get("State", "")),
        timestamp=timestamp(status.get("Timestamp")),
        spec=spec_key((attrs.get("Spec") or {}).get("ContainerSpec")),
        error=str(status.get("Err") or status.get("Message") or status.get("State", "")),
        exit_code=int(exit_code) if exit_code is not None else None,
        container_id=container_status.get("ContainerID") or None,
    )


def _container(attrs: Mapping[str, Any]) -> Container:
    state = attrs.get("State") or {}
    health = state.get("Health")
    last = ((health or {}).get("Log") or [{}])[-1]
    return Container(
        id=str(attrs.get("Id", "")),
        name=str(attrs.get("Name", "")).lstrip("/"),
        state=str(state.get("Status", "")),
        image=str((attrs.get("Config") or {}).get("Image", "")),
        service=((attrs.get("Config") or {}).get("Labels") or {}).get(SERVICE_LABEL),
        health=None
        if not health
        else Health(
            str(health.get("Status", "")),
            last.get("ExitCode"),
            str(last.get("Output", "")).strip(),
        ),
    )


def _container_name(container: Mapping[str, Any]) -> str:
    names = container.get("Names") or [str(container.get("Id", "?"))[:12]]
    return str(names[0]).lstrip("/")


def _drain(stream: Any, into: list[dict[str, Any]]) -> None:
    """Collect events until the stream is closed (its end or a closed socket end the loop)."""
    try:
        for event in stream:
            into.append(event)
    except Exception:  # noqa: S110 - a closed stream may raise anything; the replay covers
        pass
