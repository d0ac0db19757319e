"""Convergence rules of one service, including Swarm's ``paused`` trap."""

from __future__ import annotations

import pytest

from ccci_core.deploy.health import ServiceState


@pytest.mark.parametrize(
    ("running", "update", "unhealthy", "ready", "stuck"),
    [
        (1, None, [], True, False),
        (1, "completed", [], True, False),
        (0, None, [], False, False),
        (1, None, ["abc starting"], False, False),
        (1, "updating", [], False, False),
        # The trap: one flicker pauses the update for good although the new task runs fine.
        (1, "paused", [], True, False),
        (0, "paused", [], False, True),
        (1, "paused", ["abc unhealthy"], False, True),
        (1, "rollback_started", [], False, False),
        (1, "rollback_completed", [], False, True),
        (1, "rollback_paused", [], False, True),
    ],
)
def test_ready_and_stuck(
    running: int, update: str | None, unhealthy: list[str], ready: bool, stuck: bool
) -> None:
    """A service is ready only when converged and not mid-update; stuck when Swarm gave up."""
    state = ServiceState("s_app", 1, running, update, unhealthy=unhealthy)
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
