"""Alert messages: what happened, to which app, what to do; escaped HTML; clipped; occurrences."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest

from ccci_core.alert_message import Alert, render
from ccci_core.errors import BadInput

IDENT = "0123456789abcdef"
TS = "2024-05-01T12:00:00+00:00"
HELD = {
    "current": "25.0.1+25.0",
    "target": "26.0.0+26.0",
    "bump": "major",
    "reasons": ["major bump", "releaseNotes/26.0.0+26.0.md asks for a manual migration"],
    "notes": [
        {"version": "26.0.0+26.0", "path": "releaseNotes/26.0.0+26.0.md", "text": "Run kc.sh x"}
    ],
    "command": "cc-ci reconcile keycloak --to 26.0.0+26.0 --accept-migration",
}
HOSTILE = '<img src=x onerror="alert(1)">&amp;</pre><script>x</script>'
ALLOWED_TAGS = {"p", "b", "i", "ul", "li", "pre", "code", "br"}


def alert(kind: str, app: str | None, message: str, details: dict[str, Any]) -> Alert:
    """An alert as the agent lists it."""
    return Alert(IDENT, kind, app, message, TS, details)


class _Tags(HTMLParser):
    """Collect the tags and attributes of an HTML fragment."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attrs: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Record one start tag."""
        self.tags.add(tag)
        self.attrs += attrs


def tags_of(html: str) -> _Tags:
    """Return the tags a client would see in ``html``."""
    parser = _Tags()
    parser.feed(html)
    parser.close()
    return parser


@pytest.mark.parametrize(
    ("kind", "app", "message", "details", "headline", "todo"),
    [
        (
            "infra-held",
            "keycloak",
            "keycloak: 25.0.1+25.0 → 26.0.0+26.0 held (major bump)",
            HELD,
            "cc-ci: keycloak: upgrade 25.0.1+25.0 → 26.0.0+26.0 held (major bump)",
            "What to do: do the migration the notes describe, then run\n"
            "    cc-ci reconcile keycloak --to 26.0.0+26.0 --accept-migration",
        ),
        (
            "infra-rollback",
            "keycloak",
            "keycloak: 26.0.0+26.0 failed its health gate and was rolled back to 25.0.1+25.0: x",
            {"target": "26.0.0+26.0", "back": "25.0.1+25.0", "reason": "x", "restored": True},
            "cc-ci: keycloak: 26.0.0+26.0 failed its health gate, rolled back to 25.0.1+25.0",
            "What to do: last-good 25.0.1+25.0 runs, its data restored from the snapshot taken "
            "just before.",
        ),
        (
            "infra-down",
            "traefik",
            "traefik: the rollback to 2.0.0+2.0 is not healthy either: crash",
            {"version": "2.0.0+2.0"},
            "cc-ci: traefik: 2.0.0+2.0 does not come up healthy",
            "then run `cc-ci reconcile traefik`.",
        ),
        (
            "state-corrupt",
            None,
            "_leases.json was corrupt (not JSON); moved aside to _leases.json.corrupt-1",
            {"path": "/s/_leases.json", "moved_to": "/s/_leases.json.corrupt-1", "reason": "x"},
            "cc-ci: the host agent: a state file is corrupt",
            "remove it by hand:\n    /s/_leases.json.corrupt-1",
        ),
        (
            "state-corrupt",
            "web",
            "web: canonical.json is not a registry entry",
            {},
            "cc-ci: web: a state file is corrupt",
            "What to do: `cc-ci canonical web` names the broken file",
        ),
        (
            "snapshot-corrupt",
            "web",
            "web: data.tar does not match its sha256",
            {},
            "cc-ci: web: the known-good snapshot does not verify",
            "Quick runs of web cannot restore its known-good data",
        ),
        (
            "disk-full",
            "web",
            "/ is 95% full",
            {"percent": 95},
            "cc-ci: web: disk-full",
            "Details:\n- percent: 95\nWhat to do: look at `cc-ci status` on the CI host.",
        ),
    ],
)
def test_each_kind_says_what_happened_to_what_and_what_to_do(
    kind: str,
    app: str | None,
    message: str,
    details: dict[str, Any],
    headline: str,
    todo: str,
) -> None:
    """The headline names the app and the event, the agent's message follows, then the action."""
    text = render(alert(kind, app, message, details), host="ci-host").text
    lines = text.splitlines()
    assert (headline, message) == (lines[0], lines[1])
    assert todo in text
    assert f"{kind} alert {IDENT}, raised {TS} on ci-host" == lines[-1]


