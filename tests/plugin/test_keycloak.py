"""Per-run realms: the python-keycloak adapter against Keycloak's admin API, via ``responses``."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
import responses
from requests import PreparedRequest

from ccci_core.errors import CcciError, ConfigError, InvalidName
from ccci_core.settings import load
from ccci_plugin.errors import KeycloakError, PluginError
from ccci_plugin.keycloak import (
    KeycloakRealms,
    connect,
    parse_realm,
    reap_orphans,
    run_realm,
)
from ccci_plugin.settings import PluginSettings

URL = "http://keycloak.test"
TOKEN_PATH = "/realms/master/protocol/openid-connect/token"
USER, PASSWORD = "admin", "s3cret"
RECIPE = "app"
REALM = "app-a1b2c3"
NOT_FOUND = {"error": "Realm not found."}
CONFLICT = {"errorMessage": "Conflict detected. See logs for details"}
Answer = tuple[int, dict[str, str], str]


class FakeKeycloak:
    """Keycloak's token endpoint and realm admin API, with realms held in memory.

    It answers what Keycloak answers (201 + Location, 204, 404 ``Realm not found.``, 409, 401
    ``invalid_grant``) and refuses what Keycloak refuses: a wrong password, a missing or unknown
    bearer token, a realm body that is not JSON.
    """

    def __init__(
        self, mock: responses.RequestsMock, url: str = URL, *, expires_in: int = 60
    ) -> None:
        self.url = url
        self.expires_in = expires_in
        self.realms: dict[str, dict[str, Any]] = {"master": {"realm": "master", "enabled": True}}
        self.grants: list[str] = []
        self.failures: dict[tuple[str, str], int] = {}  # (method, realm or "*") → status
        self.events: list[str] = []
        self._tokens: set[str] = set()
        self._lock = threading.Lock()
        one = re.compile(re.escape(f"{url}/admin/realms/") + r"([^/?]+)$")
        mock.add_callback(responses.POST, url + TOKEN_PATH, callback=self._token)
        mock.add_callback(responses.POST, f"{url}/admin/realms", callback=self._create)
        mock.add_callback(responses.GET, f"{url}/admin/realms", callback=self._list)
        mock.add_callback(responses.GET, one, callback=self._get)
        mock.add_callback(responses.DELETE, one, callback=self._delete)

    def _token(self, request: PreparedRequest) -> Answer:
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body)
        form = {key: values[0] for key, values in parse_qs(body).items()}
        with self._lock:
            self.grants.append(form.get("grant_type", ""))
            grant = form.get("grant_type")
            password = grant == "password" and (form.get("username"), form.get("password")) == (
                USER,
                PASSWORD,
            )
            refresh = grant == "refresh_token" and form.get("refresh_token") in self._tokens
            ok = form.get("client_id") == "admin-cli" and (password or refresh)
            if not ok:
                error = {"error": "invalid_grant", "error_description": "Invalid user credentials"}
                return 401, {}, json.dumps(error)
            token = f"tok-{len(self.grants)}"
            self._tokens.add(token)
        answer = {
            "access_token": token,
            "expires_in": self.expires_in,
            "refresh_token": token,
            "refresh_expires_in": 1800,
            "token_type": "Bearer",
        }
        return 200, {}, json.dumps(answer)

    def _refused(self, request: PreparedRequest, realm: str) -> Answer | None:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer ") or header.removeprefix("Bearer ") not in self._tokens:
            return 401, {}, json.dumps({"error": "HTTP 401 Unauthorized"})
        method = str(request.method)
        status = self.failures.get((method, realm), self.failures.get((method, "*")))
        if status is not None:
            return status, {}, json.dumps({"error": "unknown_error"})
        return None

    def _create(self, request: PreparedRequest) -> Answer:
        body = json.loads(request.body or b"{}")
        name = str(body.get("realm", ""))
        refused = self._refused(request, name)
        if refused:
            return refused
        if request.headers.get("Content-Type") != "application/json":
            return 415, {}, ""
        with self._lock:
            if name in self.realms:
                return 409, {}, json.dumps(CONFLICT)
            self.realms[name] = body
            self.events.append(f"create {name}")
        return 201, {"Location": f"{self.url}/admin/realms/{name}"}, ""

    def _list(self, request: PreparedRequest) -> Answer:
        refused = self._refused(request, "*")
        if refused:
            return refused
        with self._lock:
            self.events.append("list")
            return 200, {}, json.dumps(list(self.realms.values()))

    def _name(self, request: PreparedRequest) -> str:
        return str(request.url).rsplit("/", 1)[1]

    def _get(self, request: PreparedRequest) -> Answer:
        name = self._name(request)
        refused = self._refused(request, name)
        if refused:
            return refused
        if name not in self.realms:
            return 404, {}, json.dumps(NOT_FOUND)
        return 200, {}, json.dumps(self.realms[name])

    def _delete(self, request: PreparedRequest) -> Answer:
        name = self._name(request)
        refused = self._refused(request, name)
        if refused:
            return refused
        with self._lock:
            if self.realms.pop(name, None) is None:
                return 404, {}, json.dumps(NOT_FOUND)
            self.events.append(f"delete {name}")
        return 204, {}, ""


@pytest.fixture
def mock() -> Iterator[responses.RequestsMock]:
    """The transport: every request must be answered by a registered route."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def fake(mock: responses.RequestsMock) -> FakeKeycloak:
    """A Keycloak holding only ``master``."""
    return FakeKeycloak(mock)


