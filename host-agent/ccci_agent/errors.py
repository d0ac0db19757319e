"""The host agent's exception tree (its one root is :class:`AgentError`).

    CcciError (core)
    ├── BadInput (core)         HTTP 400 / exit 2; names refused by ``ccci_core.names`` land here
    └── AgentError              ``status`` is the HTTP status the API answers with
        ├── NotFound            404: no such canonical, snapshot, alert or lease
        ├── Conflict            409: volume in use, restore pending, app deployed, alert re-raised
        ├── LeaseRefused        409: MAX_TESTS live runs already hold a lease (``held`` lists them)
        ├── SnapshotCorrupt     500: a manifest or a tar does not verify (an alert is raised)
        ├── StateCorrupt        500: a state file cannot be read (``path``; reported, alerted)
        ├── StorageFull         507: the state directory's or a volume's filesystem is full
        ├── EngineError         502: Docker failed (mapped from ``docker.errors`` in ``engine``)
        ├── TarError            500: GNU tar failed (``returncode`` and the tail of stderr)
        └── Forbidden           403: the peer is neither root nor in the socket's group
            └── NotLeaseHolder  403: a lease renewed or released without its holder's token

Clients of the agent get ``ccci_core.agent_client`` errors instead (they live in the core).

Every route maps these to ``{"error": kind, "reason": message, "details": {...}}`` with ``status``.
"""

from __future__ import annotations

from typing import Any

from ccci_core.errors import CcciError


class AgentError(CcciError):
    """Root of every error the host agent raises on purpose."""

    status = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message, **details)


class NotFound(AgentError):
    """Report a canonical, snapshot, alert or lease that does not exist."""

    status = 404
    exit_code = 2


class Conflict(AgentError):
    """Refuse an action the current state forbids (volume in use, restore pending, deployed)."""

    status = 409


class LeaseRefused(Conflict):
    """Refuse a lease: MAX_TESTS runs are live."""


class SnapshotCorrupt(AgentError):
    """Report a snapshot whose manifest or tar does not verify."""


class StateCorrupt(AgentError):
    """Report a state file (registry, live state, marker) that cannot be read."""


class StorageFull(AgentError):
    """Report a write that found no space left; what was there before is intact."""

    status = 507


class EngineError(AgentError):
    """Report a failed Docker engine call."""

    status = 502


class TarError(AgentError):
    """Report a failed GNU tar run."""


class Forbidden(AgentError):
    """Refuse a peer that is neither root nor a member of the socket's group."""

    status = 403


class NotLeaseHolder(Forbidden):
    """Refuse to renew or release a lease without its holder's token."""
