"""Per-recipe metadata: literal assignments only, registered keys, errors that name the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccci_core import recipe_meta
from ccci_core.deploy.errors import RecipeMetaError
from ccci_core.errors import BadInput, InvalidName


def _write(tests_dir: Path, recipe: str, text: str) -> Path:
    path = tests_dir / recipe / "recipe_meta.py"
    path.parent.mkdir(parents=True)
    path.write_text(text)
    return path


def test_missing_file_gives_every_default(tmp_path: Path) -> None:
    """A recipe without a recipe_meta.py gets the registered defaults."""
    meta = recipe_meta.load(tmp_path, "plain")
    assert (False, None, 600, [], {}) == (
        meta["WARM_CANONICAL"],
        meta.health_path,
        meta.deploy_timeout,
        meta["DEPS"],
        meta.extra_env,
    )


def test_values_are_read_without_running_the_file(tmp_path: Path) -> None:
    """Literal values are parsed; a docstring, private and lower-case names are fine."""
    text = (
        '"""Meta."""\n'
        "WARM_CANONICAL = True\n"
        "HEALTH_PATH = '/healthz'\n"
        "DEPLOY_TIMEOUT: int = 900\n"
        "DEPS = ['keycloak']\n"
        "EXTRA_ENV = {'LETS_ENCRYPT_ENV': ''}\n"
        "_PRIVATE = open('/etc/passwd')\n"
        "helper = 1\n"
    )
    meta = recipe_meta.load(tmp_path, "web") if _write(tmp_path, "web", text) else None
    assert meta is not None
    assert (True, "/healthz", 900, ["keycloak"], {"LETS_ENCRYPT_ENV": ""}) == (
        meta["WARM_CANONICAL"],
        meta.health_path,
        meta.deploy_timeout,
        meta["DEPS"],
        meta.extra_env,
    )


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("HEALTHPATH = '/'\n", "HEALTHPATH", "unknown key"),
        ("DEPLOY_TIMEOUT = '600'\n", "DEPLOY_TIMEOUT", "expected int"),
        ("DEPLOY_TIMEOUT = True\n", "DEPLOY_TIMEOUT", "expected int"),
        ("WARM_CANONICAL = 1\n", "WARM_CANONICAL", "expected bool"),
        ("HEALTH_PATH = 'healthz'\n", "HEALTH_PATH", "expected str | None"),
        ("DEPS = 'keycloak'\n", "DEPS", "expected list[str]"),
        ("EXTRA_ENV = {'a': 1}\n", "EXTRA_ENV", "expected dict[str, str]"),
        ("DEPLOY_TIMEOUT = 60 * 10\n", "DEPLOY_TIMEOUT", "must be a literal"),
        ("HEALTH_PATH = __import__('os').system('true')\n", "HEALTH_PATH", "must be a literal"),
        ("import os\n", None, "only KEY = <literal>"),
        ("A = B = 1\n", None, "only KEY = <literal>"),
        ("def f():\n    pass\n", None, "only KEY = <literal>"),
        ("WARM_CANONICAL = (\n", None, "not valid Python"),
    ],
)
def test_bad_file_names_file_and_key(
    tmp_path: Path, text: str, key: str | None, reason: str
) -> None:
    """Every refusal is a BadInput naming the file and, where there is one, the key."""
    path = _write(tmp_path, "web", text)
    with pytest.raises(RecipeMetaError) as caught:
        recipe_meta.load(tmp_path, "web")
    assert isinstance(caught.value, BadInput)
    assert (path, key) == (caught.value.path, caught.value.key)
    assert reason in str(caught.value)
    assert str(path) in str(caught.value)


def test_bad_recipe_name_never_reaches_a_path(tmp_path: Path) -> None:
    """The recipe name is validated before it becomes a path."""
    with pytest.raises(InvalidName):
        recipe_meta.load(tmp_path, "../etc")


def test_every_default_passes_its_own_check() -> None:
    """The registry is consistent: each default is a value of its declared type."""
    bad = [
        name
        for name, key in recipe_meta.KEYS.items()
        if key.default is not None and not key.check(key.default)
    ]
    assert [] == bad
