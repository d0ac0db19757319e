"""Live-warm infra: ``<state>/_infra/<name>.json``, its reconcile lock, and its last-good snapshot.

The record of infra app ``name`` (``keycloak`` or ``traefik``) holds what runs (``version``), what
last passed the health gate (``last_good``), the reconcile in progress (``reconcile``), a held
upgrade (``held``) and the last outcome (``last``). ``cc-ci status`` shows them.

A reconcile is one process at a time per app (:meth:`InfraVersions.begin` hands out a token): the
record says which step it is at *before* each irreversible step (``undeploy``, ``snapshot``,
``deploy-new``, ``rollback``), so a reconcile killed at any point leaves what the next one needs
to finish the job. A holder is gone when its process is (the agent sees the peer's pid on the
socket) or when it stopped renewing (``RECONCILE_TTL``); the next ``begin`` then answers
``recovering`` with the dead one's step.

While a reconcile that guards realms (keycloak's) is in progress no lease with a realm is granted
(:meth:`realm_guard`), and it does not begin while one is live: both checks run under the leases
lock, so neither can slip past the other.

Keycloak's volumes are snapshotted with :class:`~ccci_agent.warmsnap.Warmsnap` (the same verified
manifest as canonicals), one last-good generation under ``_infra/<name>/``, flipped atomically.

A corrupt record is moved aside and alerted (``alerts``): the infra app then reads as never
recorded.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ccci_core.atomic import write_json
from ccci_core.docker_engine import DockerVolumes
from ccci_core.errors import InvalidName
from ccci_core.names import INFRA_APPS, validate_infra
from ccci_core.versions import Version

from .alerts import Alerts
from .errors import Conflict, NotFound, NotLeaseHolder
from .store import StateDir, read_json_or_quarantine
from .warmsnap import Warmsnap, now_iso

LOCK = "infra"
STEPS = ("begin", "undeploy", "snapshot", "deploy-new", "rollback")
OUTCOMES = ("applied", "no-op", "held", "rolled back", "deferred", "failed")
RECONCILE_BUSY, REALM_HELD = "reconcile-busy", "realm-held"  # a Conflict's kind: wait
RECONCILE_TTL = 120.0  # seconds without a step or renewal after which a holder counts as gone
Alive = Callable[[int, str], bool]


def is_record(value: Any) -> bool:
    """Return whether ``value`` looks like an infra record this module wrote."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("name"), str)
        and all(
            value.get(field) is None or isinstance(value.get(field), str)
            for field in ("version", "last_good")
        )
        and all(
            value.get(field) is None or isinstance(value.get(field), dict)
            for field in ("reconcile", "held", "last")
        )
    )


