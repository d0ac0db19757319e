"""The webhook routes end to end, with the upstream APIs faked at the transport (``responses``)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import flask.testing
import pytest
import responses

from tests.bridge.payloads import (
    DRONE,
    GITEA,
    GITHUB_API,
    SHA,
    encode,
    gitea_comment,
    gitea_headers,
    github_comment,
    github_headers,
    pull,
)

REPO = "coop-cloud/keycloak"
BUILDS = f"{DRONE}/api/repos/coop-cloud/cc-ci/builds"
API = {"gitea": f"{GITEA}/api/v1", "github": GITHUB_API}
AUTH = {"gitea": "token gitea-token", "github": "Bearer github-token"}
COMMENT_ID = {"gitea": 1001, "github": 2002}


def _build(number: int = 17) -> dict[str, Any]:
    return {"id": 100207, "number": number, "status": "pending", "event": "custom"}


def _forge(
    api: responses.RequestsMock,
    forge: str,
    *,
    permission: str | None = "write",
    state: str = "open",
    user: str = "alice",
) -> None:
    base = f"{API[forge]}/repos/{REPO}"
    if permission is None:
        api.get(
            f"{base}/collaborators/{user}/permission", status=404, json={"message": "Not Found"}
        )
    else:
        api.get(
            f"{base}/collaborators/{user}/permission",
            json={"permission": permission, "role_name": permission, "user": {"login": user}},
        )
    api.get(f"{base}/pulls/42", json=pull(state=state))
    api.post(f"{base}/issues/comments/{COMMENT_ID[forge]}/reactions", status=201, json={})
    api.post(f"{base}/issues/42/comments", status=201, json={"id": 9})


def _post(client: flask.testing.FlaskClient, forge: str, body: str, **kwargs: Any) -> Any:
    if forge == "gitea":
        data = encode(gitea_comment(body, **kwargs))
        return client.post("/hooks/gitea", data=data, headers=gitea_headers(data))
    data = encode(github_comment(body, **kwargs))
    return client.post("/hooks/github", data=data, headers=github_headers(data))


def _calls(api: responses.RequestsMock, method: str, needle: str) -> list[Any]:
    return [c for c in api.calls if c.request.method == method and needle in c.request.url]


def _reactions(api: responses.RequestsMock) -> list[str]:
    return [json.loads(c.request.body)["content"] for c in _calls(api, "POST", "/reactions")]


def _replies(api: responses.RequestsMock) -> list[str]:
    return [json.loads(c.request.body)["body"] for c in _calls(api, "POST", "/issues/42/comments")]


@pytest.mark.parametrize("forge", ["gitea", "github"])
@pytest.mark.parametrize(
    ("command", "lane", "quick"),
    [("!testme", "cold lane", {}), ("!testme --quick", "quick lane", {"CCCI_QUICK": "1"})],
)
def test_command_creates_the_exact_drone_build(
    client: flask.testing.FlaskClient,
    api: responses.RequestsMock,
    forge: str,
    command: str,
    lane: str,
    quick: dict[str, str],
) -> None:
    """A trusted command becomes one Drone build with the PR's parameters, a rocket and a link."""
    _forge(api, forge)
    api.post(BUILDS, json=_build())

    response = _post(client, forge, f"Looks good.\n{command}\n")

    assert 202 == response.status_code
    assert {"status": "accepted", "lane": lane} == response.get_json()
    (drone,) = _calls(api, "POST", BUILDS)
    url = urlsplit(drone.request.url)
    expected_query = {
        "branch": "main",
        "RECIPE": "keycloak",
        "REF": "refs/pull/42/head",
        "CCCI_PR": "42",
        "CCCI_SHA": SHA,
        **quick,
    }
    assert "/api/repos/coop-cloud/cc-ci/builds" == url.path
    assert expected_query == dict(parse_qsl(url.query))
    assert "Bearer drone-token" == drone.request.headers["Authorization"]
    assert {AUTH[forge]} == {c.request.headers["Authorization"] for c in api.calls if c != drone}
    assert ["eyes", "rocket"] == _reactions(api)
    assert [
        f"@alice Started the {lane} for `keycloak` at {SHA[:10]}: {DRONE}/coop-cloud/cc-ci/17"
        "\n\n<!-- ccci-build-17 -->"  # the build's mark: the verdict finds this reply by it
    ] == _replies(api)


