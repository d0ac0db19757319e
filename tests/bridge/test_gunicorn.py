"""The bridge under a real gunicorn (two workers) on loopback, upstream APIs stubbed on loopback."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ccci_bridge.poller import LOCK_NAME, PollLock
from tests.bridge.payloads import SHA, encode, gitea_comment, gitea_headers
from tests.bridge.serve import Served, gunicorn_bridge
from tests.bridge.stub import HANG_GUARD_S, Upstream, upstream_stub

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
    with gunicorn_bridge(upstream.url, tmp_path / "state", access_log) as served:
        yield served.url, access_log


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


def _lock_holder(state: Path) -> int | None:
    text = (state / LOCK_NAME).read_text() if (state / LOCK_NAME).exists() else ""
    return int(text) if text.strip().isdigit() else None


def _wait_for_holder(served: Served, state: Path, not_pid: int | None = None) -> int:
    """Wait until a live worker other than ``not_pid`` holds the poll lock; return its pid."""
    deadline = time.monotonic() + HANG_GUARD_S  # only so a broken poller fails, not hangs
    while time.monotonic() < deadline:
        holder = _lock_holder(state)
        if holder is not None and holder != not_pid and holder in served.workers():
            return holder
        time.sleep(0.05)
    raise AssertionError(f"no worker took the poll lock (file says {_lock_holder(state)})")


def test_one_worker_polls_and_another_takes_over_when_it_dies(
    upstream: Upstream, tmp_path: Path
) -> None:
    """Without any webhook the poller delivers the verdict; one worker polls, then another."""
    state = tmp_path / "state"
    with gunicorn_bridge(
        upstream.url, state, tmp_path / "access.log", CCCI_POLL_INTERVAL_S="0.2"
    ) as served:
        data = encode(gitea_comment("!testme"))
        response = requests.post(
            f"{served.url}/hooks/gitea", data=data, headers=gitea_headers(data), timeout=30
        )
        assert 202 == response.status_code
        upstream.wait_for("POST", "/issues/42/comments", 1)
        first = _wait_for_holder(served, state)
        assert not PollLock(state).acquire()  # held: no second poller can start

        upstream.status[1] = "success"
        (edit,) = upstream.wait_for("PATCH", "/issues/comments/500", 1)
        assert "✅ PASS" in edit.body["body"]

        os.kill(first, signal.SIGKILL)
        second = _wait_for_holder(served, state, not_pid=first)

    assert first != second
    assert 1 == len(upstream.matching("PATCH", "/issues/comments/500"))  # never delivered twice
    statuses = [seen.body["state"] for seen in upstream.matching("POST", "/statuses/" + SHA)]
    assert ["pending", "success"] == statuses
