"""The warm state directory: its layout, atomic writes and per-app locks.

    <state>/<app>/canonical.json        the registry entry of a canonical (``<app>`` is the recipe)
    <state>/<app>/snapshot -> snapshots/<id>   the one last-good (a symlink flipped atomically)
    <state>/<app>/snapshots/<id>/       <volume>.tar per volume + manifest.json
    <state>/<app>/live.json             the canonical's live state: deployed or idle, clean or dirty
    <state>/<app>/restore-pending.json  present while a restore may have left a volume half-written
    <state>/alerts/<id>.json            active alerts; alerts/seen/<id>-<utc-ts>.json once acked
    <state>/_infra/<name>.json          live-warm infra: version and last-good version
    <state>/_leases.json                live run leases
    <state>/_locks/<name>.lock          flock(2) files serialising writers across processes

Our own entries start with ``_`` (no recipe can) except ``alerts``, which operators already know:
the agent refuses a recipe named ``alerts``.

Every file is written atomically: a temp file in the same directory, fsync, rename, fsync the dir.
A file that is corrupt all the same (a disk error, a hand edit) is moved aside by
:func:`quarantine` to ``<name>.corrupt-<utc-ts>`` beside it, never deleted, and the agent serves on.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ccci_core.atomic import fsync_dir
from ccci_core.errors import InvalidName
from ccci_core.names import validate_recipe

from .errors import AgentError, StateCorrupt

RESERVED = frozenset({"alerts"})
CORRUPT_INFIX = ".corrupt-"
# Told where a corrupt file went: (its path, where it was moved, why it was corrupt).
Report = Callable[[Path, Path, str], None]


def read_json(path: Path) -> Any:
    """Return the JSON in ``path``, or None if it is absent; raise StateCorrupt if it is no JSON."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AgentError(f"cannot read {path}: {exc}", path=str(path)) from exc
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise StateCorrupt(f"cannot read {path}: {exc}", path=str(path)) from exc


def quarantine(path: Path) -> Path:
    """Move ``path`` aside to ``<name>.corrupt-<utc-ts>`` in its directory; return the new path.

    One rename moves it (a file, a symlink or a directory), then the directory is flushed. Nothing
    is deleted: an earlier quarantine of the same name in the same second gets a ``-<n>`` suffix.
    Call it holding the lock that guards ``path``, so no writer replaces it in between.
    """
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    target = path.with_name(f"{path.name}{CORRUPT_INFIX}{stamp}")
    n = 1
    while os.path.lexists(target):
        n += 1
        target = path.with_name(f"{path.name}{CORRUPT_INFIX}{stamp}-{n}")
    path.rename(target)
    fsync_dir(path.parent)
    return target


def _anything(_value: Any) -> bool:
    return True


def read_json_or_quarantine(
    path: Path, report: Report, valid: Callable[[Any], bool] = _anything
) -> Any:
    """Return the JSON in ``path``, or None if it is absent or corrupt (then moved aside, reported).

    Corrupt means it does not parse, or ``valid`` refuses what it holds. Call it holding the lock
    that guards ``path``; :meth:`StateDir.peek_json` takes the lock only when it is needed.
    """
    try:
        value = read_json(path)
        if value is None or valid(value):
            return value
        reason = "unexpected content"
    except StateCorrupt as exc:
        reason = str(exc.__cause__)
    moved = quarantine(path)
    report(path, moved, reason)
    return None


def remove_durably(path: Path) -> None:
    """Remove a file (if present) and flush its directory."""
    try:
        path.unlink()
    except FileNotFoundError:
        return
    fsync_dir(path.parent)


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

    def peek_json(
        self, path: Path, lock: str, report: Report, valid: Callable[[Any], bool] = _anything
    ) -> Any:
        """Return the JSON in ``path`` read without a lock; take ``lock`` only to quarantine it.

        Writers replace files atomically, so a reader without the lock sees a whole file; one
        that looks corrupt is read again under ``lock`` before it is moved aside.
        """
        with contextlib.suppress(StateCorrupt):
            value = read_json(path)
            if value is None or valid(value):
                return value
        with self.lock(lock):
            return read_json_or_quarantine(path, report, valid)

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
