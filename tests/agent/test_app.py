"""The app's wiring: services from settings, the peer check, every error as JSON with its status."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from ccci_agent.app import create_app
from ccci_agent.errors import Conflict, NotFound, StorageFull
from ccci_agent.services import AgentServices
from ccci_agent.settings import AgentSettings
from ccci_core.errors import BadInput, CcciError


def _fail_listing(services: AgentServices, error: Exception) -> None:
    """Make ``GET /v1/canonicals`` raise ``error``."""

    def failing() -> list[dict[str, Any]]:
        raise error

    services.canonicals.all = failing  # type: ignore[method-assign]


def test_settings_alone_build_the_services(settings: AgentSettings) -> None:
    """Given only settings, create_app builds its services from them (the local engine)."""
    settings.state_dir.mkdir()
    client = create_app(settings, authorize=lambda environ: True).test_client()

    body = client.get("/v1/status").get_json()

    assert (2, str(settings.state_dir)) == (body["max_tests"], body["state_dir"])


def test_request_without_a_unix_peer_is_forbidden(services: AgentServices) -> None:
    """With the real check, a request that did not come over a Unix socket is refused."""
    response = create_app(services=services).test_client().get("/v1/status")
    assert 403 == response.status_code
    assert "Forbidden" == response.get_json()["error"]


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
    services: AgentServices,
    client: FlaskClient,
    error: Exception,
    status: int,
    kind: str,
    details: dict[str, Any],
) -> None:
    """Our errors keep their status and fields; a full disk is a 507 whatever raised it."""
    _fail_listing(services, error)

    response = client.get("/v1/canonicals")

    body = response.get_json()
    assert (status, kind, details) == (response.status_code, body["error"], body["details"])
    assert body["reason"]


def test_a_full_disk_names_the_file(services: AgentServices, client: FlaskClient) -> None:
    """A 507 from an OSError says which file found the disk full and that nothing changed."""
    _fail_listing(services, OSError(errno.ENOSPC, "No space left on device", "/state/x.json"))

    response = client.get("/v1/canonicals")

    expected = "no space left on device (/state/x.json); nothing changed"
    assert (507, expected) == (response.status_code, response.get_json()["reason"])


def test_an_unexpected_error_hides_its_text_and_names_an_incident(
    services: AgentServices, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A 500 says only that it happened and its incident id; the log has the exception."""
    _fail_listing(services, RuntimeError("secret path /root/.token"))

    response = client.get("/v1/canonicals")

    body = response.get_json()
    assert (500, "InternalError") == (response.status_code, body["error"])
    assert "secret path" not in response.get_data(as_text=True)
    assert body["details"]["incident"] in caplog.text
    assert "secret path /root/.token" in caplog.text
