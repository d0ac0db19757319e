"""Write files atomically and durably: temp file in the same directory, fsync, rename, fsync dir.

A reader sees the old content or the new, never a mix, and a crash at any instant leaves one of the
two plus, at worst, a ``.tmp-*`` file that the owner of the directory may clean up.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

TMP_PREFIX = ".tmp-"


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (a rename is durable only after this)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(path: Path, data: bytes, mode: int = 0o640) -> None:
    """Write ``data`` to ``path`` atomically and durably."""
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_json(path: Path, value: Any) -> None:
    """Write ``value`` as JSON to ``path`` atomically."""
    write_bytes(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode())


def write_text(path: Path, text: str, mode: int = 0o640) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically and durably."""
    write_bytes(path, text.encode("utf-8"), mode)
