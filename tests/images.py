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


# -- a Debian base with Python, for the plugin image (tests/deploy/test_image.py) ---------------

DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# What the plugin image needs of its base: Python with venv (pip), git, CA certificates.
DEBIAN_PACKAGES = ("python3", "python3-venv", "git", "ca-certificates", "tini")
# Dropped after debootstrap: nothing at run time reads them.
DEBIAN_TRIM = ("var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man")


def python_base_recipe(docker_cli: Path) -> dict[str, object]:
    """Return what the Python base image is made of: its tag is a hash of this."""
    return {
        "suite": DEBIAN_SUITE,
        "mirror": DEBIAN_MIRROR,
        "packages": DEBIAN_PACKAGES,
        "trim": DEBIAN_TRIM,
        "docker_cli": hashlib.sha256(docker_cli.read_bytes()).hexdigest(),
        "recipe": 1,  # bump when the steps below change
    }


def ensure_python_base_image(docker_cli: Path, scratch: Path) -> str:
    """Build a Debian base with Python, git and ``docker_cli`` unless the engine has it.

    ``debootstrap --variant=minbase`` into ``scratch``, trimmed, the host's Docker CLI (the one
    ``.ci/run`` checked for ``docker stack config``: the swarm deployer's) copied in, ``docker
    import``ed. The tag is a hash of its recipe, so a run reuses what an earlier run built.
    """
    recipe = json.dumps(python_base_recipe(docker_cli), sort_keys=True).encode()
    tag = f"ccci-test/python-base:{hashlib.sha256(recipe).hexdigest()[:16]}"
    if image_exists(tag):
        return tag
    root = scratch / "rootfs"
    subprocess.run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(DEBIAN_PACKAGES)}",
            DEBIAN_SUITE,
            str(root),
            DEBIAN_MIRROR,
        ],
        check=True,
        capture_output=True,
        timeout=1800,
    )
    for folder in DEBIAN_TRIM:
        subprocess.run(["rm", "-rf", str(root / folder)], check=True, timeout=120)
        (root / folder).mkdir(parents=True)
    cli = root / "usr/local/bin/docker"
    cli.write_bytes(docker_cli.read_bytes())
    cli.chmod(0o755)
    archive = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
    subprocess.run(
        ["docker", "import", "--change", 'CMD ["/bin/bash"]', "-", tag],
        stdin=archive.stdout,
        check=True,
        capture_output=True,
        timeout=600,
    )
    assert 0 == archive.wait(), "tar of the root filesystem failed"
    subprocess.run(["rm", "-rf", str(root)], check=True, timeout=300)
    return tag
