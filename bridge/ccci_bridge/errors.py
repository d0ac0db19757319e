"""The bridge's exception tree.

    BridgeError (ccci_core.CcciError)   root; ``status`` is the HTTP status an entry point answers
    ├── Rejected                        the sender's request is refused (400, 401, 404, 413, 415)
    ├── StoreError                      the dedupe store (SQLite) failed; 503
    └── UpstreamError                   an outside API failed; ``service``, ``status_code``
        ├── DroneError                  Drone refused or failed to create the build
        │   └── NoPipeline              Drone answered ``null``: no pipeline matched
        ├── ForgeError                  the Gitea/Forgejo or GitHub API failed
        └── ChatError                   the chat reply (Matrix) was not sent

Adapters map every foreign error (``requests``, JSON decoding) to ``UpstreamError`` with
``raise ... from exc``; ``hooks`` maps ``BridgeError`` to a JSON answer.
"""

from __future__ import annotations

from ccci_core.errors import CcciError


class BridgeError(CcciError):
    """Root of every error the bridge raises on purpose."""

    status = 500


class Rejected(BridgeError):
    """Refuse an inbound request with a 4xx and a reason the sender can read."""

    exit_code = 2

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason, status=status)
        self.status = status
        self.reason = reason


class StoreError(BridgeError):
    """Report that the dedupe store could not be read or written."""

    status = 503


class UpstreamError(BridgeError):
    """Report a failed call to Drone or a forge."""

    status = 502
    service = "upstream"

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message, service=self.service, status_code=status_code)
        self.status_code = status_code


class DroneError(UpstreamError):
    """Report that Drone did not create the build."""

    service = "drone"


class NoPipeline(DroneError):
    """Report Drone's ``null``: no pipeline of the CI repository matched the build."""


class ForgeError(UpstreamError):
    """Report a failed Gitea/Forgejo or GitHub API call."""

    service = "forge"


class ChatError(UpstreamError):
    """Report that a chat reply was not sent."""

    service = "chat"
