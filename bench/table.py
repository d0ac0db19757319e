"""Print every figure of ``bench/results.json`` as one table (the end of ``make bench``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.results import path


def main() -> int:
    """Print the table; exit 1 when there are no results to print."""
    try:
        data = json.loads(path().read_text())
    except (OSError, ValueError) as exc:
        print(f"bench: no results in {path()}: {exc}", file=sys.stderr)
        return 1
    rows = [("section", "figure", "goal", "measured", "met")]
    for section, body in data.items():
        label = f"{section} (quick)" if body.get("quick") else section
        for f in body["figures"]:
            met = "-" if f["met"] is None else ("yes" if f["met"] else "NO")
            rows.append((label, f["figure"], f["goal"], f["measured"], met))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    print()
    for n, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    print(f"\nraw numbers: {path()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
