"""The warm state directory: its layout, atomic writes and per-app locks.

    <state>/<app>/canonical.json        the registry entry of a canonical (``<app>`` is the recipe)
    <state>/<app>/snapshot -> snapshots/<id>   the one last-good (a symlink flipped atomically)
    <state>/<app>/snapshots/<id>/       <volume>.tar per volume + manifest.json
    <state>/<app>/live.json             the canonical's live state: deployed or idle, clean or dirty
    <state>/<app>/restore-pending.json  present while a restore may have left a volume half-written
    <state>/alerts/<id>.json            active alerts; alerts/seen/<id>.json once acknowledged
    <state>/_infra/<name>.json          live-warm infra: version and last-good version
    <state>/_leases.json                live run leases
    <state>/_locks/<name>.lock          flock(2) files serialising writers across processes

Our own entries start with ``_`` (no recipe can) except ``alerts``, which operators already know:
the agent refuses a recipe named ``alerts``.

Every file is written atomically: a temp file in the same directory, fsync, rename, fsync the dir.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ccci_core.atomic import fsync_dir
from ccci_core.errors import InvalidName
from ccci_core.names import validate_recipe

from .errors import AgentError

RESERVED = frozenset({"alerts"})


def read_json(path: Path) -> Any:
    """Return the JSON in ``path``, or None if it does not exist."""
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise AgentError(f"cannot read {path}: {exc}", path=str(path)) from exc


def remove_durably(path: Path) -> None:
    """Remove a file (if present) and flush its directory."""
    try:
        path.unlink()
    except FileNotFoundError:
        return
    fsync_dir(path.parent)


def quarantine(path: Path) -> Path:
    """Move a file that cannot be read aside (``<name>.corrupt-<utc>``), durably; return it."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    path.rename(target)
    fsync_dir(path.parent)
    return target


class StateDir:
    """The paths of the warm state directory; every app path goes through name validation."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def ensure(self) -> None:
        """Create the fixed directories (0750: only root and the agent's group may read)."""
        for folder in (self.root, self.alerts, self.alerts / "seen", self.locks, self.infra):
            folder.mkdir(mode=0o750, parents=True, exist_ok=True)

    @property
    def alerts(self) -> Path:
        """Return the active alerts directory."""
        return self.root / "alerts"

    @property
    def locks(self) -> Path:
        """Return the lock files directory."""
        return self.root / "_locks"

    @property
    def infra(self) -> Path:
        """Return the live-warm infra directory."""
        return self.root / "_infra"

    @property
    def leases(self) -> Path:
        """Return the leases file."""
        return self.root / "_leases.json"

    def app(self, recipe: str) -> Path:
        """Return the directory of the canonical of ``recipe`` (validated)."""
        if validate_recipe(recipe) in RESERVED:
            raise InvalidName("recipe", recipe, "reserved by the state directory")
        return self.root / recipe

    def canonical(self, recipe: str) -> Path:
        """Return the registry entry of ``recipe``."""
        return self.app(recipe) / "canonical.json"

    def snapshot_link(self, recipe: str) -> Path:
        """Return the ``snapshot`` symlink of ``recipe``."""
        return self.app(recipe) / "snapshot"

    def snapshots(self, recipe: str) -> Path:
        """Return the directory holding snapshot generations of ``recipe``."""
        return self.app(recipe) / "snapshots"

    def live(self, recipe: str) -> Path:
        """Return the file holding the canonical's live state (status, clean/dirty)."""
        return self.app(recipe) / "live.json"

    def restore_pending(self, recipe: str) -> Path:
        """Return the restore-pending marker of ``recipe``."""
        return self.app(recipe) / "restore-pending.json"

    def apps(self) -> list[str]:
        """Return the recipes that have an app directory, sorted."""
        if not self.root.is_dir():
            return []
        found = []
        for entry in self.root.iterdir():
            if entry.name in RESERVED or entry.is_symlink() or not entry.is_dir():
                continue
            with contextlib.suppress(InvalidName):
                found.append(validate_recipe(entry.name))
        return sorted(found)

    @contextlib.contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """Hold the exclusive lock ``name`` (across threads, processes and gunicorn workers)."""
        self.locks.mkdir(mode=0o750, parents=True, exist_ok=True)
        fd = os.open(self.locks / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing drops the flock
