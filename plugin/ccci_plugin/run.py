"""Perform one run: pin the target, hold a lease, run the lane, promote, report.

Exit codes: 0 pass, 1 fail (a step failed, the run was cancelled, no lease), 2 bad input (the
recipe or ref does not resolve, the recipe's metadata is invalid). The log gets a line per step as
it happens and a summary table at the end; the JSON result goes to ``CCCI_RESULT_FILE`` when set.
"""

from __future__ import annotations

import json
import shutil
from contextlib import ExitStack
from pathlib import Path

from ccci_core.atomic import write_text
from ccci_core.errors import CcciError

from .cold import cold_lane
from .context import Run
from .lease import held_lease
from .promote import promote, should_promote


def perform(run: Run, *, lease_wait: float, result_file: Path | None = None) -> int:
    """Run ``run`` to its end and return its exit code."""
    report, request = run.report, run.request
    build = f", build {request.build_number}" if request.build_number else ""
    report.say(
        f"cc-ci: {request.lane} lane, recipe {request.recipe}, ref {request.ref or 'latest'}{build}"
    )
    if request.build_link:
        report.say(f"build: {request.build_link}")
    code = 1
    try:
        target = run.resolve()
        with ExitStack() as held:
            with report.step("lease") as step:
                lease = held.enter_context(
                    held_lease(run.agent, run.recipe, "cold", None, wait=lease_wait, say=report.say)
                )
                step.detail = f"lease {lease}"
            cold_lane(run, target)
            reason = should_promote(run, target)
            if reason is None:
                promote(run, target)
            else:
                report.canonical = f"untouched ({reason})"
    except CcciError as exc:
        # Bad input (a recipe or ref that does not resolve, invalid metadata) and an unreachable
        # agent exit 2; anything else has already failed its step.
        code = exc.exit_code
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
            write_text(result_file, json.dumps(result, indent=2) + "\n")
    return code
