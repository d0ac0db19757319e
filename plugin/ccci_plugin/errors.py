"""The plugin's exception tree (under :class:`ccci_core.errors.CcciError`).

    PluginError               root of what a run raises on purpose (exit 1)
    ├── LeaseUnavailable      no run lease within the wait
    ├── Cancelled             Drone cancelled the run (SIGTERM); teardown still runs
    ├── CheckFailed           an assertion about the app failed (marker lost, label not moved)
    └── KeycloakError         an admin call failed: ``operation``, ``http_status``, ``realm``

A run maps every error to a failed step in its report. Adapters map every foreign error
(python-keycloak's, ``requests``', malformed answers) to their kind here with ``raise ... from
exc``; bad settings and names stay the core's BadInput kinds (exit 2).
"""

from __future__ import annotations

from typing import Literal

from ccci_core.errors import CcciError

KeycloakOperation = Literal["token", "create", "delete", "list", "exists"]


class PluginError(CcciError):
    """Root of every error the plugin raises on purpose."""


class LeaseUnavailable(PluginError):
    """The host agent granted no run lease within the wait."""


class Cancelled(PluginError):
    """The run was cancelled (SIGTERM from Drone's cancel)."""


class CheckFailed(PluginError):
    """An assertion about the app failed."""


class KeycloakError(PluginError):
    """Report a failed Keycloak admin call: which operation, on which realm, Keycloak's status."""

    def __init__(
        self,
        message: str,
        *,
        operation: KeycloakOperation,
        http_status: int | None = None,
        realm: str | None = None,
    ) -> None:
        super().__init__(message, operation=operation, http_status=http_status, realm=realm)
        self.operation = operation
        self.http_status = http_status  # Keycloak's answer; None when it was not reached
        self.realm = realm
