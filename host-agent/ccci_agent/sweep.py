"""``cc-ci sweep``: the nightly job — infra forward, a cold run of every enrolled recipe, clean up.

1. Skip (exit 0, one line naming the run) while any run holds a lease; one sweep at a time.
2. ``reconcile traefik``, then ``reconcile keycloak``: one that fails, holds or is not configured
   is reported (its own alert says why) and the sweep goes on.
3. A full cold run on latest of every enrolled recipe (``WARM_CANONICAL = True``), one at a time,
   each the plugin's own run (a green one promotes its canonical). A red recipe does not stop the
   others; ``CCCI_MAX_TESTS`` is the agent's; a run of a person's that holds a lease when the next
   recipe is due stops the sweep from starting more (the skipped ones are listed).
4. ``prune-stale``: the warm data of canonicals no longer enrolled goes.
5. The janitor, the alert relay (every active alert to the room/webhook), then the disk use of
   ``/`` and of the state dir.
6. A summary: per recipe the result, duration, promoted or not, why skipped — as a table, as JSON
   with ``--json``, and recorded with the agent (``cc-ci status`` shows the last).

Exit 0 when the sweep ran (red recipes are results, not failures of the sweep), 1 when a step of
its own broke (prune-stale, the janitor, the record), 2 bad configuration.

The steps are ports (callables and a small agent protocol) so the orchestration is tested on fakes;
``sweep_cli`` wires the real ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ccci_core.errors import CcciError

YIELD = 6.0  # seconds left between two recipes: a person's run polling for a lease gets it


class SweepAgent(Protocol):
    """What the sweep asks of the host agent."""

    def leases(self) -> list[dict[str, Any]]:
        """Return the live leases."""

    def prune_stale(self, enrolled: Sequence[str]) -> dict[str, Any]:
        """Drop the warm data of canonicals not in ``enrolled``."""

    def record(self, summary: dict[str, Any]) -> None:
        """Record the sweep's summary."""

    def disk(self) -> dict[str, Any]:
        """Return the agent's view of disk use (``/`` and the state dir)."""


@dataclass
class RecipeResult:
    """One enrolled recipe's part of the sweep."""

    recipe: str
    result: str  # pass | fail | error | skipped
    seconds: float = 0.0
    promoted: bool = False
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready form."""
        return {
            "recipe": self.recipe,
            "result": self.result,
            "seconds": round(self.seconds, 1),
            "promoted": self.promoted,
            "detail": self.detail,
        }


@dataclass
class Summary:
    """What one sweep did."""

    skipped: str = ""  # why the whole sweep did not run
    infra: dict[str, str] = field(default_factory=dict)  # app -> outcome (and why)
    recipes: list[RecipeResult] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    janitor: list[str] = field(default_factory=list)
    relayed: list[str] = field(default_factory=list)
    disk: dict[str, Any] = field(default_factory=dict)
    broken: list[str] = field(default_factory=list)  # the sweep's own steps that failed

    @property
    def exit_code(self) -> int:
        """Return 0 when the sweep ran (or was skipped), 1 when a step of its own broke."""
        return 1 if self.broken else 0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready form."""
        return {
            "skipped": self.skipped or None,
            "infra": dict(self.infra),
            "recipes": [r.to_dict() for r in self.recipes],
            "pruned": list(self.pruned),
            "janitor": list(self.janitor),
            "relay": list(self.relayed),
            "disk": dict(self.disk),
            "broken": list(self.broken),
            "exit": self.exit_code,
        }

    def table(self) -> list[str]:
        """Return the summary table, a line per recipe."""
        width = max([len(r.recipe) for r in self.recipes] + [6])
        lines = [f"{'recipe':<{width}}  result   time     promoted  note"]
        for r in self.recipes:
            promoted = "yes" if r.promoted else "no"
            row = (
                f"{r.recipe:<{width}}  {r.result:<7}  {r.seconds:6.1f}s  {promoted:<8}  {r.detail}"
            )
            lines.append(row.rstrip())
        return lines


