"""The build records and how a finished build becomes an outcome (no HTTP here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccci_bridge.dedupe import Store
from ccci_bridge.drone import BuildInfo, StepInfo
from ccci_bridge.errors import DroneError
from ccci_bridge.records import CLAIM_S, MAX_ATTEMPTS, BuildRecord, Outcome, Records, backoff
from ccci_bridge.verdicts import duration, outcome_of
from ccci_core.run_result import RunResult

CLONE = StepInfo(1, 1, "clone", "success", 0)


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        """Return the time now."""
        return self.now


def _build(status: str, *steps: StepInfo, error: str = "") -> BuildInfo:
    return BuildInfo(7, status, 100, 160, error, (CLONE, *steps))


@pytest.mark.parametrize(
    ("status", "error", "verdict", "detail"),
    [
        ("success", "", "pass", ""),
        ("killed", "", "error", "the build was cancelled"),
        ("error", "yaml: line 3:\n bad", "error", "yaml: line 3: bad"),
        ("declined", "", "error", "Drone says the build is declined"),
        ("skipped", "", "error", "Drone says the build is skipped"),
    ],
)
def test_drones_status_decides_the_verdict(
    status: str, error: str, verdict: str, detail: str
) -> None:
    """Only success passes and only failure fails; anything else finished is an error."""
    outcome = outcome_of(_build(status, error=error), lambda step: [])
    assert (verdict, detail, 60) == (outcome.verdict, outcome.detail, outcome.seconds)


def test_the_runs_line_is_read_from_the_failed_step_first() -> None:
    """The failed step's log holds the result; a log that cannot be read is skipped."""
    failed = StepInfo(1, 3, "test", "failure", 1)
    build = _build("failure", StepInfo(1, 2, "notify", "success", 0), failed)
    line = RunResult(verdict="fail", lane="cold", step="install", detail="exit 3").line()
    read: list[str] = []

    def read_log(step: StepInfo) -> list[str]:
        read.append(step.name)
        if step.name == "test":
            raise DroneError("log gone")
        return [line]

    outcome = outcome_of(build, read_log)

    assert ["test", "notify"] == read  # failed first, clone never
    assert ("fail", "install", "exit 3") == (outcome.verdict, outcome.step, outcome.detail)


def test_a_pass_keeps_no_failure_detail_even_if_the_run_said_one() -> None:
    """Drone's success is the verdict; the run's line still tells the canonical's fate."""
    line = RunResult(verdict="fail", lane="cold", step="x", detail="y", canonical="promoted")
    outcome = outcome_of(
        _build("success", StepInfo(1, 2, "test", "success", 0)), lambda s: [line.line()]
    )
    assert ("pass", "", "", "promoted") == (
        outcome.verdict,
        outcome.step,
        outcome.detail,
        outcome.canonical,
    )


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0 s"), (59, "59 s"), (252, "4 min 12 s"), (7322, "2 h 2 min")]
)
def test_duration(seconds: int, text: str) -> None:
    """Durations read as people say them."""
    assert text == duration(seconds)


def test_a_claim_left_by_a_dead_worker_is_taken_again_after_claim_s(tmp_path: Path) -> None:
    """A claimed delivery not finished in CLAIM_S is free again; the first outcome stays."""
    clock = Clock()
    records = Records(Store(tmp_path, clock))
    records.add(BuildRecord(7, clock.now, "app", "cold", "gitea:a", "https://d/7"))
    first, second = Outcome("fail", "failure"), Outcome("pass", "success")

    dead = records.claim(7, first)
    assert dead is not None
    assert records.claim(7, second) is None
    clock.now += CLAIM_S + 1
    again = records.claim(7, second)
    assert again is not None
    assert (first, "fail") == (again.outcome, again.verdict)
    # The dead worker's token no longer ends or releases anything; the live one's does.
    assert not records.delivered(dead)
    assert 0 == records.release(dead)
    assert records.claim(7, second) is None
    assert records.delivered(again)
    clock.now += CLAIM_S + 1
    assert records.claim(7, second) is None
    assert [] == records.undelivered()


def test_a_released_delivery_waits_a_doubling_backoff(tmp_path: Path) -> None:
    """1, 2, 4 … minutes between tries, at most an hour; MAX_ATTEMPTS span about 15 hours."""
    clock = Clock()
    records = Records(Store(tmp_path, clock))
    records.add(BuildRecord(7, clock.now, "app", "cold", "gitea:a", "https://d/7"))
    waits = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        claimed = records.claim(7, Outcome("pass", "success"))
        assert claimed is not None
        assert attempt == records.release(claimed)
        assert [] == records.undelivered()  # not due yet
        waits.append(backoff(attempt))
        clock.now += backoff(attempt)
        assert ([7] if attempt < MAX_ATTEMPTS else []) == [r.number for r in records.undelivered()]
    assert [60, 120, 240, 480, 960, 1920, 3600] == waits[:7]
    assert 12 * 3600 < sum(waits) < 18 * 3600


def test_announce_keeps_a_reply_the_verdict_already_posted(tmp_path: Path) -> None:
    """A "started" reply slower than the grace does not take the verdict comment's place."""
    records = Records(Store(tmp_path))
    records.add(BuildRecord(7, 1.0, "app", "cold", "gitea:a", "https://d/7", comment_id=3))
    records.note_reply(7, 900)
    records.announce(7, 800, "44")
    got = records.get(7)
    assert got is not None
    assert (True, 900, "44") == (got.announced, got.reply_id, got.reaction_id)
