"""App env files read and edited the way abra's godotenv reads them."""

from __future__ import annotations

import pytest

from ccci_core.deploy import envfile
from ccci_core.deploy.errors import RecipeError

CHAIN = (
    'DOMAIN=app.example.com\nCOMPOSE_FILE="compose.yml"\n'
    'COMPOSE_FILE="$COMPOSE_FILE:compose.postgres.yml"\n'
    "COMPOSE_FILE=$COMPOSE_FILE:postgres/compose.tune.yml # the tuning overlay\n"
    "OAUTH_ISSUER=https://${DOMAIN}/realms/ci\n"
)


def test_parse_reads_abra_env_files() -> None:
    """Comments, blanks, quotes, ``export`` and inline comments are handled."""
    text = (
        '# a comment\n\nTYPE=web\nexport A=1\nCOMPOSE_FILE="compose.yml:compose.x.yml"\n'
        "SECRET_DB_VERSION=v1 # length=32\nQUOTED='a # b'\nEMPTY=\n"
    )
    expected = {
        "TYPE": "web",
        "A": "1",
        "COMPOSE_FILE": "compose.yml:compose.x.yml",
        "SECRET_DB_VERSION": "v1",
        "QUOTED": "a # b",
        "EMPTY": "",
    }
    assert expected == envfile.parse_env(text)


def test_overlay_chain_and_references_expand_from_earlier_lines() -> None:
    """``$COMPOSE_FILE`` appends; ``${DOMAIN}`` follows the DOMAIN line above it."""
    values = envfile.parse_env(CHAIN)
    expected = "compose.yml:compose.postgres.yml:postgres/compose.tune.yml"
    assert expected == values["COMPOSE_FILE"]
    assert "https://app.example.com/realms/ci" == values["OAUTH_ISSUER"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("V='$A literal'", "$A literal"),
        ('V="${A}-$A"', "1-1"),
        ("V=\\$A", "$A"),
        ("V=$MISSING", ""),
        ("V=$lower", "$lower"),
        ("V=${A", "${A"),
        ("V=a$A", "a1"),
    ],
)
def test_expansion_follows_godotenv(line: str, expected: str) -> None:
    """Single quotes are literal; ``\\$`` escapes; unknown names are empty; lowercase stays."""
    assert expected == envfile.parse_env(f"A=1\n{line}\n")["V"]


def test_modifiers_are_read_from_the_line_comment() -> None:
    """``# length=128 charset=special`` belongs to the key on that line."""
    text = "S_VERSION=v1 # length=128 charset=default,special\nT_VERSION='v2' # length=9\nU=1\n"
    expected = {
        "S_VERSION": {"length": "128", "charset": "default,special"},
        "T_VERSION": {"length": "9"},
    }
    assert expected == envfile.parse(text).modifiers


@pytest.mark.parametrize("text", ["no equals sign\n", "BAD KEY=1\n", "1X=2\n", "A='open\n"])
def test_parse_refuses_garbage(text: str) -> None:
    """A line that is not KEY=VALUE is a RecipeError."""
    with pytest.raises(RecipeError):
        envfile.parse_env(text)


def test_set_values_round_trips() -> None:
    """What set_values writes, parse_env reads back, ``$`` and ``#`` included."""
    env = {"A": "1", "B": "with space", "C": "", "D": "x #y", "E": "$A"}
    assert env == envfile.parse_env(envfile.set_values("", env))


@pytest.mark.parametrize(
    ("before", "values", "after"),
    [
        ("A=1\nB=2\n", {"B": "3"}, "A=1\nB='3'\n"),
        (
            "A=1\n#LETS_ENCRYPT_ENV=production\n",
            {"LETS_ENCRYPT_ENV": ""},
            "A=1\nLETS_ENCRYPT_ENV=''\n",
        ),
        ("A=1\n", {"NEW": "x y"}, "A=1\nNEW='x y'\n"),
        ("# a comment = not a key\n", {}, "# a comment = not a key\n"),
        (
            'C="a.yml"\nC="$C:b.yml"\n#C="$C:c.yml"\nD=$C\n',
            {"C": "x.yml"},
            "C='x.yml'\n#C=\"$C:c.yml\"\nD=$C\n",
        ),
    ],
)
def test_set_values(before: str, values: dict[str, str], after: str) -> None:
    """A value replaces its first line (commented or not); later assignments of it go."""
    assert after == envfile.set_values(before, values)


def test_set_compose_file_is_the_final_value() -> None:
    """Setting COMPOSE_FILE on an overlay chain yields exactly that value when read."""
    edited = envfile.set_values(CHAIN, {"COMPOSE_FILE": "compose.yml"})
    assert "compose.yml" == envfile.parse_env(edited)["COMPOSE_FILE"]
