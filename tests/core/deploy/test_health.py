"""Convergence rules of one service, including Swarm's ``paused`` trap, and the wait for an app.

The wait is decided against the in-memory engine (``tests.fake_docker``); the engine tests of the
deployers and the plugin show the same on real Swarm.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ccci_core.deploy.errors import NotReady
from ccci_core.deploy.health import ServiceState, loopback_port, wait_ready
from ccci_core.deploy.protocol import version_label
from ccci_core.deploy.stack import Stack
from ccci_core.docker_engine import Health, Port
from tests.fake_docker import FakeDocker


@pytest.mark.parametrize(
    ("running", "update", "unhealthy", "stale", "ready", "stuck"),
    [
        (1, None, [], 0, True, False),
        (1, "completed", [], 0, True, False),
        (0, None, [], 0, False, False),
        (1, None, ["abc starting"], 0, False, False),
        # Swarm's monitor period: converged on the new spec is up (the settle window runs with it).
        (1, "updating", [], 0, True, False),
        # ... but not while a task of the old spec still runs (start-first), nor before converged.
        (1, "updating", [], 1, False, False),
        (0, "updating", [], 0, False, False),
        # The trap: one flicker pauses the update for good although the new task runs fine.
        (1, "paused", [], 0, True, False),
        (0, "paused", [], 0, False, True),
        (1, "paused", ["abc unhealthy"], 0, False, True),
        (1, "rollback_started", [], 0, False, False),
        (1, "rollback_completed", [], 0, False, True),
        (1, "rollback_paused", [], 0, False, True),
    ],
)
def test_ready_and_stuck(
    running: int, update: str | None, unhealthy: list[str], stale: int, ready: bool, stuck: bool
) -> None:
    """Ready when converged with no old task left and not rolling back; stuck when Swarm gave up."""
    state = ServiceState("s_app", 1, running, update, unhealthy=unhealthy, stale=stale)
    assert (ready, stuck) == (state.ready, state.stuck)


def test_report_line_says_what_is_wrong() -> None:
    """The report line carries replicas, update state, health, failures and the last error."""
    state = ServiceState(
        "s_app",
        desired=1,
        running=0,
        update="paused",
        update_message="update paused due to failure",
        failures=2,
        last_error="task: non-zero exit (3) (exit 3)",
        waiting=["starting"],
    )
    expected = (
        "s_app: 0/1 running (other tasks: starting), update paused "
        "(update paused due to failure), 2 failed task(s), "
        "last error: task: non-zero exit (3) (exit 3)"
    )
    assert expected == state.line()


# -- the wait, decided against the in-memory engine ------------------------------------------------

SINCE = datetime(2026, 1, 1, tzinfo=UTC)
STACK = "s"


class Clock:
    """A clock that moves only when the wait sleeps; ``on_sleep`` changes the engine meanwhile."""

    def __init__(self, on_sleep: Callable[[float], None] = lambda now: None) -> None:
        self.now = 0.0
        self.on_sleep = on_sleep

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.on_sleep(self.now)


def wait(
    docker: FakeDocker, clock: Clock, *, timeout: float = 30.0, **kwargs: Any
) -> list[ServiceState]:
    """Run the real wait against ``docker`` with the fake clock."""
    return wait_ready(
        Stack(docker, STACK),
        timeout=timeout,
        since=SINCE,
        clock=clock,
        sleep=clock.sleep,
        **kwargs,
    )


def healthy(docker: FakeDocker, short: str = "app", **service: Any) -> str:
    """Add a service with one running, healthy task; return its name."""
    name = docker.add_service(STACK, short, **service).name
    docker.add_task(name, health=Health("healthy"))
    return name


def test_a_converged_healthy_stack_is_up_once_settled() -> None:
    """Every replica on the current spec and healthy for ``settle`` seconds: up."""
    docker, clock = FakeDocker(), Clock()
    healthy(docker)
    states = wait(docker, clock, settle=3.0, poll=0.5)
    assert (["s_app"], [1]) == ([s.name for s in states], [s.running for s in states])
    assert clock.now >= 3.0


def test_a_task_on_the_old_spec_does_not_count() -> None:
    """A replica still running the previous spec leaves the service unconverged until timeout."""
    docker, clock = FakeDocker(), Clock()
    name = docker.add_service(STACK, "app").name
    docker.add_task(name, current=False)
    with pytest.raises(NotReady, match="services not converged after 30s") as caught:
        wait(docker, clock)
    assert "s_app: 0/1 running" in "\n".join(caught.value.report)


def test_a_container_without_a_healthcheck_counts_healthy_and_a_starting_one_does_not() -> None:
    """No healthcheck is healthy; ``starting`` waits, and the report says which task."""
    docker, clock = FakeDocker(), Clock()
    name = docker.add_service(STACK, "app").name
    task = docker.add_task(name, health=Health("starting"))
    with pytest.raises(NotReady) as caught:
        wait(docker, clock, timeout=5.0)
    assert f"not healthy: {task.id[:12]} starting" in "\n".join(caught.value.report)
    docker2 = FakeDocker()
    docker2.add_task(docker2.add_service(STACK, "app").name, health=None)
    assert 1 == wait(docker2, Clock())[0].running


def test_paused_but_converged_counts_and_paused_unconverged_fails_at_once() -> None:
    """Swarm's ``paused`` trap: converged counts as up; not converged is reported immediately."""
    docker = FakeDocker()
    docker.update(healthy(docker), update_state="paused")
    assert wait(docker, Clock())[0].ready
    stuck, clock = FakeDocker(), Clock()
    name = stuck.add_service(STACK, "app").name
    stuck.update(name, update_state="paused", update_message="update paused due to failure")
    with pytest.raises(NotReady, match="s_app update paused"):
        wait(stuck, clock)
    assert 0.0 == clock.now  # no waiting out the timeout


