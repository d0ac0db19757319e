"""The NixOS modules: every file parses, and every ``cc-ci`` command a unit runs exists.

``nix-instantiate --parse`` (Debian's ``nix-bin``, installed by ``.ci/run``) checks the syntax
offline. nixpkgs (its ``lib``, its module system, the packages) is not here and no network brings
it, so ``tests/deploy/eval-modules.nix`` evaluates the modules against a stub of the few ``lib``
functions they use and a small fixpoint in place of the module system: what options they declare,
and the units they make with every part enabled. The commands are read both out of the ``.nix``
files (as written) and out of the evaluated units, and run through the project's own CLI.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ccci_core.cli import build_parser
from tests.agent_server import ROOT
from tests.deploy.pipeline import pyproject_dependencies

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


# -- evaluated offline (tests/deploy/eval-modules.nix) ------------------------------------------

EVAL = ROOT / "tests" / "deploy" / "eval-modules.nix"
PARTS = ("agent", "bridge", "infra", "sweep", "prune", "relay", "droneRunner")
ALL_ON = (
    '{ services.cc-ci = { maxTests = 3; droneRunner.environmentFile = "/run/keys/runner"; '
    + " ".join(f"{part}.enable = {{on}};" for part in PARTS)
    + " }; }"
)


@functools.cache
def evaluated(on: bool = True) -> dict[str, Any]:
    """Return the stub evaluation of nix/ with every part enabled (or none)."""
    overrides = ALL_ON.replace("{on}", "true" if on else "false")
    argv = ["nix-instantiate", "--eval", "--strict", "--json", str(EVAL)]
    done = subprocess.run(
        [*argv, "--arg", "overrides", overrides],
        check=False,
        capture_output=True,
        text=True,
        env=nix_env(),
        timeout=300,
    )
    assert 0 == done.returncode, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def evaluated_commands() -> list[str]:
    """Return the argv (after ``cc-ci``) of each evaluated unit that runs cc-ci."""
    found = []
    for unit in evaluated()["services"].values():
        argv = shlex.split(unit["execStart"])
        if argv[0].endswith("/bin/cc-ci"):
            found.append(shlex.join(argv[1:]))
    return sorted(found)


def test_every_part_makes_its_units() -> None:
    """With every part enabled the modules make these units; with none, no unit at all."""
    expected = {
        "cc-ci-agent",
        "cc-ci-bridge",
        "warm-keycloak",
        "deploy-proxy",
        "nightly-sweep",
        "ci-docker-prune",
        "ccci-relay",
        "drone-runner-docker",
    }
    assert expected == set(evaluated()["services"])
    assert {"nightly-sweep", "ci-docker-prune", "ccci-relay"} == set(evaluated()["timers"])
    assert ({}, {}) == (evaluated(False)["services"], evaluated(False)["timers"])


def test_every_option_is_typed_and_described() -> None:
    """Each option has a type and a description; each ``enable`` is an mkEnableOption."""
    options = evaluated()["options"]
    assert [] == [o["path"] for o in options if not (o["type"] and o["description"])]
    enables = [o for o in options if o["path"][-1] == "enable"]
    assert sorted(PARTS) == sorted(o["path"][-2] for o in enables)
    assert all(o["enable"] for o in enables)


@pytest.mark.parametrize("command", evaluated_commands())
def test_every_evaluated_command_parses(command: str) -> None:
    """The command each evaluated unit runs, values filled in, parses and has ``--help``."""
    argv = shlex.split(command)
    assert callable(build_parser().parse_args(argv).handler)
    assert 0 == cc_ci(*subcommand(command), "--help").returncode


def test_the_reconciles_are_boot_oneshots_never_restarted_mid_switch() -> None:
    """warm-keycloak and deploy-proxy: oneshots wanted at boot, restartIfChanged = false.

    Without RemainAfterExit a oneshot is inactive once done, so each switch-to-configuration,
    which starts the active targets again, runs it again: every activation, as at boot.
    """
    services = evaluated()["services"]
    for name, app in [("warm-keycloak", "keycloak"), ("deploy-proxy", "traefik")]:
        unit = services[name]
        assert ("oneshot", False, False, ["multi-user.target"]) == (
            unit["type"],
            unit["remainAfterExit"],
            unit["restartIfChanged"],
            unit["wantedBy"],
        )
        assert unit["execStart"].endswith(f"/bin/cc-ci reconcile {app}")
    assert [] == evaluated()["activation"]


def test_the_shared_dirs_are_the_plugin_users_and_the_groups() -> None:
    """Runs, apps and abra dirs: setgid, group ci-warm, owned by the image's user; writers 0007.

    The host's sweep and reconciles (root) and the plugin image's user both write there.
    """
    rules = evaluated()["tmpfiles"]
    dirs = ["/var/lib/ci-runs", "/var/lib/ci-apps", "/var/lib/cc-ci/abra"]
    assert [f"d {d} 2770 10001 ci-warm -" for d in dirs] == rules
    services = evaluated()["services"]
    writers = ["warm-keycloak", "deploy-proxy", "nightly-sweep"]
    assert ["0007"] * 3 == [services[name]["umask"] for name in writers]


def test_the_sweep_runs_nightly_at_three_and_catches_up() -> None:
    """nightly-sweep.timer: 03:00, Persistent (a missed night runs at boot)."""
    assert {"OnCalendar": "*-*-* 03:00:00", "Persistent": True} == evaluated()["timers"][
        "nightly-sweep"
    ]


def test_the_runner_capacity_is_max_tests() -> None:
    """DRONE_RUNNER_CAPACITY is services.cc-ci.maxTests, as the agent's CCCI_MAX_TESTS."""
    services = evaluated()["services"]
    runner = services["drone-runner-docker"]["environment"]["DRONE_RUNNER_CAPACITY"]
    agent = services["cc-ci-agent"]["environment"]["CCCI_MAX_TESTS"]
    assert ("3", "3") == (runner, agent)


def test_the_package_depends_on_what_pyproject_names() -> None:
    """nix/package.nix carries the core's and the three extras' dependencies, no more, no less."""
    package = evaluated()["package"]
    assert ("cc-ci", pyproject_dependencies(["agent", "plugin", "bridge"])) == (
        package["pname"],
        set(package["dependencies"]),
    )
