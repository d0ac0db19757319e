"""``cc-ci prune``: free disk by removing what no run needs, only when / is full and no run is live.

What ``ci-docker-prune.service`` runs. The nightly sweep may call :meth:`Pruner.run` too, once it
released its own lease (a sweep lease is a run in flight like any other).

**When.** Only when / is at or above ``CCCI_PRUNE_THRESHOLD`` percent used (default 80) and the
host agent says no run is in flight. Used is counted as ``df`` counts it, used / (used +
available): it reaches 100 when nothing is left to write, where used / size may stop far short (the
root reserve, thin-provisioned disks). The agent is asked again before each removal, so a run that
starts meanwhile stops the prune. An agent that cannot be asked (down, refusing, an answer without
``in_flight``) stops it too, before the first removal or the next: exit 2, never a prune blind.

**What.** In this order, each only when created (build cache: last used) over 24 h ago
(:data:`~ccci_core.docker_engine.PRUNE_AGE`, the engine's ``until`` filter): stopped containers
(first, so the dangling images only they used go in the same pass), dangling images no container
uses, build cache. Never a tagged image (no ``--all``: the local image store is the cache that
keeps runs fast), never a volume (a data-warm canonical's volumes are unused by design between
runs), never a network. The Docker adapter offers no other prune.

**Stopped task containers of a live stack go too.** Swarm never restarts a stopped task's
container (it starts a new task), and the task's state, error and exit code stay in the manager's
task history (``docker service ps``); what goes is the container itself and its log. ``until``
counts from a container's creation, so a task that ran for days and died an hour ago loses its log
at the next prune. That is accepted: prune acts only on a filling disk, and a failed run's
evidence is its own log, not a container's.

Exit 0 pruned, or nothing to do (the line says why: below the threshold, a run in flight); 1 a
removal failed (the others were still tried); 2 bad configuration or the agent unreachable.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from ccci_core.agent_client import AgentClient, AgentClientError
from ccci_core.docker_engine import PRUNE_AGE, DockerPrune, Pruned, Reclaimable, SdkDocker
from ccci_core.errors import CcciError, ConfigError
from ccci_core.operator import human_size
from ccci_core.settings import load

from .settings import PruneSettings

AGENT_TIMEOUT = 60.0  # seconds for GET /v1/leases: an agent that slow is not one to trust now
ENGINE_TIMEOUT = 900  # seconds per Docker call: pruning a large build cache takes minutes
AGE = f"{PRUNE_AGE // timedelta(hours=1)} h"  # "24 h", for the messages
Outcome = Literal["pruned", "dry run", "below threshold", "in flight"]
DiskUsage = Callable[[str], tuple[int, int, int]]  # shutil.disk_usage: total, used, free


class PruneError(CcciError):
    """A Docker call of the prune failed (exit 1)."""


class Blind(CcciError):
    """Prune cannot tell how full / is or whether a run is in flight: it removes nothing."""

    exit_code = 2


class RunsPort(Protocol):
    """What a prune asks of the host agent."""

    def live_leases(self) -> list[str]:
        """Return a line per live lease (none: no run is in flight); raise Blind if unsure."""


class AgentRuns:
    """:class:`RunsPort` over the agent's socket: ``GET /v1/leases``."""

    def __init__(self, client: AgentClient) -> None:
        self._client = client

    def live_leases(self) -> list[str]:
        """Return a line per live lease; raise Blind when the agent cannot say."""
        unsure = "cannot tell whether a run is in flight"
        try:
            answer = self._client.get("/v1/leases")
        except AgentClientError as exc:
            raise Blind(f"{unsure}: {exc}") from exc
        flag = answer.get("in_flight") if isinstance(answer, dict) else None
        if not isinstance(flag, bool):
            raise Blind(f"{unsure}: the agent's GET /v1/leases answered no in_flight flag")
        if not flag:
            return []
        leases = answer.get("leases")
        lines = (
            [_lease(x) for x in leases if isinstance(x, dict)] if isinstance(leases, list) else []
        )
        return lines or ["a lease"]


def _lease(lease: dict[str, Any]) -> str:
    return f"lease {lease.get('id', '?')}: {lease.get('recipe', '?')} {lease.get('lane', '?')}"


@dataclass(frozen=True)
class Plan:
    """What a prune would remove now (build cache aside: the engine picks it when it prunes)."""

    containers: tuple[Reclaimable, ...] = ()
    images: tuple[Reclaimable, ...] = ()

    def known(self) -> dict[str, Reclaimable]:
        """Return every planned object by id."""
        return {r.id: r for r in (*self.containers, *self.images)}


def plan(containers: Sequence[Reclaimable], images: Sequence[Reclaimable], now: datetime) -> Plan:
    """Return the stopped containers older than PRUNE_AGE, and the dangling images older than
    that whose every user is one of those containers (they go first, then the image is unused)."""
    cutoff = now - PRUNE_AGE
    going = tuple(c for c in containers if c.created <= cutoff)
    ids = {c.id for c in going}
    return Plan(going, tuple(i for i in images if i.created <= cutoff and set(i.used_by) <= ids))


