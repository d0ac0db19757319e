"""Alerts: sentinel files, deduplication by key, acknowledgement into seen/."""

from __future__ import annotations

import pytest

from ccci_agent.alerts import Alerts
from ccci_agent.errors import Conflict, NotFound
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


def test_same_key_raises_once_while_active(state: StateDir) -> None:
    """The same held upgrade raised again while its alert is active creates nothing."""
    alerts = Alerts(state)
    first, created = alerts.raise_("infra-held", "keycloak", "hold:26", "held", {})

    again, created_again = alerts.raise_("infra-held", "keycloak", "hold:26", "held again", {})

    assert (True, False) == (created, created_again)
    assert [first] == [again] == alerts.active()


def test_a_new_occurrence_after_an_ack_alerts_again(state: StateDir) -> None:
    """An acknowledgement silences one occurrence, not the key: raised after it, it is active."""
    alerts = Alerts(state)
    first, _ = alerts.raise_("infra-held", "keycloak", "hold:26", "held", {})
    alerts.ack(first["id"])

    again, created = alerts.raise_("infra-held", "keycloak", "hold:26", "held again", {})

    assert (True, first["id"]) == (created, again["id"])
    assert ["held again"] == [a["message"] for a in alerts.active()]


def test_ack_with_a_ts_archives_only_that_occurrence(state: StateDir) -> None:
    """A relay acks what it delivered: an occurrence raised since is refused and stays active."""
    alerts = Alerts(state)
    first, _ = alerts.raise_("infra-held", "keycloak", "hold:26", "held", {})
    alerts.ack(first["id"])
    again, _ = alerts.raise_("infra-held", "keycloak", "hold:26", "held again", {})
    (state.alerts / f"{again['id']}.json").write_text(
        (state.alerts / f"{again['id']}.json").read_text().replace(again["ts"], "2099-01-01")
    )  # raised at another second than the first

    with pytest.raises(Conflict):
        alerts.ack(first["id"], ts=first["ts"])
    assert ["held again"] == [a["message"] for a in alerts.active()]
    assert "held again" == alerts.ack(first["id"], ts="2099-01-01")["message"]


def test_every_acknowledgement_of_a_key_is_kept(state: StateDir) -> None:
    """Three occurrences acknowledged within a second: three files in seen/, none overwritten."""
    alerts = Alerts(state)
    for i in range(3):
        alert, _ = alerts.raise_("infra-held", "keycloak", "hold:26", f"held {i}", {})
        alerts.ack(alert["id"])

    seen = sorted((state.alerts / "seen").iterdir())
    assert 3 == len(seen)
    assert {f"held {i}" for i in range(3)} == {read_json(p)["message"] for p in seen}
    assert all(p.name.startswith(f"{alert['id']}-") for p in seen)
    assert [] == alerts.active()


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
