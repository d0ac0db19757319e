"""The prune's decisions without the engine: gates, plan, order, failures, on the in-memory fake."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ccci_agent.prune import AgentRuns, Blind, Pruner, RunsPort, plan
from ccci_agent.settings import PruneSettings
from ccci_core.agent_client import AgentClientError, AgentUnreachable
from ccci_core.docker_engine import DockerPrune, Reclaimable
from ccci_core.errors import ConfigError
from ccci_core.settings import load
from tests.fake_docker import FakeDocker

NOW = datetime.now(UTC)
OLD, FRESH = NOW - timedelta(hours=25), NOW - timedelta(hours=23)


@dataclass
class Runs:
    """The agent's answers in turn (the last one repeats): a list of live leases each."""

    answers: list[list[str]] = field(default_factory=lambda: [[]])
    asked: int = 0

    def live_leases(self) -> list[str]:
        """Return the next answer."""
        self.asked += 1
        return self.answers[min(self.asked, len(self.answers)) - 1]


def disk(percent: float) -> Callable[[str], tuple[int, int, int]]:
    """A disk_usage of / used ``percent`` of used + available; its size counts a reserve besides,
    as a root reserve or a thin disk does, which the percentage leaves out as ``df`` does."""
    used = round(percent * 10)
    return lambda path: (2000, used, 1000 - used)


def item(
    ident: str, created: datetime, size: int = 100, used_by: tuple[str, ...] = ()
) -> Reclaimable:
    """A stopped container, a dangling image or a build cache record."""
    return Reclaimable(ident, f"name-{ident}", created, size, used_by)


@pytest.fixture
def fake() -> FakeDocker:
    """Old and fresh things of each kind; the old image is used only by the old container."""
    fake = FakeDocker()
    fake.stopped = {"c-old": item("c-old", OLD, 10), "c-fresh": item("c-fresh", FRESH, 20)}
    fake.dangling = {
        "sha256:old": item("sha256:old", OLD, 1000),
        "sha256:old-used-by-old": item("sha256:old-used-by-old", OLD, 2000, ("c-old",)),
        "sha256:old-used-by-fresh": item("sha256:old-used-by-fresh", OLD, 4000, ("c-fresh",)),
        "sha256:fresh": item("sha256:fresh", FRESH, 8000),
    }
    fake.build_cache = {"b-old": item("b-old", OLD, 300), "b-fresh": item("b-fresh", FRESH, 600)}
    return fake


def pruner(
    fake: FakeDocker | None, runs: RunsPort, percent: float, said: list[str], threshold: int = 80
) -> Pruner:
    """A pruner on ``fake`` (None: building the engine fails the test)."""

    def engine() -> DockerPrune:
        if fake is None:
            pytest.fail("the engine was asked for although a gate should have stopped the prune")
        return fake

    return Pruner(runs, engine, threshold, disk_usage=disk(percent), say=said.append)


@pytest.mark.parametrize(("percent", "threshold"), [(79.9, 80), (0.0, 1), (99.9, 100)])
def test_below_the_threshold_nothing_is_asked(percent: float, threshold: int) -> None:
    """Below the threshold neither the agent nor the engine is asked, and the line says why."""
    runs, said = Runs(), list[str]()
    result = pruner(None, runs, percent, said, threshold).run()

    assert ("below threshold", 0, 0) == (result.outcome, result.exit_code, runs.asked)
    assert [
        f"nothing to do: / is {percent}% used, below the threshold of {threshold}% "
        "(CCCI_PRUNE_THRESHOLD)"
    ] == said


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_run_in_flight_stops_it_before_the_engine(dry_run: bool) -> None:
    """With a lease live nothing touches the engine, dry run or not; exit 0 with the lease named."""
    said: list[str] = []
    result = pruner(None, Runs([["lease ab12: gitea cold"]]), 95.0, said).run(dry_run=dry_run)

    assert ("in flight", 0) == (result.outcome, result.exit_code)
    assert ["nothing to do: a run is in flight (lease ab12: gitea cold); / is 95.0% used"] == said


def test_at_the_threshold_it_prunes_in_order_and_only_the_old(fake: FakeDocker) -> None:
    """At the threshold: containers, then images, then build cache, each only what is old enough;
    an old image goes once its only user (an old container) went, not while a fresh one uses it."""
    said: list[str] = []
    result = pruner(fake, Runs(), 80.0, said).run()

    assert ["prune containers", "prune images", "prune build cache"] == fake.calls
    assert (
        {"c-fresh"},
        {"sha256:old-used-by-fresh", "sha256:fresh"},
        {"b-fresh"},
    ) == (set(fake.stopped), set(fake.dangling), set(fake.build_cache))
    assert ("pruned", 0, 10 + 1000 + 2000 + 300) == (
        result.outcome,
        result.exit_code,
        result.freed,
    )
    assert "dangling images: 2 removed, 3.0 kB freed" in said
    assert f"  old  name-sha256:old  created {OLD:%Y-%m-%d %H:%M} UTC  1.0 kB" in said


def test_a_dry_run_lists_what_would_go_and_removes_nothing(fake: FakeDocker) -> None:
    """The dry run lists the old container and the images a prune would take, and prunes none."""
    said: list[str] = []
    result = pruner(fake, Runs(), 90.0, said).run(dry_run=True)

    assert ("dry run", 0, []) == (result.outcome, result.exit_code, fake.calls)
    assert (["c-old"], ["sha256:old", "sha256:old-used-by-old"]) == (
        [c.id for c in result.plan.containers],
        sorted(i.id for i in result.plan.images),
    )
    assert said[0].startswith("dry run: / is 90.0% used (threshold 80%) and no run is in flight")
    assert "stopped containers created over 24 h ago: 1, 10 B" in said
    assert "nothing removed (dry run)" == said[-1]
    assert not any("fresh" in line for line in said)


