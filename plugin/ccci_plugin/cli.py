"""``cc-ci run``: what the plugin image runs in a Drone step.

This module imports only the standard library and the core at the top; the plugin's own
dependencies (docker) are imported in the handler.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from .report import RunReport
    from .request import RunRequest
    from .settings import PluginSettings


def _run(args: argparse.Namespace) -> int:
    from ccci_core.settings import load

    from .request import from_drone
    from .settings import PluginSettings

    request = from_drone(os.environ, recipe=args.recipe, ref=args.ref, quick=args.quick)
    code, _report = perform_request(request, load(PluginSettings))
    # The run is over and its result written: a late cancel must not turn exit 1 into a kill.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return code


def perform_request(
    request: RunRequest, settings: PluginSettings, out: TextIO | None = None
) -> tuple[int, RunReport]:
    """Wire one run of ``request`` from settings and perform it; return its code and report.

    ``cc-ci run`` and the nightly sweep (one cold run per enrolled recipe) both come here; the
    run's log goes to ``out`` (default stdout).
    """
    from ccci_core import recipe_meta
    from ccci_core.agent_client import AgentClient
    from ccci_core.catalog import Catalog
    from ccci_core.deploy.abra import AbraDeployer
    from ccci_core.deploy.errors import DeployError
    from ccci_core.deploy.protocol import Deployer
    from ccci_core.deploy.stack import live_stacks
    from ccci_core.deploy.swarm import SwarmDeployer
    from ccci_core.docker_engine import SdkDocker
    from ccci_core.errors import ConfigError
    from ccci_core.names import new_run_hex

    from .agent import SocketAgent
    from .apps import Apps
    from .cancel import Cancellation
    from .context import Run
    from .keycloak import connect
    from .report import RunReport
    from .run import perform

    meta = recipe_meta.load(settings.tests_dir, request.recipe)
    try:
        client = SdkDocker.from_env(DeployError)
    except DeployError as exc:
        raise ConfigError("DOCKER_HOST", exc.message) from exc
    run_hex = new_run_hex(live_stacks(client))
    run_dir = settings.runs_dir / f"{request.recipe}-{run_hex}"
    deployer: Deployer
    if settings.deployer == "abra":
        abra = AbraDeployer.for_run(client, run_dir, settings.abra_dir, server=settings.abra_server)
        deployer, checkouts = abra, abra.recipes_dir
    else:
        deployer, checkouts = SwarmDeployer(client, settings.apps_dir), run_dir / "recipes"
    realms = connect(settings, recipe=request.recipe) if "keycloak" in meta["DEPS"] else None
    report = RunReport(request, out if out is not None else sys.stdout)
    with Cancellation(report.say) as cancel:
        run = Run(
            request=request,
            domain=settings.domain,
            catalog=Catalog(settings.recipes_dir),
            apps=Apps(deployer, client, meta, settings.health_probe, {}),
            agent=SocketAgent(AgentClient(settings.agent_socket)),
            report=report,
            run_dir=run_dir,
            checkouts=checkouts,
            run_hex=run_hex,
            cancel=cancel,
            tests_dir=settings.tests_dir,
        )
        code = perform(
            run, lease_wait=settings.lease_wait_s, result_file=settings.result_file, realms=realms
        )
    return code, report


def _janitor(args: argparse.Namespace) -> int:
    from ccci_core.agent_client import AgentClient
    from ccci_core.deploy.errors import DeployError
    from ccci_core.docker_engine import SdkDocker
    from ccci_core.errors import ConfigError
    from ccci_core.settings import load

    from .janitor import build_janitor
    from .settings import JanitorSettings

    settings = load(JanitorSettings)
    try:
        docker = SdkDocker.from_env(DeployError)
    except DeployError as exc:
        raise ConfigError("DOCKER_HOST", exc.message) from exc
    agent = AgentClient(settings.agent_socket)
    agent.get("/v1/leases")  # unreachable: exit 2 before anything is touched
    janitor = build_janitor(settings, docker, lambda: list(agent.get("/v1/leases")["leases"]))
    swept = janitor.sweep(dry_run=args.dry_run)
    for line in swept.removed:
        print(
            f"removed {line}"
            if not args.dry_run
            else f"would remove {line.removesuffix(' (would remove)')}"
        )
    for line in swept.kept:
        print(f"kept {line}")
    for realm in swept.realms:
        print(f"realm {realm}" + ("" if args.dry_run else " deleted"))
    for line in swept.failed:
        print(f"FAILED {line}")
    if not (swept.removed or swept.realms or swept.failed):
        print("janitor: nothing left by dead runs")
    return 1 if swept.failed else 0


def register(sub: Any) -> None:
    """Add ``cc-ci run`` and ``cc-ci janitor``."""
    run = sub.add_parser(
        "run",
        help="perform a CI run of a recipe (what the Drone plugin runs)",
        description=(
            "Reads RECIPE, REF, CCCI_QUICK, CCCI_PR (build parameters), PLUGIN_* (plugin "
            "settings) and DRONE_BUILD_*; flags override them. Exit 0 pass, 1 fail, 2 bad input."
        ),
    )
    run.add_argument("--recipe", help="the recipe to test (default: $RECIPE, $PLUGIN_RECIPE)")
    run.add_argument("--ref", help="tag, commit or refs/pull/N/head (default: $REF, else latest)")
    run.add_argument(
        "--quick", action="store_true", default=None, help="the quick lane ($CCCI_QUICK=1)"
    )
    run.set_defaults(handler=_run)
    janitor = sub.add_parser(
        "janitor",
        help="remove what dead cold runs left (stacks, volumes, secrets, env, run dirs, realms)",
        description="Never a live run's, a canonical's or live-warm infra's. Exit 0 done, 1 a "
        "removal failed, 2 bad configuration or the agent not reachable.",
    )
    janitor.add_argument("--dry-run", action="store_true", help="say what would go, remove nothing")
    janitor.set_defaults(handler=_janitor)