@pytest.mark.parametrize("forge", ["gitea", "github"])
@pytest.mark.parametrize("permission", ["read", "none", None])
def test_untrusted_commenter_is_refused_politely(
    client: flask.testing.FlaskClient,
    api: responses.RequestsMock,
    forge: str,
    permission: str | None,
) -> None:
    """Without write access (or when the forge does not know the user) no build starts."""
    _forge(api, forge, permission=permission)

    response = _post(client, forge, "!testme")

    assert 202 == response.status_code
    assert [] == _calls(api, "POST", BUILDS)
    assert ["eyes", "confused"] == _reactions(api)
    (reply,) = _replies(api)
    assert "write access" in reply


def test_allowlisted_user_needs_no_permission(
    client: flask.testing.FlaskClient, api: responses.RequestsMock
) -> None:
    """A ``forge:login`` on CCCI_TRIGGER_ALLOWLIST starts a build without a permission check."""
    _forge(api, "github", user="dora")
    api.post(BUILDS, json=_build())

    _post(client, "github", "!testme", user="dora")

    assert [] == _calls(api, "GET", "/permission")
    assert 1 == len(_calls(api, "POST", BUILDS))


def test_allowlist_is_per_forge(
    client: flask.testing.FlaskClient, api: responses.RequestsMock
) -> None:
    """``github:dora`` does not trust a Gitea user who happens to be called dora."""
    _forge(api, "gitea", user="dora", permission="read")

    _post(client, "gitea", "!testme", user="dora")

    assert [] == _calls(api, "POST", BUILDS)


@pytest.mark.parametrize(
    ("drone_answer", "expected"),
    [
        ({"body": "null"}, "Drone started no build: no pipeline of coop-cloud/cc-ci matched"),
        ({"status": 500, "body": "internal error"}, "Drone answered 500: internal error"),
        ({"status": 404, "json": {"message": "Not Found"}}, "Drone answered 404"),
        ({"body": "<html>"}, "Drone answered something that is not JSON"),
    ],
)
def test_drone_failure_is_reported_to_the_commenter(
    client: flask.testing.FlaskClient,
    api: responses.RequestsMock,
    drone_answer: dict[str, Any],
    expected: str,
) -> None:
    """Drone's ``null`` and every non-2xx end in a confused reaction and a reply saying why."""
    _forge(api, "gitea")
    api.post(BUILDS, **drone_answer)

    _post(client, "gitea", "!testme")

    assert ["eyes", "confused"] == _reactions(api)
    (reply,) = _replies(api)
    assert expected in reply


def test_failed_build_does_not_start_the_cooldown(
    client: flask.testing.FlaskClient, api: responses.RequestsMock
) -> None:
    """After Drone failed, the commenter may retry at once."""
    _forge(api, "gitea")
    api.post(BUILDS, status=503)
    api.post(BUILDS, json=_build())
    api.post(f"{API['gitea']}/repos/{REPO}/issues/comments/1002/reactions", status=201, json={})

    _post(client, "gitea", "!testme")
    _post(client, "gitea", "!testme", comment_id=1002)

    assert 2 == len(_calls(api, "POST", BUILDS))
    assert "Started the cold lane" in _replies(api)[1]


