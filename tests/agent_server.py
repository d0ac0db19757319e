"""Run the real host agent (``cc-ci agent serve``) in a subprocess for tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from ccci_core.agent_client import AgentClient, AgentClientError

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def running_agent(
    socket: Path, state_dir: Path, env: Mapping[str, str], workers: int = 2
) -> Iterator[AgentClient]:
    """Serve the agent on ``socket`` until the block ends; yield a client once it answers."""
    argv = [sys.executable, "-m", "ccci_core.cli", "agent", "serve", "--socket", str(socket)]
    argv += ["--state-dir", str(state_dir), "--workers", str(workers)]
    proc = subprocess.Popen(
        argv, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    client = AgentClient(socket, timeout=120)
    try:
        while True:  # until it answers or dies
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "agent died")
            try:
                AgentClient(socket, timeout=5).get("/v1/status")
                break
            except AgentClientError:
                time.sleep(0.1)
        yield client
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait()
