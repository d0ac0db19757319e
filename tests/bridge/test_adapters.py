"""The Drone and forge adapters: exact requests, and every foreign error mapped to ours."""

from __future__ import annotations

import json

import pytest
import requests
import responses

from ccci_bridge.drone import Build, DroneAPI
from ccci_bridge.errors import DroneError, ForgeError, NoPipeline, UpstreamError
from ccci_bridge.forge import ForgeAPI, Gitea, GitHub, Pull
from tests.bridge.payloads import DRONE, GITEA, GITHUB_API, SHA, pull

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


@responses.activate
def test_forge_reaction_and_reply_bodies(forge: ForgeAPI) -> None:
    """Reactions and replies post the documented JSON bodies."""
    responses.post(f"{forge.api}/repos/o/r/issues/comments/9/reactions", status=201, json={})
    responses.post(f"{forge.api}/repos/o/r/issues/42/comments", status=201, json={})

    forge.react("o/r", 9, "rocket")
    forge.reply("o/r", 42, "hi")

    assert [{"content": "rocket"}, {"body": "hi"}] == [
        json.loads(c.request.body) for c in responses.calls
    ]


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
