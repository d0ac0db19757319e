"""``/hooks/chat``: plain ``{user, text}`` with a bearer token, or hookshot's outbound webhook."""

from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import flask.testing
import pytest
import responses

from tests.bridge.payloads import DRONE, GITEA, SHA, pull

BUILDS = f"{DRONE}/api/repos/coop-cloud/cc-ci/builds"
BEARER = {"Authorization": "Bearer chat-token"}


def _say(client: flask.testing.FlaskClient, text: str, user: str = "@alice:example.org") -> Any:
    return client.post("/hooks/chat", json={"user": user, "text": text}, headers=BEARER)


def _hookshot(client: flask.testing.FlaskClient, event: dict[str, Any], event_id: str) -> Any:
    """Send what hookshot sends: a PUT with the Matrix event as the multipart file ``event``."""
    data = {
        "event": (io.BytesIO(json.dumps(event).encode()), "event_data.json", "application/json")
    }
    headers = {
        "X-Matrix-Hookshot-RoomId": "!room:example.org",
        "X-Matrix-Hookshot-EventId": event_id,
        "X-Matrix-Hookshot-Token": "chat-token",
    }
    return client.put("/hooks/chat", data=data, headers=headers, content_type="multipart/form-data")


def _message(body: str, sender: str = "@alice:example.org") -> dict[str, Any]:
    return {
        "type": "m.room.message",
        "sender": sender,
        "event_id": "$abc",
        "room_id": "!room:example.org",
        "content": {"msgtype": "m.text", "body": body},
    }


def _query(call: Any) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(call.request.url).query))


def test_chat_quick_run_of_a_recipe(
    client: flask.testing.FlaskClient, api: responses.RequestsMock
) -> None:
    """``!testme --quick <recipe>`` builds the recipe's default branch in the quick lane."""
    api.post(BUILDS, json={"number": 5})

    response = _say(client, "!testme --quick keycloak")

    assert 200 == response.status_code
    expected = {
        "status": "started",
        "text": f"Started the quick lane for `keycloak`: {DRONE}/coop-cloud/cc-ci/5",
    }
    assert expected == response.get_json()
    (call,) = api.calls
    assert {"branch": "main", "RECIPE": "keycloak", "CCCI_QUICK": "1"} == _query(call)
    assert "Bearer drone-token" == call.request.headers["Authorization"]


def test_chat_run_of_a_pull_request(
    client: flask.testing.FlaskClient, api: responses.RequestsMock
) -> None:
    """With a PR number the PR comes from the recipe's repository on the forge."""
    api.get(f"{GITEA}/api/v1/repos/coop-cloud/keycloak/pulls/42", json=pull())
    api.post(BUILDS, json={"number": 6})

    response = _say(client, "!testme keycloak #42")

    assert "started" == response.get_json()["status"]
    assert "token gitea-token" == api.calls[0].request.headers["Authorization"]
    expected = {
        "branch": "main",
        "RECIPE": "keycloak",
        "REF": "refs/pull/42/head",
        "CCCI_PR": "42",
        "CCCI_SHA": SHA,
    }
    assert expected == _query(api.calls[1])


def test_hookshot_outbound_webhook(
    client: flask.testing.FlaskClient, api: responses.RequestsMock
) -> None:
    """Hookshot's multipart PUT works, and its redelivery of the same event starts nothing."""
    api.post(BUILDS, json={"number": 7})

    first = _hookshot(client, _message("!testme keycloak"), "$ev1")
    again = _hookshot(client, _message("!testme keycloak"), "$ev1")

    assert ("started", "duplicate") == (first.get_json()["status"], again.get_json()["status"])
    assert 1 == len(api.calls)


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"type": "m.reaction", "sender": "@alice:example.org", "content": {}}, "not a message"),
        (_message("hello"), "no command"),
        (_message("> !testme keycloak"), "no command"),
    ],
)
def test_hookshot_events_that_are_not_commands(
    client: flask.testing.FlaskClient,
    api: responses.RequestsMock,
    event: dict[str, Any],
    reason: str,
) -> None:
    """Hookshot relays every room event; only command messages count."""
    response = _hookshot(client, event, "$x")

    assert {"status": "ignored", "reason": reason, "text": None} == response.get_json()
    assert [] == list(api.calls)


def test_chat_user_not_on_allowlist_is_refused(
    client: flask.testing.FlaskClient, api: responses.RequestsMock
) -> None:
    """Only CCCI_CHAT_ALLOWLIST users start runs."""
    response = _say(client, "!testme keycloak", user="@mallory:example.org")

    assert "refused" == response.get_json()["status"]
    assert [] == list(api.calls)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("!testme", "Name the recipe. Usage"),
        ("!testme help", "Usage"),
        ("!testme --slow keycloak", "Unknown argument '--slow'"),
        ("!testme ../etc", "'../etc' is not a recipe name"),
        ("!testme keycloak pr42", "'pr42' is not a pull request number"),
        ("!testme keycloak 1 2", "Unexpected argument '2'"),
    ],
)
def test_chat_help(
    client: flask.testing.FlaskClient, api: responses.RequestsMock, text: str, expected: str
) -> None:
    """Help and bad arguments answer the usage and start nothing."""
    response = _say(client, text)

    assert "help" == response.get_json()["status"]
    assert response.get_json()["text"].startswith(expected)
    assert [] == list(api.calls)


def test_chat_drone_failure_is_answered(
    client: flask.testing.FlaskClient, api: responses.RequestsMock
) -> None:
    """Drone's 5xx becomes a readable answer, not an error page."""
    api.post(BUILDS, status=502, body="bad gateway")

    response = _say(client, "!testme keycloak")

    assert 200 == response.status_code
    expected = {
        "status": "failed",
        "text": "Sorry, the run could not be started: Drone answered 502: bad gateway.",
    }
    assert expected == response.get_json()


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": "chat-token"},
        {"X-Matrix-Hookshot-Token": "x"},
    ],
)
def test_chat_needs_the_token(client: flask.testing.FlaskClient, headers: dict[str, str]) -> None:
    """Without the shared token the chat hook answers 401."""
    response = client.post(
        "/hooks/chat", json={"user": "@alice:example.org", "text": "!testme x"}, headers=headers
    )

    assert 401 == response.status_code


def test_hookshot_without_event_part_is_400(client: flask.testing.FlaskClient) -> None:
    """A multipart body must carry the event."""
    response = client.put(
        "/hooks/chat",
        data={"media": (io.BytesIO(b"x"), "a.bin")},
        headers={"X-Matrix-Hookshot-Token": "chat-token"},
        content_type="multipart/form-data",
    )

    assert (400, "missing the event part") == (response.status_code, response.get_json()["reason"])
