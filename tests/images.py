"""Build the test images locally: no registry is reachable from CI.

The base image is a root filesystem holding Debian's static busybox (``busybox-static``) and a
symlink per applet, ``docker import``ed. Tests derive their recipe images from it with
``docker build`` (``FROM`` a local image needs no registry). The prune tests load images dated in
the past from archives built here (:func:`load_dated_image`).
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
from datetime import UTC, datetime
from pathlib import Path

BUSYBOX = Path("/bin/busybox")
BUSYBOX_IMAGE = "ccci-test/busybox:1"
APPLETS = ("sh", "sleep", "cat", "echo", "ls", "httpd", "wget", "sync", "true", "false", "mkdir")


def _rootfs() -> bytes:
    """Return a tar of a minimal root filesystem around the static busybox."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for folder in ("bin", "tmp", "data", "www", "etc"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if folder == "tmp" else 0o755
            tar.addfile(info)
        tar.add(BUSYBOX, arcname="bin/busybox")
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    return buffer.getvalue()


def image_exists(tag: str) -> bool:
    """Return whether the engine holds ``tag``."""
    done = subprocess.run(["docker", "image", "inspect", tag], capture_output=True, check=False)
    return done.returncode == 0


def ensure_busybox_image(tag: str = BUSYBOX_IMAGE) -> str:
    """Import the busybox base image unless the engine has it; return its tag."""
    if not image_exists(tag):
        subprocess.run(
            ["docker", "import", "--change", 'CMD ["/bin/sh"]', "-", tag],
            input=_rootfs(),
            check=True,
            capture_output=True,
            timeout=120,
        )
    return tag


def _tar(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def load_dated_image(marker: str, created: datetime, tag: str | None = None) -> str:
    """Load a one-layer image whose config dates it ``created``; return its id (``sha256:…``).

    ``docker import`` and ``docker build`` date an image now, and a prune's ``until`` reads that
    date, so an image "older than 24 h" is made by hand: a ``docker save`` archive (manifest, the
    config, one layer tar holding a file with ``marker``, so each marker is its own layer), then
    ``docker load``. Without ``tag`` it is dangling from the start.
    """
    layer = _tar({"marker": marker.encode()})
    when = created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": when,
            "config": {"Cmd": ["/marker"], "Labels": {"ccci.test": marker}},
            "rootfs": {
                "type": "layers",
                "diff_ids": [f"sha256:{hashlib.sha256(layer).hexdigest()}"],
            },
            "history": [{"created": when, "created_by": "cc-ci tests"}],
        }
    ).encode()
    digest = hashlib.sha256(config).hexdigest()
    manifest = [
        {"Config": f"{digest}.json", "RepoTags": [tag] if tag else None, "Layers": ["l/layer.tar"]}
    ]
    archive = _tar(
        {
            f"{digest}.json": config,
            "l/layer.tar": layer,
            "manifest.json": json.dumps(manifest).encode(),
        }
    )
    subprocess.run(["docker", "load", "--quiet"], input=archive, check=True, capture_output=True)
    return f"sha256:{digest}"