@pytest.fixture
def realms() -> KeycloakRealms:
    """The adapter, logged in as the admin of ``master``."""
    return KeycloakRealms(URL + "/", USER, PASSWORD)


def calls(mock: responses.RequestsMock) -> list[tuple[str, str]]:
    """Return each request as (method, path)."""
    return [(str(c.request.method), str(c.request.path_url)) for c in mock.calls]


# -- the requests on the wire ---------------------------------------------------------------------


def test_create_sends_the_documented_requests(
    mock: responses.RequestsMock, fake: FakeKeycloak, realms: KeycloakRealms
) -> None:
    """A password grant for admin-cli in master, then the realm POSTed as JSON with the bearer."""
    realms.create(REALM)

    assert [("POST", TOKEN_PATH), ("POST", "/admin/realms")] == calls(mock)
    token, create = (c.request for c in mock.calls)
    assert "application/x-www-form-urlencoded" == token.headers["Content-Type"]
    form = parse_qs(str(token.body))
    assert {
        "grant_type": ["password"],
        "client_id": ["admin-cli"],
        "username": [USER],
        "password": [PASSWORD],
        "scope": ["openid"],
    } == form
    assert "Bearer tok-1" == create.headers["Authorization"]
    assert "application/json" == create.headers["Content-Type"]
    assert {"realm": REALM, "enabled": True} == json.loads(create.body or b"")
    assert {"master", REALM} == set(fake.realms)


def test_one_token_serves_several_calls(
    mock: responses.RequestsMock, fake: FakeKeycloak, realms: KeycloakRealms
) -> None:
    """The admin token is fetched once and sent as the bearer of every admin call."""
    realms.create(REALM)
    present = realms.exists(REALM)
    names = realms.list()
    realms.delete(REALM)

    assert [
        ("POST", TOKEN_PATH),
        ("POST", "/admin/realms"),
        ("GET", f"/admin/realms/{REALM}"),
        ("GET", "/admin/realms"),
        ("DELETE", f"/admin/realms/{REALM}"),
    ] == calls(mock)
    assert {"Bearer tok-1"} == {c.request.headers["Authorization"] for c in mock.calls[1:]}
    assert (True, ["master", REALM]) == (present, names)
    assert {"master"} == set(fake.realms)


def test_expired_token_is_refreshed(mock: responses.RequestsMock) -> None:
    """A token past its lifetime is renewed with its refresh token before the next call."""
    fake = FakeKeycloak(mock, expires_in=0)
    realms = KeycloakRealms(URL, USER, PASSWORD)

    realms.create(REALM)
    realms.delete(REALM)

    assert "refresh_token" == fake.grants[-1]
    assert {"master"} == set(fake.realms)


