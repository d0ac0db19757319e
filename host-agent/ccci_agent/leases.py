"""Run leases: at most ``max_tests`` live runs, enforced with one flock-guarded file.

A run asks for a lease and renews it while alive; a lease whose holder stops renewing expires
after its TTL, so a killed run never blocks the host for long. Every change reads, prunes expired
leases and writes ``<state>/_leases.json`` atomically under the ``leases`` lock, so concurrent
gunicorn workers and processes never grant more than ``max_tests``.

A corrupt leases file is moved aside and alerted (``alerts``); the agent starts from no leases.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from ccci_core.atomic import write_json
from ccci_core.errors import InvalidName
from ccci_core.names import realm_name, validate_recipe

from .alerts import Alerts
from .errors import LeaseRefused, NotFound
from .store import StateDir, read_json_or_quarantine

Lane = Literal["cold", "quick", "sweep"]
_ID_RE = re.compile(r"[0-9a-f]{16}")
DEFAULT_TTL = 600
MAX_TTL = 6 * 3600
LOST = (
    "The agent starts from no leases: runs still live lost theirs, their renewals and releases"
    " will 404, and up to CCCI_MAX_TESTS more runs may start beside them."
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


class Leases:
    """Grant, renew, release and list run leases."""

    def __init__(
        self,
        state: StateDir,
        max_tests: int,
        clock: Callable[[], float] = time.time,
        alerts: Alerts | None = None,
    ) -> None:
        self.state = state
        self.max_tests = max_tests
        self.clock = clock
        self.alerts = alerts if alerts is not None else Alerts(state)

    def _report(self, path: Path, moved: Path, reason: str) -> None:
        self.alerts.state_corrupt(path, moved, reason, LOST)

    def _live(self) -> dict[str, dict[str, Any]]:
        held = read_json_or_quarantine(self.state.leases, self._report, is_leases) or {}
        now = self.clock()
        return {k: v for k, v in held.items() if v["expires"] > now}

    def acquire(
        self,
        recipe: str,
        lane: Lane,
        realm: str | None = None,
        ttl: int = DEFAULT_TTL,
        canonical: bool = False,
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
            held = sorted(live.values(), key=lambda lease: lease["acquired"])
            if len(live) >= self.max_tests:
                raise LeaseRefused(
                    f"{len(live)} of {self.max_tests} runs are live; try again later", held=held
                )
            if canonical and any(
                lease["recipe"] == recipe and lease.get("canonical") for lease in held
            ):
                raise LeaseRefused(f"another run holds the canonical of {recipe}", held=held)
            now = self.clock()
            lease = {
                "id": secrets.token_hex(8),
                "recipe": recipe,
                "lane": lane,
                "realm": realm,
                "canonical": canonical,
                "ttl": ttl,
                "acquired": now,
                "expires": now + ttl,
            }
            live[str(lease["id"])] = lease
            write_json(self.state.leases, live)
        return lease

    def renew(self, ident: str) -> dict[str, Any]:
        """Push a live lease's expiry one TTL ahead."""
        validate_lease_id(ident)
        with self.state.lock("leases"):
            live = self._live()
            if ident not in live:
                raise NotFound(f"no live lease {ident} (expired or released)", id=ident)
            live[ident]["expires"] = self.clock() + live[ident]["ttl"]
            write_json(self.state.leases, live)
            return dict(live[ident])

    def release(self, ident: str) -> None:
        """Drop a lease (releasing an expired lease is not an error)."""
        validate_lease_id(ident)
        with self.state.lock("leases"):
            live = self._live()
            live.pop(ident, None)
            write_json(self.state.leases, live)

    def listing(self) -> dict[str, Any]:
        """Return the live leases and whether anything is in flight."""
        with self.state.lock("leases"):
            live = sorted(self._live().values(), key=lambda lease: lease["acquired"])
        return {"in_flight": bool(live), "max_tests": self.max_tests, "leases": live}
