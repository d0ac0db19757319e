"""Snapshot and restore an app's Docker volumes with GNU tar, crash-safe.

A snapshot is a generation directory ``<app>/snapshots/<id>/`` holding one raw tar per volume and
``manifest.json`` (sha256 and size of every tar, the canonical record it was taken for, the tar
version). It becomes *the* last-good only when the ``<app>/snapshot`` symlink is flipped to it with
one atomic rename; older generations are removed afterwards, and :meth:`Warmsnap.recover` removes
whatever a crash left (generations nothing points to, temp links). So at any instant exactly one
complete snapshot is reachable.

A restore verifies every tar against the manifest first, then writes ``restore-pending.json``
before touching a volume and removes it only when every volume holds exactly the snapshot (emptied,
extracted, synced). A crash in between leaves the marker: snapshots and deploys are refused until a
retried restore succeeds.

Both refuse what they cannot do exactly: a volume of another driver or with driver options (its
data is not in its mountpoint), a mount point inside a volume (tar stays on one filesystem; a clear
must never reach through it), a same-named volume of another stack. A container that holds a volume
(see ``engine``) before, or mounts it during, the archive or extract window makes the snapshot go
or leaves the restore pending. What tar skipped (Unix sockets) is listed in the manifest.

The agent runs as root and tars each volume's mountpoint directly (numeric owners, modes, symlinks,
hard links, sparse files, xattrs and ACLs), which keeps throughput close to plain GNU tar. Callers
hold the app's lock (see ``canonical``); nothing here locks.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import hashlib
import os
import re
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from ccci_core.atomic import TMP_PREFIX, fsync_dir, write_json
from ccci_core.docker_engine import DockerVolumes, Volume, check_volume_name

from .errors import (
    AgentError,
    Conflict,
    EngineError,
    NotFound,
    SnapshotCorrupt,
    StorageFull,
    TarError,
)
from .store import StateDir, read_json, remove_durably

MANIFEST = "manifest.json"
FORMAT = 1
CHUNK = 1 << 20
TAR_COMMON = (
    "--numeric-owner",
    "--xattrs",
    "--xattrs-include=*",
    "--acls",
)
TAR_CREATE = ("--create", "--sparse", "--format=posix", "--one-file-system", *TAR_COMMON)
TAR_EXTRACT = ("--extract", "--same-owner", "--same-permissions", *TAR_COMMON)
TAR_TIMEOUT = 6 * 3600  # a restore of a huge volume; never forever
FILE_MODE = 0o640
FULL = (errno.ENOSPC, errno.EDQUOT)
MOUNTINFO = Path("/proc/self/mountinfo")


@functools.cache
def _libc() -> ctypes.CDLL:
    """Return libc, loaded once in the agent (never after a fork: the loader lock may be held)."""
    return ctypes.CDLL(None, use_errno=True)


def _tar_child() -> Callable[[], None]:
    """Return tar's ``preexec_fn``: die with the agent, so no tar writes on behind a dead agent.

    Only a call into the already loaded libc runs in the child, which is all a forked child of a
    threaded worker may safely do.
    """
    prctl = _libc().prctl

    def die_with_parent() -> None:
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    return die_with_parent


def _syncfs(path: Path) -> None:
    """Flush the filesystem holding ``path`` (tar does not fsync what it extracts)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _libc().syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def now_iso() -> str:
    """Return the current UTC time as ISO 8601."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_snapshot_id() -> str:
    """Return a sortable, unique generation id."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(4)}"


def hash_file(path: Path) -> tuple[str, int]:
    """Return the sha256 and size of ``path``."""
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            digest.update(view[:count])
            size += count
    return digest.hexdigest(), size


