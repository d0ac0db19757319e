"""In-memory stand-ins for what a run talks to: the host agent, the run's apps, the compose loader.

They let the plugin's decisions (which lane, when to restore, when to promote, which exit code) be
tested without an engine; recipes stay real git repositories (``tests.gitrepo``), checked out by
the real :class:`ccci_core.catalog.Catalog`. Each fake has the public methods of what it stands in
for, with the same signatures (``tests/plugin/test_fakes.py`` checks), records every call in
``calls`` and keeps the little state the decisions depend on. What only the engine can show (an app
really comes up, a volume really equals its snapshot) stays in the ``*_on_engine`` modules.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ccci_core.agent_client import AgentClientError
from ccci_core.catalog import Checkout
from ccci_core.deploy.errors import NotReady
from ccci_core.deploy.health import SETTLE
from ccci_core.deploy.protocol import Deployed
from ccci_core.errors import CcciError
from ccci_core.names import AppName, stack_name
from ccci_core.recipe_meta import RecipeMeta
from ccci_plugin.agent import Lease
from ccci_plugin.apps import Apps
from ccci_plugin.errors import CheckFailed

if TYPE_CHECKING:
    from ccci_core.deploy.health import ProbeMode
    from ccci_core.deploy.stack import Stack
    from ccci_core.lanes import RunLane

BUSY = 409
IMAGE = "ccci-test/web:1"  # what every checkout runs unless a test says otherwise


class Calls(list[tuple[Any, ...]]):
    """The calls a fake received, in order: ``(verb, *arguments)``."""

    def verbs(self) -> list[str]:
        """Return the verbs alone."""
        return [str(call[0]) for call in self]


@dataclass
class FakeAgent:
    """The host agent's leases and canonical registry, kept in memory.

    ``max_leases`` leases at most and one canonical lock per recipe, as the agent grants them;
    ``busy`` answers that many acquires "busy" first; ``refuse[verb]`` is raised when ``verb`` is
    called (an agent error mid-run).
    """

    max_leases: int = 1
    busy: int = 0
    refuse: dict[str, AgentClientError] = field(default_factory=dict)
    canonicals: dict[str, dict[str, Any]] = field(default_factory=dict)
    leases: dict[str, tuple[Lease, str, bool]] = field(default_factory=dict)  # id → lease, recipe
    seeds: dict[str, str] = field(default_factory=dict)  # recipe → the seed token handed out
    calls: Calls = field(default_factory=Calls)
    _counter: int = 0

    def _call(self, verb: str, *args: Any) -> None:
        self.calls.append((verb, *args))
        if verb in self.refuse:
            raise self.refuse[verb]

    def _next(self) -> int:
        self._counter += 1
        return self._counter

    def _record(self, recipe: str) -> dict[str, Any]:
        if recipe not in self.canonicals:
            raise AgentClientError(404, f"no canonical of {recipe}")
        return self.canonicals[recipe]

    def _holder(self, lease: Lease) -> None:
        if lease.id not in self.leases:
            raise AgentClientError(404, f"no lease {lease.id}")
        if self.leases[lease.id][0].token != lease.token:
            raise AgentClientError(403, "not the lease holder")

    def add_canonical(self, recipe: str, domain: str, version: str, volume: str = "clean") -> None:
        """Register a promoted, idle canonical of ``recipe`` at ``version``."""
        self.canonicals[recipe] = {
            "recipe": recipe,
            "domain": domain,
            "stack": stack_name(domain),
            "version": version,
            "commit": "0" * 40,
            "status": "idle",
            "volume": volume,
            "snapshot": {"id": f"snap-{self._next()}"},
        }

    def acquire(
        self,
        recipe: str,
        lane: RunLane,
        realm: str | None,
        ttl: int,
        canonical: bool,
        run_hex: str | None = None,
    ) -> Lease | None:
        """Return a lease, or None while busy (at the limit, or the canonical locked)."""
        self._call("acquire", recipe, lane, realm, ttl, canonical)
        if self.busy > 0:
            self.busy -= 1
            return None
        locked = any(r == recipe and c for _, r, c in self.leases.values())
        if len(self.leases) >= self.max_leases or (canonical and locked):
            return None
        lease = Lease(f"lease-{self._next()}", secrets.token_hex(16))
        self.leases[lease.id] = (lease, recipe, canonical)
        return lease

    def renew(self, lease: Lease) -> None:
        """Renew a lease its holder presents."""
        self._call("renew", lease.id)
        self._holder(lease)

    def release(self, lease: Lease) -> None:
        """Release a lease its holder presents."""
        self._call("release", lease.id)
        self._holder(lease)
        del self.leases[lease.id]

    def canonical(self, recipe: str) -> dict[str, Any] | None:
        """Return the registry entry of ``recipe``, or None."""
        self._call("canonical", recipe)
        found = self.canonicals.get(recipe)
        return None if found is None else dict(found)

    def attach(self, recipe: str) -> bool:
        """Restore first if the volume is not clean, then mark deployed and dirty."""
        self._call("attach", recipe)
        record = self._record(recipe)
        restored = record["volume"] != "clean"
        record.update(status="deployed", volume="dirty")
        return restored

    def seed(self, recipe: str, version: str) -> str:
        """Begin a re-seed: mark deployed and dirty, hand out the token the promote must carry."""
        self._call("seed", recipe, version)
        self._record(recipe).update(status="deployed", volume="dirty")
        self.seeds[recipe] = f"seed-{self._next()}"
        return self.seeds[recipe]

    def promote(
        self, recipe: str, domain: str, version: str, commit: str, seed: str | None
    ) -> dict[str, Any]:
        """Record a new known-good; a touched canonical needs the current seed's token."""
        self._call("promote", recipe, domain, version, commit, seed)
        old = self.canonicals.get(recipe)
        if old is not None and old["volume"] != "clean" and seed != self.seeds.get(recipe):
            raise AgentClientError(BUSY, "restore first")
        self.add_canonical(recipe, domain, version)
        self.canonicals[recipe]["commit"] = commit
        return dict(self.canonicals[recipe])

    def restore(self, recipe: str) -> dict[str, Any]:
        """Put the known-good data back: the canonical is idle and clean again."""
        self._call("restore", recipe)
        self._record(recipe).update(status="idle", volume="clean")
        return dict(self.canonicals[recipe])


