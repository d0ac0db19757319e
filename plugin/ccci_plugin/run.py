"""Perform one run: pin the target, pick the lane, hold a lease (and realm), run, promote, report.

Exit codes: 0 pass, 1 fail (a step failed, the run was cancelled or stopped, no lease), 2 bad
input (the recipe or ref does not resolve, the recipe's metadata is invalid, the agent is not
reachable). The log gets a line per step as it happens and a summary table at the end; the JSON
result goes to ``CCCI_RESULT_FILE`` when set.
"""

from __future__ import annotations

import json
import shutil
from contextlib import ExitStack
from pathlib import Path

from ccci_core.agent_client import AgentClientError
from ccci_core.atomic import write_text
from ccci_core.errors import CcciError, ConfigError
from ccci_core.names import realm_name

from .agent import Lane
from .cold import cold_lane
from .context import Run
from .keycloak import Realms, run_realm
from .lease import held_lease
from .promote import promote, should_promote
from .quick import canonical_of, quick_lane


def _unattachable(run: Run) -> str:
    """Return why a quick run cannot attach the recipe's canonical ("" when it can)."""
    record = run.agent.canonical(run.recipe)
    if record is None or not record.get("snapshot"):
        return f"no canonical of {run.recipe}"
    if not run.apps.deployer.exists(canonical_of(record, run.recipe)):
        return f"the canonical app {record['domain']} has no env on this host"
    return ""


def perform(
    run: Run,
    *,
    lease_wait: float,
    result_file: Path | None = None,
    realms: Realms | None = None,
) -> int:
    """Run ``run`` to its end and return its exit code."""
    report, request = run.report, run.request
    if result_file is not None and not result_file.parent.is_dir():
        raise ConfigError("CCCI_RESULT_FILE", f"{result_file.parent} is not a directory")
    code = 1
    started = False  # once the lease is held, the run is under way: failures are red, not 2
    try:
        lane: Lane = "cold"
        why = ""
        if request.quick:
            why = _unattachable(run)
            lane = "quick" if not why else "cold"
        report.lane, report.fallback = lane, why or None
        build = f", build {request.build_number}" if request.build_number else ""
        where = f"recipe {request.recipe}, ref {request.ref or 'latest'}{build}"
        if request.quick and lane == "cold":
            report.say(
                f"cc-ci: quick lane → full cold run ({why}; the PR is still tested), {where}"
            )
        else:
            report.say(f"cc-ci: {lane} lane, {where}")
        if request.build_link:
            report.say(f"build: {request.build_link}")
        target = run.resolve()
        report.commit = target.commit
        pinned = " (pinned by CCCI_SHA)" if request.sha else ""
        report.say(f"commit: {target.commit}{pinned}")
        deps_keycloak = "keycloak" in run.apps.meta["DEPS"]
        realm = realm_name(run.recipe, run.run_hex) if deps_keycloak else None
        locks_canonical = lane == "quick" or should_promote(run, target, lane) is None
        with ExitStack() as held:
            with report.step("lease") as step:
                lease = held.enter_context(
                    held_lease(
                        run.agent,
                        run.recipe,
                        lane,
                        realm,
                        canonical=locks_canonical,
                        wait=lease_wait,
                        say=report.say,
                    )
                )
                step.detail = f"lease {lease.id}" + (
                    " (canonical locked)" if locks_canonical else ""
                )
            started = True
            if deps_keycloak:
                with report.step("realm") as step:
                    if realms is None:
                        raise ConfigError("CCCI_KEYCLOAK_URL", "the recipe depends on keycloak")
                    run.realm = held.enter_context(run_realm(realms, run.recipe, run.run_hex))
                    step.detail = f"realm {run.realm} (deleted at the end of the run)"
            if lane == "quick":
                quick_lane(run, target)
            else:
                cold_lane(run, target)
                reason = should_promote(run, target, lane)
                if reason is None:
                    promote(run, target)
                else:
                    report.canonical = f"untouched ({reason})"
    except CcciError as exc:
        # Bad input (a recipe or ref that does not resolve, invalid metadata) and an unreachable
        # agent exit 2 before the run starts; once it is under way the agent failing (a 409 at
        # promote, the agent restarting) makes it red like any other failure: exit 1.
        agent_failed = isinstance(exc, AgentClientError)
        code = 1 if started and agent_failed else exc.exit_code
        report.stop(str(exc))
    finally:
        shutil.rmtree(run.run_dir, ignore_errors=True)
        if code != 2:
            code = 0 if report.passed else 1
        report.say("")
        report.say(report.summary() if code != 2 else f"error: {report.notes[-1]}")
        if result_file is not None:
            result = report.to_dict() | {"exit": code}
            if code == 2:
                result["verdict"] = "error"
            try:
                write_text(result_file, json.dumps(result, indent=2) + "\n")
            except OSError as exc:  # the verdict stands; only its copy is lost
                report.say(f"warning: cannot write CCCI_RESULT_FILE {result_file}: {exc}")
    return code
