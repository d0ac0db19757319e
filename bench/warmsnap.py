"""Measure warmsnap snapshot/restore throughput beside plain GNU tar on the same Docker volume.

Usage: ``make bench`` (or ``python bench/warmsnap.py [MB]``, default 512 MB of data). Needs root and
the Docker engine; creates one uniquely named volume and a temporary state directory, removes both.
The data looks like a database directory: a few large files and many 8 kB ones (no sparse file:
plain tar would store its holes as zeros and flatter warmsnap).

``tar`` is plain ``tar c``/``tar x`` (its output may still sit in the page cache); ``tar+sync`` is
the same followed by sync(2), the fair comparison for a durable snapshot. warmsnap additionally
hashes (sha256) and fsyncs the tar and the manifest; a restore verifies every tar first, empties
the volume, extracts and syncs it. Ratios above 1 mean warmsnap was faster.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import docker

from ccci_agent.canonical import Canonicals
from ccci_agent.errors import EngineError
from ccci_agent.store import StateDir
from ccci_core.docker_engine import STACK_LABEL, SdkDocker
from ccci_core.names import canonical_app

BASE_DOMAIN = "ci.example.net"
COMMIT = "0" * 40
ROUNDS = 5


def fill(root: Path, megabytes: int) -> None:
    """Write ``megabytes`` of incompressible data: 70% in big files, 30% in 8 kB files."""
    rng = random.Random(1)  # noqa: S311 - benchmark data
    big = megabytes * 7 // 10
    for i in range(max(1, big // 64)):
        (root / f"big-{i}.dat").write_bytes(rng.randbytes(min(64, big) << 20))
    small = root / "base" / "16384"
    small.mkdir(parents=True)
    for i in range((megabytes - big) * 128):
        (small / str(i)).write_bytes(rng.randbytes(8192))


Step = tuple[Callable[[], object], Callable[[], object]]  # (timed run, untimed set-up)


def best(*steps: Step) -> list[float]:
    """Return the best wall time of each step over ``ROUNDS`` rounds, run interleaved.

    Interleaving exposes every step to the same background load (the host is shared), and every
    run starts with nothing dirty in the page cache, so no step pays for the previous one's
    writeback (warmsnap's fsync/syncfs would otherwise flush it).
    """
    times: list[list[float]] = [[] for _ in steps]
    for _ in range(ROUNDS):
        for (run, before), spent in zip(steps, times, strict=True):
            before()
            os.sync()
            start = time.perf_counter()
            run()
            spent.append(time.perf_counter() - start)
    return [min(spent) for spent in times]


def nothing() -> None:
    """Set up nothing."""


def main(argv: list[str]) -> int:
    """Run the benchmark and print MB/s side by side."""
    megabytes = int(argv[0]) if argv else int(os.environ.get("BENCH_MB", "512"))
    recipe = f"bench-{uuid.uuid4().hex[:8]}"
    name = canonical_app(recipe, BASE_DOMAIN, suffix=4)
    client = docker.from_env()
    volume = client.volumes.create(f"{name.stack}_data", labels={STACK_LABEL: name.stack})
    mountpoint = Path(volume.attrs["Mountpoint"])
    work = Path(tempfile.mkdtemp(prefix="ccci-bench-", dir="/var/tmp"))
    try:
        fill(mountpoint, megabytes)
        canonicals = Canonicals(
            StateDir(work / "state"), SdkDocker.from_env(EngineError), BASE_DOMAIN
        )
        plain_tar, plain_dir = work / "plain.tar", work / "plain"

        def tar_c() -> None:
            subprocess.run(["tar", "-C", str(mountpoint), "-cf", str(plain_tar), "."], check=True)

        def fresh_dir() -> None:
            shutil.rmtree(plain_dir, ignore_errors=True)
            plain_dir.mkdir()

        def tar_x() -> None:
            subprocess.run(["tar", "-C", str(plain_dir), "-xf", str(plain_tar)], check=True)

        def rm_tar() -> None:
            plain_tar.unlink(missing_ok=True)

        snapshot = best(
            (tar_c, rm_tar),
            (lambda: (tar_c(), os.sync()), rm_tar),
            (lambda: canonicals.promote(recipe, name.domain, "1.0.0+1", COMMIT), nothing),
        )
        restore = best(
            (tar_x, fresh_dir),
            (lambda: (tar_x(), os.sync()), fresh_dir),
            (lambda: canonicals.restore(recipe), nothing),
        )
        size_mb = plain_tar.stat().st_size / 1e6
        print(f"data: {size_mb:.0f} MB in {sum(1 for _ in mountpoint.rglob('*'))} entries (MB/s)")
        print(f"{'':10}{'tar':>8}{'tar+sync':>10}{'warmsnap':>10}{'vs tar':>8}{'vs tar+sync':>13}")
        for label, (plain, durable, ours) in (("snapshot", snapshot), ("restore", restore)):
            speeds = "".join(
                f"{size_mb / t:{w}.0f}" for t, w in ((plain, 8), (durable, 10), (ours, 10))
            )
            print(f"{label:10}{speeds}{plain / ours:8.2f}{durable / ours:13.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        volume.remove(force=True)
        client.close()
    return 0


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("bench: run as root (warmsnap reads volume mountpoints)")
    sys.exit(main(sys.argv[1:]))
