"""Fuzz the hooks: malformed, truncated, oversized, wrongly typed payloads never 5xx or build."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Iterator
from typing import Any

import flask
import pytest
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccci_bridge.app import create_app
from ccci_bridge.settings import BridgeSettings
from tests.bridge.conftest import InlineExecutor
from tests.bridge.payloads import (
    DRONE,
    DRONE_SECRET,
    GITEA,
    GITHUB_API,
    SECRET,
    drone_headers,
    drone_hook,
    encode,
    gitea_comment,
    gitea_headers,
    github_comment,
    github_headers,
)

MAX_BODY = 64 * 1024
FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=15), inner, max_size=5)
    ),
    max_leaves=30,
)
# The fields the bridge reads, and a value of any type but the right one for each.
not_str = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
)
not_int = (
    st.none()
    | st.booleans()
    | st.text(max_size=5)
    | st.floats(allow_nan=False)
    | st.lists(st.integers(), max_size=2)
    | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)
)
not_dict = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=5)
    | st.lists(st.integers(), max_size=2)
)
FIELDS = {
    ("action",): not_str,
    ("issue",): not_dict,
    ("issue", "state"): not_str,
    ("issue", "number"): not_int,
    ("comment",): not_dict,
    ("comment", "body"): not_str,
    ("comment", "id"): not_int,
    ("comment", "user"): not_dict,
    ("comment", "user", "login"): not_str,
    ("repository",): not_dict,
    ("repository", "full_name"): not_str,
    ("repository", "name"): not_str,
}


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> flask.Flask:
    """One app for all examples, every upstream call recorded, the chat allowlist empty."""
    settings_ = BridgeSettings(
        drone_server=DRONE,
        drone_token="t",
        drone_repo="coop-cloud/cc-ci",
        gitea_url=GITEA,
        gitea_token="t",
        github_url=GITHUB_API,
        github_token="t",
        webhook_secret=SECRET,
        chat_token="chat-token",
        cooldown_s=0,
        max_body=MAX_BODY,
        bridge_state_dir=tmp_path_factory.mktemp("fuzz-state"),
        drone_webhook_secret=DRONE_SECRET,
        poll_interval_s=0,
    )
    return create_app(settings_, executor=InlineExecutor())


@pytest.fixture
def upstream() -> Iterator[responses.RequestsMock]:
    """Upstream APIs answering nothing: any call would be recorded (and fail)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def _send(app: flask.Flask, forge: str, body: bytes, signed: bool = True) -> int:
    headers = (gitea_headers if forge == "gitea" else github_headers)(body)
    if not signed:
        headers = {k: v for k, v in headers.items() if "Signature" not in k}
    return app.test_client().post(f"/hooks/{forge}", data=body, headers=headers).status_code


def _valid(forge: str) -> dict[str, Any]:
    return gitea_comment("!testme") if forge == "gitea" else github_comment("!testme")


forges = st.sampled_from(["gitea", "github"])


@FUZZ
@given(forge=forges, payload=json_values)
def test_arbitrary_json(
    fuzz_app: flask.Flask, upstream: responses.RequestsMock, forge: str, payload: Any
) -> None:
    """Any signed JSON document gets a 2xx or 4xx and calls no upstream."""
    status = _send(fuzz_app, forge, json.dumps(payload).encode())

    assert status < 500
    assert [] == list(upstream.calls)


def _field(forge: str, data: st.DataObject) -> tuple[Any, Any, tuple[str, ...]]:
    """Draw a field the bridge reads; return a fresh valid payload, the field's parent, its path."""
    payload = copy.deepcopy(_valid(forge))
    path = data.draw(st.sampled_from(sorted(FIELDS)))
    parent = payload
    for key in path[:-1]:
        parent = parent[key]
    return payload, parent, path


@FUZZ
@given(forge=forges, data=st.data())
def test_wrongly_typed_fields(
    fuzz_app: flask.Flask, upstream: responses.RequestsMock, forge: str, data: st.DataObject
) -> None:
    """A command payload with any field the bridge reads retyped is a 400 (or ignored)."""
    payload, parent, path = _field(forge, data)
    parent[path[-1]] = data.draw(FIELDS[path])

    status = _send(fuzz_app, forge, encode(payload))

    assert status in (200, 400)
    assert [] == list(upstream.calls)


