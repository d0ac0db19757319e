"""The socket API's routes through Flask's test client (peer check stubbed; see test_server)."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ccci_agent.api import MAX_BODY, build_agent, create_app
from ccci_agent.engine import DockerEngine
from ccci_agent.errors import Conflict, NotFound, StorageFull
from ccci_agent.settings import AgentSettings
from ccci_core.agent_client import LEASE_HOLDER_HEADER
from ccci_core.errors import BadInput, CcciError
from tests.agent.conftest import BASE_DOMAIN


@pytest.fixture
def settings(tmp_path: Path) -> AgentSettings:
    """Agent settings on a temporary state directory."""
    return AgentSettings(state_dir=tmp_path / "state", domain=BASE_DOMAIN, max_tests=2)


@pytest.fixture
def app(settings: AgentSettings) -> Flask:
    """The agent app; every peer is allowed (the real check is tested on the socket)."""
    agent = build_agent(settings, DockerEngine.from_env())
    agent.state.ensure()
    return create_app(agent=agent, authorize=lambda environ: True)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the agent app."""
    return app.test_client()


def _files(root: Path) -> list[Path]:
    return sorted(root.rglob("*"))


def test_status_lists_everything(client: FlaskClient) -> None:
    """GET /v1/status answers the operator's view as JSON."""
    response = client.get("/v1/status")
    assert 200 == response.status_code
    body: dict[str, Any] = response.get_json()
    assert {"canonicals", "infra", "leases", "alerts", "disk", "max_tests"} <= set(body)
    assert {"in_flight": False, "max_tests": 2, "leases": []} == body["leases"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/canonicals/UPPER", None),
        ("GET", "/v1/canonicals/-lead", None),
        ("GET", "/v1/canonicals/" + "x" * 64, None),
        ("GET", "/v1/canonicals/alerts", None),
        ("GET", "/v1/canonicals/..", None),
        ("POST", "/v1/canonicals/a_b/snapshot", None),
        (
            "POST",
            "/v1/canonicals/x/snapshot",
            {"domain": "warm-x.evil.org", "version": "1.0.0+1", "commit": "abcdef0"},
        ),
        (
            "POST",
            "/v1/canonicals/x/snapshot",
            {"domain": "warm-x.ci.example.net", "version": "1", "commit": "abcdef0"},
        ),
        ("POST", "/v1/canonicals/x/snapshot", {"domain": "warm-x.ci.example.net"}),
        ("PATCH", "/v1/canonicals/x", {"volume": "filthy"}),
        ("PATCH", "/v1/canonicals/x", {"status": "idle", "rm": "-rf"}),
        ("POST", "/v1/prune-stale", {"enrolled": ["ok", "../bad"]}),
        ("POST", "/v1/prune-stale", {"enrolled": "ok"}),
        ("POST", "/v1/alerts", {"kind": "Bad Kind", "key": "k", "message": "m"}),
        ("POST", "/v1/leases", {"recipe": "../x", "lane": "cold"}),
        ("POST", "/v1/leases", {"recipe": "x", "lane": "warp"}),
        ("POST", "/v1/leases", {"recipe": "x", "lane": "cold", "realm": "y-0a1b2c"}),
        ("POST", "/v1/leases", {"recipe": "x", "lane": "cold", "ttl": "600"}),
        ("POST", "/v1/leases", {"recipe": "x", "lane": "cold", "ttl": 10**9}),
        ("POST", "/v1/leases", [1, 2]),
        ("POST", "/v1/leases/nothex/renew", None),
    ],
)
def test_bad_input_is_a_json_400_and_touches_nothing(
    client: FlaskClient, settings: AgentSettings, method: str, path: str, body: object
) -> None:
    """Malformed names, bodies and ids get 400 with a reason, and no file appears."""
    before = _files(settings.state_dir)
    response = client.open(path, method=method, json=body)
    assert 400 == response.status_code, response.get_data(as_text=True)
    assert response.get_json()["reason"]
    assert before == _files(settings.state_dir)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/canonicals/..%2f..%2fetc/restore"),
        ("POST", "/v1/canonicals/%2e%2e/snapshot"),
        ("POST", "/v1/alerts/..%2f..%2fetc%2fpasswd/ack"),
        ("DELETE", "/v1/leases/..%2f_leases.json"),
    ],
)
def test_traversal_in_the_path_is_a_4xx_and_touches_nothing(
    client: FlaskClient, settings: AgentSettings, method: str, path: str
) -> None:
    """Encoded slashes never match a route (404) and dot segments fail validation (400)."""
    before = _files(settings.state_dir)
    response = client.open(path, method=method)
    assert response.status_code in (400, 404)
    assert response.get_json()["reason"]
    assert before == _files(settings.state_dir)


