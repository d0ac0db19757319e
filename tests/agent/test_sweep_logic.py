"""The nightly sweep's orchestration on fakes: what runs, in what order, what stops it.

The real sweep on the real engine (a cold run that promotes) is ``test_sweep.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from ccci_agent.sweep import RecipeResult, Sweep
from ccci_agent.sweep_cli import summary_lines
from ccci_core.errors import CcciError


@dataclass
class FakeAgent:
    """The agent: live leases (changed by the test as runs go), and what the sweep posted."""

    log: list[str]
    live: list[dict[str, Any]] = field(default_factory=list)
    recorded: list[dict[str, Any]] = field(default_factory=list)
    prune_fails: bool = False

    def leases(self) -> list[dict[str, Any]]:
        return list(self.live)

    def prune_stale(self, enrolled: Sequence[str]) -> dict[str, Any]:
        self.log.append(f"prune-stale {list(enrolled)}")
        if self.prune_fails:
            raise CcciError("agent: 500")
        return {"pruned": ["gone-recipe"], "refused": []}

    def record(self, summary: dict[str, Any]) -> None:
        self.log.append("record")
        self.recorded.append(summary)

    def disk(self) -> dict[str, Any]:
        return {"/": {"path": "/", "percent": 42.0}}


def make(
    recipes: list[str], results: dict[str, str], **agent: Any
) -> tuple[Sweep, FakeAgent, list[str]]:
    """A sweep over fakes; ``results`` says how each recipe's run ends (default pass)."""
    log: list[str] = []
    fake = FakeAgent(log, **agent)

    def reconcile(app: str) -> str:
        log.append(f"reconcile {app}")
        if app == "keycloak":
            raise CcciError("no recipe repository 'keycloak' in /recipes")
        return f"{app}: no-op"

    def run_recipe(recipe: str) -> RecipeResult:
        log.append(f"run {recipe}")
        result = results.get(recipe, "pass")
        if result == "person":  # a person's run takes a lease while this one runs
            fake.live.append({"id": "L1", "recipe": "other", "lane": "cold"})
            result = "pass"
        return RecipeResult(recipe, result, 1.0, promoted=result == "pass")

    sweep = Sweep(
        agent=fake,
        enrolled=lambda: list(recipes),
        reconcile=reconcile,
        run_recipe=run_recipe,
        janitor=lambda dry: log.append(f"janitor dry={dry}") or ["janitor: removed stack x"],  # type: ignore[func-returns-value]
        say=lambda line: None,
        sleep=lambda s: log.append(f"yield {s:g}s"),
        yield_s=6,
    )
    return sweep, fake, log


def test_a_sweep_runs_infra_then_every_recipe_then_cleans_up_and_records() -> None:
    """Infra first (a failing one reported, not fatal), a red recipe does not stop the next."""
    sweep, fake, log = make(["a", "b", "c"], {"b": "fail"})
    summary = sweep.run()
    assert [
        "reconcile traefik",
        "reconcile keycloak",
        "run a",
        "yield 6s",
        "run b",
        "yield 6s",
        "run c",
        "prune-stale ['a', 'b', 'c']",
        "janitor dry=False",
        "record",
    ] == log
    assert (0, ["pass", "fail", "pass"]) == (summary.exit_code, [r.result for r in summary.recipes])
    assert summary.infra["keycloak"].startswith("not reconciled: no recipe repository")
    assert ["gone-recipe"] == summary.pruned
    assert [summary.to_dict()] == fake.recorded
    assert ["recipe  result   time     promoted  note"] == summary.table()[:1]


def test_a_run_in_flight_skips_the_whole_sweep() -> None:
    """Anything holding a lease: nothing runs, and the line names the run."""
    sweep, _, log = make(["a"], {}, live=[{"id": "L9", "recipe": "web", "lane": "quick"}])
    summary = sweep.run()
    assert ([], 0) == (log, summary.exit_code)
    assert "run L9 (web, quick) is in flight" in summary.skipped


def test_a_person_arriving_stops_new_recipes_and_says_which_were_skipped() -> None:
    """A lease taken during recipe a: b and c are not started, and are listed as skipped."""
    sweep, _, log = make(["a", "b", "c"], {"a": "person"})
    summary = sweep.run()
    assert ["run a"] == [line for line in log if line.startswith("run ")]
    skipped = [(r.recipe, r.result) for r in summary.recipes[1:]]
    assert [("b", "skipped"), ("c", "skipped")] == skipped
    assert "run L1 (other) arrived: the sweep yields" == summary.recipes[1].detail
    assert "prune-stale ['a', 'b', 'c']" in log  # the clean-up still runs


def test_a_step_of_its_own_that_breaks_is_exit_1_and_the_rest_still_runs() -> None:
    """prune-stale failing: reported as broken, the janitor and the record still run."""
    sweep, _, log = make(["a"], {}, prune_fails=True)
    summary = sweep.run()
    assert (1, ["prune-stale: agent: 500"]) == (summary.exit_code, summary.broken)
    assert ["janitor dry=False", "record"] == log[-2:]


@pytest.mark.parametrize("recipes", [[], ["a", "b"]])
def test_dry_run_reconciles_runs_and_records_nothing(recipes: list[str]) -> None:
    """--dry-run: every recipe listed as not run, the janitor asked for a dry run only."""
    sweep, fake, log = make(recipes, {})
    summary = sweep.run(dry_run=True)
    assert ["janitor dry=True"] == log
    assert ([], {"traefik": "would reconcile", "keycloak": "would reconcile"}) == (
        fake.recorded,
        summary.infra,
    )
    assert [("skipped", "dry run")] * len(recipes) == [
        (r.result, r.detail) for r in summary.recipes
    ]


def test_the_relay_runs_after_the_janitor_and_an_undelivered_alert_breaks_the_sweep() -> None:
    """Alerts are delivered by the sweep; a delivery failure is exit 1, the record still made."""
    sweep, fake, log = make(["a"], {})
    sweep.relay = lambda dry: (
        log.append(f"relay dry={dry}"),
        (1, ["relay: 0 delivered, 1 failed"]),
    )[1]  # type: ignore[func-returns-value]
    summary = sweep.run()
    assert ["janitor dry=False", "relay dry=False", "record"] == log[-3:]
    assert (1, ["relay: relay: 0 delivered, 1 failed (alerts stay active)"]) == (
        summary.exit_code,
        summary.broken,
    )
    assert ["relay: 0 delivered, 1 failed"] == fake.recorded[0]["relay"]


def test_the_summary_people_read_names_each_recipe_infra_clean_up_and_disk() -> None:
    """The table, the infra outcomes, what was cleaned, and how full the disk is."""
    sweep, _, _ = make(["a", "b"], {"b": "fail"})
    lines = summary_lines(sweep.run())
    assert any(line.startswith("a       pass") for line in lines), lines
    assert any(line.startswith("b       fail") for line in lines), lines
    assert "infra traefik: traefik: no-op" in lines
    assert "janitor: removed stack x" in lines
    assert "disk / (/): 42.0% used" in lines


def test_nothing_enrolled_never_prunes_every_canonical() -> None:
    """An empty enrolment (a wrong tests dir) skips prune-stale instead of dropping all data."""
    sweep, _, log = make([], {})
    summary = sweep.run()
    assert not any(line.startswith("prune-stale") for line in log)
    assert ["prune-stale skipped: no recipe is enrolled"] == summary.pruned
