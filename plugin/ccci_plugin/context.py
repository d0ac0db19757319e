"""What one run works with: its request, adapters, report, directories and target."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ccci_core.catalog import PULL_REF_RE, Catalog, Checkout
from ccci_core.deploy.compose import Loader, recipe_suffix
from ccci_core.deploy.stack_config import StackConfig
from ccci_core.versions import Version

from .agent import Agent
from .apps import Apps
from .cancel import Cancellation
from .errors import CheckFailed
from .report import RunReport
from .request import RunRequest


@dataclass(frozen=True)
class Target:
    """The version or ref a run tests, pinned at its first checkout."""

    ref: str | None  # what was asked for (None: latest)
    commit: str
    version: Version | None  # None: a chaos (non-release) head
    suffix: int  # the recipe's longest object-name suffix (see ccci_core.names)

    @property
    def again(self) -> str:
        """Return the ref that checks out exactly this target again."""
        if self.version is not None:
            return str(self.version)
        if self.ref is not None and PULL_REF_RE.fullmatch(self.ref):
            return self.ref  # fetched anew each time; the commit is checked
        return self.commit

    def label(self) -> str:
        """Return the target for the log."""
        return str(self.version) if self.version else f"chaos {self.commit[:8]} ({self.ref})"


@dataclass
class Run:
    """One run: everything a lane needs, built by the entry point."""

    request: RunRequest
    domain: str
    catalog: Catalog
    apps: Apps
    agent: Agent
    report: RunReport
    run_dir: Path  # per-run scratch, removed at the end
    checkouts: Path  # where the deployer reads recipe checkouts
    run_hex: str
    cancel: Cancellation
    tests_dir: Path
    realm: str | None = None  # the run's Keycloak realm, once created
    loader: Loader = field(default_factory=StackConfig)  # docker's compose loader

    @property
    def recipe(self) -> str:
        """Return the recipe under test."""
        return self.request.recipe

    def resolve(self) -> Target:
        """Check the requested ref out once and pin it (bad refs and recipes raise BadInput)."""
        sha = self.request.sha
        with self.catalog.checkout(self.recipe, self.request.ref, self.checkouts, sha=sha) as co:
            env = {**self.apps.meta.extra_env, **self.apps.env}
            return Target(
                self.request.ref, co.commit, co.version, recipe_suffix(co.path, env, self.loader)
            )

    @contextmanager
    def checkout(self, target: Target | Version) -> Iterator[Checkout]:
        """Check out ``target`` (or a release) for one deploy; removed after."""
        ref = str(target) if isinstance(target, Version) else target.again
        # A pull-request head is fetched anew each time: pin it to the commit the run started on.
        pin = target.commit if isinstance(target, Target) and ref == target.ref else None
        with self.catalog.checkout(self.recipe, ref, self.checkouts, sha=pin) as co:
            if isinstance(target, Target) and co.commit != target.commit:
                raise CheckFailed(f"{ref} moved from {target.commit[:8]} to {co.commit[:8]}")
            yield co

    def upgrade_base(self, target: Target) -> Version | None:
        """Return the newest release older than the target (the latest for a chaos head)."""
        versions = self.catalog.versions(self.recipe)
        if target.version is None:
            return versions[-1] if versions else None
        older = [v for v in versions if v < target.version]
        return older[-1] if older else None
