"""Write and fingerprint volume contents for the warmsnap tests (as root, on the mountpoint)."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
from pathlib import Path
from typing import Any

SPARSE_SIZE = 64 << 20


def clear(path: Path) -> None:
    """Remove everything inside ``path``."""
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def write_dataset(root: Path, which: str, bulk: int = 1 << 20) -> None:
    """Fill ``root`` with dataset ``which`` ("a" or "b"): every file kind a database dir holds."""
    clear(root)
    rng = random.Random(which)  # noqa: S311 - reproducible test data
    os.chown(root, 70, 70)  # like a postgres data directory
    root.chmod(0o750)
    owned = root / "owned.conf"
    owned.write_bytes(f"setting = {which}\n".encode())
    os.chown(owned, 1234, 5678)
    owned.chmod(0o640)
    os.setxattr(owned, "user.ccci", which.encode())
    private = root / "private"
    private.mkdir(mode=0o700)
    os.chown(private, 999, 999)
    (private / "key").write_bytes(rng.randbytes(64))
    (private / "bulk.bin").write_bytes(rng.randbytes(bulk))
    (root / "link").symlink_to("owned.conf")
    (root / "dangling").symlink_to("nowhere/at/all")
    os.link(private / "key", root / "key.hardlink")
    with (root / "sparse.img").open("wb") as handle:
        handle.truncate(SPARSE_SIZE)
        handle.seek(SPARSE_SIZE // 2)
        handle.write(rng.randbytes(4096))
    many = root / "many"
    many.mkdir()
    for i in range(50):
        (many / f"f{i:03d}").write_bytes(rng.randbytes(rng.randrange(1, 3000)))
    if which == "a":
        (root / "only-in-a").write_text("a\n")
    else:
        (root / "added-after-snapshot").write_text("stale\n")
    # Fixed mtimes: rewriting a dataset reproduces it exactly, so fingerprints compare across runs.
    stamp = 1_600_000_000 + ord(which)
    for path in root.rglob("*"):
        os.utime(path, (stamp, stamp), follow_symlinks=False)


def fingerprint(root: Path) -> dict[str, Any]:
    """Return everything a restore must reproduce: types, modes, owners, bytes, links, xattrs."""
    out: dict[str, Any] = {}
    inodes: dict[int, str] = {}
    for folder, dirs, files in os.walk(root):
        for name in sorted(dirs + files) + ([] if folder != str(root) else ["."]):
            path = Path(folder) / name if name != "." else root
            rel = str(path.relative_to(root)) if name != "." else "."
            st = path.lstat()
            entry: dict[str, Any] = {"mode": st.st_mode, "uid": st.st_uid, "gid": st.st_gid}
            if path.is_symlink():
                entry["target"] = str(path.readlink())
            elif path.is_file():
                entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
                entry["size"] = st.st_size
                entry["mtime"] = int(st.st_mtime)
                entry["hardlink_of"] = inodes.setdefault(st.st_ino, rel)
                entry["xattrs"] = {k: os.getxattr(path, k) for k in os.listxattr(path)}
            out[rel] = entry
    return out
