"""Ask Drone about builds still pending, in one place however many gunicorn workers there are.

Every worker starts a :class:`Poller` thread; the one that holds an exclusive ``flock`` on
``<state dir>/poller.lock`` polls (its pid is in the file), the others only try for the lock every
interval. The kernel
drops the lock with its holder, so when that worker dies or is recycled another takes over. The
webhook is the fast path; this is the fallback for a webhook not configured or lost, and the
clock of the verdict timeout.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_NAME = "poller.lock"


class PollLock:
    """The exclusive, non-blocking lock one poller holds for as long as its process lives."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock if no other process holds it; return whether this one holds it."""
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        os.ftruncate(fd, 0)  # say who polls, for an operator (and a test) to read
        os.write(fd, f"{os.getpid()}\n".encode())
        return True

    def release(self) -> None:
        """Let another process poll."""
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


class Poller:
    """A daemon thread running ``poll()`` every ``interval_s`` while it holds the lock."""

    def __init__(self, poll: Callable[[], object], lock: PollLock, interval_s: float) -> None:
        self.poll = poll
        self.lock = lock
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start polling in the background (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ccci-poller", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop after the current pass and give the lock up."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.lock.release()

    def once(self) -> bool:
        """Run one pass if this process holds the lock; return whether it ran."""
        try:
            if not self.lock.acquire():
                return False
        except OSError as exc:
            log.error("poller cannot open %s: %s", self.lock.path, exc)
            return False
        try:
            counts = self.poll()
        except Exception:  # the thread must outlive one bad pass
            log.exception("poll pass failed")
            return True
        if counts:
            log.info("poll pass: %s", counts)
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            self.once()
            self._stop.wait(self.interval_s)
