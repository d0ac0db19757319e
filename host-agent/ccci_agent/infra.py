"""Live-warm infra versions: ``<state>/_infra/<name>.json`` with the running and last-good versions.

The infra reconcile (keycloak, traefik) records here what it deployed and what last passed its
health check; ``cc-ci status`` shows them.
"""

from __future__ import annotations

from typing import Any

from ccci_core.atomic import write_json
from ccci_core.names import validate_recipe
from ccci_core.versions import Version

from .store import StateDir, read_json
from .warmsnap import now_iso


class InfraVersions:
    """Read and record the versions of live-warm infra apps."""

    def __init__(self, state: StateDir) -> None:
        self.state = state

    def get(self, name: str) -> dict[str, Any] | None:
        """Return the record of infra app ``name``, if any."""
        record = read_json(self.state.infra / f"{validate_recipe(name)}.json")
        return None if record is None else dict(record)

    def all(self) -> list[dict[str, Any]]:
        """Return every infra record, by name."""
        if not self.state.infra.is_dir():
            return []
        found = (read_json(p) for p in sorted(self.state.infra.glob("*.json")))
        return [dict(r) for r in found if r is not None]

    def record(self, name: str, version: str, *, healthy: bool) -> dict[str, Any]:
        """Record that ``version`` of ``name`` runs; a healthy one becomes the last-good."""
        Version.parse(version)
        previous = self.get(name) or {}
        record = {
            "name": name,
            "version": version,
            "last_good": version if healthy else previous.get("last_good"),
            "ts": now_iso(),
        }
        self.state.infra.mkdir(mode=0o750, parents=True, exist_ok=True)
        write_json(self.state.infra / f"{name}.json", record)
        return record
