"""Run the bridge as production does: gunicorn, two workers, ``ccci_bridge.app:create_app()``."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.bridge.payloads import SECRET


@dataclass(frozen=True)
class Served:
    """A running gunicorn bridge: its URL and master process."""

    url: str
    proc: subprocess.Popen[str]

    def workers(self) -> set[int]:
        """Return the pids of the master's workers now."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        return {int(pid) for pid in children.split()}


@contextmanager
def gunicorn_bridge(
    upstream_url: str, state_dir: Path, access_log: Path, **extra: str
) -> Iterator[Served]:
    """Serve the bridge on an ephemeral loopback port, its upstreams at ``upstream_url``."""
    env = {
        **os.environ,
        "CCCI_DRONE_SERVER": upstream_url,
        "CCCI_DRONE_TOKEN": "drone-token",
        "CCCI_DRONE_REPO": "coop-cloud/cc-ci",
        "CCCI_GITEA_URL": upstream_url,
        "CCCI_GITEA_TOKEN": "gitea-token",
        "CCCI_WEBHOOK_SECRET": SECRET,
        "CCCI_BRIDGE_STATE_DIR": str(state_dir),
        **extra,
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
        yield Served(url, proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
