"""The reconcile's port to the host agent: :class:`SocketInfra` on the agent's Unix socket."""

from __future__ import annotations

from typing import Any

from ccci_core.agent_client import AgentClient, AgentClientError

from .infra import REALM_HELD, RECONCILE_BUSY
from .reconcile import Busy

CONFLICT = 409
BUSY_KINDS = (RECONCILE_BUSY, REALM_HELD)


class SocketInfra:
    """An :class:`~ccci_agent.reconcile.InfraPort` over ``/v1/infra`` and ``/v1/alerts``."""

    def __init__(self, client: AgentClient) -> None:
        self.client = client

    def record(self, name: str) -> dict[str, Any] | None:
        """Return the infra app's record, or None when it was never reconciled."""
        try:
            return dict(self.client.get(f"/v1/infra/{name}"))
        except AgentClientError as exc:
            if exc.http_status == 404:
                return None
            raise

    def begin(
        self, name: str, current: str | None, target: str, guard_realms: bool
    ) -> dict[str, Any]:
        """Take the reconcile lock; raise Busy while a run or another reconcile is in the way."""
        body = {"current": current, "target": target, "guard_realms": guard_realms}
        try:
            return dict(self.client.post(f"/v1/infra/{name}/begin", body))
        except AgentClientError as exc:
            details = (exc.body or {}).get("details", {}) if isinstance(exc.body, dict) else {}
            kind = details.get("kind")
            if exc.http_status == CONFLICT and kind in BUSY_KINDS:
                raise Busy(exc.reason, str(kind)) from exc
            raise

    def step(self, name: str, token: str, step: str, snapshot: bool | None = None) -> None:
        """Record the step about to be taken."""
        body: dict[str, Any] = {"token": token, "step": step}
        if snapshot is not None:
            body["snapshot"] = snapshot
        self.client.post(f"/v1/infra/{name}/step", body)

    def snapshot(self, name: str, token: str, stack: str) -> dict[str, Any]:
        """Snapshot the undeployed app's volumes."""
        return dict(
            self.client.post(f"/v1/infra/{name}/snapshot", {"token": token, "stack": stack})
        )

    def restore(self, name: str, token: str) -> dict[str, Any]:
        """Restore the snapshot into the undeployed app's volumes."""
        return dict(self.client.post(f"/v1/infra/{name}/restore", {"token": token}))

    def end(
        self,
        name: str,
        token: str,
        outcome: str,
        running: str | None,
        last_good: str | None,
        detail: str,
    ) -> None:
        """End the reconcile and drop the lock."""
        body = {
            "token": token,
            "outcome": outcome,
            "running": running,
            "last_good": last_good,
            "detail": detail[:2000],
        }
        self.client.post(f"/v1/infra/{name}/end", body)

    def hold(self, name: str, body: dict[str, Any]) -> bool:
        """Record a held upgrade; return whether its alert is new."""
        return bool(self.client.post(f"/v1/infra/{name}/hold", body)["new"])

    def observed(self, name: str, running: str | None, last_good: str | None) -> None:
        """Record what a no-op found running and healthy."""
        self.client.post(f"/v1/infra/{name}/observed", {"running": running, "last_good": last_good})

    def alert(self, kind: str, app: str, key: str, message: str, details: dict[str, Any]) -> None:
        """Raise an alert (deduplicated by ``key``)."""
        body = {"kind": kind, "app": app, "key": key, "message": message[:2000], "details": details}
        self.client.post("/v1/alerts", body)
