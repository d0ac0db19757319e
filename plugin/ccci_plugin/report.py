"""The run's log for a human reading Drone's page, and its machine-readable result.

Each step prints a line when it starts and one with its verdict and duration when it ends; the run
ends with a summary table (lane, recipe, versions, each step, what happened to the canonical). The
same facts are available as a JSON-ready dict for ``CCCI_RESULT_FILE``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TextIO

from ccci_core.lanes import RunLane
from ccci_core.run_result import RunResult, one_line

from .request import RunRequest


class Verdict(StrEnum):
    """A step's verdict."""

    PASS = "pass"  # noqa: S105 - a verdict, not a password
    FAIL = "fail"
    SKIP = "skip"


@dataclass
class Step:
    """One step of a run."""

    name: str
    verdict: Verdict = Verdict.PASS
    seconds: float = 0.0
    detail: str = ""

    def skip(self, reason: str) -> None:
        """Mark the step skipped, with the reason shown in the log."""
        self.verdict, self.detail = Verdict.SKIP, reason

    def fail(self, reason: str) -> None:
        """Mark the step failed without raising (the run goes on to teardown)."""
        self.verdict, self.detail = Verdict.FAIL, reason


@dataclass
class RunReport:
    """Collects steps as they happen and prints them to ``out``."""

    request: RunRequest
    out: TextIO
    clock: Callable[[], float] = time.monotonic
    steps: list[Step] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    canonical: str = "untouched"
    notes: list[str] = field(default_factory=list)
    stopped: str | None = None  # why the run stopped outside any step (it is then red)
    lane: RunLane | None = None  # the lane that ran (None: as asked)
    fallback: str | None = None  # why a quick request ran the cold lane
    commit: str | None = None  # the commit under test, once pinned

    @property
    def ran(self) -> RunLane:
        """Return the lane that ran (the one asked for until the run picks one)."""
        return self.lane or self.request.lane

    def say(self, line: str) -> None:
        """Print one line of the log now."""
        print(line, file=self.out, flush=True)

    @contextmanager
    def step(self, name: str) -> Iterator[Step]:
        """Time a step; an exception inside fails it (and propagates)."""
        step = Step(name)
        self.steps.append(step)
        self.say(f"--- {name}")
        started = self.clock()
        try:
            yield step
        except BaseException as exc:
            step.fail(str(exc) or type(exc).__name__)
            raise
        finally:
            step.seconds = self.clock() - started
            detail = f" — {step.detail}" if step.detail else ""
            self.say(f"{step.verdict.upper():4} {name} ({step.seconds:.1f}s){detail}")

    def stop(self, reason: str) -> None:
        """Record that the run stopped on an error no step caught (a cancel, git, the agent)."""
        self.stopped = reason
        self.notes.append(f"stopped: {reason}")

    @property
    def passed(self) -> bool:
        """Return whether the run did not stop on an error and no step failed."""
        return self.stopped is None and all(step.verdict is not Verdict.FAIL for step in self.steps)

    def summary(self) -> str:
        """Return the end-of-run table."""
        request = self.request
        head = [
            f"lane      {self.ran}" + (f" (quick asked: {self.fallback})" if self.fallback else ""),
            f"recipe    {request.recipe}",
            f"ref       {request.ref or 'latest'}",
        ]
        if self.commit:
            pinned = " (CCCI_SHA)" if request.sha else ""
            head.append(f"commit    {self.commit}{pinned}")
        head += [f"{key:<9} {value}" for key, value in self.versions.items()]
        head.append(f"canonical {self.canonical}")
        width = max((len(step.name) for step in self.steps), default=4)
        rows = [
            f"  {s.name:<{width}}  {s.verdict.upper():4}  {s.seconds:7.1f}s  {s.detail}".rstrip()
            for s in self.steps
        ]
        verdict = "PASS" if self.passed else "FAIL"
        return "\n".join([*head, "steps:", *rows, *self.notes, f"verdict   {verdict}"])

    def result(self, code: int) -> RunResult:
        """Return what the run's last log line tells the bridge (exit ``code`` 2: an error)."""
        failed = next((s for s in self.steps if s.verdict is Verdict.FAIL), None)
        verdict = "error" if code == 2 else "pass" if self.passed else "fail"
        detail = failed.detail if failed is not None else self.stopped or ""
        return RunResult(
            verdict=verdict,
            lane=str(self.ran),
            recipe=self.request.recipe,
            canonical=self.canonical,
            fallback=self.fallback,
            step=failed.name if failed is not None else None,
            detail=one_line(detail),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the machine-readable result."""
        request = self.request
        return {
            "verdict": "pass" if self.passed else "fail",
            "lane": self.ran,
            "asked": request.lane,
            "fallback": self.fallback,
            "recipe": request.recipe,
            "ref": request.ref,
            "commit": self.commit,
            "sha_pinned": request.sha is not None,
            "pr": request.pr,
            "build": request.build_number,
            "versions": dict(self.versions),
            "canonical": self.canonical,
            "steps": [
                {
                    "name": s.name,
                    "status": str(s.verdict),  # the wire name of a step's verdict
                    "seconds": round(s.seconds, 3),
                    "detail": s.detail,
                }
                for s in self.steps
            ],
            "stopped": self.stopped,
            "notes": list(self.notes),
        }
