"""The line a run ends its log with, which the bridge reads back: one contract, like build_params.

The plugin prints its verdict for humans (``FAIL upgrade (3.1s) — …`` and a summary table). Its
last line is for the bridge: ``ccci-result {json}``, a compact JSON object with what the PR reply
says beyond Drone's own build status — the lane that ran, the failing step and its one-line
detail, what happened to the canonical. The bridge reads it from the step's log through Drone's
API (``GET /api/repos/{repo}/builds/{n}/logs/{stage}/{step}``) and believes it only as the log's
**last** line, so a recipe test that prints one cannot speak for the run. The line is a report,
not an authority: PASS or FAIL is Drone's build status, which the plugin's exit code decides.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

MARKER = "ccci-result "
DETAIL_LIMIT = 300  # a reply shows one line of detail, not a traceback


@dataclass(frozen=True)
class RunResult:
    """What a run reports about itself for the verdict."""

    verdict: str  # pass | fail | error
    lane: str  # the lane that ran
    recipe: str = ""
    canonical: str = ""
    fallback: str | None = None  # why a quick request ran the cold lane
    step: str | None = None  # the first failing step
    detail: str = ""  # its one-line detail (or why the run stopped)

    def line(self) -> str:
        """Return the log line that carries this result."""
        body = {k: v for k, v in self.__dict__.items() if v not in (None, "")}
        return MARKER + json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def one_line(text: str, limit: int = DETAIL_LIMIT) -> str:
    """Return ``text`` on one line, cut to ``limit`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _field(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    return one_line(value) if isinstance(value, str) and value else None


def parse_line(line: str) -> RunResult | None:
    """Return the result a ``ccci-result`` line carries, or None if it is not one."""
    line = line.strip()
    if not line.startswith(MARKER):
        return None
    try:
        body = json.loads(line[len(MARKER) :])
    except (ValueError, RecursionError):
        return None
    if not isinstance(body, dict):
        return None
    verdict, lane = _field(body, "verdict"), _field(body, "lane")
    if verdict not in {"pass", "fail", "error"} or lane is None:
        return None
    return RunResult(
        verdict=verdict,
        lane=lane,
        recipe=_field(body, "recipe") or "",
        canonical=_field(body, "canonical") or "",
        fallback=_field(body, "fallback"),
        step=_field(body, "step"),
        detail=_field(body, "detail") or "",
    )


def find_result(lines: Iterable[str]) -> RunResult | None:
    """Return the result the log's last non-empty line carries, if it is a ``ccci-result``."""
    last = ""
    for line in lines:
        for part in line.splitlines():
            if part.strip():
                last = part
    return parse_line(last)
