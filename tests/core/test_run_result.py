"""The ``ccci-result`` line: what the plugin prints last and the bridge reads back."""

from __future__ import annotations

import pytest

from ccci_core.run_result import MARKER, RunResult, find_result, parse_line

FAILED = RunResult(
    verdict="fail",
    lane="quick",
    recipe="keycloak",
    canonical="restored to known-good",
    step="upgrade",
    detail="app not ready: exit 127 — «ünïcode»",
)


def test_a_result_round_trips_through_its_line() -> None:
    """Every field survives, unicode included; unset fields are left out of the line."""
    assert FAILED == parse_line(FAILED.line())
    passed = RunResult(verdict="pass", lane="cold")
    assert f'{MARKER}{{"verdict":"pass","lane":"cold"}}' == passed.line()


def test_only_the_logs_last_line_speaks_for_the_run() -> None:
    """A recipe test printing a result line earlier in the log is not believed."""
    forged = RunResult(verdict="pass", lane="cold").line()
    assert find_result([forged, "FAIL tests (1.0s) — 2 failed", "verdict   FAIL"]) is None
    assert FAILED == find_result([forged, "verdict   FAIL\n", FAILED.line() + "\n", "\n"])
    assert find_result([]) is None


@pytest.mark.parametrize(
    "line",
    [
        "ccci-result",
        "ccci-result {",
        "ccci-result []",
        'ccci-result {"verdict":"maybe","lane":"cold"}',
        'ccci-result {"verdict":"pass"}',
        'ccci-result {"verdict":"pass","lane":7}',
        "ccci-result " + "[" * 100_000,
        'xccci-result {"verdict":"pass","lane":"cold"}',
    ],
)
def test_a_malformed_line_is_no_result(line: str) -> None:
    """Whatever the log holds, parsing answers None instead of raising."""
    assert parse_line(line) is None


def test_fields_are_folded_to_one_short_line() -> None:
    """A detail with newlines or of any length reaches the reply as one bounded line."""
    line = MARKER + '{"verdict":"fail","lane":"cold","detail":"a\\n  b' + "x" * 1000 + '"}'
    told = parse_line(line)
    assert told is not None
    assert told.detail.startswith("a b")
    assert 300 == len(told.detail)