@dataclass
class FakeDeployer:
    """Apps kept in memory: which have an env, and what runs for each stack.

    ``refuse[verb]`` is raised when ``verb`` is called (a deployer failing).
    """

    envs: set[str] = field(default_factory=set)  # domains with an env
    running: dict[str, tuple[Deployed, str]] = field(default_factory=dict)  # stack → it, commit
    refuse: dict[str, CcciError] = field(default_factory=dict)
    calls: Calls = field(default_factory=Calls)

    def _call(self, verb: str, *args: Any) -> None:
        self.calls.append((verb, *args))
        if verb in self.refuse:
            raise self.refuse[verb]

    def exists(self, app: AppName) -> bool:
        """Return whether the app has an env."""
        return app.domain in self.envs

    def new(self, app: AppName, checkout: Checkout, env: Mapping[str, str]) -> None:
        """Create the app's env."""
        self._call("new", app.domain, dict(env))
        self.envs.add(app.domain)

    def generate_secrets(self, app: AppName, checkout: Checkout) -> None:
        """Record that the app's missing secrets were generated."""
        self._call("generate_secrets", app.domain)

    def deploy(self, app: AppName, checkout: Checkout) -> Deployed:
        """Run ``checkout`` for the app (chaos when it has no version)."""
        self._call("deploy", app.domain, checkout.commit)
        if checkout.version is None:
            deployed = Deployed(app.stack, None, chaos=True, chaos_version=checkout.commit[:8])
        else:
            deployed = Deployed(app.stack, str(checkout.version))
        self.running[app.stack] = (deployed, checkout.commit)
        return deployed

    def undeploy(self, app: AppName) -> None:
        """Stop what runs for the app; its env stays."""
        self._call("undeploy", app.domain)
        self.running.pop(app.stack, None)

    def remove(self, app: AppName) -> None:
        """Delete the app: what runs and its env."""
        self._call("remove", app.domain)
        self.running.pop(app.stack, None)
        self.envs.discard(app.domain)

    def deployed(self, app: AppName) -> Deployed | None:
        """Return what runs for the app, or None."""
        running = self.running.get(app.stack)
        return None if running is None else running[0]

    def volumes(self, app: AppName) -> list[str]:
        """Return the app's one volume."""
        return [f"{app.stack}_data"]


