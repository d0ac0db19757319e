"""The plugin's settings (Drone's own ``PLUGIN_*``/``DRONE_*`` variables are read by the run)."""

from __future__ import annotations

from pathlib import Path

from ccci_core.settings import HostSettings


class PluginSettings(HostSettings):
    """Settings of ``cc-ci run``."""

    runs_dir: Path = Path("/var/lib/ci-runs")
