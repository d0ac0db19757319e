"""Finding ``!testme`` in comment and chat text."""

from __future__ import annotations

import pytest

from ccci_bridge.commands import Command, parse_chat, parse_comment


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("!testme", Command()),
        ("!testme --quick", Command(quick=True)),
        ("  !testme --quick  ", Command(quick=True)),
        ("LGTM\r\n!testme\r\nthanks", Command()),
        ("!testme\n!testme --quick", Command()),
        ("> !testme\n!testme --quick", Command(quick=True)),
        ("```\n!testme\n```\n!testme --quick", Command(quick=True)),
        ("~~~~\n!testme\n~~~\n!testme\n~~~~\n!testme --quick", Command(quick=True)),
        ("!testme help", Command(help=True)),
        ("!testme --help", Command(help=True)),
        ("!testme --fast", Command(help=True, problem="unknown argument '--fast'")),
        ("!testme --quick please", Command(help=True, problem="unknown argument '--quick'")),
    ],
)
def test_comment_commands(text: str, expected: Command) -> None:
    """A command is a line of its own; the first one wins; extra words ask for help."""
    assert expected == parse_comment(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "please !testme",
        "!testme.",
        "!testmeplease",
        "!TESTME",
        "`!testme`",
        "> !testme",
        ">!testme --quick",
        "   > > !testme",
        "    !testme",
        "\t!testme",
        "```\n!testme\n```",
        "```python\n!testme\n",
        "~~~\n!testme\n```\n",
    ],
)
def test_comment_without_command(text: str) -> None:
    """Prose, quotes, code blocks (closed or not) and look-alikes hold no command."""
    assert parse_comment(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("!testme keycloak", Command(recipe="keycloak")),
        ("!testme --quick keycloak", Command(quick=True, recipe="keycloak")),
        ("!testme keycloak 42", Command(recipe="keycloak", pr=42)),
        ("!testme --quick keycloak #7", Command(quick=True, recipe="keycloak", pr=7)),
        ("!testme", Command(help=True, problem="name the recipe")),
        ("!testme keycloak 0", Command(help=True, problem="'0' is not a pull request number")),
        (
            "!testme warm-x",
            Command(
                help=True, problem="'warm-x' is not a recipe name: the prefix 'warm-' is reserved"
            ),
        ),
    ],
)
def test_chat_commands(text: str, expected: Command) -> None:
    """Chat names the recipe and optionally the PR; names go through the core's validation."""
    assert expected == parse_chat(text)


def test_lane_names() -> None:
    """The lane is said the way the docs say it."""
    assert ("cold lane", "quick lane") == (Command().lane, Command(quick=True).lane)