@dataclass
class FakeApps:
    """A run's apps over a :class:`FakeDeployer`, with the data marker and images in memory.

    A test makes a commit misbehave: ``never_up`` (its deploy never becomes ready), ``up_raises``
    (what its ``up`` raises once deployed: a cancel arriving), ``loses_data`` (deploying it loses
    the marker), ``images_of`` (what its services run, default ``IMAGE``); ``left_behind`` is what
    a teardown finds still on the engine.
    """

    meta: RecipeMeta
    deployer: FakeDeployer = field(default_factory=FakeDeployer)
    probe_mode: ProbeMode = "loopback"
    env: Mapping[str, str] = field(default_factory=dict)
    never_up: set[str] = field(default_factory=set)
    up_raises: dict[str, CcciError] = field(default_factory=dict)
    loses_data: set[str] = field(default_factory=set)
    images_of: dict[str, set[str]] = field(default_factory=dict)
    left_behind: list[str] = field(default_factory=list)
    markers: dict[str, str] = field(default_factory=dict)  # stack → the marker in its data
    calls: Calls = field(default_factory=Calls)
    settles: list[float] = field(default_factory=list)  # each up's settle window, in order

    def stack(self, app: AppName) -> Stack:
        """Refuse: the engine's view of a stack is what this fake stands in for."""
        raise AssertionError(f"a lane asked for the engine's view of {app.stack}")

    def create(self, app: AppName, checkout: Checkout) -> None:
        """Create the app (env from the recipe plus the run's env) and generate its secrets."""
        self.calls.append(("create", app.domain, _label(checkout)))
        self.deployer.new(app, checkout, {**self.meta.extra_env, **self.env})
        self.deployer.generate_secrets(app, checkout)

    def up(self, app: AppName, checkout: Checkout, *, settle: float = SETTLE) -> Deployed:
        """Deploy ``checkout``; raise NotReady for a commit in ``never_up``."""
        self.calls.append(("up", app.domain, _label(checkout)))
        self.settles.append(settle)
        self.deployer.deploy(app, checkout)
        if checkout.commit in self.loses_data:
            self.markers.pop(app.stack, None)
        if checkout.commit in self.up_raises:
            raise self.up_raises[checkout.commit]
        if checkout.commit in self.never_up:
            raise NotReady(app.stack, "app keeps failing", [f"{app.stack}_app: exited 3"])
        deployed = self.deployer.deployed(app)
        assert deployed is not None
        return deployed

    def check_moved(self, app: AppName, before: Deployed, checkout: Checkout) -> str:
        """Check something else runs than ``before``; return the move as the real one words it.

        How a label proves the move is :class:`ccci_plugin.apps.Apps`' business, tested on the
        engine; the lanes only need a failure when nothing moved.
        """
        self.calls.append(("check_moved", app.domain, _label(checkout)))
        if self.deployer.deployed(app) in (None, before):
            raise CheckFailed(f"version label did not move from {before.version}")
        return f"{before.version} → {_label(checkout)}"

    marker_path = Apps.marker_path  # the real one: it reads only the recipe's metadata

    def write_marker(self, app: AppName) -> str | None:
        """Write a fresh marker into the app's data; return it (None when the recipe has none)."""
        self.calls.append(("write_marker", app.domain))
        if self.marker_path is None:
            return None
        self.markers[app.stack] = f"ccci-{secrets.token_hex(8)}"
        return self.markers[app.stack]

    def read_marker(self, app: AppName) -> str | None:
        """Return the marker in the app's data, or None when it is missing."""
        self.calls.append(("read_marker", app.domain))
        return None if self.marker_path is None else self.markers.get(app.stack)

    def url(self, app: AppName) -> str | None:
        """Return no URL: nothing answers for a fake app."""
        return None

    def images(self, app: AppName) -> set[str]:
        """Return the images the app's services run (none when nothing runs)."""
        running = self.deployer.running.get(app.stack)
        return set() if running is None else set(self.images_of.get(running[1], {IMAGE}))

    def remove_unused_images(self, images: set[str]) -> list[str]:
        """Remove those of ``images`` nothing runs; return what was removed."""
        self.calls.append(("remove_unused_images", sorted(images)))
        running = [commit for _, commit in self.deployer.running.values()]
        in_use = {image for commit in running for image in self.images_of.get(commit, {IMAGE})}
        return sorted(images - in_use)

    def leftovers(self, app: AppName) -> list[str]:
        """Return what of ``app`` is still there: its service while it runs, ``left_behind``."""
        running = [f"service {app.stack}_app"] if app.stack in self.deployer.running else []
        return sorted(running + self.left_behind)


class FakeRealms:
    """Realms kept in memory: what a run created and deleted."""

    def __init__(self) -> None:
        self.created: list[str] = []
        self.deleted: list[str] = []

    def create(self, realm: str) -> None:
        """Record a created realm."""
        self.created.append(realm)

    def delete(self, realm: str) -> None:
        """Record a deleted realm."""
        self.deleted.append(realm)

    def list(self) -> list[str]:
        """Return the realms alive."""
        return [r for r in self.created if r not in self.deleted]

    def exists(self, realm: str) -> bool:
        """Return whether ``realm`` is alive."""
        return realm in self.list()


def _label(checkout: Checkout) -> str:
    """Return a checkout as a test names it: its version, else ``chaos <commit[:8]>``."""
    return str(checkout.version) if checkout.version else f"chaos {checkout.commit[:8]}"


class YamlLoader:
    """docker's compose loader without docker: the compose files' YAML as written, merged.

    The fake recipe interpolates nothing, so what docker would load is what the files say.
    """

    def load(self, folder: Path, files: list[str], env: Mapping[str, str]) -> dict[str, Any]:
        """Return the top-level keys of ``files`` merged, later files winning."""
        tree: dict[str, Any] = {}
        for name in files:
            for key, value in (yaml.safe_load((folder / name).read_text()) or {}).items():
                tree[key] = {**tree.get(key, {}), **value}
        return tree
