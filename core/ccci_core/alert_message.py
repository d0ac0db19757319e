"""What an alert says to a person: what happened, to which app, and what to do, as text and HTML.

:func:`render` builds one :class:`Message` per alert from its ``kind``, ``app``, ``message`` and
``details``; the relay sends the same message to every target (Matrix gets both bodies, a webhook
``{"text", "html"}``). Every value that came from an alert is escaped in the HTML and clipped, so a
hostile release note can neither inject markup nor push an event past the homeserver's size limit.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import BadInput

_ID_RE = re.compile(r"[0-9a-f]{16}")  # as the agent derives it: it reaches the ack route's path
MAX_NOTES = 5  # release notes quoted in an infra-held message; the rest are counted
NOTE_CHARS = 800  # of each quoted note
MAX_ITEMS = 12  # reasons or details listed
VALUE_CHARS = 300  # of one listed value
MESSAGE_CHARS = 2000  # the agent keeps an alert's message to this too


@dataclass(frozen=True)
class Alert:
    """An active alert as the agent lists it (``GET /v1/alerts``)."""

    id: str
    kind: str
    app: str | None
    message: str
    ts: str  # when this occurrence was raised
    details: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, value: Any) -> Alert:
        """Return the alert in the agent's JSON ``value``.

        Only the id must be right (it reaches the ack route's path); an odd field is shown as
        it is rather than holding the alert back.
        """
        fields = value if isinstance(value, dict) else {}
        ident = fields.get("id")
        if not isinstance(ident, str) or not _ID_RE.fullmatch(ident):
            raise BadInput(f"the agent listed an alert with an invalid id: {ident!r:.80}")

        def text(key: str) -> str:
            found = fields.get(key)
            return found if isinstance(found, str) else "" if found is None else repr(found)

        details = fields.get("details")
        return cls(
            ident,
            text("kind") or "alert",
            text("app") or None,
            text("message"),
            text("ts"),
            details if isinstance(details, dict) else {},
        )

    @property
    def occurrence(self) -> str:
        """Return an id of this occurrence: the same for every retry, new when raised again.

        The agent gives a key raised again after an acknowledgement the same alert id, so the id
        alone cannot tell two occurrences apart; its ``ts`` can.
        """
        return f"ccci-{self.id}-{re.sub(r'[^0-9]', '', self.ts)}"


@dataclass(frozen=True)
class Message:
    """One alert as a person reads it: plain text and the same as (escaped) HTML."""

    text: str
    html: str


def _clip(value: object, limit: int) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _Doc:
    """A message written once and kept as text and HTML side by side."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.html: list[str] = []

    def line(self, text: str, *, bold: bool = False) -> None:
        self.text.append(text)
        escaped = html.escape(text)
        self.html.append(f"<p><b>{escaped}</b></p>" if bold else f"<p>{_breaks(escaped)}</p>")

    def items(self, title: str, items: list[str]) -> None:
        if not items:
            return
        shown = [_clip(i, VALUE_CHARS) for i in items[:MAX_ITEMS]]
        if len(items) > MAX_ITEMS:
            shown.append(f"… and {len(items) - MAX_ITEMS} more")
        self.text += [f"{title}:", *(f"- {i}" for i in shown)]
        lis = "".join(f"<li>{_breaks(html.escape(i))}</li>" for i in shown)
        self.html.append(f"<p><b>{html.escape(title)}:</b></p><ul>{lis}</ul>")

    def quote(self, label: str, body: str) -> None:
        body = _clip(body.strip(), NOTE_CHARS)
        self.text += [f"{label}:", *(f"    {line}" for line in body.splitlines())]
        self.html.append(f"<p>{html.escape(label)}:</p><pre>{html.escape(body)}</pre>")

    def action(self, text: str, command: str | None = None) -> None:
        self.text.append(f"What to do: {text}")
        self.html.append(f"<p><b>What to do:</b> {_breaks(html.escape(text))}</p>")
        if command:
            self.text.append(f"    {command}")
            self.html.append(f"<pre><code>{html.escape(command)}</code></pre>")

    def footer(self, text: str) -> None:
        self.text.append(text)
        self.html.append(f"<p><i>{html.escape(text)}</i></p>")

    def extend(self, other: _Doc) -> None:
        self.text += other.text
        self.html += other.html

    def message(self) -> Message:
        return Message("\n".join(self.text), "".join(self.html))


def _breaks(escaped: str) -> str:
    return escaped.replace("\n", "<br>")


def _str(details: Mapping[str, Any], key: str, default: str = "?") -> str:
    value = details.get(key)
    return _clip(value, VALUE_CHARS) if isinstance(value, str) and value else default


def _infra_held(alert: Alert, doc: _Doc, app: str) -> str:
    d = alert.details
    doc.items("Why", [str(r) for r in d.get("reasons") or [] if isinstance(r, str)])
    notes = [n for n in d.get("notes") or [] if isinstance(n, dict)]
    for note in notes[:MAX_NOTES]:
        where = f"{_str(note, 'version')} ({_str(note, 'path')})"
        doc.quote(f"Release note {where}", str(note.get("text") or ""))
    if len(notes) > MAX_NOTES:
        doc.line(f"… and {len(notes) - MAX_NOTES} more notes in the recipe's release notes.")
    command = d.get("command")
    if isinstance(command, str) and command:
        doc.action("do the migration the notes describe, then run", _clip(command, VALUE_CHARS))
    else:
        doc.action(f"do the migration the notes describe, then cc-ci reconcile {app} --to V.")
    current, target, bump = (_str(d, key, "") for key in ("current", "target", "bump"))
    if not (current and target):
        return f"{app}: an upgrade is held"
    return f"{app}: upgrade {current} → {target} held" + (f" ({bump} bump)" if bump else "")


def _infra_rollback(alert: Alert, doc: _Doc, app: str) -> str:
    d = alert.details
    back = _str(d, "back")
    restored = ""
    if d.get("restored"):
        restored = ", its data restored from the snapshot taken just before"
    doc.action(
        f"last-good {back} runs{restored}. Fix the recipe or wait for its next release; the next "
        f"reconcile tries again (`cc-ci reconcile {app}`)."
    )
    target = _str(d, "target", "the interrupted version")
    return f"{app}: {target} failed its health gate, rolled back to {back}"


def _infra_down(alert: Alert, doc: _Doc, app: str) -> str:
    doc.action(
        f"{app} is not healthy: look at `docker service ps --no-trunc` of its stack's services, "
        f"fix the cause, then run `cc-ci reconcile {app}`."
    )
    return f"{app}: {_str(alert.details, 'version', 'last-good')} does not come up healthy"


def _state_corrupt(alert: Alert, doc: _Doc, app: str) -> str:
    moved = alert.details.get("moved_to")
    if isinstance(moved, str) and moved:
        doc.action(
            "the agent serves on without the file. Look at what was moved aside, then remove it "
            "by hand:",
            _clip(moved, VALUE_CHARS),
        )
    else:
        doc.action(
            f"`cc-ci canonical {app}` names the broken file (kept for inspection); a broken "
            "canonical.json is rebuilt from the snapshot when the agent restarts."
        )
    return f"{app}: a state file is corrupt"


def _snapshot_corrupt(alert: Alert, doc: _Doc, app: str) -> str:
    doc.action(
        f"`cc-ci canonical {app}` shows what does not verify (the snapshot is kept for "
        f"inspection). Quick runs of {app} cannot restore its known-good data until it is "
        "re-seeded."
    )
    return f"{app}: the known-good snapshot does not verify"


def _other(alert: Alert, doc: _Doc, app: str) -> str:
    doc.items(
        "Details", [f"{key}: {_clip(value, VALUE_CHARS)}" for key, value in alert.details.items()]
    )
    doc.action("look at `cc-ci status` on the CI host.")
    return f"{app}: {alert.kind}"


_KINDS: dict[str, Callable[[Alert, _Doc, str], str]] = {
    "infra-held": _infra_held,
    "infra-rollback": _infra_rollback,
    "infra-down": _infra_down,
    "state-corrupt": _state_corrupt,
    "snapshot-corrupt": _snapshot_corrupt,
}


def render(alert: Alert, host: str = "") -> Message:
    """Return what to send for ``alert``: a headline, what happened, the facts, what to do."""
    app = _clip(alert.app, VALUE_CHARS) if alert.app else "the host agent"
    body = _Doc()
    body.line(_clip(alert.message, MESSAGE_CHARS))
    headline = _KINDS.get(alert.kind, _other)(alert, body, app)
    where = f" on {host}" if host else ""
    body.footer(f"{_clip(alert.kind, VALUE_CHARS)} alert {alert.id}, raised {alert.ts}{where}")
    doc = _Doc()
    doc.line(f"cc-ci: {headline}", bold=True)  # known once the kind wrote the body
    doc.extend(body)
    return doc.message()
