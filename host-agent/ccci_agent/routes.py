"""The agent's routes: the ``/v1`` blueprint, one thin function per verb of the closed set.

Each route reads its body with :func:`ccci_agent.bodies.read`, calls one service and answers JSON;
errors are raised and :mod:`ccci_agent.app` maps them. The peer was checked before a route runs.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from ccci_core import __version__
from ccci_core.agent_client import LEASE_HOLDER_HEADER
from ccci_core.errors import BadInput

from .bodies import (
    AlertBody,
    LeaseBody,
    MarkBody,
    PromoteBody,
    PruneBody,
    SeedBody,
    read,
    read_optional,
)
from .errors import Forbidden
from .services import AgentServices

v1 = Blueprint("v1", __name__, url_prefix="/v1")


def _services() -> AgentServices:
    services: AgentServices = current_app.extensions["ccci_agent"]
    return services


@v1.get("/status")
def status() -> Response:
    """Return everything an operator looks at: canonicals, infra, leases, alerts, disk."""
    services = _services()
    canonicals = services.canonicals.all()
    return jsonify(
        version=__version__,
        state_dir=str(services.state.root),
        max_tests=services.settings.max_tests,
        canonicals=canonicals,
        infra=services.infra.all(),
        leases=services.leases.listing(),
        alerts=services.alerts.active(),
        disk={
            "/": _disk(Path("/")),
            "state_dir": _disk(services.state.root),
            "snapshots_bytes": sum((c["snapshot"] or {}).get("size", 0) for c in canonicals),
        },
    )


def _disk(path: Path) -> dict[str, Any]:
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return {"path": str(path), "error": "unavailable"}
    return {
        "path": str(path),
        "total": usage.total,
        "used": usage.used,
        "free": usage.free,
        "percent": round(100 * usage.used / usage.total, 1) if usage.total else 0.0,
    }


@v1.get("/canonicals")
def canonicals() -> Response:
    """List the canonical registry."""
    return jsonify(canonicals=_services().canonicals.all())


@v1.get("/canonicals/<recipe>")
def canonical(recipe: str) -> Response:
    """Show one canonical."""
    return jsonify(_services().canonicals.view(recipe))


@v1.patch("/canonicals/<recipe>")
def mark(recipe: str) -> Response:
    """Record a canonical's status and whether its live volume is clean or dirty."""
    body = read(MarkBody)
    return jsonify(_services().canonicals.mark(recipe, status=body.status, volume=body.volume))


@v1.post("/canonicals/<recipe>/snapshot")
def snapshot(recipe: str) -> Response:
    """Promote (with a body) or re-take (without) the known-good snapshot."""
    body = read_optional(PromoteBody)
    registry = _services().canonicals
    if body is None:
        return jsonify(registry.snapshot(recipe))
    return jsonify(registry.promote(recipe, body.domain, body.version, body.commit, body.seed))


@v1.post("/canonicals/<recipe>/attach")
def attach(recipe: str) -> Response:
    """Begin a deploy on the canonical: restore first if its volume is not clean, mark it dirty."""
    return jsonify(_services().canonicals.attach(recipe))


@v1.post("/canonicals/<recipe>/seed")
def seed(recipe: str) -> Response:
    """Begin a re-seed (an attach); answer the token its promote must carry."""
    return jsonify(_services().canonicals.seed(recipe, read(SeedBody).version))


@v1.post("/canonicals/<recipe>/restore")
def restore(recipe: str) -> Response:
    """Restore the known-good data into the canonical's volumes."""
    return jsonify(_services().canonicals.restore(recipe))


@v1.post("/prune-stale")
def prune_stale() -> Response:
    """Drop the warm data of canonicals whose recipe is not in ``enrolled``."""
    return jsonify(_services().canonicals.prune_stale(read(PruneBody).enrolled))


@v1.get("/alerts")
def alerts() -> Response:
    """List the active alerts."""
    return jsonify(alerts=_services().alerts.active())


@v1.post("/alerts")
def raise_alert() -> tuple[Response, int]:
    """Raise an alert; 201 if new, 200 if the same key already raised one."""
    body = read(AlertBody)
    alert, created = _services().alerts.raise_(
        body.kind, body.app, body.key, body.message, body.details
    )
    return jsonify(alert), 201 if created else 200


@v1.post("/alerts/<ident>/ack")
def ack(ident: str) -> Response:
    """Acknowledge an alert (it moves to ``alerts/seen/``; its key may alert again)."""
    return jsonify(_services().alerts.ack(ident))


@v1.get("/leases")
def leases() -> Response:
    """List live leases and say whether anything is in flight."""
    return jsonify(_services().leases.listing())


@v1.post("/leases")
def acquire() -> tuple[Response, int]:
    """Grant a run lease or refuse it (409) when MAX_TESTS runs are live."""
    body = read(LeaseBody)
    lease = _services().leases.acquire(body.recipe, body.lane, body.realm, body.ttl, body.canonical)
    return jsonify(lease), 201


@v1.post("/leases/<ident>/renew")
def renew(ident: str) -> Response:
    """Renew a live lease (its holder's token in the ``X-CCCI-Lease-Token`` header)."""
    return jsonify(_services().leases.renew(ident, _lease_token()))


@v1.delete("/leases/<ident>")
def release(ident: str) -> tuple[str, int]:
    """Release a lease: its holder (token header), or root with ``?force=1``."""
    force = request.args.get("force", "0")
    if force not in ("0", "1"):
        raise BadInput(f"force must be 0 or 1 (got {force!r})")
    if force == "1" and not current_app.extensions["ccci_is_root"](request.environ):
        raise Forbidden("only root may force a lease's release; its holder sends its token")
    _services().leases.release(ident, _lease_token(), force=force == "1")
    return "", 204


def _lease_token() -> str | None:
    token = request.headers.get(LEASE_HOLDER_HEADER)
    if token is not None and not re.fullmatch(r"[0-9a-f]{32}", token):
        raise BadInput(f"{LEASE_HOLDER_HEADER}: expected 32 lowercase hex digits")
    return token
