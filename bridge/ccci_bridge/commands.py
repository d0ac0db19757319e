"""Find ``!testme`` commands in comment and chat text (pure functions, no I/O).

A command is a line of its own: up to three spaces, ``!testme``, then arguments. Lines in quotes
(``>``), fenced code blocks (```` ``` ```` or ``~~~``) and indented code (four spaces or a tab) are
never commands, so quoting or pasting someone's command does not start a run. The first command
line of a text wins.

    !testme                      a cold run
    !testme --quick              a quick run
    !testme help                 a short help reply (also for any unknown argument)

In chat the recipe (and optionally the PR) is named: ``!testme [--quick] <recipe> [<pr>]``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from ccci_core.errors import InvalidName
from ccci_core.lanes import RunLane
from ccci_core.names import validate_recipe

TRIGGER = "!testme"
QUICK = "--quick"
HELP_WORDS = frozenset({"help", "--help", "-h"})

_FENCE_RE = re.compile(r" {0,3}(`{3,}|~{3,})")
_QUOTE_RE = re.compile(r" {0,3}>")
_PR_RE = re.compile(r"#?([1-9][0-9]{0,8})")

COMMENT_HELP = (
    "Say `!testme` (cold lane: fresh deploy, full tests) or `!testme --quick` (quick lane: "
    "reattach the warm canonical) on a line of its own. Quoted lines and code blocks are ignored."
)
CHAT_HELP = (
    "Usage: `!testme [--quick] <recipe> [<pr-number>]`, e.g. `!testme --quick keycloak 42`. "
    "Without a PR number the recipe's default branch is tested."
)


@dataclass(frozen=True)
class Command:
    """One ``!testme`` request: the lane, or a help request with the reason."""

    quick: bool = False
    help: bool = False
    problem: str | None = None
    recipe: str | None = None
    pr: int | None = None

    @property
    def lane(self) -> str:
        """Return the lane's name as users read it."""
        return f"{self.run_lane} lane"

    @property
    def run_lane(self) -> RunLane:
        """Return the lane asked for: ``quick`` or ``cold``."""
        return "quick" if self.quick else "cold"


def _plain_lines(text: str) -> Iterator[str]:
    """Yield the lines of ``text`` that are neither quoted nor code."""
    fence: str | None = None
    for line in text.splitlines():
        opener = _FENCE_RE.match(line)
        if fence is not None:
            if opener and opener[1][0] == fence[0] and len(opener[1]) >= len(fence):
                fence = None
            continue
        if opener:
            fence = opener[1]
            continue
        if line.startswith(("    ", "\t")) or _QUOTE_RE.match(line):
            continue
        yield line


def _command_args(text: str) -> list[str] | None:
    for line in _plain_lines(text):
        words = line.split()
        if words and words[0] == TRIGGER:
            return words[1:]
    return None


def _help(problem: str | None = None) -> Command:
    return Command(help=True, problem=problem)


def parse_comment(text: str) -> Command | None:
    """Return the command in a PR comment, or None if it holds none."""
    args = _command_args(text)
    if args is None:
        return None
    if not args:
        return Command()
    if args == [QUICK]:
        return Command(quick=True)
    if args[0] in HELP_WORDS:
        return _help()
    return _help(f"unknown argument {args[0][:40]!r}")


def parse_chat(text: str) -> Command | None:
    """Return the command in a chat message, or None if it holds none."""
    args = _command_args(text)
    if args is None:
        return None
    quick = False
    if args and args[0] == QUICK:
        quick, args = True, args[1:]
    if not args or args[0] in HELP_WORDS:
        return _help(None if args else "name the recipe")
    if args[0].startswith("-"):
        return _help(f"unknown argument {args[0][:40]!r}")
    if len(args) > 2:
        return _help(f"unexpected argument {args[2][:40]!r}")
    try:
        recipe = validate_recipe(args[0])
    except InvalidName as exc:
        return _help(f"{args[0][:64]!r} is not a recipe name: {exc.reason}")
    pr = None
    if len(args) == 2:
        match = _PR_RE.fullmatch(args[1])
        if match is None:
            return _help(f"{args[1][:40]!r} is not a pull request number")
        pr = int(match[1])
    return Command(quick=quick, recipe=recipe, pr=pr)
