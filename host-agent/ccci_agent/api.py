"""The agent's HTTP/JSON API (routes under ``/v1/``) and :func:`create_app`, its one wiring point.

Every request passes the peer-credential check first (root or the socket's group, else 403).
Bodies are JSON (``Content-Type: application/json``, else 415) of at most :data:`MAX_BODY` bytes
(else 413, read no further), validated by pydantic models that forbid unknown fields; names go
through ``ccci_core.names``.
Every error is JSON ``{"error", "reason", "details"}`` with a 4xx/5xx status; no HTML, no traceback.
"""

from __future__ import annotations

import errno
import logging
import re
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge, UnsupportedMediaType

from ccci_core import __version__
from ccci_core.agent_client import LEASE_HOLDER_HEADER
from ccci_core.errors import BadInput, CcciError
from ccci_core.lanes import RunLane

from .alerts import Alerts
from .canonical import Canonicals, DeployState, VolumeState
from .engine import DockerEngine, Engine
from .errors import AgentError, Forbidden
from .infra import InfraVersions
from .leases import DEFAULT_TTL, MAX_TTL, Leases
from .peercred import environ_allowed, environ_is_root
from .settings import AgentSettings
from .store import StateDir

log = logging.getLogger(__name__)
Authorize = Callable[[dict[str, Any]], bool]
MAX_BODY = 256 * 1024  # the largest body we need is a prune list of ~3000 recipe names
JSON = "application/json"


@dataclass
class Agent:
    """What the routes use, built once per app."""

    settings: AgentSettings
    state: StateDir
    canonicals: Canonicals
    alerts: Alerts
    leases: Leases
    infra: InfraVersions


def build_agent(settings: AgentSettings, engine: Engine | None = None, **snap: Any) -> Agent:
    """Build the agent's services from settings (the engine defaults to the local Docker)."""
    state = StateDir(settings.state_dir)
    engine = engine if engine is not None else DockerEngine.from_env()
    alerts = Alerts(state)
    return Agent(
        settings=settings,
        state=state,
        canonicals=Canonicals(
            state,
            engine,
            settings.domain,
            alerts,
            **({"wait_timeout": settings.volume_wait, "tar": settings.tar} | snap),
        ),
        alerts=alerts,
        leases=Leases(state, settings.max_tests, alerts=alerts),
        infra=InfraVersions(state, alerts),
    )


class Body(BaseModel):
    """A request body: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


class PromoteBody(Body):
    """Promote: the canonical's domain and the version/commit its volumes hold."""

    domain: str = Field(max_length=253)
    version: str = Field(max_length=200)
    commit: str = Field(max_length=64)
    seed: str | None = Field(default=None, max_length=64)  # the token of the seeded deploy


class SeedBody(Body):
    """Start a re-seed: the version the green cold run is about to deploy on the canonical."""

    version: str = Field(max_length=200)


class MarkBody(Body):
    """Record a canonical's deploy status and whether its volume is clean."""

    status: DeployState | None = None
    volume: VolumeState | None = None


class PruneBody(Body):
    """The recipes that stay enrolled; every other canonical is pruned."""

    enrolled: list[str] = Field(max_length=3_000)  # 3000 names of 63 characters fit MAX_BODY


class AlertBody(Body):
    """An alert to raise (deduplicated by ``key``)."""

    kind: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    app: str | None = Field(default=None, max_length=63)
    key: str = Field(min_length=1, max_length=500)
    message: str = Field(min_length=1, max_length=2000)
    details: dict[str, Any] = Field(default_factory=dict)


class LeaseBody(Body):
    """Ask for a run lease."""

    recipe: str = Field(max_length=63)
    lane: RunLane
    realm: str | None = Field(default=None, max_length=80)
    ttl: int = Field(default=DEFAULT_TTL, ge=10, le=MAX_TTL)
    canonical: bool = False  # also lock the recipe's canonical (quick runs, promoting runs)


M = TypeVar("M", bound=Body)


def _agent() -> Agent:
    agent: Agent = current_app.extensions["ccci_agent"]
    return agent


