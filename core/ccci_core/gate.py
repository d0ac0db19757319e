"""Decide whether an upgrade may be applied unattended: the release-note gate.

Auto-apply ``current → target`` only when the bump is not MAJOR and no release note of ANY version
in ``(current, target]`` asks for a manual migration; otherwise HOLD with the reasons and the
offending notes. A note asks for a manual migration when, in any case, it

* says ``manual migration``, ``migration required``/``migration is required`` or
  ``breaking change`` (words may be joined by spaces, ``-`` or ``_``; plurals count), or
* carries the marker line ``cc-ci: manual-migration`` (alone on its line; it may sit inside an HTML
  comment so it stays invisible in rendered Markdown).

The rule is deliberately eager: "no manual migration needed" holds too. A false hold costs an
operator a glance; a false apply can cost data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .versions import Bump, Version, classify

_PHRASES = re.compile(
    r"\bmanual[\s_-]+migrations?\b"
    r"|\bmigrations?[\s_-]+(?:is[\s_-]+|are[\s_-]+)?required\b"
    r"|\bbreaking[\s_-]+changes?\b",
    re.IGNORECASE,
)
_MARKER = re.compile(
    r"^\s*(?:<!--\s*)?cc-ci:\s*manual-migration\s*(?:-->)?\s*$", re.IGNORECASE | re.MULTILINE
)


@dataclass(frozen=True)
class ReleaseNote:
    """One release note file of a recipe (``release/<v>`` or ``releaseNotes/<v>.md``)."""

    version: Version
    path: str
    text: str

    def migration_reason(self) -> str | None:
        """Return why this note asks for a manual migration, or None."""
        if _MARKER.search(self.text):
            return "marker line 'cc-ci: manual-migration'"
        match = _PHRASES.search(self.text)
        return f"says {match[0]!r}" if match else None


class Action(StrEnum):
    """What the gate allows."""

    APPLY = "apply"
    HOLD = "hold"
    NONE = "none"  # already at the target


@dataclass(frozen=True)
class Decision:
    """The gate's verdict on ``current → target`` with its reasons."""

    current: Version
    target: Version
    bump: Bump
    action: Action
    reasons: tuple[str, ...]
    notes: tuple[ReleaseNote, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready form."""
        return {
            "current": str(self.current),
            "target": str(self.target),
            "bump": str(self.bump),
            "action": str(self.action),
            "reasons": list(self.reasons),
            "notes": [
                {"version": str(n.version), "path": n.path, "text": n.text} for n in self.notes
            ],
        }


def decide(current: Version, target: Version, notes: Iterable[ReleaseNote]) -> Decision:
    """Return the gate decision for moving ``current → target``."""
    bump = classify(current, target)
    if bump is Bump.NONE:
        return Decision(current, target, bump, Action.NONE, ("already at target",), ())
    reasons: list[str] = []
    if bump is Bump.MAJOR:
        reasons.append(f"major bump {current} → {target}")
    if bump is Bump.DOWNGRADE:
        reasons.append(f"{target} is older than {current}")
    offending = []
    for note in sorted(notes, key=lambda n: (n.version, n.path)):
        if not current < note.version <= target:
            continue
        reason = note.migration_reason()
        if reason is not None:
            offending.append(note)
            reasons.append(f"{note.path} asks for a manual migration ({reason})")
    action = Action.HOLD if reasons else Action.APPLY
    if action is Action.APPLY:
        reasons.append(f"{bump} bump with no manual-migration notes")
    return Decision(current, target, bump, action, tuple(reasons), tuple(offending))
