"""The Matrix target: the exact PUT, and every answer and foreign error mapped to DeliveryError."""

from __future__ import annotations

import json

import pytest
import requests
import responses

from ccci_core.alert_message import Alert, Message
from ccci_core.matrix import MatrixRoom
from ccci_core.relay import DeliveryError

HOMESERVER = "https://matrix.example.org"
ROOM = "!ops:example.org"
TOKEN = "syt_secret_token"
ALERT = Alert("0123456789abcdef", "infra-held", "keycloak", "held", "2024-05-01T12:00:00+00:00")
MESSAGE = Message("plain text", "<p>html</p>")
SEND = (
    f"{HOMESERVER}/_matrix/client/v3/rooms/%21ops%3Aexample.org/send/m.room.message/"
    "ccci-0123456789abcdef-202405011200000000"
)
FOREIGN = [
    requests.ConnectionError("refused"),
    requests.ConnectTimeout("slow to connect"),
    requests.ReadTimeout("slow to answer"),
    requests.exceptions.SSLError("cert"),
    requests.exceptions.ChunkedEncodingError("cut"),
    requests.exceptions.TooManyRedirects("loop"),
]


@pytest.fixture
def room() -> MatrixRoom:
    """The room on the homeserver, as configured (a trailing slash is dropped)."""
    return MatrixRoom(HOMESERVER + "/", ROOM, TOKEN)


@responses.activate
def test_the_put_is_the_spec_s(room: MatrixRoom) -> None:
    """PUT to the encoded room and the occurrence's txn id, bearer token, m.text with HTML."""
    responses.put(SEND, json={"event_id": "$ev"})

    room.deliver(ALERT, MESSAGE)

    (call,) = responses.calls
    assert f"Bearer {TOKEN}" == call.request.headers["Authorization"]
    assert {
        "msgtype": "m.text",
        "body": "plain text",
        "format": "org.matrix.custom.html",
        "formatted_body": "<p>html</p>",
    } == json.loads(call.request.body or b"")


@responses.activate
@pytest.mark.parametrize(
    ("status", "answer", "headers", "wide", "reason"),
    [
        (500, {"errcode": "M_UNKNOWN", "error": "boom"}, {}, False, "answered 500 M_UNKNOWN: boom"),
        (400, {"errcode": "M_BAD_JSON", "error": "bad"}, {}, False, "400 M_BAD_JSON: bad"),
        (413, {"errcode": "M_TOO_LARGE", "error": "big"}, {}, False, "413 M_TOO_LARGE: big"),
        (401, {"errcode": "M_UNKNOWN_TOKEN", "error": "x"}, {}, True, "401 M_UNKNOWN_TOKEN: x"),
        (403, {"errcode": "M_FORBIDDEN", "error": "not in room"}, {}, True, "403 M_FORBIDDEN"),
        (
            429,
            {"errcode": "M_LIMIT_EXCEEDED", "error": "slow", "retry_after_ms": 2500},
            {},
            True,
            "429 M_LIMIT_EXCEEDED: slow (retry after 2.5 s)",
        ),
        (
            429,
            {"errcode": "M_LIMIT_EXCEEDED", "error": "slow"},
            {"Retry-After": "7"},
            True,
            "(retry after 7 s)",
        ),
        (502, None, {}, True, "answered 502 <html> bad gateway </html>"),
        (200, {"no": "event"}, {}, True, "answered 200 without an event_id"),
        (302, None, {"Location": "https://elsewhere/"}, True, "redirected (302) to https://else"),
    ],
)
def test_answers_are_mapped(
    room: MatrixRoom,
    status: int,
    answer: dict[str, object] | None,
    headers: dict[str, str],
    wide: bool,
    reason: str,
) -> None:
    """Each failure names what the homeserver said and whether every alert would fail alike."""
    if answer is None:
        responses.put(SEND, status=status, body="<html>\n bad gateway </html>", headers=headers)
    else:
        responses.put(SEND, status=status, json=answer, headers=headers)

    with pytest.raises(DeliveryError) as caught:
        room.deliver(ALERT, MESSAGE)

    assert (f"matrix {ROOM}", wide) == (caught.value.target, caught.value.target_wide)
    assert reason in caught.value.reason
    assert TOKEN not in str(caught.value)
    assert 1 == len(responses.calls)  # a redirect is not followed: the token stays put


@responses.activate
@pytest.mark.parametrize("exc", FOREIGN, ids=lambda e: type(e).__name__)
def test_transport_errors_are_mapped_and_stop_the_pass(room: MatrixRoom, exc: Exception) -> None:
    """No requests exception leaves the adapter; none is the alert's fault."""
    responses.put(SEND, body=exc)

    with pytest.raises(DeliveryError) as caught:
        room.deliver(ALERT, MESSAGE)

    assert (True, exc) == (caught.value.target_wide, caught.value.__cause__)


def test_a_room_id_is_encoded_whatever_it_holds() -> None:
    """A room id reaches a path segment: ``/``, ``?`` and ``#`` in it are encoded, never routed."""
    room = MatrixRoom(HOMESERVER, "!a/b?c#d:example.org", TOKEN)
    assert (
        f"{HOMESERVER}/_matrix/client/v3/rooms/%21a%2Fb%3Fc%23d%3Aexample.org/send/m.room.message/t"
        == room.url("t")
    )