def test_not_json_is_refused(client: FlaskClient) -> None:
    """A body that is not JSON gets a 400 reason, not an HTML page."""
    response = client.post("/v1/leases", data=b"{not json", content_type="application/json")
    assert 400 == response.status_code
    assert "invalid request body" in response.get_json()["reason"]


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v1/canonicals/missing", 404),
        ("POST", "/v1/canonicals/missing/restore", 404),
        ("POST", "/v1/canonicals/missing/snapshot", 404),
        ("POST", "/v1/alerts/0123456789abcdef/ack", 404),
        ("POST", "/v1/leases/0123456789abcdef/renew", 404),
        ("GET", "/v1/nothing-here", 404),
        ("DELETE", "/v1/status", 405),
    ],
)
def test_errors_are_json(client: FlaskClient, method: str, path: str, status: int) -> None:
    """Unknown things and wrong methods answer JSON errors with the right status."""
    response = client.open(path, method=method)
    assert status == response.status_code
    assert {"error", "reason", "details"} == set(response.get_json())


def test_lease_round_trip(client: FlaskClient) -> None:
    """POST grants, the third is a 409 naming the holders, DELETE frees a slot."""
    first = client.post("/v1/leases", json={"recipe": "a", "lane": "cold", "realm": "a-0a1b2c"})
    client.post("/v1/leases", json={"recipe": "b", "lane": "quick"})
    refused = client.post("/v1/leases", json={"recipe": "c", "lane": "cold"})
    assert (201, 409) == (first.status_code, refused.status_code)
    assert ["a", "b"] == [lease["recipe"] for lease in refused.get_json()["details"]["held"]]
    lease, holder = first.get_json()["id"], _holder(first.get_json()["token"])
    assert 200 == client.post(f"/v1/leases/{lease}/renew", headers=holder).status_code
    assert 204 == client.delete(f"/v1/leases/{lease}", headers=holder).status_code
    assert 201 == client.post("/v1/leases", json={"recipe": "c", "lane": "cold"}).status_code


def _holder(token: str) -> dict[str, str]:
    return {LEASE_HOLDER_HEADER: token}


@pytest.mark.parametrize(
    ("method", "suffix", "headers", "status"),
    [
        ("POST", "/renew", {}, 403),
        ("POST", "/renew", _holder("0" * 32), 403),
        ("POST", "/renew", _holder("not-a-token"), 400),
        ("DELETE", "", {}, 403),
        ("DELETE", "", _holder("f" * 32), 403),
        ("DELETE", "?force=1", {}, 403),  # this peer is not root
        ("DELETE", "?force=yes", {}, 400),
    ],
)
def test_a_lease_is_changed_only_by_its_holder(
    client: FlaskClient, method: str, suffix: str, headers: dict[str, str], status: int
) -> None:
    """Renew and release without the holder's token are refused with a JSON reason."""
    lease = client.post("/v1/leases", json={"recipe": "a", "lane": "cold"}).get_json()
    response = client.open(f"/v1/leases/{lease['id']}{suffix}", method=method, headers=headers)
    assert status == response.status_code
    assert response.get_json()["reason"]
    assert [lease["id"]] == [held["id"] for held in client.get("/v1/leases").get_json()["leases"]]


def test_root_may_force_a_release(settings: AgentSettings) -> None:
    """A root peer breaks a stuck lease with ?force=1 and no token."""
    agent = build_agent(settings, DockerEngine.from_env())
    root = create_app(agent=agent, authorize=lambda e: True, is_root=lambda e: True).test_client()
    lease = root.post("/v1/leases", json={"recipe": "a", "lane": "cold"}).get_json()
    assert 204 == root.delete(f"/v1/leases/{lease['id']}?force=1").status_code
    assert [] == root.get("/v1/leases").get_json()["leases"]


