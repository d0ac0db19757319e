"""The poller: one holder of the lock polls; the others wait; the lock dies with its holder."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from ccci_bridge.poller import LOCK_NAME, Poller, PollLock
from tests.bridge.stub import HANG_GUARD_S


def test_only_one_lock_holder_polls(tmp_path: Path) -> None:
    """Two pollers on one state dir (as two workers): one polls, until it lets go."""
    passes: list[str] = []
    first = Poller(lambda: passes.append("first"), PollLock(tmp_path), 60)
    second = Poller(lambda: passes.append("second"), PollLock(tmp_path), 60)

    assert (True, False, True) == (first.once(), second.once(), first.once())
    assert f"{os.getpid()}\n" == (tmp_path / LOCK_NAME).read_text()
    first.lock.release()
    assert second.once()
    assert ["first", "first", "second"] == passes


def test_the_lock_is_free_again_when_its_holder_is_killed(tmp_path: Path) -> None:
    """A worker SIGKILLed while holding the lock: the kernel drops it, another worker polls."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from ccci_bridge.poller import PollLock;"
            f"assert PollLock(Path({str(tmp_path)!r})).acquire(); print('held', flush=True);"
            "time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert "held" == holder.stdout.readline().strip()
    assert not PollLock(tmp_path).acquire()
    assert f"{holder.pid}\n" == (tmp_path / LOCK_NAME).read_text()
    holder.kill()
    holder.wait()

    assert PollLock(tmp_path).acquire()


def test_a_failing_pass_does_not_stop_the_thread(tmp_path: Path) -> None:
    """An exception in one pass is logged; the loop goes on to the next pass."""
    calls = 0
    again = threading.Event()

    def poll() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("Drone exploded")
        again.set()

    poller = Poller(poll, PollLock(tmp_path), 0.01)
    poller.start()
    assert again.wait(HANG_GUARD_S)  # only so a broken loop fails instead of hanging
    poller.stop()
    assert calls >= 2
    assert PollLock(tmp_path).acquire()  # stop() let the lock go
