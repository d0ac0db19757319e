"""Run leases: MAX_TESTS, expiry, renewal, release and in-flight, across processes."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from ccci_agent.alerts import Alerts
from ccci_agent.errors import LeaseRefused, NotFound, NotLeaseHolder
from ccci_agent.leases import Leases
from ccci_agent.store import StateDir
from ccci_core.errors import InvalidName


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_refuses_beyond_max_tests(state: StateDir) -> None:
    """With MAX_TESTS=2 the third lease is refused and names the holders."""
    leases = Leases(state, 2)
    leases.acquire("a", "cold")
    leases.acquire("b", "quick")
    with pytest.raises(LeaseRefused) as refused:
        leases.acquire("c", "cold")
    assert ["a", "b"] == [lease["recipe"] for lease in refused.value.details["held"]]


def test_a_canonical_is_locked_by_one_lease_at_a_time(state: StateDir) -> None:
    """Two canonical leases of one recipe never coexist; other recipes and cold runs pass."""
    leases = Leases(state, 4)
    first = leases.acquire("a", "quick", canonical=True)
    with pytest.raises(LeaseRefused) as refused:
        leases.acquire("a", "cold", canonical=True)
    assert "another run holds the canonical of a" == refused.value.message
    leases.acquire("a", "cold")  # a PR's cold run never touches the canonical
    leases.acquire("b", "quick", canonical=True)
    leases.release(first["id"], first["token"])
    assert leases.acquire("a", "quick", canonical=True)["canonical"]


def test_expired_lease_frees_its_slot_and_renew_keeps_it(state: StateDir) -> None:
    """A holder that stops renewing loses the lease after its TTL; one that renews keeps it."""
    clock = Clock()
    leases = Leases(state, 2, clock)
    kept = leases.acquire("a", "cold", ttl=60)
    leases.acquire("b", "cold", ttl=60)
    clock.now += 50
    leases.renew(kept["id"], kept["token"])
    clock.now += 20

    assert ["a"] == [lease["recipe"] for lease in leases.listing()["leases"]]
    leases.acquire("c", "quick")


def test_release_and_in_flight(state: StateDir) -> None:
    """in_flight is true while a lease is held and false after it is released."""
    leases = Leases(state, 1)
    lease = leases.acquire("a", "cold", realm="a-0a1b2c")
    assert leases.listing()["in_flight"]
    leases.release(lease["id"], lease["token"])
    assert not leases.listing()["in_flight"]
    with pytest.raises(NotFound):
        leases.renew(lease["id"], lease["token"])


def test_only_the_holder_renews_or_releases(state: StateDir) -> None:
    """Without the token acquire returned, or with another's, renew and release are refused."""
    leases = Leases(state, 2)
    mine, theirs = leases.acquire("a", "cold"), leases.acquire("b", "cold")
    for token in (None, theirs["token"], "0" * 32):
        with pytest.raises(NotLeaseHolder):
            leases.renew(mine["id"], token)
        with pytest.raises(NotLeaseHolder):
            leases.release(mine["id"], token)
    assert ["a", "b"] == [lease["recipe"] for lease in leases.listing()["leases"]]
    leases.renew(mine["id"], mine["token"])
    leases.release(mine["id"], mine["token"])
    assert ["b"] == [lease["recipe"] for lease in leases.listing()["leases"]]


def test_force_releases_without_the_token(state: StateDir) -> None:
    """An operator's forced release needs no token; releasing a gone lease is no error."""
    leases = Leases(state, 1)
    stuck = leases.acquire("a", "cold")
    leases.release(stuck["id"], None, force=True)
    leases.release(stuck["id"], None)
    assert [] == leases.listing()["leases"]


def test_no_listing_shows_a_token_or_its_hash(state: StateDir) -> None:
    """Only acquire's answer carries the token; listings and refusals never do."""
    leases = Leases(state, 1)
    granted = leases.acquire("a", "cold")
    with pytest.raises(LeaseRefused) as refused:
        leases.acquire("b", "cold")
    shown = [
        *leases.listing()["leases"],
        *refused.value.details["held"],
        leases.renew(granted["id"], granted["token"]),
    ]
    assert [set(granted) - {"token"}] * 3 == [set(lease) for lease in shown]
    assert granted["token"] not in state.leases.read_text()


@pytest.mark.parametrize(
    ("recipe", "realm"),
    [("../a", None), ("a", "b-0a1b2c"), ("a", "a-zzzzzz"), ("a", "a"), ("a", "a-0a1b2c/..")],
)
def test_refuses_bad_names(state: StateDir, recipe: str, realm: str | None) -> None:
    """Recipe and realm names go through the core's validation."""
    with pytest.raises(InvalidName):
        Leases(state, 4).acquire(recipe, "cold", realm=realm)
    assert not state.leases.exists()


def _grab(
    root: str, barrier: multiprocessing.synchronize.Barrier, out: multiprocessing.Queue
) -> None:  # type: ignore[type-arg]
    barrier.wait()
    try:
        Leases(StateDir(Path(root)), 3).acquire("r", "cold")
        out.put("granted")
    except LeaseRefused:
        out.put("refused")


def test_concurrent_processes_never_exceed_max(state: StateDir) -> None:
    """Sixteen processes racing for three slots: exactly three win."""
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(16)
    out = ctx.Queue()
    procs = [ctx.Process(target=_grab, args=(str(state.root), barrier, out)) for _ in range(16)]
    for proc in procs:
        proc.start()
    results = sorted(out.get() for _ in procs)
    for proc in procs:
        proc.join()
    assert ["granted"] * 3 + ["refused"] * 13 == results
    assert 3 == len(Leases(state, 3).listing()["leases"])


@pytest.mark.parametrize("content", [b'{"0123456789abcdef": {"id": "0123', b"", b'["a"]'])
def test_corrupt_leases_file_is_moved_aside_and_alerted(state: StateDir, content: bytes) -> None:
    """A truncated or garbage _leases.json: lease calls work from no leases, an alert names it."""
    state.leases.write_bytes(content)
    leases = Leases(state, 1)

    assert [] == leases.listing()["leases"]
    granted = leases.acquire("a", "cold")

    [moved] = state.root.glob("_leases.json.corrupt-*")
    assert content == moved.read_bytes()
    assert [granted["id"]] == [lease["id"] for lease in leases.listing()["leases"]]
    [alert] = Alerts(state).active()
    assert ("state-corrupt", moved.name) == (alert["kind"], Path(alert["details"]["moved_to"]).name)
    assert "_leases.json" in alert["message"]
    assert "renewals will 404" in alert["message"]
