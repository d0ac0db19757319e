"""The in-memory engine (``tests.fake_docker``) is faithful to the real adapter on real Swarm.

The decision tests trust the fake on a few facts; each is checked here against the engine: a
service's spec equals its current tasks' spec and differs from a replaced task's, labels and
replicas read back as given, containers are found by the service label with their health, exec
answers code and output, and both adapters offer exactly the protocol's methods.
"""

from __future__ import annotations

import inspect
import subprocess
import time
import uuid
from collections.abc import Iterator

import docker
import pytest

from ccci_core.docker_engine import SERVICE_LABEL, STACK_LABEL, DockerStacks, SdkDocker
from tests.deploy_fixtures import _reap, stacks
from tests.fake_docker import FakeDocker


def _methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_") and name in DockerStacks.__dict__
    }


def test_both_adapters_offer_the_protocol_with_its_signatures() -> None:
    """Every method of DockerStacks exists on SdkDocker and FakeDocker, with the same signature."""
    wanted = _methods(DockerStacks)
    assert wanted  # the protocol is not empty
    assert wanted == _methods(SdkDocker) == _methods(FakeDocker)


@pytest.fixture
def service(docker_client: docker.DockerClient, busybox_image: str) -> Iterator[tuple[str, str]]:
    """A real one-replica service with a healthcheck in its own stack: (stack, service name)."""
    stack = f"ccci-fake-{uuid.uuid4().hex[:6]}"
    name = f"{stack}_app"
    subprocess.run(
        [
            "docker", "service", "create", "--quiet", "--detach", "--name", name,
            "--label", f"{STACK_LABEL}={stack}", "--label", "ccci.test=yes",
            "--health-cmd", "true", "--health-interval", "1s",
            busybox_image, "sleep", "600",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    yield stack, name
    _reap(docker_client, stack)


def _running(engine: SdkDocker, name: str, besides: str = "") -> str:
    """Wait for a running task of ``name`` whose container (not ``besides``) is healthy."""
    for _ in range(240):
        [service] = [s for s in engine.services() if s.name == name]
        running = {t.container_id for t in engine.tasks(service) if t.state == "running"}
        for found in engine.containers({SERVICE_LABEL: name}, stopped=False):
            healthy = found.health is not None and found.health.status == "healthy"
            if healthy and found.id != besides and found.id in running:
                return found.id
        time.sleep(0.25)
    pytest.fail(f"{name} never ran healthy")


@pytest.mark.docker
def test_the_real_engine_answers_as_the_fake_models_it(
    docker_client: docker.DockerClient, service: tuple[str, str], busybox_image: str
) -> None:
    """Spec identity, labels, replicas, containers with health and exec, on real Swarm."""
    stack, name = service
    engine = stacks(docker_client)
    container_id = _running(engine, name)
    [seen] = engine.services(stack)
    assert (name, stack, "yes", 1) == (
        seen.name,
        seen.stack,
        seen.labels["ccci.test"],
        seen.replicas,
    )
    assert seen.image.startswith(busybox_image)
    task_container = engine.container(container_id)
    assert (10.0, name) == (seen.stop_grace, task_container and task_container.service)
    current = [t for t in engine.tasks(seen) if t.state == "running"]
    assert [container_id] == [t.container_id for t in current]
    assert {seen.spec} == {t.spec for t in current}
    assert (0, "hi\n") == engine.exec(container_id, ["echo", "hi"])
    assert 3 == engine.exec(container_id, ["sh", "-c", "exit 3"])[0]

    # A new spec: the replaced task keeps the old one, as the fake's ``current=False`` task does.
    subprocess.run(
        ["docker", "service", "update", "--quiet", "--detach", "--env-add", "X=1", name],
        check=True,
        capture_output=True,
    )
    new_id = _running(engine, name, besides=container_id)
    [updated] = engine.services(stack)
    tasks = {t.container_id: t for t in engine.tasks(updated)}
    assert updated.spec == tasks[new_id].spec != tasks[container_id].spec
    assert "shutdown" == tasks[container_id].desired_state


def test_the_fake_answers_the_same_questions_the_same_way() -> None:
    """The fake's view of the same picture: spec identity, labels, containers with health."""
    fake = FakeDocker()
    seen = fake.add_service("st", "app", labels={"ccci.test": "yes"})
    task = fake.add_task(seen.name)
    assert ("st", "yes", 1) == (seen.stack, seen.labels["ccci.test"], seen.replicas)
    assert [task.container_id] == [c.id for c in fake.containers({SERVICE_LABEL: seen.name})]
    task_container = fake.container(str(task.container_id))
    assert (10.0, seen.name) == (seen.stop_grace, task_container and task_container.service)
    updated = fake.update(seen.name, image="img:2")
    assert updated.spec != task.spec
