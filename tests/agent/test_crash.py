"""Kill promote and restore with SIGKILL at random instants and at each commit point.

The state must stay sound: one complete snapshot, volumes untouched, restored or marked.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from ccci_agent.canonical import Canonicals
from ccci_agent.errors import Conflict
from ccci_core.atomic import TMP_PREFIX
from ccci_core.docker_engine import STACK_LABEL
from tests.agent.conftest import App
from tests.agent.volumes import fingerprint, write_dataset

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 20
EXTRA_ROUNDS = 10  # at most, when the random kills all fell on one side of the commit point
VERSIONS = {"a": "1.0.0+1.0", "b": "1.1.0+1.1"}
COMMIT = "0123456789abcdef0123456789abcdef01234567"
BULK = 8 << 20  # big enough that tar runs long enough to be hit mid-stream


def _worker(
    canonicals: Canonicals, app: App, *op: str, crash_at: str | None = None
) -> subprocess.Popen[str]:
    env = {**os.environ, **({"CCCI_CRASH_AT": crash_at} if crash_at else {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.agent.crash_worker", str(canonicals.state.root),
         app.recipe, app.domain, *op],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdin is not None
    assert "ready\n" == proc.stdout.readline()
    return proc


def _run_and_time(canonicals: Canonicals, app: App, *op: str) -> float:
    proc = _worker(canonicals, app, *op)
    assert proc.stdin is not None
    assert proc.stdout is not None
    start = time.monotonic()
    proc.stdin.write("go\n")
    proc.stdin.flush()
    assert "done\n" == proc.stdout.readline()
    elapsed = time.monotonic() - start
    assert 0 == proc.wait()
    return elapsed


def _kill_delays(
    rng: random.Random,
    measure: Callable[[], float],
    early: Callable[[], bool],
    late: Callable[[], bool],
) -> Iterator[float]:
    """Yield ROUNDS random kill delays over 1.5 x the measured duration of the operation; then,
    while the kills missed one side of the commit point (``early()``/``late()``: was it hit),
    up to EXTRA_ROUNDS more on the missing side, each after a fresh measurement (the host is
    shared: one measurement can be far off, and the test must land on both sides to prove
    anything)."""
    duration = measure()
    for _ in range(ROUNDS):
        yield rng.uniform(0, duration * 1.5)
    for _ in range(EXTRA_ROUNDS):
        if early() and late():
            return
        duration = measure()
        yield rng.uniform(0, duration * 0.3) if not early() else rng.uniform(duration, duration * 3)


def _kill_after(canonicals: Canonicals, app: App, delay: float, *op: str) -> None:
    proc = _worker(canonicals, app, *op)
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.stdout is not None
    proc.stdout.close()
    proc.stdin.close()


def _killed_at(canonicals: Canonicals, app: App, point: str, *op: str) -> None:
    """Run ``op`` in a worker that SIGKILLs itself at commit point ``point``; it must die there."""
    proc = _worker(canonicals, app, *op, crash_at=point)
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()
    assert -signal.SIGKILL == proc.wait(timeout=300), f"never reached {point}"
    proc.stdout.close()
    proc.stdin.close()


def _leftovers(*mountpoints: Path) -> list[str]:
    """Return what a restore left beside the mountpoints (staging dirs, old data)."""
    return sorted(str(p) for m in mountpoints for p in m.parent.iterdir() if p != m)


def _assert_one_complete_snapshot(canonicals: Canonicals, app: App) -> dict[str, Any]:
    """Exactly one generation, the one the link names, verifying; the registry agrees."""
    generations = sorted(p.name for p in canonicals.state.snapshots(app.recipe).iterdir())
    current = canonicals.warmsnap.current(app.recipe)
    assert current is not None
    assert [current.name] == generations
    app_dir = canonicals.state.app(app.recipe)
    assert [] == [p.name for p in app_dir.iterdir() if p.name.startswith(TMP_PREFIX)]
    manifest = canonicals.warmsnap.verify(app.recipe)
    record = canonicals.view(app.recipe)
    assert (manifest["id"], manifest["canonical"]["version"]) == (
        record["snapshot_id"],
        record["version"],
    )
    return manifest


def test_sigkill_during_promote_leaves_one_complete_snapshot(
    canonicals: Canonicals, app: App
) -> None:
    """After a kill at any instant: one verifiable snapshot, old or new, that restores exactly."""
    rng = random.Random(os.environ.get("CCCI_CRASH_SEED", "promote"))  # noqa: S311 - kill delays
    expected = {}
    for which in ("a", "b"):
        write_dataset(app.mountpoint, which, BULK)
        expected[VERSIONS[which]] = fingerprint(app.mountpoint)
    outcomes: list[str] = []
    versions = []

    def measure() -> float:
        write_dataset(app.mountpoint, "a", BULK)
        return _run_and_time(canonicals, app, "promote", VERSIONS["a"])

    delays = _kill_delays(rng, measure, lambda: "old" in outcomes, lambda: "new" in outcomes)
    for round_, delay in enumerate(delays):
        which = "b" if round_ % 2 == 0 else "a"
        write_dataset(app.mountpoint, which, BULK)
        before = canonicals.warmsnap.manifest(app.recipe)
        assert before is not None

        _kill_after(canonicals, app, delay, "promote", VERSIONS[which])
        canonicals.recover()

        manifest = _assert_one_complete_snapshot(canonicals, app)
        version = manifest["canonical"]["version"]
        versions.append(version)
        outcomes.append("new" if manifest["id"] != before["id"] else "old")
        canonicals.restore(app.recipe)
        assert expected[version] == fingerprint(app.mountpoint)
    # The kills must land both before and after the commit point, or the test proved nothing
    # (which version each outcome holds is the commit-point test's to pin down exactly).
    assert {"old", "new"} == set(outcomes), outcomes
    assert set(versions) <= {VERSIONS["a"], VERSIONS["b"]}, versions


def test_sigkill_during_restore_leaves_volume_old_restored_or_marked(
    canonicals: Canonicals, app: App
) -> None:
    """After a kill the volume is old, restored, or marked and refused; recover leaves nothing."""
    rng = random.Random(os.environ.get("CCCI_CRASH_SEED", "restore"))  # noqa: S311 - kill delays
    write_dataset(app.mountpoint, "a", BULK)
    known_good = fingerprint(app.mountpoint)
    canonicals.promote(app.recipe, app.domain, VERSIONS["a"], COMMIT)
    write_dataset(app.mountpoint, "b", BULK)
    touched = fingerprint(app.mountpoint)
    outcomes: list[str] = []
    delays = _kill_delays(
        rng,
        lambda: _run_and_time(canonicals, app, "restore"),
        lambda: "old" in outcomes,
        lambda: bool({"marked", "restored"} & set(outcomes)),
    )
    for delay in delays:
        write_dataset(app.mountpoint, "b", BULK)

        _kill_after(canonicals, app, delay, "restore")
        canonicals.recover()
        assert [] == _leftovers(app.mountpoint)

        _assert_one_complete_snapshot(canonicals, app)
        if canonicals.warmsnap.pending_restore(app.recipe) is not None:
            outcomes.append("marked")
            assert "dirty" == canonicals.view(app.recipe)["volume"]
            with pytest.raises(Conflict, match="restore is pending"):
                canonicals.snapshot(app.recipe)
        else:
            now = fingerprint(app.mountpoint)
            assert now in (touched, known_good)
            outcomes.append("old" if now == touched else "restored")
        canonicals.restore(app.recipe)
        assert known_good == fingerprint(app.mountpoint)
        assert canonicals.warmsnap.pending_restore(app.recipe) is None
    # Kills must land before the marker and after it, or the test proved nothing. The marked
    # window is short now (around the exchanges): the commit-point test below hits it exactly.
    assert "old" in outcomes, outcomes
    assert {"marked", "restored"} & set(outcomes), outcomes


@pytest.mark.parametrize("point", ["archived", "manifest", "flipped"])
def test_sigkill_at_each_promote_commit_point(canonicals: Canonicals, app: App, point: str) -> None:
    """Killed at a commit point of a promote: before the flip the old snapshot, after it the new."""
    write_dataset(app.mountpoint, "a", BULK)
    known = {VERSIONS["a"]: fingerprint(app.mountpoint)}
    canonicals.promote(app.recipe, app.domain, VERSIONS["a"], COMMIT)
    write_dataset(app.mountpoint, "b", BULK)
    known[VERSIONS["b"]] = fingerprint(app.mountpoint)

    _killed_at(canonicals, app, point, "promote", VERSIONS["b"])
    canonicals.recover()

    manifest = _assert_one_complete_snapshot(canonicals, app)
    expected = VERSIONS["b"] if point == "flipped" else VERSIONS["a"]
    assert expected == manifest["canonical"]["version"]
    canonicals.restore(app.recipe)
    assert known[expected] == fingerprint(app.mountpoint)


RESTORE_POINTS = ["staged", "marked", "exchanged 1", "exchanged 2", "restored"]


@pytest.mark.parametrize("point", RESTORE_POINTS)
def test_sigkill_at_each_restore_commit_point(
    canonicals: Canonicals, app: App, docker_client: docker.DockerClient, point: str
) -> None:
    """Killed at each commit point of a two-volume restore: never half-swapped without a marker."""
    second = docker_client.volumes.create(f"{app.stack}_more", labels={STACK_LABEL: app.stack})
    mountpoints = [app.mountpoint, Path(second.attrs["Mountpoint"])]
    for mountpoint, which in zip(mountpoints, "ab", strict=True):
        write_dataset(mountpoint, which, BULK)
    canonicals.promote(app.recipe, app.domain, VERSIONS["a"], COMMIT)
    known_good = [fingerprint(m) for m in mountpoints]
    for mountpoint, which in zip(mountpoints, "ba", strict=True):
        write_dataset(mountpoint, which, BULK)
    touched = [fingerprint(m) for m in mountpoints]
    manifest = canonicals.warmsnap.manifest(app.recipe)
    assert manifest is not None
    order = [e["name"] for e in manifest["volumes"]]  # the order the restore exchanges them in
    names = {app.volume: 0, second.name: 1}
    crash_at = (
        point if not point.startswith("exchanged") else f"exchanged {order[int(point[-1]) - 1]}"
    )

    _killed_at(canonicals, app, crash_at, "restore")
    canonicals.recover()

    assert [] == _leftovers(*mountpoints)
    now = [fingerprint(m) for m in mountpoints]
    pending = canonicals.warmsnap.pending_restore(app.recipe)
    if point == "staged":  # everything proven and extracted, nothing swapped: untouched
        assert (None, touched) == (pending, now)
    elif point == "restored":
        assert (None, known_good) == (pending, now)
    else:  # the marker covers a half-swapped set of volumes
        assert pending is not None
        assert "dirty" == canonicals.view(app.recipe)["volume"]
        swapped = {names[n] for n in order[: int(point[-1])]} if point != "marked" else set()
        assert [known_good[i] if i in swapped else touched[i] for i in (0, 1)] == now
        with pytest.raises(Conflict, match="restore is pending"):
            canonicals.snapshot(app.recipe)
    canonicals.restore(app.recipe)
    canonicals.warmsnap.wait_reaped()
    assert known_good == [fingerprint(m) for m in mountpoints]
    assert canonicals.warmsnap.pending_restore(app.recipe) is None
    assert [] == _leftovers(*mountpoints)
