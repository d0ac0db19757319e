"""Post alerts to a Matrix room through the client-server API (the relay's Matrix target).

``PUT {homeserver}/_matrix/client/v3/rooms/{roomId}/send/m.room.message/{txnId}`` with
``Authorization: Bearer <token>`` and an ``m.text`` body carrying both the plain text and
``org.matrix.custom.html``; the room id is percent-encoded (``!`` and ``:`` are not path-safe).
The homeserver answers ``200 {"event_id": "$…"}``, or an error ``{"errcode", "error"}``; a
``429 M_LIMIT_EXCEEDED`` says when to retry (the ``Retry-After`` header, or the deprecated
``retry_after_ms``).

The transaction id is the alert's occurrence (:attr:`~ccci_core.alert_message.Alert.occurrence`),
so a retry is idempotent: a homeserver answers a PUT whose device and path (room and txnId) it has
seen with the first event's id instead of sending again. The spec leaves open for how long it
remembers; Synapse keeps a transaction 30 to 60 minutes, in memory. A new occurrence of the same
alert is a new transaction, so a new message. Redirects are not followed: the token stays with the
configured homeserver. Foreign errors become :class:`~ccci_core.relay.DeliveryError` here.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests

from .alert_message import Alert, Message
from .relay import DELIVERY_TIMEOUT, DeliveryError, target_wide


class MatrixRoom:
    """A :class:`~ccci_core.relay.Target`: one room, posted to as the token's user and device."""

    def __init__(
        self,
        homeserver: str,
        room: str,
        token: str,
        *,
        timeout: float = DELIVERY_TIMEOUT,
        session: requests.Session | None = None,
    ) -> None:
        self.homeserver = homeserver.rstrip("/")
        self.room = room
        self.timeout = timeout
        self._token = token
        self._session = session or requests.Session()

    @property
    def name(self) -> str:
        """Return ``matrix <room id>``."""
        return f"matrix {self.room}"

    def url(self, txn_id: str) -> str:
        """Return the send URL of the room for transaction ``txn_id``."""
        room, txn = quote(self.room, safe=""), quote(txn_id, safe="")
        return f"{self.homeserver}/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}"

    def deliver(self, alert: Alert, message: Message) -> None:
        """Send ``message`` as this occurrence's event; raise DeliveryError if it is not sent."""
        body = {
            "msgtype": "m.text",
            "body": message.text,
            "format": "org.matrix.custom.html",
            "formatted_body": message.html,
        }
        self.send(alert.occurrence, body)

    def send(self, txn_id: str, content: dict[str, Any]) -> None:
        """Send an ``m.room.message`` of ``content`` as transaction ``txn_id`` (a retry is one)."""
        try:
            response = self._session.put(
                self.url(txn_id),
                json=content,
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.Timeout as exc:
            raise DeliveryError(
                self.name,
                f"no answer from {self.homeserver} within {self.timeout:g} s "
                "(the retry reuses the transaction id)",
                target_wide=True,
            ) from exc
        except requests.RequestException as exc:
            raise DeliveryError(
                self.name, f"cannot reach {self.homeserver}: {type(exc).__name__}", target_wide=True
            ) from exc
        answer = _json(response)
        if response.status_code == 200:
            if isinstance(answer.get("event_id"), str):
                return
            raise DeliveryError(self.name, "answered 200 without an event_id", target_wide=True)
        raise DeliveryError(
            self.name, _reason(response, answer), target_wide=target_wide(response.status_code)
        )


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _reason(response: requests.Response, answer: dict[str, Any]) -> str:
    status = response.status_code
    if 300 <= status < 400:
        where = response.headers.get("Location", "?")
        return f"redirected ({status}) to {where}: set CCCI_MATRIX_HOMESERVER to the final URL"
    errcode, error = answer.get("errcode"), answer.get("error")
    said = f"{errcode}: {error}" if errcode else " ".join(response.text.split())[:200]
    text = f"the homeserver answered {status} {said}".rstrip()
    if status == 429:
        retry = response.headers.get("Retry-After") or (
            f"{answer['retry_after_ms'] / 1000:g}"
            if isinstance(answer.get("retry_after_ms"), int | float)
            else None
        )
        text += f" (retry after {retry} s)" if retry else ""
    return text
