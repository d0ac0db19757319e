"""Versions: parsing, ordering, bump classes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccci_core.errors import VersionError
from ccci_core.versions import Bump, Version, classify, latest, parse_tags


@pytest.mark.parametrize(
    ("text", "recipe", "app", "app_major"),
    [
        ("1.7.1+1.27.2", (1, 7, 1), "1.27.2", 1),
        ("5.0.3+27.0.1-fpm", (5, 0, 3), "27.0.1-fpm", 27),
        ("10.7.1+26.6.2", (10, 7, 1), "26.6.2", 26),
        ("0.1.0+v2.10.4", (0, 1, 0), "v2.10.4", 2),
        ("2.0.0+latest", (2, 0, 0), "latest", None),
    ],
)
def test_parse(text: str, recipe: tuple[int, int, int], app: str, app_major: int | None) -> None:
    """Recipe semver and app version are split at the plus sign."""
    version = Version.parse(text)
    assert recipe == (version.major, version.minor, version.patch)
    assert app == version.app
    assert app_major == version.app_major
    assert text == str(version)


@pytest.mark.parametrize(
    "text", ["", "1.2.3", "v1.2.3+1.0", "1.2+1.0", "1.2.3+", "1.2.3+-x", "1.2.3+a b", "main"]
)
def test_non_versions_are_refused(text: str) -> None:
    """Strings without a semver and an app version raise VersionError."""
    with pytest.raises(VersionError):
        Version.parse(text)


def test_parse_tags_ignores_odd_tags_and_sorts() -> None:
    """Non-version tags are skipped, not fatal; versions sort as releases."""
    tags = ["1.10.0+2.0", "v1", "1.2.0+1.9", "nightly", "1.2.0+1.10", "1.9.0+2.0", "0.9.9+0.1"]
    expected = ["0.9.9+0.1", "1.2.0+1.9", "1.2.0+1.10", "1.9.0+2.0", "1.10.0+2.0"]
    assert expected == [str(v) for v in parse_tags(tags)]


def test_latest_is_the_newest_or_none() -> None:
    """latest picks the newest version and None for an empty list."""
    assert "1.10.0+1.0" == str(latest(parse_tags(["1.9.0+9.9", "1.10.0+1.0"])))
    assert latest([]) is None


@pytest.mark.parametrize(
    ("current", "target", "expected"),
    [
        ("1.0.0+1.0.0", "1.0.0+1.0.0", Bump.NONE),
        ("1.0.1+1.0.0", "1.0.0+1.0.0", Bump.DOWNGRADE),
        ("1.0.0+1.0.0", "1.0.1+1.0.1", Bump.PATCH),
        ("1.0.0+1.0.0", "1.1.0+1.1.0", Bump.MINOR),
        ("1.0.0+1.0.0", "2.0.0+1.0.0", Bump.MAJOR),
        ("1.0.0+1.9.0", "1.0.1+2.0.0", Bump.MAJOR),  # app's leading number moved
        ("5.0.3+27.0.1-fpm", "5.1.0+28.0.0-fpm", Bump.MAJOR),
        ("5.0.3+27.0.1-fpm", "5.1.0+27.1.0-fpm", Bump.MINOR),
        ("1.0.0+v2.10.4", "1.0.1+v2.10.5", Bump.PATCH),
        ("1.0.0+latest", "1.0.1+stable", Bump.MAJOR),  # cannot judge: hold
        ("1.0.0+latest", "1.0.1+latest", Bump.PATCH),
        ("1.9.0+1.0", "1.10.0+1.0", Bump.MINOR),
    ],
)
def test_classify(current: str, target: str, expected: Bump) -> None:
    """The bump class follows the recipe semver and the app version's leading number."""
    assert expected == classify(Version.parse(current), Version.parse(target))


numbers = st.integers(min_value=0, max_value=50)
versions = st.builds(
    lambda a, b, c, d, e: Version.parse(f"{a}.{b}.{c}+{d}.{e}"),
    numbers,
    numbers,
    numbers,
    numbers,
    numbers,
)


@given(versions, versions)
def test_classify_agrees_with_ordering(a: Version, b: Version) -> None:
    """Every pair classifies consistently with how the two versions sort."""
    bump = classify(a, b)
    if a == b:
        assert Bump.NONE == bump
    elif b < a:
        assert Bump.DOWNGRADE == bump
    else:
        assert bump in {Bump.PATCH, Bump.MINOR, Bump.MAJOR}
        expected_major = b.major > a.major or (b.app_major or 0) > (a.app_major or 0)
        assert expected_major == (Bump.MAJOR == bump)
