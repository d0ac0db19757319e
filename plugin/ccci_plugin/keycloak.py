"""Per-run Keycloak realms: the ``Realms`` port, its python-keycloak adapter, a run's realm.

A recipe with ``DEPS = ["keycloak"]`` gets, for each run (cold or quick), an empty enabled realm
``<recipe>-<6hex>`` in the live-warm Keycloak, named with the run's hex: concurrent runs of one
recipe never share a realm. :func:`run_realm` creates it at run start and deletes it at run end,
whatever happened; :func:`reap_orphans` deletes the realms of runs that crashed.

Keycloak's admin REST API, as python-keycloak 7 calls it (``{url}`` is ``CCCI_KEYCLOAK_URL``)::

    POST   {url}/realms/master/protocol/openid-connect/token    form: grant_type=password,
           client_id=admin-cli, username, password → {access_token, expires_in, refresh_token}
    POST   {url}/admin/realms           {"realm": name, "enabled": true} → 201; 409 if it exists
                                        (Keycloak 26.2.4 answers 400)
    GET    {url}/admin/realms           → [RealmRepresentation, ...]
    GET    {url}/admin/realms/{realm}   → 200, or 404
    DELETE {url}/admin/realms/{realm}   → 204, or 404 when absent (not an error: teardown is
                                        idempotent)

Admin calls carry ``Authorization: Bearer <access_token>``; python-keycloak refreshes the token when
it expires or an admin call answers 401. Every failure leaves this module as
``ccci_plugin.errors.KeycloakError`` with the operation (token, create, delete, list, exists), the
realm and Keycloak's HTTP status (None when Keycloak was not reached or answered nonsense).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import requests
from keycloak import KeycloakAdmin, KeycloakOpenIDConnection
from keycloak import exceptions as kc

from ccci_core.errors import ConfigError, InvalidName
from ccci_core.names import realm_name, validate_hex, validate_recipe

from .errors import KeycloakError, KeycloakOperation
from .settings import PluginSettings

log = logging.getLogger(__name__)

MASTER = "master"
NOT_FOUND = 404
# What python-keycloak lets escape: its own tree (transport errors arrive wrapped as
# KeycloakConnectionError), and TypeError/KeyError/ValueError when Keycloak answers a shape it
# did not expect (a token without ``access_token``, a list where a dict belongs, non-JSON).
_FOREIGN = (kc.KeycloakError, requests.RequestException, TypeError, KeyError, ValueError)


class Realms(Protocol):
    """What a run needs from Keycloak: per-run realms."""

    def create(self, realm: str) -> None:
        """Create the empty, enabled realm ``realm``; raise KeycloakError if it exists."""
        ...

    def delete(self, realm: str) -> None:
        """Delete ``realm``; a realm that is already gone is not an error."""
        ...

    def list(self) -> list[str]:
        """Return the names of every realm, ``master`` included."""
        ...

    def exists(self, realm: str) -> bool:
        """Return whether ``realm`` exists."""
        ...


def parse_realm(realm: object) -> tuple[str, str]:
    """Return ``(recipe, run_hex)`` of a per-run realm name, else raise InvalidName."""
    if not isinstance(realm, str):
        raise InvalidName("realm", realm, "not a string")
    recipe, dash, run_hex = realm.rpartition("-")
    try:
        if not dash:
            raise InvalidName("realm", realm, "no '-<6hex>' suffix")
        return validate_recipe(recipe), validate_hex(run_hex)
    except InvalidName as exc:
        raise InvalidName("realm", realm, f"expected <recipe>-<6hex>: {exc.reason}") from exc


def _is_run_realm(realm: str) -> bool:
    """Return whether ``realm`` is shaped ``<recipe>-<6hex>`` (``master`` never is)."""
    try:
        parse_realm(realm)
    except InvalidName:
        return False
    return True


class KeycloakRealms:
    """The Realms adapter: python-keycloak's admin client logged in to ``master``."""

    def __init__(self, url: str, user: str, password: str, *, timeout: int = 30) -> None:
        self.url = url.rstrip("/")
        # python-keycloak joins paths with urljoin: without the trailing slash a path prefix
        # (``https://host/auth``) would be dropped.
        self._connection = KeycloakOpenIDConnection(
            server_url=self.url + "/",
            username=user,
            password=password,
            realm_name=MASTER,
            client_id="admin-cli",
            timeout=timeout,
        )
        self._admin = KeycloakAdmin(connection=self._connection)

    def __repr__(self) -> str:
        return f"KeycloakRealms({self.url!r})"

    @contextmanager
    def _mapped(self, operation: KeycloakOperation, realm: str | None = None) -> Iterator[None]:
        try:
            yield
        except _FOREIGN as exc:
            raise _error(operation, realm, exc, self.url) from exc

    def _login(self) -> None:
        """Fetch the first admin token; python-keycloak refreshes it from then on."""
        if self._connection.token is None:
            with self._mapped("token"):
                self._connection.get_token()

    def create(self, realm: str) -> None:
        """Create the empty, enabled realm ``realm``."""
        parse_realm(realm)
        self._login()
        with self._mapped("create", realm):
            self._admin.create_realm({"realm": realm, "enabled": True})

    def delete(self, realm: str) -> None:
        """Delete ``realm``, or do nothing if Keycloak has no such realm."""
        parse_realm(realm)
        self._login()
        with self._mapped("delete", realm):
            try:
                self._admin.delete_realm(realm)
            except kc.KeycloakError as exc:
                if exc.response_code != NOT_FOUND:
                    raise
                log.info("realm %s was already gone", realm)

    def list(self) -> list[str]:
        """Return the names of every realm."""
        self._login()
        with self._mapped("list"):
            names = [representation["realm"] for representation in self._admin.get_realms()]
        if not all(isinstance(name, str) for name in names):
            raise KeycloakError(
                "keycloak list: Keycloak answered a realm without a name", operation="list"
            )
        return names

    def exists(self, realm: str) -> bool:
        """Return whether ``realm`` exists."""
        parse_realm(realm)
        self._login()
        with self._mapped("exists", realm):
            try:
                self._admin.get_realm(realm)
            except kc.KeycloakError as exc:
                if exc.response_code == NOT_FOUND:
                    return False
                raise
        return True


