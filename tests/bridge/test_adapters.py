"""The Drone and forge adapters: exact requests, and every foreign error mapped to ours."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import responses

from ccci_bridge.drone import Build, DroneAPI, StepInfo
from ccci_bridge.errors import DroneError, ForgeError, NoPipeline, UpstreamError
from ccci_bridge.forge import MAX_PAGES, Comment, ForgeAPI, Gitea, GitHub, Pull
from tests.bridge.comments import BOT, Thread
from tests.bridge.payloads import DRONE, GITEA, GITHUB_API, SHA, drone_build, drone_log, pull

BUILDS = f"{DRONE}/api/repos/coop-cloud/cc-ci/builds"
FOREIGN = [
    requests.ConnectionError("refused"),
    requests.Timeout("slow"),
    requests.exceptions.SSLError("cert"),
    requests.exceptions.ChunkedEncodingError("cut"),
    requests.exceptions.InvalidURL("bad"),
]


@pytest.fixture
def drone() -> DroneAPI:
    """A Drone adapter for the CI repository's main branch."""
    return DroneAPI(DRONE + "/", "tok", "coop-cloud/cc-ci", "main")


@pytest.fixture(params=["gitea", "github"])
def forge(request: pytest.FixtureRequest) -> ForgeAPI:
    """Each forge adapter."""
    if request.param == "gitea":
        return Gitea(GITEA, "tok")
    return GitHub(GITHUB_API, "tok")


@responses.activate
def test_drone_build_link(drone: DroneAPI) -> None:
    """The link is the build's page in Drone's UI: ``<server>/<owner>/<repo>/<number>``."""
    responses.post(BUILDS, json={"id": 1, "number": 42})

    assert Build(42, f"{DRONE}/coop-cloud/cc-ci/42") == drone.create_build({"RECIPE": "x"})


@responses.activate
@pytest.mark.parametrize("exc", FOREIGN, ids=lambda e: type(e).__name__)
def test_drone_transport_errors_are_mapped(drone: DroneAPI, exc: Exception) -> None:
    """No requests exception leaves the Drone adapter."""
    responses.post(BUILDS, body=exc)

    with pytest.raises(DroneError) as caught:
        drone.create_build({})
    assert caught.value.__cause__ is exc


@responses.activate
@pytest.mark.parametrize(
    ("answer", "error", "status_code"),
    [
        ({"body": "null"}, NoPipeline, 200),
        ({"status": 401, "body": "Unauthorized"}, DroneError, 401),
        ({"status": 500}, DroneError, 500),
        ({"json": {"number": "7"}}, DroneError, None),
        ({"json": {"number": True}}, DroneError, None),
        ({"json": [1]}, DroneError, None),
        ({"body": "not json"}, DroneError, None),
    ],
)
def test_drone_answers_that_are_not_builds(
    drone: DroneAPI, answer: dict[str, object], error: type, status_code: int | None
) -> None:
    """``null``, non-2xx and malformed builds are DroneErrors, with Drone's status if it erred."""
    responses.post(BUILDS, **answer)  # type: ignore[arg-type]

    with pytest.raises(error) as caught:
        drone.create_build({})
    assert status_code == caught.value.status_code


@responses.activate
def test_drone_build_info_and_step_log(drone: DroneAPI) -> None:
    """``GET …/builds/{n}``: status, times and every stage's steps; ``…/logs/{s}/{t}``: lines."""
    steps = (("clone", "success", 0), ("test", "failure", 1))
    responses.get(f"{BUILDS}/17", json=drone_build(17, "failure", steps=steps))
    responses.get(f"{BUILDS}/17/logs/1/2", json=drone_log("one", "two"))

    info = drone.build(17)

    assert info is not None
    assert (17, "failure", True, 252) == (
        info.number,
        info.status,
        info.done,
        info.finished - info.started,
    )
    assert [
        StepInfo(1, 1, "clone", "success", 0),
        StepInfo(1, 2, "test", "failure", 1),
    ] == list(info.steps)
    assert ["one\n", "two\n"] == drone.step_log(17, 1, 2)
    assert "Bearer tok" == responses.calls[0].request.headers["Authorization"]


@responses.activate
def test_drone_build_info_of_a_missing_or_malformed_build(drone: DroneAPI) -> None:
    """A 404 is no build; a build without its number is an error; odd stages are skipped."""
    responses.get(f"{BUILDS}/1", status=404, json={"message": "Not Found"})
    responses.get(f"{BUILDS}/2", json={"status": "success"})
    responses.get(
        f"{BUILDS}/3",
        json={"number": 3, "status": "running", "stages": [None, {"number": "1"}, {"number": 1}]},
    )
    responses.get(f"{BUILDS}/3/logs/1/1", json={"not": "a list"})
    responses.get(f"{BUILDS}/4", status=302, headers={"Location": "https://evil.example/"})

    assert drone.build(1) is None
    with pytest.raises(DroneError):
        drone.build(2)
    running = drone.build(3)
    assert running is not None
    assert (False, (), 0) == (running.done, running.steps, running.finished)
    assert [] == drone.step_log(3, 1, 1)
    with pytest.raises(DroneError, match="302"):
        drone.build(4)  # a redirect is not followed: the token stays with the server


