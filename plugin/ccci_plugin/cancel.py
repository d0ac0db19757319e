"""Turn Drone's cancel (SIGTERM) into an exception the run unwinds through, except in teardown.

The first SIGTERM (or SIGINT, for an operator at a terminal) raises :class:`Cancelled` wherever
the run is, so the step it interrupts fails and the lane goes on to its teardown. A signal that
arrives while a teardown is shielded, or after the cancel was already delivered, is only noted:
the teardown and the lease release finish. The lane calls :meth:`Cancellation.check` once its
teardown is done, so a cancel noted there still stops the run (red, no promotion).

Drone sends SIGKILL after its grace period; what a SIGKILL leaves is recognisable by its run hex.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from .errors import Cancelled

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Cancellation:
    """Install the cancel handlers for the duration of a ``with`` block."""

    def __init__(self, say: Callable[[str], None] = print) -> None:
        self.say = say
        self.shielded = 0
        self.requested: str | None = None  # the first signal's name, once one arrived
        self.delivered = False  # Cancelled was raised once already
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        self.requested = self.requested or name
        if self.shielded:
            self.say(f"received {name} during teardown; finishing the teardown first")
            return
        if self.delivered:
            self.say(f"received {name} again; the run is already stopping")
            return
        self.delivered = True
        raise Cancelled(f"cancelled by {name}")

    def __enter__(self) -> Cancellation:
        # Signals reach only the main thread; a run driven from another thread (tests) has none.
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *_exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)

    @contextmanager
    def shield(self) -> Iterator[None]:
        """Defer cancellation until the block ends (teardown must finish)."""
        self.shielded += 1
        try:
            yield
        finally:
            self.shielded -= 1

    def check(self) -> None:
        """Raise Cancelled if a cancel arrived at any time so far (delivered or deferred)."""
        if self.requested is not None:
            self.delivered = True
            raise Cancelled(f"cancelled by {self.requested}")