def test_url_with_a_path_prefix(mock: responses.RequestsMock) -> None:
    """A Keycloak served under a path (``/auth``) keeps the prefix in every request."""
    fake = FakeKeycloak(mock, f"{URL}/auth")

    KeycloakRealms(f"{URL}/auth", USER, PASSWORD).create(REALM)

    assert [("POST", f"/auth{TOKEN_PATH}"), ("POST", "/auth/admin/realms")] == calls(mock)
    assert REALM in fake.realms


def test_delete_of_a_missing_realm_is_not_an_error(
    mock: responses.RequestsMock, fake: FakeKeycloak, realms: KeycloakRealms
) -> None:
    """Teardown is idempotent: Keycloak's 404 on DELETE means the realm is already gone."""
    realms.delete(REALM)

    assert ("DELETE", f"/admin/realms/{REALM}") == calls(mock)[-1]
    assert 404 == mock.calls[-1].response.status_code  # type: ignore[union-attr]


def test_exists_is_false_on_404(fake: FakeKeycloak, realms: KeycloakRealms) -> None:
    """A realm Keycloak does not know does not exist."""
    assert False is realms.exists(REALM)


@pytest.mark.parametrize(
    "name",
    [
        "master",
        "app",
        "app-",
        "-a1b2c3",
        "App-a1b2c3",
        "app-A1B2C3",
        "app-a1b2c",
        "app-a1b2c3d",
        "warm-app-a1b2c3",
        "../app-a1b2c3",
        "app/x-a1b2c3",
        "app-a1b2c3\n",
        "app-a1b2c3/clients",
        "",
        None,
    ],
)
@pytest.mark.parametrize("operation", ["create", "delete", "exists"])
def test_bad_realm_names_are_refused_before_any_call(
    mock: responses.RequestsMock, realms: KeycloakRealms, operation: str, name: Any
) -> None:
    """Only ``<recipe>-<6hex>`` names reach Keycloak; anything else is InvalidName (exit 2)."""
    with pytest.raises(InvalidName) as caught:
        getattr(realms, operation)(name)

    assert 0 == len(mock.calls)
    assert 2 == caught.value.exit_code


def test_parse_realm() -> None:
    """A realm name splits at its last dash into the recipe and the run hex."""
    assert ("my-app-2", "a1b2c3") == parse_realm("my-app-2-a1b2c3")


# -- every foreign error becomes a KeycloakError --------------------------------------------------

TRANSPORT = [
    requests.ConnectionError("refused"),
    requests.Timeout("slow"),
    requests.exceptions.SSLError("cert"),
    requests.exceptions.ChunkedEncodingError("cut"),
]
ADMIN_ROUTES = {
    "create": ("POST", f"{URL}/admin/realms"),
    "delete": ("DELETE", f"{URL}/admin/realms/{REALM}"),
    "list": ("GET", f"{URL}/admin/realms"),
    "exists": ("GET", f"{URL}/admin/realms/{REALM}"),
}
TOKEN_OK = {"access_token": "tok", "expires_in": 60, "refresh_token": "ref"}


def call(realms: KeycloakRealms, operation: str) -> object:
    """Run one adapter operation on the test realm."""
    if operation == "list":
        return realms.list()
    return getattr(realms, operation)(REALM)


def assert_mapped(caught: pytest.ExceptionInfo[KeycloakError], operation: str) -> None:
    """The error names the operation, chains the foreign error and reads as one line."""
    error = caught.value
    assert operation == error.operation
    assert error.__cause__ is not None
    assert not isinstance(error.__cause__, CcciError)
    assert 1 == len(str(error).splitlines())
    assert str(error).startswith(f"keycloak {operation}")
    assert PASSWORD not in str(error)


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        ({"status": 401, "json": {"error": "invalid_grant"}}, 401),
        ({"status": 400, "json": {"error": "invalid_request"}}, 400),
        ({"status": 404, "body": "<html>Not Found</html>"}, 404),
        ({"status": 500, "body": ""}, 500),
        ({"status": 503, "json": ["unavailable"]}, None),  # a list body: python-keycloak trips
        ({"body": "not json"}, None),
        ({"json": {"access_token": "tok"}}, None),  # no expires_in
        ({"json": {"expires_in": 60}}, None),  # no access_token
        ({"json": {"access_token": 7, "expires_in": 60}}, None),
        ({"json": ["tok"]}, None),
    ],
)
@pytest.mark.parametrize("operation", list(ADMIN_ROUTES))
def test_token_errors_are_mapped(
    mock: responses.RequestsMock,
    realms: KeycloakRealms,
    operation: str,
    answer: dict[str, Any],
    status: int | None,
) -> None:
    """A failed login is a KeycloakError of operation ``token`` with Keycloak's status."""
    mock.add(responses.POST, URL + TOKEN_PATH, **answer)

    with pytest.raises(KeycloakError) as caught:
        call(realms, operation)

    assert_mapped(caught, "token")
    assert status == caught.value.http_status
    assert [("POST", TOKEN_PATH)] == calls(mock)


