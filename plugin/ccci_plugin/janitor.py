"""``cc-ci janitor [--dry-run]``: remove what dead cold runs left — never a live run's, never warm.

A cold run's every object is named by its run hex (README, "Cancel and crash"): the stack
``<recipe>-<hex>_<CCCI_DOMAIN with _>`` and its services, containers, volumes, secrets
(label ``ccci.stack``) and configs, the env file ``<recipe>-<hex>.<CCCI_DOMAIN>.env`` and the run
dir ``<recipe>-<hex>``. The janitor finds them by that naming alone, on this CI domain only, and
removes those of runs that hold no live lease (a lease carries its run's hex). A canonical
(``warm-*``) and the live-warm infra apps do not have that shape and are never candidates.

Races: the engine and the disk are listed *before* the leases are read, so a run that takes its
lease meanwhile is seen as live (its lease comes before its stack); a run dir or env file newer
than ``grace`` (a lease's TTL) is kept, because a run checks its recipe out before it holds its
lease. A live lease without a run hex (an older plugin) keeps every leftover of its recipe.

Orphan realms (``<recipe>-<6hex>`` whose hex belongs to no live lease and no live stack) are
deleted when a Keycloak is configured; a realm of any other shape never is.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccci_core.deploy.protocol import Deployer
from ccci_core.docker_engine import DockerStacks, ObjectKind, SdkDocker
from ccci_core.names import CANONICAL_PREFIX, AppName, run_hex_of, stack_name

from .keycloak import Realms, orphan_realms, reap_orphans
from .settings import JanitorSettings

_RUN_DIR_RE = re.compile(r"(?P<recipe>[a-z0-9][a-z0-9-]*)-(?P<hex>[0-9a-f]{6})")
GRACE = 600.0  # a lease's TTL: a run dir younger than this may belong to a run about to lease


@dataclass
class Leftover:
    """What one dead (or live) run left, by its hex."""

    run_hex: str
    stacks: set[str] = field(default_factory=set)
    files: set[Path] = field(default_factory=set)

    def describe(self) -> list[str]:
        """Return a line per thing left."""
        return [f"stack {s}" for s in sorted(self.stacks)] + [str(f) for f in sorted(self.files)]


@dataclass
class Swept:
    """What the janitor removed (or, with ``--dry-run``, would remove) and what it kept."""

    removed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    realms: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def build_janitor(
    settings: JanitorSettings,
    docker: SdkDocker,
    live_leases: Callable[[], list[dict[str, Any]]],
    say: Callable[[str], None] = print,
) -> Janitor:
    """Wire a janitor from settings (``cc-ci janitor`` and the nightly sweep both do)."""
    from ccci_core.deploy.swarm import SwarmDeployer

    from .keycloak import connect

    return Janitor(
        docker=docker,
        deployer=SwarmDeployer(docker, settings.apps_dir),
        base_domain=settings.domain,
        runs_dir=settings.runs_dir,
        env_dirs=[settings.apps_dir, settings.abra_dir / "servers" / settings.abra_server],
        live_leases=live_leases,
        realms=connect(settings) if settings.keycloak_url else None,
        never=settings.infra_stacks(),
        say=say,
    )


def cold_domain(stack: str, base_domain: str) -> str | None:
    """Return the domain of a cold run's stack on ``base_domain``, or None if it is not one."""
    suffix = f"_{stack_name(base_domain)}"
    label = stack[: -len(suffix)] if stack.endswith(suffix) else ""
    if label.startswith(CANONICAL_PREFIX) or not _RUN_DIR_RE.fullmatch(label):
        return None  # a run's label is one DNS label: ``<recipe prefix>-<6hex>``
    return f"{label}.{base_domain}"


def stack_of_object(name: str, base_domain: str) -> str | None:
    """Return the cold stack a ``<stack>_<key>`` object name belongs to, or None."""
    marker = f"_{stack_name(base_domain)}_"
    at = name.find(marker)
    if at < 0:
        return None
    stack = name[: at + len(marker) - 1]
    return stack if cold_domain(stack, base_domain) is not None else None


