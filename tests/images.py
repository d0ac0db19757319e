"""Build the test images locally: no registry is reachable from CI.

The base image is a root filesystem holding Debian's static busybox (``busybox-static``) and a
symlink per applet, ``docker import``ed. Tests derive their recipe images from it with
``docker build`` (``FROM`` a local image needs no registry).
"""

from __future__ import annotations

import io
import subprocess
import tarfile
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
