"""The plugin's view of the host agent: leases and the canonical registry, over its socket.

Lanes take the :class:`Agent` protocol; :class:`SocketAgent` is the adapter over
:class:`ccci_core.agent_client.AgentClient` (errors stay ``AgentClientError``, a ``CcciError``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ccci_core.agent_client import LEASE_HOLDER_HEADER, AgentClient, AgentClientError
from ccci_core.lanes import RunLane

BUSY = 409  # the agent's answer when MAX_TESTS leases are out or the canonical is held


@dataclass(frozen=True)
class Lease:
    """A granted run lease: its id, and the token that proves this run holds it."""

    id: str
    token: str = field(repr=False)  # never in a log line

    def __str__(self) -> str:
        return self.id


class Agent(Protocol):
    """What a run asks of the host agent."""

    def acquire(
        self,
        recipe: str,
        lane: RunLane,
        realm: str | None,
        ttl: int,
        canonical: bool,
        run_hex: str | None = None,
    ) -> Lease | None:
        """Return a lease (locking the canonical too if asked), or None while busy."""

    def renew(self, lease: Lease) -> None:
        """Keep a lease alive for another TTL."""

    def release(self, lease: Lease) -> None:
        """Give a lease back."""

    def canonical(self, recipe: str) -> dict[str, Any] | None:
        """Return the registry entry of ``recipe``, or None when it has no canonical."""

    def attach(self, recipe: str) -> bool:
        """Begin a deploy on the canonical (the agent restores first if needed); say if it did."""

    def seed(self, recipe: str, version: str) -> str:
        """Begin a re-seed deploy on the canonical; return the token its promote must carry."""

    def promote(
        self, recipe: str, domain: str, version: str, commit: str, seed: str | None
    ) -> dict[str, Any]:
        """Snapshot the undeployed canonical and record it as the known-good."""

    def restore(self, recipe: str) -> dict[str, Any]:
        """Restore the canonical's known-good data into its volumes."""


class SocketAgent:
    """An :class:`Agent` on the agent's Unix socket."""

    def __init__(self, client: AgentClient) -> None:
        self.client = client

    def acquire(
        self,
        recipe: str,
        lane: RunLane,
        realm: str | None,
        ttl: int,
        canonical: bool,
        run_hex: str | None = None,
    ) -> Lease | None:
        """Ask for a lease; None when the host is at MAX_TESTS or the canonical is held."""
        body: dict[str, Any] = {"recipe": recipe, "lane": lane, "ttl": ttl, "canonical": canonical}
        if realm is not None:
            body["realm"] = realm
        if run_hex is not None:
            body["run_hex"] = run_hex  # the janitor tells a live run's objects by it
        try:
            granted = self.client.post("/v1/leases", body)
        except AgentClientError as exc:
            if exc.http_status == BUSY:
                return None
            raise
        return Lease(str(granted["id"]), str(granted["token"]))

    def renew(self, lease: Lease) -> None:
        """Renew a lease."""
        self.client.post(f"/v1/leases/{lease.id}/renew", headers=_holder(lease))

    def release(self, lease: Lease) -> None:
        """Release a lease."""
        self.client.delete(f"/v1/leases/{lease.id}", headers=_holder(lease))

    def canonical(self, recipe: str) -> dict[str, Any] | None:
        """Return the canonical of ``recipe``, or None."""
        try:
            found = self.client.get(f"/v1/canonicals/{recipe}")
        except AgentClientError as exc:
            if exc.http_status == 404:
                return None
            raise
        return dict(found)

    def attach(self, recipe: str) -> bool:
        """Begin a deploy on the canonical of ``recipe``; return whether it was restored first."""
        answer = self.client.post(f"/v1/canonicals/{recipe}/attach")
        return answer.get("restored") is not None

    def seed(self, recipe: str, version: str) -> str:
        """Begin a re-seed of the canonical of ``recipe``."""
        answer = self.client.post(f"/v1/canonicals/{recipe}/seed", {"version": version})
        return str(answer["seed"])

    def promote(
        self, recipe: str, domain: str, version: str, commit: str, seed: str | None
    ) -> dict[str, Any]:
        """Promote the canonical of ``recipe`` (with the seed's token when it has one)."""
        body = {"domain": domain, "version": version, "commit": commit}
        if seed is not None:
            body["seed"] = seed
        return dict(self.client.post(f"/v1/canonicals/{recipe}/snapshot", body))

    def restore(self, recipe: str) -> dict[str, Any]:
        """Restore the canonical of ``recipe``."""
        return dict(self.client.post(f"/v1/canonicals/{recipe}/restore"))


def _holder(lease: Lease) -> dict[str, str]:
    return {LEASE_HOLDER_HEADER: lease.token}
