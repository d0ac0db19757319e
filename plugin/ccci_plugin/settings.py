"""The plugin's settings: ``CCCI_<NAME>``, or in a Drone step its setting ``PLUGIN_<NAME>``.

The build parameters (``RECIPE``, ``REF``, ``CCCI_QUICK``, ...) and ``DRONE_BUILD_*`` are read by
the run itself (:mod:`ccci_plugin.request`).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr

from ccci_core.names import stack_name
from ccci_core.settings import BaseUrl, DeploySettings


class PluginSettings(DeploySettings):
    """Settings of ``cc-ci run``: each also read from Drone's ``PLUGIN_<NAME>``."""

    drone_settings: ClassVar[bool] = True

    runs_dir: Path = Path("/var/lib/ci-runs")  # per-run scratch: checkouts, a run's ABRA_DIR
    apps_dir: Path = Path("/var/lib/ci-apps")  # the swarm deployer's app env files
    lease_wait_s: int = Field(default=3600, ge=0)  # how long a run waits for a lease
    result_file: Path | None = None  # where the run writes its JSON result
    # The live-warm Keycloak that per-run realms are created in; "" = none (recipes with
    # DEPS = ["keycloak"] then refuse to run). The admin logs in to the master realm (admin-cli).
    keycloak_url: BaseUrl = ""
    keycloak_admin_user: str = "admin"
    keycloak_admin_password: SecretStr = SecretStr("")


class JanitorSettings(PluginSettings):
    """Settings of ``cc-ci janitor``: a run's, plus the infra domains it must never touch."""

    drone_settings: ClassVar[bool] = False  # a host command, never a Drone step

    keycloak_domain: str = ""  # "" = warm-keycloak.<CCCI_DOMAIN> (as ``cc-ci reconcile`` reads)
    traefik_domain: str = ""  # "" = traefik.<CCCI_DOMAIN>

    def infra_stacks(self) -> set[str]:
        """Return the stacks of the live-warm infra apps on this host."""
        domains = {
            self.keycloak_domain or f"warm-keycloak.{self.domain}",
            self.traefik_domain or f"traefik.{self.domain}",
        }
        return {stack_name(domain) for domain in domains}