@FUZZ
@given(forge=forges, data=st.data())
def test_missing_fields(
    fuzz_app: flask.Flask, upstream: responses.RequestsMock, forge: str, data: st.DataObject
) -> None:
    """A command payload missing any field the bridge reads is a 400 (or ignored)."""
    payload, parent, path = _field(forge, data)
    del parent[path[-1]]

    status = _send(fuzz_app, forge, encode(payload))

    assert status in (200, 400)
    assert [] == list(upstream.calls)


@FUZZ
@given(forge=forges, data=st.data(), signed=st.booleans())
def test_truncated_bodies(
    fuzz_app: flask.Flask,
    upstream: responses.RequestsMock,
    forge: str,
    data: st.DataObject,
    signed: bool,
) -> None:
    """A valid command payload cut anywhere is a 400 (signed) or 401 (unsigned)."""
    body = encode(_valid(forge))
    cut = data.draw(st.integers(0, len(body) - 1))

    status = _send(fuzz_app, forge, body[:cut], signed)

    assert (400 if signed else 401) == status
    assert [] == list(upstream.calls)


@FUZZ
@given(forge=forges, body=st.binary(max_size=2048))
def test_random_bytes(
    fuzz_app: flask.Flask, upstream: responses.RequestsMock, forge: str, body: bytes
) -> None:
    """Random bytes, signed or not, never reach an upstream."""
    assert _send(fuzz_app, forge, body) < 500
    assert 401 == _send(fuzz_app, forge, body, signed=False)
    assert [] == list(upstream.calls)


@FUZZ
@given(forge=forges, extra=st.integers(1, 3 * MAX_BODY))
def test_oversized_bodies(
    fuzz_app: flask.Flask, upstream: responses.RequestsMock, forge: str, extra: int
) -> None:
    """Anything over the size limit is a 413, whatever it holds."""
    body = encode(_valid(forge)).replace(b"!testme", b"!testme\\n" + b"x" * (MAX_BODY + extra))

    assert 413 == _send(fuzz_app, forge, body)
    assert [] == list(upstream.calls)


latin1 = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=80)


@FUZZ
@given(forge=forges, signature=latin1, event=latin1, delivery=latin1)
def test_arbitrary_headers(
    fuzz_app: flask.Flask,
    upstream: responses.RequestsMock,
    forge: str,
    signature: str,
    event: str,
    delivery: str,
) -> None:
    """Any signature, event or delivery header value is a 2xx or 4xx."""
    body = encode(_valid(forge))
    prefix = "X-Gitea" if forge == "gitea" else "X-GitHub"
    headers = {f"{prefix}-Event": event, f"{prefix}-Delivery": delivery}
    headers["X-Gitea-Signature" if forge == "gitea" else "X-Hub-Signature-256"] = signature

    status = fuzz_app.test_client().post(f"/hooks/{forge}", data=body, headers=headers).status_code

    assert 401 == status
    assert [] == list(upstream.calls)


@FUZZ
@given(payload=json_values, multipart=st.booleans())
def test_chat_arbitrary_payloads(
    fuzz_app: flask.Flask, upstream: responses.RequestsMock, payload: Any, multipart: bool
) -> None:
    """The chat hook answers any document with a 2xx or 4xx; with no one allowlisted, no build."""
    client = fuzz_app.test_client()
    body = json.dumps(payload).encode()
    if multipart:
        response = client.put(
            "/hooks/chat",
            data={"event": (io.BytesIO(body), "event_data.json")},
            headers={"X-Matrix-Hookshot-Token": "chat-token"},
            content_type="multipart/form-data",
        )
    else:
        response = client.post(
            "/hooks/chat", data=body, headers={"Authorization": "Bearer chat-token"}
        )

    assert response.status_code < 500
    assert [] == list(upstream.calls)


@FUZZ
@given(payload=json_values | st.builds(drone_hook, st.integers(-5, 10**12), st.text(max_size=12)))
def test_drone_hook_arbitrary_signed_payloads(
    fuzz_app: flask.Flask, upstream: responses.RequestsMock, payload: Any
) -> None:
    """Any signed document is a 2xx or 4xx; a build the bridge never created asks nobody."""
    body = json.dumps(payload).encode()
    response = fuzz_app.test_client().post("/hooks/drone", data=body, headers=drone_headers(body))

    assert response.status_code < 500
    assert [] == list(upstream.calls)
