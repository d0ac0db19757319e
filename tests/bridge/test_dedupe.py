"""The shared dedupe store: keys claimed once, cooldowns per user."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from ccci_bridge.dedupe import RETENTION_S, Store
from ccci_core.errors import ConfigError


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        """Return the current fake time."""
        return self.now


def test_keys_are_claimed_once(tmp_path: Path) -> None:
    """A second claim sharing any key fails; a fresh key succeeds."""
    store = Store(tmp_path)

    assert store.claim(["delivery:a", "comment:1"])
    assert not store.claim(["delivery:b", "comment:1"])
    assert not Store(tmp_path).claim(["delivery:a"])
    assert store.claim(["delivery:b"])


def test_old_keys_are_forgotten(tmp_path: Path) -> None:
    """Keys older than the retention are pruned."""
    clock = Clock()
    store = Store(tmp_path, clock)
    store.claim(["k"])

    clock.now += RETENTION_S + 1

    assert store.claim(["k"])


def test_cooldown(tmp_path: Path) -> None:
    """A user waits out the cooldown; others do not; releasing ends it."""
    clock = Clock()
    store = Store(tmp_path, clock)

    assert 0 == store.take_cooldown("gitea:alice", 60)
    clock.now += 20
    assert 40 == store.take_cooldown("gitea:alice", 60)
    assert 0 == store.take_cooldown("gitea:bob", 60)
    store.release_cooldown("gitea:alice")
    assert 0 == store.take_cooldown("gitea:alice", 60)
    clock.now += 60
    assert 0 == store.take_cooldown("gitea:alice", 60)


def _claim(path: str, key: str, out: multiprocessing.Queue[bool]) -> None:
    out.put(Store(Path(path)).claim([key]))


def test_processes_race_for_one_key(tmp_path: Path) -> None:
    """Of many processes claiming the same key at once, exactly one wins."""
    ctx = multiprocessing.get_context("fork")
    out: multiprocessing.Queue[bool] = ctx.Queue()
    Store(tmp_path)
    procs = [ctx.Process(target=_claim, args=(str(tmp_path), "same", out)) for _ in range(8)]
    for proc in procs:
        proc.start()
    results = sorted(out.get() for _ in procs)
    for proc in procs:
        proc.join()

    assert [False] * 7 + [True] == results


def test_unusable_state_dir_is_a_config_error(tmp_path: Path) -> None:
    """A state dir that cannot be created names CCCI_BRIDGE_STATE_DIR."""
    (tmp_path / "file").write_text("")

    with pytest.raises(ConfigError) as caught:
        Store(tmp_path / "file" / "state")

    assert "CCCI_BRIDGE_STATE_DIR" == caught.value.variable
