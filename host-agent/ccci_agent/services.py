"""The agent's services: its state directory and the registries the routes use.

:func:`build_services` builds them once per app from :class:`AgentSettings` and a Docker engine;
nothing else reaches them. Tests that need other knobs (a short poll interval) build
:class:`Canonicals` themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

from ccci_core.docker_engine import DockerVolumes, SdkDocker

from .alerts import Alerts
from .canonical import Canonicals
from .errors import EngineError
from .infra import InfraVersions
from .leases import Leases
from .settings import AgentSettings
from .store import StateDir
from .sweeps import Sweeps


@dataclass(frozen=True)
class AgentServices:
    """What the routes use, stored in ``app.extensions['ccci_agent']``."""

    settings: AgentSettings
    state: StateDir
    canonicals: Canonicals
    alerts: Alerts
    leases: Leases
    infra: InfraVersions
    sweeps: Sweeps


def build_services(settings: AgentSettings, engine: DockerVolumes | None = None) -> AgentServices:
    """Build the agent's services from ``settings`` (the engine defaults to the local Docker)."""
    state = StateDir(settings.state_dir)
    engine = engine if engine is not None else SdkDocker.from_env(EngineError)
    alerts = Alerts(state)
    canonicals = Canonicals(
        state, engine, settings.domain, alerts, wait_timeout=settings.volume_wait, tar=settings.tar
    )
    infra = InfraVersions(state, alerts, engine, tar=settings.tar, volume_wait=settings.volume_wait)
    return AgentServices(
        settings=settings,
        state=state,
        canonicals=canonicals,
        alerts=alerts,
        leases=Leases(state, settings.max_tests, alerts=alerts, realm_guard=infra.realm_guard),
        infra=infra,
        sweeps=Sweeps(state),
    )
