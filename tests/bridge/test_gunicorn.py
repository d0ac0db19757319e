"""The bridge under a real gunicorn (two workers) on loopback, upstream APIs stubbed on loopback."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.bridge.payloads import SECRET, encode, gitea_comment, gitea_headers
from tests.bridge.stub import Upstream, upstream_stub

BURST = 12
MAX_BURSTS = 20


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    """The loopback stub of Drone and Gitea."""
    with upstream_stub() as stub:
        yield stub


@pytest.fixture
def bridge(upstream: Upstream, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Two gunicorn workers serving ``ccci_bridge:create_app()``; yield the URL and access log."""
    access_log = tmp_path / "access.log"
    env = {
        **os.environ,
        "CCCI_DRONE_SERVER": upstream.url,
        "CCCI_DRONE_TOKEN": "drone-token",
        "CCCI_DRONE_REPO": "coop-cloud/cc-ci",
        "CCCI_GITEA_URL": upstream.url,
        "CCCI_GITEA_TOKEN": "gitea-token",
        "CCCI_WEBHOOK_SECRET": SECRET,
        "CCCI_BRIDGE_STATE_DIR": str(tmp_path / "state"),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            "2",
            "--bind",
            "127.0.0.1:0",
            "--access-logfile",
            str(access_log),
            "--access-logformat",
            "%(p)s %(s)s %(U)s",
            "ccci_bridge.app:create_app()",
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    url, booted = None, 0
    for line in proc.stderr:  # ends at EOF if gunicorn dies, so a broken app fails, never hangs
        if match := re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", line):
            url = match[1]
        booted += "Booting worker" in line
        if url and booted == 2:
            break
    assert url is not None, "gunicorn did not listen"
    assert 2 == booted, "gunicorn did not start two workers"
    drain = threading.Thread(target=proc.stderr.read, daemon=True)
    drain.start()
    try:
        yield url, access_log
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait()


def _burst(url: str, data: bytes, headers: dict[str, str]) -> list[int]:
    statuses: list[int] = []
    barrier = threading.Barrier(BURST)

    def send() -> None:
        barrier.wait()
        statuses.append(
            requests.post(f"{url}/hooks/gitea", data=data, headers=headers, timeout=30).status_code
        )

    threads = [threading.Thread(target=send) for _ in range(BURST)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def _hook_pids(access_log: Path) -> set[str]:
    lines = access_log.read_text().splitlines() if access_log.exists() else []
    return {line.split()[0] for line in lines if line.endswith("/hooks/gitea")}


def test_redelivery_across_two_workers_starts_one_build(
    bridge: tuple[str, Path], upstream: Upstream
) -> None:
    """Concurrent copies of one signed delivery, spread over both workers, start one build."""
    url, access_log = bridge
    data = encode(gitea_comment("!testme --quick"))
    headers = gitea_headers(data, delivery="delivery-1")

    statuses = _burst(url, data, headers)
    for _ in range(MAX_BURSTS):  # until both workers have answered some copy
        if len(_hook_pids(access_log)) == 2:
            break
        statuses += _burst(url, data, headers)
    replies = upstream.wait_for("POST", "/issues/42/comments", 1)

    assert 2 == len(_hook_pids(access_log))
    assert 1 == statuses.count(202)
    assert len(statuses) - 1 == statuses.count(200)
    (build,) = upstream.matching("POST", "/builds")
    assert {"CCCI_QUICK": "1", "RECIPE": "keycloak"}.items() <= build.query.items()
    assert "Bearer drone-token" == build.headers["Authorization"]
    assert 1 == len(replies)
    assert f"{upstream.url}/coop-cloud/cc-ci/1" in replies[0].body["body"]


def test_new_comments_each_start_a_build(bridge: tuple[str, Path], upstream: Upstream) -> None:
    """Different comments by different users are not duplicates of each other."""
    url, _ = bridge
    for n, user in enumerate(["alice", "bob", "carol"]):
        data = encode(gitea_comment("!testme", user=user, comment_id=10 + n))
        response = requests.post(
            f"{url}/hooks/gitea", data=data, headers=gitea_headers(data), timeout=30
        )
        assert 202 == response.status_code

    upstream.wait_for("POST", "/issues/42/comments", 3)

    assert 3 == len(upstream.matching("POST", "/builds"))


def test_unsigned_request_is_401_under_gunicorn(
    bridge: tuple[str, Path], upstream: Upstream
) -> None:
    """The production server answers JSON errors too."""
    url, _ = bridge

    response = requests.post(f"{url}/hooks/gitea", data=b"{}", timeout=30)

    assert (401, {"error": "Rejected", "reason": "missing signature"}) == (
        response.status_code,
        response.json(),
    )
    assert [] == upstream.seen
