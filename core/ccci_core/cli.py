"""The ``cc-ci`` command: one console script, one subcommand per job.

Exit codes for every subcommand: 0 success/pass, 1 a test or check failed (or a gate held),
2 bad input or configuration (one line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from . import __version__, operator, relay
from .catalog import gate_notes, versions_of
from .errors import BadInput, CcciError
from .gate import Action, decide
from .git import Git
from .settings import CcciSettings, load
from .versions import Version, latest

Handler = Callable[[argparse.Namespace], int]

# Each component may add subcommands with ``register(subparsers)`` in its ``cli`` module. Those
# modules import only the standard library and the core at the top, so every install can build the
# parser; the component's own dependencies are imported inside its handlers.
_COMPONENT_CLIS = ("ccci_plugin.cli", "ccci_agent.cli", "ccci_bridge.cli")

# Component settings, imported only when asked for (the agent's install lacks the bridge's deps).
_SETTINGS = {
    "agent": "ccci_agent.settings:AgentSettings",
    "reconcile": "ccci_agent.settings:ReconcileSettings",
    "sweep": "ccci_agent.sweep_cli:SweepSettings",
    "prune": "ccci_agent.settings:PruneSettings",
    "plugin": "ccci_plugin.settings:PluginSettings",
    "janitor": "ccci_plugin.settings:JanitorSettings",
    "bridge": "ccci_bridge.settings:BridgeSettings",
    "relay": "ccci_core.settings:RelaySettings",
}


def _versions(args: argparse.Namespace) -> int:
    repo: Path = args.recipe_dir
    git = Git()
    if not repo.is_dir() or not git.succeeds("rev-parse", "--git-dir", cwd=repo):
        raise BadInput(f"{repo} is not a git repository")
    versions = versions_of(repo, git)
    newest = latest(versions)
    out: dict[str, object] = {
        "recipe_dir": str(repo),
        "versions": [str(v) for v in versions],
        "latest": None if newest is None else str(newest),
        "decision": None,
    }
    code = 0
    if args.from_ is not None or args.to is not None:
        if args.from_ is None:
            raise BadInput("--to needs --from (the version you are on)")
        current = _known(args.from_, versions, "--from")
        if args.to is None and newest is None:
            raise BadInput(f"{repo} has no version tags")
        target = _known(args.to, versions, "--to") if args.to is not None else newest
        assert target is not None  # noqa: S101 - narrowed above
        decision = decide(current, target, gate_notes(repo, target, git))
        out["decision"] = decision.to_dict()
        code = 1 if decision.action is Action.HOLD else 0
    if args.json:
        print(json.dumps(out, indent=2))
        return code
    for version in versions:
        print(version)
    if out["decision"] is not None:
        d = decision
        print(f"\n{d.current} → {d.target}: {d.bump} bump, {d.action.upper()}")
        for reason in d.reasons:
            print(f"  - {reason}")
    return code


def _known(text: str, versions: Sequence[Version], flag: str) -> Version:
    version = Version.parse(text)
    if version not in versions:
        raise BadInput(f"{flag} {text} is not a version tag of this recipe")
    return version


def _config(args: argparse.Namespace) -> int:
    module, _, name = _SETTINGS[args.component].partition(":")
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, CcciSettings)  # noqa: S101 - the table above
    settings = load(cls)
    values = settings.redacted()
    if args.json:
        print(json.dumps(values, indent=2))
    else:
        for key, value in values.items():
            print(f"{key}={value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``cc-ci``."""
    parser = argparse.ArgumentParser(
        prog="cc-ci",
        description="CI for Co-op Cloud recipes: cold runs, data-warm canonicals, --quick.",
        epilog="Exit codes: 0 success, 1 a test or check failed, 2 bad input or configuration.",
    )
    parser.add_argument("--version", action="version", version=f"cc-ci {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    versions = sub.add_parser(
        "versions",
        help="list a recipe's versions; with --from/--to, classify the bump and run the gate",
        description="Exit 0 when the gate applies (or nothing to do), 1 when it holds.",
    )
    versions.add_argument("recipe_dir", type=Path, metavar="RECIPE_DIR")
    versions.add_argument("--from", dest="from_", metavar="V", help="the version you are on")
    versions.add_argument("--to", metavar="V", help="the target (default: latest)")
    versions.add_argument("--json", action="store_true", help="machine-readable output")
    versions.set_defaults(handler=_versions)

    config = sub.add_parser(
        "config",
        help="print a component's settings as resolved from CCCI_* (secrets masked)",
    )
    config.add_argument("component", choices=sorted(_SETTINGS))
    config.add_argument("--json", action="store_true", help="machine-readable output")
    config.set_defaults(handler=_config)

    operator.register(sub)
    relay.register(sub)
    for name in _COMPONENT_CLIS:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``cc-ci`` and return its exit code."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except CcciError as exc:
        print(f"cc-ci: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
