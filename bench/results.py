"""Where the benchmarks put what they measured: ``bench/results.json`` and one table at the end.

Each bench script records its section (its figures and raw numbers); ``bench/table.py`` prints
every figure of the file as one table. ``BENCH_RESULTS`` moves the file (the test of the quick
mode writes a temporary one); ``BENCH_QUICK=1`` asks every bench for small sizes and one round,
so CI runs them all in seconds and they never rot.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

DEFAULT = Path(__file__).with_name("results.json")


def path() -> Path:
    """Return the results file of this run."""
    return Path(os.environ.get("BENCH_RESULTS", DEFAULT))


def quick() -> bool:
    """Return whether this is the quick mode (small sizes, one round)."""
    return os.environ.get("BENCH_QUICK", "") not in ("", "0")


@dataclass
class Figure:
    """One row of the final table: what was measured, its goal, the value, whether it met it."""

    figure: str
    goal: str
    measured: str
    met: bool | None  # None: reported only, no goal


def record(section: str, figures: list[Figure], raw: dict[str, Any]) -> None:
    """Merge ``section`` into the results file (written whole, by rename)."""
    target = path()
    try:
        data = json.loads(target.read_text())
    except (OSError, ValueError):
        data = {}
    data[section] = {
        "quick": quick(),
        "figures": [asdict(f) for f in figures],
        "raw": raw,
    }
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(target)
