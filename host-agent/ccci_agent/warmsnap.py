"""Snapshot and restore an app's Docker volumes with GNU tar, crash-safe, at about tar's speed.

A snapshot is a generation directory ``<app>/snapshots/<id>/`` holding one raw tar per volume and
``manifest.json`` (sha256 and size of every tar, the canonical record it was taken for, the tar
version). It becomes *the* last-good only when the ``<app>/snapshot`` symlink is flipped to it with
one atomic rename; older generations are removed afterwards, and :meth:`Warmsnap.recover` removes
whatever a crash left (generations nothing points to, temp links). So at any instant exactly one
complete snapshot is reachable. tar writes each tar file itself; the file is hashed right behind
its writes (one pass, from the page cache) and its writeback started as it grows.

A restore extracts every volume's tar into a staging directory beside its mountpoint, hashing the
bytes tar reads on the way (splice(2) and tee(2): no copy through Python), so the whole snapshot is
proven intact before a volume changes. Then it writes ``restore-pending.json``, exchanges each
staging directory with its mountpoint (``renameat2(RENAME_EXCHANGE)``, atomic per volume) and
removes the marker; the swapped-out old data is deleted afterwards, in the background. A crash
before the marker changed no volume; after it, the marker stays: snapshots and deploys are refused
until a retried restore succeeds. Leftover staging directories go with the next restore or recover.

Both refuse what they cannot do exactly: a volume of another driver or with driver options (its
data is not in its mountpoint), a mount point inside a volume (tar stays on one filesystem; a clear
must never reach through it), a same-named volume of another stack. A container that holds a volume
(see ``engine``) before, or mounts it during, the archive or extract window makes the snapshot go
or leaves the restore pending. What tar skipped (Unix sockets) is listed in the manifest.

The agent runs as root and tars each volume's mountpoint directly (numeric owners, modes, symlinks,
hard links, sparse files, xattrs and ACLs). Callers hold the app's lock (see ``canonical``);
nothing here locks. ``checkpoint`` is called at each commit point (the crash tests kill there).
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
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
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
STAGING = (
    f"{TMP_PREFIX}restore-"  # beside a volume's mountpoint: a restore being staged, or old data
)
WRITEBACK = 8 << 20
FOLLOW_POLL = 0.002  # s: how long the hash waits when it has caught up with tar
SYNC_FILE_RANGE_WRITE = 2
AT_FDCWD = -100
RENAME_EXCHANGE = 2


@functools.cache
def _libc() -> ctypes.CDLL:
    """Return libc, loaded once in the agent (never after a fork: the loader lock may be held).

    Calls through it release the GIL, so a tee or splice blocks only its own thread.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.tee.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_size_t, ctypes.c_uint]
    libc.tee.restype = ctypes.c_ssize_t
    libc.sync_file_range.argtypes = [
        ctypes.c_int,
        ctypes.c_int64,
        ctypes.c_int64,
        ctypes.c_uint,
    ]
    libc.renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    return libc


def _os_error(what: str, path: Path | None = None) -> OSError:
    """Return the OSError of the libc call that just failed."""
    code = ctypes.get_errno()
    return OSError(code, f"{what}: {os.strerror(code)}", None if path is None else str(path))


def _tee(source: int, target: int, count: int) -> int:
    """Duplicate up to ``count`` bytes of pipe ``source`` into pipe ``target`` (tee(2)).

    Nothing is copied and ``source`` keeps the bytes; 0 means its writer closed it.
    """
    while True:
        done = int(_libc().tee(source, target, count, 0))
        if done >= 0:
            return done
        error = _os_error("tee")
        if error.errno != errno.EINTR:
            raise error


def _start_writeback(fd: int, offset: int, count: int) -> None:
    """Start writing a range of ``fd`` to disk now, so the final fsync waits only for the tail."""
    _libc().sync_file_range(fd, offset, count, SYNC_FILE_RANGE_WRITE)  # advisory: errors ignored


def exchange(one: Path, other: Path) -> None:
    """Swap two directories atomically (renameat2 RENAME_EXCHANGE): the commit of a restore."""
    if _libc().renameat2(AT_FDCWD, bytes(one), AT_FDCWD, bytes(other), RENAME_EXCHANGE) != 0:
        raise _os_error(f"cannot exchange {one} and {other}", other)


def _pipe() -> tuple[int, int]:
    """Return a pipe of CHUNK bytes (where the kernel allows it): fewer, larger moves."""
    read_end, write_end = os.pipe()
    with contextlib.suppress(OSError):
        fcntl.fcntl(read_end, fcntl.F_SETPIPE_SZ, CHUNK)
    return read_end, write_end


