"""Reply in chat to the command a verdict answers: a Matrix reply through the client-server API.

The message goes to the command's room as an ``m.notice`` (a bot's message, which other bots do
not answer) with ``m.relates_to`` → ``m.in_reply_to`` the command's event, sent by
:class:`ccci_core.matrix.MatrixRoom` with the build's transaction id, so a retry is not a second
message.
"""

from __future__ import annotations

import requests

from ccci_core.matrix import MatrixRoom
from ccci_core.relay import DeliveryError

from .errors import ChatError


class MatrixReplies:
    """The :class:`~ccci_bridge.verdicts.ChatReplies` of one Matrix account."""

    def __init__(
        self,
        homeserver: str,
        token: str,
        *,
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        self.homeserver = homeserver
        self.timeout = timeout
        self._token = token
        self._session = session or requests.Session()

    def reply(self, room: str, event_id: str, txn_id: str, text: str) -> None:
        """Reply ``text`` to ``event_id`` in ``room``; raise ChatError if it was not sent."""
        target = MatrixRoom(
            self.homeserver, room, self._token, timeout=self.timeout, session=self._session
        )
        content = {
            "msgtype": "m.notice",
            "body": text,
            "m.relates_to": {"m.in_reply_to": {"event_id": event_id}},
        }
        try:
            target.send(txn_id, content)
        except DeliveryError as exc:
            raise ChatError(str(exc)) from exc