def _unescape(field: str) -> str:
    """Decode the octal escapes of ``/proc/self/mountinfo`` (``\\040`` is a space)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mounts_inside(path: Path, mountinfo: Path = MOUNTINFO) -> list[str]:
    """Return the mount points at or inside ``path`` (bind mounts of one filesystem too)."""
    exact = str(path.resolve()).rstrip("/") or "/"
    root = exact.rstrip("/") + "/"
    found = []
    for line in mountinfo.read_text().splitlines():
        fields = line.split(" ")
        if len(fields) > 4:
            point = _unescape(fields[4])
            if point == exact or point.startswith(root):
                found.append(point)
    return sorted(set(found))


def clear_directory(path: Path) -> None:
    """Remove everything inside ``path`` (never following symlinks), keeping ``path`` itself.

    A mount point inside ``path`` is refused before anything is removed: deleting through it would
    delete another filesystem's files.
    """
    inside = mounts_inside(path)
    if inside:
        raise Conflict(
            f"{path} holds mount points ({', '.join(inside)}): refusing to clear through them",
            mounts=inside,
        )
    try:
        _remove_contents(path, os.lstat(path).st_dev)
    except OSError as exc:
        if exc.errno != errno.EBUSY:
            raise
        raise Conflict(f"{exc.filename} became a mount point while {path} was cleared") from exc


def _remove_contents(path: Path | str, device: int) -> None:
    """Remove what ``path`` holds, refusing to enter a directory of another filesystem."""
    for entry in os.scandir(path):
        if entry.is_dir(follow_symlinks=False):
            if entry.stat(follow_symlinks=False).st_dev != device:
                raise Conflict(f"{entry.path} is another filesystem: refusing to clear it")
            _remove_contents(entry.path, device)
            Path(entry.path).rmdir()
        else:
            Path(entry.path).unlink()


def check_plain(volumes: Sequence[Volume]) -> None:
    """Refuse volumes whose data is not plainly their mountpoint's files on one filesystem."""
    for volume in volumes:
        # lstat: a mountpoint replaced by a symlink would lead tar and the clear elsewhere.
        # (A symlink further up, such as a moved Docker data root, is the operator's and fine.)
        try:
            is_dir = stat.S_ISDIR(os.lstat(volume.mountpoint).st_mode)
        except OSError as exc:
            raise Conflict(
                f"volume {volume.name}: its mountpoint {volume.mountpoint} is unusable "
                f"({exc.strerror})",
                volume=volume.name,
            ) from exc
        if not is_dir:
            raise Conflict(
                f"volume {volume.name}: its mountpoint {volume.mountpoint} is not a directory "
                "(a symlink or a file): refusing to touch it",
                volume=volume.name,
            )
        if volume.driver != "local" or volume.options:
            options = ",".join(f"{k}={v}" for k, v in sorted(volume.options.items())) or "none"
            raise Conflict(
                f"volume {volume.name} uses driver {volume.driver!r} with options {options}: "
                "warmsnap keeps only plain local volumes (their data is not in the mountpoint)",
                volume=volume.name,
            )
        inside = mounts_inside(volume.mountpoint)
        if inside:
            raise Conflict(
                f"volume {volume.name} has mount points inside it ({', '.join(inside)}): "
                "its data is not one filesystem; unmount them first",
                volume=volume.name,
                mounts=inside,
            )


def skipped_by_tar(stderr: str) -> list[str]:
    """Return the members tar reported and left out (``socket ignored``)."""
    found = []
    for line in stderr.splitlines():
        head, sep, _ = line.rpartition(": socket ignored")
        if sep:
            found.append(head.split(": ", 1)[-1])
    return found


