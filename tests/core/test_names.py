"""Names: recipe validation and every app name derived from it."""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccci_core import names
from ccci_core.errors import ConfigError, InvalidName

BASE = "ci.commoninternet.net"
recipes = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True).filter(
    lambda r: r != "warm" and not r.startswith("warm-")
)
DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
hexes = st.from_regex(r"[0-9a-f]{6}", fullmatch=True)
suffixes = st.integers(min_value=0, max_value=18)


@pytest.mark.parametrize(
    "name",
    ["custom-html", "a", "0ad", "keycloak", "x" * 63, "a-b-c", "a--b", "warmth", "warmup", "9"],
)
def test_valid_recipe_names_pass(name: str) -> None:
    """Lowercase names of letters, digits and hyphens pass unchanged."""
    assert name == names.validate_recipe(name)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "../x",
        "A",
        "a/b",
        "-lead",
        "trail-",
        "a-",
        "-",
        "x" * 62 + "-",
        "x" * 64,
        "d\u043et",  # Cyrillic o
        "\uff41bc",  # fullwidth a
        "abc\n",
        "a_b",
        "a.b",
        " a",
        "warm",
        "warm-x",
        None,
        7,
    ],
)
def test_bad_recipe_names_are_refused(name: object) -> None:
    """Traversal, case, separators, unicode look-alikes, lengths and the reserved prefix fail."""
    with pytest.raises(InvalidName) as caught:
        names.validate_recipe(name)
    assert "recipe" == caught.value.kind


def test_canonical_and_cold_names_for_a_short_recipe() -> None:
    """Short recipes keep their name; stacks are domains with dots replaced."""
    canonical = names.canonical_app("custom-html", BASE, suffix=10)
    cold = names.cold_app("custom-html", BASE, "a1b2c3", suffix=10)
    assert "warm-custom-html.ci.commoninternet.net" == canonical.domain
    assert "warm-custom-html_ci_commoninternet_net" == canonical.stack
    assert "custom-html-a1b2c3.ci.commoninternet.net" == cold.domain
    assert "custom-html-a1b2c3_ci_commoninternet_net" == cold.stack
    assert "custom-html-a1b2c3" == cold.realm
    assert canonical.realm is None


def test_long_recipe_is_shortened_deterministically() -> None:
    """An over-long recipe part becomes head + 4 hex of its sha256, the same every time."""
    recipe = "a-really-long-recipe-name-for-testing"
    first = names.cold_app(recipe, BASE, "abcdef", suffix=18)
    again = names.cold_app(recipe, BASE, "abcdef", suffix=18)
    other = names.cold_app(recipe + "x", BASE, "abcdef", suffix=18)
    assert first == again
    assert first.stack != other.stack
    assert len(first.stack) <= names.ABRA_STACK_MAX
    digest = hashlib.sha256(recipe.encode()).hexdigest()[:4]
    # 45 (abra) - 1 ("_") - 21 (base) - 7 ("-<hex>") = 16 for the recipe part: 11 + "-" + 4.
    assert f"a-really-lo-{digest}-abcdef_ci_commoninternet_net" == first.stack
    assert f"{recipe}-abcdef" == first.realm  # realms are not length-bound by Swarm


@given(recipe=recipes, run_hex=hexes, suffix=suffixes)
def test_every_object_name_fits_swarm(recipe: str, run_hex: str, suffix: int) -> None:
    """Stack, volume and versioned secret names stay within 64 characters for any recipe."""
    for app in (
        names.canonical_app(recipe, BASE, suffix=suffix),
        names.cold_app(recipe, BASE, run_hex, suffix=suffix),
    ):
        longest = f"{app.stack}_{'v' * suffix}"  # a volume, secret or config name of that suffix
        assert len(longest) <= names.SWARM_NAME_MAX, longest
        assert len(app.stack) <= names.ABRA_STACK_MAX
        assert len(app.domain.split(".")[0]) <= 63


@given(recipe=recipes, run_hex=hexes, suffix=suffixes)
def test_every_app_domain_is_made_of_dns_labels(recipe: str, run_hex: str, suffix: int) -> None:
    """Each label of a canonical or cold domain starts and ends with a letter or digit."""
    for app in (
        names.canonical_app(recipe, BASE, suffix=suffix),
        names.cold_app(recipe, BASE, run_hex, suffix=suffix),
    ):
        for label in app.domain.split("."):
            assert DNS_LABEL.fullmatch(label), app.domain


@pytest.mark.parametrize(
    ("lane", "recipe", "expected_label"),
    [
        # With the default domain a canonical keeps 18 characters and a cold run 16: the head is
        # cut at 13 and 11, right after a "-" here; the cut hyphen goes, "--" never appears.
        ("canonical", "abcdefghijkl-mnopqr", "warm-abcdefghijkl-{digest}"),
        ("cold", "abcdefghij-klmnopq", "abcdefghij-{digest}-abcdef"),
        ("cold", "abcdefghij-klmno", "abcdefghij-klmno-abcdef"),  # fits: unchanged
    ],
)
def test_shortened_labels_are_dns_labels(lane: str, recipe: str, expected_label: str) -> None:
    """A shortened recipe part (head + "-" + 4 hex) keeps the label a valid DNS label."""
    digest = hashlib.sha256(recipe.encode()).hexdigest()[:4]
    if lane == "canonical":
        app = names.canonical_app(recipe, BASE, suffix=18)
    else:
        app = names.cold_app(recipe, BASE, "abcdef", suffix=18)
    label = app.domain.split(".")[0]
    assert expected_label.format(digest=digest) == label
    assert DNS_LABEL.fullmatch(label)


def test_suffix_longer_than_swarm_allows_is_refused() -> None:
    """A recipe whose own volume names leave no room for the stack is refused with a reason."""
    with pytest.raises(InvalidName):
        names.cold_app("app", BASE, "abcdef", suffix=60)


@pytest.mark.parametrize(
    "domain", ["", "localhost", "CI.example.org", "a..b", "-a.b", "x" * 30 + ".example.org"]
)
def test_bad_base_domains_name_the_variable(domain: str) -> None:
    """A base domain that is malformed or leaves no room for apps is a ConfigError."""
    with pytest.raises(ConfigError) as caught:
        names.validate_base_domain(domain)
    assert "CCCI_DOMAIN" == caught.value.variable


@pytest.mark.parametrize("bad", ["ABCDEF", "abcde", "abcdefa", "ghijkl", ""])
def test_bad_hex_is_refused(bad: str) -> None:
    """Run hexes are exactly six lowercase hex digits."""
    with pytest.raises(InvalidName):
        names.validate_hex(bad)


def test_new_run_hex_skips_hexes_of_live_stacks() -> None:
    """A random hex already used by a live cold stack is drawn again."""
    draws = iter(["aaaaaa", "bbbbbb"])
    live = ["app-aaaaaa_ci_commoninternet_net", "warm-app-bbbbbc_ci_commoninternet_net"]
    assert "bbbbbb" == names.new_run_hex(live, token=lambda _n: next(draws))


def test_new_run_hex_gives_up_loudly() -> None:
    """When every draw collides the caller gets an error, not a reused hex."""
    with pytest.raises(InvalidName):
        names.new_run_hex(["a-aaaaaa_x"], token=lambda _n: "aaaaaa", attempts=3)
