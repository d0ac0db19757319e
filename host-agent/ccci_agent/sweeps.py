"""Nightly sweep records: ``<state>/_sweeps/<utc-ts>.json``, the last :data:`KEEP` of them.

``cc-ci sweep`` posts its summary here when it ends; ``cc-ci status`` shows the newest. A record
that cannot be read is skipped (the one before it is shown); it is never fatal.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ccci_core.atomic import write_json

from .errors import AgentError
from .store import StateDir, read_json

KEEP = 30
LOCK = "sweeps"


class Sweeps:
    """Record and read sweep summaries."""

    def __init__(self, state: StateDir) -> None:
        self.state = state

    @property
    def folder(self) -> Path:
        """Return the records' directory."""
        return self.state.root / "_sweeps"

    def record(self, summary: dict[str, Any]) -> dict[str, Any]:
        """Write ``summary`` as the newest record; drop the oldest beyond :data:`KEEP`."""
        stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}"
        record = summary | {"recorded": stamp}
        with self.state.lock(LOCK):
            self.folder.mkdir(mode=0o750, parents=True, exist_ok=True)
            write_json(self.folder / f"{stamp}.json", record)
            for old in sorted(self.folder.glob("*.json"))[:-KEEP]:
                old.unlink(missing_ok=True)
        return record

    def last(self) -> dict[str, Any] | None:
        """Return the newest readable record, if any."""
        if not self.folder.is_dir():
            return None
        for path in sorted(self.folder.glob("*.json"), reverse=True):
            with contextlib.suppress(AgentError):
                found = read_json(path)
                if isinstance(found, dict):
                    return found
        return None
