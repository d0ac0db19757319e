"""An in-memory :class:`~ccci_core.docker_engine.DockerStacks` and
:class:`~ccci_core.docker_engine.DockerPrune`: services, tasks, containers, and what prune sees.

It holds the adapter's own typed values, so decision logic (the health check, the plugin's
teardown checks, the prune) runs against it unchanged. ``tests/core/deploy/test_fake_docker.py``
checks it answers like the real adapter does on the real engine; for the prune part,
``tests/core/test_docker_engine.py`` checks it offers the same methods and
``tests/agent/test_prune.py`` that the engine dates images and containers and keeps an image a
container uses as the fake models it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from ccci_core.deploy.errors import DeployError
from ccci_core.docker_engine import (
    PRUNE_AGE,
    SERVICE_LABEL,
    STACK_LABEL,
    Container,
    Health,
    ObjectKind,
    Port,
    Pruned,
    Reclaimable,
    Service,
    Task,
    spec_key,
)


@dataclass
class FakeDocker:
    """Services, their tasks, containers and named objects, changed by the test as it goes."""

    service_list: dict[str, Service] = field(default_factory=dict)
    task_list: dict[str, list[Task]] = field(default_factory=dict)  # by service name
    container_list: dict[str, Container] = field(default_factory=dict)
    container_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    object_list: dict[tuple[ObjectKind, str], dict[str, str]] = field(default_factory=dict)
    images: set[str] = field(default_factory=set)
    exec_answers: dict[tuple[str, tuple[str, ...]], tuple[int, str]] = field(default_factory=dict)
    removing: set[str] = field(default_factory=set)  # containers whose removal is under way
    calls: list[str] = field(default_factory=list)
    made: int = 0  # tasks ever made: a replaced task gets a new id, as in Swarm
    # What prune sees, by id: its own picture, apart from the services' containers above.
    stopped: dict[str, Reclaimable] = field(default_factory=dict)
    dangling: dict[str, Reclaimable] = field(default_factory=dict)  # used_by: container ids
    build_cache: dict[str, Reclaimable] = field(default_factory=dict)  # created: last used
    failing: set[str] = field(default_factory=set)  # "containers", "images", "build cache"

    # -- building the picture --------------------------------------------------------------------

    def add_service(
        self,
        stack: str,
        short: str,
        *,
        image: str = "img:1",
        replicas: int | None = 1,
        labels: Mapping[str, str] | None = None,
        ports: Sequence[Port] = (),
    ) -> Service:
        """Add ``<stack>_<short>`` running ``image``; return it."""
        name = f"{stack}_{short}"
        service = Service(
            id=f"id-{name}",
            name=name,
            labels={STACK_LABEL: stack, **(labels or {})},
            image=image,
            replicas=replicas,
            spec=spec_key({"Image": image}),
            ports=tuple(ports),
        )
        self.service_list[name] = service
        self.task_list.setdefault(name, [])
        return service

    def update(self, name: str, **changes: object) -> Service:
        """Change a service (a new image is a new spec, as in Swarm); return it."""
        service = replace(self.service_list[name], **changes)  # type: ignore[arg-type]
        if "image" in changes:
            service = replace(service, spec=spec_key({"Image": service.image}))
        self.service_list[name] = service
        return service

    def add_task(
        self,
        service: str,
        state: str = "running",
        *,
        at: datetime | None = None,
        health: Health | None = None,
        current: bool = True,
        error: str = "",
        exit_code: int | None = None,
    ) -> Task:
        """Add a task of ``service`` (and its container); return it."""
        spec = self.service_list[service].spec if current else spec_key({"Image": "old"})
        self.made += 1
        ident = f"{service}.{self.made}"
        task = Task(
            id=ident,
            desired_state="running"
            if state in {"running", "starting", "preparing"}
            else "shutdown",
            state=state,
            timestamp=at or datetime.now(UTC),
            spec=spec,
            error=error or state,
            exit_code=exit_code,
            container_id=f"c-{ident}",
        )
        self.task_list[service].append(task)
        stack = self.service_list[service].labels[STACK_LABEL]
        self.container_list[task.container_id or ""] = Container(
            id=f"c-{ident}",
            name=ident,
            state="running" if state == "running" else "exited",
            image=self.service_list[service].image,
            health=health,
            service=service,
        )
        self.container_labels[f"c-{ident}"] = {STACK_LABEL: stack, SERVICE_LABEL: service}
        return task

    def remove_service(self, name: str) -> None:
        """Remove a service as ``docker stack rm`` does (its containers stay until reaped)."""
        del self.service_list[name]
        del self.task_list[name]

    # -- DockerStacks ------------------------------------------------------------------------------

    def services(self, stack: str | None = None) -> list[Service]:
        """Return the services of ``stack`` (every service when None), sorted by name."""
        self.calls.append(f"services {stack}")
        found = (s for s in self.service_list.values() if stack is None or s.stack == stack)
        return sorted(found, key=lambda s: s.name)

    def tasks(self, service: Service) -> list[Task]:
        """Return every task of ``service``, history included."""
        if service.name not in self.task_list:
            raise DeployError(
                f"docker: listing tasks of {service.name} failed: 404 no such service"
            )
        return list(self.task_list[service.name])

    def containers(self, labels: Mapping[str, str], *, stopped: bool = True) -> list[Container]:
        """Return the containers carrying every one of ``labels``."""
        return [
            c
            for ident, c in sorted(self.container_list.items())
            if labels.items() <= self.container_labels[ident].items()
            and (stopped or c.state == "running")
        ]

    def container(self, ident: str) -> Container | None:
        """Return a container by id, or None once it is gone."""
        return self.container_list.get(ident)

    def remove_container(self, ident: str) -> bool:
        """Remove a stopped container; False while a removal is under way."""
        self.calls.append(f"rm {ident}")
        if ident in self.removing:
            return False
        self.container_list.pop(ident, None)
        self.container_labels.pop(ident, None)
        return True

    def stop_container(self, ident: str, grace: float) -> None:
        """Stop a container (its process exits at once here); gone is fine."""
        self.calls.append(f"stop {ident} {grace:g}")
        container = self.container_list.get(ident)
        if container is not None:
            self.container_list[ident] = replace(container, state="exited")

    def exec(self, ident: str, argv: Sequence[str]) -> tuple[int, str]:
        """Answer what the test set for ``argv`` in that container (else exit 127)."""
        self.calls.append(f"exec {ident} {' '.join(argv)}")
        if self.container_list.get(ident) is None:
            raise DeployError(f"docker: exec in {ident} failed: 404 no such container")
        return self.exec_answers.get((ident, tuple(argv)), (127, "not found"))

    def objects(
        self, kind: ObjectKind, *, stack: str | None = None, label: str | None = None
    ) -> list[str]:
        """Return the names of ``kind`` objects with ``stack``'s label and ``label``."""
        wanted = {STACK_LABEL: stack} if stack is not None else {}
        if label is not None:
            key, _, value = label.partition("=")
            wanted[key] = value
        return sorted(
            name
            for (k, name), labels in self.object_list.items()
            if k == kind and wanted.items() <= labels.items()
        )

    def named(self, kind: ObjectKind, prefix: str) -> list[str]:
        """Return the names of ``kind`` objects starting with ``prefix``."""
        return sorted(n for (k, n) in self.object_list if k == kind and n.startswith(prefix))

    def remove(self, kind: ObjectKind, name: str) -> None:
        """Remove a named object."""
        self.calls.append(f"rm {kind} {name}")
        if self.object_list.pop((kind, name), None) is None:
            raise DeployError(f"docker: removing {kind} {name} failed: 404 not found")

    def create_secret(self, name: str, data: bytes, labels: Mapping[str, str]) -> None:
        """Create a secret."""
        if ("secret", name) in self.object_list:
            raise DeployError(f"docker: creating secret {name} failed: 409 already exists")
        self.object_list[("secret", name)] = dict(labels)

    def images_in_use(self) -> set[str]:
        """Return the images some container or service uses."""
        used = {c.image for c in self.container_list.values()}
        return used | {s.image for s in self.service_list.values()}

    def remove_image(self, ref: str) -> bool:
        """Remove an image; False when there is none."""
        self.calls.append(f"rmi {ref}")
        if ref not in self.images:
            return False
        self.images.discard(ref)
        return True

    # -- DockerPrune -------------------------------------------------------------------------------

    def stopped_containers(self) -> list[Reclaimable]:
        """Return the stopped containers, oldest first."""
        return sorted(self.stopped.values(), key=lambda r: (r.created, r.id))

    def dangling_images(self) -> list[Reclaimable]:
        """Return the dangling images, oldest first, with the users that still exist."""
        return sorted(
            (replace(r, used_by=self._users(r)) for r in self.dangling.values()),
            key=lambda r: (r.created, r.id),
        )

    def prune_containers(self) -> Pruned:
        """Remove the stopped containers created over PRUNE_AGE ago."""
        return self._prune("containers", self.stopped)

    def prune_images(self) -> Pruned:
        """Remove the dangling images created over PRUNE_AGE ago that no container uses."""
        return self._prune("images", self.dangling)

    def prune_build_cache(self) -> Pruned:
        """Remove the build cache unused for PRUNE_AGE."""
        return self._prune("build cache", self.build_cache)

    def _users(self, image: Reclaimable) -> tuple[str, ...]:
        return tuple(u for u in image.used_by if u in self.stopped or u in self.container_list)

    def _prune(self, kind: str, found: dict[str, Reclaimable]) -> Pruned:
        self.calls.append(f"prune {kind}")
        if kind in self.failing:
            raise DeployError(f"docker: pruning {kind} failed: a prune is already running")
        cutoff = datetime.now(UTC) - PRUNE_AGE
        going = [r for r in found.values() if r.created <= cutoff and not self._users(r)]
        for r in going:
            del found[r.id]
        return Pruned(tuple(r.id for r in going), sum(r.size for r in going))