def test_bad_credentials_say_which_settings_to_check(
    fake: FakeKeycloak, mock: responses.RequestsMock
) -> None:
    """Keycloak's 401 on the password grant points at the admin settings."""
    realms = KeycloakRealms(URL, USER, "wrong")

    with pytest.raises(KeycloakError) as caught:
        realms.create(REALM)

    assert 401 == caught.value.http_status
    assert "CCCI_KEYCLOAK_ADMIN_PASSWORD" in str(caught.value)
    assert "wrong" not in str(caught.value)


@pytest.mark.parametrize(
    ("operation", "answer", "status"),
    [
        ("create", {"status": 409, "json": CONFLICT}, 409),
        ("create", {"status": 400, "json": {"errorMessage": f"Realm {REALM} already exists"}}, 400),
        ("create", {"status": 403, "json": {"error": "HTTP 403 Forbidden"}}, 403),
        ("create", {"status": 500, "body": "boom"}, 500),
        ("create", {"status": 201, "json": {"unexpected": True}}, None),
        ("delete", {"status": 403, "json": {"error": "HTTP 403 Forbidden"}}, 403),
        ("delete", {"status": 500, "body": ""}, 500),
        ("delete", {"status": 200, "json": {}}, 200),  # not the documented 204
        ("list", {"status": 500, "body": ""}, 500),
        ("list", {"json": {"realm": "master"}}, None),
        ("list", {"json": [{"id": "x"}]}, None),
        ("list", {"json": ["master"]}, None),
        ("list", {"json": [{"realm": 7}]}, None),
        ("list", {"body": "<html>"}, None),
        ("exists", {"status": 500, "body": ""}, 500),
        ("exists", {"json": []}, None),
    ],
)
def test_admin_errors_are_mapped(
    mock: responses.RequestsMock,
    realms: KeycloakRealms,
    operation: str,
    answer: dict[str, Any],
    status: int | None,
) -> None:
    """Refusals and malformed answers of the admin API are KeycloakErrors with the status."""
    mock.add(responses.POST, URL + TOKEN_PATH, json=TOKEN_OK)
    method, url = ADMIN_ROUTES[operation]
    mock.add(method, url, **answer)

    with pytest.raises(KeycloakError) as caught:
        call(realms, operation)

    assert status == caught.value.http_status
    assert (REALM if operation != "list" else None) == caught.value.realm
    assert operation == caught.value.operation
    if operation != "list" or caught.value.__cause__ is not None:
        assert_mapped(caught, operation)


@pytest.mark.parametrize("operation", list(ADMIN_ROUTES))
def test_admin_401_is_retried_once_with_a_fresh_token(
    mock: responses.RequestsMock, realms: KeycloakRealms, operation: str
) -> None:
    """A 401 on an admin call refreshes the token, retries, and maps a second 401."""
    mock.add(responses.POST, URL + TOKEN_PATH, json=TOKEN_OK)
    method, url = ADMIN_ROUTES[operation]
    mock.add(method, url, status=401, json={"error": "HTTP 401 Unauthorized"})

    with pytest.raises(KeycloakError) as caught:
        call(realms, operation)

    assert_mapped(caught, operation)
    assert 401 == caught.value.http_status
    assert [method, "POST", method] == [m for m, _ in calls(mock)[1:]]