class _Hasher:
    """Hash what a pipe carries, in a thread (hashlib and readv release the GIL).

    The bytes are only hashed here, never written on: the data path is tee(2) and splice(2).
    """

    def __init__(self) -> None:
        self.read_end, self.write_end = _pipe()
        self._digest = hashlib.sha256()
        self._size = 0
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="warmsnap-sha256", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        try:
            while count := os.readv(self.read_end, [buffer]):
                self._digest.update(view[:count])
                self._size += count
        except BaseException as exc:  # handed to the caller by result()
            self._error = exc
        finally:
            os.close(self.read_end)  # a tee into a dead hasher fails (EPIPE), never blocks

    def close(self) -> None:
        """Close the write end: the thread hashes what is left and ends."""
        if self.write_end >= 0:
            os.close(self.write_end)
            self.write_end = -1

    def result(self) -> tuple[str, int]:
        """Return the sha256 and size of everything written to the pipe."""
        self.close()
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._digest.hexdigest(), self._size


def _follow(path: Path, proc: subprocess.Popen[bytes]) -> tuple[str, int]:
    """Hash ``path`` while ``proc`` appends to it, until it exits; start its writeback as it goes.

    A read at the end of what was written returns 0: wait a moment and read on. Once the writer
    has exited, everything it wrote is visible, so reading to the end then covers the whole file.
    """
    digest = hashlib.sha256()
    size = flushed = 0
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    fd = os.open(path, os.O_RDONLY)
    try:
        done = False
        while True:
            count = os.readv(fd, [buffer])
            if count:
                digest.update(view[:count])
                size += count
                if size - flushed >= WRITEBACK:
                    _start_writeback(fd, flushed, size - flushed)
                    flushed = size
            elif done:
                return digest.hexdigest(), size
            else:
                done = proc.poll() is not None  # then one more read to the end
                if not done:
                    time.sleep(FOLLOW_POLL)
    finally:
        os.close(fd)


@dataclass
class _Tee:
    """Move a stream from a pipe to ``sink`` by splice(2), tee(2)-ing it into a hasher.

    A sink that closes early (an extract that failed) is replaced by /dev/null: the hash still
    covers the whole stream.
    """

    hasher: _Hasher
    sink: int
    devnull: int = -1

    def move(self, source: int, limit: int = CHUNK) -> int:
        """Move up to ``limit`` bytes from pipe ``source``; return how many (0: end of stream)."""
        count = _tee(source, self.hasher.write_end, limit)
        left = count
        while left:
            try:
                left -= os.splice(source, self.sink, left)
            except BrokenPipeError:
                if self.devnull >= 0:
                    raise
                self.devnull = self.sink = os.open(os.devnull, os.O_WRONLY)
        return count

    def close(self) -> None:
        """Close the /dev/null this tee may have opened."""
        if self.devnull >= 0:
            os.close(self.devnull)
            self.devnull = -1


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


