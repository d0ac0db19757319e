"""Read a recipe folder the way abra does, without running any of it.

Pure functions: parse the app env (``.env`` format) and the ``export X=Y`` lines of ``abra.sh``
(never executed), interpolate ``${VAR}`` in compose files, merge ``compose.yml`` with the
``COMPOSE_FILE`` list, and name the Docker objects an app creates (``<stack>_<volume>``,
``<stack>_<secret>_<version>``). The only import beyond the standard library is PyYAML.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ..names import suffix_len
from .errors import RecipeError

DEFAULT_COMPOSE = "compose.yml"
_MAPPING_KEYS = frozenset({"environment", "labels"})  # values stay strings; list form K=V too
_ENV_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_EXPORT_RE = re.compile(r"export\s+(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)")
_LITERAL_RE = re.compile(r"[A-Za-z0-9_.:/+@,-]*")
_COMPOSE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\.ya?ml")
_VAR_RE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    # An unquoted value ends at " #": abra keeps modifiers such as "v1 # length=32" there.
    return value.split(" #", 1)[0].strip()


def parse_env(text: str) -> dict[str, str]:
    """Return the ``KEY=VALUE`` pairs of a ``.env`` file (comments, blanks, ``export`` ignored)."""
    env: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").lstrip()
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not _ENV_KEY_RE.fullmatch(key):
            raise RecipeError(f"env line {number} is not KEY=VALUE: {raw!r}")
        env[key] = _unquote(value)
    return env


def render_env(env: Mapping[str, str]) -> str:
    """Return ``env`` as ``.env`` text that :func:`parse_env` reads back unchanged."""
    lines = []
    for key, value in env.items():
        if not _ENV_KEY_RE.fullmatch(key) or "\n" in value or "'" in value:
            raise RecipeError(f"cannot write env {key}={value!r}")
        lines.append(f"{key}='{value}'")
    return "\n".join(lines) + "\n"


def parse_abra_sh(text: str) -> dict[str, str]:
    """Return the literal ``export X=Y`` lines of an ``abra.sh``; everything else is ignored."""
    found: dict[str, str] = {}
    for raw in text.splitlines():
        match = _EXPORT_RE.fullmatch(raw.strip())
        if match is None:
            continue
        value = _unquote(match["value"])
        # Only literals: anything that would need a shell ($, `, ;, spaces) is not ours to guess.
        if _LITERAL_RE.fullmatch(value):
            found[match["key"]] = value
    return found


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Substitute ``$VAR``, ``${VAR}``, ``${VAR:-x}``, ``${VAR:?error}``, ``$$`` (no nesting)."""

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        value = env.get(name)
        op, arg = match["op"], match["arg"] or ""
        unset = value is None or (op is not None and op.startswith(":") and value == "")
        if op is not None and op.endswith("-") and unset:
            return interpolate(arg, env)
        if op is not None and op.endswith("?") and unset:
            raise RecipeError(f"required variable {name} is missing: {arg or 'no value'}")
        return value or ""

    return _VAR_RE.sub(replace, text)


def _cast(value: str) -> Any:
    """Type a substituted scalar the way compose's loader does (``published: ${PORT}`` → int)."""
    if value.isdigit():
        return int(value)
    return {"true": True, "false": False}.get(value, value)


def _interpolate_tree(node: Any, env: Mapping[str, str], key: str | None = None) -> Any:
    if isinstance(node, str):
        value = interpolate(node, env)
        return _cast(value) if "$" in node and key not in _MAPPING_KEYS else value
    if isinstance(node, list):
        return [_interpolate_tree(item, env, key) for item in node]
    if isinstance(node, dict):
        return {name: _interpolate_tree(value, env, name) for name, value in node.items()}
    return node


def escape_tree(node: Any) -> Any:
    """Return ``node`` with every ``$`` doubled, so ``docker stack deploy`` leaves it alone."""
    if isinstance(node, str):
        return node.replace("$", "$$")
    if isinstance(node, list):
        return [escape_tree(item) for item in node]
    if isinstance(node, dict):
        return {key: escape_tree(value) for key, value in node.items()}
    return node


