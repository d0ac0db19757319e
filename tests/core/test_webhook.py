"""The webhook target: ``{"text", "html"}`` posted, its secret URL never shown, errors mapped."""

from __future__ import annotations

import json

import pytest
import requests
import responses

from ccci_core.alert_message import Alert, Message
from ccci_core.relay import DeliveryError
from ccci_core.webhook import Webhook

URL = "https://hookshot.example.org/webhook/6f1c-secret-hook?key=also-secret"
ALERT = Alert("0123456789abcdef", "infra-down", "traefik", "down", "2024-05-01T12:00:00+00:00")
MESSAGE = Message("plain text", "<p>html</p>")


@responses.activate
def test_the_webhook_gets_text_and_html() -> None:
    """One POST of hookshot's inbound shape, with the occurrence as its idempotency key."""
    responses.post(URL, json={"ok": True})

    Webhook(URL).deliver(ALERT, MESSAGE)

    (call,) = responses.calls
    assert {"text": "plain text", "html": "<p>html</p>"} == json.loads(call.request.body or b"")
    assert "ccci-0123456789abcdef-202405011200000000" == call.request.headers["Idempotency-Key"]


def test_its_name_hides_the_path_and_the_query() -> None:
    """The URL is a credential: lines name its scheme and host only (no user info either)."""
    assert "webhook https://hookshot.example.org" == Webhook(URL).name
    assert "webhook http://h:8080" == Webhook("http://user:pw@h:8080/x").name


@responses.activate
@pytest.mark.parametrize(
    ("status", "wide"), [(500, False), (400, False), (404, True), (503, True), (301, True)]
)
def test_answers_are_mapped(status: int, wide: bool) -> None:
    """Anything but 2xx fails; a wrong URL, an outage or a redirect fails every alert alike."""
    responses.post(URL, status=status, body="no")

    with pytest.raises(DeliveryError) as caught:
        Webhook(URL).deliver(ALERT, MESSAGE)

    assert (f"answered {status} no", wide) == (caught.value.reason, caught.value.target_wide)
    assert "secret" not in str(caught.value)


@responses.activate
@pytest.mark.parametrize(
    "exc",
    [requests.ConnectionError(URL), requests.ReadTimeout(URL), requests.exceptions.SSLError(URL)],
    ids=lambda e: type(e).__name__,
)
def test_transport_errors_are_mapped_without_the_url(exc: Exception) -> None:
    """A requests error (whose text holds the URL) leaves the adapter as ours, the URL left out."""
    responses.post(URL, body=exc)

    with pytest.raises(DeliveryError) as caught:
        Webhook(URL).deliver(ALERT, MESSAGE)

    assert (True, exc) == (caught.value.target_wide, caught.value.__cause__)
    assert "secret" not in str(caught.value)