def test_more_failures_than_the_limit_since_the_deploy_end_the_wait() -> None:
    """Failed tasks after ``since`` count; older ones do not; the last error is described."""
    docker, clock = FakeDocker(), Clock()
    name = docker.add_service(STACK, "app").name
    for _ in range(5):  # before the deploy: ignored
        docker.add_task(name, "failed", at=SINCE - timedelta(minutes=1))
    docker.add_task(name, health=Health("healthy"))
    assert 0 == wait(docker, clock, crash_limit=3)[0].failures
    for minute in range(4):
        unhealthy = Health("unhealthy", 1, "curl: connection refused")
        docker.add_task(
            name,
            "failed",
            at=SINCE + timedelta(minutes=minute + 1),
            exit_code=137,
            health=unhealthy,
        )
    with pytest.raises(NotReady, match="s_app keeps failing") as caught:
        wait(docker, Clock(), crash_limit=3)
    report = "\n".join(caught.value.report)
    assert "4 failed task(s)" in report
    assert "(exit 137); healthcheck unhealthy (exit 1): curl: connection refused" in report


def test_the_version_label_must_be_the_deployed_one() -> None:
    """Up is up at the version we deployed: another label waits, and the report says so."""
    docker, clock = FakeDocker(), Clock()
    healthy(docker, labels={version_label(STACK): "1.0.0+1"})
    assert wait(docker, clock, version="1.0.0+1")
    with pytest.raises(NotReady, match=r"version label is 1.0.0\+1, want 1.1.0\+1 after 5s"):
        wait(docker, Clock(), version="1.1.0+1", timeout=5.0)