def _as_mapping(value: Any) -> dict[str, Any] | None:
    """Return list-form ``environment``/``labels`` (``["K=V"]``) as a mapping."""
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        out: dict[str, Any] = {}
        for item in value:
            key, _, val = item.partition("=")
            out[key] = val
        return out
    return None


def merge(base: Any, override: Any, key: str | None = None) -> Any:
    """Merge two compose trees: mappings recursively, lists united, scalars overridden."""
    if key in _MAPPING_KEYS:
        left, right = _as_mapping(base), _as_mapping(override)
        if left is not None and right is not None:
            return {**left, **right}
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for name, value in override.items():
            merged[name] = merge(base[name], value, name) if name in base else value
        return merged
    if isinstance(base, list) and isinstance(override, list) and key != "command":
        return base + [item for item in override if item not in base]
    return override


def compose_files(env: Mapping[str, str]) -> list[str]:
    """Return the compose files the app uses (``COMPOSE_FILE``, colon-separated)."""
    names = [n for n in env.get("COMPOSE_FILE", DEFAULT_COMPOSE).split(":") if n]
    for name in names:
        if not _COMPOSE_NAME_RE.fullmatch(name):
            raise RecipeError(f"COMPOSE_FILE entry {name!r} is not a compose file in the recipe")
    return names or [DEFAULT_COMPOSE]


def load_compose(folder: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """Return the merged, interpolated compose tree of a recipe folder for ``env``."""
    merged: dict[str, Any] = {}
    for name in compose_files(env):
        path = folder / name
        try:
            tree = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise RecipeError(f"cannot read {name} in {folder}: {exc}") from exc
        except yaml.YAMLError as exc:
            raise RecipeError(f"{name} is not valid YAML: {exc}") from exc
        if not isinstance(tree, dict) or not isinstance(tree.get("services", {}), dict):
            raise RecipeError(f"{name} is not a compose file (no services mapping)")
        merged = merge(merged, _interpolate_tree(tree, env))
    if not merged.get("services"):
        raise RecipeError(f"{folder} defines no services")
    return merged


def volume_keys(compose: Mapping[str, Any]) -> list[str]:
    """Return the recipe's own (non-external) named volumes."""
    volumes = compose.get("volumes") or {}
    return [name for name, spec in volumes.items() if not (spec or {}).get("external")]


def secret_versions(compose: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """Return each generated secret and its version from ``SECRET_<NAME>_VERSION``."""
    out: dict[str, str] = {}
    for name, spec in (compose.get("secrets") or {}).items():
        if (spec or {}).get("file"):
            continue  # a file secret ships with the recipe; nothing to generate
        variable = f"SECRET_{name.upper()}_VERSION"
        version = env.get(variable)
        if not version:
            raise RecipeError(f"secret {name!r} needs {variable} in the app env")
        out[name] = version
    return out


def secret_name(stack: str, name: str, version: str) -> str:
    """Return the Docker secret name of a recipe secret, as abra names it."""
    return f"{stack}_{name}_{version}"


def recipe_env(folder: Path, env: Mapping[str, str]) -> dict[str, str]:
    """Return what a new app of the recipe in ``folder`` would see: sample env, abra.sh, ``env``."""
    values: dict[str, str] = {}
    sample, abra_sh = folder / ".env.sample", folder / "abra.sh"
    if sample.is_file():
        values.update(parse_env(sample.read_text(encoding="utf-8")))
    if abra_sh.is_file():
        values.update(parse_abra_sh(abra_sh.read_text(encoding="utf-8")))
    return {**values, **env}


def recipe_suffix(folder: Path, env: Mapping[str, str]) -> int:
    """Return the longest ``<volume>`` or ``<secret>_<version>`` the recipe adds to a stack name.

    This is what :mod:`ccci_core.names` needs to keep every object name within Swarm's limit.
    """
    values = {**recipe_env(folder, env), "STACK_NAME": "stack"}
    tree = load_compose(folder, values)
    return suffix_len(volume_keys(tree), secret_versions(tree, values))