@responses.activate
def test_forge_pull(forge: ForgeAPI) -> None:
    """The PR is read from the API, with the ref that works for forks."""
    responses.get(f"{forge.api}/repos/o/r/pulls/42", json=pull(repo="o/r"))

    result = forge.pull("o/r", 42)

    assert Pull(42, "open", SHA) == result
    assert "refs/pull/42/head" == result.ref


@responses.activate
@pytest.mark.parametrize(
    ("permission", "expected"),
    [
        ("owner", True),
        ("admin", True),
        ("write", True),
        ("read", False),
        ("none", False),
        (None, False),
    ],
)
def test_forge_permission(forge: ForgeAPI, permission: str | None, expected: bool) -> None:
    """Write, admin and owner are write access; read, none and unknown users are not."""
    url = f"{forge.api}/repos/o/r/collaborators/a%20b/permission"
    if permission is None:
        responses.get(url, status=404, json={"message": "404 Not Found"})
    else:
        responses.get(url, json={"permission": permission})

    assert expected == forge.can_write("o/r", "a b")


def _reaction_answer(forge: ForgeAPI, content: str) -> dict[str, Any]:
    """A reaction as each forge answers it: GitHub's has an id, Gitea's has none."""
    answer: dict[str, Any] = {"user": {"login": "cc-ci-bot"}, "content": content}
    if forge.name == "github":
        answer |= {"id": 4401, "node_id": "REA_x", "created_at": "2026-12-04T00:00:00Z"}
    else:
        answer |= {"created_at": "2026-12-04T00:00:00Z"}
    return answer


@responses.activate
def test_forge_reaction_reply_and_edit_bodies(forge: ForgeAPI) -> None:
    """Reactions, replies and edits send the documented JSON; a reply answers its id."""
    base = f"{forge.api}/repos/o/r/issues"
    responses.post(
        f"{base}/comments/9/reactions", status=201, json=_reaction_answer(forge, "rocket")
    )
    responses.post(f"{base}/42/comments", status=201, json={"id": 77, "body": "hi"})
    responses.patch(f"{base}/comments/77", json={"id": 77, "body": "bye"})

    reaction_id = forge.react("o/r", 9, "rocket")
    assert 77 == forge.reply("o/r", 42, "hi")
    forge.edit("o/r", 77, "bye")

    assert ("4401" if forge.name == "github" else None) == reaction_id
    assert [{"content": "rocket"}, {"body": "hi"}, {"body": "bye"}] == [
        json.loads(c.request.body) for c in responses.calls
    ]


@responses.activate
def test_a_reply_answered_without_an_id_is_a_forge_error(forge: ForgeAPI) -> None:
    """The verdict edits the reply later, so a reply whose id is unknown is not a success."""
    responses.post(f"{forge.api}/repos/o/r/issues/42/comments", status=201, json={})
    with pytest.raises(ForgeError, match="without an id"):
        forge.reply("o/r", 42, "hi")


@responses.activate
def test_the_comments_are_read_to_the_last_page(forge: ForgeAPI) -> None:
    """GitHub: 100 a page, then each ``Link: rel="next"``; Gitea/Forgejo: the one answer."""
    thread = Thread(forge.name, "o/r", 42)
    for i in range(205):
        thread.add(BOT if i == 204 else (7, "alice"), f"comment {i}")
    thread.register(responses.mock)

    listed = forge.comments("o/r", 42)

    assert [Comment(c["id"], c["user"]["id"], c["body"]) for c in thread.comments] == listed
    urls = [c.request.url for c in responses.calls]
    if forge.name == "github":
        assert 3 == len(urls)
        assert urls[0] == f"{GITHUB_API}/repos/o/r/issues/42/comments?per_page=100"
        assert urls[2].endswith("/issues/42/comments?per_page=100&page=3")
    else:
        assert [f"{GITEA}/api/v1/repos/o/r/issues/42/comments"] == urls


@responses.activate
def test_a_next_page_outside_the_api_is_not_followed(forge: ForgeAPI) -> None:
    """The token goes with every page: a Link to another host is an error, never requested."""
    url = f"{forge.api}/repos/o/r/issues/42/comments"
    evil = '<https://evil.example/repos/o/r/issues/42/comments?page=2>; rel="next"'
    responses.get(url, json=[], headers={"Link": evil})

    with pytest.raises(ForgeError, match="outside its API"):
        forge.comments("o/r", 42)
    assert 1 == len(responses.calls)