def test_cooldown_answers_when_to_retry(
    client: flask.testing.FlaskClient, api: responses.RequestsMock
) -> None:
    """A second request by the same user within CCCI_COOLDOWN_S starts nothing and says when."""
    _forge(api, "gitea")
    api.post(BUILDS, json=_build())
    api.post(f"{API['gitea']}/repos/{REPO}/issues/comments/1002/reactions", status=201, json={})

    _post(client, "gitea", "!testme")
    _post(client, "gitea", "!testme --quick", comment_id=1002)

    assert 1 == len(_calls(api, "POST", BUILDS))
    assert _replies(api)[1].startswith("@alice Please wait: try again in ")
    assert ["eyes", "rocket", "eyes", "confused"] == _reactions(api)


def test_untrusted_flood_asks_the_forge_once(
    client: flask.testing.FlaskClient, api: responses.RequestsMock
) -> None:
    """The cooldown also covers refusals, so a flood costs one permission lookup."""
    _forge(api, "gitea", permission="read")
    api.post(f"{API['gitea']}/repos/{REPO}/issues/comments/1002/reactions", status=201, json={})

    _post(client, "gitea", "!testme")
    _post(client, "gitea", "!testme", comment_id=1002)

    assert 1 == len(_calls(api, "GET", "/permission"))
    assert "write access" in _replies(api)[0]
    assert "Please wait" in _replies(api)[1]


def test_closed_pull_request_per_api_is_refused(
    client: flask.testing.FlaskClient, api: responses.RequestsMock
) -> None:
    """The PR's state comes from the forge API, not from the payload."""
    _forge(api, "gitea", state="closed")

    _post(client, "gitea", "!testme")

    assert [] == _calls(api, "POST", BUILDS)
    assert "is closed, not open" in _replies(api)[0]


@pytest.mark.parametrize("text", ["!testme help", "!testme --fast", "!testme --quick now"])
def test_help_and_unknown_flags_get_help(
    client: flask.testing.FlaskClient, api: responses.RequestsMock, text: str
) -> None:
    """Help and unknown arguments get the usage, with no permission check and no build."""
    _forge(api, "gitea")

    _post(client, "gitea", text)

    assert [] == _calls(api, "GET", "")
    assert [] == _calls(api, "POST", BUILDS)
    assert "`!testme --quick`" in _replies(api)[0]


def test_repository_that_is_not_a_recipe_name_is_refused(
    client: flask.testing.FlaskClient, api: responses.RequestsMock
) -> None:
    """The recipe is the repository's name, validated by the core before anything else."""
    base = f"{API['gitea']}/repos/coop-cloud/Key_Cloak"
    api.post(f"{base}/issues/comments/1001/reactions", status=201, json={})
    api.post(f"{base}/issues/42/comments", status=201, json={})

    _post(client, "gitea", "!testme", repo="coop-cloud/Key_Cloak")

    assert [] == _calls(api, "POST", BUILDS)
    assert (
        "is not a recipe name"
        in json.loads(_calls(api, "POST", "/issues/42/comments")[0].request.body)["body"]
    )


def test_failing_reactions_do_not_stop_the_build(
    client: flask.testing.FlaskClient, api: responses.RequestsMock
) -> None:
    """Reactions are a courtesy: a forge refusing them does not cost the run."""
    base = f"{API['gitea']}/repos/{REPO}"
    api.get(f"{base}/collaborators/alice/permission", json={"permission": "admin"})
    api.get(f"{base}/pulls/42", json=pull())
    api.post(f"{base}/issues/comments/1001/reactions", status=403, json={"message": "forbidden"})
    api.post(f"{base}/issues/42/comments", status=201, json={})
    api.post(BUILDS, json=_build())

    _post(client, "gitea", "!testme")

    assert 1 == len(_calls(api, "POST", BUILDS))
    assert "Started the cold lane" in _replies(api)[0]


