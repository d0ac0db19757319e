"""Read a recipe folder the way abra does, without running any of it.

What abra adds around docker's compose loader (:mod:`.stack_config`) lives here as pure functions:
the app env (:mod:`.envfile`) plus ``abra.sh``'s ``export X=Y`` lines (never executed), the
``COMPOSE_FILE`` list, and the Docker objects an app creates — volumes ``<stack>_<volume>``, and
the secrets and configs the recipe names itself (``${STACK_NAME}_db_password_${SECRET_…}``:
the version is what follows the last ``_`` of the loaded name, as abra reads it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from ..names import SWARM_NAME_MAX
from . import envfile
from .errors import RecipeError

DEFAULT_COMPOSE = "compose.yml"
ENV_SAMPLE = ".env.sample"
ABRA_SH = "abra.sh"
SUFFIX_STACK = "stack"  # the placeholder STACK_NAME under which a recipe's name suffixes are read
CHARSETS = {
    "default": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    "special": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!@#%^&*_-+=",
}
DEFAULT_SECRET_LENGTH = 32
MAX_SECRET_LENGTH = 4096
_EXPORT_RE = re.compile(r"export\s+(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)")
_LITERAL_RE = re.compile(r"[A-Za-z0-9_.:/+@,-]*")
_SEGMENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_OBJECT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_VARIABLE_RE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")


class Loader(Protocol):
    """docker's compose loader (:class:`.stack_config.StackConfig`)."""

    def load(self, folder: Path, files: list[str], env: Mapping[str, str]) -> dict[str, Any]:
        """Return the merged, interpolated compose tree of ``files`` in ``folder``."""


@dataclass(frozen=True)
class Secret:
    """A secret the app needs generated: its Docker name, version and how to generate it."""

    key: str
    name: str
    version: str
    length: int = DEFAULT_SECRET_LENGTH
    charset: str = "default"


def parse_abra_sh(text: str) -> dict[str, str]:
    """Return the literal ``export X=Y`` lines of an ``abra.sh``; everything else is ignored."""
    found: dict[str, str] = {}
    for raw in text.splitlines():
        match = _EXPORT_RE.fullmatch(raw.strip())
        if match is None:
            continue
        value = envfile.parse_env(f"V={match['value']}").get("V", "")
        # Only literals: anything that would need a shell ($, `, ;, spaces) is not ours to guess.
        if _LITERAL_RE.fullmatch(value):
            found[match["key"]] = value
    return found


def escape_tree(node: Any) -> Any:
    """Return ``node`` with every ``$`` doubled, so ``docker stack deploy`` leaves it alone."""
    if isinstance(node, str):
        return node.replace("$", "$$")
    if isinstance(node, list):
        return [escape_tree(item) for item in node]
    if isinstance(node, dict):
        return {key: escape_tree(value) for key, value in node.items()}
    return node


class _QuotedStrings(yaml.SafeDumper):
    """A dumper that double-quotes every string.

    PyYAML writes ``752e0145`` (a commit's first 8 digits) bare, as YAML 1.1 reads it as a string;
    docker's loader reads YAML 1.2, where it is a float (``7.52e+147``). Quoted, a string stays one.
    """


def _quoted(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style='"')


_QuotedStrings.add_representer(str, _quoted)


def dump_tree(tree: Mapping[str, Any]) -> str:
    """Return the compose file ``docker stack deploy`` reads for ``tree`` (``$`` escaped, every
    string quoted), so it reads back exactly the tree we rendered."""
    return yaml.dump(escape_tree(dict(tree)), Dumper=_QuotedStrings, sort_keys=False)


def compose_files(env: Mapping[str, str]) -> list[str]:
    """Return the compose files the app uses (``COMPOSE_FILE``, colon-separated, in the recipe)."""
    names = [n for n in env.get("COMPOSE_FILE", DEFAULT_COMPOSE).split(":") if n]
    for name in names:
        parts = name.split("/")
        if not (
            name.endswith((".yml", ".yaml"))
            and all(_SEGMENT_RE.fullmatch(part) and part != ".." for part in parts)
        ):
            raise RecipeError(f"COMPOSE_FILE entry {name!r} is not a compose file in the recipe")
    return names or [DEFAULT_COMPOSE]


def recipe_env(folder: Path, env: Mapping[str, str]) -> dict[str, str]:
    """Return what a new app of the recipe in ``folder`` would see: sample env, abra.sh, ``env``."""
    values: dict[str, str] = {}
    sample, abra_sh = folder / ENV_SAMPLE, folder / ABRA_SH
    if abra_sh.is_file():
        values.update(parse_abra_sh(abra_sh.read_text(encoding="utf-8")))
    if sample.is_file():
        values.update(envfile.parse_env(sample.read_text(encoding="utf-8")))
    return {**values, **env}


def volume_keys(compose: Mapping[str, Any]) -> list[str]:
    """Return the recipe's own (non-external) named volumes."""
    volumes = compose.get("volumes") or {}
    return [name for name, spec in volumes.items() if not (spec or {}).get("external")]


