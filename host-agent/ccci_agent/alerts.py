"""Alerts: one sentinel JSON per alert, deduplicated by a key, acknowledged into ``seen/``.

An alert's id is derived from its key, so raising the same condition again while its alert is
active (the same held upgrade, every reconcile) finds it and creates nothing. Acknowledging moves
it to ``seen/<id>-<utc-ts>.json`` (every acknowledgement of a key is kept); the key raised after
that is a new occurrence (same id, another ``ts``) and alerts again. The relay acknowledges with
the ``ts`` it delivered, so an occurrence raised meanwhile is never archived undelivered.

A corrupt state file (an alert here, the leases, an infra record) is moved aside by
``store.quarantine`` and reported as a ``state-corrupt`` alert naming it; the agent serves on.
"""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ccci_core.atomic import fsync_dir, write_json
from ccci_core.errors import CcciError, InvalidName

from .errors import Conflict, NotFound
from .store import StateDir, read_json_or_quarantine
from .warmsnap import now_iso

log = logging.getLogger(__name__)
_ID_RE = re.compile(r"[0-9a-f]{16}")
STATE_CORRUPT = "state-corrupt"


def alert_id(key: str) -> str:
    """Return the id of the alert deduplicated by ``key``."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def validate_alert_id(value: object) -> str:
    """Return ``value`` if it can be an alert id (it reaches a path)."""
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise InvalidName("alert id", value, "expected 16 lowercase hex digits")
    return value


def is_alert(value: Any) -> bool:
    """Return whether ``value`` looks like an alert this module wrote (listing sorts on it)."""
    return isinstance(value, dict) and all(
        isinstance(value.get(field), str) for field in ("id", "kind", "key", "message", "ts")
    )


class Alerts:
    """Raise, list and acknowledge alerts under ``<state>/alerts``."""

    def __init__(self, state: StateDir) -> None:
        self.state = state

    def raise_(
        self, kind: str, app: str | None, key: str, message: str, details: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        """Record an alert unless one with ``key`` exists; return it and whether it is new."""
        with self.state.lock("alerts"):
            return self._raise(kind, app, key, message, details)

    def raise_once(
        self, kind: str, app: str | None, key: str, message: str, details: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        """Record an alert unless one with ``key`` is active or was ever acknowledged.

        For a condition seen on every read (a broken file): its key names the occurrence, and an
        acknowledged occurrence stays quiet; a new one (another key) alerts again.
        """
        with self.state.lock("alerts"):
            ident = alert_id(key)
            acknowledged = sorted((self.state.alerts / "seen").glob(f"{ident}-*.json"))
            if acknowledged:
                return {"id": ident, "key": key, "acknowledged": True}, False
            return self._raise(kind, app, key, message, details)

    def _raise(
        self, kind: str, app: str | None, key: str, message: str, details: dict[str, Any]
    ) -> tuple[dict[str, Any], bool]:
        ident = alert_id(key)
        existing = self._read(self.state.alerts / f"{ident}.json")
        if existing is not None:
            return existing, False
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

    def _read(self, path: Path) -> dict[str, Any] | None:
        """Read an alert holding the lock; a corrupt one is moved aside and alerted."""
        found = read_json_or_quarantine(path, self._report_locked, is_alert)
        return None if found is None else dict(found)

    def state_corrupt(self, path: Path, moved: Path, reason: str, consequence: str = "") -> None:
        """Raise a ``state-corrupt`` alert naming the file moved aside; never fail the caller."""
        try:
            with self.state.lock("alerts"):
                self._state_corrupt(path, moved, reason, consequence)
        except (OSError, CcciError):
            log.exception("cannot raise the state-corrupt alert for %s (moved to %s)", path, moved)

    def _report_locked(self, path: Path, moved: Path, reason: str) -> None:
        self._state_corrupt(path, moved, reason, "")

    def _state_corrupt(self, path: Path, moved: Path, reason: str, consequence: str) -> None:
        log.error("%s is corrupt (%s): moved to %s", path, reason, moved)
        where = self._relative(path)
        message = f"{where} was corrupt ({reason}); moved aside to {moved.name}"
        details = {"path": str(path), "moved_to": str(moved), "reason": reason}
        key = f"{STATE_CORRUPT}:{self._relative(moved)}"  # one alert per quarantined file
        self._raise(STATE_CORRUPT, None, key, f"{message}. {consequence}".strip(), details)

    def _relative(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.state.root))
        except ValueError:
            return str(path)

    def active(self) -> list[dict[str, Any]]:
        """Return the active alerts, oldest first (a corrupt one is moved aside and alerted)."""
        if not self.state.alerts.is_dir():
            return []
        found = self._listing()
        if None in found:  # gone (acknowledged) or corrupt, moved aside and now alerted: again
            found = self._listing()
        return sorted((dict(a) for a in found if a is not None), key=lambda a: (a["ts"], a["id"]))

    def _listing(self) -> list[Any]:
        paths = sorted(self.state.alerts.glob("*.json"))
        return [self.state.peek_json(p, "alerts", self._report_locked, is_alert) for p in paths]

    def ack(self, ident: str, ts: str | None = None) -> dict[str, Any]:
        """Move an active alert to ``seen/<id>-<utc-ts>.json``; return it.

        With ``ts``, only the occurrence raised then (what a relay delivered): a newer one of the
        same key is refused as a Conflict and stays active.
        """
        validate_alert_id(ident)
        seen = self.state.alerts / "seen"
        with self.state.lock("alerts"):
            source = self.state.alerts / f"{ident}.json"
            alert = self._read(source)
            if alert is None:
                raise NotFound(f"no active alert {ident}", id=ident)
            if ts is not None and alert["ts"] != ts:
                raise Conflict(
                    f"alert {ident} was raised again at {alert['ts']} (not the occurrence of {ts})",
                    id=ident,
                    ts=alert["ts"],
                )
            seen.mkdir(mode=0o750, parents=True, exist_ok=True)
            stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
            target, n = seen / f"{ident}-{stamp}.json", 1
            while target.exists():  # acknowledged twice within a second: keep both
                n += 1
                target = seen / f"{ident}-{stamp}-{n}.json"
            source.rename(target)
            fsync_dir(seen)
            fsync_dir(self.state.alerts)
        return alert