@pytest.mark.parametrize("forge", ["gitea", "github"])
def test_redelivery_starts_one_build(
    client: flask.testing.FlaskClient, api: responses.RequestsMock, forge: str
) -> None:
    """The same delivery, or the same comment under a new delivery id, is a duplicate."""
    _forge(api, forge)
    api.post(BUILDS, json=_build())
    payload = gitea_comment() if forge == "gitea" else github_comment()
    data = encode(payload)
    sign = gitea_headers if forge == "gitea" else github_headers

    first = client.post(f"/hooks/{forge}", data=data, headers=sign(data, delivery="d-1"))
    again = client.post(f"/hooks/{forge}", data=data, headers=sign(data, delivery="d-1"))
    new_id = client.post(f"/hooks/{forge}", data=data, headers=sign(data, delivery="d-2"))

    assert [202, 200, 200] == [first.status_code, again.status_code, new_id.status_code]
    assert {"status": "duplicate"} == new_id.get_json()
    assert 1 == len(_calls(api, "POST", BUILDS))


@pytest.mark.parametrize(
    ("forge", "kwargs", "body"),
    [
        ("gitea", {"action": "edited"}, "!testme"),
        ("gitea", {"action": "deleted"}, "!testme"),
        ("gitea", {"is_pull": False}, "!testme"),
        ("gitea", {"state": "closed"}, "!testme"),
        ("gitea", {"user": "cc-ci-bot"}, "!testme"),
        ("github", {"user_type": "Bot", "user": "drone[bot]"}, "!testme"),
        ("github", {"action": "edited"}, "!testme --quick"),
        ("gitea", {}, "please !testme"),
        ("gitea", {}, "> !testme"),
        ("gitea", {}, "```\n!testme\n```"),
        ("gitea", {}, "    !testme"),
        ("github", {}, "LGTM"),
    ],
)
def test_events_that_are_not_commands_are_ignored(
    client: flask.testing.FlaskClient,
    api: responses.RequestsMock,
    forge: str,
    kwargs: dict[str, Any],
    body: str,
) -> None:
    """Edits, deletions, issues, closed PRs, bots, quotes and code start nothing and call no one."""
    response = _post(client, forge, body, **kwargs)

    assert 200 == response.status_code
    assert "ignored" == response.get_json()["status"]
    assert [] == list(api.calls)


def test_github_issue_comment_on_an_issue_is_ignored(
    client: flask.testing.FlaskClient, api: responses.RequestsMock
) -> None:
    """GitHub marks PRs with ``issue.pull_request``; a plain issue has none."""
    payload = github_comment()
    del payload["issue"]["pull_request"]
    data = encode(payload)

    response = client.post("/hooks/github", data=data, headers=github_headers(data))

    assert "comment on an issue, not a pull request" == response.get_json()["reason"]
    assert [] == list(api.calls)


@pytest.mark.parametrize(
    ("route", "headers", "status", "reason"),
    [
        ("/hooks/gitea", {}, 401, "missing signature"),
        ("/hooks/gitea", {"X-Gitea-Signature": ""}, 401, "missing signature"),
        ("/hooks/gitea", {"X-Gitea-Signature": "00" * 32}, 401, "bad signature"),
        ("/hooks/gitea", {"X-Gitea-Signature": "ü"}, 401, "bad signature"),
        ("/hooks/gitea", {"X-Forgejo-Signature": "ab"}, 401, "bad signature"),
        ("/hooks/github", {}, 401, "missing signature"),
        (
            "/hooks/github",
            {"X-Hub-Signature-256": "00" * 32},
            401,
            "bad signature: expected sha256=<hex>",
        ),
        ("/hooks/github", {"X-Hub-Signature-256": "sha256=" + "00" * 32}, 401, "bad signature"),
    ],
)
def test_unsigned_or_badly_signed_requests_are_401(
    client: flask.testing.FlaskClient,
    api: responses.RequestsMock,
    route: str,
    headers: dict[str, str],
    status: int,
    reason: str,
) -> None:
    """The signature is checked over the raw body before anything else is read."""
    response = client.post(route, data=encode(gitea_comment()), headers=headers)

    assert (status, reason) == (response.status_code, response.get_json()["reason"])
    assert [] == list(api.calls)


