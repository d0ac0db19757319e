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
from ccci_core.names import validate_infra

from .bodies import (
    AckBody,
    AlertBody,
    BeginBody,
    EndBody,
    HoldBody,
    InfraTokenBody,
    LeaseBody,
    MarkBody,
    ObservedBody,
    PromoteBody,
    PruneBody,
    SeedBody,
    StepBody,
    SweepBody,
    read,
    read_optional,
)
from .errors import Forbidden, NotFound
from .peercred import peer_of, socket_of
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
        last_sweep=services.sweeps.last(),
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
        # As ``df`` (and ``cc-ci prune``) count it: 100 when nothing is left to write.
        "percent": round(100 * usage.used / (usage.used + usage.free), 1) if usage.total else 0.0,
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
    """Acknowledge an alert (it moves to ``alerts/seen/``; its key may alert again).

    With ``{"ts"}`` only that occurrence: one raised since (another ``ts``) is refused with 409.
    """
    body = read_optional(AckBody)
    return jsonify(_services().alerts.ack(ident, ts=None if body is None else body.ts))


@v1.get("/leases")
def leases() -> Response:
    """List live leases and say whether anything is in flight."""
    return jsonify(_services().leases.listing())


@v1.post("/leases")
def acquire() -> tuple[Response, int]:
    """Grant a run lease or refuse it (409) when MAX_TESTS runs are live."""
    body = read(LeaseBody)
    lease = _services().leases.acquire(
        body.recipe, body.lane, body.realm, body.ttl, body.canonical, run_hex=body.run_hex
    )
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


@v1.post("/sweeps")
def record_sweep() -> tuple[Response, int]:
    """Record a nightly sweep's summary (``cc-ci status`` shows the last)."""
    return jsonify(_services().sweeps.record(read(SweepBody).summary)), 201


@v1.get("/infra")
def infra_all() -> Response:
    """List the live-warm infra apps' records."""
    return jsonify(infra=_services().infra.all())


@v1.get("/infra/<name>")
def infra(name: str) -> Response:
    """Return an infra app's record (404 when never recorded)."""
    record = _services().infra.get(validate_infra(name))
    if record is None:
        raise NotFound(f"{name} was never reconciled", name=name)
    return jsonify(record)


@v1.post("/infra/<name>/begin")
def infra_begin(name: str) -> tuple[Response, int]:
    """Take the reconcile lock of ``name`` (409 while another holds it or a realm is live)."""
    body = read(BeginBody)
    services = _services()
    with services.leases.frozen() as live:
        begun = services.infra.begin(
            validate_infra(name),
            current=body.current,
            target=body.target,
            guard_realms=body.guard_realms,
            live_leases=live,
            pid=_peer_pid(),
        )
    return jsonify(begun), 201


@v1.post("/infra/<name>/step")
def infra_step(name: str) -> Response:
    """Record the step a reconcile is about to take, before it takes it."""
    body = read(StepBody)
    return jsonify(
        _services().infra.step(validate_infra(name), body.token, body.step, snapshot=body.snapshot)
    )


@v1.post("/infra/<name>/snapshot")
def infra_snapshot(name: str) -> Response:
    """Snapshot the undeployed infra app's volumes (its one last-good generation)."""
    body = read(InfraTokenBody)
    if body.stack is None:
        raise BadInput("stack: the infra app's stack is required")
    return jsonify(_services().infra.snapshot(validate_infra(name), body.token, body.stack))


@v1.post("/infra/<name>/restore")
def infra_restore(name: str) -> Response:
    """Restore the infra app's last-good snapshot into its undeployed volumes."""
    body = read(InfraTokenBody)
    return jsonify(_services().infra.restore(validate_infra(name), body.token))


@v1.post("/infra/<name>/end")
def infra_end(name: str) -> Response:
    """End a reconcile with its outcome; drop its lock."""
    body = read(EndBody)
    return jsonify(
        _services().infra.end(
            validate_infra(name),
            body.token,
            outcome=body.outcome,
            running=body.running,
            last_good=body.last_good,
            detail=body.detail,
        )
    )


@v1.post("/infra/<name>/hold")
def infra_hold(name: str) -> Response:
    """Record a held upgrade and raise its alert once per target."""
    body = read(HoldBody)
    services = _services()
    name = validate_infra(name)
    alert, created = services.alerts.raise_(
        "infra-held",
        name,
        f"infra-held:{name}:{body.target}",
        f"{name}: {body.current} → {body.target} held ({body.bump} bump); "
        f"once migrated: {body.command}",
        {
            "current": body.current,
            "target": body.target,
            "bump": body.bump,
            "reasons": body.reasons,
            "notes": [note.model_dump() for note in body.notes],
            "command": body.command,
        },
    )
    held = {"target": body.target, "bump": body.bump, "reasons": body.reasons, "alert": alert["id"]}
    return jsonify(record=services.infra.hold(name, held), alert=alert, new=created)


@v1.post("/infra/<name>/observed")
def infra_observed(name: str) -> Response:
    """Record what a no-op reconcile found running and healthy."""
    body = read(ObservedBody)
    return jsonify(_services().infra.observed(validate_infra(name), body.running, body.last_good))


def _peer_pid() -> int | None:
    """Return the pid of the process on the other end of the socket, if this is one."""
    sock = socket_of(request.environ)
    return None if sock is None else peer_of(sock).pid


def _lease_token() -> str | None:
    token = request.headers.get(LEASE_HOLDER_HEADER)
    if token is not None and not re.fullmatch(r"[0-9a-f]{32}", token):
        raise BadInput(f"{LEASE_HOLDER_HEADER}: expected 32 lowercase hex digits")
    return token
