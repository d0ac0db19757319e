"""Look at one stack on the engine through the Docker SDK: services, tasks, containers, objects.

Both adapters and the health check use this view. Every Docker SDK error is mapped to
:class:`~ccci_core.deploy.errors.DeployError` here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import docker
import docker.errors
import requests

from .errors import DeployError
from .protocol import Deployed, chaos_label, chaos_version_label, version_label

NAMESPACE = "com.docker.stack.namespace"  # set by `docker stack deploy` on services, volumes...
_DONE = frozenset({"exited", "dead", "created"})  # container states that hold no process
SECRET_OWNER = "ccci.stack"  # noqa: S105 - a label name, not a password; set by the swarm deployer on the secrets it generates


@contextmanager
def docker_errors(what: str) -> Iterator[None]:
    """Map any Docker SDK error raised inside to DeployError."""
    try:
        yield
    # docker-py lets the transport's errors through: a daemon gone away is a ConnectionError.
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise DeployError(f"docker: {what} failed: {exc}") from exc


def live_stacks(client: docker.DockerClient) -> set[str]:
    """Return the names of every stack that has a service on the engine."""
    with docker_errors("listing services"):
        services = client.services.list()
    labels = (s.attrs.get("Spec", {}).get("Labels") or {} for s in services)
    return {found[NAMESPACE] for found in labels if NAMESPACE in found}


class Stack:
    """The Docker objects of one stack."""

    def __init__(self, client: docker.DockerClient, name: str) -> None:
        self.client = client
        self.name = name

    @property
    def _filter(self) -> dict[str, str]:
        return {"label": f"{NAMESPACE}={self.name}"}

    def services(self) -> list[Any]:
        """Return the stack's services."""
        with docker_errors(f"listing services of {self.name}"):
            found = self.client.services.list(filters=self._filter)
        return sorted(found, key=lambda s: s.name)

    def short_name(self, service: Any) -> str:
        """Return a service's compose name (``app`` for ``<stack>_app``)."""
        return str(service.name).removeprefix(f"{self.name}_")

    def service(self, short: str) -> Any:
        """Return the service ``<stack>_<short>``, or raise DeployError."""
        for service in self.services():
            if self.short_name(service) == short:
                return service
        raise DeployError(f"{self.name} has no service {short!r}")

    def tasks(self, service: Any) -> list[dict[str, Any]]:
        """Return every task of ``service``, history included."""
        with docker_errors(f"listing tasks of {service.name}"):
            return list(service.tasks())

    def containers(self) -> list[Any]:
        """Return every container of the stack's tasks, stopped ones included."""
        with docker_errors(f"listing containers of {self.name}"):
            return list(
                self.client.containers.list(all=True, filters=self._filter, ignore_removed=True)
            )

    def container(self, container_id: str) -> Any | None:
        """Return a container by id, or None once it is gone."""
        try:
            return self.client.containers.get(container_id)
        except docker.errors.NotFound:
            return None
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            raise DeployError(f"docker: inspecting container {container_id} failed: {exc}") from exc

    def running_container(self, short: str) -> Any:
        """Return a running container of service ``short``, or raise DeployError."""
        with docker_errors(f"finding a container of {self.name}_{short}"):
            found = self.client.containers.list(
                filters={"label": f"com.docker.swarm.service.name={self.name}_{short}"},
                ignore_removed=True,
            )
        if not found:
            raise DeployError(f"{self.name}_{short} has no running container")
        return found[0]

    def exec(self, short: str, argv: list[str]) -> tuple[int, str]:
        """Run ``argv`` in a running container of service ``short``; return code and output."""
        container = self.running_container(short)
        with docker_errors(f"exec in {container.name}"):
            code, output = container.exec_run(argv)
        return int(code), output.decode("utf-8", "replace")

    def volumes(self) -> list[Any]:
        """Return the stack's volumes (labelled by ``docker stack deploy``)."""
        with docker_errors(f"listing volumes of {self.name}"):
            return list(self.client.volumes.list(filters=self._filter))

    def secrets(self) -> list[Any]:
        """Return the secrets the swarm deployer generated for this stack."""
        with docker_errors(f"listing secrets of {self.name}"):
            return list(self.client.secrets.list(filters={"label": f"{SECRET_OWNER}={self.name}"}))

    def named_secrets(self) -> list[str]:
        """Return every secret named ``<stack>_...`` (abra's, which carry no label of ours)."""
        with docker_errors(f"listing secrets of {self.name}"):
            found = self.client.secrets.list(filters={"name": f"{self.name}_"})
        return sorted(s.name for s in found if str(s.name).startswith(f"{self.name}_"))

    def secret_names(self) -> set[str]:
        """Return the names of every secret on the engine that starts with ``<stack>_``."""
        with docker_errors("listing secrets"):
            found = self.client.secrets.list(filters={"name": f"{self.name}_"})
        return {s.name for s in found if s.name.startswith(f"{self.name}_")}

    def networks(self) -> list[Any]:
        """Return the stack's networks."""
        with docker_errors(f"listing networks of {self.name}"):
            return list(self.client.networks.list(filters=self._filter))

    def deployed(self) -> Deployed | None:
        """Return the version and chaos labels of the stack's services, or None if none runs."""
        services = self.services()
        if not services:
            return None
        version = chaos = chaos_version = None
        for service in services:
            labels = service.attrs.get("Spec", {}).get("Labels") or {}
            version = version or labels.get(version_label(self.name))
            chaos = chaos or labels.get(chaos_label(self.name))
            chaos_version = chaos_version or labels.get(chaos_version_label(self.name))
        return Deployed(self.name, version, chaos == "true", chaos_version)

    def gone(self) -> bool:
        """Return whether no service, task container or network of the stack is left."""
        return not (self.services() or self.containers() or self.networks())

    def _reap_exited(self) -> list[Any]:
        """Remove the stack's exited task containers; return the containers still there.

        Call it once the services are gone: Swarm removes their exited task containers itself,
        but only seconds later, and until then they still hold the stack's volumes.
        """
        left = []
        for container in self.containers():
            if container.status not in _DONE:
                left.append(container)
                continue
            try:
                container.remove()
            except docker.errors.NotFound:
                continue  # Swarm was quicker
            except docker.errors.APIError:
                left.append(container)  # a removal already in progress: wait for it
        return left

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
                left += [n.name for n in self.networks()] if networks else []
                raise DeployError(f"{self.name} still has {left} after {timeout:.0f}s")
            sleep(poll)
