"""``cc-ci reconcile``: build a :class:`~ccci_agent.reconcile.Reconciler` from settings, run it.

What ``warm-keycloak.service`` and ``deploy-proxy.service`` run, and what an operator runs to roll
or repair one by hand. Output: a line per step with its duration, then the outcome and versions
(``--json``: the same as one object). Exit 0 applied / no-op / deferred (and a ``--dry-run``
plan), 1 held / rolled back / failed, 2 bad input or configuration.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import replace

from ccci_core import recipe_meta
from ccci_core.agent_client import AgentClient
from ccci_core.catalog import Catalog
from ccci_core.deploy.abra import AbraDeployer
from ccci_core.deploy.errors import DeployError
from ccci_core.deploy.protocol import Deployer
from ccci_core.deploy.swarm import SwarmDeployer
from ccci_core.docker_engine import SdkDocker
from ccci_core.errors import ConfigError
from ccci_core.names import infra_app
from ccci_core.settings import load

from .infra_client import SocketInfra
from .reconcile import Infra, Reconciler, Result
from .settings import ReconcileSettings

STATEFUL = {"keycloak": True, "traefik": False}


def infra_of(settings: ReconcileSettings, name: str) -> Infra:
    """Return infra app ``name`` as the settings configure it."""
    recipe = getattr(settings, f"{name}_recipe")
    default = {"keycloak": "warm-keycloak", "traefik": "traefik"}[name]
    domain = getattr(settings, f"{name}_domain") or f"{default}.{settings.domain}"
    meta = recipe_meta.load(settings.tests_dir, recipe)
    path = getattr(settings, f"{name}_health_path")
    if path is not None:
        meta = replace(meta, values={**meta.values, "HEALTH_PATH": path})
    return Infra(
        name=name,
        app=infra_app(recipe, domain),
        stateful=STATEFUL[name],
        meta=meta,
        probe_mode=settings.health_probe,
        guard_realms=name == "keycloak",
    )


def build(settings: ReconcileSettings, name: str, say: Callable[[str], None]) -> Reconciler:
    """Wire a reconciler of ``name``: the agent's socket, the engine, the deployer, the catalog."""
    try:
        docker = SdkDocker.from_env(DeployError)
    except DeployError as exc:
        raise ConfigError("DOCKER_HOST", exc.message) from exc
    run_dir = settings.runs_dir / f"reconcile-{name}"
    deployer: Deployer
    if settings.deployer == "abra":
        abra = AbraDeployer.for_run(docker, run_dir, settings.abra_dir, server=settings.abra_server)
        deployer, checkouts = abra, abra.recipes_dir
    else:
        deployer, checkouts = SwarmDeployer(docker, settings.apps_dir), run_dir / "recipes"
    return Reconciler(
        infra=infra_of(settings, name),
        port=SocketInfra(AgentClient(settings.agent_socket)),
        deployer=deployer,
        docker=docker,
        catalog=Catalog(settings.recipes_dir),
        checkouts=checkouts,
        wait=settings.reconcile_wait_s,
        say=say,
    )


def reconcile(args: argparse.Namespace) -> int:
    """Run ``cc-ci reconcile`` as parsed; return the exit code."""
    quiet = args.json
    say: Callable[[str], None] = (lambda _line: None) if quiet else print
    reconciler = build(load(ReconcileSettings), args.app, say)
    result: Result = reconciler.run(dry_run=args.dry_run, to=args.to, accept=args.accept_migration)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        if result.outcome == "plan":
            for line in result.plan:
                print(f"plan: {line}")
            if result.decision is not None:
                for reason in result.decision["reasons"]:
                    print(f"gate: {reason}")
        print(result.final_line())
    sys.stdout.flush()
    return result.exit_code
