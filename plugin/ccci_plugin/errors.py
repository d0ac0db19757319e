"""The plugin's exception tree.

    PluginError (ccci_core.CcciError)   root; exit 1 (the run failed, not its input)
    └── KeycloakError                   an admin call failed: ``operation``, ``status``, ``realm``

Adapters map every foreign error (python-keycloak's, ``requests``', malformed answers) to their kind
here with ``raise ... from exc``; bad settings and names stay the core's BadInput kinds (exit 2).
"""

from __future__ import annotations

from typing import Literal

from ccci_core.errors import CcciError

KeycloakOperation = Literal["token", "create", "delete", "list", "exists"]


class PluginError(CcciError):
    """Root of every error the plugin raises on purpose."""


class KeycloakError(PluginError):
    """Report a failed Keycloak admin call: which operation, on which realm, Keycloak's status."""

    def __init__(
        self,
        message: str,
        *,
        operation: KeycloakOperation,
        status: int | None = None,
        realm: str | None = None,
    ) -> None:
        super().__init__(message, operation=operation, status=status, realm=realm)
        self.operation = operation
        self.status = status
        self.realm = realm
