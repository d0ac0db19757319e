"""Turn Drone's cancel (SIGTERM) into an exception the run unwinds through, except in teardown.

While a teardown runs it is shielded: a SIGTERM then is noted and the teardown finishes (Drone
sends SIGKILL after its grace period; what a SIGKILL leaves is recognisable by its run hex).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from .errors import Cancelled


class Cancellation:
    """Install a SIGTERM handler for the duration of a ``with`` block."""

    def __init__(self, say: Callable[[str], None] = print) -> None:
        self.say = say
        self.shielded = 0
        self.requested = False
        self._previous: Any = None

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.requested = True
        if self.shielded:
            self.say(f"received signal {signum} during teardown; finishing the teardown first")
            return
        raise Cancelled(f"cancelled by signal {signum}")

    def __enter__(self) -> Cancellation:
        # Signals reach only the main thread; a run driven from another thread (tests) has none.
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)

    @contextmanager
    def shield(self) -> Iterator[None]:
        """Defer cancellation until the block ends (teardown must finish)."""
        self.shielded += 1
        try:
            yield
        finally:
            self.shielded -= 1
