"""The agent's Flask app; :func:`create_app` is its one wiring point.

``cc-ci agent serve`` (:mod:`ccci_agent.server`) builds the services once, in gunicorn's master,
and passes them in; tests pass their own services and peer checks. The app checks every request's
peer first (root or the socket's group, else 403), serves the ``/v1`` routes of
:mod:`ccci_agent.routes`, and answers every error as JSON ``{"error", "reason", "details"}`` with
a 4xx/5xx status: no HTML, no traceback, and an unexpected 500 shows an incident id, never the
exception's text (the log has it).
"""

from __future__ import annotations

import errno
import logging
import secrets
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from ccci_core.errors import BadInput, CcciError
from ccci_core.settings import load

from . import routes
from .bodies import MAX_BODY
from .errors import AgentError, Forbidden
from .peercred import environ_allowed, environ_is_root
from .services import AgentServices, build_services
from .settings import AgentSettings

log = logging.getLogger(__name__)
Authorize = Callable[[dict[str, Any]], bool]


def create_app(
    settings: AgentSettings | None = None,
    *,
    services: AgentServices | None = None,
    authorize: Authorize | None = None,
    is_root: Authorize | None = None,
) -> Flask:
    """Return the agent's Flask app on ``services`` (default: built from ``settings``/``CCCI_*``).

    ``authorize`` (may this peer use the agent?) and ``is_root`` (may it force a lease's release?)
    default to the peer's credentials on the Unix socket.
    """
    if services is None:
        services = build_services(settings if settings is not None else load(AgentSettings))
    group = services.settings.socket_group
    check: Authorize = authorize or (lambda environ: environ_allowed(environ, group))

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.extensions["ccci_agent"] = services
    app.extensions["ccci_is_root"] = is_root or environ_is_root

    @app.before_request
    def _peer() -> None:
        if not check(request.environ):
            raise Forbidden(f"only root or members of group {group!r} may use the agent")

    app.register_blueprint(routes.v1)
    app.register_error_handler(CcciError, _ours)
    app.register_error_handler(RequestEntityTooLarge, _too_large)
    app.register_error_handler(HTTPException, _http)
    app.register_error_handler(Exception, _unexpected)
    return app


def _error(
    status: int, kind: str, reason: str, details: dict[str, Any] | None = None
) -> tuple[Response, int]:
    return jsonify(error=kind, reason=reason, details=details or {}), status


def _json_safe(details: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v for k, v in details.items() if isinstance(v, str | int | float | bool | list | dict)
    }


def _ours(exc: CcciError) -> tuple[Response, int]:
    status = exc.status if isinstance(exc, AgentError) else 400
    if isinstance(exc, BadInput):
        status = 400
    return _error(status, type(exc).__name__, exc.message, _json_safe(exc.details))


def _too_large(_exc: RequestEntityTooLarge) -> tuple[Response, int]:
    reason = f"the request body is larger than {MAX_BODY // 1024} KiB"
    return _error(413, "RequestEntityTooLarge", reason, {"limit": MAX_BODY})


def _http(exc: HTTPException) -> tuple[Response, int]:
    return _error(exc.code or 500, type(exc).__name__, exc.description or exc.name)


def _unexpected(exc: Exception) -> tuple[Response, int]:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        where = f" ({exc.filename})" if exc.filename else ""
        return _error(507, "StorageFull", f"no space left on device{where}; nothing changed")
    # The text of an unexpected error may hold paths or values: it goes to the log only.
    incident = secrets.token_hex(4)
    log.exception("unexpected error (incident %s)", incident)
    reason = f"internal error (incident {incident}; the agent's log has the details)"
    return _error(500, "InternalError", reason, {"incident": incident})
