"""The agent's services are built from its settings and nothing else."""

from __future__ import annotations

from pathlib import Path

from ccci_agent.errors import EngineError
from ccci_agent.services import build_services
from ccci_agent.settings import AgentSettings
from ccci_core.docker_engine import SdkDocker


def test_the_snapshot_settings_reach_the_snapshots(tmp_path: Path) -> None:
    """CCCI_VOLUME_WAIT and CCCI_TAR are what the snapshots and restores use."""
    settings = AgentSettings(state_dir=tmp_path, volume_wait=7.5, tar="/opt/gnu/bin/tar")

    warmsnap = build_services(settings, SdkDocker.from_env(EngineError)).canonicals.warmsnap

    assert (7.5, "/opt/gnu/bin/tar") == (warmsnap.wait_timeout, warmsnap.tar)


def test_the_settings_size_the_leases_and_the_domain(tmp_path: Path) -> None:
    """CCCI_MAX_TESTS bounds the leases; CCCI_DOMAIN names the canonicals."""
    settings = AgentSettings(state_dir=tmp_path, max_tests=5, domain="ci.example.org")

    services = build_services(settings, SdkDocker.from_env(EngineError))

    assert (5, "ci.example.org") == (services.leases.max_tests, services.canonicals.base_domain)
