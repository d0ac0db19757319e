"""Hold a run lease from the host agent for the whole run.

A run that attaches or may promote the recipe's canonical asks for the lease with ``canonical``:
the agent then also locks the canonical, so two such runs of one recipe are serialised.

A run waits for a lease up to ``wait`` seconds (the host is at ``CCCI_MAX_TESTS``), renews it from
a background thread every third of its TTL while the run lives, and releases it at the end,
whatever happened. A run killed with SIGKILL stops renewing; its lease expires after one TTL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from ccci_core.errors import CcciError
from ccci_core.lanes import RunLane

from .agent import Agent, Lease
from .errors import LeaseUnavailable


@contextmanager
def held_lease(
    agent: Agent,
    recipe: str,
    lane: RunLane,
    realm: str | None,
    *,
    canonical: bool,
    wait: float,
    ttl: int = 600,
    poll: float = 5.0,
    say: Callable[[str], None] = print,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    run_hex: str | None = None,
) -> Iterator[Lease]:
    """Yield a lease held until the block ends; raise LeaseUnavailable after ``wait``."""
    deadline = clock() + wait
    lease = agent.acquire(recipe, lane, realm, ttl, canonical, run_hex)
    if lease is None:
        say(f"waiting up to {wait:.0f}s for a run lease (the host is at its limit of live runs, or")
        say("another run holds this recipe's canonical)")
    while lease is None:
        if clock() >= deadline:
            raise LeaseUnavailable(
                f"no run lease after {wait:.0f}s: other runs hold what this one needs"
            )
        sleep(poll)
        lease = agent.acquire(recipe, lane, realm, ttl, canonical, run_hex)
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(ttl / 3):
            try:
                agent.renew(lease)
            except CcciError as exc:  # keep trying: the lease outlives a few missed renewals
                say(f"warning: renewing lease {lease.id} failed: {exc}")

    renewer = threading.Thread(target=renew, name="lease-renew", daemon=True)
    renewer.start()
    try:
        yield lease
    finally:
        stop.set()
        renewer.join()
        try:
            agent.release(lease)
        except CcciError as exc:
            say(f"warning: releasing lease {lease.id} failed ({exc}); it expires after {ttl}s")
