"""Run leases: at most ``max_tests`` live runs, enforced with one flock-guarded file.

A run asks for a lease and renews it while alive; a lease whose holder stops renewing expires
after its TTL, so a killed run never blocks the host for long. Every change reads, prunes expired
leases and writes ``<state>/_leases.json`` atomically under the ``leases`` lock, so concurrent
gunicorn workers and processes never grant more than ``max_tests``.

A lease is tied to its holder: ``acquire`` returns a ``token`` (once; the file keeps its sha256)
that ``renew`` and ``release`` require, so no other member of the socket's group can keep a lease
alive or take it away. Root may ``release(..., force=True)`` a stuck lease without it. No listing
shows a token or its hash.

A corrupt leases file is moved aside and alerted (``alerts``); the agent starts from no leases.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ccci_core.atomic import write_json
from ccci_core.errors import InvalidName
from ccci_core.lanes import RunLane
from ccci_core.names import realm_name, validate_hex, validate_recipe

from .alerts import Alerts
from .errors import LeaseRefused, NotFound, NotLeaseHolder
from .store import StateDir, read_json_or_quarantine

_ID_RE = re.compile(r"[0-9a-f]{16}")
_HASH_FIELD = "token_sha256"
DEFAULT_TTL = 600
MAX_TTL = 6 * 3600
LOST = (
    "The agent starts from no leases: runs still live lost theirs, their renewals will 404,"
    " and up to CCCI_MAX_TESTS more runs may start beside them."
)


def validate_lease_id(value: object) -> str:
    """Return ``value`` if it can be a lease id."""
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise InvalidName("lease id", value, "expected 16 lowercase hex digits")
    return value


def validate_realm(recipe: str, realm: str) -> str:
    """Return ``realm`` if it is a run realm ``<recipe>-<6hex>`` of ``recipe``."""
    head, _, run_hex = realm.rpartition("-")
    if head != recipe:
        raise InvalidName("realm", realm, f"expected {recipe}-<6hex>")
    return realm_name(recipe, run_hex)


def is_leases(value: Any) -> bool:
    """Return whether ``value`` looks like the leases file this module writes."""
    return isinstance(value, dict) and all(
        isinstance(lease, dict)
        and all(isinstance(lease.get(k), int | float) for k in ("expires", "ttl", "acquired"))
        and isinstance(lease.get("recipe"), str)
        for lease in value.values()
    )


def _acquired(lease: dict[str, Any]) -> float:
    return float(lease["acquired"])


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _public(lease: dict[str, Any]) -> dict[str, Any]:
    """Return ``lease`` as anyone may see it: without its token's hash."""
    return {k: v for k, v in lease.items() if k != _HASH_FIELD}


class Leases:
    """Grant, renew, release and list run leases."""

    def __init__(
        self,
        state: StateDir,
        max_tests: int,
        clock: Callable[[], float] = time.time,
        alerts: Alerts | None = None,
        realm_guard: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.state = state
        self.max_tests = max_tests
        self.clock = clock
        self.alerts = alerts if alerts is not None else Alerts(state)
        self.realm_guard = realm_guard  # why a run with a realm must wait now (keycloak reconcile)

    def _report(self, path: Path, moved: Path, reason: str) -> None:
        self.alerts.state_corrupt(path, moved, reason, LOST)

    def _live(self) -> dict[str, dict[str, Any]]:
        held = read_json_or_quarantine(self.state.leases, self._report, is_leases) or {}
        now = self.clock()
        return {k: v for k, v in held.items() if v["expires"] > now}

    def acquire(
        self,
        recipe: str,
        lane: RunLane,
        realm: str | None = None,
        ttl: int = DEFAULT_TTL,
        canonical: bool = False,
        run_hex: str | None = None,
    ) -> dict[str, Any]:
        """Grant a lease, or raise LeaseRefused when ``max_tests`` runs are live.

        A lease with ``canonical`` also locks the recipe's canonical (a quick run attaches it, a
        cold run on latest may promote it): two such leases of one recipe are never live at once.
        """
        validate_recipe(recipe)
        if realm is not None:
            validate_realm(recipe, realm)
        with self.state.lock("leases"):
            live = self._live()
            held = [_public(lease) for lease in sorted(live.values(), key=_acquired)]
            if len(live) >= self.max_tests:
                raise LeaseRefused(
                    f"{len(live)} of {self.max_tests} runs are live; try again later", held=held
                )
            if canonical and any(
                lease["recipe"] == recipe and lease.get("canonical") for lease in held
            ):
                raise LeaseRefused(f"another run holds the canonical of {recipe}", held=held)
            guarded = self.realm_guard() if realm is not None else None
            if guarded is not None:
                raise LeaseRefused(guarded, held=held)
            now = self.clock()
            token = secrets.token_hex(16)
            lease = {
                "id": secrets.token_hex(8),
                "recipe": recipe,
                "lane": lane,
                "realm": realm,
                "canonical": canonical,
                "run_hex": None if run_hex is None else validate_hex(run_hex),
                "ttl": ttl,
                "acquired": now,
                "expires": now + ttl,
            }
            live[str(lease["id"])] = lease | {_HASH_FIELD: _hash(token)}
            write_json(self.state.leases, live)
        return lease | {"token": token}

    def renew(self, ident: str, token: str | None) -> dict[str, Any]:
        """Push a live lease's expiry one TTL ahead; only its holder (``token``) may."""
        validate_lease_id(ident)
        with self.state.lock("leases"):
            live = self._live()
            if ident not in live:
                raise NotFound(f"no live lease {ident} (expired or released)", id=ident)
            self._check_holder(live[ident], token)
            live[ident]["expires"] = self.clock() + live[ident]["ttl"]
            write_json(self.state.leases, live)
            return _public(live[ident])

    def release(self, ident: str, token: str | None, *, force: bool = False) -> None:
        """Drop a lease: its holder (``token``) may, or anyone with ``force`` (the API: root).

        Releasing an expired or released lease is not an error.
        """
        validate_lease_id(ident)
        with self.state.lock("leases"):
            live = self._live()
            if ident not in live:
                return
            if not force:
                self._check_holder(live[ident], token)
            del live[ident]
            write_json(self.state.leases, live)

    @staticmethod
    def _check_holder(lease: dict[str, Any], token: str | None) -> None:
        if token is None:
            reason = f"lease {lease['id']}: no holder token (only the run holding it may change it)"
            raise NotLeaseHolder(reason, id=lease["id"])
        expected = lease.get(_HASH_FIELD)
        if not isinstance(expected, str) or not hmac.compare_digest(expected, _hash(token)):
            raise NotLeaseHolder(f"lease {lease['id']}: wrong holder token", id=lease["id"])

    @contextlib.contextmanager
    def frozen(self) -> Iterator[list[dict[str, Any]]]:
        """Hold the leases lock and yield the live leases: none is granted until the block ends."""
        with self.state.lock("leases"):
            yield [_public(lease) for lease in sorted(self._live().values(), key=_acquired)]

    def listing(self) -> dict[str, Any]:
        """Return the live leases (without tokens) and whether anything is in flight."""
        with self.state.lock("leases"):
            live = [_public(lease) for lease in sorted(self._live().values(), key=_acquired)]
        return {"in_flight": bool(live), "max_tests": self.max_tests, "leases": live}