RunRecipe = Callable[[str], RecipeResult]
Reconcile = Callable[[str], str]  # app -> outcome line; raises CcciError when it cannot run


@dataclass
class Sweep:
    """Run the nightly sweep through its ports."""

    agent: SweepAgent
    enrolled: Callable[[], list[str]]
    reconcile: Reconcile
    run_recipe: RunRecipe
    janitor: Callable[[bool], list[str]]  # dry_run -> what it removed (or would)
    relay: Callable[[bool], tuple[int, list[str]]] = lambda dry_run: (0, [])  # exit, lines
    say: Callable[[str], None] = print
    sleep: Callable[[float], None] = time.sleep
    yield_s: float = YIELD

    def _someone(self) -> dict[str, Any] | None:
        live = self.agent.leases()
        return live[0] if live else None

    def run(self, *, dry_run: bool = False) -> Summary:
        """Sweep (or, with ``dry_run``, say what would run) and return the summary."""
        summary = Summary()
        busy = self._someone()
        if busy is not None:
            summary.skipped = (
                f"run {busy['id']} ({busy['recipe']}, {busy['lane']}) is in flight; try later"
            )
            self.say(f"sweep skipped: {summary.skipped}")
            return summary
        for app in ("traefik", "keycloak"):
            if dry_run:
                summary.infra[app] = "would reconcile"
                continue
            try:
                summary.infra[app] = self.reconcile(app)
            except CcciError as exc:  # not configured, agent refused, ...: reported, not fatal
                summary.infra[app] = f"not reconciled: {exc}"
            self.say(f"infra {app}: {summary.infra[app]}")
        enrolled = self.enrolled()
        for index, recipe in enumerate(enrolled):
            if dry_run:
                summary.recipes.append(RecipeResult(recipe, "skipped", detail="dry run"))
                continue
            if index > 0:
                self.sleep(self.yield_s)  # a person's run waiting for a lease takes it now
            person = self._someone()
            if person is not None:
                why = f"run {person['id']} ({person['recipe']}) arrived: the sweep yields"
                summary.recipes += [
                    RecipeResult(r, "skipped", detail=why) for r in enrolled[index:]
                ]
                self.say(
                    f"sweep yields to run {person['id']}: skipping {', '.join(enrolled[index:])}"
                )
                break
            self.say(f"--- sweep: cold run of {recipe} on latest")
            summary.recipes.append(self.run_recipe(recipe))
        self._own(summary, "prune-stale", lambda: self._prune(summary, enrolled, dry_run))
        self._own(summary, "janitor", lambda: summary.janitor.extend(self.janitor(dry_run)))
        self._own(summary, "relay", lambda: self._relay(summary, dry_run))
        self._own(summary, "disk", lambda: summary.disk.update(self.agent.disk()))
        if not dry_run:
            self._own(summary, "record", lambda: self.agent.record(summary.to_dict()))
        return summary

    def _prune(self, summary: Summary, enrolled: list[str], dry_run: bool) -> None:
        if not enrolled:  # a wrong CCCI_TESTS_DIR must not drop every canonical's data
            summary.pruned.append("prune-stale skipped: no recipe is enrolled")
            return
        if dry_run:
            summary.pruned.append(f"would prune canonicals not in {enrolled}")
            return
        answer = self.agent.prune_stale(enrolled)
        summary.pruned.extend(str(r) for r in answer.get("pruned", []))

    def _relay(self, summary: Summary, dry_run: bool) -> None:
        """Deliver the alerts (the sweep's own and every other): undelivered is a broken step."""
        code, lines = self.relay(dry_run)
        summary.relayed.extend(lines)
        if code != 0:
            raise CcciError(f"{lines[-1] if lines else 'relay failed'} (alerts stay active)")

    def _own(self, summary: Summary, step: str, act: Callable[[], object]) -> None:
        """Run one of the sweep's own steps; a failure is recorded and the sweep goes on."""
        try:
            act()
        except CcciError as exc:
            summary.broken.append(f"{step}: {exc}")
            self.say(f"sweep step {step} failed: {exc}")
