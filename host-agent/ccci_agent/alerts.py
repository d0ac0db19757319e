"""Alerts: one sentinel JSON per alert, deduplicated by a key, acknowledged into ``seen/``.

An alert's id is derived from its key, so raising the same condition again (the same held upgrade,
every reconcile) finds the existing alert, active or already acknowledged, and creates nothing.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from ccci_core.atomic import fsync_dir, write_json
from ccci_core.errors import InvalidName

from .errors import NotFound
from .store import StateDir, read_json
from .warmsnap import now_iso

_ID_RE = re.compile(r"[0-9a-f]{16}")


def alert_id(key: str) -> str:
    """Return the id of the alert deduplicated by ``key``."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def validate_alert_id(value: object) -> str:
    """Return ``value`` if it can be an alert id (it reaches a path)."""
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise InvalidName("alert id", value, "expected 16 lowercase hex digits")
    return value


class Alerts:
    """Raise, list and acknowledge alerts under ``<state>/alerts``."""

    def __init__(self, state: StateDir) -> None:
        self.state = state

    def raise_(
        self, kind: str, app: str | None, key: str, message: str, details: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        """Record an alert unless one with ``key`` exists; return it and whether it is new."""
        ident = alert_id(key)
        with self.state.lock("alerts"):
            for folder in (self.state.alerts, self.state.alerts / "seen"):
                existing = read_json(folder / f"{ident}.json")
                if existing is not None:
                    return dict(existing), False
            alert = {
                "id": ident,
                "kind": kind,
                "app": app,
                "key": key,
                "message": message,
                "details": details,
                "ts": now_iso(),
            }
            self.state.alerts.mkdir(mode=0o750, parents=True, exist_ok=True)
            write_json(self.state.alerts / f"{ident}.json", alert)
        return alert, True

    def active(self) -> list[dict[str, Any]]:
        """Return the active alerts, oldest first."""
        if not self.state.alerts.is_dir():
            return []
        found = [read_json(p) for p in self.state.alerts.glob("*.json")]
        return sorted((dict(a) for a in found if a is not None), key=lambda a: (a["ts"], a["id"]))

    def ack(self, ident: str) -> dict[str, Any]:
        """Move an active alert to ``seen/``."""
        validate_alert_id(ident)
        seen = self.state.alerts / "seen"
        with self.state.lock("alerts"):
            source = self.state.alerts / f"{ident}.json"
            alert = read_json(source)
            if alert is None:
                raise NotFound(f"no active alert {ident}", id=ident)
            seen.mkdir(mode=0o750, parents=True, exist_ok=True)
            source.replace(seen / source.name)
            fsync_dir(seen)
            fsync_dir(self.state.alerts)
        return dict(alert)
