"""The NixOS modules: every file parses, and every ``cc-ci`` command a unit runs exists.

``nix-instantiate --parse`` (Debian's ``nix-bin``, installed by ``.ci/run``) checks the syntax
offline; evaluating the modules needs nixpkgs' ``lib`` and module system, which no network here
brings. The commands are read out of the ``.nix`` files and run through the project's own CLI.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ccci_core.cli import build_parser
from tests.agent_server import ROOT

NIX = ROOT / "nix"
NIX_FILES = sorted(NIX.rglob("*.nix"))
# ``/bin/cc-ci`` and its arguments, up to the end of the Nix string.
COMMAND_RE = re.compile(r'/bin/cc-ci((?: [^"\n]*)?)"')
INTERPOLATION_RE = re.compile(r"\$\{[^}]*\}")
GUNICORN_APP_RE = re.compile(r'"(ccci_bridge\.[a-z_.]+):([a-z_]+)\(\)"')
# What the design says the units run: each must be among the commands found.
REQUIRED = {
    "agent serve",
    "reconcile keycloak",
    "reconcile traefik",
    "sweep",
    "prune",
    "relay",
}


def nix_env() -> dict[str, str]:
    """Return an environment for nix without a daemon or build users (parsing needs neither)."""
    return {**os.environ, "NIX_CONFIG": "build-users-group =\nexperimental-features ="}


def unit_commands(files: list[Path] = NIX_FILES) -> list[str]:
    """Return each ``cc-ci …`` command line the units run, Nix interpolations left in."""
    found = [m[1].strip() for f in files for m in COMMAND_RE.finditer(f.read_text())]
    return sorted(set(found))


def subcommand(command: str) -> list[str]:
    """Return the words of ``command`` that name the subcommand (up to the first flag or value)."""
    words = []
    for word in command.split():
        if word.startswith("-") or "${" in word:
            break
        words.append(word)
    return words


def cc_ci(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the project's ``cc-ci`` as a unit would (another process, its own parser)."""
    return subprocess.run(
        [sys.executable, "-m", "ccci_core.cli", *args],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("path", NIX_FILES, ids=[str(p.relative_to(NIX)) for p in NIX_FILES])
def test_every_nix_file_parses(path: Path) -> None:
    """``nix-instantiate --parse`` accepts the file."""
    done = subprocess.run(
        ["nix-instantiate", "--parse", str(path)],
        check=False,
        capture_output=True,
        text=True,
        env=nix_env(),
        timeout=120,
    )
    assert 0 == done.returncode, done.stderr


def test_the_units_run_what_the_design_names() -> None:
    """The agent, both reconciles, the sweep, the prune and the relay each have a unit."""
    assert set() == REQUIRED - {" ".join(subcommand(c)) for c in unit_commands()}


@pytest.mark.parametrize("command", unit_commands())
def test_every_unit_command_exists(command: str) -> None:
    """``cc-ci <subcommand> --help`` exits 0: a unit can never call a missing subcommand."""
    done = cc_ci(*subcommand(command), "--help")
    assert (0, "") == (done.returncode, done.stderr), command


@pytest.mark.parametrize("command", unit_commands())
def test_every_unit_command_parses(command: str) -> None:
    """The whole line, each interpolated value taken as ``1``, is accepted by the parser."""
    argv = INTERPOLATION_RE.sub("1", command).split()
    args = build_parser().parse_args(argv)
    assert callable(args.handler)


def test_a_bogus_subcommand_is_caught(tmp_path: Path) -> None:
    """A unit naming a subcommand that does not exist fails the check (the check can fail)."""
    unit = tmp_path / "bogus.nix"
    unit.write_text('{ ExecStart = "${pkg}/bin/cc-ci reconcile postgres"; }\n')
    (command,) = unit_commands([unit])
    assert 0 != cc_ci(*subcommand(command), "--help").returncode


def test_the_bridge_unit_serves_the_app_factory() -> None:
    """gunicorn's ``module:factory()`` in the bridge unit names a real factory."""
    found = GUNICORN_APP_RE.findall((NIX / "modules" / "bridge.nix").read_text())
    assert 1 == len(found)
    (module, factory) = found[0]
    assert callable(getattr(importlib.import_module(module), factory))