@dataclass
class Janitor:
    """Find and remove dead cold runs' leftovers on the engine and on disk."""

    docker: DockerStacks
    deployer: Deployer  # the swarm deployer's remove: stack rm, then volumes, secrets, env
    base_domain: str
    runs_dir: Path
    env_dirs: list[Path]  # where app env files live (the swarm apps dir, abra's server dir)
    live_leases: Callable[[], list[dict[str, Any]]]
    realms: Realms | None = None
    never: set[str] = field(default_factory=set)  # the live-warm infra stacks
    grace: float = GRACE
    clock: Callable[[], float] = time.time
    say: Callable[[str], None] = print

    def find(self) -> dict[str, Leftover]:
        """Return every cold run's leftovers on this domain, by run hex (live ones included)."""
        found: dict[str, Leftover] = {}

        def add(stack: str) -> None:
            run_hex = run_hex_of(stack)
            if run_hex is not None and stack not in self.never:
                found.setdefault(run_hex, Leftover(run_hex)).stacks.add(stack)

        for service in self.docker.services():
            if service.stack is not None and cold_domain(service.stack, self.base_domain):
                add(service.stack)
        kinds: tuple[ObjectKind, ...] = ("volume", "secret", "config", "network")
        for kind in kinds:
            for name in self.docker.named(kind, ""):
                stack = stack_of_object(name, self.base_domain)
                if stack is not None:
                    add(stack)
        for path in self._files():
            run_hex = path.name.removesuffix(".env").split(".", 1)[0].rsplit("-", 1)[-1]
            found.setdefault(run_hex, Leftover(run_hex)).files.add(path)
        return found

    def _files(self) -> Iterable[Path]:
        suffix = f".{self.base_domain}.env"
        for folder in self.env_dirs:
            if folder.is_dir():
                for path in folder.glob(f"*{suffix}"):
                    stack = stack_name(path.name.removesuffix(".env"))
                    if stack not in self.never and cold_domain(stack, self.base_domain):
                        yield path
        if self.runs_dir.is_dir():
            for path in self.runs_dir.iterdir():
                if path.is_dir() and not path.is_symlink() and _RUN_DIR_RE.fullmatch(path.name):
                    yield path

    def _protected(self, leases: list[dict[str, Any]]) -> tuple[set[str], set[str]]:
        """Return the live hexes, and the recipes of live leases that name no hex."""
        hexes = {str(lease["run_hex"]) for lease in leases if lease.get("run_hex")}
        blind = {str(lease["recipe"]) for lease in leases if not lease.get("run_hex")}
        return hexes, blind

    def sweep(self, *, dry_run: bool = False) -> Swept:
        """Remove the leftovers of every run without a live lease; return what happened."""
        found = self.find()  # first: a run that leases meanwhile is then seen as live
        leases = self.live_leases()
        live, blind = self._protected(leases)
        swept = Swept()
        now = self.clock()
        doomed: set[str] = set()
        for run_hex, left in sorted(found.items()):
            recipe_guess = {s.split(f"-{run_hex}_")[0] for s in left.stacks} | {
                f.name.split(f"-{run_hex}")[0] for f in left.files
            }
            if run_hex in live or any(
                r.startswith(g) or g.startswith(r) for r in blind for g in recipe_guess
            ):
                swept.kept += [f"{line} (run {run_hex} is live)" for line in left.describe()]
                continue
            fresh = {f for f in left.files if now - _newest_mtime(f) < self.grace}
            swept.kept += [
                f"{f} (newer than {self.grace:.0f}s: a run may be starting)" for f in sorted(fresh)
            ]
            doomed.add(run_hex)
            for stack in sorted(left.stacks):
                self._remove_stack(stack, swept, dry_run=dry_run)
            for path in sorted(left.files - fresh):
                self._remove_file(path, swept, dry_run=dry_run)
        if self.realms is not None:
            swept.realms = self._reap_realms(doomed, dry_run=dry_run)
        return swept

    def _remove_stack(self, stack: str, swept: Swept, *, dry_run: bool) -> None:
        domain = cold_domain(stack, self.base_domain)
        assert domain is not None  # noqa: S101 - found by it
        label = domain.split(".", 1)[0]
        app = AppName(label.rsplit("-", 1)[0], "cold", domain, stack, run_hex_of(stack))
        if dry_run:
            swept.removed.append(f"stack {stack} (would remove)")
            return
        try:
            self.deployer.remove(app)
            # What abra made carries no label of ours: its objects are named by the stack.
            kinds: tuple[ObjectKind, ...] = ("secret", "config", "volume")
            for kind in kinds:
                for name in self.docker.named(kind, f"{stack}_"):
                    self.docker.remove(kind, name)
        except Exception as exc:
            swept.failed.append(f"stack {stack}: {exc}")
            return
        swept.removed.append(f"stack {stack}")
        self.say(f"removed stack {stack} (services, containers, volumes, secrets, configs, env)")

    def _remove_file(self, path: Path, swept: Swept, *, dry_run: bool) -> None:
        if dry_run:
            swept.removed.append(f"{path} (would remove)")
            return
        try:
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        except OSError as exc:
            swept.failed.append(f"{path}: {exc}")
            return
        swept.removed.append(str(path))
        self.say(f"removed {path}")

    def _reap_realms(self, doomed: set[str], *, dry_run: bool) -> list[str]:
        """Delete run realms whose hex has no lease and no live stack (``doomed`` ones count
        as gone: a dry run says what the real one would delete)."""
        realms = self.realms
        assert realms is not None  # noqa: S101 - checked by the caller

        def live_hexes() -> Collection[str]:  # read after the realm listing, like the leases
            stacks = {s.stack for s in self.docker.services() if s.stack is not None}
            running = {h for s in stacks if (h := run_hex_of(s))} - doomed
            return self._protected(self.live_leases())[0] | running

        if dry_run:
            return [f"{r} (would delete)" for r in orphan_realms(realms.list(), live_hexes())]
        return reap_orphans(realms, live_hexes)


def _newest_mtime(path: Path) -> float:
    try:
        newest = path.lstat().st_mtime
        if path.is_dir():
            for child in path.rglob("*"):
                newest = max(newest, child.lstat().st_mtime)
    except OSError:
        return 0.0
    return newest