def _named(kind: str, key: str, spec: Any, stack: str) -> str:
    name = (spec or {}).get("name")
    if not isinstance(name, str) or not name:
        raise RecipeError(f"{kind} {key!r} has no name: (abra names it ${{STACK_NAME}}_...)")
    if not name.startswith(f"{stack}_") or len(name) == len(stack) + 1:
        raise RecipeError(f"{kind} {key!r} is named {name!r}, which does not start with {stack}_")
    return name


def raw_secret_names(folder: Path, files: list[str]) -> dict[str, str]:
    """Return each secret's ``name:`` as the recipe writes it (``${STACK_NAME}_x_${SECRET_X}``).

    The last file that names a secret wins, as it does in the loader; nothing else is read here.
    """
    names: dict[str, str] = {}
    for name in files:
        try:
            tree = yaml.safe_load((folder / name).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise RecipeError(f"cannot read {name}: {exc}") from exc
        for key, spec in ((tree or {}).get("secrets") or {}).items():
            if isinstance(spec, dict) and isinstance(spec.get("name"), str):
                names[str(key)] = spec["name"]
    return names


def secrets(
    tree: Mapping[str, Any],
    raw: Mapping[str, str],
    modifiers: Mapping[str, Mapping[str, str]],
    stack: str,
) -> list[Secret]:
    """Return the secrets to generate, read from the loaded ``tree`` as abra reads them.

    The version is what follows the last ``_`` of the loaded name; ``length``/``charset`` come
    from the modifiers of the env variable in the recipe's ``raw`` name (its last ``${...}``).
    """
    found = []
    for key, spec in (tree.get("secrets") or {}).items():
        if (spec or {}).get("file"):
            continue  # a file secret ships with the recipe; nothing to generate
        name = _named("secret", key, spec, stack)
        version = name.rpartition("_")[2]
        if not version or name.endswith("_"):
            raise RecipeError(f"secret {key!r} has no version ({name!r}): is its variable set?")
        variables = _VARIABLE_RE.findall(raw.get(key, ""))
        wanted = dict(modifiers.get(variables[-1], {})) if variables else {}
        found.append(Secret(key, name, version, *_generation(key, wanted)))
    return found


def _generation(key: str, wanted: Mapping[str, str]) -> tuple[int, str]:
    length_text = wanted.get("length", str(DEFAULT_SECRET_LENGTH))
    if not length_text.isdigit() or not 1 <= int(length_text) <= MAX_SECRET_LENGTH:
        raise RecipeError(f"secret {key!r}: length={length_text!r} is not 1-{MAX_SECRET_LENGTH}")
    charset = wanted.get("charset", "default")
    for part in charset.split(","):
        if part not in CHARSETS:
            raise RecipeError(f"secret {key!r}: unknown charset {part!r} ({', '.join(CHARSETS)})")
    return int(length_text), charset


def alphabet(charset: str) -> str:
    """Return the characters a ``charset`` modifier allows (``default,special`` unites them)."""
    return "".join(dict.fromkeys("".join(CHARSETS[part] for part in charset.split(","))))


def config_names(tree: Mapping[str, Any], stack: str) -> list[str]:
    """Return the Docker names of the recipe's configs (abra names them ``${STACK_NAME}_...``)."""
    return [
        _named("config", key, spec, stack)
        for key, spec in (tree.get("configs") or {}).items()
        if not (spec or {}).get("external")
    ]


def object_names(tree: Mapping[str, Any], secrets_: list[Secret], stack: str) -> list[str]:
    """Return every Docker object name the app creates: services, volumes, secrets, configs."""
    names = [f"{stack}_{service}" for service in tree.get("services") or {}]
    names += [f"{stack}_{volume}" for volume in volume_keys(tree)]
    names += [s.name for s in secrets_] + config_names(tree, stack)
    return names


def check_names(names: list[str]) -> None:
    """Refuse an app whose object names Swarm would refuse at deploy time (length, characters)."""
    for name in names:
        if not _OBJECT_RE.fullmatch(name):
            raise RecipeError(f"{name!r} is not a valid Docker object name")
    longest = max(names, key=len, default="")
    if len(longest) > SWARM_NAME_MAX:
        raise RecipeError(f"{longest!r} is longer than Swarm's {SWARM_NAME_MAX} characters")


def recipe_suffix(folder: Path, env: Mapping[str, str], loader: Loader) -> int:
    """Return the longest name part the recipe appends to ``<stack>_`` (volume, secret, config).

    This is what :mod:`ccci_core.names` needs to keep every object name within Swarm's limit.
    """
    values = {**recipe_env(folder, env), "STACK_NAME": SUFFIX_STACK}
    files = compose_files(values)
    tree = loader.load(folder, files, values)
    raw = raw_secret_names(folder, files)
    modifiers = envfile.parse(_sample(folder)).modifiers
    found = secrets(tree, raw, modifiers, SUFFIX_STACK)
    names = [n for n in object_names(tree, found, SUFFIX_STACK) if n not in _services(tree)]
    return max((len(n) - len(SUFFIX_STACK) - 1 for n in names), default=0)


def _services(tree: Mapping[str, Any]) -> set[str]:
    return {f"{SUFFIX_STACK}_{service}" for service in tree.get("services") or {}}


def _sample(folder: Path) -> str:
    sample = folder / ENV_SAMPLE
    return sample.read_text(encoding="utf-8") if sample.is_file() else ""
