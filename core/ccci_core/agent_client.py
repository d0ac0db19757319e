"""A client of the host agent's socket API (stdlib only: the plugin and the CLI share it).

    CcciError
    └── AgentClientError        the agent answered an error: ``http_status``, ``reason``, ``body``
        └── AgentUnreachable    nothing answers on the socket (exit 2)

4xx answers exit 2 (the agent refused: bad input, busy, forbidden), 5xx exit 1.
"""

from __future__ import annotations

import http.client
import json
import socket
from pathlib import Path
from typing import Any

from .errors import CcciError

DEFAULT_TIMEOUT = 600.0  # a snapshot or restore of a big volume takes minutes
LEASE_HOLDER_HEADER = "X-CCCI-Lease-Token"  # the holder's token: renewing and releasing a lease


class AgentClientError(CcciError):
    """The agent answered with an error."""

    def __init__(self, http_status: int, reason: str, body: Any = None, message: str = "") -> None:
        super().__init__(
            message or f"agent: {reason} (HTTP {http_status})", http_status=http_status
        )
        self.http_status = http_status
        self.reason = reason
        self.body = body
        self.exit_code = 2 if 400 <= http_status < 500 else 1


class AgentUnreachable(AgentClientError):
    """Nothing answers on the agent's socket."""

    def __init__(self, socket_path: Path, cause: str) -> None:
        reason = f"the host agent is not reachable on {socket_path}: {cause}"
        super().__init__(503, reason, message=reason)
        self.exit_code = 2


class _UnixConnection(http.client.HTTPConnection):
    """An HTTP connection over a Unix socket."""

    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("agent", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        """Connect to the socket file instead of a TCP address."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self._path))
        except OSError:
            sock.close()
            raise
        self.sock = sock


class AgentClient:
    """Call the agent: one short-lived connection per request."""

    def __init__(self, socket_path: Path, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

    def request(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Any:
        """Send one request and return the decoded JSON answer, or raise AgentClientError."""
        conn = _UnixConnection(self.socket_path, self.timeout)
        payload = None if body is None else json.dumps(body).encode()
        headers = dict(headers or {})
        if payload is not None:
            headers["Content-Type"] = "application/json"
        try:
            try:
                conn.request(method, path, body=payload, headers=headers)
            except OSError as exc:
                raise AgentUnreachable(self.socket_path, exc.strerror or str(exc)) from exc
            try:
                response = conn.getresponse()
                raw = response.read()
            except (OSError, http.client.HTTPException) as exc:
                raise AgentClientError(502, f"no complete answer: {exc}") from exc
        finally:
            conn.close()
        try:
            data = json.loads(raw) if raw else None
        except ValueError as exc:
            raise AgentClientError(response.status, "the answer is not JSON", raw[:200]) from exc
        if response.status >= 400:
            reason = data.get("reason") if isinstance(data, dict) else None
            raise AgentClientError(response.status, reason or response.reason, data)
        return data

    def get(self, path: str) -> Any:
        """GET ``path``."""
        return self.request("GET", path)

    def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        """POST ``body`` to ``path``."""
        return self.request("POST", path, body, headers)

    def patch(self, path: str, body: Any) -> Any:
        """PATCH ``path`` with ``body``."""
        return self.request("PATCH", path, body)

    def delete(self, path: str, headers: dict[str, str] | None = None) -> Any:
        """DELETE ``path``."""
        return self.request("DELETE", path, headers=headers)
