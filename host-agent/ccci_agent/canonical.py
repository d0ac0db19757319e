"""The canonical registry: ``<state>/<recipe>/canonical.json`` beside its last-good snapshot.

The state key ``<app>`` of a canonical is its recipe name (stable, short, what operators type); the
record keeps the app's domain and stack. Promote takes a snapshot and records it: the snapshot's
symlink flip is the commit point and the manifest carries the record it was taken for, so a crash
between the flip and the ``canonical.json`` write is repaired by :meth:`Canonicals.recover`, and the
old known-good is replaced only when the new one is complete.

``volume`` says whether the live volume still equals the known-good (``clean``) or another version
touched it (``dirty``); a pending restore always reads as dirty. That live state (and ``status``,
deployed or idle) is kept in ``live.json`` beside the registry and overlaid on it when read:
``canonical.json`` is written only by promote, so a quick run — which never promotes — leaves it
byte-identical.
"""

from __future__ import annotations

import re
import secrets
import shutil
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Literal

from ccci_core.atomic import fsync_dir, write_json
from ccci_core.errors import InvalidName
from ccci_core.names import canonical_app, validate_recipe
from ccci_core.versions import Version

from .engine import Engine
from .errors import Conflict, NotFound
from .store import StateDir, read_json, remove_durably
from .warmsnap import Warmsnap, now_iso

Status = Literal["idle", "deployed"]
VolumeState = Literal["clean", "dirty"]
_COMMIT_RE = re.compile(r"[0-9a-f]{7,64}")
TRASH_PREFIX = "_trash-"
_SUFFIX_MAX = 63


def validate_commit(commit: object) -> str:
    """Return ``commit`` if it is a lowercase hex git object id."""
    if not isinstance(commit, str) or not _COMMIT_RE.fullmatch(commit):
        raise InvalidName("commit", commit, "expected 7-64 lowercase hex digits")
    return commit


def validate_canonical_domain(recipe: str, domain: object, base_domain: str) -> str:
    """Return ``domain`` if it is the canonical app domain of ``recipe`` under ``base_domain``.

    The exact domain depends on the longest volume/secret name of the recipe (see
    ``ccci_core.names``), which the agent does not read; any budget that yields ``domain`` is fine.
    """
    for suffix in range(_SUFFIX_MAX + 1):
        try:
            if canonical_app(recipe, base_domain, suffix=suffix).domain == domain:
                return domain
        except InvalidName:
            break  # larger suffixes leave even less room
    raise InvalidName("domain", domain, f"not the canonical domain of {recipe} on {base_domain}")


