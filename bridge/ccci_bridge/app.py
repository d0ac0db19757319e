"""The bridge's wiring point: ``create_app()`` (gunicorn runs ``'ccci_bridge.app:create_app()'``).

It loads :class:`BridgeSettings`, opens the shared dedupe store, builds the Drone and forge
adapters and a small thread pool for the slow work, and registers the routes of
:mod:`ccci_bridge.hooks`. Tests pass their own settings, adapters and an inline executor.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from flask import Flask

from .dedupe import Store
from .drone import Drone, DroneAPI
from .forge import Forge, Gitea, GitHub
from .settings import BridgeSettings
from .trigger import Trigger


class Executor(Protocol):
    """Where the forge flow runs: a thread pool in production, inline in tests."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Any:
        """Run ``fn(*args)`` now or later."""
        ...


@dataclass(frozen=True)
class Bridge:
    """What the routes need, stored in ``app.extensions['ccci_bridge']``."""

    settings: BridgeSettings
    store: Store
    trigger: Trigger
    executor: Executor


def _forges(settings: BridgeSettings) -> dict[str, Forge]:
    timeout = settings.http_timeout_s
    forges: dict[str, Forge] = {}
    if settings.gitea_enabled:
        forges["gitea"] = Gitea(
            settings.gitea_url, settings.gitea_token.get_secret_value(), timeout=timeout
        )
    if settings.github_enabled:
        forges["github"] = GitHub(
            settings.github_url, settings.github_token.get_secret_value(), timeout=timeout
        )
    return forges


def _log_to_gunicorn() -> None:
    """Send the bridge's log to gunicorn's error log when running under gunicorn."""
    ours, theirs = logging.getLogger("ccci_bridge"), logging.getLogger("gunicorn.error")
    if theirs.handlers and not ours.handlers:
        ours.handlers = list(theirs.handlers)
        ours.setLevel(logging.INFO)
        ours.propagate = False


def create_app(
    settings: BridgeSettings | None = None,
    *,
    drone: Drone | None = None,
    forges: Mapping[str, Forge] | None = None,
    executor: Executor | None = None,
) -> Flask:
    """Build the bridge's Flask app from ``settings`` (default: the ``CCCI_*`` environment)."""
    from ccci_core.settings import load

    from . import hooks

    settings = settings or load(BridgeSettings)
    if drone is None:
        drone = DroneAPI(
            settings.drone_server,
            settings.drone_token.get_secret_value(),
            settings.drone_repo,
            settings.drone_branch,
            timeout=settings.http_timeout_s,
        )
    store = Store(settings.bridge_state_dir)
    trigger = Trigger(
        drone=drone,
        forges=forges if forges is not None else _forges(settings),
        store=store,
        cooldown_s=settings.cooldown_s,
        trusted=settings.trigger_users,
        chat_users=settings.chat_users,
        recipe_owner=settings.recipe_owner,
    )
    if executor is None:
        # Threads start lazily at the first submit, so a pool built before gunicorn forks is fine.
        executor = ThreadPoolExecutor(settings.bridge_threads, thread_name_prefix="ccci-bridge")
    _log_to_gunicorn()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["ccci_bridge"] = Bridge(settings, store, trigger, executor)
    hooks.init_app(app)
    return app


__all__ = ["BridgeSettings", "create_app"]
