"""Read and edit an app's env file (``.env`` format) the way abra does.

abra reads env files with its fork of ``godotenv``, whose rules we follow:

- ``KEY=VALUE`` lines, an optional ``export`` prefix, ``#`` comment lines and blank lines;
- a single-quoted value is literal; a double-quoted or unquoted value has ``$VAR`` and ``${VAR}``
  expanded from the keys defined *earlier in the same file* (unknown: empty), ``\\$`` is a literal
  ``$``; names are ``[A-Z0-9_]+`` as in godotenv (``$lower`` stays as written);
- an unquoted value ends at `` #``: what follows is a comment, where abra keeps *modifiers* such
  as ``SECRET_DB_PASSWORD_VERSION=v1 # length=128 charset=special``.

So ``COMPOSE_FILE="compose.yml"`` then ``COMPOSE_FILE="$COMPOSE_FILE:compose.postgres.yml"``
reads as ``compose.yml:compose.postgres.yml``, and ``OAUTH_ISSUER=https://${DOMAIN}`` follows the
app's ``DOMAIN`` line. An app's env file keeps the recipe's text (expansion happens at each read,
as in abra); :func:`set_values` edits it line by line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import RecipeError

_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_EXPAND_RE = re.compile(r"(\\)?\$(\{)?([A-Z0-9_]+)(\})?")
_MODIFIER_RE = re.compile(r"([a-z]+)=(\S+)")


@dataclass
class EnvFile:
    """The values of an env file, and the modifiers written beside them."""

    values: dict[str, str] = field(default_factory=dict)
    modifiers: dict[str, dict[str, str]] = field(default_factory=dict)


def _expand(value: str, known: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        escaped, brace, name, close = match.groups()
        if escaped:
            return match.group(0)[1:]
        if bool(brace) != bool(close):
            return match.group(0)  # "${A" or "$A}": not a reference godotenv would expand
        return known.get(name, "")

    return _EXPAND_RE.sub(replace, value)


def _split_line(raw: str, number: int) -> tuple[str, str] | None:
    line = raw.strip()
    if not line or line.startswith("#"):
        return None
    line = line.removeprefix("export ").lstrip()
    key, sep, rest = line.partition("=")
    key = key.strip()
    if not sep or not _KEY_RE.fullmatch(key):
        raise RecipeError(f"env line {number} is not KEY=VALUE: {raw!r}")
    return key, rest.strip()


def _value(rest: str, known: Mapping[str, str]) -> tuple[str, str]:
    """Return a line's value and its trailing comment."""
    if rest[:1] in ("'", '"'):
        quote = rest[0]
        end = rest.find(quote, 1)
        if end == -1:
            raise RecipeError(f"unterminated {quote} quote in {rest!r}")
        inner, comment = rest[1:end], rest[end + 1 :]
        return (inner if quote == "'" else _expand(inner, known)), comment
    value, _, comment = rest.partition(" #")
    return _expand(value.strip(), known), comment


def parse(text: str) -> EnvFile:
    """Return the values (expanded) and modifiers of env file ``text``."""
    env = EnvFile()
    for number, raw in enumerate(text.splitlines(), 1):
        split = _split_line(raw, number)
        if split is None:
            continue
        key, rest = split
        env.values[key], comment = _value(rest, env.values)
        found = dict(_MODIFIER_RE.findall(comment))
        if found:
            env.modifiers[key] = found
        else:
            env.modifiers.pop(key, None)
    return env


def parse_env(text: str) -> dict[str, str]:
    """Return the expanded ``KEY=VALUE`` pairs of env file ``text``."""
    return parse(text).values


def quote(key: str, value: str) -> str:
    """Return the line ``KEY='value'`` (literal when read back), refusing what cannot be."""
    if not _KEY_RE.fullmatch(key) or "\n" in value or "'" in value:
        raise RecipeError(f"cannot write env {key}={value!r}")
    return f"{key}='{value}'"


def set_values(text: str, values: Mapping[str, str]) -> str:
    """Return env ``text`` with ``values`` set as literals, each to be its key's final value.

    The first ``KEY=`` (or commented ``#KEY=``) line of a key is replaced; later assignments of
    the key (``COMPOSE_FILE="$COMPOSE_FILE:x.yml"``) are dropped, since the value given is the
    whole value; a key without a line is appended.
    """
    pending = {key: quote(key, value) for key, value in values.items()}
    done: set[str] = set()
    lines = []
    for line in text.splitlines():
        key = line.strip().lstrip("# ").removeprefix("export ").partition("=")[0].strip()
        if "=" in line and key in pending:
            lines.append(pending.pop(key))
            done.add(key)
        elif "=" in line and key in done and not line.lstrip().startswith("#"):
            continue
        else:
            lines.append(line)
    lines.extend(pending.values())
    return "\n".join(lines) + "\n"
