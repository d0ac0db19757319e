"""``cc-ci bridge serve``: run the bridge with Flask's development server.

Production runs ``gunicorn 'ccci_bridge.app:create_app()'``; this command is for development and
debugging. It imports Flask only when run, so every install can build the ``cc-ci`` parser.
"""

from __future__ import annotations

import argparse
import logging


def _serve(args: argparse.Namespace) -> int:
    from ccci_bridge.app import create_app

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = create_app()
    app.run(host=args.host, port=args.port, threaded=True)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``cc-ci bridge serve`` to ``cc-ci``."""
    bridge = sub.add_parser("bridge", help="the PR-comment and chat bridge to Drone")
    verbs = bridge.add_subparsers(dest="bridge_command", metavar="VERB", required=True)
    serve = verbs.add_parser(
        "serve",
        help="serve the bridge for development "
        "(production: gunicorn 'ccci_bridge.app:create_app()')",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port to bind (default 8080)")
    serve.set_defaults(handler=_serve)
