"""Cancellation: SIGTERM unwinds the run once, never through a teardown, and is never lost."""

from __future__ import annotations

import signal

import pytest

from ccci_plugin.cancel import Cancellation
from ccci_plugin.errors import Cancelled


@pytest.fixture
def said() -> list[str]:
    """The lines the cancellation printed."""
    return []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_raises_cancelled(said: list[str], signum: signal.Signals) -> None:
    """Outside a teardown the first signal raises Cancelled naming it."""
    with Cancellation(said.append), pytest.raises(Cancelled) as caught:
        signal.raise_signal(signum)
    assert f"cancelled by {signum.name}" == str(caught.value)


def test_a_signal_during_teardown_lets_it_finish_then_stops_the_run(said: list[str]) -> None:
    """A shielded teardown runs to its end; check() afterwards raises the deferred cancel."""
    finished = []
    with Cancellation(said.append) as cancel:
        with cancel.shield():
            signal.raise_signal(signal.SIGTERM)
            finished.append("teardown")
        with pytest.raises(Cancelled) as caught:
            cancel.check()
    assert (["teardown"], "cancelled by SIGTERM") == (finished, str(caught.value))
    assert ["received SIGTERM during teardown; finishing the teardown first"] == said


def test_a_second_signal_does_not_interrupt_the_unwinding(said: list[str]) -> None:
    """Once Cancelled was raised, another SIGTERM (during cleanup) is only noted."""
    cleaned = []
    with Cancellation(said.append):
        try:
            signal.raise_signal(signal.SIGTERM)
        except Cancelled:
            signal.raise_signal(signal.SIGTERM)  # e.g. while the lease is being released
            cleaned.append("lease released")
    assert (["lease released"], ["received SIGTERM again; the run is already stopping"]) == (
        cleaned,
        said,
    )


def test_check_is_silent_without_a_signal(said: list[str]) -> None:
    """A run nobody cancelled passes check()."""
    with Cancellation(said.append) as cancel:
        cancel.check()
    assert (None, []) == (cancel.requested, said)


def test_the_previous_handlers_are_restored() -> None:
    """Leaving the block puts the process's own handlers back."""
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    with Cancellation():
        assert all(signal.getsignal(s) != before[s] for s in before)
    assert before == {s: signal.getsignal(s) for s in before}