@pytest.mark.parametrize("exc", TRANSPORT, ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("operation", ["token", *ADMIN_ROUTES])
def test_transport_errors_are_mapped(
    mock: responses.RequestsMock, realms: KeycloakRealms, operation: str, exc: Exception
) -> None:
    """No requests exception leaves the adapter: unreachable Keycloak has no status."""
    if operation == "token":
        mock.add(responses.POST, URL + TOKEN_PATH, body=exc)
    else:
        mock.add(responses.POST, URL + TOKEN_PATH, json=TOKEN_OK)
        method, url = ADMIN_ROUTES[operation]
        mock.add(method, url, body=exc)

    with pytest.raises(KeycloakError) as caught:
        call(realms, "create" if operation == "token" else operation)

    assert_mapped(caught, operation)
    assert caught.value.http_status is None
    assert f"cannot reach Keycloak at {URL}: {type(exc).__name__}" in str(caught.value)


def test_errors_share_the_plugin_root() -> None:
    """KeycloakError is a PluginError under the core's root, exit 1 (the run failed)."""
    assert issubclass(KeycloakError, PluginError)
    assert issubclass(PluginError, CcciError)
    assert 1 == KeycloakError("x", operation="create").exit_code


# -- a run's realm ------------------------------------------------------------------------------


def test_run_realm_lives_exactly_as_long_as_the_run(
    fake: FakeKeycloak, realms: KeycloakRealms
) -> None:
    """The realm exists inside the block and is gone after it."""
    with run_realm(realms, RECIPE, "a1b2c3") as realm:
        inside = set(fake.realms)

    assert (REALM, {"master", REALM}) == (realm, inside)
    assert {"master"} == set(fake.realms)
    assert [f"create {REALM}", f"delete {REALM}"] == fake.events


def test_run_realm_is_deleted_when_the_run_fails(
    fake: FakeKeycloak, realms: KeycloakRealms
) -> None:
    """An exception in the run still deletes the realm, and propagates unchanged."""
    failure = RuntimeError("deploy failed")

    with pytest.raises(RuntimeError) as caught, run_realm(realms, RECIPE, "a1b2c3"):
        raise failure

    assert failure is caught.value
    assert {"master"} == set(fake.realms)


def test_failed_delete_does_not_mask_the_runs_error(
    fake: FakeKeycloak, realms: KeycloakRealms, caplog: pytest.LogCaptureFixture
) -> None:
    """When the run failed and the delete fails too, the run's error wins; the other is noted."""
    fake.failures[("DELETE", REALM)] = 500
    failure = RuntimeError("deploy failed")

    with pytest.raises(RuntimeError) as caught, run_realm(realms, RECIPE, "a1b2c3"):
        raise failure

    assert failure is caught.value
    assert 1 == len(caught.value.__notes__)
    assert caught.value.__notes__[0].startswith(f"also: could not delete realm {REALM}")
    assert "Keycloak answered 500" in caught.value.__notes__[0]
    assert f"could not delete realm {REALM}" in caplog.text
    assert REALM in fake.realms  # left for reap_orphans


def test_failed_delete_after_a_green_run_is_reported(
    fake: FakeKeycloak, realms: KeycloakRealms
) -> None:
    """With nothing else propagating, a failed delete is the run's KeycloakError."""
    fake.failures[("DELETE", REALM)] = 503

    with pytest.raises(KeycloakError) as caught, run_realm(realms, RECIPE, "a1b2c3"):
        pass

    assert ("delete", 503, REALM) == (
        caught.value.operation,
        caught.value.http_status,
        caught.value.realm,
    )


def test_refused_create_deletes_nothing(fake: FakeKeycloak, realms: KeycloakRealms) -> None:
    """A 409 means a realm of that name exists and is not the run's: it is left alone."""
    fake.realms[REALM] = {"realm": REALM, "enabled": True}

    with pytest.raises(KeycloakError) as caught, run_realm(realms, RECIPE, "a1b2c3"):
        pytest.fail("the run must not start without its realm")

    assert 409 == caught.value.http_status
    assert REALM in fake.realms
    assert [] == fake.events


@pytest.mark.parametrize(
    "answer",
    [{"status": 500, "body": ""}, {"body": requests.Timeout("slow")}],
    ids=["500", "timeout"],
)
def test_create_that_may_have_happened_is_undone(
    mock: responses.RequestsMock, answer: dict[str, Any]
) -> None:
    """A 5xx or a timeout on create may hide a created realm: the run's name is deleted."""
    mock.add(responses.POST, URL + TOKEN_PATH, json=TOKEN_OK)
    mock.add(responses.POST, f"{URL}/admin/realms", **answer)
    mock.add(responses.DELETE, f"{URL}/admin/realms/{REALM}", status=204)
    realms = KeycloakRealms(URL, USER, PASSWORD)

    with pytest.raises(KeycloakError) as caught, run_realm(realms, RECIPE, "a1b2c3"):
        pytest.fail("the run must not start without its realm")

    assert "create" == caught.value.operation
    assert ("DELETE", f"/admin/realms/{REALM}") == calls(mock)[-1]


def test_concurrent_runs_get_their_own_realms(mock: responses.RequestsMock) -> None:
    """Two live runs of one recipe hold distinct realms; each run's end deletes only its own."""
    fake = FakeKeycloak(mock)
    first, second = KeycloakRealms(URL, USER, PASSWORD), KeycloakRealms(URL, USER, PASSWORD)
    run_a, run_b = run_realm(first, RECIPE, "a1b2c3"), run_realm(second, RECIPE, "d4e5f6")

    realm_a = run_a.__enter__()
    realm_b = run_b.__enter__()
    both = set(fake.realms)
    failure = RuntimeError("run a failed")
    suppressed = run_a.__exit__(RuntimeError, failure, None)
    after_a = set(fake.realms)
    run_b.__exit__(None, None, None)

    assert False is suppressed  # run a's error propagates
    assert ("app-a1b2c3", "app-d4e5f6") == (realm_a, realm_b)
    assert {"master", realm_a, realm_b} == both
    assert {"master", realm_b} == after_a
    assert {"master"} == set(fake.realms)
    assert [
        "create app-a1b2c3",
        "create app-d4e5f6",
        "delete app-a1b2c3",
        "delete app-d4e5f6",
    ] == fake.events


def test_concurrent_runs_in_threads(mock: responses.RequestsMock) -> None:
    """Runs in parallel threads create and delete their own realms and no other."""
    fake = FakeKeycloak(mock)
    hexes = [f"{n:06x}" for n in range(1, 9)]
    seen: dict[str, set[str]] = {}

    def run(run_hex: str) -> None:
        with run_realm(KeycloakRealms(URL, USER, PASSWORD), RECIPE, run_hex) as realm:
            seen[run_hex] = set(fake.realms) & {realm}

    threads = [threading.Thread(target=run, args=(h,)) for h in hexes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert {h: {f"app-{h}"} for h in hexes} == seen
    assert {"master"} == set(fake.realms)
    for run_hex in hexes:
        assert 1 == fake.events.count(f"delete app-{run_hex}")


# -- orphans of crashed runs ----------------------------------------------------------------------

FOREIGN_REALMS = ["master", "app", "my-company", "warm-app-a1b2c3", "app-A1B2C3", "app-a1b2c3d"]


@pytest.mark.parametrize(
    ("live", "recipes", "expected"),
    [
        (set(), None, ["app-000001", "app-000002", "other-000003"]),
        ({"000001"}, None, ["app-000002", "other-000003"]),
        ({"000001"}, {"app"}, ["app-000002"]),
        ({"000001", "000002", "000003"}, None, []),
        (set(), set(), []),
    ],
)
def test_reap_orphans(
    fake: FakeKeycloak,
    realms: KeycloakRealms,
    live: set[str],
    recipes: set[str] | None,
    expected: list[str],
) -> None:
    """Only ``<recipe>-<6hex>`` realms of runs that are not live go; master and others stay."""
    ours = ["app-000001", "app-000002", "other-000003"]
    for name in FOREIGN_REALMS + ours:
        fake.realms[name] = {"realm": name, "enabled": True}

    deleted = reap_orphans(realms, live, recipes)

    assert expected == deleted
    assert set(FOREIGN_REALMS) | (set(ours) - set(expected)) == set(fake.realms)


def test_reap_reads_live_runs_after_listing(fake: FakeKeycloak, realms: KeycloakRealms) -> None:
    """A callable ``live_hexes`` is read after the listing, so a run starting meanwhile is live."""
    fake.realms["app-000001"] = {"realm": "app-000001", "enabled": True}

    def live() -> set[str]:
        fake.events.append("live")
        return {"000001"}

    assert [] == reap_orphans(realms, live)
    assert ["list", "live"] == fake.events


def test_reap_goes_on_past_a_failed_delete(fake: FakeKeycloak, realms: KeycloakRealms) -> None:
    """One realm that will not go does not keep the others; the error names it."""
    for name in ["app-000001", "app-000002", "app-000003"]:
        fake.realms[name] = {"realm": name, "enabled": True}
    fake.failures[("DELETE", "app-000002")] = 500

    with pytest.raises(KeycloakError) as caught:
        reap_orphans(realms, set())

    assert ("delete", 500, "app-000002") == (
        caught.value.operation,
        caught.value.http_status,
        caught.value.realm,
    )
    assert {"master", "app-000002"} == set(fake.realms)
    assert "['app-000001', 'app-000003']" in str(caught.value)


# -- settings and the factory ---------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment without any CCCI_KEYCLOAK_* variable."""
    for name in ["URL", "ADMIN_USER", "ADMIN_PASSWORD", "ADMIN_PASSWORD_FILE"]:
        monkeypatch.delenv(f"CCCI_KEYCLOAK_{name}", raising=False)
    return monkeypatch


def test_settings_from_env_and_password_file(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """URL and user from the environment, the password from a file; the secret stays masked."""
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n", encoding="utf-8")
    clean_env.setenv("CCCI_KEYCLOAK_URL", "https://sso.ci.example.org/")
    clean_env.setenv("CCCI_KEYCLOAK_ADMIN_USER", "ci-admin")
    clean_env.setenv("CCCI_KEYCLOAK_ADMIN_PASSWORD_FILE", str(secret))

    settings = load(PluginSettings)

    assert "https://sso.ci.example.org" == settings.keycloak_url
    assert "ci-admin" == settings.keycloak_admin_user
    assert PASSWORD == settings.keycloak_admin_password.get_secret_value()
    assert "***" == settings.redacted()["CCCI_KEYCLOAK_ADMIN_PASSWORD"]
    assert "https://sso.ci.example.org" == connect(settings).url


def test_settings_default_to_no_keycloak(clean_env: pytest.MonkeyPatch) -> None:
    """Without configuration there is no Keycloak and the admin is ``admin``."""
    settings = load(PluginSettings)

    assert ("", "admin", "") == (
        settings.keycloak_url,
        settings.keycloak_admin_user,
        settings.keycloak_admin_password.get_secret_value(),
    )


@pytest.mark.parametrize(
    "url",
    ["keycloak.test", "ftp://keycloak.test", "http://", "http://kc.test/?x=1", "http://k c.test"],
)
def test_bad_keycloak_url_is_refused(clean_env: pytest.MonkeyPatch, url: str) -> None:
    """A URL that is not http(s)://host[/path] is a ConfigError naming CCCI_KEYCLOAK_URL."""
    clean_env.setenv("CCCI_KEYCLOAK_URL", url)

    with pytest.raises(ConfigError) as caught:
        load(PluginSettings)

    assert "CCCI_KEYCLOAK_URL" == caught.value.variable


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({}, "CCCI_KEYCLOAK_URL"),
        ({"keycloak_url": URL, "keycloak_admin_user": ""}, "CCCI_KEYCLOAK_ADMIN_USER"),
        ({"keycloak_url": URL}, "CCCI_KEYCLOAK_ADMIN_PASSWORD"),
    ],
)
def test_connect_refuses_missing_settings(
    clean_env: pytest.MonkeyPatch, overrides: dict[str, str], variable: str
) -> None:
    """A recipe that needs Keycloak on a host without one is a ConfigError (exit 2)."""
    settings = load(PluginSettings, **overrides)

    with pytest.raises(ConfigError) as caught:
        connect(settings, recipe="authentik")

    assert variable == caught.value.variable
    assert "'authentik' depends on keycloak" in str(caught.value)
    assert 2 == caught.value.exit_code
