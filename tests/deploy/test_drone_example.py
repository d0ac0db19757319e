"""The example pipeline: valid YAML, settings the plugin reads, the volumes the image needs."""

from __future__ import annotations

import os
import re
from pathlib import PurePosixPath

import pytest

from ccci_core import build_params
from ccci_core.settings import load
from ccci_plugin.settings import PluginSettings
from tests.deploy.pipeline import (
    DOCKER_SOCKET,
    PARAMETER_SETTINGS,
    ROOT,
    WORKSPACE,
    agent_socket,
    mounts,
    pipeline,
    plugin_step,
    settings_env,
)

# Settings holding a path the plugin reads or writes: each must lie in a volume (or the workspace).
PATH_SETTINGS = ("abra_dir", "recipes_dir", "tests_dir", "runs_dir", "apps_dir", "result_file")


def test_it_runs_on_the_bridge_builds_and_on_promote() -> None:
    """The pipeline is a docker pipeline triggered by ``custom`` (the bridge) and ``promote``."""
    loaded = pipeline()
    assert ("pipeline", "docker") == (loaded["kind"], loaded["type"])
    assert {"custom", "promote"} == set(loaded["trigger"]["event"])


def test_every_setting_is_one_the_plugin_reads() -> None:
    """Each ``settings:`` key is a plugin setting or a build parameter's: no typo goes unread."""
    readable = set(PluginSettings.model_fields) | PARAMETER_SETTINGS
    assert set() == set(plugin_step()["settings"]) - readable


def test_the_settings_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """The settings, as Drone passes them, are valid plugin settings (exit 2 otherwise)."""
    for key in list(os.environ):
        if key.startswith(("CCCI_", "PLUGIN_")):
            monkeypatch.delenv(key)
    for key, value in settings_env({}, secret="s3cret").items():
        monkeypatch.setenv(key, value)
    settings = load(PluginSettings)
    assert ("abra", "s3cret") == (
        settings.deployer,
        settings.keycloak_admin_password.get_secret_value(),
    )


def test_every_volume_is_declared_on_the_host_at_the_same_path() -> None:
    """Each step volume names a host volume, mounted at its own path.

    Same paths on both sides: a run's env file and run dir then have the names the host's
    janitor looks for.
    """
    assert {path: path for path in mounts()} == mounts()


def test_the_volumes_hold_what_the_image_needs() -> None:
    """The Docker socket, the agent's socket dir and every path setting lie in a volume."""
    settings = plugin_step()["settings"]
    paths = {
        "docker socket": DOCKER_SOCKET,
        "agent socket": agent_socket(settings),
        **{
            key: WORKSPACE / settings[key]
            if not PurePosixPath(settings[key]).is_absolute()
            else PurePosixPath(settings[key])
            for key in PATH_SETTINGS
            if key in settings
        },
    }
    outside = {
        what: str(path)
        for what, path in paths.items()
        if not any(path == m or m in path.parents for m in [*mounts(), WORKSPACE])
    }
    assert {} == outside


def test_the_step_runs_the_local_image_on_the_host_network() -> None:
    """No registry: the image is never pulled; the probe reaches apps as the host does."""
    step = plugin_step()
    assert ("never", "host") == (step["pull"], step["network_mode"])


def test_the_handbook_documents_every_setting_the_plugin_reads() -> None:
    """docs/operating.md's table names each PLUGIN_* setting and build parameter, and no other."""
    table = (ROOT / "docs" / "operating.md").read_text().split("## The plugin's settings")[1]
    table = table.split("\n## ")[0]
    documented = set(re.findall(r"`PLUGIN_([A-Z_]+)`", table))
    expected = {name.upper() for name in set(PluginSettings.model_fields) | PARAMETER_SETTINGS}
    assert expected == documented
    parameters = {build_params.RECIPE, build_params.REF, build_params.QUICK, build_params.PR}
    parameters |= {build_params.SHA, "DRONE_BUILD_NUMBER", "DRONE_BUILD_LINK"}
    assert set() == {p for p in parameters if f"`{p}`" not in table}