def test_forgejo_signature_header_is_accepted(
    client: flask.testing.FlaskClient, api: responses.RequestsMock
) -> None:
    """Forgejo's own headers work like Gitea's."""
    data = encode(gitea_comment("no command"))
    headers = gitea_headers(data)
    headers = {k.replace("Gitea", "Forgejo"): v for k, v in headers.items()}

    response = client.post("/hooks/gitea", data=data, headers=headers)

    assert {"status": "ignored", "reason": "no command"} == response.get_json()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "body is not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "body is not JSON"),
        (b'{"action": "created", "issue": ' + b"9" * 5000 + b"}", "body is not JSON"),
        (b'{"action": "\xff"}', "body is not JSON"),
        (b"[1, 2]", "payload is not a JSON object"),
        (b'{"action": 1}', "field action has the wrong type"),
        (b'{"action": "created"}', "missing field issue"),
        (
            encode({**gitea_comment(), "comment": {"id": 1, "body": "!testme", "user": {}}}),
            "missing field comment.user.login",
        ),
        (
            encode(
                {
                    **gitea_comment(),
                    "comment": {"id": True, "body": "!testme", "user": {"login": "a"}},
                }
            ),
            "field comment.id has the wrong type",
        ),
    ],
)
def test_malformed_payloads_are_400_with_a_reason(
    client: flask.testing.FlaskClient, body: bytes, reason: str
) -> None:
    """Bad JSON or a missing/wrongly typed field is the sender's fault: 400 and why."""
    response = client.post("/hooks/gitea", data=body, headers=gitea_headers(body))

    assert (400, reason) == (response.status_code, response.get_json()["reason"])


def test_missing_delivery_id_is_400(client: flask.testing.FlaskClient) -> None:
    """Without a delivery id a redelivery could not be recognised."""
    data = encode(gitea_comment())
    headers = gitea_headers(data)
    del headers["X-Gitea-Delivery"]

    response = client.post("/hooks/gitea", data=data, headers=headers)

    assert (400, "missing delivery id header") == (
        response.status_code,
        response.get_json()["reason"],
    )


def test_oversized_body_is_413(
    client: flask.testing.FlaskClient, api: responses.RequestsMock
) -> None:
    """A body over CCCI_MAX_BODY is refused before it is read or verified."""
    data = encode(gitea_comment("!testme\n" + "x" * (1024 * 1024)))

    response = client.post("/hooks/gitea", data=data, headers=gitea_headers(data))

    assert 413 == response.status_code
    assert "error" in response.get_json()
    assert [] == list(api.calls)


@pytest.mark.parametrize(("event", "expected"), [("ping", "pong"), ("push", "ignored")])
def test_other_events_are_acknowledged(
    client: flask.testing.FlaskClient, event: str, expected: str
) -> None:
    """GitHub's ping and events the bridge does not handle get a 200."""
    data = b"{}"

    response = client.post("/hooks/github", data=data, headers=github_headers(data, event=event))

    assert (200, expected) == (response.status_code, response.get_json()["status"])


def test_healthz_reports_the_hooks(client: flask.testing.FlaskClient) -> None:
    """The health check writes the store and lists the enabled hooks."""
    response = client.get("/healthz")

    assert 200 == response.status_code
    assert {
        "status": "ok",
        "hooks": {"gitea": True, "github": True, "chat": True, "drone": True},
    } == response.get_json()


def test_unknown_route_and_method_are_json(client: flask.testing.FlaskClient) -> None:
    """Flask's own errors are JSON too."""
    assert (404, "Not Found") == (
        client.get("/nope").status_code,
        client.get("/nope").get_json()["error"],
    )
    assert 405 == client.get("/hooks/gitea").status_code