@responses.activate
def test_a_list_of_comments_without_end_is_an_error(forge: ForgeAPI) -> None:
    """A next page forever stops after MAX_PAGES, as an error rather than a partial answer."""
    url = f"{forge.api}/repos/o/r/issues/42/comments"
    responses.get(url, json=[], headers={"Link": f'<{url}?page=2>; rel="next"'})

    with pytest.raises(ForgeError, match="more than"):
        forge.comments("o/r", 42)
    assert MAX_PAGES == len(responses.calls)


@responses.activate
def test_comments_without_an_id_or_author_are_skipped(forge: ForgeAPI) -> None:
    """A ghost or malformed comment cannot be the bridge's; a list that is not one is an error."""
    url = f"{forge.api}/repos/o/r/issues/42/comments"
    responses.get(
        url,
        json=[
            {"id": 1, "user": None, "body": "x"},
            {"id": "2", "user": {"id": 7}, "body": "x"},
            {"id": 3, "user": {"id": True}, "body": "x"},
            {"id": 4, "user": {"id": 7}, "body": None},
            "five",
        ],
    )
    assert [Comment(4, 7, "")] == forge.comments("o/r", 42)
    responses.replace(responses.GET, url, json={"message": "not a list"})
    with pytest.raises(ForgeError, match="without a list"):
        forge.comments("o/r", 42)


@responses.activate
def test_the_account_is_asked_once(forge: ForgeAPI) -> None:
    """``GET /user`` names the token's account; its id is kept; an answer without one fails."""
    responses.get(f"{forge.api}/user", json={"id": BOT[0], "login": BOT[1]})

    assert (BOT[0], BOT[0]) == (forge.account_id(), forge.account_id())
    assert 1 == len(responses.calls)
    other = Gitea(GITEA, "tok") if forge.name == "gitea" else GitHub(GITHUB_API, "tok")
    responses.replace(responses.GET, f"{forge.api}/user", json={"login": BOT[1]})
    with pytest.raises(ForgeError, match="without an id"):
        other.account_id()


@responses.activate
def test_unreact_removes_the_reaction_each_forges_way(forge: ForgeAPI) -> None:
    """Gitea deletes by content; GitHub by the reaction's id, and without one does nothing."""
    base = f"{forge.api}/repos/o/r/issues/comments/9/reactions"
    if forge.name == "github":
        responses.delete(f"{base}/4401", status=204)
    else:
        responses.delete(base, status=200)

    forge.unreact("o/r", 9, "rocket", "4401" if forge.name == "github" else None)
    forge.unreact("o/r", 9, "rocket", None)

    calls = [(c.request.method, c.request.url, c.request.body) for c in responses.calls]
    if forge.name == "github":
        assert [("DELETE", f"{base}/4401", None)] == calls
    else:
        assert [("DELETE", base, b'{"content": "rocket"}')] * 2 == calls


@responses.activate
def test_a_commit_status_is_posted_to_the_head_with_a_short_description(forge: ForgeAPI) -> None:
    """``POST /repos/{o}/{r}/statuses/{sha}``: state, context, target URL, at most 140 chars."""
    responses.post(f"{forge.api}/repos/o/r/statuses/{SHA}", status=201, json={"id": 1})

    forge.set_status(
        "o/r", SHA, "failure", context="cc-ci/cold", url="https://d/1", description="x" * 300
    )

    sent = json.loads(responses.calls[0].request.body)
    assert ("failure", "cc-ci/cold", "https://d/1") == (
        sent["state"],
        sent["context"],
        sent["target_url"],
    )
    assert 140 == len(sent["description"])
    with pytest.raises(ForgeError, match="not a commit id"):
        forge.set_status("o/r", "../x", "pending", context="c", url="u", description="d")


@responses.activate
@pytest.mark.parametrize("exc", FOREIGN, ids=lambda e: type(e).__name__)
def test_forge_transport_errors_are_mapped(forge: ForgeAPI, exc: Exception) -> None:
    """No requests exception leaves a forge adapter."""
    responses.get(f"{forge.api}/repos/o/r/pulls/1", body=exc)

    with pytest.raises(ForgeError) as caught:
        forge.pull("o/r", 1)
    assert caught.value.__cause__ is exc


@responses.activate
@pytest.mark.parametrize(
    "answer",
    [
        {"status": 500},
        {"status": 403, "json": {}},
        {"body": "<html>"},
        {"json": {"number": 1}},
        {"json": []},
    ],
)
def test_forge_bad_answers_are_mapped(forge: ForgeAPI, answer: dict[str, object]) -> None:
    """Errors and malformed PRs are ForgeErrors."""
    responses.get(f"{forge.api}/repos/o/r/pulls/1", **answer)  # type: ignore[arg-type]

    with pytest.raises(ForgeError):
        forge.pull("o/r", 1)


def test_every_upstream_error_is_a_bridge_error() -> None:
    """The adapters' errors share one root under the core's."""
    from ccci_bridge.errors import BridgeError
    from ccci_core.errors import CcciError

    assert issubclass(UpstreamError, BridgeError)
    assert issubclass(BridgeError, CcciError)