def _error(
    operation: KeycloakOperation, realm: str | None, exc: Exception, url: str
) -> KeycloakError:
    """Return our error for a foreign one: operation, realm, status, a short reason."""
    status = exc.response_code if isinstance(exc, kc.KeycloakError) else None
    if status is not None:
        reason = f"Keycloak answered {status}"
        message = _text(exc.error_message) if isinstance(exc, kc.KeycloakError) else ""
        if message:
            reason += f": {message}"
        if operation == "token" and status in (400, 401):
            reason += " (check CCCI_KEYCLOAK_ADMIN_USER and CCCI_KEYCLOAK_ADMIN_PASSWORD)"
    elif isinstance(exc, kc.KeycloakConnectionError | requests.RequestException):
        cause = exc.__cause__ if exc.__cause__ is not None else exc
        reason = f"cannot reach Keycloak at {url}: {type(cause).__name__}"
    else:
        reason = f"Keycloak answered something unexpected ({type(exc).__name__})"
    subject = f"{operation} realm {realm}" if realm else operation
    return KeycloakError(
        f"keycloak {subject}: {reason}", operation=operation, http_status=status, realm=realm
    )


def _text(message: Any, limit: int = 200) -> str:
    if isinstance(message, bytes):
        message = message.decode("utf-8", errors="replace")
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[:limit] + "…"


