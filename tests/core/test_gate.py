"""The release-note gate: auto-apply only safe bumps."""

from __future__ import annotations

import pytest

from ccci_core.gate import Action, ReleaseNote, decide
from ccci_core.versions import Bump, Version


def note(version: str, text: str, folder: str = "release") -> ReleaseNote:
    """Build a note as the catalog would find it."""
    suffix = ".md" if folder == "releaseNotes" else ""
    return ReleaseNote(Version.parse(version), f"{folder}/{version}{suffix}", text)


V = Version.parse


@pytest.mark.parametrize(
    ("text", "asks"),
    [
        ("Bumped the image.", False),
        ("A MANUAL MIGRATION is needed, see docs.", True),
        ("manual-migration: run the script", True),
        ("Migration required before upgrading", True),
        ("migrations are required", True),
        ("Breaking change: the env var was renamed", True),
        ("breaking_changes listed below", True),
        ("No manual migration needed.", True),  # eager on purpose
        ("Lots of changes, nothing breaking.", False),
        ("text\n<!-- cc-ci: manual-migration -->\n", True),
        ("CC-CI: Manual-Migration", True),
        ("see cc-ci: manual-migration in the middle of a line", True),  # phrase still matches
        ("migration done automatically", False),
    ],
)
def test_migration_wording(text: str, asks: bool) -> None:
    """Plain words or the marker line make a note ask for a manual migration."""
    assert asks == (note("1.0.1+1.0", text).migration_reason() is not None)


def test_patch_without_notes_applies() -> None:
    """A patch bump with harmless notes applies."""
    decision = decide(V("1.0.0+1.0"), V("1.0.1+1.0"), [note("1.0.1+1.0", "fix")])
    assert (Action.APPLY, Bump.PATCH, ()) == (decision.action, decision.bump, decision.notes)


def test_major_holds() -> None:
    """A major bump holds even without notes."""
    decision = decide(V("1.0.0+1.0"), V("2.0.0+1.0"), [])
    assert Action.HOLD == decision.action
    assert ["major bump 1.0.0+1.0 → 2.0.0+1.0"] == list(decision.reasons)


def test_note_of_a_skipped_intermediate_version_holds() -> None:
    """A migration note of any version in (current, target] holds, not only the target's."""
    notes = [
        note("1.1.0+1.0", "Manual migration: move the data dir", "releaseNotes"),
        note("1.2.0+1.0", "small fix"),
    ]
    decision = decide(V("1.0.0+1.0"), V("1.2.0+1.0"), notes)
    assert Action.HOLD == decision.action
    assert ["releaseNotes/1.1.0+1.0.md"] == [n.path for n in decision.notes]


@pytest.mark.parametrize("outside", ["1.0.0+1.0", "0.9.0+1.0", "1.3.0+1.0"])
def test_notes_outside_the_range_do_not_count(outside: str) -> None:
    """Notes of the current version, older ones, and newer than the target are ignored."""
    decision = decide(V("1.0.0+1.0"), V("1.2.0+1.0"), [note(outside, "breaking change")])
    assert Action.APPLY == decision.action


def test_downgrade_holds_and_same_version_is_nothing_to_do() -> None:
    """Going back holds; staying put is NONE."""
    assert Action.HOLD == decide(V("1.2.0+1.0"), V("1.1.0+1.0"), []).action
    assert Action.NONE == decide(V("1.2.0+1.0"), V("1.2.0+1.0"), []).action


def test_decision_to_dict_carries_the_offending_notes() -> None:
    """The JSON form lists bump, action, reasons and the notes' texts."""
    decision = decide(V("1.0.0+1.0"), V("1.0.1+1.0"), [note("1.0.1+1.0", "Breaking change!")])
    out = decision.to_dict()
    assert ("patch", "hold") == (out["bump"], out["action"])
    assert [
        {"version": "1.0.1+1.0", "path": "release/1.0.1+1.0", "text": "Breaking change!"}
    ] == out["notes"]
