"""Post alerts to a generic JSON webhook (the relay's webhook target).

``POST <CCCI_ALERT_WEBHOOK_URL>`` with ``{"text": ..., "html": ...}``: what a matrix-hookshot
inbound ("generic") webhook takes and posts to its room. Any 2xx is delivered; hookshot answers
before it posted unless its ``waitForComplete`` is set. A webhook has no transaction id, so a retry
after a lost answer may post twice; the ``Idempotency-Key`` header carries the alert's occurrence
for a receiver that can use it. The URL is a credential (a hookshot URL is all it takes to post):
lines name only its scheme and host. Redirects are not followed. Foreign errors become
:class:`~ccci_core.relay.DeliveryError` here.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import requests

from .alert_message import Alert, Message
from .relay import DELIVERY_TIMEOUT, DeliveryError, target_wide


class Webhook:
    """A :class:`~ccci_core.relay.Target`: one URL that takes ``{"text", "html"}``."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DELIVERY_TIMEOUT,
        session: requests.Session | None = None,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self._session = session or requests.Session()
        parts = urlsplit(url)
        self._where = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"

    @property
    def name(self) -> str:
        """Return ``webhook <scheme>://<host>`` (the path and query may hold its secret)."""
        return f"webhook {self._where}"

    def deliver(self, alert: Alert, message: Message) -> None:
        """POST ``message``; raise DeliveryError unless the webhook answers 2xx."""
        try:
            response = self._session.post(
                self.url,
                json={"text": message.text, "html": message.html},
                headers={"Idempotency-Key": alert.occurrence},
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.Timeout as exc:
            raise DeliveryError(
                self.name, f"no answer within {self.timeout:g} s", target_wide=True
            ) from exc
        except requests.RequestException as exc:
            raise DeliveryError(
                self.name, f"cannot reach {self._where}: {type(exc).__name__}", target_wide=True
            ) from exc
        status = response.status_code
        if 200 <= status < 300:
            return
        said = " ".join(response.text.split())[:200]
        raise DeliveryError(
            self.name, f"answered {status} {said}".rstrip(), target_wide=target_wide(status)
        )
