"""Build a PostgreSQL image without a registry: Debian packages in a debootstrap root, imported.

The recipe is the measured one of DESIGN.md: ``debootstrap --variant=minbase bookworm``, a
``policy-rc.d`` that exits 101 (no service starts in the chroot), ``create_main_cluster = false``
(the app's first boot runs initdb itself), ``apt-get install postgresql`` with /proc mounted, a
trim, ``docker import``. The tag carries a hash of the recipe, so an image is built once per
recipe and reused. ``docker import`` cannot set STOPSIGNAL: services give ``stop_signal: SIGINT``
(a fast shutdown, so a warm reattach never needs crash recovery).

    .venv/bin/python bench/pg_image.py     # prints the tag (builds it first when missing)
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

MIRROR = "http://deb.debian.org/debian"
SUITE = "bookworm"
PG_BIN = "/usr/lib/postgresql/15/bin"
STEPS = (
    f"debootstrap --variant=minbase {SUITE} ROOT {MIRROR}",
    "printf '#!/bin/sh\\nexit 101\\n' > ROOT/usr/sbin/policy-rc.d",
    "mkdir -p ROOT/etc/postgresql-common/createcluster.d",
    "echo 'create_main_cluster = false' > ROOT/etc/postgresql-common/createcluster.d/ccci.conf",
    "chroot ROOT apt-get install -y --no-install-recommends postgresql",
    "rm -rf ROOT/var/cache/apt/archives/*.deb ROOT/var/lib/apt/lists/* ROOT/usr/share/doc",
    "rm -rf ROOT/usr/share/man ROOT/usr/share/locale ROOT/usr/sbin/policy-rc.d",
)
CHANGES = (f"ENV PATH={PG_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)


def tag() -> str:
    """Return the image tag for this recipe (a hash of its steps and changes)."""
    digest = hashlib.sha256("\n".join((*STEPS, *CHANGES)).encode()).hexdigest()[:16]
    return f"ccci-bench/postgres:{digest}"


def exists(name: str) -> bool:
    """Return whether the engine has image ``name``."""
    done = subprocess.run(["docker", "image", "inspect", name], capture_output=True, check=False)
    return done.returncode == 0


def ensure() -> str:
    """Build the image unless the engine has it; return its tag."""
    name = tag()
    if exists(name):
        return name
    with tempfile.TemporaryDirectory(prefix="ccci-pg-", dir="/var/tmp") as tmp:
        root = Path(tmp) / "root"
        proc = root / "proc"
        try:
            for n, step in enumerate(STEPS):
                if n == 4:  # apt-get in the chroot wants /proc
                    subprocess.run(["mount", "-t", "proc", "proc", str(proc)], check=True)
                script = step.replace("ROOT", str(root))
                subprocess.run(["sh", "-ec", script], check=True, capture_output=True, timeout=900)
                if n == 4:
                    subprocess.run(["umount", str(proc)], check=True)
        finally:
            subprocess.run(["umount", str(proc)], capture_output=True, check=False)
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        changes = [arg for change in CHANGES for arg in ("--change", change)]
        subprocess.run(["docker", "import", *changes, "-", name], stdin=tar.stdout, check=True,
                       capture_output=True, timeout=900)  # fmt: skip
        if tar.wait() != 0:
            raise SystemExit("pg_image: tar of the root failed")
    return name


if __name__ == "__main__":
    print(ensure())
    sys.exit(0)
