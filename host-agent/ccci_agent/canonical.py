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

A deploy on the canonical begins with :meth:`Canonicals.attach`, which restores the known-good first
when the volume is not clean and marks it dirty: the rule lives here, not in the lanes. A dirty
volume or a pending restore must be restored before it can become a known-good again: a re-take is
refused ("restore first"), and so is a promote, except the one a green cold run makes from its own
deploy. That run attaches with a **seed** (:meth:`Canonicals.seed`), deploys the canonical at the
green version, and promotes with the seed's token. Any other dirtying (a quick run's attach, a
mark) voids the seed.

A state file that cannot be read is reported, never fatal: the canonical reads as ``corrupt`` with
the file named (and an alert), a live state that cannot be read as dirty, a restore-pending marker
as pending; the other canonicals are served as usual.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import shutil
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from ccci_core.atomic import fsync_dir, write_json
from ccci_core.docker_engine import DockerVolumes
from ccci_core.errors import InvalidName
from ccci_core.names import canonical_app, stack_name, validate_recipe
from ccci_core.versions import Version

from .alerts import Alerts
from .errors import (
    AgentError,
    Conflict,
    NotFound,
    SnapshotCorrupt,
    StateCorrupt,
    StorageFull,
)
from .store import StateDir, quarantine, read_json, remove_durably
from .warmsnap import Warmsnap, now_iso

