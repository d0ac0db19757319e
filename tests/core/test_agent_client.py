"""The agent client against a loopback stub server on a Unix socket."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from ccci_core.agent_client import (
    LEASE_HOLDER_HEADER,
    AgentClient,
    AgentClientError,
    AgentUnreachable,
)


class _Stub(BaseHTTPRequestHandler):
    """Answer by path: /ok JSON, /refused a 409, /broken a 500, /html not JSON."""

    answers = {  # noqa: RUF012 - a fixed table
        "/ok": (200, b'{"echo": "ok"}'),
        "/refused": (409, b'{"error": "LeaseRefused", "reason": "2 of 2 runs are live"}'),
        "/broken": (500, b'{"error": "InternalError", "reason": "boom"}'),
        "/html": (502, b"<html>bad gateway</html>"),
    }

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.server.bodies.append(self.rfile.read(length))  # type: ignore[attr-defined]
        self.server.headers.append(dict(self.headers))  # type: ignore[attr-defined]
        status, body = self.answers[self.path]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet."""

    def address_string(self) -> str:
        """Unix peers have no host address."""
        return "unix"


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    bodies: list[bytes]
    headers: list[dict[str, str]]


@pytest.fixture
def stub(tmp_path: Path) -> Iterator[tuple[AgentClient, _Server]]:
    """A client and a stub HTTP server on a temporary Unix socket."""
    server = _Server(str(tmp_path / "agent.sock"), _Stub)
    server.bodies = []
    server.headers = []
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield AgentClient(tmp_path / "agent.sock", timeout=10), server
    server.shutdown()
    server.server_close()


def test_json_round_trip(stub: tuple[AgentClient, _Server]) -> None:
    """A POST sends JSON and returns the decoded answer."""
    client, server = stub
    assert {"echo": "ok"} == client.post("/ok", {"recipe": "x"})
    assert [b'{"recipe": "x"}'] == server.bodies


def test_extra_headers_are_sent_with_or_without_a_body(stub: tuple[AgentClient, _Server]) -> None:
    """A lease holder's header reaches the agent on POST and DELETE; only a body is typed JSON."""
    client, server = stub
    holder = {LEASE_HOLDER_HEADER: "0" * 32}
    client.post("/ok", headers=holder)
    client.post("/ok", {"a": 1}, headers=holder)
    client.delete("/ok", headers=holder)
    assert [("0" * 32, None), ("0" * 32, "application/json"), ("0" * 32, None)] == [
        (h.get(LEASE_HOLDER_HEADER), h.get("Content-Type")) for h in server.headers
    ]


@pytest.mark.parametrize(
    ("path", "status", "exit_code", "reason"),
    [
        ("/refused", 409, 2, "2 of 2 runs are live"),
        ("/broken", 500, 1, "boom"),
        ("/html", 502, 1, "the answer is not JSON"),
    ],
)
def test_errors_keep_status_and_reason(
    stub: tuple[AgentClient, _Server], path: str, status: int, exit_code: int, reason: str
) -> None:
    """4xx answers exit 2, 5xx exit 1, and the agent's reason is kept."""
    client, _ = stub
    with pytest.raises(AgentClientError) as caught:
        client.get(path)
    assert (status, exit_code, reason) == (
        caught.value.http_status,
        caught.value.exit_code,
        caught.value.reason,
    )


def test_missing_socket_is_unreachable(tmp_path: Path) -> None:
    """No socket file: AgentUnreachable, exit 2, one line naming the socket."""
    with pytest.raises(AgentUnreachable) as caught:
        AgentClient(tmp_path / "none.sock").get("/v1/status")
    assert 2 == caught.value.exit_code
    assert str(tmp_path / "none.sock") in str(caught.value)


def test_socket_nobody_listens_on_is_unreachable(tmp_path: Path) -> None:
    """A stale socket file (agent stopped) is unreachable too."""
    path = tmp_path / "stale.sock"
    server = socketserver.UnixStreamServer(str(path), _Stub)
    server.server_close()
    with pytest.raises(AgentUnreachable):
        AgentClient(path).get("/v1/status")
