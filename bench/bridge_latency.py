"""Benchmark (not a test): webhook latency of the bridge under load, with fast and slow upstreams.

Starts a real gunicorn (``--workers``, default 2) on loopback against a loopback stub of Drone and
Gitea, then fires signed ``issue_comment`` deliveries: new commands (202, a build each),
redeliveries (200 duplicate; the first copy is the 202), comments without a command (200 ignored)
and badly signed ones (401). Prints latency percentiles per kind, throughput, and when the last
reply reached the forge. Rounds: one client; ``--clients`` clients; the same with an upstream that
answers after ``--upstream-delay`` s, to show a slow Drone/forge does not slow the webhook answer
(forges give up after a few seconds).

    .venv/bin/python bench/bridge_latency.py [--requests 2000] [--clients 16] [--upstream-delay 1]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import Figure, quick, record
from tests.bridge.payloads import SECRET, encode, gitea_comment, gitea_headers
from tests.bridge.stub import upstream_stub


def _start_gunicorn(
    upstream_url: str, state: Path, workers: int
) -> tuple[subprocess.Popen[str], str]:
    env = {
        **os.environ,
        "CCCI_DRONE_SERVER": upstream_url,
        "CCCI_DRONE_TOKEN": "bench",
        "CCCI_DRONE_REPO": "coop-cloud/cc-ci",
        "CCCI_GITEA_URL": upstream_url,
        "CCCI_GITEA_TOKEN": "bench",
        "CCCI_WEBHOOK_SECRET": SECRET,
        "CCCI_COOLDOWN_S": "0",
        "CCCI_BRIDGE_STATE_DIR": str(state),
    }
    argv = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", "127.0.0.1:0"]
    proc = subprocess.Popen(
        [*argv, "ccci_bridge.app:create_app()"], env=env, stderr=subprocess.PIPE, text=True
    )
    if proc.stderr is None:
        raise SystemExit("no stderr pipe")
    url, booted = None, 0
    for line in proc.stderr:
        if match := re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", line):
            url = match[1]
        booted += "Booting worker" in line
        if url and booted == workers:
            break
    if url is None:
        raise SystemExit("gunicorn did not start")
    threading.Thread(target=proc.stderr.read, daemon=True).start()
    return proc, url


def _requests(n: int) -> list[tuple[str, bytes, dict[str, str]]]:
    """Return ``n`` deliveries: 1/4 each new command, redelivery, plain comment, bad signature."""
    out = []
    replay = encode(gitea_comment("!testme --quick", comment_id=1))
    for i in range(n):
        kind = ("command", "redelivery", "no-command", "bad-signature")[i % 4]
        if kind == "command":
            body = encode(gitea_comment("!testme", comment_id=1000 + i, user=f"u{i}"))
            headers = gitea_headers(body)
        elif kind == "redelivery":
            body, headers = replay, gitea_headers(replay, delivery="replayed")
        elif kind == "no-command":
            body = encode(gitea_comment("Looks good to me!", comment_id=1000 + i))
            headers = gitea_headers(body)
        else:
            body = encode(gitea_comment("!testme", comment_id=1000 + i))
            headers = {**gitea_headers(body), "X-Gitea-Signature": "0" * 64}
        out.append((kind, body, headers))
    return out


def _round(
    label: str, args: argparse.Namespace, delay: float, clients: int, n: int
) -> dict[str, float]:
    with upstream_stub(delay) as upstream, tempfile.TemporaryDirectory() as tmp:
        proc, url = _start_gunicorn(upstream.url, Path(tmp), args.workers)
        try:
            work = _requests(n)
            session = threading.local()

            def send(item: tuple[str, bytes, dict[str, str]]) -> tuple[str, int, float]:
                kind, body, headers = item
                if not hasattr(session, "s"):
                    session.s = requests.Session()
                start = time.perf_counter()
                response = session.s.post(
                    f"{url}/hooks/gitea", data=body, headers=headers, timeout=60
                )
                return kind, response.status_code, time.perf_counter() - start

            begin = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                results = list(pool.map(send, work))
            wall = time.perf_counter() - begin
            accepted = sum(1 for _, status, _ in results if status == 202)
            upstream.wait_for("POST", "/issues/42/comments", accepted)
            drained = time.perf_counter() - begin
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait()

    by_kind: dict[str, list[float]] = defaultdict(list)
    statuses: dict[str, set[int]] = defaultdict(set)
    for kind, status, elapsed in results:
        by_kind[kind].append(elapsed * 1000)
        statuses[kind].add(status)
    print(f"\n## {label}: {n} requests, {clients} clients, {args.workers} workers")
    print(f"{'kind':<15}{'status':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for kind, values in by_kind.items():
        q = statistics.quantiles(values, n=100, method="inclusive")
        status = ",".join(map(str, sorted(statuses[kind])))
        print(f"{kind:<15}{status:>8}{q[49]:>9.1f}{q[94]:>9.1f}{q[98]:>9.1f}{max(values):>9.1f}")
    builds = len(upstream.matching("POST", "/builds"))
    print(
        f"throughput {len(results) / wall:.0f} req/s; {accepted} accepted -> {builds} builds; "
        f"all replies posted {drained:.1f} s after the first request"
    )
    if builds != accepted:
        raise SystemExit(f"expected {accepted} builds, Drone saw {builds}")
    worst = max(statistics.quantiles(v, n=100, method="inclusive")[94] for v in by_kind.values())
    return {"requests": n, "clients": clients, "p95_ms": worst, "req_per_s": len(results) / wall}


def main() -> None:
    """Run the benchmark rounds and print their tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--upstream-delay", type=float, default=0.5, help="seconds, last round")
    args = parser.parse_args()
    if quick():
        args.requests = min(args.requests, 80)
    rounds = {
        "one client": _round("one client, fast upstream", args, 0.0, 1, args.requests),
        "under load": _round("under load, fast upstream", args, 0.0, args.clients, args.requests),
    }
    # Each build costs six upstream calls (eyes, permission, PR, Drone, rocket, reply) on
    # 2 workers x 4 threads, so the slow round is smaller to drain in reasonable time.
    slow = f"under load, every upstream call answering after {args.upstream_delay:g} s"
    rounds["slow upstream"] = _round(
        slow, args, args.upstream_delay, args.clients, max(args.requests // 10, 40)
    )
    figures = [
        Figure(f"bridge webhook p95, {name}", "-", f"{r['p95_ms']:.0f} ms", None)
        for name, r in rounds.items()
    ]
    record("bridge", figures, rounds)


if __name__ == "__main__":
    main()
