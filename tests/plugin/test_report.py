"""The run log: a line per step as it happens, a summary table, a JSON result."""

from __future__ import annotations

import io
import itertools

import pytest

from ccci_core.run_result import RunResult, parse_line
from ccci_plugin.report import RunReport, Verdict
from ccci_plugin.request import RunRequest


@pytest.fixture
def report() -> RunReport:
    """A report whose clock advances 1.5 s per reading."""
    ticks = itertools.count(step=1.5)
    return RunReport(
        RunRequest("app", "refs/pull/3/head", pr=3), io.StringIO(), clock=lambda: next(ticks)
    )


def log(report: RunReport) -> list[str]:
    """Return the lines printed so far."""
    out = report.out
    assert isinstance(out, io.StringIO)
    return out.getvalue().splitlines()


def test_steps_print_start_and_verdict_with_duration(report: RunReport) -> None:
    """A passing, a skipped and a failing step each print two lines."""
    with report.step("install"):
        pass
    with report.step("upgrade") as step:
        step.skip("no release older than the target")
    with pytest.raises(RuntimeError), report.step("tests"):
        raise RuntimeError("2 recipe tests failed")
    expected = [
        "--- install",
        "PASS install (1.5s)",
        "--- upgrade",
        "SKIP upgrade (1.5s) — no release older than the target",
        "--- tests",
        "FAIL tests (1.5s) — 2 recipe tests failed",
    ]
    assert expected == log(report)
    assert not report.passed


def test_summary_and_result(report: RunReport) -> None:
    """The summary and the JSON result carry lane, recipe, versions, steps and the canonical."""
    with report.step("install"):
        report.versions["target"] = "1.1.0+1.1"
    report.canonical = "untouched (a run with a REF never promotes)"
    summary = report.summary().splitlines()
    assert [
        "lane      cold",
        "recipe    app",
        "ref       refs/pull/3/head",
        "target    1.1.0+1.1",
        "canonical untouched (a run with a REF never promotes)",
        "steps:",
        "  install  PASS      1.5s",
        "verdict   PASS",
    ] == summary
    result = report.to_dict()
    assert (
        "pass",
        "cold",
        3,
        [{"name": "install", "status": "pass", "seconds": 1.5, "detail": ""}],
    ) == (
        result["verdict"],
        result["lane"],
        result["pr"],
        result["steps"],
    )


def test_a_failed_mark_fails_the_run_without_raising(report: RunReport) -> None:
    """Step.fail records a failure the run continues past (teardown still happens)."""
    with report.step("health") as step:
        step.fail("app never became healthy")
    assert (Verdict.FAIL, False) == (report.steps[0].verdict, report.passed)


def test_a_stop_outside_any_step_makes_the_run_red(report: RunReport) -> None:
    """An error no step caught (a cancel between steps, git before the first) is a red verdict."""
    with report.step("install"):
        pass
    report.stop("cancelled by SIGTERM")
    result = report.to_dict()
    assert (False, "fail", "cancelled by SIGTERM") == (
        report.passed,
        result["verdict"],
        result["stopped"],
    )
    summary = report.summary().splitlines()
    assert ["stopped: cancelled by SIGTERM", "verdict   FAIL"] == summary[-2:]


def test_the_result_line_names_the_first_failing_step_on_one_line(report: RunReport) -> None:
    """The bridge's line: the first failure's step and detail, newlines folded, the lane run."""
    with report.step("install"):
        pass
    with report.step("upgrade") as step:
        step.fail("app not ready:\n  exit 127")
    with report.step("teardown") as step:
        step.fail("a later failure")
    report.canonical = "restored to known-good"

    told = parse_line(report.result(1).line())

    assert (
        RunResult(
            verdict="fail",
            lane="cold",
            recipe="app",
            canonical="restored to known-good",
            step="upgrade",
            detail="app not ready: exit 127",
        )
        == told
    )


@pytest.mark.parametrize(("code", "verdict"), [(0, "pass"), (2, "error")])
def test_the_result_line_of_a_pass_and_of_a_refusal(
    report: RunReport, code: int, verdict: str
) -> None:
    """Exit 2 is an error whatever the steps said; a pass names no step."""
    with report.step("install"):
        pass
    told = parse_line(report.result(code).line())
    assert told is not None
    assert (verdict, None, "") == (told.verdict, told.step, told.detail)
