"""The example pipeline (``docs/examples/drone.yml``): its plugin step, as Drone would start it."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from ccci_core import build_params
from ccci_core.settings import DRONE_PREFIX, SocketSettings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "drone.yml"
DOCKER_SOCKET = PurePosixPath("/var/run/docker.sock")
WORKSPACE = PurePosixPath("/drone/src")  # Drone's working directory: the CI repository's clone
# The build parameters a step may also be given as settings (PLUGIN_RECIPE, ...).
PARAMETER_SETTINGS = {
    build_params.plugin_setting(name).removeprefix(DRONE_PREFIX).lower()
    for name in (
        build_params.RECIPE,
        build_params.REF,
        build_params.PR,
        build_params.SHA,
        build_params.QUICK,
    )
}


def pipeline() -> dict[str, Any]:
    """Return the example pipeline."""
    loaded: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    return loaded


def plugin_step() -> dict[str, Any]:
    """Return the pipeline's one step, the plugin's."""
    (step,) = pipeline()["steps"]
    assert isinstance(step, dict)
    return step


def mounts() -> dict[PurePosixPath, PurePosixPath]:
    """Return the step's volumes: container path → host path."""
    hosts = {v["name"]: PurePosixPath(v["host"]["path"]) for v in pipeline()["volumes"]}
    return {PurePosixPath(v["path"]): hosts[v["name"]] for v in plugin_step()["volumes"]}


def settings_env(overrides: Mapping[str, str], secret: str) -> dict[str, str]:
    """Return the step's settings as Drone passes them (``PLUGIN_<KEY>``), some values replaced.

    A ``from_secret`` setting gets ``secret``; ``overrides`` replace or add settings by key.
    """
    env = {}
    for key, value in {**plugin_step()["settings"], **overrides}.items():
        text = secret if isinstance(value, dict) and "from_secret" in value else str(value)
        env[f"{DRONE_PREFIX}{key.upper()}"] = text
    return env


def agent_socket(settings: Mapping[str, Any]) -> PurePosixPath:
    """Return where the plugin looks for the agent's socket under these settings."""
    default = SocketSettings.model_fields["agent_socket"].default
    return PurePosixPath(settings.get("agent_socket", default))


def pyproject_dependencies(extras: list[str]) -> set[str]:
    """Return the distribution names pyproject.toml requires with ``extras`` (no versions)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + [
        r for extra in extras for r in project["optional-dependencies"][extra]
    ]
    return {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower() for r in wanted}