@contextlib.contextmanager
def _storage(what: str, intact: str) -> Iterator[None]:
    """Turn a full filesystem into StorageFull naming ``what`` and what stayed ``intact``."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in FULL:
            raise
        where = f" ({exc.filename})" if exc.filename else ""
        raise StorageFull(f"no space left writing {what}{where}; {intact}") from exc


def _load_manifest(recipe: str, generation: Path) -> dict[str, Any]:
    """Return the manifest of ``generation`` if it has the shape we wrote, else SnapshotCorrupt."""
    where = f"{recipe}: {generation.name}/{MANIFEST}"
    try:
        manifest = read_json(generation / MANIFEST)
    except AgentError as exc:
        raise SnapshotCorrupt(f"{where} cannot be read: {exc.message}", recipe=recipe) from exc
    try:
        if not isinstance(manifest, dict):
            raise TypeError("not an object")
        if manifest.get("format") != FORMAT:
            raise ValueError(f"unknown format {manifest.get('format')!r}")
        for key, kind in (("id", str), ("stack", str), ("created", str), ("size", int)):
            if not isinstance(manifest.get(key), kind):
                raise TypeError(f"{key} is not a {kind.__name__}")
        if not isinstance(manifest.get("canonical"), dict):
            raise TypeError("canonical is not an object")
        if not isinstance(manifest.get("volumes"), list) or not manifest["volumes"]:
            raise TypeError("volumes is not a list of at least one volume")
        created = datetime.fromisoformat(manifest["created"])
        if created.tzinfo is None:
            raise ValueError(f"created {manifest['created']!r} has no time zone")
        skipped = manifest.get("skipped", [])
        if not isinstance(skipped, list) or not all(isinstance(x, str) for x in skipped):
            raise TypeError("skipped is not a list of strings")
        for entry in manifest["volumes"]:
            check_volume_name(entry["name"], EngineError)
            if not isinstance(entry["sha256"], str) or not isinstance(entry["size"], int):
                raise TypeError(f"volume {entry['name']} has no sha256 or size")
    except (TypeError, ValueError, KeyError, EngineError) as exc:
        reason = exc.message if isinstance(exc, EngineError) else str(exc)
        raise SnapshotCorrupt(f"{where} is malformed: {reason}", recipe=recipe) from exc
    return manifest


@dataclass
class Warmsnap:
    """Snapshot, verify, restore and recover the volumes of canonical apps."""

    state: StateDir
    engine: DockerVolumes
    tar: str = "tar"
    wait_timeout: float = 60.0
    poll_interval: float = 0.5
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic

    # -- reading -------------------------------------------------------------------------------

    def current(self, recipe: str) -> Path | None:
        """Return the generation directory the ``snapshot`` link points to, if any."""
        link = self.state.snapshot_link(recipe)
        if not link.is_symlink():
            return None
        target = (link.parent / link.readlink()).resolve()
        return target if (target / MANIFEST).is_file() else None

    def manifest(self, recipe: str) -> dict[str, Any] | None:
        """Return the manifest of the last-good snapshot of ``recipe``, if any (checked for shape).

        A manifest that cannot be read or has the wrong shape raises SnapshotCorrupt.
        """
        current = self.current(recipe)
        return None if current is None else _load_manifest(recipe, current)

    def verify(self, recipe: str) -> dict[str, Any]:
        """Return the manifest after checking every tar's size and sha256, else raise."""
        current = self.current(recipe)
        manifest = None if current is None else _load_manifest(recipe, current)
        if current is None or manifest is None:
            raise NotFound(f"{recipe} has no snapshot", recipe=recipe)
        for entry in manifest["volumes"]:
            path = current / f"{entry['name']}.tar"
            try:
                digest, size = hash_file(path)
            except OSError as exc:
                raise SnapshotCorrupt(f"{recipe}: cannot read {path.name}: {exc}") from exc
            if (digest, size) != (entry["sha256"], entry["size"]):
                raise SnapshotCorrupt(
                    f"{recipe}: {path.name} does not match its manifest", volume=entry["name"]
                )
        return manifest

    def pending_restore(self, recipe: str) -> dict[str, Any] | None:
        """Return the restore-pending marker of ``recipe``, if a restore did not finish.

        A marker that cannot be read still means pending: its volumes may be half-written.
        """
        path = self.state.restore_pending(recipe)
        try:
            marker = read_json(path)
        except AgentError as exc:
            return {"corrupt": exc.message}
        if marker is None and not path.exists():
            return None
        return dict(marker) if isinstance(marker, dict) else {"corrupt": f"holds {marker!r}"}

    # -- guards --------------------------------------------------------------------------------

    def _require_undeployed(self, stack: str) -> None:
        services = self.engine.stack_services(stack)
        if services:
            raise Conflict(f"stack {stack} is deployed ({', '.join(services)})", services=services)

    def wait_unused(self, volumes: Sequence[Volume]) -> None:
        """Wait until no container (running or stopped) holds any of ``volumes``."""
        deadline = self.monotonic() + self.wait_timeout
        while True:
            holders = self.engine.holders(volumes)
            if not holders:
                return
            if self.monotonic() >= deadline:
                listed = "; ".join(f"{n}: {', '.join(u)}" for n, u in sorted(holders.items()))
                raise Conflict(
                    f"volumes still in use after {self.wait_timeout:g}s ({listed})",
                    holders=holders,
                )
            self.sleep(self.poll_interval)

    def _require_untouched(self, stack: str, volumes: Sequence[Volume], mounts: list[str]) -> None:
        """Refuse when anything deployed, held or mounted the volumes during the window."""
        self._require_undeployed(stack)
        check_plain(volumes)  # a mount made meanwhile means the tars did not read the volume
        holders = self.engine.holders(volumes)
        if mounts or holders:
            listed = mounts + [f"{n}: {', '.join(u)}" for n, u in sorted(holders.items())]
            raise Conflict(
                f"{stack}: a container used its volumes meanwhile ({'; '.join(listed)})",
                holders=holders,
                mounts=mounts,
            )

    # -- snapshot ------------------------------------------------------------------------------

    def snapshot(self, recipe: str, stack: str, record: dict[str, Any]) -> dict[str, Any]:
        """Take a new last-good of ``stack``'s volumes for ``recipe`` and flip it in atomically."""
        if self.pending_restore(recipe) is not None:
            raise Conflict(
                f"{recipe}: a restore is pending; restore first (cc-ci restore {recipe})"
            )
        self._require_undeployed(stack)
        volumes = self.engine.stack_volumes(stack)
        if not volumes:
            raise Conflict(f"stack {stack} has no volumes: there is nothing to snapshot")
        check_plain(volumes)
        app = self.state.app(recipe)
        previous = self.current(recipe)
        intact = f"the previous snapshot {previous.name} is intact" if previous else "no snapshot"
        generations = self.state.snapshots(recipe)
        snapshot_id = new_snapshot_id()
        gen = generations / snapshot_id
        with _storage(f"snapshot {snapshot_id} of {recipe}", intact):
            generations.mkdir(mode=0o750, parents=True, exist_ok=True)
            gen.mkdir(mode=0o750)
            try:
                # Watched from before the last holder check: no instant is left unseen.
                with self.engine.watch_mounts(volumes) as watch:
                    self.wait_unused(volumes)
                    entries = [self._tar_volume(v, gen / f"{v.name}.tar") for v in volumes]
                # Someone attached while we read: the tars may be torn, so this generation goes.
                self._require_untouched(stack, volumes, watch.mounts)
                manifest = {
                    "format": FORMAT,
                    "id": snapshot_id,
                    "created": now_iso(),
                    "recipe": recipe,
                    "stack": stack,
                    "canonical": record,
                    "tar": self._tar_version(),
                    "volumes": entries,
                    "size": sum(e["size"] for e in entries),
                    "skipped": [f"{e['name']}:{p}" for e in entries for p in e["skipped"]],
                }
                write_json(gen / MANIFEST, manifest)
                fsync_dir(generations)
            except BaseException:
                shutil.rmtree(gen, ignore_errors=True)
                raise
        self._flip(app, snapshot_id)
        self._drop_other_generations(recipe, keep=snapshot_id)
        return manifest

    def _tar_volume(self, volume: Volume, target: Path) -> dict[str, Any]:
        """Stream ``tar c`` of a volume into ``target``, hashing on the way; return its entry."""
        digest = hashlib.sha256()
        size = 0
        argv = [self.tar, *TAR_CREATE, f"--directory={volume.mountpoint}", "--file=-", "."]
        # A 1 MiB pipe read into one reused buffer keeps this copy within a few % of plain tar.
        read_end, write_end = os.pipe()
        with contextlib.suppress(OSError):
            fcntl.fcntl(read_end, fcntl.F_SETPIPE_SZ, CHUNK)
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with tempfile.TemporaryFile() as errors, os.fdopen(fd, "wb", buffering=0) as out:
            try:
                proc = subprocess.Popen(
                    argv, stdout=write_end, stderr=errors, preexec_fn=_tar_child()
                )
            except OSError as exc:
                os.close(read_end)
                raise TarError(f"cannot run {self.tar}: {exc}", argv=argv) from exc
            finally:
                os.close(write_end)
            try:
                while count := os.readv(read_end, [buffer]):
                    digest.update(view[:count])
                    out.write(view[:count])
                    size += count
            except BaseException:
                proc.kill()  # never leave tar blocked on a pipe nobody reads
                raise
            finally:
                os.close(read_end)
                code = proc.wait()
            os.fsync(out.fileno())
            stderr = self._check_tar(argv, code, errors)
        return {
            "name": volume.name,
            "file": target.name,
            "size": size,
            "sha256": digest.hexdigest(),
            "skipped": skipped_by_tar(stderr),
        }

    def _check_tar(self, argv: list[str], code: int, errors: IO[bytes]) -> str:
        """Return tar's stderr, or raise TarError when it failed."""
        errors.seek(0)
        stderr = errors.read().decode(errors="replace")
        # GNU tar exits 1 when a file changed while being read: the volume was not idle.
        if code != 0:
            tail = stderr[-2000:].strip()
            raise TarError(f"tar exited {code}: {tail}", argv=argv, returncode=code)
        return stderr

    def _tar_version(self) -> str:
        try:
            done = subprocess.run(
                [self.tar, "--version"], capture_output=True, check=False, timeout=30
            )
        except (OSError, subprocess.SubprocessError):
            return "?"
        return done.stdout.decode(errors="replace").splitlines()[0] if done.stdout else "?"

    def _flip(self, app: Path, snapshot_id: str) -> None:
        """Point ``<app>/snapshot`` at ``snapshots/<id>`` with one rename (the commit point)."""
        tmp = app / f"{TMP_PREFIX}snapshot.{secrets.token_hex(4)}"
        tmp.symlink_to(Path("snapshots") / snapshot_id)
        tmp.replace(app / "snapshot")
        fsync_dir(app)

    def _drop_other_generations(self, recipe: str, keep: str) -> list[str]:
        dropped: list[str] = []
        generations = self.state.snapshots(recipe)
        if not generations.is_dir():
            return dropped
        for entry in generations.iterdir():
            if entry.name != keep:
                shutil.rmtree(
                    entry
                ) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
                dropped.append(entry.name)
        if dropped:
            fsync_dir(generations)
        return dropped

    # -- restore -------------------------------------------------------------------------------

    def restore(self, recipe: str) -> dict[str, Any]:
        """Replace the volumes of ``recipe``'s stack by its last-good snapshot, exactly."""
        manifest = self.verify(recipe)
        current = self.current(recipe)
        assert current is not None  # noqa: S101 - verify() raised otherwise
        stack = manifest["stack"]
        self._require_undeployed(stack)
        present = {v.name: v for v in self.engine.stack_volumes(stack)}
        wanted = [e["name"] for e in manifest["volumes"]]
        missing = [name for name in wanted if name not in present]
        for name in missing:
            # Never clear a same-named volume someone else owns: only this stack's.
            other = self.engine.volume(name)
            if other is not None:
                owner = f"stack {other.stack}" if other.stack else "no stack"
                raise Conflict(
                    f"volume {name} exists but is labelled for {owner}, not {stack}: "
                    "refusing to clear it",
                    volume=name,
                )
        check_plain(list(present.values()))
        for name in missing:
            present[name] = self.engine.create_volume(name, stack)
        volumes = list(present.values())
        with self.engine.watch_mounts(volumes) as watch:
            self.wait_unused(volumes)
            with _storage(f"the restore-pending marker of {recipe}", "no volume was touched"):
                write_json(
                    self.state.restore_pending(recipe),
                    {"snapshot": manifest["id"], "volumes": wanted, "since": now_iso()},
                )
            for name in wanted:
                volume = present[name]
                clear_directory(volume.mountpoint)
                self._untar(recipe, current / f"{name}.tar", volume)
                _syncfs(volume.mountpoint)
        # A holder that came during the extract may have written: the marker stays, retry later.
        self._require_untouched(stack, volumes, watch.mounts)
        # A volume the known-good version did not have belongs to the version that touched it.
        extra = sorted(set(present) - set(wanted))
        for name in extra:
            self.engine.remove_volume(name)
        remove_durably(self.state.restore_pending(recipe))
        return {"snapshot": manifest["id"], "volumes": wanted, "removed": extra}

    def _untar(self, recipe: str, archive: Path, volume: Volume) -> None:
        argv = [self.tar, *TAR_EXTRACT, f"--directory={volume.mountpoint}", f"--file={archive}"]
        with tempfile.TemporaryFile() as errors:
            try:
                proc = subprocess.run(
                    argv,
                    stdout=subprocess.DEVNULL,
                    stderr=errors,
                    check=False,
                    timeout=TAR_TIMEOUT,
                    preexec_fn=_tar_child(),
                )
            except (OSError, subprocess.SubprocessError) as exc:  # missing, or over TAR_TIMEOUT
                raise TarError(f"{self.tar} did not run to its end: {exc}", argv=argv) from exc
            try:
                self._check_tar(argv, proc.returncode, errors)
            except TarError as exc:
                check_plain([volume])  # a mount that appeared meanwhile is the cause, not the tar
                if "No space left on device" in exc.message:
                    raise StorageFull(
                        f"volume {volume.name} is full: {exc.message}; the restore is pending"
                    ) from exc
                # The archive matched its sha256 yet does not extract: it was written corrupt.
                raise SnapshotCorrupt(
                    f"{recipe}: {archive.name} does not extract ({exc.message}); "
                    "the restore is pending",
                    volume=volume.name,
                ) from exc

    # -- recovery ------------------------------------------------------------------------------

    def recover(self, recipe: str) -> list[str]:
        """Remove what a crash left for ``recipe`` (temp links, unreferenced generations)."""
        app = self.state.app(recipe)
        actions = []
        for entry in app.iterdir():
            if entry.name.startswith(TMP_PREFIX):
                entry.unlink() if entry.is_symlink() or not entry.is_dir() else shutil.rmtree(entry)
                actions.append(f"removed {entry.name}")
        link = self.state.snapshot_link(recipe)
        # Keep whatever the link names, complete or not: only never-committed generations go.
        keep = link.readlink().name if link.is_symlink() else ""
        if link.is_symlink() and self.current(recipe) is None:
            # Cannot happen by construction (a target is dropped only after the flip); say so.
            actions.append("snapshot link points to no complete generation (kept for inspection)")
        actions += [f"dropped generation {g}" for g in self._drop_other_generations(recipe, keep)]
        if actions:
            fsync_dir(app)
        with contextlib.suppress(OSError):
            for entry in self.state.snapshots(recipe).iterdir():
                for leftover in entry.glob(f"{TMP_PREFIX}*"):
                    leftover.unlink()
        return actions
