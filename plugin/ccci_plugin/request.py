"""What a run was asked to do: Drone's environment and ``cc-ci run`` flags, validated.

Drone passes a build's parameters as environment variables (``RECIPE``, ``REF``, ``CCCI_QUICK``,
``CCCI_PR``, ``CCCI_SHA``: the bridge sets them when it creates the build) and the step's plugin
settings as ``PLUGIN_<KEY>``. ``CCCI_SHA`` pins the commit the run tests (the head the bridge saw).
Precedence, most specific first: a ``cc-ci run`` flag, the build parameter, the plugin setting.
No ``REF`` means latest (the only kind of run that may promote a canonical).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ccci_core import build_params as params
from ccci_core.catalog import validate_ref
from ccci_core.errors import BadInput
from ccci_core.lanes import RunLane
from ccci_core.names import validate_recipe

_SHA_RE = re.compile(r"[0-9a-f]{40}")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


@dataclass(frozen=True)
class RunRequest:
    """A validated request for one run."""

    recipe: str
    ref: str | None = None
    quick: bool = False
    pr: int | None = None
    build_number: str | None = None
    build_link: str | None = None
    sha: str | None = None  # the head the forge reported: the commit this run tests

    @property
    def lane(self) -> RunLane:
        """Return the lane asked for: ``quick`` or ``cold``."""
        return "quick" if self.quick else "cold"


def _names(parameter: str) -> tuple[str, str]:
    """Return where a build parameter may come from: itself, then its plugin setting."""
    return parameter, params.plugin_setting(parameter)


def _pick(flag: str | None, env: Mapping[str, str], *names: str) -> tuple[str | None, str]:
    """Return the first value given and where it came from."""
    if flag is not None:
        return flag, "flag"
    for name in names:
        value = env.get(name)
        if value is not None and value.strip() != "":
            return value.strip(), name
    return None, names[0]


def _named(source: str, validate: Callable[[str], str], value: str) -> str:
    """Validate ``value``, prefixing a refusal with where the value came from."""
    try:
        return validate(value)
    except BadInput as exc:
        raise BadInput(f"{source}: {exc}") from exc


def _flag_bool(value: str, source: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise BadInput(f"{source}: expected 1/0, true/false or yes/no, got {value!r}")


def from_drone(
    env: Mapping[str, str],
    *,
    recipe: str | None = None,
    ref: str | None = None,
    quick: bool | None = None,
) -> RunRequest:
    """Build a RunRequest from Drone's environment, flags overriding it; raise BadInput."""
    recipe_value, recipe_source = _pick(recipe, env, *_names(params.RECIPE))
    if recipe_value is None:
        raise BadInput("no recipe: set RECIPE (build parameter), PLUGIN_RECIPE or --recipe")
    ref_value, ref_source = _pick(ref, env, *_names(params.REF))
    valid_recipe = _named(recipe_source, validate_recipe, recipe_value)
    valid_ref = None if ref_value is None else _named(ref_source, validate_ref, ref_value)
    if quick is None:
        quick_value, quick_source = _pick(None, env, *_names(params.QUICK))
        quick = quick_value is not None and _flag_bool(quick_value, quick_source)
    pr_value, pr_source = _pick(None, env, *_names(params.PR))
    pr = None
    if pr_value is not None:
        if not pr_value.isascii() or not pr_value.isdigit() or int(pr_value) < 1:
            raise BadInput(f"{pr_source}: expected a pull request number, got {pr_value!r}")
        pr = int(pr_value)
    sha_value, sha_source = _pick(None, env, *_names(params.SHA))
    if sha_value is not None and not _SHA_RE.fullmatch(sha_value):
        raise BadInput(f"{sha_source}: expected a 40-digit lowercase commit id, got {sha_value!r}")
    return RunRequest(
        recipe=valid_recipe,
        ref=valid_ref,
        quick=quick,
        pr=pr,
        build_number=env.get("DRONE_BUILD_NUMBER") or None,
        build_link=env.get("DRONE_BUILD_LINK") or None,
        sha=sha_value,
    )