def process_start(pid: int) -> str | None:
    """Return the start time of process ``pid`` (``/proc/<pid>/stat`` field 22), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]  # fields after the command name, which may hold ")"


def process_alive(pid: int, start: str) -> bool:
    """Return whether the process ``pid`` that started at ``start`` still runs."""
    return process_start(pid) == start


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _version(text: str | None) -> str | None:
    return None if text is None else str(Version.parse(text))


class InfraVersions:
    """Read and record the live-warm infra apps, their reconcile lock and their snapshots."""

    def __init__(
        self,
        state: StateDir,
        alerts: Alerts | None = None,
        engine: DockerVolumes | None = None,
        *,
        tar: str = "tar",
        volume_wait: float = 60.0,
        clock: Callable[[], float] = time.time,
        alive: Alive = process_alive,
    ) -> None:
        self.state = state
        self.alerts = alerts if alerts is not None else Alerts(state)
        self.engine = engine
        self.tar = tar
        self.volume_wait = volume_wait
        self.clock = clock
        self.alive = alive

    # -- reading -------------------------------------------------------------------------------

    def _path(self, name: str) -> Path:
        return self.state.infra / f"{validate_infra(name)}.json"

    def _report(self, path: Path, moved: Path, reason: str) -> None:
        self.alerts.state_corrupt(path, moved, reason, "The infra app reads as never recorded.")

    def _public(self, record: dict[str, Any]) -> dict[str, Any]:
        out = dict(record)
        running = out.get("reconcile")
        if running is not None:
            out["reconcile"] = {k: v for k, v in running.items() if k != "token_hash"} | {
                "live": self._live(running)
            }
        return out

    def get(self, name: str) -> dict[str, Any] | None:
        """Return the record of infra app ``name``, if any."""
        record = self.state.peek_json(self._path(name), LOCK, self._report, is_record)
        return None if record is None else self._public(dict(record))

    def all(self) -> list[dict[str, Any]]:
        """Return every infra record, by name."""
        if not self.state.infra.is_dir():
            return []
        paths = sorted(p for p in self.state.infra.glob("*.json") if p.stem in INFRA_APPS)
        found = (self.state.peek_json(p, LOCK, self._report, is_record) for p in paths)
        return [self._public(dict(r)) for r in found if r is not None]

    def _read(self, name: str) -> dict[str, Any]:
        found = read_json_or_quarantine(self._path(name), self._report, is_record)
        return dict(found) if found else {"name": name, "version": None, "last_good": None}

    def _write(self, name: str, record: dict[str, Any]) -> dict[str, Any]:
        self.state.infra.mkdir(mode=0o750, parents=True, exist_ok=True)
        record["ts"] = now_iso()
        write_json(self._path(name), record)
        return record

    def _live(self, running: dict[str, Any]) -> bool:
        """Return whether the reconcile ``running`` still has a live holder."""
        if float(running.get("expires", 0)) <= self.clock():
            return False
        pid, start = running.get("pid"), running.get("pid_start")
        if isinstance(pid, int) and isinstance(start, str):
            return self.alive(pid, start)
        return True  # no pid known (not from a socket): the TTL alone decides

    def realm_guard(self) -> str | None:
        """Return why no lease with a realm may start now (a keycloak reconcile), or None.

        Call it holding the leases lock (``Leases.acquire`` does).
        """
        for name in INFRA_APPS:
            record = self.state.peek_json(self._path(name), LOCK, self._report, is_record)
            running = (record or {}).get("reconcile")
            if running and running.get("guard_realms") and self._live(running):
                return (
                    f"{name} is being reconciled ({running.get('from')} → {running.get('to')}, "
                    f"step {running.get('step')}); a run that needs it waits"
                )
        return None

    # -- the reconcile lock ----------------------------------------------------------------------

    def begin(
        self,
        name: str,
        *,
        current: str | None,
        target: str,
        guard_realms: bool,
        live_leases: list[dict[str, Any]],
        pid: int | None = None,
    ) -> dict[str, Any]:
        """Start a reconcile of ``name``: return its token, and what a dead one left to finish.

        Raise Conflict while another reconcile of ``name`` is live, or (``guard_realms``) while one
        of ``live_leases`` holds a realm. Call it holding the leases lock (``Leases.frozen``), so
        no realm lease starts between the check and the record.
        """
        current, target = _version(current), str(Version.parse(target))
        with self.state.lock(LOCK):
            record = self._read(name)
            running = record.get("reconcile")
            if running is not None and self._live(running):
                raise Conflict(
                    f"a reconcile of {name} is in progress (step {running.get('step')})",
                    kind=RECONCILE_BUSY,
                    pid=running.get("pid"),
                    step=running.get("step"),
                    since=running.get("started"),
                )
            if guard_realms:
                held = [lease for lease in live_leases if lease.get("realm")]
                if held:
                    first = held[0]
                    raise Conflict(
                        f"run {first['id']} holds realm {first['realm']}",
                        kind=REALM_HELD,
                        lease=first["id"],
                        realm=first["realm"],
                    )
            token = secrets.token_hex(16)
            start = process_start(pid) if pid is not None else None
            recovering = None
            if running is not None:  # its holder is gone: the new reconcile finishes its job
                recovering = {k: running[k] for k in ("step", "from", "to", "snapshot")}
            record["reconcile"] = {
                "token_hash": _hash(token),
                "pid": pid if start is not None else None,
                "pid_start": start,
                "started": now_iso(),
                "expires": self.clock() + RECONCILE_TTL,
                "from": current,
                "to": target,
                "step": "begin",
                "snapshot": bool(recovering and recovering.get("snapshot")),
                "guard_realms": guard_realms,
                "recovering": recovering,
            }
            self._write(name, record)
        return {"token": token, "recovering": recovering, "record": self._public(record)}

    def _held_by(self, record: dict[str, Any], token: str | None) -> dict[str, Any]:
        running = record.get("reconcile")
        if running is None:
            raise NotFound(f"no reconcile of {record['name']} is in progress")
        expected = running.get("token_hash")
        if token is None or not isinstance(expected, str):
            raise NotLeaseHolder(f"{record['name']}: no reconcile token")
        if not hmac.compare_digest(expected, _hash(token)):
            raise NotLeaseHolder(f"{record['name']}: wrong reconcile token")
        return dict(running)

    def step(
        self, name: str, token: str | None, step: str, *, snapshot: bool | None = None
    ) -> dict[str, Any]:
        """Record that the reconcile is about to take ``step`` (and renew its lock)."""
        if step not in STEPS:
            raise InvalidName("reconcile step", step, f"expected one of {', '.join(STEPS)}")
        with self.state.lock(LOCK):
            record = self._read(name)
            running = self._held_by(record, token)
            running["step"] = step
            if snapshot is not None:
                running["snapshot"] = snapshot
            running["expires"] = self.clock() + RECONCILE_TTL
            record["reconcile"] = running
            return self._public(self._write(name, record))

    def end(
        self,
        name: str,
        token: str | None,
        *,
        outcome: str,
        running: str | None,
        last_good: str | None,
        detail: str = "",
    ) -> dict[str, Any]:
        """End the reconcile: record what runs, the last-good and the outcome; drop the lock."""
        if outcome not in OUTCOMES:
            raise InvalidName("outcome", outcome, f"expected one of {', '.join(OUTCOMES)}")
        running, last_good = _version(running), _version(last_good)
        with self.state.lock(LOCK):
            record = self._read(name)
            held = self._held_by(record, token)
            record.update(version=running, last_good=last_good)
            record["reconcile"] = None
            if outcome == "applied" and record.get("held"):
                record["held"] = None  # what was held is applied (or superseded)
            record["last"] = {
                "outcome": outcome,
                "from": held.get("from"),
                "to": held.get("to"),
                "at": now_iso(),
                "detail": detail[:2000],
            }
            return self._public(self._write(name, record))

    def hold(self, name: str, held: dict[str, Any]) -> dict[str, Any]:
        """Record a held upgrade (no lock needed: it changes nothing deployed)."""
        with self.state.lock(LOCK):
            record = self._read(name)
            record["held"] = held | {"since": (record.get("held") or {}).get("since", now_iso())}
            return self._public(self._write(name, record))

    def observed(self, name: str, running: str | None, last_good: str | None) -> dict[str, Any]:
        """Record what a no-op reconcile found running and healthy (no lock: nothing changes)."""
        running, last_good = _version(running), _version(last_good)
        with self.state.lock(LOCK):
            record = self._read(name)
            if record.get("reconcile") is not None and self._live(record["reconcile"]):
                raise Conflict(f"a reconcile of {name} is in progress", kind=RECONCILE_BUSY)
            record.update(version=running, last_good=last_good)
            return self._public(self._write(name, record))

    # -- snapshots of stateful infra ----------------------------------------------------------

    def _warmsnap(self) -> Warmsnap:
        if self.engine is None:
            raise Conflict("this agent has no Docker engine")
        return Warmsnap(
            StateDir(self.state.infra), self.engine, tar=self.tar, wait_timeout=self.volume_wait
        )

    def snapshot(self, name: str, token: str | None, stack: str) -> dict[str, Any]:
        """Snapshot the (undeployed) infra app's volumes as its one last-good generation."""
        with self.state.lock(LOCK):
            running = self._held_by(self._read(name), token)
        with self.state.lock(f"infra-{name}"):
            return self._warmsnap().snapshot(name, stack, {"version": running.get("from")})

    def restore(self, name: str, token: str | None) -> dict[str, Any]:
        """Put the infra app's last-good snapshot back into its (undeployed) volumes."""
        with self.state.lock(LOCK):
            self._held_by(self._read(name), token)
        with self.state.lock(f"infra-{name}"):
            return self._warmsnap().restore(name)