class Canonicals:
    """Read and change the registry; every change holds the app's lock."""

    def __init__(self, state: StateDir, engine: Engine, base_domain: str, **snap: Any) -> None:
        self.state = state
        self.engine = engine
        self.base_domain = base_domain
        self.warmsnap = Warmsnap(state, engine, **snap)

    def _lock(self, recipe: str) -> Any:
        self.state.app(recipe)  # validates, reserved names included, before a lock file exists
        return self.state.lock(f"app-{recipe}")

    def _record(self, recipe: str) -> dict[str, Any] | None:
        record = read_json(self.state.canonical(recipe))
        if record is None:
            return None
        return {**record, **(read_json(self.state.live(recipe)) or {})}

    def view(self, recipe: str) -> dict[str, Any]:
        """Return the registry entry of ``recipe`` with its snapshot and restore state."""
        record = self._record(recipe)
        if record is None:
            raise NotFound(f"{recipe} is not a canonical", recipe=recipe)
        manifest = self.warmsnap.manifest(recipe)
        pending = self.warmsnap.pending_restore(recipe)
        snapshot = None
        if manifest is not None:
            created = datetime.fromisoformat(manifest["created"])
            snapshot = {
                "id": manifest["id"],
                "size": manifest["size"],
                "created": manifest["created"],
                "age_seconds": int((datetime.now(UTC) - created).total_seconds()),
                "volumes": [v["name"] for v in manifest["volumes"]],
            }
        record["snapshot"] = snapshot
        record["restore_pending"] = pending
        if pending is not None:
            record["volume"] = "dirty"
        return record

    def all(self) -> list[dict[str, Any]]:
        """Return every registry entry."""
        return [self.view(r) for r in self.state.apps() if self.state.canonical(r).is_file()]

    def promote(self, recipe: str, domain: str, version: str, commit: str) -> dict[str, Any]:
        """Snapshot the (undeployed) canonical of ``recipe`` and record it as known-good."""
        self.state.app(recipe)
        validate_canonical_domain(recipe, domain, self.base_domain)
        Version.parse(version)
        validate_commit(commit)
        stack = domain.replace(".", "_")
        with self._lock(recipe):
            app = self.state.app(recipe)
            fresh = not app.exists()
            app.mkdir(mode=0o750, parents=True, exist_ok=True)
            record = {
                "recipe": recipe,
                "domain": domain,
                "stack": stack,
                "version": version,
                "commit": commit,
            }
            try:
                manifest = self.warmsnap.snapshot(recipe, stack, record)
            except BaseException:
                if fresh:
                    shutil.rmtree(app, ignore_errors=True)  # a refused first promote leaves nothing
                raise
            self._write_from_manifest(recipe, manifest)
        return self.view(recipe)

    def snapshot(self, recipe: str) -> dict[str, Any]:
        """Re-take the known-good of ``recipe`` at its recorded version."""
        record = self._record(recipe)
        if record is None:
            raise NotFound(f"{recipe} is not a canonical; promote it first", recipe=recipe)
        return self.promote(recipe, record["domain"], record["version"], record["commit"])

    def _write_from_manifest(self, recipe: str, manifest: dict[str, Any]) -> None:
        record = dict(manifest["canonical"])
        record.update(
            status="idle", volume="clean", snapshot_id=manifest["id"], ts=manifest["created"]
        )
        write_json(self.state.canonical(recipe), record)
        remove_durably(self.state.live(recipe))  # the new known-good is what the volume holds

    def restore(self, recipe: str) -> dict[str, Any]:
        """Restore the known-good data of ``recipe``; its volume is clean afterwards."""
        with self._lock(recipe):
            if self._record(recipe) is None:
                raise NotFound(f"{recipe} is not a canonical", recipe=recipe)
            result = self.warmsnap.restore(recipe)
            self._update(recipe, volume="clean", status="idle")
        view = self.view(recipe)
        view["restored"] = result
        return view

    def mark(
        self, recipe: str, *, status: Status | None = None, volume: VolumeState | None = None
    ) -> dict[str, Any]:
        """Record the canonical's deploy status and whether its live volume is clean."""
        with self._lock(recipe):
            if self._record(recipe) is None:
                raise NotFound(f"{recipe} is not a canonical", recipe=recipe)
            if volume == "clean" and self.warmsnap.pending_restore(recipe) is not None:
                raise Conflict(f"{recipe}: a restore is pending; its volume is not clean")
            self._update(recipe, status=status, volume=volume)
        return self.view(recipe)

    def _update(self, recipe: str, **fields: Any) -> None:
        live = dict(read_json(self.state.live(recipe)) or {})
        live.update({k: v for k, v in fields.items() if v is not None}, live_ts=now_iso())
        write_json(self.state.live(recipe), live)

    def prune_stale(self, enrolled: Iterable[str]) -> dict[str, Any]:
        """Drop volumes, snapshot and registry of canonicals whose recipe is not enrolled."""
        keep = {validate_recipe(r) for r in enrolled}
        pruned, refused = [], {}
        for recipe in self.state.apps():
            if recipe in keep:
                continue
            try:
                self._prune(recipe)
                pruned.append(recipe)
            except Conflict as exc:
                refused[recipe] = exc.message
        return {"pruned": pruned, "refused": refused}

    def _prune(self, recipe: str) -> None:
        with self._lock(recipe):
            record = self._record(recipe)
            manifest = self.warmsnap.manifest(recipe)
            stack = (record or manifest or {}).get("stack")
            if stack:
                services = self.engine.stack_services(stack)
                if services:
                    raise Conflict(f"{recipe} is deployed ({', '.join(services)})")
                volumes = self.engine.stack_volumes(stack)
                self.warmsnap.wait_unused(volumes)
                for volume in volumes:
                    self.engine.remove_volume(volume.name)
            # One rename hides the whole app; a crash mid-delete leaves only trash for recover().
            trash = self.state.root / f"{TRASH_PREFIX}{recipe}-{secrets.token_hex(4)}"
            self.state.app(recipe).rename(trash)
            fsync_dir(self.state.root)
            shutil.rmtree(trash)

    def recover(self) -> list[str]:
        """Clean what crashes left and repair ``canonical.json`` from the committed manifest."""
        actions = []
        if self.state.root.is_dir():
            for trash in self.state.root.glob(f"{TRASH_PREFIX}*"):
                shutil.rmtree(trash)
                actions.append(f"removed {trash.name}")
        for recipe in self.state.apps():
            with self._lock(recipe):
                actions += [f"{recipe}: {a}" for a in self.warmsnap.recover(recipe)]
                manifest = self.warmsnap.manifest(recipe)
                record = self._record(recipe)
                if manifest is not None and (record or {}).get("snapshot_id") != manifest["id"]:
                    self._write_from_manifest(recipe, manifest)
                    actions.append(f"{recipe}: recorded snapshot {manifest['id']}")
                if self.warmsnap.pending_restore(recipe) is not None:
                    actions.append(f"{recipe}: restore pending (retry: cc-ci restore {recipe})")
        return actions
