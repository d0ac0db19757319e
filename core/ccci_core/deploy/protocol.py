"""The deployer port: what a lane or a reconcile may do to an app, whatever deploys it.

An app is named by :class:`ccci_core.names.AppName` (domain, stack, recipe) and lives on the local
server. A recipe arrives as a :class:`ccci_core.catalog.Checkout` (``version`` None = chaos).
Two adapters implement :class:`Deployer`: ``abra`` (production) and ``swarm`` (hosts without
abra, and every engine test).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from ..catalog import Checkout
from ..names import AppName

LABEL_PREFIX = "coop-cloud"


def version_label(stack: str) -> str:
    """Return the service label abra reads an app's deployed version from."""
    return f"{LABEL_PREFIX}.{stack}.version"


def chaos_label(stack: str) -> str:
    """Return the service label abra sets to ``true`` on a chaos deploy."""
    return f"{LABEL_PREFIX}.{stack}.chaos"


def chaos_version_label(stack: str) -> str:
    """Return the service label abra sets to the deployed commit on a chaos deploy."""
    return f"{LABEL_PREFIX}.{stack}.chaos-version"


@dataclass(frozen=True)
class Deployed:
    """What runs for an app: its version label and whether it is a chaos deploy."""

    stack: str
    version: str | None
    chaos: bool = False
    chaos_version: str | None = None


class Deployer(Protocol):
    """Operations on one app of the local server."""

    def exists(self, app: AppName) -> bool:
        """Return whether the app has been created (its env exists)."""

    def new(self, app: AppName, checkout: Checkout, env: Mapping[str, str]) -> None:
        """Create the app's env from the recipe's ``.env.sample`` plus ``env``."""

    def generate_secrets(self, app: AppName, checkout: Checkout) -> None:
        """Create the app's missing secrets with generated values."""

    def deploy(self, app: AppName, checkout: Checkout) -> Deployed:
        """Deploy the checkout (its version, or chaos when it has none); do not wait."""

    def undeploy(self, app: AppName) -> None:
        """Take the stack down, keep volumes and secrets; return when no task is left."""

    def remove(self, app: AppName) -> None:
        """Delete the stack, its volumes, its secrets and its env (the cold teardown); return
        when nothing of it is left, its network included."""

    def deployed(self, app: AppName) -> Deployed | None:
        """Return what is deployed for the app, or None when nothing is."""

    def volumes(self, app: AppName) -> list[str]:
        """Return the names of the app's volumes."""