def test_held_message_quotes_reasons_and_notes() -> None:
    """A held upgrade lists the gate's reasons and quotes each note under its version and path."""
    text = render(alert("infra-held", "keycloak", "held", HELD)).text
    assert (
        "Why:\n- major bump\n- releaseNotes/26.0.0+26.0.md asks for a manual migration\n"
        "Release note 26.0.0+26.0 (releaseNotes/26.0.0+26.0.md):\n    Run kc.sh x"
    ) in text


@pytest.mark.parametrize(
    ("kind", "details"),
    [
        ("infra-held", {**HELD, "reasons": [HOSTILE], "command": HOSTILE}),
        (
            "infra-held",
            {**HELD, "notes": [{"version": HOSTILE, "path": HOSTILE, "text": HOSTILE}]},
        ),
        ("infra-rollback", {"target": HOSTILE, "back": HOSTILE, "restored": True}),
        ("state-corrupt", {"moved_to": HOSTILE}),
        (HOSTILE, {HOSTILE: HOSTILE}),
    ],
)
def test_hostile_alert_text_is_escaped_in_the_html(kind: str, details: dict[str, Any]) -> None:
    """Markup in any field of an alert reaches the room as text: only our own tags remain."""
    message = render(alert(kind, HOSTILE, HOSTILE, details), host=HOSTILE)

    seen = tags_of(message.html)
    assert ALLOWED_TAGS >= seen.tags
    assert [] == seen.attrs
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;amp;&lt;/pre&gt;" in message.html
    assert HOSTILE in message.text  # the plain body is shown as text by every client


def test_the_html_says_what_the_text_says() -> None:
    """Both bodies carry the same words in the same order: either tells the operator the same."""
    message = render(alert("infra-held", "keycloak", "held", HELD), host="h")

    text_words = [w for w in message.text.split() if w != "-"]  # the text's list bullets
    assert text_words == _text_of(message.html).split()


def _text_of(html: str) -> str:
    """Return the text content of ``html``, unescaped."""
    chunks: list[str] = []

    class _Text(HTMLParser):
        def handle_data(self, data: str) -> None:
            chunks.append(data)

    parser = _Text()
    parser.feed(html)
    parser.close()
    return " ".join(chunks)


def test_huge_details_are_clipped() -> None:
    """Fifty 20 kB notes and a hundred reasons stay far below Matrix's 64 KiB event limit."""
    notes = [
        {"version": f"1.{i}.0+1", "path": f"release/1.{i}.0+1", "text": "x" * 20_000}
        for i in range(50)
    ]
    details = {**HELD, "notes": notes, "reasons": ["r" * 5_000] * 100}

    message = render(alert("infra-held", "keycloak", "m" * 5_000, details))

    assert len(message.text.encode()) + len(message.html.encode()) < 32_000
    assert "… and 45 more notes in the recipe's release notes." in message.text
    assert "- … and 88 more" in message.text


def test_the_occurrence_is_the_same_for_a_retry_and_new_when_raised_again() -> None:
    """The id of an occurrence is ``ccci-<id>-<digits of ts>``: a new ts, a new occurrence."""
    first = alert("infra-held", "keycloak", "held", HELD)
    retry = Alert.from_json(
        {"id": IDENT, "kind": "infra-held", "app": "keycloak", "message": "held", "ts": TS}
    )
    again = Alert(IDENT, "infra-held", "keycloak", "held", "2024-05-02T08:30:01+00:00")

    assert "ccci-0123456789abcdef-202405011200000000" == first.occurrence == retry.occurrence
    assert "ccci-0123456789abcdef-202405020830010000" == again.occurrence


@pytest.mark.parametrize("ident", [None, "", "../../etc", "0123456789ABCDEF", 7])
def test_an_alert_without_a_valid_id_is_refused(ident: object) -> None:
    """The id reaches the ack route's path: anything but 16 lowercase hex digits is refused."""
    with pytest.raises(BadInput):
        Alert.from_json({"id": ident, "kind": "k", "message": "m", "ts": TS})


def test_odd_fields_are_shown_rather_than_holding_the_alert_back() -> None:
    """A field of another type is rendered as its repr; missing ones get neutral defaults."""
    odd = Alert.from_json({"id": IDENT, "message": ["not", "text"], "app": 3, "details": "x"})
    assert (IDENT, "alert", "3", "['not', 'text']", "", {}) == (
        odd.id,
        odd.kind,
        odd.app,
        odd.message,
        odd.ts,
        odd.details,
    )
