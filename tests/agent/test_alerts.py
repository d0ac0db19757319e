"""Alerts: sentinel files, deduplication by key, acknowledgement into seen/."""

from __future__ import annotations

import pytest

from ccci_agent.alerts import Alerts
from ccci_agent.errors import NotFound
from ccci_agent.store import StateDir, read_json
from ccci_core.errors import InvalidName


def test_raise_writes_a_sentinel(state: StateDir) -> None:
    """An alert is a JSON file named by its id with kind, app, message, details and ts."""
    alert, created = Alerts(state).raise_(
        "infra-held", "keycloak", "hold:keycloak:26.0.0", "major bump held", {"to": "26.0.0"}
    )
    assert created
    assert alert == read_json(state.alerts / f"{alert['id']}.json")
    assert {"id", "kind", "app", "key", "message", "details", "ts"} == set(alert)


def test_same_key_raises_once_even_after_ack(state: StateDir) -> None:
    """The same held upgrade does not alert again, active or acknowledged."""
    alerts = Alerts(state)
    first, _ = alerts.raise_("infra-held", "keycloak", "hold:26", "held", {})
    alerts.ack(first["id"])

    again, created = alerts.raise_("infra-held", "keycloak", "hold:26", "held again", {})

    assert not created
    assert first["id"] == again["id"]
    assert [] == alerts.active()
    assert (state.alerts / "seen" / f"{first['id']}.json").is_file()


def test_different_keys_are_different_alerts(state: StateDir) -> None:
    """Two targets give two alerts, listed oldest first."""
    alerts = Alerts(state)
    alerts.raise_("infra-held", "keycloak", "hold:26", "held 26", {})
    alerts.raise_("infra-held", "keycloak", "hold:27", "held 27", {})
    assert ["held 26", "held 27"] == sorted(a["message"] for a in alerts.active())


@pytest.mark.parametrize("ident", ["../../etc/passwd", "ABCDEF0123456789", "abc", ""])
def test_ack_refuses_malformed_ids(state: StateDir, ident: str) -> None:
    """An alert id reaches a path, so anything but 16 hex digits is refused."""
    with pytest.raises(InvalidName):
        Alerts(state).ack(ident)


def test_ack_of_unknown_alert_is_not_found(state: StateDir) -> None:
    """Acknowledging an alert that is not active is a 404-kind error."""
    with pytest.raises(NotFound):
        Alerts(state).ack("0123456789abcdef")


@pytest.mark.parametrize("content", [b'{"id": "01234', b"\x00\x00", b'"just a string"'])
def test_corrupt_alert_is_moved_aside_and_the_rest_listed(state: StateDir, content: bytes) -> None:
    """A garbage alert file never takes the listing down: it is moved aside and alerted."""
    alerts = Alerts(state)
    kept, _ = alerts.raise_("infra-held", "keycloak", "hold:26", "held", {})
    broken = state.alerts / "0123456789abcdef.json"
    broken.write_bytes(content)

    listed = alerts.active()

    [moved] = state.alerts.glob("0123456789abcdef.json.corrupt-*")
    assert content == moved.read_bytes()
    assert ["infra-held", "state-corrupt"] == sorted(a["kind"] for a in listed)
    assert kept in listed
    corrupt = next(a for a in listed if a["kind"] == "state-corrupt")
    assert f"alerts/{broken.name} was corrupt" in corrupt["message"]
    assert moved.name in corrupt["message"]


def test_corrupt_alert_cannot_be_acknowledged_but_is_reported(state: StateDir) -> None:
    """Acknowledging a corrupt alert moves it aside, alerts about it, and answers not found."""
    alerts = Alerts(state)
    (state.alerts / "0123456789abcdef.json").write_text("{")
    with pytest.raises(NotFound):
        alerts.ack("0123456789abcdef")
    assert ["state-corrupt"] == [a["kind"] for a in alerts.active()]