def test_a_new_set_of_tasks_restarts_the_settle_window() -> None:
    """A task replaced mid-settle (a restart) restarts the window: up only 3 s after it."""
    docker = FakeDocker()
    name = healthy(docker)

    def restart_once(now: float) -> None:
        if now == 2.0:  # 2 s into the window the task is replaced by a new one
            docker.task_list[name].clear()
            docker.add_task(name, health=Health("healthy"))

    clock = Clock(restart_once)
    wait(docker, clock, settle=3.0, poll=0.5)
    assert clock.now >= 5.0


def test_swarms_monitor_period_and_the_settle_window_run_together() -> None:
    """Converged on the new spec while Swarm still says ``updating``: up one settle window after
    the old task stopped, not after Swarm's monitor period on top of it."""
    docker = FakeDocker()
    name = docker.add_service(STACK, "app").name
    docker.update(name, update_state="updating")
    old = docker.add_task(name, current=False)  # start-first: the old task still runs
    docker.add_task(name, health=Health("healthy"))

    def old_stops(now: float) -> None:
        if now == 1.0:
            docker.task_list[name].remove(old)
            docker.task_list[name].append(replace(old, desired_state="shutdown", state="shutdown"))

    clock = Clock(old_stops)
    states = wait(docker, clock, settle=3.0, poll=0.5)
    assert ("updating", 0) == (states[0].update, states[0].stale)
    assert 4.0 == clock.now  # the window opened when the old task stopped, at 1.0


def test_an_old_task_still_running_is_reported_and_keeps_the_service_waiting() -> None:
    """A task of an older spec that never stops: not up, and the report says why."""
    docker, clock = FakeDocker(), Clock()
    name = docker.add_service(STACK, "app").name
    docker.add_task(name, current=False)
    docker.add_task(name, health=Health("healthy"))
    with pytest.raises(NotReady, match="services not converged after 5s") as caught:
        wait(docker, clock, timeout=5.0)
    assert "s_app: 1/1 running, 1 of an older spec still running" in caught.value.report


def test_no_settle_window_is_up_at_the_first_converged_look() -> None:
    """``settle=0`` (a reattach of the known-good): up as soon as converged, without a sleep."""
    docker, clock = FakeDocker(), Clock()
    healthy(docker)
    wait(docker, clock, settle=0.0)
    assert 0.0 == clock.now


def test_the_probe_is_asked_only_once_settled_and_its_answer_is_reported() -> None:
    """A probe that never answers makes the wait time out with the probe's reason."""
    docker, clock = FakeDocker(), Clock()
    healthy(docker)
    asked: list[float] = []

    def probe() -> str | None:
        asked.append(clock.now)
        return "GET https://app/health: HTTP 502"

    with pytest.raises(NotReady, match="GET https://app/health: HTTP 502 after 10s") as caught:
        wait(docker, clock, timeout=10.0, probe=probe, settle=3.0)
    assert min(asked) >= 3.0
    assert "probe: GET https://app/health: HTTP 502" in caught.value.report


def test_a_global_service_wants_one_task_per_live_task_and_no_service_is_no_app() -> None:
    """A global service's desired count is its live tasks; a stack without services is not up."""
    docker = FakeDocker()
    name = docker.add_service(STACK, "agent", replicas=None).name
    docker.add_task(name)
    docker.add_task(name)
    assert (2, 2) == (wait(docker, Clock())[0].desired, wait(docker, Clock())[0].running)
    with pytest.raises(NotReady, match="no services after 1s"):
        wait(FakeDocker(), Clock(), timeout=1.0)


def test_loopback_port_is_the_host_mode_port_of_the_target() -> None:
    """The loopback probe uses the ``mode: host`` published port, never the ingress one."""
    docker = FakeDocker()
    ports = [Port(80, 8080, "ingress"), Port(80, 18080, "host"), Port(443, 18443, "host")]
    docker.add_service(STACK, "app", ports=ports)
    stack = Stack(docker, STACK)
    assert (18080, 18443, None) == (
        loopback_port(stack, "app", 80),
        loopback_port(stack, "app", 443),
        loopback_port(stack, "app", 8000),
    )
