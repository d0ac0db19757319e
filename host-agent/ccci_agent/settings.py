"""The host agent's settings."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from ccci_core.settings import HostSettings


class AgentSettings(HostSettings):
    """Settings of ``cc-ci agent`` and the systemd-driven reconciles."""

    state_dir: Path = Path("/var/lib/ci-warm")
    socket_group: str = "ci-warm"
    max_tests: int = Field(default=1, ge=1, le=64)
    # How long a snapshot/restore waits for lingering task containers to release the volumes.
    volume_wait: float = Field(default=60.0, ge=0, le=3600)
    # Threads per gunicorn worker: a snapshot or restore holds one for minutes, the rest answer.
    agent_threads: int = Field(default=8, ge=1, le=256)
    # The GNU tar warmsnap runs: a name on PATH or an absolute path (pin it, e.g. on NixOS).
    tar: str = Field(default="tar", min_length=1, max_length=4096)
