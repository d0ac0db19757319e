"""``cc-ci sweep``: wire the :class:`~ccci_agent.sweep.Sweep` from settings and run it."""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from pydantic import Field

from ccci_core import recipe_meta
from ccci_core.agent_client import AgentClient
from ccci_core.deploy.errors import RecipeMetaError
from ccci_core.errors import ConfigError
from ccci_core.names import validate_recipe
from ccci_core.settings import RelaySettings, load
from ccci_plugin.report import Verdict
from ccci_plugin.request import RunRequest
from ccci_plugin.settings import JanitorSettings

from .reconcile_cli import build as build_reconciler
from .settings import ReconcileSettings
from .sweep import RecipeResult, Summary, Sweep


class SweepSettings(ReconcileSettings, JanitorSettings, RelaySettings):
    """What ``cc-ci sweep`` reads: a run's settings, the reconciles', the janitor's, the relay's."""

    sweep_yield_s: float = Field(default=6.0, ge=0, le=600)  # left between recipes for people


class SocketSweepAgent:
    """The :class:`~ccci_agent.sweep.SweepAgent` on the agent's socket."""

    def __init__(self, client: AgentClient) -> None:
        self.client = client

    def leases(self) -> list[dict[str, Any]]:
        """Return the live leases."""
        return list(self.client.get("/v1/leases")["leases"])

    def prune_stale(self, enrolled: Sequence[str]) -> dict[str, Any]:
        """Drop the warm data of canonicals not in ``enrolled``."""
        return dict(self.client.post("/v1/prune-stale", {"enrolled": list(enrolled)}))

    def record(self, summary: dict[str, Any]) -> None:
        """Record the sweep's summary."""
        self.client.post("/v1/sweeps", {"summary": summary})

    def disk(self) -> dict[str, Any]:
        """Return the agent's view of disk use."""
        return dict(self.client.get("/v1/status")["disk"])


def enrolled(settings: SweepSettings) -> list[str]:
    """Return the recipes with ``WARM_CANONICAL = True`` that the catalog holds, sorted."""
    found: list[str] = []
    if not settings.tests_dir.is_dir():
        raise ConfigError("CCCI_TESTS_DIR", f"{settings.tests_dir} is not a directory")
    for folder in sorted(settings.tests_dir.iterdir()):
        if not (folder / recipe_meta.FILENAME).is_file():
            continue
        try:
            meta = recipe_meta.load(settings.tests_dir, validate_recipe(folder.name))
        except (RecipeMetaError, ValueError):
            continue  # a broken metadata file is the recipe's run's to report, not enrolment
        if meta["WARM_CANONICAL"] and (settings.recipes_dir / folder.name / ".git").exists():
            found.append(folder.name)
    return found


def run_recipe(settings: SweepSettings, recipe: str, out: TextIO) -> RecipeResult:
    """Perform the plugin's cold run of ``recipe`` on latest; return its line of the summary."""
    from ccci_plugin.cli import perform_request

    started = time.monotonic()
    request = RunRequest(recipe, build_number="sweep")
    try:
        code, report = perform_request(request, settings, out)
    except Exception as exc:
        return RecipeResult(recipe, "error", time.monotonic() - started, detail=str(exc)[:300])
    seconds = time.monotonic() - started
    failed = [s for s in report.steps if s.verdict is Verdict.FAIL]
    detail = f"{failed[0].name}: {failed[0].detail}"[:300] if failed else (report.stopped or "")
    result = {0: "pass", 1: "fail"}.get(code, "error")
    promoted = (report.canonical or "").startswith("promoted")
    return RecipeResult(recipe, result, seconds, promoted, detail or (report.canonical or ""))


def sweep(args: argparse.Namespace) -> int:
    """Run ``cc-ci sweep`` as parsed; return the exit code."""
    import fcntl

    settings = load(SweepSettings)
    quiet = args.json
    say = (lambda _line: None) if quiet else print
    agent = SocketSweepAgent(AgentClient(settings.agent_socket))
    agent.leases()  # unreachable: exit 2 before anything runs
    settings.runs_dir.mkdir(parents=True, exist_ok=True)
    lock_path: Path = settings.runs_dir / ".sweep.lock"
    with lock_path.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say("sweep skipped: another sweep is running")
            return 0
        summary = _run(settings, agent, say, dry_run=args.dry_run, quiet=quiet)
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        for line in summary_lines(summary):
            print(line)
    return summary.exit_code


def summary_lines(summary: Summary) -> list[str]:
    """Return the sweep's end as people read it: the table, infra, clean-up, disk, breakage."""
    if summary.skipped:
        return []  # the sweep said why as it skipped
    lines = ["", *summary.table()]
    lines += [f"infra {app}: {outcome}" for app, outcome in summary.infra.items()]
    lines += summary.pruned + summary.janitor + summary.relayed
    for where, use in summary.disk.items():
        if isinstance(use, dict) and "percent" in use:
            lines.append(f"disk {where} ({use.get('path', '?')}): {use['percent']}% used")
    lines += [f"BROKEN {line}" for line in summary.broken]
    return lines


def _run(
    settings: SweepSettings, agent: SocketSweepAgent, say: Any, *, dry_run: bool, quiet: bool
) -> Summary:
    """Build the sweep's ports and run it (with ``quiet``, the runs' logs go to stderr)."""
    from ccci_core.deploy.errors import DeployError
    from ccci_core.docker_engine import SdkDocker
    from ccci_plugin.janitor import build_janitor

    def reconcile(app: str) -> str:
        result = build_reconciler(settings, app, say).run()
        return result.final_line()

    def janitor(dry: bool) -> list[str]:
        docker = SdkDocker.from_env(DeployError)
        swept = build_janitor(settings, docker, agent.leases, say).sweep(dry_run=dry)
        return [f"janitor: {line}" for line in swept.removed + swept.realms + swept.failed]

    def relay(dry: bool) -> tuple[int, list[str]]:
        from ccci_core.relay import AgentAlerts, build_targets, preview
        from ccci_core.relay import relay as deliver

        targets = build_targets(settings)
        if not targets:
            return 0, ["relay: no target configured; alerts stay active (cc-ci alerts)"]
        lines: list[str] = []
        source = AgentAlerts(agent.client)
        code = (preview if dry else deliver)(
            source, targets, host=socket.gethostname(), out=lines.append
        )
        return code, lines

    return Sweep(
        agent=agent,
        enrolled=lambda: enrolled(settings),
        reconcile=reconcile,
        run_recipe=lambda recipe: run_recipe(settings, recipe, sys.stderr if quiet else sys.stdout),
        janitor=janitor,
        relay=relay,
        say=say,
        yield_s=settings.sweep_yield_s,
    ).run(dry_run=dry_run)
