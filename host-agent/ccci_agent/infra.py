"""Live-warm infra versions: ``<state>/_infra/<name>.json`` with the running and last-good versions.

The infra reconcile (keycloak, traefik) records here what it deployed and what last passed its
health check; ``cc-ci status`` shows them. A corrupt record is moved aside and alerted (``alerts``):
the infra then reads as never recorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ccci_core.atomic import write_json
from ccci_core.names import validate_recipe
from ccci_core.versions import Version

from .alerts import Alerts
from .store import StateDir, read_json_or_quarantine
from .warmsnap import now_iso

LOCK = "infra"


def is_record(value: Any) -> bool:
    """Return whether ``value`` looks like an infra record this module wrote."""
    return isinstance(value, dict) and all(
        isinstance(value.get(field), str) for field in ("name", "version")
    )


class InfraVersions:
    """Read and record the versions of live-warm infra apps."""

    def __init__(self, state: StateDir, alerts: Alerts | None = None) -> None:
        self.state = state
        self.alerts = alerts if alerts is not None else Alerts(state)

    def _path(self, name: str) -> Path:
        return self.state.infra / f"{validate_recipe(name)}.json"

    def _report(self, path: Path, moved: Path, reason: str) -> None:
        self.alerts.state_corrupt(path, moved, reason, "The infra app reads as never recorded.")

    def get(self, name: str) -> dict[str, Any] | None:
        """Return the record of infra app ``name``, if any."""
        record = self.state.peek_json(self._path(name), LOCK, self._report, is_record)
        return None if record is None else dict(record)

    def all(self) -> list[dict[str, Any]]:
        """Return every infra record, by name."""
        if not self.state.infra.is_dir():
            return []
        paths = sorted(self.state.infra.glob("*.json"))
        found = (self.state.peek_json(p, LOCK, self._report, is_record) for p in paths)
        return [dict(r) for r in found if r is not None]

    def record(self, name: str, version: str, *, healthy: bool) -> dict[str, Any]:
        """Record that ``version`` of ``name`` runs; a healthy one becomes the last-good."""
        Version.parse(version)
        path = self._path(name)
        self.state.infra.mkdir(mode=0o750, parents=True, exist_ok=True)
        with self.state.lock(LOCK):
            previous = read_json_or_quarantine(path, self._report, is_record) or {}
            record = {
                "name": name,
                "version": version,
                "last_good": version if healthy else previous.get("last_good"),
                "ts": now_iso(),
            }
            write_json(path, record)
        return record
