"""A loopback stand-in for Drone and Gitea that records every request (for a real gunicorn).

It answers as the documented APIs do: builds (create, info, logs), pulls, permissions, the token's
account (``/user``), comments (posted with their ids, listed as Gitea lists them: all at once),
edits, reactions and commit statuses.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.bridge.payloads import drone_build, pull

HANG_GUARD_S = 120.0  # only so a broken bridge fails the test instead of hanging it
BOT = {"id": 31337, "login": "cc-ci-bot"}  # the account the bridge's token acts as


@dataclass(frozen=True)
class Seen:
    """One request the stub received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


class Upstream:
    """The requests received so far, and a way to wait for more."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.seen: list[Seen] = []
        self.builds = 0
        self.status: dict[int, str] = {}  # what GET /builds/{n} says (default: running)
        self._cond = threading.Condition()
        self.url = ""

    def record(self, seen: Seen) -> int:
        """Record a request; return the build number if it created a build."""
        with self._cond:
            self.seen.append(seen)
            if seen.path.endswith("/builds"):
                self.builds += 1
            self._cond.notify_all()
            return self.builds

    def matching(self, method: str, suffix: str) -> list[Seen]:
        """Return the recorded requests with ``method`` whose path ends with ``suffix``."""
        with self._cond:
            return [s for s in self.seen if s.method == method and s.path.endswith(suffix)]

    def wait_for(self, method: str, suffix: str, count: int) -> list[Seen]:
        """Block until ``count`` such requests arrived, and return them."""
        with self._cond:
            self._cond.wait_for(lambda: len(self.matching(method, suffix)) >= count, HANG_GUARD_S)
        return self.matching(method, suffix)


def _handler(upstream: Upstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            seen = Seen(
                self.command,
                url.path,
                dict(parse_qsl(url.query)),
                dict(self.headers.items()),
                json.loads(raw) if raw else None,
            )
            if upstream.delay_s:
                time.sleep(upstream.delay_s)  # a slow Drone or forge
            number = upstream.record(seen)
            status = 201
            body: Any = {}
            build = re.search(r"/builds/(\d+)$", url.path)
            if url.path.endswith("/builds"):
                status, body = 200, {"id": 1000 + number, "number": number, "status": "pending"}
            elif build and self.command == "GET":
                n = int(build[1])
                status, body = 200, drone_build(n, upstream.status.get(n, "running"))
            elif "/logs/" in url.path:
                status, body = 200, []
            elif url.path.endswith("/permission"):
                status, body = 200, {"permission": "write"}
            elif "/pulls/" in url.path:
                status, body = 200, pull(int(url.path.rsplit("/", 1)[1]))
            elif url.path.endswith("/user") and self.command == "GET":
                status, body = 200, BOT
            elif re.search(r"/issues/\d+/comments$", url.path) and self.command == "GET":
                posts = upstream.matching("POST", "/comments")  # the i-th got id 500 + i
                status, body = (
                    200,
                    [
                        {
                            "id": 500 + i,
                            "user": BOT,
                            "body": c.body["body"],
                        }  # as posted, not edited
                        for i, c in enumerate(posts)
                        if c.path == url.path
                    ],
                )
            elif re.search(r"/issues/\d+/comments$", url.path):
                body = {"id": 499 + len(upstream.matching("POST", "/comments"))}  # 500, 501, …
            elif self.command in {"PATCH", "DELETE"}:
                status = 200
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:
            """Stay quiet."""

    return Handler


@contextmanager
def upstream_stub(delay_s: float = 0.0) -> Iterator[Upstream]:
    """Serve the stub on an ephemeral loopback port for the duration of the block."""
    upstream = Upstream(delay_s)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(upstream))
    upstream.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield upstream
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
