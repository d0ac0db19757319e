"""The run lease through the plugin's SocketAgent on a real host agent: held, renewed, released."""

from __future__ import annotations

import pytest

from ccci_core.agent_client import AgentClientError
from ccci_plugin.agent import Lease, SocketAgent
from ccci_plugin.lease import held_lease
from tests.plugin.conftest import Agent


def test_a_held_lease_is_renewed_and_released_by_its_holder(agent: Agent) -> None:
    """The lease keeps its token to itself: logs and repr show only the id."""
    said: list[str] = []
    socket_agent = SocketAgent(agent.client())
    held = held_lease(socket_agent, "a", "cold", None, canonical=False, wait=0, say=said.append)
    with held as lease:
        listed = agent.client().get("/v1/leases")["leases"]
        socket_agent.renew(lease)
    assert [lease.id] == [held["id"] for held in listed]
    assert lease.token not in f"{lease} {lease!r} {said}"
    assert [] == agent.client().get("/v1/leases")["leases"]


def test_another_run_cannot_release_or_renew_a_lease(agent: Agent) -> None:
    """A forged Lease with the right id but not the token is refused (403)."""
    socket_agent = SocketAgent(agent.client())
    granted = socket_agent.acquire("a", "cold", None, 60, False)
    assert granted is not None
    forged = Lease(granted.id, "0" * 32)
    try:
        for call in (socket_agent.renew, socket_agent.release):
            with pytest.raises(AgentClientError) as refused:
                call(forged)
            assert 403 == refused.value.http_status
    finally:
        socket_agent.release(granted)
    assert [] == agent.client().get("/v1/leases")["leases"]
