"""Request bodies: JSON only (415), below MAX_BODY (413), validated (400), state untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from ccci_agent.bodies import MAX_BODY
from ccci_agent.settings import AgentSettings


def _files(root: Path) -> list[Path]:
    return sorted(root.rglob("*"))


def test_not_json_is_refused(client: FlaskClient) -> None:
    """A body that is not JSON gets a 400 reason, not an HTML page."""
    response = client.post("/v1/leases", data=b"{not json", content_type="application/json")
    assert 400 == response.status_code
    assert "invalid request body" in response.get_json()["reason"]


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
