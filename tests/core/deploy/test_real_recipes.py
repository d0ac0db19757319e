"""Recipes shaped like real Co-op Cloud ones deploy exactly as abra would deploy them.

``ccci-overlay`` grows its ``COMPOSE_FILE`` chain line by line (a nested ``postgres/`` overlay
included), uses list-form environment across overlays, typed-looking labels, secrets whose
variable differs from their key, ``# length=`` modifiers and a long config name. ``ccci-proxy``
overrides ingress ports with host-mode ones and adds a middleware through a keycloak overlay that
a ``template_driver: golang`` config reads. Everything runs on the real engine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml

from ccci_core.catalog import Catalog
from ccci_core.deploy import compose
from ccci_core.deploy.health import wait_ready
from ccci_core.deploy.protocol import chaos_label, version_label
from ccci_core.deploy.stack import Stack
from ccci_core.deploy.swarm import SwarmDeployer
from ccci_core.names import AppName
from tests.deploy_fixtures import unused_port

pytestmark = pytest.mark.docker

OVERLAY, PROXY = "ccci-overlay", "ccci-proxy"
OVERLAY_SUFFIX = len("pg_tuning_config_v1")
LEAK = "ccci-token-that-must-never-reach-an-app"


@pytest.fixture
def hostile_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """cc-ci's own process environment holds a token and a LOG_LEVEL an app must never see."""
    monkeypatch.setenv("CCCI_FORGE_TOKEN", LEAK)
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("KEYCLOAK_MIDDLEWARE_ENABLED", "0")


