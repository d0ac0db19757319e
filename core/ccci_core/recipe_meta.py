"""Per-recipe test metadata: ``<CCCI_TESTS_DIR>/<recipe>/recipe_meta.py``, read, never run.

The file holds literal assignments only (``KEY = <literal>``), parsed with :mod:`ast`. Every key is
registered once in :data:`KEYS` with its type and default; an unknown UPPER-CASE name, a value of
the wrong type, or any statement that is not a literal assignment is a
:class:`~ccci_core.deploy.errors.RecipeMetaError` naming the file (and the key). Lower-case and
``_private`` names are the recipe's own business and are ignored.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .deploy.errors import RecipeMetaError
from .names import validate_recipe

FILENAME = "recipe_meta.py"


def _is_bool(value: object) -> bool:
    return isinstance(value, bool)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _is_port(value: object) -> bool:
    return _is_int(value) and int(value) <= 65535  # type: ignore[call-overload]


def _is_path_or_none(value: object) -> bool:
    return value is None or (isinstance(value, str) and value.startswith("/") and "\n" not in value)


def _is_str(value: object) -> bool:
    return isinstance(value, str) and bool(value) and "\n" not in value


def _is_str_list(value: object) -> bool:
    return isinstance(value, list) and all(_is_str(item) for item in value)


def _is_str_dict(value: object) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and k.isupper() and isinstance(v, str) for k, v in value.items()
    )


@dataclass(frozen=True)
class Key:
    """One registered metadata key."""

    check: Callable[[object], bool]
    type_name: str
    default: Any
    doc: str


KEYS: dict[str, Key] = {
    "WARM_CANONICAL": Key(_is_bool, "bool", False, "keep a data-warm canonical for --quick"),
    "HEALTH_PATH": Key(_is_path_or_none, "str | None", None, "HTTP path that answers when up"),
    "HEALTH_SERVICE": Key(_is_str, "str", "app", "service the probe and markers address"),
    "HEALTH_PORT": Key(_is_port, "int", 80, "container port the probe addresses"),
    "DEPLOY_TIMEOUT": Key(_is_int, "int", 600, "seconds to converge and answer the probe"),
    "DEPS": Key(_is_str_list, "list[str]", [], "apps this recipe needs, e.g. ['keycloak']"),
    "EXTRA_ENV": Key(_is_str_dict, "dict[str, str]", {}, "env added to the app's env"),
    "MARKER_PATH": Key(
        _is_path_or_none, "str | None", None, "file in HEALTH_SERVICE's volume for data markers"
    ),
}


@dataclass(frozen=True)
class RecipeMeta:
    """The validated metadata of one recipe (defaults where the file is silent)."""

    recipe: str
    values: Mapping[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def __getitem__(self, key: str) -> Any:
        """Return ``key``'s value, or its registered default."""
        if key not in KEYS:
            raise KeyError(key)
        return self.values.get(key, KEYS[key].default)

    @property
    def deploy_timeout(self) -> int:
        """Return the seconds an app gets to become ready."""
        return int(self["DEPLOY_TIMEOUT"])

    @property
    def health_path(self) -> str | None:
        """Return the HTTP path of the health probe, or None for no probe."""
        value = self["HEALTH_PATH"]
        return None if value is None else str(value)

    @property
    def health_service(self) -> str:
        """Return the compose service the probe addresses."""
        return str(self["HEALTH_SERVICE"])

    @property
    def health_port(self) -> int:
        """Return the container port the probe addresses."""
        return int(self["HEALTH_PORT"])

    @property
    def extra_env(self) -> dict[str, str]:
        """Return env the recipe adds to its app."""
        return dict(self["EXTRA_ENV"])


def _literal(node: ast.expr, path: Path, key: str) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as exc:
        raise RecipeMetaError(
            path, key, "value must be a literal (no names, calls or f-strings)"
        ) from exc


def parse(text: str, path: Path, recipe: str) -> RecipeMeta:
    """Return the metadata in ``text`` (the contents of ``path``) or raise RecipeMetaError."""
    try:
        tree = ast.parse(text, filename=str(path))
    except (SyntaxError, ValueError) as exc:
        raise RecipeMetaError(path, None, f"not valid Python: {exc}") from exc
    values: dict[str, Any] = {}
    for index, node in enumerate(tree.body):
        if index == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the module docstring
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            raise RecipeMetaError(
                path, None, f"line {node.lineno}: only KEY = <literal> assignments are allowed"
            )
        if not isinstance(target, ast.Name):
            raise RecipeMetaError(path, None, f"line {node.lineno}: assign to a plain name")
        name = target.id
        if name.startswith("_") or not name.isupper():
            continue
        key = KEYS.get(name)
        if key is None:
            raise RecipeMetaError(path, name, f"unknown key (known: {', '.join(sorted(KEYS))})")
        literal = _literal(value, path, name)
        if not key.check(literal):
            raise RecipeMetaError(path, name, f"expected {key.type_name}, got {literal!r}")
        values[name] = literal
    return RecipeMeta(recipe, values, path)


def load(tests_dir: Path, recipe: str) -> RecipeMeta:
    """Return the metadata of ``recipe`` from ``tests_dir`` (defaults if it has no file)."""
    path = tests_dir / validate_recipe(recipe) / FILENAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return RecipeMeta(recipe)
    except (OSError, UnicodeDecodeError) as exc:
        raise RecipeMetaError(path, None, f"cannot read: {exc}") from exc
    return parse(text, path, recipe)
