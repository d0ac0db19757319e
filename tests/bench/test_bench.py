"""Run ``make bench`` in its quick mode, so the benchmarks never rot (no timing is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = {"bridge", "warmsnap", "flat state", "quick vs cold"}


def test_quick_bench_prints_the_table_and_writes_results(tmp_path: Path) -> None:
    """BENCH_QUICK=1 make bench exits 0, records every section's figures and prints one table."""
    results = tmp_path / "results.json"
    env = {**os.environ, "BENCH_QUICK": "1", "BENCH_RESULTS": str(results)}

    done = subprocess.run(
        ["make", "--no-print-directory", "bench"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip

    assert 0 == done.returncode, done.stdout[-3000:] + done.stderr[-3000:]
    data = json.loads(results.read_text())
    assert SECTIONS == set(data)
    for section, body in data.items():
        assert body["quick"] is True
        assert body["figures"], section
        for figure in body["figures"]:
            assert {"figure", "goal", "measured", "met"} == set(figure)
    table = done.stdout[done.stdout.rindex("section  ") :]
    for section in SECTIONS:
        assert f"{section} (quick)" in table
    assert f"raw numbers: {results}" in table
    # Flat state and the runs' verdicts are invariants, not speeds: they must hold here too.
    unmet = [f["figure"] for f in data["flat state"]["figures"] if f["met"] is not True]
    assert [] == unmet