DeployState = Literal["idle", "deployed"]  # the wire field is still "status"
VolumeState = Literal["clean", "dirty"]
_COMMIT_RE = re.compile(r"[0-9a-f]{7,64}")
TRASH_PREFIX = "_trash-"
_SUFFIX_MAX = 63
LIVE_KEYS = frozenset({"status", "volume", "seed", "live_ts"})  # what live.json may overlay
RECORD_KEYS = ("recipe", "domain", "stack", "version", "commit")


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

    def __init__(
        self,
        state: StateDir,
        engine: DockerVolumes,
        base_domain: str,
        alerts: Alerts | None = None,
        **snap: Any,
    ) -> None:
        self.state = state
        self.engine = engine
        self.base_domain = base_domain
        self.alerts = alerts if alerts is not None else Alerts(state)
        self.warmsnap = Warmsnap(state, engine, **snap)

    def _lock(self, recipe: str) -> Any:
        self.state.app(recipe)  # validates, reserved names included, before a lock file exists
        return self.state.lock(f"app-{recipe}")

    def _alert(self, kind: str, recipe: str, error: AgentError, path: Path | None = None) -> None:
        """Raise one alert per occurrence of a broken file (it is met on every read).

        The key names the file's identity (inode, mtime, size), so an acknowledged occurrence stays
        quiet while the same bytes stay broken, and a file broken anew alerts again.
        """
        identity = ""
        if path is not None:
            with contextlib.suppress(OSError):
                st = path.stat()
                identity = f"{path}:{st.st_ino}:{st.st_mtime_ns}:{st.st_size}"
        key = f"{kind}:{recipe}:{error.message}:{identity}"
        self.alerts.raise_once(kind, recipe, key, error.message, {})

    def _read(self, recipe: str, path: Any) -> Any:
        try:
            return read_json(path)
        except AgentError as exc:
            error = StateCorrupt(
                f"{recipe}: {path.name} cannot be read ({exc.message})", path=str(path)
            )
            self._alert("state-corrupt", recipe, error, path)
            raise error from exc

    def _corrupt(self, recipe: str, message: str, path: Path) -> StateCorrupt:
        error = StateCorrupt(message)
        self._alert("state-corrupt", recipe, error, path)
        return error

    def _live(self, recipe: str) -> dict[str, Any]:
        """Return the live state; one that cannot be read reads as dirty (the safe side).

        Only the live keys count (a live.json never renames a stack), and a volume that is not
        exactly ``clean`` is dirty.
        """
        path = self.state.live(recipe)
        try:
            live = self._read(recipe, path)
        except StateCorrupt as exc:
            return {"volume": "dirty", "live_corrupt": exc.message}
        if live is None and not path.exists():
            return {}
        if not isinstance(live, dict) or live.get("volume", "clean") not in ("clean", "dirty"):
            error = self._corrupt(
                recipe, f"{recipe}: live.json holds {live!r}, not a live state", path
            )
            return {"volume": "dirty", "live_corrupt": error.message}
        return {k: v for k, v in live.items() if k in LIVE_KEYS}

    def _record(self, recipe: str) -> dict[str, Any] | None:
        path = self.state.canonical(recipe)
        record = self._read(recipe, path)
        if record is None and not path.exists():
            return None
        if not isinstance(record, dict) or not all(
            isinstance(record.get(k), str) for k in RECORD_KEYS
        ):
            raise self._corrupt(recipe, f"{recipe}: canonical.json is not a registry entry", path)
        return {**record, **self._live(recipe)}

    def _manifest(self, recipe: str) -> dict[str, Any] | None:
        try:
            return self.warmsnap.manifest(recipe)
        except SnapshotCorrupt as exc:
            current = self.warmsnap.current(recipe)
            self._alert("snapshot-corrupt", recipe, exc, current and current / "manifest.json")
            raise

    def view(self, recipe: str) -> dict[str, Any]:
        """Return the registry entry of ``recipe`` with its snapshot and restore state.

        What cannot be read is reported in ``corrupt`` (and alerted), never raised.
        """
        corrupt: list[str] = []
        try:
            record = self._record(recipe)
        except StateCorrupt as exc:
            corrupt.append(exc.message)
            record = {"recipe": recipe, "status": "corrupt", "volume": "dirty"}
        if record is None:
            raise NotFound(f"{recipe} is not a canonical", recipe=recipe)
        if "live_corrupt" in record:
            corrupt.append(record.pop("live_corrupt"))
        seed = record.pop("seed", None)
        record["seeding"] = seed.get("version") if isinstance(seed, dict) else None
        try:
            manifest = self._manifest(recipe)
        except SnapshotCorrupt as exc:
            corrupt.append(exc.message)
            manifest = None
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
                "skipped": list(manifest.get("skipped", [])),
            }
        record["snapshot"] = snapshot
        record["restore_pending"] = pending
        record["corrupt"] = corrupt
        if pending is not None or record.get("volume") != "clean":
            record["volume"] = "dirty"
        return record

    def all(self) -> list[dict[str, Any]]:
        """Return every registry entry (a broken one is reported as corrupt, not raised)."""
        return [self.view(r) for r in self.state.apps() if self.state.canonical(r).is_file()]

    def _require_clean_or_seeded(
        self, recipe: str, seed: str | None, version: str, commit: str
    ) -> None:
        """Refuse to make a touched volume (or another version) the known-good, but when seeded."""
        if self.warmsnap.pending_restore(recipe) is not None:
            raise Conflict(
                f"{recipe}: a restore is pending; restore first (cc-ci restore {recipe})"
            )
        record = self._record(recipe)
        if record is None:
            return  # a first promote: nothing known-good to launder
        expected = record.get("seed")
        if (
            seed is not None
            and isinstance(expected, dict)
            and secrets.compare_digest(str(expected.get("token", "")), seed)
            and expected.get("version") == version
        ):
            return
        if record.get("volume") != "clean":
            raise Conflict(
                f"{recipe}: its volume is dirty (another version touched it); restore first "
                f"(cc-ci restore {recipe}) — only a green cold run's own deploy may promote it"
            )
        if (version, commit) != (record["version"], record["commit"]):
            raise Conflict(
                f"{recipe}: the volume holds {record['version']}; promoting {version} needs the "
                "seed of the green cold run that deployed it (POST canonicals/R/seed)"
            )

    def attach(self, recipe: str, *, seed_version: str | None = None) -> dict[str, Any]:
        """Begin a deploy on the canonical: restore the known-good first when the volume is not
        clean, then mark it deployed and dirty; answer what was done (``restored``).

        This is the rule every lane follows (a canonical is never deployed on data another version
        touched), kept here so that no caller has to know it. With ``seed_version`` the deploy is a
        re-seed by a green cold run: the answer's ``seed`` is the token its promote must carry.
        """
        if seed_version is not None:
            Version.parse(seed_version)
        with self._lock(recipe):
            record = self._record(recipe)
            if record is None:
                raise NotFound(f"{recipe} is not a canonical", recipe=recipe)
            restored = None
            if self.warmsnap.pending_restore(recipe) is not None or record.get("volume") != "clean":
                restored = self._restore_locked(recipe)
            seed, token = None, None
            if seed_version is not None:
                token = secrets.token_hex(16)
                seed = {"token": token, "version": seed_version, "since": now_iso()}
            self._update(recipe, status="deployed", volume="dirty", seed=seed)
        view = self.view(recipe)
        view["restored"] = restored
        if token is not None:
            view["seed"] = token
        return view

    def seed(self, recipe: str, version: str) -> dict[str, Any]:
        """Begin a re-seed at ``version`` (an attach that hands out the promote's token)."""
        return self.attach(recipe, seed_version=version)

    def promote(
        self, recipe: str, domain: str, version: str, commit: str, seed: str | None = None
    ) -> dict[str, Any]:
        """Snapshot the (undeployed) canonical of ``recipe`` and record it as known-good.

        A canonical whose volume is dirty is promoted only with the token of its current seed.
        """
        self.state.app(recipe)
        validate_canonical_domain(recipe, domain, self.base_domain)
        Version.parse(version)
        validate_commit(commit)
        stack = stack_name(domain)
        with self._lock(recipe):
            self._require_clean_or_seeded(recipe, seed, version, commit)
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
            try:
                self._write_from_manifest(recipe, manifest)
            except OSError as exc:
                # The flip is the commit point: the snapshot is in, only its record is not yet.
                raise StorageFull(
                    f"{recipe}: snapshot {manifest['id']} is committed but its registry entry "
                    f"could not be written ({exc.strerror}); it is repaired at the agent's next "
                    "start",
                    snapshot=manifest["id"],
                ) from exc
        return self.view(recipe)

    def snapshot(self, recipe: str) -> dict[str, Any]:
        """Re-take the known-good of ``recipe`` at its recorded version (refused while dirty)."""
        record = self._record(recipe)
        if record is None:
            raise NotFound(f"{recipe} is not a canonical; promote it first", recipe=recipe)
        return self.promote(recipe, record["domain"], record["version"], record["commit"])

    def _write_from_manifest(
        self, recipe: str, manifest: dict[str, Any], *, promoted: bool = True
    ) -> None:
        """Record the committed snapshot; a promote also resets the live state (``promoted``).

        A repair at start keeps live.json: whether the volume is clean is not the manifest's to say.
        """
        record = dict(manifest["canonical"])
        record.update(
            status="idle", volume="clean", snapshot_id=manifest["id"], ts=manifest["created"]
        )
        write_json(self.state.canonical(recipe), record)
        if promoted:
            remove_durably(self.state.live(recipe))  # the new known-good is what the volume holds

    def restore(self, recipe: str) -> dict[str, Any]:
        """Restore the known-good data of ``recipe``; its volume is clean afterwards."""
        with self._lock(recipe):
            if self._record(recipe) is None:
                raise NotFound(f"{recipe} is not a canonical", recipe=recipe)
            result = self._restore_locked(recipe)
        view = self.view(recipe)
        view["restored"] = result
        return view

    def _restore_locked(self, recipe: str) -> dict[str, Any]:
        try:
            result = self.warmsnap.restore(recipe)
        except SnapshotCorrupt as exc:
            current = self.warmsnap.current(recipe)
            self._alert("snapshot-corrupt", recipe, exc, current and current / "manifest.json")
            raise
        self._update(recipe, volume="clean", status="idle", seed=None)
        return result

    def mark(
        self, recipe: str, *, status: DeployState | None = None, volume: VolumeState | None = None
    ) -> dict[str, Any]:
        """Record the canonical's deploy status and whether its live volume is clean."""
        with self._lock(recipe):
            if self._record(recipe) is None:
                raise NotFound(f"{recipe} is not a canonical", recipe=recipe)
            if volume == "clean" and self.warmsnap.pending_restore(recipe) is not None:
                raise Conflict(f"{recipe}: a restore is pending; its volume is not clean")
            if volume == "clean" and self._live(recipe).get("volume", "clean") != "clean":
                raise Conflict(f"{recipe}: its volume is dirty; only a restore makes it clean")
            # Whoever dirties the volume now is not the seeded deploy: the seed is void.
            self._update(
                recipe,
                status=status if status is not None else ...,
                volume=volume if volume is not None else ...,
                seed=None if volume is not None else ...,
            )
        return self.view(recipe)

    def _update(self, recipe: str, **fields: Any) -> None:
        """Merge ``fields`` into the live state (None removes a field, ``...`` keeps it)."""
        live = self._live(recipe)
        corrupt = live.pop("live_corrupt", None)
        for key, value in fields.items():
            if value is None:
                live.pop(key, None)
            elif value is not ...:
                live[key] = value
        live["live_ts"] = now_iso()
        if corrupt is not None:
            quarantine(self.state.live(recipe))
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
            except AgentError as exc:  # one broken or busy canonical never stops the others
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
        """Clean what crashes left and repair ``canonical.json`` from the committed manifest.

        Never raises for one canonical: what cannot be repaired is reported (and alerted), so the
        agent always starts and serves the others.
        """
        actions = []
        if self.state.root.is_dir():
            for trash in self.state.root.glob(f"{TRASH_PREFIX}*"):
                shutil.rmtree(trash)
                actions.append(f"removed {trash.name}")
        for recipe in self.state.apps():
            try:
                with self._lock(recipe):
                    actions += [f"{recipe}: {a}" for a in self._recover(recipe)]
            except (AgentError, OSError) as exc:
                reason = exc.message if isinstance(exc, AgentError) else str(exc)
                actions.append(f"{recipe}: not recovered: {reason}")
        return actions

    def _recover(self, recipe: str) -> list[str]:
        actions = list(self.warmsnap.recover(recipe))
        try:
            manifest = self._manifest(recipe)
        except SnapshotCorrupt as exc:
            return [*actions, f"snapshot corrupt, kept for inspection: {exc.message}"]
        try:
            record = self._record(recipe)
        except StateCorrupt as exc:
            if manifest is None:
                return [*actions, f"{exc.message}; no snapshot to repair it from"]
            moved = quarantine(self.state.canonical(recipe))
            record = None
            actions.append(f"{exc.message}; moved to {moved.name}")
        if manifest is not None and (record or {}).get("snapshot_id") != manifest["id"]:
            self._write_from_manifest(recipe, manifest, promoted=False)
            actions.append(f"recorded snapshot {manifest['id']}")
        if self.warmsnap.pending_restore(recipe) is not None:
            actions.append(f"restore pending (retry: cc-ci restore {recipe})")
        return actions
