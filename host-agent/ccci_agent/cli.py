"""``cc-ci agent serve``, ``cc-ci reconcile`` and ``cc-ci prune``: the privileged host side.

Top-level imports: stdlib and the core only (every install builds the parser); the agent's own
dependencies (flask, gunicorn, docker) are imported inside ``agent serve``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ccci_core.errors import BadInput
from ccci_core.names import INFRA_APPS
from ccci_core.settings import load


def _serve(args: argparse.Namespace) -> int:
    from .server import serve
    from .settings import AgentSettings

    overrides: dict[str, Any] = {}
    if args.socket is not None:
        overrides["agent_socket"] = args.socket
    if args.state_dir is not None:
        overrides["state_dir"] = args.state_dir
    if args.workers < 1:
        raise BadInput("--workers must be at least 1")
    if args.threads is not None:
        if not 1 <= args.threads <= 256:
            raise BadInput("--threads must be between 1 and 256")
        overrides["agent_threads"] = args.threads
    serve(load(AgentSettings, **overrides), workers=args.workers)
    return 0


def _reconcile(args: argparse.Namespace) -> int:
    from .reconcile_cli import reconcile

    return reconcile(args)


def _prune(args: argparse.Namespace) -> int:
    from .prune import command

    return command(dry_run=args.dry_run)


def _sweep(args: argparse.Namespace) -> int:
    from .sweep_cli import sweep

    return sweep(args)


def register(sub: Any) -> None:
    """Add ``agent serve``, ``reconcile`` and ``prune``."""
    agent = sub.add_parser("agent", help="run the host agent")
    agent_sub = agent.add_subparsers(dest="agent_command", metavar="ACTION", required=True)
    serve = agent_sub.add_parser(
        "serve", help="serve the agent on its Unix socket in the foreground (gunicorn)"
    )
    serve.add_argument("--socket", type=Path, help="socket path (default: $CCCI_AGENT_SOCKET)")
    serve.add_argument("--state-dir", type=Path, help="state directory (default: $CCCI_STATE_DIR)")
    serve.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    serve.add_argument(
        "--threads", type=int, help="threads per worker (default: $CCCI_AGENT_THREADS, 8)"
    )
    serve.set_defaults(handler=_serve)

    reconcile = sub.add_parser(
        "reconcile",
        help="roll a live-warm infra app (keycloak, traefik) to its newest safe release",
        description="Gate first, then deploy with a health gate and rollback (keycloak: its data "
        "snapshotted first and restored on failure). Exit 0 applied, no-op or deferred (and a "
        "--dry-run plan), 1 held, rolled back or failed, 2 bad input or configuration.",
    )
    reconcile.add_argument("app", choices=INFRA_APPS)
    reconcile.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    reconcile.add_argument("--json", action="store_true", help="print the result as one object")
    reconcile.add_argument("--to", metavar="V", help="the target version (default: latest)")
    reconcile.add_argument(
        "--accept-migration",
        action="store_true",
        help="apply --to V although the gate holds it (you migrated); the health gate still runs",
    )
    reconcile.set_defaults(handler=_reconcile)

    prune = sub.add_parser(
        "prune",
        help="free disk: stopped containers, dangling images and build cache older than 24 h",
        description="Only when / is at or above CCCI_PRUNE_THRESHOLD percent used and no run is "
        "in flight (the host agent says). Never a tagged image, a volume or a network. Exit 0 "
        "pruned or nothing to do, 1 a removal failed, 2 bad configuration or the agent "
        "unreachable.",
    )
    prune.add_argument("--dry-run", action="store_true", help="show what would go, remove nothing")
    prune.set_defaults(handler=_prune)
    sweep = sub.add_parser(
        "sweep",
        help="the nightly job: infra forward, a cold run of every enrolled recipe, clean up",
        description="Skips while a run is in flight. Exit 0 when the sweep ran (red recipes are "
        "results), 1 when a step of its own broke, 2 bad configuration.",
    )
    sweep.add_argument("--dry-run", action="store_true", help="say what would run, change nothing")
    sweep.add_argument("--json", action="store_true", help="print the summary as one object")
    sweep.set_defaults(handler=_sweep)
