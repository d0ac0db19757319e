"""Turn webhook payloads into the one event the bridge acts on: a new comment on an open PR.

Parsing is strict about types (the payload is the sender's) and quick: it runs on the request path.
``parse_comment`` returns a CommentEvent, or an Ignored with the reason, or raises Rejected (400)
when a field the bridge needs is missing or has the wrong type. Gitea/Forgejo and GitHub share the
``issue_comment`` shape: ``action``, ``issue`` (``number``, ``state``, ``pull_request``),
``comment`` (``id``, ``body``, ``user.login``), ``repository`` (``full_name``, ``name``); Gitea also
sends ``is_pull``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .commands import Command, parse_chat, parse_comment
from .drone import FINISHED
from .errors import Rejected


@dataclass(frozen=True)
class CommentEvent:
    """A command in a new comment on an open pull request."""

    forge: str
    delivery: str
    repo: str
    name: str
    number: int
    comment_id: int
    user: str
    command: Command

    @property
    def dedupe_keys(self) -> tuple[str, str]:
        """Return the delivery key and the ``(repository, comment)`` key."""
        return (
            f"delivery:{self.forge}:{self.delivery}",
            f"comment:{self.forge}:{self.repo.lower()}:{self.comment_id}",
        )


@dataclass(frozen=True)
class ChatEvent:
    """A command said in chat by ``user``; ``event_id`` dedupes redeliveries when known.

    ``room`` and ``event_id`` are where the verdict's reply goes (both known: a Matrix event).
    """

    user: str
    command: Command
    event_id: str | None = None
    room: str | None = None


@dataclass(frozen=True)
class DroneEvent:
    """A Drone system webhook saying build ``number`` of the CI repository finished."""

    number: int
    status: str


@dataclass(frozen=True)
class Ignored:
    """A valid payload the bridge does not act on, and why."""

    reason: str


def load_json(body: bytes) -> Any:
    """Return the JSON document in ``body`` or raise Rejected (400)."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise Rejected(400, "body is not JSON") from exc


def _get(obj: object, path: str, kind: type | tuple[type, ...]) -> Any:
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            raise Rejected(400, f"missing field {path}")
        value = value[part]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise Rejected(400, f"field {path} has the wrong type")
    return value


def parse_comment_event(
    forge: str, delivery: str | None, payload: Any, bots: frozenset[str]
) -> CommentEvent | Ignored:
    """Return the command-carrying comment in an ``issue_comment`` payload, or why it is ignored."""
    if not isinstance(payload, dict):
        raise Rejected(400, "payload is not a JSON object")
    action = _get(payload, "action", str)
    if action != "created":
        return Ignored(f"comment {action[:40]}, not created")
    issue = _get(payload, "issue", dict)
    is_pull = payload.get("is_pull") is True or isinstance(issue.get("pull_request"), dict)
    if not is_pull:
        return Ignored("comment on an issue, not a pull request")
    if _get(payload, "issue.state", str) != "open":
        return Ignored("pull request is not open")
    body = _get(payload, "comment.body", str)
    user = _get(payload, "comment.user.login", str)
    if user in bots or _get(payload, "comment.user", dict).get("type") == "Bot":
        return Ignored("comment by a bot")
    command = parse_comment(body)
    if command is None:
        return Ignored("no command")
    repo = _get(payload, "repository.full_name", str)
    name = _get(payload, "repository.name", str)
    number = _get(payload, "issue.number", int)
    comment_id = _get(payload, "comment.id", int)
    if repo.count("/") != 1 or not repo.endswith("/" + name) or number < 1 or comment_id < 1:
        raise Rejected(400, "inconsistent repository, issue or comment")
    if not delivery:
        raise Rejected(400, "missing delivery id header")
    return CommentEvent(forge, delivery[:200], repo, name, number, comment_id, user, command)


def _optional(value: object) -> str | None:
    return value[:200] if isinstance(value, str) and value else None


def parse_chat_event(
    payload: Any, event_id: str | None, room: str | None = None
) -> ChatEvent | Ignored:
    """Return the command in a chat message: hookshot's Matrix event or plain ``{user, text}``.

    ``event_id`` and ``room`` are what the hookshot headers said, if anything.
    """
    if not isinstance(payload, dict):
        raise Rejected(400, "payload is not a JSON object")
    if "type" in payload or "sender" in payload:  # a Matrix event relayed by hookshot
        if payload.get("type") != "m.room.message":
            return Ignored("not a message")
        user = _get(payload, "sender", str)
        text = _get(payload, "content.body", str)
        event_id = event_id or _optional(payload.get("event_id"))
        room = room or _optional(payload.get("room_id"))
    else:
        user = _get(payload, "user", str)
        text = _get(payload, "text", str)
        event_id = _optional(payload.get("id")) or event_id
        room = _optional(payload.get("room")) or room
    command = parse_chat(text)
    if command is None:
        return Ignored("no command")
    return ChatEvent(user, command, _optional(event_id), _optional(room))


def parse_drone_event(payload: Any, repo: str) -> DroneEvent | Ignored:
    """Return the finished build a Drone system webhook announces, or why it is ignored.

    Drone sends ``{"event": "build", "action": "created"|"updated", "repo": {"slug": …},
    "build": {"number": …, "status": …}}`` (and ``user`` and ``repo`` events, ignored here).
    """
    if not isinstance(payload, dict):
        raise Rejected(400, "payload is not a JSON object")
    event = _get(payload, "event", str)
    if event != "build":
        return Ignored(f"event {event[:40]!r} is not handled")
    if _get(payload, "repo.slug", str).lower() != repo.lower():
        return Ignored("not a build of the CI repository")
    number = _get(payload, "build.number", int)
    status = _get(payload, "build.status", str)
    if number < 1:
        raise Rejected(400, "inconsistent build number")
    if status not in FINISHED:
        return Ignored(f"build {number} is {status[:40]}")
    return DroneEvent(number, status)
