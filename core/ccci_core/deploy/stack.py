"""One stack on the engine, seen through :class:`~ccci_core.docker_engine.DockerStacks`.

Both deployers, the health check and the plugin use this view; it returns the adapter's typed
values and raises :class:`~ccci_core.deploy.errors.DeployError` (the adapter maps every Docker
failure to the error class it is built with: ``SdkDocker(client, DeployError)``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

from ..docker_engine import (
    DEFAULT_STOP_GRACE,
    SECRET_OWNER,
    SERVICE_LABEL,
    STACK_LABEL,
    Container,
    DockerStacks,
    Service,
    Task,
)
from ..names import AppName
from .errors import DeployError
from .protocol import Deployed, chaos_label, chaos_version_label, version_label

# Task states no container comes from any more (Swarm's terminal states), and ``running``.
_SETTLED = frozenset(
    {"running", "complete", "failed", "shutdown", "rejected", "orphaned", "remove"}
)


def live_stacks(docker: DockerStacks) -> set[str]:
    """Return the names of every stack that has a service on the engine."""
    return {s.stack for s in docker.services() if s.stack is not None}


class Stack:
    """The Docker objects of one stack."""

    def __init__(self, docker: DockerStacks, name: str) -> None:
        self.docker = docker
        self.name = name

    def services(self) -> list[Service]:
        """Return the stack's services, sorted by name."""
        return self.docker.services(self.name)

    def short_name(self, service: Service) -> str:
        """Return a service's compose name (``app`` for ``<stack>_app``)."""
        return service.name.removeprefix(f"{self.name}_")

    def service(self, short: str) -> Service:
        """Return the service ``<stack>_<short>``, or raise DeployError."""
        for service in self.services():
            if self.short_name(service) == short:
                return service
        raise DeployError(f"{self.name} has no service {short!r}")

    def tasks(self, service: Service) -> list[Task]:
        """Return every task of ``service``, history included."""
        return self.docker.tasks(service)

    def containers(self) -> list[Container]:
        """Return every container of the stack's tasks, stopped ones included."""
        return self.docker.containers({STACK_LABEL: self.name})

    def container(self, container_id: str) -> Container | None:
        """Return a container by id, or None once it is gone."""
        return self.docker.container(container_id)

    def running_container(self, short: str) -> Container:
        """Return a running container of service ``short``, or raise DeployError."""
        found = self.docker.containers({SERVICE_LABEL: f"{self.name}_{short}"}, stopped=False)
        if not found:
            raise DeployError(f"{self.name}_{short} has no running container")
        return found[0]

    def exec(self, short: str, argv: list[str]) -> tuple[int, str]:
        """Run ``argv`` in a running container of service ``short``; return code and output."""
        return self.docker.exec(self.running_container(short).id, argv)

    def volumes(self) -> list[str]:
        """Return the names of the stack's volumes (labelled by ``docker stack deploy``)."""
        return self.docker.objects("volume", stack=self.name)

    def secrets(self) -> list[str]:
        """Return the names of the secrets the swarm deployer generated for this stack."""
        return self.docker.objects("secret", label=f"{SECRET_OWNER}={self.name}")

    def named_secrets(self) -> list[str]:
        """Return every secret named ``<stack>_...`` (abra's, which carry no label of ours)."""
        return self.docker.named("secret", f"{self.name}_")

    def networks(self) -> list[str]:
        """Return the names of the stack's networks."""
        return self.docker.objects("network", stack=self.name)

    def deployed(self) -> Deployed | None:
        """Return the version and chaos labels of the stack's services, or None if none runs."""
        services = self.services()
        if not services:
            return None
        version = chaos = chaos_version = None
        for service in services:
            version = version or service.labels.get(version_label(self.name))
            chaos = chaos or service.labels.get(chaos_label(self.name))
            chaos_version = chaos_version or service.labels.get(chaos_version_label(self.name))
        return Deployed(self.name, version, chaos == "true", chaos_version)

    def gone(self) -> bool:
        """Return whether no service, task container or network of the stack is left."""
        return not (self.services() or self.containers() or self.networks())

    def settled(self) -> bool:
        """Return whether every task of the stack is running or ended (none is on its way up).

        A task Swarm has created but not started (a crash-looping service's next restart) may
        still create its container after ``docker stack rm`` returned, and that container
        re-creates a named volume a caller has just deleted or mounts one being restored.
        """
        return all(
            task.state in _SETTLED for service in self.services() for task in self.tasks(service)
        )

    def stop_graces(self) -> dict[str, float]:
        """Return each service's stop grace period (read it before the services go)."""
        return {service.name: service.stop_grace for service in self.services()}

    def stop_orphans(self, graces: Mapping[str, float]) -> list[str]:
        """Stop the running task containers whose service is gone; return their names.

        After ``docker stack rm`` Swarm stops each task itself, but first takes it out of its
        service's load balancing and sleeps 2 s for the overlay's gossip to converge (moby's
        ``defaultGossipConvergeDelay``), about 3 s in all here: a wait for traffic that cannot
        come once the whole stack is removed. This does what Swarm then does, at once and in
        parallel: the container's stop signal (Swarm set it from the service), the service's
        stop grace period from ``graces`` (rounded up to whole seconds), then a kill.
        """
        live = {service.name for service in self.services()}
        orphans = [
            c
            for c in self.docker.containers({STACK_LABEL: self.name}, stopped=False)
            if c.service is not None and c.service not in live
        ]
        if orphans:
            with ThreadPoolExecutor(len(orphans), thread_name_prefix="ccci-stop") as pool:
                stops = [
                    pool.submit(
                        self.docker.stop_container,
                        c.id,
                        graces.get(c.service or "", DEFAULT_STOP_GRACE),
                    )
                    for c in orphans
                ]
                for stop in stops:
                    stop.result()  # the first failure (a DeployError) is the caller's
        return [c.name for c in orphans]

    def _reap_exited(self) -> list[Container]:
        """Remove the stack's exited task containers; return the containers still there.

        Call it once the services are gone: Swarm removes their exited task containers itself,
        but only seconds later, and until then they still hold the stack's volumes.
        """
        return [
            c
            for c in self.containers()
            if not c.done or not self.docker.remove_container(c.id)  # False: removal under way
        ]

    def wait_released(
        self, timeout: float, poll: float, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        """Before a deploy: wait until what an undeploy left on its way out is gone.

        Swarm drops a removed stack's network from this node only once its tasks' shutdown ends
        (after its gossip delay), seconds after an undeploy returned. Until then ``docker stack
        deploy`` still lists the network, so it does not create it again, and creating the
        services fails ("network ... not found"). A deployed stack is left alone.
        """
        if not self.services():
            self.wait_gone(timeout, poll, sleep)

    def wait_gone(
        self,
        timeout: float,
        poll: float,
        sleep: Callable[[float], None] = time.sleep,
        *,
        networks: bool = True,
    ) -> None:
        """Wait until no service, container (and network) is left; else raise DeployError."""
        deadline = time.monotonic() + timeout
        while self.services() or self._reap_exited() or (networks and self.networks()):
            if time.monotonic() > deadline:
                left = [c.name for c in self.containers()] + [s.name for s in self.services()]
                left += self.networks() if networks else []
                raise DeployError(f"{self.name} still has {left} after {timeout:.0f}s")
            sleep(poll)


class StackQueries:
    """What both deployers answer from the engine alone (``self.docker`` is the adapter)."""

    docker: DockerStacks

    def deployed(self, app: AppName) -> Deployed | None:
        """Return the stack's version and chaos labels, or None if it is not deployed."""
        return Stack(self.docker, app.stack).deployed()

    def volumes(self, app: AppName) -> list[str]:
        """Return the names of the stack's volumes."""
        return Stack(self.docker, app.stack).volumes()