def test_tokens_are_shown_only_to_the_holder(client: FlaskClient) -> None:
    """The grant carries the token; leases, status, renewals and refusals never do."""
    granted = client.post("/v1/leases", json={"recipe": "a", "lane": "cold"}).get_json()
    client.post("/v1/leases", json={"recipe": "b", "lane": "cold"})
    answers = [
        client.get("/v1/leases"),
        client.get("/v1/status"),
        client.post(f"/v1/leases/{granted['id']}/renew", headers=_holder(granted["token"])),
        client.post("/v1/leases", json={"recipe": "c", "lane": "cold"}),
    ]
    assert [200, 200, 200, 409] == [answer.status_code for answer in answers]
    for answer in answers:
        assert granted["token"] not in answer.get_data(as_text=True)
        assert '"token' not in answer.get_data(as_text=True)  # no token nor token_sha256 key


def test_alert_round_trip(client: FlaskClient) -> None:
    """A raised alert is listed, a duplicate is a 200 not a 201, ack empties the list."""
    body = {"kind": "infra-held", "app": "keycloak", "key": "hold:26", "message": "held"}
    created = client.post("/v1/alerts", json=body)
    again = client.post("/v1/alerts", json=body)
    assert (201, 200) == (created.status_code, again.status_code)
    assert [created.get_json()] == client.get("/v1/alerts").get_json()["alerts"]
    assert 200 == client.post(f"/v1/alerts/{created.get_json()['id']}/ack").status_code
    assert [] == client.get("/v1/alerts").get_json()["alerts"]


def test_request_without_a_unix_peer_is_forbidden(settings: AgentSettings) -> None:
    """With the real check, a request that did not come over a Unix socket is refused."""
    agent = build_agent(settings, DockerEngine.from_env())
    response = create_app(agent=agent).test_client().get("/v1/status")
    assert 403 == response.status_code
    assert "Forbidden" == response.get_json()["error"]


