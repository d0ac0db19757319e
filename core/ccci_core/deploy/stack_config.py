"""docker/cli's compose loader, run as ``docker stack config``: the one abra embeds.

abra loads a recipe with docker/cli's loader (merge of the ``COMPOSE_FILE`` list, interpolation,
the schema's type casts); ``docker stack config`` runs that same loader and prints the result. So
we never merge or interpolate compose files by hand, and the stack we deploy equals abra's by
construction: ports merged by published port, secrets and configs by source, volumes by target,
list-form ``environment`` united across overlays, labels and environment never cast.

The loader runs with **only the app's env** as its process environment (``env -i`` style), as abra
hands the loader only the app env: bare ``- VAR`` entries are filled from the app env, and nothing
of cc-ci's own environment (tokens, paths) can reach an app.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from ..process import ProcessError, run
from .errors import DeployError, RecipeError

TIMEOUT = 60.0


class StackConfig:
    """Load compose files with ``docker stack config`` (``docker_cli`` is the CLI to run)."""

    def __init__(self, docker_cli: str = "docker") -> None:
        self.docker_cli = docker_cli

    def _argv(self, files: Sequence[str]) -> list[str]:
        cli = shutil.which(self.docker_cli)
        if cli is None:
            raise DeployError(f"no docker CLI {self.docker_cli!r} on PATH (docker stack config)")
        argv = [cli, "stack", "config"]
        for name in files:
            argv += ["--compose-file", name]
        return argv

    def load(
        self,
        folder: Path,
        files: Sequence[str],
        env: Mapping[str, str],
    ) -> dict[str, Any]:
        """Return the merged, interpolated tree of ``files`` in ``folder`` for ``env``."""
        argv = self._argv(files)
        try:
            out = run(argv, cwd=folder, env=dict(env), timeout=TIMEOUT)
        except ProcessError as exc:
            output = exc.output.strip()
            if any(f"unknown {what}" in output for what in ("command", "flag", "shorthand")):
                raise DeployError(
                    f"{argv[0]} has no 'docker stack config' (it needs a recent Docker CLI; "
                    "the engine may stay older)",
                    command=argv,
                ) from exc
            raise RecipeError(
                f"docker's compose loader refused the recipe: {output[-800:]}"
            ) from exc
        try:
            tree = yaml.safe_load(out)
        except yaml.YAMLError as exc:
            raise DeployError(f"docker stack config printed no YAML: {exc}") from exc
        if not isinstance(tree, dict) or not isinstance(tree.get("services"), dict):
            raise RecipeError(f"{folder} defines no services")
        return tree
