"""``cc-ci agent serve``: the privileged host agent (the operator commands are in the core).

Top-level imports: stdlib and the core only (every install builds the parser); the agent's own
dependencies (flask, gunicorn, docker) are imported inside ``agent serve``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ccci_core.errors import BadInput
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


def register(sub: Any) -> None:
    """Add ``agent serve``."""
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