def test_a_failed_removal_is_exit_1_and_the_others_still_run(fake: FakeDocker) -> None:
    """The image prune failing does not stop the build cache's; the run exits 1 naming it."""
    fake.failing = {"images"}
    said: list[str] = []
    result = pruner(fake, Runs(), 95.0, said).run()

    assert ["prune containers", "prune images", "prune build cache"] == fake.calls
    assert (1, ["dangling images"]) == (result.exit_code, list(result.failed))
    assert "b-old" not in fake.build_cache
    assert "dangling images: FAILED: docker: pruning images failed: a prune is already running" in (
        said
    )


def test_a_run_that_starts_meanwhile_stops_the_rest(fake: FakeDocker) -> None:
    """The agent is asked before each removal: a lease granted after the first stops the prune."""
    said: list[str] = []
    runs = Runs([[], ["lease cd34: web quick"]])
    result = pruner(fake, runs, 95.0, said).run()

    assert (["prune containers"], "in flight", 0) == (fake.calls, result.outcome, result.exit_code)
    assert "stopped before the dangling images: a run started (lease cd34: web quick)" in said


def test_an_agent_lost_midway_stops_the_prune_with_exit_2(fake: FakeDocker) -> None:
    """The agent gone before the second removal: what went is said, then exit 2, no more."""

    @dataclass
    class Lost:
        """Answers once, then is gone."""

        asked: int = 0

        def live_leases(self) -> list[str]:
            self.asked += 1
            if self.asked > 1:
                raise Blind("cannot tell whether a run is in flight: the agent is gone")
            return []

    said: list[str] = []
    with pytest.raises(Blind, match=r"^stopped before the dangling images: cannot tell") as caught:
        pruner(fake, Lost(), 95.0, said).run()

    assert (2, ["prune containers"]) == (caught.value.exit_code, fake.calls)
    assert ["stopped containers: 1 removed, 10 B freed"] == [s for s in said if "removed" in s]
    assert said[-1].startswith("freed 10 B")


def test_an_unreadable_disk_prunes_nothing() -> None:
    """A disk that cannot be read is exit 2 before anything is asked."""

    def broken(path: str) -> tuple[int, int, int]:
        raise OSError(5, "Input/output error")

    runs = Runs()
    with pytest.raises(Blind, match="cannot tell how full / is") as caught:
        Pruner(runs, lambda: pytest.fail("engine asked"), 80, disk_usage=broken).run()
    assert (2, 0) == (caught.value.exit_code, runs.asked)


def test_the_plan_keeps_an_image_a_staying_container_uses() -> None:
    """An image is planned only when every container using it is planned too."""
    containers = [item("a", OLD), item("b", FRESH)]
    images = [item("i1", OLD, used_by=("a",)), item("i2", OLD, used_by=("a", "b"))]

    found = plan(containers, images, NOW)

    assert (["a"], ["i1"]) == ([c.id for c in found.containers], [i.id for i in found.images])


@dataclass
class Client:
    """An agent client answering GET /v1/leases with ``answer`` (or raising it)."""

    answer: Any

    def get(self, path: str) -> Any:
        """Answer or raise."""
        assert "/v1/leases" == path
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"in_flight": False, "max_tests": 1, "leases": []}, []),
        (
            {"in_flight": True, "leases": [{"id": "ab12", "recipe": "gitea", "lane": "cold"}]},
            ["lease ab12: gitea cold"],
        ),
        ({"in_flight": True, "leases": "odd"}, ["a lease"]),
    ],
)
def test_the_agent_port_reads_in_flight(answer: Any, expected: list[str]) -> None:
    """in_flight decides; the leases only describe."""
    assert expected == AgentRuns(Client(answer)).live_leases()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "answer",
    [
        AgentUnreachable(Path("/run/x.sock"), "No such file or directory"),
        AgentClientError(500, "internal error (incident 1)"),
        {"max_tests": 1, "leases": []},
        {"in_flight": "false"},
        ["in_flight"],
    ],
)
def test_an_agent_that_cannot_say_is_exit_2(answer: Any) -> None:
    """Unreachable, failing or answering without an in_flight flag: nothing is pruned, exit 2."""
    with pytest.raises(Blind, match="cannot tell whether a run is in flight") as caught:
        AgentRuns(Client(answer)).live_leases()  # type: ignore[arg-type]
    assert 2 == caught.value.exit_code


@pytest.mark.parametrize(
    ("value", "ok"), [("0", True), ("100", True), ("-1", False), ("101", False)]
)
def test_the_threshold_is_a_percentage(
    monkeypatch: pytest.MonkeyPatch, value: str, ok: bool
) -> None:
    """CCCI_PRUNE_THRESHOLD defaults to 80 and takes 0 to 100; anything else names the variable."""
    monkeypatch.delenv("CCCI_PRUNE_THRESHOLD", raising=False)
    assert 80 == load(PruneSettings).prune_threshold
    monkeypatch.setenv("CCCI_PRUNE_THRESHOLD", value)
    if ok:
        assert int(value) == load(PruneSettings).prune_threshold
        return
    with pytest.raises(ConfigError, match=r"^CCCI_PRUNE_THRESHOLD: "):
        load(PruneSettings)
