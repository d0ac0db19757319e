"""The bridge's wiring point: ``create_app()`` (gunicorn runs ``'ccci_bridge.app:create_app()'``).

It loads :class:`BridgeSettings`, opens the shared store, builds the Drone, forge and chat
adapters, a small thread pool for the slow work and the verdicts' poller (one per worker, one
polling: :mod:`ccci_bridge.poller`), and registers the routes of :mod:`ccci_bridge.hooks` and
:mod:`ccci_bridge.pages`. Tests pass their own settings, adapters and an inline executor.

Each gunicorn worker builds its own app after the fork (do not run gunicorn with ``--preload``: the
poller's thread would start in the master).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from flask import Flask

from .chat import MatrixReplies
from .dedupe import Store
from .drone import Drone, DroneAPI
from .forge import Forge, Gitea, GitHub
from .poller import Poller, PollLock
from .records import Records
from .settings import BridgeSettings
from .trigger import Trigger
from .verdicts import ChatReplies, Verdicts


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
    records: Records
    trigger: Trigger
    verdicts: Verdicts
    executor: Executor
    poller: Poller


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


def _chat(settings: BridgeSettings) -> ChatReplies | None:
    if not settings.matrix_homeserver:
        return None
    return MatrixReplies(
        settings.matrix_homeserver,
        settings.matrix_token.get_secret_value(),
        timeout=settings.http_timeout_s,
    )


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
    chat: ChatReplies | None = None,
    executor: Executor | None = None,
) -> Flask:
    """Build the bridge's Flask app from ``settings`` (default: the ``CCCI_*`` environment).

    The poller starts unless ``CCCI_POLL_INTERVAL_S`` is 0.
    """
    from ccci_core.settings import load

    from . import hooks, pages

    settings = settings or load(BridgeSettings)
    if drone is None:
        drone = DroneAPI(
            settings.drone_server,
            settings.drone_token.get_secret_value(),
            settings.drone_repo,
            settings.drone_branch,
            timeout=settings.http_timeout_s,
        )
    forges = forges if forges is not None else _forges(settings)
    store = Store(settings.bridge_state_dir)
    records = Records(store)
    trigger = Trigger(
        drone=drone,
        forges=forges,
        store=store,
        records=records,
        cooldown_s=settings.cooldown_s,
        trusted=settings.trigger_users,
        chat_users=settings.chat_users,
        recipe_owner=settings.recipe_owner,
    )
    verdicts = Verdicts(
        drone=drone,
        forges=forges,
        records=records,
        chat=chat if chat is not None else _chat(settings),
        timeout_s=settings.verdict_timeout_s,
    )
    if executor is None:
        # Threads start lazily at the first submit, so a pool built before gunicorn forks is fine.
        executor = ThreadPoolExecutor(settings.bridge_threads, thread_name_prefix="ccci-bridge")
    poller = Poller(
        verdicts.poll, PollLock(settings.bridge_state_dir), settings.poll_interval_s or 60.0
    )
    _log_to_gunicorn()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["ccci_bridge"] = Bridge(
        settings, store, records, trigger, verdicts, executor, poller
    )
    hooks.init_app(app)
    pages.init_app(app)
    if settings.poll_interval_s > 0:
        poller.start()
    return app


__all__ = ["BridgeSettings", "create_app"]