@dataclass
class Result:
    """What one prune decided and did."""

    outcome: Outcome
    percent: float
    plan: Plan = field(default_factory=Plan)
    pruned: dict[str, Pruned] = field(default_factory=dict)  # by kind, in the order done
    failed: dict[str, str] = field(default_factory=dict)  # kind: the engine's reason

    @property
    def freed(self) -> int:
        """Return the bytes the engine says it freed."""
        return sum(p.space for p in self.pruned.values())

    @property
    def exit_code(self) -> int:
        """Return 1 when a removal failed, else 0."""
        return 1 if self.failed else 0


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Pruner:
    """One prune: the two gates (disk, runs), then the three removals, or a dry run's list."""

    runs: RunsPort
    engine: Callable[[], DockerPrune]  # built once the gates pass: a full-enough disk needs none
    threshold: int  # percent of / used
    disk_usage: DiskUsage = shutil.disk_usage
    clock: Callable[[], datetime] = _now
    say: Callable[[str], None] = print

    def run(self, dry_run: bool = False) -> Result:
        """Prune (``dry_run``: show what would go) when / is full and no run is in flight."""
        percent = self.percent()
        if percent < self.threshold:
            self.say(
                f"nothing to do: / is {percent}% used, below the threshold of {self.threshold}% "
                "(CCCI_PRUNE_THRESHOLD)"
            )
            return Result("below threshold", percent)
        leases = self.runs.live_leases()
        if leases:
            self.say(
                f"nothing to do: a run is in flight ({'; '.join(leases)}); / is {percent}% used"
            )
            return Result("in flight", percent)
        docker = self.engine()
        found = plan(docker.stopped_containers(), docker.dangling_images(), self.clock())
        gates = f"/ is {percent}% used (threshold {self.threshold}%) and no run is in flight"
        if dry_run:
            self.say(f"dry run: {gates}; a prune would remove:")
            self._show(found)
            self.say("nothing removed (dry run)")
            return Result("dry run", percent, found)
        self.say(f"{gates}: pruning what is older than {AGE}")
        result = Result("pruned", percent, found)
        steps = (
            ("stopped containers", docker.prune_containers),
            ("dangling images", docker.prune_images),
            ("build cache", docker.prune_build_cache),
        )
        for index, (kind, prune) in enumerate(steps):
            try:
                leases = self.runs.live_leases() if index else []
            except Blind as exc:
                self._freed(result)
                raise Blind(f"stopped before the {kind}: {exc.message}") from exc
            if leases:
                self.say(f"stopped before the {kind}: a run started ({'; '.join(leases)})")
                result.outcome = "in flight"
                break
            try:
                done = prune()
            except CcciError as exc:
                result.failed[kind] = exc.message
                self.say(f"{kind}: FAILED: {exc.message}")
                continue
            result.pruned[kind] = done
            self._report(kind, done, found)
        self._freed(result)
        return result

    def percent(self) -> float:
        """Return how full / is as ``df`` says it, used / (used + available), to one decimal."""
        try:
            _total, used, free = self.disk_usage("/")
        except OSError as exc:
            raise Blind(f"cannot tell how full / is: {exc}") from exc
        if used + free <= 0:
            raise Blind("cannot tell how full / is: it reports no size")
        return round(100 * used / (used + free), 1)

    def _freed(self, result: Result) -> None:
        try:
            now = f"; / is now {self.percent()}% used"
        except Blind:
            now = ""
        self.say(f"freed {human_size(result.freed)}{now}")

    def _show(self, found: Plan) -> None:
        size = human_size(sum(c.size for c in found.containers))
        self.say(f"stopped containers created over {AGE} ago: {len(found.containers)}, {size}")
        for c in found.containers:
            self.say(f"  {_line(c)}")
        size = human_size(sum(i.size for i in found.images))
        self.say(
            f"dangling images created over {AGE} ago that no remaining container uses: "
            f"{len(found.images)}, up to {size} (layers other images share stay)"
        )
        for i in found.images:
            self.say(f"  {_line(i)}")
        self.say(f"build cache unused for {AGE}: what the engine finds then (docker system df -v)")

    def _report(self, kind: str, done: Pruned, found: Plan) -> None:
        self.say(f"{kind}: {len(done.removed)} removed, {human_size(done.space)} freed")
        known = found.known()
        for ident in done.removed:
            self.say(f"  {_line(known[ident]) if ident in known else ident}")


def _short(ident: str) -> str:
    return ident.removeprefix("sha256:")[:12]


def _line(item: Reclaimable) -> str:
    name = _short(item.id) if item.name == _short(item.id) else f"{_short(item.id)}  {item.name}"
    return f"{name}  created {item.created:%Y-%m-%d %H:%M} UTC  {human_size(item.size)}"


def _engine() -> DockerPrune:
    try:
        return SdkDocker.from_env(PruneError, timeout=ENGINE_TIMEOUT)
    except PruneError as exc:
        raise ConfigError("DOCKER_HOST", exc.message) from exc


def command(dry_run: bool) -> int:
    """Run ``cc-ci prune`` with the environment's settings; return the exit code."""
    settings = load(PruneSettings)
    client = AgentClient(settings.agent_socket, timeout=AGENT_TIMEOUT)
    pruner = Pruner(runs=AgentRuns(client), engine=_engine, threshold=settings.prune_threshold)
    result = pruner.run(dry_run=dry_run)
    sys.stdout.flush()
    return result.exit_code
