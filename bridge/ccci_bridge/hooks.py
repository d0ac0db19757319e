"""The bridge's HTTP routes: forge webhooks, Drone's system webhook, chat, a health check.

The forge routes answer within milliseconds: check the size (413), the signature (401), the JSON
(400), find a command, record the delivery in the shared store, hand the slow work (permission,
PR, Drone, reactions, reply) to the worker's executor and answer 202. Everything a sender can
send ends in a JSON answer with a 2xx or 4xx status.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from . import signatures
from .errors import BridgeError, Rejected
from .events import Ignored, load_json, parse_chat_event, parse_comment_event, parse_drone_event
from .settings import BridgeSettings

log = logging.getLogger(__name__)
bp = Blueprint("hooks", __name__)


def _ctx() -> Any:
    return current_app.extensions["ccci_bridge"]


def _json(code: int, /, **fields: Any) -> tuple[Response, int]:
    return jsonify(fields), code


def _forge_hook(forge: str, event_name: str | None, delivery: str | None) -> tuple[Response, int]:
    ctx = _ctx()
    settings: BridgeSettings = ctx.settings
    if not event_name:
        raise Rejected(400, "missing event header")
    if event_name == "ping":
        return _json(200, status="pong")
    if event_name != "issue_comment":
        return _json(200, status="ignored", reason=f"event {event_name[:40]!r} is not handled")
    payload = load_json(request.get_data(cache=True))
    event = parse_comment_event(forge, delivery, payload, settings.bots)
    if isinstance(event, Ignored):
        return _json(200, status="ignored", reason=event.reason)
    if not ctx.store.claim(event.dedupe_keys):
        log.info("redelivery ignored: %s", ", ".join(event.dedupe_keys))
        return _json(200, status="duplicate")
    log.info("accepted %s %s#%s by %s", forge, event.repo, event.number, event.user)
    ctx.executor.submit(ctx.trigger.comment, event)
    return _json(202, status="accepted", lane=event.command.lane)


@bp.post("/hooks/gitea")
def gitea() -> tuple[Response, int]:
    """Receive a Gitea or Forgejo webhook."""
    settings: BridgeSettings = _ctx().settings
    if not settings.gitea_enabled:
        raise Rejected(404, "the Gitea/Forgejo hook is not configured (CCCI_GITEA_URL)")
    body = request.get_data(cache=True)
    headers = request.headers
    signature = headers.get("X-Forgejo-Signature") or headers.get("X-Gitea-Signature")
    signatures.verify_hex(settings.webhook_secret.get_secret_value(), body, signature)
    event_name = headers.get("X-Forgejo-Event") or headers.get("X-Gitea-Event")
    delivery = headers.get("X-Forgejo-Delivery") or headers.get("X-Gitea-Delivery")
    return _forge_hook("gitea", event_name, delivery)


@bp.post("/hooks/github")
def github() -> tuple[Response, int]:
    """Receive a GitHub webhook."""
    settings: BridgeSettings = _ctx().settings
    if not settings.github_enabled:
        raise Rejected(404, "the GitHub hook is not configured (CCCI_GITHUB_TOKEN)")
    body = request.get_data(cache=True)
    signatures.verify_github(
        settings.webhook_secret.get_secret_value(), body, request.headers.get("X-Hub-Signature-256")
    )
    return _forge_hook(
        "github", request.headers.get("X-GitHub-Event"), request.headers.get("X-GitHub-Delivery")
    )


@bp.route("/hooks/chat", methods=["POST", "PUT"])
def chat() -> tuple[Response, int]:
    """Receive a chat message (hookshot outbound webhook or ``{user, text}``); answer the text."""
    ctx = _ctx()
    settings: BridgeSettings = ctx.settings
    if not settings.chat_enabled:
        raise Rejected(404, "the chat hook is not configured (CCCI_CHAT_TOKEN)")
    token = request.headers.get("X-Matrix-Hookshot-Token")
    if token is None:
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
    signatures.verify_token(settings.chat_token.get_secret_value(), token)
    if request.mimetype == "multipart/form-data":
        part = request.files.get("event")
        if part is None:
            raise Rejected(400, "missing the event part")
        body = part.read()
    else:
        body = request.get_data(cache=True)
    event = parse_chat_event(
        load_json(body),
        request.headers.get("X-Matrix-Hookshot-EventId"),
        request.headers.get("X-Matrix-Hookshot-RoomId"),
    )
    if isinstance(event, Ignored):
        return _json(200, status="ignored", reason=event.reason, text=None)
    if event.event_id is not None and not ctx.store.claim([f"chat:{event.event_id}"]):
        return _json(200, status="duplicate", text=None)
    answer = ctx.trigger.chat(event)
    return _json(200, status=answer.outcome, text=answer.text)


@bp.post("/hooks/drone")
def drone() -> tuple[Response, int]:
    """Receive a Drone system webhook (``build`` events): settle a build that finished."""
    ctx = _ctx()
    settings: BridgeSettings = ctx.settings
    if not settings.drone_hook_enabled:
        raise Rejected(404, "the Drone hook is not configured (CCCI_DRONE_WEBHOOK_SECRET)")
    body = request.get_data(cache=True)
    signatures.verify_drone(
        settings.drone_webhook_secret.get_secret_value(),
        dict(request.headers),
        body,
        method=request.method,
        target=request.full_path.rstrip("?"),
    )
    event = parse_drone_event(load_json(body), settings.drone_repo)
    if isinstance(event, Ignored):
        return _json(200, status="ignored", reason=event.reason)
    # A signed delivery seen before is a replay: its Date and body digest, both signed, say which.
    seen = f"drone:{request.headers.get('Date', '')}:{signatures.body_digest(body)}"
    if not ctx.store.claim([seen]):
        return _json(200, status="duplicate")
    ctx.executor.submit(ctx.verdicts.settle, event.number)
    return _json(202, status="accepted", build=event.number)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """Report whether the bridge can record deliveries, and which hooks it serves."""
    ctx = _ctx()
    settings: BridgeSettings = ctx.settings
    ctx.store.ping()
    hooks = {
        "gitea": settings.gitea_enabled,
        "github": settings.github_enabled,
        "chat": settings.chat_enabled,
        "drone": settings.drone_hook_enabled,
    }
    return _json(200, status="ok", hooks=hooks)


def _http_error(exc: HTTPException) -> tuple[Response, int]:
    status = exc.code or 500
    return _json(status, error=exc.name, reason=exc.description)


def _bridge_error(exc: BridgeError) -> tuple[Response, int]:
    if exc.status >= 500:
        log.error("%s: %s", type(exc).__name__, exc)
    return _json(exc.status, error=type(exc).__name__, reason=exc.message)


def _internal_error(exc: Exception) -> tuple[Response, int]:
    log.exception("internal error")
    return _json(500, error="internal", reason="internal error; see the bridge's log")


def init_app(app: Flask) -> None:
    """Register the routes and the JSON error handlers."""
    app.register_blueprint(bp)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(BridgeError, _bridge_error)
    app.register_error_handler(Exception, _internal_error)