def _body(model: type[M], *, optional: bool = False) -> M | None:
    """Return the request's body as ``model``; None when ``optional`` and the body is empty."""
    # werkzeug refuses a Content-Length over MAX_BODY unread (413) and stops reading a chunked
    # body at MAX_BODY bytes; a body that reaches the limit is refused here.
    raw = request.get_data(cache=True)
    if len(raw) >= MAX_BODY:
        raise RequestEntityTooLarge()
    if optional and not raw.strip():
        return None
    if request.mimetype != JSON:
        raise UnsupportedMediaType(
            f"a request body must be JSON with Content-Type: {JSON}"
            f" (got {request.content_type or 'none'})"
        )
    try:
        return model.model_validate_json(raw or b"null")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise BadInput(f"invalid request body: {where}: {first['msg']}") from exc


def _require(model: type[M]) -> M:
    body = _body(model)
    assert body is not None  # noqa: S101 - not optional
    return body


v1 = Blueprint("v1", __name__, url_prefix="/v1")


@v1.get("/status")
def status() -> Response:
    """Return everything an operator looks at: canonicals, infra, leases, alerts, disk."""
    agent = _agent()
    canonicals = agent.canonicals.all()
    return jsonify(
        version=__version__,
        state_dir=str(agent.state.root),
        max_tests=agent.settings.max_tests,
        canonicals=canonicals,
        infra=agent.infra.all(),
        leases=agent.leases.listing(),
        alerts=agent.alerts.active(),
        disk={
            "/": _disk(Path("/")),
            "state_dir": _disk(agent.state.root),
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
    return jsonify(canonicals=_agent().canonicals.all())


@v1.get("/canonicals/<recipe>")
def canonical(recipe: str) -> Response:
    """Show one canonical."""
    return jsonify(_agent().canonicals.view(recipe))


@v1.patch("/canonicals/<recipe>")
def mark(recipe: str) -> Response:
    """Record a canonical's status and whether its live volume is clean or dirty."""
    body = _require(MarkBody)
    return jsonify(_agent().canonicals.mark(recipe, status=body.status, volume=body.volume))


@v1.post("/canonicals/<recipe>/snapshot")
def snapshot(recipe: str) -> Response:
    """Promote (with a body) or re-take (without) the known-good snapshot."""
    body = _body(PromoteBody, optional=True)
    agent = _agent()
    if body is None:
        return jsonify(agent.canonicals.snapshot(recipe))
    return jsonify(
        agent.canonicals.promote(recipe, body.domain, body.version, body.commit, body.seed)
    )


@v1.post("/canonicals/<recipe>/attach")
def attach(recipe: str) -> Response:
    """Begin a deploy on the canonical: restore first if its volume is not clean, mark it dirty."""
    return jsonify(_agent().canonicals.attach(recipe))


@v1.post("/canonicals/<recipe>/seed")
def seed(recipe: str) -> Response:
    """Begin a re-seed (an attach); answer the token its promote must carry."""
    return jsonify(_agent().canonicals.seed(recipe, _require(SeedBody).version))


@v1.post("/canonicals/<recipe>/restore")
def restore(recipe: str) -> Response:
    """Restore the known-good data into the canonical's volumes."""
    return jsonify(_agent().canonicals.restore(recipe))


@v1.post("/prune-stale")
def prune_stale() -> Response:
    """Drop the warm data of canonicals whose recipe is not in ``enrolled``."""
    return jsonify(_agent().canonicals.prune_stale(_require(PruneBody).enrolled))


@v1.get("/alerts")
def alerts() -> Response:
    """List the active alerts."""
    return jsonify(alerts=_agent().alerts.active())


@v1.post("/alerts")
def raise_alert() -> tuple[Response, int]:
    """Raise an alert; 201 if new, 200 if the same key already raised one."""
    body = _require(AlertBody)
    alert, created = _agent().alerts.raise_(
        body.kind, body.app, body.key, body.message, body.details
    )
    return jsonify(alert), 201 if created else 200


@v1.post("/alerts/<ident>/ack")
def ack(ident: str) -> Response:
    """Acknowledge an alert (it moves to ``alerts/seen/``; its key may alert again)."""
    return jsonify(_agent().alerts.ack(ident))


@v1.get("/leases")
def leases() -> Response:
    """List live leases and say whether anything is in flight."""
    return jsonify(_agent().leases.listing())


@v1.post("/leases")
def acquire() -> tuple[Response, int]:
    """Grant a run lease or refuse it (409) when MAX_TESTS runs are live."""
    body = _require(LeaseBody)
    lease = _agent().leases.acquire(body.recipe, body.lane, body.realm, body.ttl, body.canonical)
    return jsonify(lease), 201


@v1.post("/leases/<ident>/renew")
def renew(ident: str) -> Response:
    """Renew a live lease (its holder's token in the ``X-CCCI-Lease-Token`` header)."""
    return jsonify(_agent().leases.renew(ident, _lease_token()))


@v1.delete("/leases/<ident>")
def release(ident: str) -> tuple[str, int]:
    """Release a lease: its holder (token header), or root with ``?force=1``."""
    force = request.args.get("force", "0")
    if force not in ("0", "1"):
        raise BadInput(f"force must be 0 or 1 (got {force!r})")
    if force == "1" and not current_app.extensions["ccci_is_root"](request.environ):
        raise Forbidden("only root may force a lease's release; its holder sends its token")
    _agent().leases.release(ident, _lease_token(), force=force == "1")
    return "", 204


def _lease_token() -> str | None:
    token = request.headers.get(LEASE_HOLDER_HEADER)
    if token is not None and not re.fullmatch(r"[0-9a-f]{32}", token):
        raise BadInput(f"{LEASE_HOLDER_HEADER}: expected 32 lowercase hex digits")
    return token


def _error(
    status: int, kind: str, reason: str, details: dict[str, Any] | None = None
) -> tuple[Response, int]:
    return jsonify(error=kind, reason=reason, details=details or {}), status


def _json_safe(details: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v for k, v in details.items() if isinstance(v, str | int | float | bool | list | dict)
    }


def create_app(
    settings: AgentSettings | None = None,
    *,
    agent: Agent | None = None,
    authorize: Authorize | None = None,
    is_root: Authorize | None = None,
) -> Flask:
    """Return the agent's Flask app (``gunicorn 'ccci_agent.api:create_app()'`` builds settings).

    ``authorize`` (may this peer use the agent?) and ``is_root`` (may it force a lease's release?)
    default to the peer's credentials on the Unix socket.
    """
    if agent is None:
        from ccci_core.settings import load

        agent = build_agent(settings if settings is not None else load(AgentSettings))
    group = agent.settings.socket_group
    check: Authorize = authorize or (lambda environ: environ_allowed(environ, group))

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.extensions["ccci_agent"] = agent
    app.extensions["ccci_is_root"] = is_root or environ_is_root
    app.register_blueprint(v1)

    @app.before_request
    def _peer() -> None:
        if not check(request.environ):
            raise Forbidden(f"only root or members of group {group!r} may use the agent")

    @app.errorhandler(CcciError)
    def _ours(exc: CcciError) -> tuple[Response, int]:
        status = exc.status if isinstance(exc, AgentError) else 400
        if isinstance(exc, BadInput):
            status = 400
        return _error(status, type(exc).__name__, exc.message, _json_safe(exc.details))

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(_exc: RequestEntityTooLarge) -> tuple[Response, int]:
        reason = f"the request body is larger than {MAX_BODY // 1024} KiB"
        return _error(413, "RequestEntityTooLarge", reason, {"limit": MAX_BODY})

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> tuple[Response, int]:
        return _error(exc.code or 500, type(exc).__name__, exc.description or exc.name)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response, int]:
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            where = f" ({exc.filename})" if exc.filename else ""
            return _error(507, "StorageFull", f"no space left on device{where}; nothing changed")
        # The text of an unexpected error may hold paths or values: it goes to the log only.
        incident = secrets.token_hex(4)
        log.exception("unexpected error (incident %s)", incident)
        reason = f"internal error (incident {incident}; the agent's log has the details)"
        return _error(500, "InternalError", reason, {"incident": incident})

    return app