@pytest.mark.parametrize(
    "relative", ["_leases.json", "alerts/0123456789abcdef.json", "_infra/keycloak.json"]
)
def test_a_corrupt_state_file_never_takes_the_api_down(
    client: FlaskClient, settings: AgentSettings, relative: str
) -> None:
    """Status, leases and alerts answer 200 and one state-corrupt alert names the moved file."""
    (settings.state_dir / relative).write_bytes(b'{"truncated": ')

    answers = [client.get(route) for route in ("/v1/status", "/v1/leases", "/v1/alerts")]

    assert [200, 200, 200] == [answer.status_code for answer in answers]
    assert 201 == client.post("/v1/leases", json={"recipe": "a", "lane": "cold"}).status_code
    [alert] = answers[-1].get_json()["alerts"]
    assert ("state-corrupt", True) == (alert["kind"], alert["message"].startswith(relative))
    assert [alert] == answers[0].get_json()["alerts"]  # status shows it at once too


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", "/v1/canonicals/x", '{"volume": "dirty"}'),
        ("POST", "/v1/canonicals/x/snapshot", '{"domain": "warm-x.ci.example.net"}'),
        ("POST", "/v1/prune-stale", '{"enrolled": []}'),
        ("POST", "/v1/alerts", '{"kind": "k", "key": "k", "message": "m"}'),
        ("POST", "/v1/leases", '{"recipe": "x", "lane": "cold"}'),
    ],
)
@pytest.mark.parametrize("content_type", ["text/plain", None, "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_declared_json_is_a_415(
    client: FlaskClient,
    settings: AgentSettings,
    method: str,
    path: str,
    body: str,
    content_type: str | None,
) -> None:
    """Every route with a body wants Content-Type: application/json, else a JSON 415."""
    before = _files(settings.state_dir)
    response = client.open(path, method=method, data=body, content_type=content_type)
    assert 415 == response.status_code, response.get_data(as_text=True)
    assert "Content-Type: application/json" in response.get_json()["reason"]
    assert before == _files(settings.state_dir)


def test_an_empty_optional_body_needs_no_content_type(client: FlaskClient) -> None:
    """POST snapshot without a body is a re-take: no content type asked (404: no canonical)."""
    assert 404 == client.post("/v1/canonicals/missing/snapshot").status_code
    plain = client.post("/v1/canonicals/missing/snapshot", data="", content_type="text/plain")
    assert 404 == plain.status_code


def test_the_largest_prune_list_fits_the_body_limit(client: FlaskClient) -> None:
    """3000 names of 63 characters fit in a body; one more name is a 400, a huge body a 413."""
    names = ["x" * 63] * 3000
    assert 200 == client.post("/v1/prune-stale", json={"enrolled": names}).status_code
    assert 400 == client.post("/v1/prune-stale", json={"enrolled": [*names, "y"]}).status_code
    huge = client.post("/v1/prune-stale", json={"enrolled": names * 2})
    assert (413, {"limit": MAX_BODY}) == (huge.status_code, huge.get_json()["details"])


def test_an_unexpected_error_hides_its_text_and_names_an_incident(
    settings: AgentSettings, caplog: pytest.LogCaptureFixture
) -> None:
    """A 500 says only that it happened and its incident id; the log has the exception."""
    agent = build_agent(settings, DockerEngine.from_env())
    agent.state.ensure()

    def broken() -> list[dict[str, Any]]:
        raise RuntimeError("secret path /root/.token")

    agent.canonicals.all = broken  # type: ignore[method-assign]
    response = (
        create_app(agent=agent, authorize=lambda environ: True).test_client().get("/v1/canonicals")
    )

    body = response.get_json()
    assert (500, "InternalError") == (response.status_code, body["error"])
    assert "secret path" not in response.get_data(as_text=True)
    assert body["details"]["incident"] in caplog.text
    assert "secret path /root/.token" in caplog.text


def test_settings_alone_build_the_services(settings: AgentSettings) -> None:
    """Given only settings, create_app builds its services from them (the local engine)."""
    settings.state_dir.mkdir()
    client = create_app(settings, authorize=lambda environ: True).test_client()

    body = client.get("/v1/status").get_json()

    assert (2, str(settings.state_dir)) == (body["max_tests"], body["state_dir"])


def test_the_snapshot_settings_reach_the_snapshots(tmp_path: Path) -> None:
    """CCCI_VOLUME_WAIT and CCCI_TAR are what the snapshots and restores use."""
    settings = AgentSettings(state_dir=tmp_path, volume_wait=7.5, tar="/opt/gnu/bin/tar")

    warmsnap = build_agent(settings, DockerEngine.from_env()).canonicals.warmsnap

    assert (7.5, "/opt/gnu/bin/tar") == (warmsnap.wait_timeout, warmsnap.tar)


@pytest.mark.parametrize(
    ("error", "status", "kind", "details"),
    [
        (NotFound("x has no canonical", recipe="x"), 404, "NotFound", {"recipe": "x"}),
        # Details that are not JSON values (a path) are left out rather than failing the answer.
        (Conflict("in use", held=["c1"], path=Path("/v")), 409, "Conflict", {"held": ["c1"]}),
        (StorageFull("disk full"), 507, "StorageFull", {}),
        (BadInput("bad name"), 400, "BadInput", {}),
        (CcciError("a core refusal"), 400, "CcciError", {}),
        (OSError(errno.ENOSPC, "No space left", "/s/x"), 507, "StorageFull", {}),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), 507, "StorageFull", {}),
    ],
)
def test_errors_map_to_a_status_and_a_json_reason(
    settings: AgentSettings,
    error: Exception,
    status: int,
    kind: str,
    details: dict[str, Any],
) -> None:
    """Our errors keep their status and fields; a full disk is a 507 whatever raised it."""
    agent = build_agent(settings, DockerEngine.from_env())
    agent.state.ensure()

    def failing() -> list[dict[str, Any]]:
        raise error

    agent.canonicals.all = failing  # type: ignore[method-assign]
    response = (
        create_app(agent=agent, authorize=lambda environ: True).test_client().get("/v1/canonicals")
    )

    body = response.get_json()
    assert (status, kind, details) == (response.status_code, body["error"], body["details"])
    assert body["reason"]


def test_a_full_disk_names_the_file(settings: AgentSettings) -> None:
    """A 507 from an OSError says which file found the disk full and that nothing changed."""
    agent = build_agent(settings, DockerEngine.from_env())
    agent.state.ensure()

    def full() -> list[dict[str, Any]]:
        raise OSError(errno.ENOSPC, "No space left on device", "/state/x.json")

    agent.canonicals.all = full  # type: ignore[method-assign]
    response = (
        create_app(agent=agent, authorize=lambda environ: True).test_client().get("/v1/canonicals")
    )

    expected = "no space left on device (/state/x.json); nothing changed"
    assert (507, expected) == (response.status_code, response.get_json()["reason"])
