"""The ``/v1`` routes through Flask's test client (peer check stubbed; see test_server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from ccci_agent.app import create_app
from ccci_agent.services import AgentServices
from ccci_agent.settings import AgentSettings
from ccci_core.agent_client import LEASE_HOLDER_HEADER


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


def test_root_may_force_a_release(services: AgentServices) -> None:
    """A root peer breaks a stuck lease with ?force=1 and no token."""
    app = create_app(services=services, authorize=lambda e: True, is_root=lambda e: True)
    root = app.test_client()
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


def test_ack_of_one_occurrence_refuses_another(client: FlaskClient) -> None:
    """With ``{"ts"}`` the ack archives only that occurrence: another ts is a 409, kept active."""
    body = {"kind": "infra-held", "app": "keycloak", "key": "hold:26", "message": "held"}
    alert = client.post("/v1/alerts", json=body).get_json()
    route = f"/v1/alerts/{alert['id']}/ack"

    other = client.post(route, json={"ts": "2000-01-01T00:00:00+00:00"})
    assert (409, "Conflict", alert["ts"]) == (
        other.status_code,
        other.get_json()["error"],
        other.get_json()["details"]["ts"],
    )
    assert [alert] == client.get("/v1/alerts").get_json()["alerts"]
    assert 200 == client.post(route, json={"ts": alert["ts"]}).status_code
    assert [] == client.get("/v1/alerts").get_json()["alerts"]


@pytest.mark.parametrize("body", [{"ts": ""}, {"ts": 5}, {"when": "x"}])
def test_ack_refuses_a_malformed_body(client: FlaskClient, body: dict[str, Any]) -> None:
    """An ack body holds one non-empty ts string, nothing else (400, still active)."""
    created = client.post(
        "/v1/alerts", json={"kind": "infra-held", "key": "hold:26", "message": "held"}
    ).get_json()

    assert 400 == client.post(f"/v1/alerts/{created['id']}/ack", json=body).status_code
    assert 1 == len(client.get("/v1/alerts").get_json()["alerts"])


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