def connect(settings: PluginSettings, *, recipe: str | None = None) -> KeycloakRealms:
    """Build the Realms adapter from settings; raise ConfigError if Keycloak is not configured."""
    needed = f"recipe {recipe!r} depends on keycloak" if recipe else "a recipe depends on keycloak"
    if not settings.keycloak_url:
        raise ConfigError("CCCI_KEYCLOAK_URL", f"{needed}, but no Keycloak is configured")
    if not settings.keycloak_admin_user:
        raise ConfigError("CCCI_KEYCLOAK_ADMIN_USER", f"{needed}: the admin user is empty")
    password = settings.keycloak_admin_password.get_secret_value()
    if not password:
        raise ConfigError(
            "CCCI_KEYCLOAK_ADMIN_PASSWORD",
            f"{needed}: set it, or CCCI_KEYCLOAK_ADMIN_PASSWORD_FILE to a file holding it",
        )
    return KeycloakRealms(settings.keycloak_url, settings.keycloak_admin_user, password)


def _refused(exc: BaseException) -> bool:
    """Return whether Keycloak answered a create with a 4xx: then it created nothing of ours."""
    return (
        isinstance(exc, KeycloakError)
        and exc.http_status is not None
        and 400 <= exc.http_status < 500
    )


def _delete_quietly(realms: Realms, realm: str, original: BaseException) -> None:
    """Delete ``realm`` while ``original`` propagates; a failure is logged, never masks it."""
    try:
        realms.delete(realm)
    except Exception as exc:  # the original error is the one the run reports
        log.warning("could not delete realm %s: %s", realm, exc)
        original.add_note(f"also: could not delete realm {realm}: {exc}")


@contextmanager
def run_realm(realms: Realms, recipe: str, run_hex: str) -> Iterator[str]:
    """Create the run's realm ``<recipe>-<6hex>``, yield its name, delete it whatever happened."""
    realm = realm_name(recipe, run_hex)
    try:
        realms.create(realm)
    except BaseException as exc:
        # A timeout or a 5xx may come after Keycloak created it: the name is the run's, remove it.
        # A 4xx (409 exists) created nothing, and the realm of that name is not ours to delete.
        if not _refused(exc):
            _delete_quietly(realms, realm, exc)
        raise
    log.info("realm %s created", realm)
    try:
        yield realm
    except BaseException as exc:
        _delete_quietly(realms, realm, exc)
        raise
    realms.delete(realm)
    log.info("realm %s deleted", realm)


def orphan_realms(
    names: Iterable[str], live: Collection[str], recipes: Collection[str] | None = None
) -> list[str]:
    """Return the run realms (``<recipe>-<6hex>``) among ``names`` whose hex is not ``live``.

    With ``recipes``, only those of these recipes.
    """
    orphans = []
    for realm in names:
        if not _is_run_realm(realm):
            continue
        recipe, run_hex = parse_realm(realm)
        if run_hex in live or (recipes is not None and recipe not in recipes):
            continue
        orphans.append(realm)
    return orphans


def reap_orphans(
    realms: Realms,
    live_hexes: Collection[str] | Callable[[], Collection[str]],
    recipes: Collection[str] | None = None,
) -> list[str]:
    """Delete the per-run realms of runs that are not live; return their names.

    Only realms shaped ``<recipe>-<6hex>`` are candidates (never ``master``), and with
    ``recipes`` only those of these recipes. Pass ``live_hexes`` as a callable to read the live
    runs after the listing: a run that creates its realm meanwhile is then seen as live (its
    lease is taken before its realm is created).
    """
    names = realms.list()
    live = set(live_hexes() if callable(live_hexes) else live_hexes)
    orphans = orphan_realms(names, live, recipes)
    deleted: list[str] = []
    failed: list[tuple[str, KeycloakError]] = []
    for realm in sorted(orphans):
        try:
            realms.delete(realm)
        except KeycloakError as exc:
            failed.append((realm, exc))
            continue
        log.info("reaped orphan realm %s", realm)
        deleted.append(realm)
    if failed:
        realm, first = failed[0]
        raise KeycloakError(
            f"reaped {len(deleted)} orphan realm(s) {deleted}; could not delete "
            f"{[name for name, _ in failed]}: {first}",
            operation="delete",
            http_status=first.http_status,
            realm=realm,
        ) from first
    return deleted