def _dockers_loader(folder: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run docker's loader by hand, with exactly the app env, as abra hands it the app env."""
    argv = [str(shutil.which("docker")), "stack", "config"]
    for name in compose.compose_files(env):
        argv += ["--compose-file", name]
    done = subprocess.run(
        argv, cwd=folder, env=env, capture_output=True, text=True, check=True, timeout=60
    )
    return dict(yaml.safe_load(done.stdout))


def _env_of(stack: Stack, service: str) -> dict[str, str]:
    code, out = stack.exec(service, ["cat", "/proc/1/environ"])  # the image has no `env`
    assert 0 == code, out
    return dict(entry.split("=", 1) for entry in out.split("\0") if "=" in entry)


def _read(stack: Stack, service: str, path: str) -> str:
    code, out = stack.exec(service, ["cat", path])
    assert 0 == code, out
    return out


def _deploy(
    deployer: SwarmDeployer, app: AppName, catalog: Catalog, tmp_path: Path, env: dict[str, str]
) -> tuple[Stack, dict[str, Any]]:
    with catalog.checkout(app.recipe, None, tmp_path / "run") as checkout:
        deployer.new(app, checkout, env)
        rendered = deployer.render(app, checkout)
        since = datetime.now(UTC)
        deployer.deploy(app, checkout)
    stack = Stack(deployer.docker, app.stack)
    wait_ready(stack, timeout=120, since=since)
    return stack, rendered


def test_rendered_stack_is_dockers_loader_plus_only_what_abra_adds(
    swarm_deployer: SwarmDeployer,
    catalog: Catalog,
    make_app: Callable[..., AppName],
    web_image: str,
    tmp_path: Path,
    hostile_environ: None,
) -> None:
    """What we deploy equals docker's loader on the app env, plus version labels, nothing else."""
    for recipe, suffix in ((OVERLAY, OVERLAY_SUFFIX), (PROXY, len("proxy_toml_v4"))):
        app = make_app(recipe, suffix)
        with catalog.checkout(recipe, None, tmp_path / recipe) as checkout:
            swarm_deployer.new(app, checkout, {"WEB_IMAGE": web_image})
            ours = swarm_deployer.render(app, checkout)
            env = {
                **compose.parse_abra_sh((checkout.path / "abra.sh").read_text()),
                **swarm_deployer.env(app),
                "STACK_NAME": app.stack,
            }
            theirs = _dockers_loader(checkout.path, env)
        added = {chaos_label(app.stack): "false", version_label(app.stack): "1.0.0+" + recipe[-1]}
        for service in ours["services"].values():
            labels = service["deploy"]["labels"]
            assert {k: labels.pop(k) for k in list(labels) if k.startswith("coop-cloud.")}
            if not labels:
                del service["deploy"]["labels"]
            if not service["deploy"]:
                del service["deploy"]
        assert added  # the version labels are the only keys abra adds to the services
        assert theirs == ours, recipe


def test_overlay_recipe_deploys_with_the_app_env_and_its_secrets(
    docker_client: docker.DockerClient,
    swarm_deployer: SwarmDeployer,
    catalog: Catalog,
    make_app: Callable[..., AppName],
    web_image: str,
    tmp_path: Path,
    hostile_environ: None,
) -> None:
    """The chain, $VAR references, bare keys, labels, nested overlay, secret lengths: all abra's."""
    app = make_app(OVERLAY, OVERLAY_SUFFIX)
    stack, _ = _deploy(swarm_deployer, app, catalog, tmp_path, {"WEB_IMAGE": web_image})

    env = _env_of(stack, "app")
    assert {
        "DOMAIN": app.domain,
        "LOG_LEVEL": "WARN",  # the app's, not cc-ci's DEBUG
        "OAUTH_ISSUER": f"https://{app.domain}/realms/ci",
        "ESCAPED": "${NOT_EXPANDED}",
        "DB_HOST": "db",
    } == {k: env[k] for k in ("DOMAIN", "LOG_LEVEL", "OAUTH_ISSUER", "ESCAPED", "DB_HOST")}
    assert LEAK not in str(env)
    assert "CCCI_FORGE_TOKEN" not in env
    labels = docker_client.services.get(f"{app.stack}_app").attrs["Spec"]["Labels"]
    assert ("true", "3") == (labels["backupbot.backup"], labels["backupbot.backup.retries"])
    assert "shared_buffers = 256MB" == _read(stack, "db", "/etc/postgresql/tuning.conf").strip()
    assert "WARN" == _env_of(stack, "db")["LOG_LEVEL"]

    db_password = _read(stack, "app", "/run/secrets/db_password")
    token = _read(stack, "app", "/run/secrets/admin_token")
    root = _read(stack, "db", "/run/secrets/root_password")
    assert (128, 40, compose.DEFAULT_SECRET_LENGTH) == (len(db_password), len(token), len(root))
    assert set(db_password) <= set(compose.alphabet("default"))
    assert set(token) <= set(compose.alphabet("default,special"))
    assert db_password == _read(stack, "db", "/run/secrets/db_password")
    names = {s.name for s in docker_client.secrets.list(filters={"name": app.stack})}
    assert {
        f"{app.stack}_{n}" for n in ("db_password_v1", "admin_token_v2", "root_password_v3")
    } == (names)
    assert not any(v in os.environ.get("CCCI_FORGE_TOKEN", "") for v in (db_password, token))


def test_proxy_recipe_host_ports_replace_ingress_and_the_middleware_is_defined(
    docker_client: docker.DockerClient,
    swarm_deployer: SwarmDeployer,
    catalog: Catalog,
    make_app: Callable[..., AppName],
    web_image: str,
    tmp_path: Path,
    hostile_environ: None,
) -> None:
    """compose.host.yml's ports replace compose.yml's by published port; the template sees env."""
    app = make_app(PROXY, len("proxy_toml_v4"))
    http, https = unused_port(), unused_port()
    env = {"WEB_IMAGE": web_image, "HTTP_PORT": str(http), "HTTPS_PORT": str(https)}
    stack, _ = _deploy(swarm_deployer, app, catalog, tmp_path, env)

    spec = docker_client.services.get(f"{app.stack}_app").attrs["Spec"]
    ports = sorted(
        (p["TargetPort"], p["PublishedPort"], p["PublishMode"])
        for p in spec["EndpointSpec"]["Ports"]
    )
    assert [(80, http, "host"), (443, https, "host")] == ports
    assert 'middlewares = ["keycloak-ci"]' in _read(stack, "app", "/etc/proxy.toml")
    assert "1" == _env_of(stack, "app")["KEYCLOAK_MIDDLEWARE_ENABLED"]
