"""Perform one run: choose what to run, execute it holding a lease (and realm), finish the report.

    perform      refuse a result file in no folder, then choose → hold → execute → finish
    choose       the lane (a quick request falls back to cold, saying why), the pinned target,
                 the realm's name, whether the lease locks the canonical: a :class:`Plan`
    hold_lease   the "lease" step; the lease is held until the run ends
    hold_realm   the "realm" step, for a recipe that depends on keycloak; deleted at the end
    execute      the lane's steps; after a cold run, promote or say why not
    finish       remove the run dir, settle the exit code, print the summary, write the result

Exit codes: 0 pass, 1 fail (a step failed, the run was cancelled or stopped, no lease, the agent
failed once the lease was held), 2 bad input (the recipe or ref does not resolve, the recipe's
metadata is invalid, the agent refused or was not reachable before the lease was held). The log
gets a line per step as it happens and a summary table at the end; the JSON result goes to
``CCCI_RESULT_FILE`` when set.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from ccci_core.agent_client import AgentClientError
from ccci_core.atomic import write_text
from ccci_core.errors import CcciError, ConfigError
from ccci_core.lanes import RunLane
from ccci_core.names import realm_name

from .agent import Lease
from .cold import cold_lane
from .context import Run, Target
from .keycloak import Realms, run_realm
from .lease import held_lease
from .promote import promote, should_promote
from .quick import canonical_of, quick_lane
from .report import RunReport


@dataclass(frozen=True)
class Plan:
    """What a run will do, decided before it holds anything."""

    lane: RunLane
    fallback: str | None  # why a quick request runs the cold lane
    target: Target
    realm: str | None  # the run's Keycloak realm, when the recipe depends on keycloak
    locks_canonical: bool  # the lease also locks the canonical: quick, or a promote may follow


def perform(
    run: Run,
    *,
    lease_wait: float,
    result_file: Path | None = None,
    realms: Realms | None = None,
) -> int:
    """Run ``run`` to its end and return its exit code."""
    if result_file is not None and not result_file.parent.is_dir():
        raise ConfigError("CCCI_RESULT_FILE", f"{result_file.parent} is not a directory")
    code = 1
    started = False  # once the lease is held, the run is under way: failures are red, not 2
    try:
        plan = choose(run)
        with hold_lease(run, plan, wait=lease_wait):
            started = True
            with hold_realm(run, plan, realms):
                execute(run, plan)
    except CcciError as exc:
        code = stop_code(exc, started=started)
        run.report.stop(str(exc))
    finally:
        code = finish(run, code, result_file)
    return code


def unattachable(run: Run) -> str | None:
    """Return why a quick run cannot attach the recipe's canonical, or None when it can."""
    record = run.agent.canonical(run.recipe)
    if record is None or not record.get("snapshot"):
        return f"no canonical of {run.recipe}"
    if not run.apps.deployer.exists(canonical_of(record, run.recipe)):
        return f"the canonical app {record['domain']} has no env on this host"
    return None


def choose(run: Run) -> Plan:
    """Pick the lane and pin the target, saying both in the log; return the plan.

    A ref or recipe that does not resolve raises BadInput (exit 2): nothing is held yet.
    """
    report, request = run.report, run.request
    fallback = unattachable(run) if request.quick else None
    lane: RunLane = "quick" if request.quick and fallback is None else "cold"
    report.lane, report.fallback = lane, fallback
    build = f", build {request.build_number}" if request.build_number else ""
    where = f"recipe {request.recipe}, ref {request.ref or 'latest'}{build}"
    if fallback is not None:
        report.say(
            f"cc-ci: quick lane → full cold run ({fallback}; the PR is still tested), {where}"
        )
    else:
        report.say(f"cc-ci: {lane} lane, {where}")
    if request.build_link:
        report.say(f"build: {request.build_link}")
    target = run.resolve()
    report.commit = target.commit
    pinned = " (pinned by CCCI_SHA)" if request.sha else ""
    report.say(f"commit: {target.commit}{pinned}")
    keycloak = "keycloak" in run.apps.meta["DEPS"]
    return Plan(
        lane=lane,
        fallback=fallback,
        target=target,
        realm=realm_name(run.recipe, run.run_hex) if keycloak else None,
        locks_canonical=lane == "quick" or should_promote(run, target, lane) is None,
    )


@contextmanager
def hold_lease(run: Run, plan: Plan, *, wait: float) -> Iterator[Lease]:
    """Take the run's lease as the "lease" step; hold it until the block ends."""
    with ExitStack() as held:
        with run.report.step("lease") as step:
            lease = held.enter_context(
                held_lease(
                    run.agent,
                    run.recipe,
                    plan.lane,
                    plan.realm,
                    canonical=plan.locks_canonical,
                    wait=wait,
                    say=run.report.say,
                    run_hex=run.run_hex,
                )
            )
            locked = " (canonical locked)" if plan.locks_canonical else ""
            step.detail = f"lease {lease.id}{locked}"
        yield lease


@contextmanager
def hold_realm(run: Run, plan: Plan, realms: Realms | None) -> Iterator[None]:
    """Create the run's realm as the "realm" step when the plan has one; delete it at the end."""
    if plan.realm is None:
        yield
        return
    with ExitStack() as held:
        with run.report.step("realm") as step:
            if realms is None:
                raise ConfigError("CCCI_KEYCLOAK_URL", "the recipe depends on keycloak")
            run.realm = held.enter_context(run_realm(realms, run.recipe, run.run_hex))
            step.detail = f"realm {run.realm} (deleted at the end of the run)"
        yield


def execute(run: Run, plan: Plan) -> None:
    """Run the plan's lane; after a cold run, promote the canonical or say why not."""
    if plan.lane == "quick":
        quick_lane(run, plan.target)
        return
    cold_lane(run, plan.target)
    reason = should_promote(run, plan.target, plan.lane)
    if reason is None:
        promote(run, plan.target)
    else:
        run.report.canonical = f"untouched ({reason})"


def stop_code(exc: CcciError, *, started: bool) -> int:
    """Return the exit code of a run that ``exc`` stopped.

    Bad input (a recipe or ref that does not resolve, invalid metadata) and an agent that refuses
    or is not reachable exit 2 before the run starts; once it is under way the agent failing (a 409
    at promote, the agent restarting) makes it red like any other failure: exit 1.
    """
    return 1 if started and isinstance(exc, AgentClientError) else exc.exit_code


def finish(run: Run, code: int, result_file: Path | None) -> int:
    """End the run: remove its dir, settle the exit code, print the summary, write the result.

    The log's last line is the ``ccci-result`` line (:mod:`ccci_core.run_result`).

    An exit 2 (refused) stands; otherwise the report decides: 0 when it passed, else 1.
    """
    shutil.rmtree(run.run_dir, ignore_errors=True)
    report = run.report
    if code != 2:
        code = 0 if report.passed else 1
    report.say("")
    report.say(report.summary() if code != 2 else f"error: {report.notes[-1]}")
    if result_file is not None:
        write_result(report, code, result_file)
    report.say(report.result(code).line())  # the log's last line: the bridge reads it back
    return code


def write_result(report: RunReport, code: int, result_file: Path) -> None:
    """Write the JSON result; a failure to write is a warning (the verdict stands)."""
    result = report.to_dict() | {"exit": code}
    if code == 2:
        result["verdict"] = "error"
    try:
        write_text(result_file, json.dumps(result, indent=2) + "\n")
    except OSError as exc:  # the verdict stands; only its copy is lost
        report.say(f"warning: cannot write CCCI_RESULT_FILE {result_file}: {exc}")
