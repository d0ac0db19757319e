"""The host side's settings: the agent, ``cc-ci reconcile`` and ``cc-ci prune``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from ccci_core.errors import ConfigError, InvalidName
from ccci_core.names import validate_base_domain, validate_recipe
from ccci_core.settings import DeploySettings, HostSettings, SocketSettings


class AgentSettings(HostSettings):
    """Settings of ``cc-ci agent serve``."""

    state_dir: Path = Path("/var/lib/ci-warm")
    socket_group: str = "ci-warm"
    max_tests: int = Field(default=1, ge=1, le=64)
    # How long a snapshot/restore waits for lingering task containers to release the volumes.
    volume_wait: float = Field(default=60.0, ge=0, le=3600)
    # Threads per gunicorn worker: a snapshot or restore holds one for minutes, the rest answer.
    agent_threads: int = Field(default=8, ge=1, le=256)
    # The GNU tar warmsnap runs: a name on PATH or an absolute path (pin it, e.g. on NixOS).
    tar: str = Field(default="tar", min_length=1, max_length=4096)


class ReconcileSettings(DeploySettings):
    """Settings of ``cc-ci reconcile``: which recipe and domain each infra app is, and the waits.

    The recipes come from the same catalog and deployer as every run (``CCCI_RECIPES_DIR``,
    ``CCCI_DEPLOYER``); the probe is the recipe's ``HEALTH_PATH`` (its ``recipe_meta.py`` in
    ``CCCI_TESTS_DIR``) unless ``CCCI_<APP>_HEALTH_PATH`` says otherwise.
    """

    keycloak_recipe: str = "keycloak"
    traefik_recipe: str = "traefik"
    keycloak_domain: str = ""  # "" = warm-keycloak.<CCCI_DOMAIN>
    traefik_domain: str = ""  # "" = traefik.<CCCI_DOMAIN>
    keycloak_health_path: str | None = Field(default=None, pattern=r"^/[^\s]*$")
    traefik_health_path: str | None = Field(default=None, pattern=r"^/[^\s]*$")
    reconcile_wait_s: int = Field(default=600, ge=0, le=86_400)  # for a live run or reconcile
    runs_dir: Path = Path("/var/lib/ci-runs")  # scratch: the reconcile's checkouts and ABRA_DIR
    apps_dir: Path = Path("/var/lib/ci-apps")  # the swarm deployer's app env files

    @field_validator("keycloak_recipe", "traefik_recipe")
    @classmethod
    def _recipe(cls, value: str) -> str:
        try:
            return validate_recipe(value)
        except InvalidName as exc:
            raise ValueError(exc.message) from exc

    @field_validator("keycloak_domain", "traefik_domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        if not value:
            return value
        try:
            return validate_base_domain(value, "domain")
        except ConfigError as exc:
            raise ValueError(exc.reason) from exc


class PruneSettings(SocketSettings):
    """Settings of ``cc-ci prune``: the agent's socket (is a run in flight?) and when to act."""

    # Percent of / used at or above which prune acts (0: whatever the disk says).
    prune_threshold: int = Field(default=80, ge=0, le=100)
