"""The plugin's settings (Drone's own ``PLUGIN_*``/``DRONE_*`` variables are read by the run)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from ccci_core.settings import HostSettings


class PluginSettings(HostSettings):
    """Settings of ``cc-ci run``."""

    runs_dir: Path = Path("/var/lib/ci-runs")  # per-run scratch: checkouts, a run's ABRA_DIR
    apps_dir: Path = Path("/var/lib/ci-apps")  # the swarm deployer's app env files
    lease_wait_s: int = Field(default=3600, ge=0)  # how long a run waits for a lease
    result_file: Path | None = None  # where the run writes its JSON result
