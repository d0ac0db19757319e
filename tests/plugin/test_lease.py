"""The run lease on the fake agent: waiting while busy, renewing, releasing whatever happened."""

from __future__ import annotations

import threading

import pytest

from ccci_core.agent_client import AgentClientError
from ccci_plugin.agent import Lease
from ccci_plugin.errors import LeaseUnavailable
from ccci_plugin.lease import held_lease
from tests.plugin.fakes import FakeAgent


class Clock:
    """A clock that moves only when the lease sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        """Advance the clock instead of sleeping."""
        self.slept.append(seconds)
        self.now += seconds


def test_a_lease_granted_at_once_is_held_for_the_block_and_released(
    fake_agent: FakeAgent,
) -> None:
    """No waiting said; the lease asked with the run's lane, realm and canonical lock."""
    said: list[str] = []
    with held_lease(
        fake_agent, "app", "quick", "app-abc123", canonical=True, wait=0, say=said.append
    ) as lease:
        assert [lease.id] == list(fake_agent.leases)
    assert ([], {}) == (said, fake_agent.leases)
    assert [("acquire", "app", "quick", "app-abc123", 600, True), ("release", lease.id)] == (
        fake_agent.calls
    )


def test_a_lease_is_released_when_the_run_fails(fake_agent: FakeAgent) -> None:
    """An error inside the block still gives the lease back, and propagates."""
    with (
        pytest.raises(RuntimeError, match="boom"),
        held_lease(fake_agent, "app", "cold", None, canonical=False, wait=0, say=print),
    ):
        raise RuntimeError("boom")
    assert ({}, "release") == (fake_agent.leases, fake_agent.calls[-1][0])


def test_a_busy_host_is_waited_for_and_polled(fake_agent: FakeAgent) -> None:
    """Busy twice: the wait is said once, the agent polled every ``poll`` seconds until granted."""
    fake_agent.busy = 2
    clock, said = Clock(), []
    with held_lease(
        fake_agent,
        "app",
        "cold",
        None,
        canonical=False,
        wait=60,
        poll=5,
        say=said.append,
        clock=clock,
        sleep=clock.sleep,
    ):
        pass
    assert ([5, 5], 3) == (clock.slept, fake_agent.calls.verbs().count("acquire"))
    assert said[0].startswith("waiting up to 60s for a run lease")
    assert 2 == len(said)


def test_no_lease_within_the_wait_raises_and_releases_nothing(fake_agent: FakeAgent) -> None:
    """Still busy at the deadline: LeaseUnavailable names the wait; no release is sent."""
    fake_agent.busy = 100
    clock = Clock()
    with (
        pytest.raises(LeaseUnavailable, match="no run lease after 12s"),
        held_lease(
            fake_agent,
            "app",
            "cold",
            None,
            canonical=False,
            wait=12,
            poll=5,
            say=lambda _: None,
            clock=clock,
            sleep=clock.sleep,
        ),
    ):
        pytest.fail("the block ran without a lease")
    assert [5, 5, 5] == clock.slept
    assert "release" not in fake_agent.calls.verbs()


def test_another_runs_canonical_lock_is_waited_for(fake_agent: FakeAgent) -> None:
    """A second run that locks the canonical waits while the first holds it, then gets it."""
    fake_agent.max_leases = 2
    clock = Clock()
    first = fake_agent.acquire("app", "quick", None, 600, True)
    assert first is not None

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        fake_agent.release(first)  # the first run ends while the second waits

    with held_lease(
        fake_agent,
        "app",
        "cold",
        None,
        canonical=True,
        wait=60,
        say=lambda _: None,
        clock=clock,
        sleep=sleep,
    ) as second:
        assert [second.id] == list(fake_agent.leases)
    assert [5.0] == clock.slept


class Renewals(FakeAgent):
    """A fake agent that says when a lease was renewed."""

    def __init__(self) -> None:
        super().__init__()
        self.renewed = threading.Event()

    def renew(self, lease: Lease) -> None:
        """Renew, then say so."""
        try:
            super().renew(lease)
        finally:
            self.renewed.set()


def test_a_held_lease_is_renewed_in_the_background() -> None:
    """Every third of the TTL the holder renews it (a TTL of 1 s: within a third of a second)."""
    agent = Renewals()
    with held_lease(agent, "app", "cold", None, canonical=False, wait=0, ttl=1, say=print):
        assert agent.renewed.wait(timeout=60), "the lease was never renewed"
    assert "renew" in agent.calls.verbs()
    assert {} == agent.leases


def test_a_failed_renewal_is_a_warning_and_the_lease_is_still_released() -> None:
    """The agent answers a renewal with a 500: said as a warning; the run keeps its lease."""
    agent, said = Renewals(), []
    agent.refuse["renew"] = AgentClientError(500, "disk full")
    with held_lease(agent, "app", "cold", None, canonical=False, wait=0, ttl=1, say=said.append):
        assert agent.renewed.wait(timeout=60), "the lease was never renewed"
    assert said[0].startswith("warning: renewing lease lease-1 failed: agent: disk full")
    assert ({}, "release") == (agent.leases, agent.calls[-1][0])


def test_a_failed_release_is_a_warning_naming_the_ttl(fake_agent: FakeAgent) -> None:
    """The release is refused: the run is not failed for it; the lease expires after its TTL."""
    said: list[str] = []
    fake_agent.refuse["release"] = AgentClientError(503, "restarting")
    with held_lease(fake_agent, "app", "cold", None, canonical=False, wait=0, say=said.append):
        pass
    assert [
        "warning: releasing lease lease-1 failed (agent: restarting (HTTP 503)); it expires "
        "after 600s"
    ] == said
