"""Parse, order and classify Co-op Cloud versions ``<recipe-semver>+<app-version>``.

Examples: ``1.7.1+1.27.2``, ``5.0.3+27.0.1-fpm``, ``10.7.1+26.6.2``. Versions sort by the recipe's
semver, then by the app version in natural order (``27.0.10`` after ``27.0.9``). Tags that are not
versions are ignored by :func:`parse_tags`, never fatal.

A bump is MAJOR when the recipe's major number increases or the app version's leading number
increases; when either app version has no leading number and they differ, the bump cannot be judged
and counts as MAJOR (holding an upgrade costs an operator a glance; applying a breaking one can cost
data). Otherwise MINOR when the recipe's minor increases, else PATCH.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from .errors import VersionError

_VERSION_RE = re.compile(
    r"(?P<major>\d{1,9})\.(?P<minor>\d{1,9})\.(?P<patch>\d{1,9})"
    r"\+(?P<app>[A-Za-z0-9][A-Za-z0-9._-]{0,99})"
)
_LEADING_RE = re.compile(r"[vV]?(\d+)")
_CHUNK_RE = re.compile(r"\d+|\D+")


def _natural(text: str) -> tuple[tuple[int, int, str], ...]:
    """Return a key that orders digit runs numerically and other runs as text."""
    return tuple(
        (1, int(chunk), "") if chunk.isdigit() else (0, 0, chunk)
        for chunk in _CHUNK_RE.findall(text)
    )


@dataclass(frozen=True, order=True)
class Version:
    """One Co-op Cloud version; instances order as releases do."""

    key: tuple[object, ...] = field(repr=False)
    raw: str = field(compare=False)
    major: int = field(compare=False)
    minor: int = field(compare=False)
    patch: int = field(compare=False)
    app: str = field(compare=False)

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse ``text`` or raise VersionError."""
        match = _VERSION_RE.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise VersionError(f"not a version <semver>+<app-version>: {text!r}")
        major, minor, patch = int(match["major"]), int(match["minor"]), int(match["patch"])
        app = match["app"]
        return cls((major, minor, patch, _natural(app)), text, major, minor, patch, app)

    @property
    def app_major(self) -> int | None:
        """Return the app version's leading number (``27`` of ``v27.0.1-fpm``), if any."""
        match = _LEADING_RE.match(self.app)
        return int(match[1]) if match else None

    def __str__(self) -> str:
        return self.raw


def parse_tags(tags: Iterable[str]) -> list[Version]:
    """Return the tags that are versions, sorted oldest first; other tags are ignored."""
    found = []
    for tag in tags:
        try:
            found.append(Version.parse(tag.strip()))
        except VersionError:
            continue
    return sorted(set(found))


def latest(versions: Iterable[Version]) -> Version | None:
    """Return the newest version, or None when there is none."""
    return max(versions, default=None)


class Bump(StrEnum):
    """How far ``current → target`` moves."""

    NONE = "none"
    PATCH = "patch"
    MINOR = "minor"
    MAJOR = "major"
    DOWNGRADE = "downgrade"


def classify(current: Version, target: Version) -> Bump:
    """Classify the bump from ``current`` to ``target``."""
    if target == current:
        return Bump.NONE
    if target < current:
        return Bump.DOWNGRADE
    if target.major > current.major:
        return Bump.MAJOR
    old_app, new_app = current.app_major, target.app_major
    if old_app is None or new_app is None:
        if current.app != target.app:
            return Bump.MAJOR
    elif new_app > old_app:
        return Bump.MAJOR
    if target.minor > current.minor:
        return Bump.MINOR
    return Bump.PATCH