def _remove_tree(path: Path) -> None:
    """Remove ``path`` and what it holds, never through a mount point (see clear_directory).

    Another remover of the same tree (a reaper in another worker) may race this one: whoever
    meets a file already gone stops, the other finishes.
    """
    with contextlib.suppress(FileNotFoundError):
        if path.is_dir() and not path.is_symlink():
            clear_directory(path)
            path.rmdir()
        else:
            path.unlink()


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
    # Called at each commit point with its name: the crash tests kill the process there.
    checkpoint: Callable[[str], None] = lambda point: None
    reap_in_background: bool = True
    _reapers: list[threading.Thread] = field(default_factory=list, repr=False)

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
                self.checkpoint("archived")
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
                self.checkpoint("manifest")
            except BaseException:
                shutil.rmtree(gen, ignore_errors=True)
                raise
        self._flip(app, snapshot_id)
        self.checkpoint("flipped")
        self._retire_generations(recipe, keep=snapshot_id)
        return manifest

    def _retire_generations(self, recipe: str, keep: str) -> None:
        """Move every generation but ``keep`` out of ``snapshots/`` at once; delete them after.

        A rename is instant; deleting a 1 GB tar is not (ext4 frees its extents, and with
        ``discard`` trims them), so the files go in the background like a restore's old data.
        What a dead agent did not delete is a temp entry that recover removes.
        """
        app, generations = self.state.app(recipe), self.state.snapshots(recipe)
        retired = []
        for entry in generations.iterdir():
            if entry.name != keep:
                retired.append(app / f"{TMP_PREFIX}retired-{entry.name}")
                entry.rename(retired[-1])
        if retired:
            fsync_dir(generations)
            fsync_dir(app)
            self._reap(retired)

    def _tar_volume(self, volume: Volume, target: Path) -> dict[str, Any]:
        """Run ``tar c`` of a volume into ``target``, hashing the file as tar writes it.

        tar writes the file itself (its stdout); meanwhile this thread reads the file right behind
        tar's writes from the page cache, hashes it and starts its writeback to disk, so the data
        is read once, hashed once and never copied through a pipe, and the final fsync waits only
        for the tail. What is hashed is the file's own content, read back to its end.
        """
        argv = [self.tar, *TAR_CREATE, f"--directory={volume.mountpoint}", "--file=-", "."]
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        with tempfile.TemporaryFile() as errors, os.fdopen(fd, "wb", buffering=0) as out:
            try:
                proc = subprocess.Popen(argv, stdout=out, stderr=errors, preexec_fn=_tar_child())
            except OSError as exc:
                raise TarError(f"cannot run {self.tar}: {exc}", argv=argv) from exc
            try:
                digest, size = _follow(target, proc)
            except BaseException:
                proc.kill()
                raise
            finally:
                code = proc.wait()
            os.fsync(out.fileno())
            stderr = self._check_tar(argv, code, errors)
            if size != os.fstat(out.fileno()).st_size:
                raise TarError(f"{target.name} changed behind its hash", argv=argv)
        return {
            "name": volume.name,
            "file": target.name,
            "size": size,
            "sha256": digest,
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
        """Replace the volumes of ``recipe``'s stack by its last-good snapshot, exactly.

        Each volume's tar is extracted into a staging directory beside its mountpoint while it is
        hashed; only when every tar matched its manifest and extracted are the directories
        exchanged with the mountpoints (one atomic rename each), so a corrupt snapshot, a full
        disk or a tar that fails leaves every volume as it was. The old data then goes.
        """
        current = self.current(recipe)
        manifest = None if current is None else _load_manifest(recipe, current)
        if current is None or manifest is None:
            raise NotFound(f"{recipe} has no snapshot", recipe=recipe)
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
        staged: dict[str, Path] = {}
        with self.engine.watch_mounts(volumes) as watch:
            self.wait_unused(volumes)
            self.wait_reaped()
            self._drop_staging(volumes)  # what a crashed restore left
            try:
                for entry in manifest["volumes"]:
                    volume = present[entry["name"]]
                    staged[volume.name] = self._stage(recipe, current, entry, volume)
                for path in {os.lstat(p).st_dev: p for p in staged.values()}.values():
                    _syncfs(path)
                self.checkpoint("staged")
                with _storage(f"the restore-pending marker of {recipe}", "no volume was touched"):
                    write_json(
                        self.state.restore_pending(recipe),
                        {"snapshot": manifest["id"], "volumes": wanted, "since": now_iso()},
                    )
                self.checkpoint("marked")
                # A holder or a mount that came while we staged: the volume may have been
                # written, so the marker stays (retry once it is gone); nothing was swapped yet.
                self._require_untouched(stack, volumes, [])
            except BaseException:
                for path in staged.values():
                    _remove_tree(path)
                raise
            for name in wanted:
                try:
                    exchange(staged[name], present[name].mountpoint)
                except OSError as exc:
                    raise AgentError(
                        f"cannot swap the restored data into volume {name} ({exc.strerror}): "
                        "its filesystem must support renameat2(RENAME_EXCHANGE); "
                        "the restore is pending",
                        volume=name,
                    ) from exc
                fsync_dir(present[name].mountpoint.parent)
                self.checkpoint(f"exchanged {name}")
        # A holder that came during the window may have written: the marker stays, retry later
        # (the old data beside the mountpoints goes with the next restore or recover).
        self._require_untouched(stack, volumes, watch.mounts)
        # A volume the known-good version did not have belongs to the version that touched it.
        extra = sorted(set(present) - set(wanted))
        for name in extra:
            self.engine.remove_volume(name)
        remove_durably(self.state.restore_pending(recipe))
        self.checkpoint("restored")
        self._reap(list(staged.values()))
        return {"snapshot": manifest["id"], "volumes": wanted, "removed": extra}

    def _reap(self, paths: list[Path]) -> None:
        """Remove old data or generations, in the background unless ``reap_in_background`` is off.

        Deleting a tree of small files costs as much as extracting it; the restore is complete
        without it (the old data is outside every volume), so nobody waits for it. What a dead
        agent did not remove goes with the next restore of the volume or the next start.
        """
        if not self.reap_in_background:
            for path in paths:
                _remove_tree(path)
            return

        def reap() -> None:
            for path in paths:
                with contextlib.suppress(OSError, Conflict):  # left for the next restore
                    _remove_tree(path)

        thread = threading.Thread(target=reap, name="warmsnap-reap", daemon=True)
        self._reapers = [t for t in self._reapers if t.is_alive()] + [thread]
        thread.start()

    def wait_reaped(self) -> None:
        """Wait until the old data of every restore so far is removed."""
        for thread in self._reapers:
            thread.join()

    def _stage(self, recipe: str, current: Path, entry: dict[str, Any], volume: Volume) -> Path:
        """Extract one volume's tar beside its mountpoint, proving its sha256; return the dir."""
        staging = volume.mountpoint.parent / f"{STAGING}{secrets.token_hex(4)}"
        archive = current / f"{entry['name']}.tar"
        with _storage(f"the restore of {volume.name}", "no volume was touched"):
            staging.mkdir(mode=0o700)
        try:
            digest, size, code, stderr = self._untar(archive, staging)
        except BaseException:
            _remove_tree(staging)
            raise
        if (digest, size) != (entry["sha256"], entry["size"]):
            _remove_tree(staging)
            raise SnapshotCorrupt(
                f"{recipe}: {archive.name} does not match its manifest; no volume was touched",
                volume=entry["name"],
            )
        if code != 0:
            _remove_tree(staging)
            tail = stderr[-2000:].strip()
            if "No space left on device" in stderr:
                raise StorageFull(
                    f"no space left to stage the restore of {volume.name} ({tail}); "
                    "no volume was touched"
                )
            # The archive matched its sha256 yet does not extract: it was written corrupt.
            raise SnapshotCorrupt(
                f"{recipe}: {archive.name} does not extract (tar exited {code}: {tail}); "
                "no volume was touched",
                volume=volume.name,
            )
        return staging

    def _untar(self, archive: Path, directory: Path) -> tuple[str, int, int, str]:
        """Extract ``archive`` into ``directory``, hashing the very bytes tar reads.

        splice(2) moves the file into a pipe, tee(2) hands it to the hasher, splice(2) into tar's
        stdin. Return the sha256 and size of the whole file, tar's exit code and its stderr.
        """
        argv = [self.tar, *TAR_EXTRACT, f"--directory={directory}", "--file=-"]
        feed_read, feed_write = _pipe()
        tar_read, tar_write = _pipe()
        source = -1
        with tempfile.TemporaryFile() as errors:
            try:
                source = os.open(archive, os.O_RDONLY)
                proc = subprocess.Popen(
                    argv,
                    stdin=tar_read,
                    stdout=subprocess.DEVNULL,
                    stderr=errors,
                    preexec_fn=_tar_child(),
                )
            except OSError as exc:
                for fd in (source, feed_read, feed_write, tar_write):
                    if fd >= 0:
                        os.close(fd)
                if source < 0:
                    raise SnapshotCorrupt(f"cannot read {archive.name}: {exc}") from exc
                raise TarError(f"cannot run {self.tar}: {exc}", argv=argv) from exc
            finally:
                os.close(tar_read)
            hasher = _Hasher()
            tee = _Tee(hasher, tar_write)
            try:
                while count := os.splice(source, feed_write, CHUNK):
                    while count:
                        count -= tee.move(feed_read, count)
                os.close(tar_write)
                tar_write = -1
                code = proc.wait(timeout=TAR_TIMEOUT)
            except BaseException as exc:
                proc.kill()
                proc.wait()
                if isinstance(exc, subprocess.TimeoutExpired):
                    raise TarError(f"{self.tar} ran over {TAR_TIMEOUT} s", argv=argv) from exc
                raise
            finally:
                for fd in (source, feed_read, feed_write, tar_write):
                    if fd >= 0:
                        os.close(fd)
                tee.close()
                digest, size = hasher.result()
            errors.seek(0)
            stderr = errors.read().decode(errors="replace")
        return digest, size, code, stderr

    def _drop_staging(self, volumes: Sequence[Volume]) -> list[str]:
        """Remove what a restore left beside the mountpoints (a staging dir, or old data)."""
        dropped = []
        for volume in volumes:
            with contextlib.suppress(FileNotFoundError):
                for entry in volume.mountpoint.parent.iterdir():
                    if entry.name.startswith(STAGING):
                        _remove_tree(entry)
                        dropped.append(f"{volume.name}/{entry.name}")
        return dropped

    # -- recovery ------------------------------------------------------------------------------

    def recover(self, recipe: str) -> list[str]:
        """Remove what a crash left for ``recipe`` (temp links, unreferenced generations)."""
        self.wait_reaped()
        app = self.state.app(recipe)
        actions = []
        for entry in app.iterdir():
            if entry.name.startswith(TMP_PREFIX):
                _remove_tree(entry)  # a reaper of this process may be deleting it too
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
        return actions + self._recover_staging(recipe)

    def _recover_staging(self, recipe: str) -> list[str]:
        """Remove what an interrupted restore left beside the volumes of ``recipe``'s stack."""
        try:
            manifest = self.manifest(recipe)
            if manifest is None:
                return []
            volumes = self.engine.stack_volumes(manifest["stack"])
        except (SnapshotCorrupt, EngineError) as exc:
            return [f"restore leftovers not looked for: {exc.message}"]
        return [
            f"removed {path} (an interrupted restore's)" for path in self._drop_staging(volumes)
        ]
