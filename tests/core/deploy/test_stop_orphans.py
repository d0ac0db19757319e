"""An undeploy stops the task containers ``docker stack rm`` left, as Swarm would, at once.

Swarm itself stops a removed service's task only after its 2 s gossip delay; ``Stack.stop_orphans``
does the same stop without it: the service's stop signal, its stop grace period, then a kill. The
decisions (which containers, which grace) are checked against the in-memory engine; the stop
itself on real Swarm, where the exit codes show which signal arrived and when a kill came.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator

import docker
import pytest

from ccci_core.deploy.stack import Stack
from ccci_core.docker_engine import DEFAULT_STOP_GRACE, STACK_LABEL
from tests.deploy_fixtures import _reap, stacks
from tests.fake_docker import FakeDocker

STACK = "s"


def test_only_the_running_tasks_of_removed_services_are_stopped_with_their_grace() -> None:
    """A removed service's running task is stopped with that service's grace; a live service's
    task, an exited one and a service without a recorded grace (Swarm's default) are told apart."""
    fake = FakeDocker()
    gone = fake.add_service(STACK, "db").name
    kept = fake.add_service(STACK, "app").name
    other = fake.add_service(STACK, "worker").name
    running = fake.add_task(gone)
    fake.add_task(gone, "failed")  # exited: nothing to stop
    live = fake.add_task(kept)
    unknown = fake.add_task(other)
    graces = {gone: 1.5, kept: 4.0}  # read before the removal; worker's was not
    fake.remove_service(gone)
    fake.remove_service(other)

    stopped = Stack(fake, STACK).stop_orphans(graces)

    assert sorted([running.id, unknown.id]) == sorted(stopped)
    stops = sorted(call for call in fake.calls if call.startswith("stop "))
    assert [
        f"stop {running.container_id} 1.5",
        f"stop {unknown.container_id} {DEFAULT_STOP_GRACE:g}",
    ] == stops
    assert "running" == fake.container_list[str(live.container_id)].state


@pytest.fixture
def stack_name(docker_client: docker.DockerClient) -> Iterator[str]:
    """A unique stack name, whatever is left of it reaped after the test."""
    name = f"ccci-stop-{uuid.uuid4().hex[:6]}"
    yield name
    _reap(docker_client, name)


def _service(stack: str, short: str, image: str, grace: str, script: str) -> str:
    name = f"{stack}_{short}"
    subprocess.run(
        [
            "docker", "service", "create", "--quiet", "--detach", "--name", name,
            "--label", f"{STACK_LABEL}={stack}", "--container-label", f"{STACK_LABEL}={stack}",
            "--stop-signal", "SIGINT", "--stop-grace-period", grace,
            image, "sh", "-c", script,
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return name


@pytest.mark.docker
def test_the_real_stop_sends_the_services_signal_and_kills_after_its_grace(
    docker_client: docker.DockerClient, busybox_image: str, stack_name: str
) -> None:
    """A task that handles SIGINT exits with its own code; one that ignores it is killed."""
    engine = stacks(docker_client)
    # A shell as PID 1 gets only the signals it traps: INT exits 42; the other ignores INT.
    clean = _service(stack_name, "clean", busybox_image, "30s", "trap 'exit 42' INT; "
                     "while :; do sleep 0.1; done")  # fmt: skip
    stubborn = _service(stack_name, "stubborn", busybox_image, "1s", "trap '' INT; "
                        "while :; do sleep 0.1; done")  # fmt: skip
    stack = Stack(engine, stack_name)
    for _ in range(240):
        if len(engine.containers({STACK_LABEL: stack_name}, stopped=False)) == 2:
            break
        time.sleep(0.25)
    graces = stack.stop_graces()
    assert {clean: 30.0, stubborn: 1.0} == graces
    started = int(time.time()) - 1
    subprocess.run(["docker", "service", "rm", clean, stubborn], check=True, capture_output=True)

    stopped = stack.stop_orphans(graces)

    assert 2 == len(stopped)
    assert [] == engine.containers({STACK_LABEL: stack_name}, stopped=False)
    deaths = docker_client.api.events(
        since=started,
        until=int(time.time()) + 1,
        filters={"event": "die", "label": f"{STACK_LABEL}={stack_name}"},
        decode=True,
    )
    codes = {
        event["Actor"]["Attributes"]["com.docker.swarm.service.name"]: event["Actor"]["Attributes"][
            "exitCode"
        ]
        for event in deaths
    }
    assert {clean: "42", stubborn: "137"} == codes


@pytest.mark.parametrize(
    ("states", "settled"),
    [
        (["running"], True),
        (["running", "failed", "shutdown", "complete"], True),
        ([], True),
        (["failed", "starting"], False),  # a crash loop's next restart on its way up
        (["running", "preparing"], False),
        (["pending"], False),
    ],
)
def test_a_stack_is_settled_when_no_task_is_on_its_way_up(states: list[str], settled: bool) -> None:
    """Only a task created but not yet running can still make a container after the removal."""
    fake = FakeDocker()
    name = fake.add_service(STACK, "app").name
    for state in states:
        fake.add_task(name, state)
    assert settled == Stack(fake, STACK).settled()
