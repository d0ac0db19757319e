"""Serve the agent with gunicorn on a Unix socket (mode 0660, group ``socket_group``).

Before the workers start, the master repairs what a crash left in the state directory.

Workers are ``gthread``: each serves ``threads`` requests at once, so snapshots and restores that
hold a thread for minutes leave the others free for leases, status and alerts. That is safe
because every shared file is written atomically and every writer holds a ``StateDir.lock``,
an flock on a file descriptor of its own, which excludes threads as it excludes processes.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from .app import create_app
from .peercred import group_gid
from .services import build_services
from .settings import AgentSettings

log = logging.getLogger(__name__)
SOCKET_MODE = 0o660


class AgentServer(BaseApplication):  # type: ignore[misc] # gunicorn ships no types
    """Gunicorn running the agent app bound to ``unix:<socket>``."""

    def __init__(
        self, app: Flask, socket_path: Path, group: str, workers: int, threads: int
    ) -> None:
        self.application = app
        self.socket_path = socket_path
        self.group = group
        self.workers = workers
        self.threads = threads
        super().__init__()

    def load_config(self) -> None:
        """Bind the Unix socket and fix its mode and group once it exists."""
        socket_path, group = self.socket_path, self.group

        def when_ready(_server: Any) -> None:
            gid = group_gid(group)
            os.chown(socket_path, 0 if gid is None else -1, -1 if gid is None else gid)
            socket_path.chmod(SOCKET_MODE)
            if gid is None:
                log.warning("group %r does not exist: only root may use the agent", group)

        self.cfg.set("bind", [f"unix:{socket_path}"])
        self.cfg.set("workers", self.workers)
        self.cfg.set("worker_class", "gthread")
        self.cfg.set("threads", self.threads)
        # Clients open one connection per request; a kept-alive one would make gunicorn drain
        # the unread rest of a refused (413) body.
        self.cfg.set("keepalive", 0)
        self.cfg.set("umask", 0o117)  # the socket is born 0660, never wider
        # A gthread worker's main loop reports alive while its threads run long snapshots.
        self.cfg.set("timeout", 120)
        self.cfg.set("when_ready", when_ready)
        self.cfg.set("accesslog", "-")
        if "control_socket_disable" in self.cfg.settings:
            self.cfg.set("control_socket_disable", True)  # gunicorn >= 24 would add a socket in ~

    def load(self) -> Flask:
        """Return the app built in the master (workers fork with it)."""
        return self.application


def serve(settings: AgentSettings, workers: int = 2) -> None:
    """Recover the state directory, then serve until stopped."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    services = build_services(settings)
    services.state.ensure()
    for action in services.canonicals.recover():
        log.info("recover: %s", action)
    gid = group_gid(settings.socket_group)
    if gid is not None:
        os.chown(services.state.root, -1, gid)
    settings.agent_socket.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    app = create_app(services=services)
    server = AgentServer(
        app, settings.agent_socket, settings.socket_group, workers, settings.agent_threads
    )
    server.run()
