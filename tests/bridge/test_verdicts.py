"""The verdict back: from ``!testme`` to the edited reply, the commit status, the reaction, chat.

Drone, the forges and Matrix are faked at the transport (``responses``) with the answers their
APIs document; Drone's webhook is signed the way Drone signs (``payloads.drone_headers``).
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any
from urllib.parse import quote, unquote

import flask
import flask.testing
import pytest
import responses
from pydantic import SecretStr

from ccci_bridge.app import create_app
from ccci_bridge.errors import StoreError
from ccci_bridge.forge import Comment
from ccci_bridge.records import MAX_ATTEMPTS, BuildRecord
from ccci_bridge.settings import BridgeSettings
from ccci_bridge.verdicts import marker, own_reply
from ccci_core.run_result import RunResult
from tests.bridge.comments import BOT, REPO_ID, Thread
from tests.bridge.conftest import InlineExecutor
from tests.bridge.payloads import (
    DRONE,
    GITEA,
    GITHUB_API,
    SHA,
    drone_build,
    drone_headers,
    drone_hook,
    drone_log,
    encode,
    gitea_comment,
    gitea_headers,
    github_comment,
    github_headers,
    pull,
)

REPO = "coop-cloud/keycloak"
CI = f"{DRONE}/api/repos/coop-cloud/cc-ci"
API = {"gitea": f"{GITEA}/api/v1", "github": GITHUB_API}
COMMENT_ID = {"gitea": 1001, "github": 2002}
REPLY_ID = 7300
ROCKET_ID = {"gitea": None, "github": 4401}
NUMBER = 17
HOMESERVER = "https://matrix.example.org"

FAIL_RESULT = RunResult(
    verdict="fail",
    lane="quick",
    recipe="keycloak",
    canonical="restored to its known-good snapshot",
    step="upgrade",
    detail="app not ready after 120 s: app: exit 127",
)


@pytest.fixture
def chat_settings(settings: BridgeSettings) -> BridgeSettings:
    """Settings with Matrix replies configured."""
    return settings.model_copy(
        update={"matrix_homeserver": HOMESERVER, "matrix_token": SecretStr("matrix-token")}
    )


@pytest.fixture
def app(chat_settings: BridgeSettings) -> flask.Flask:
    """The bridge, slow work inline, Matrix configured."""
    return create_app(chat_settings, executor=InlineExecutor())


def _forge(
    api: responses.RequestsMock,
    forge: str,
    *,
    reply_status: int = 201,
    thread: Thread | None = None,
) -> str:
    """Serve ``forge``'s API for PR 42; its comments by ``thread``, else fixed answers."""
    base = f"{API[forge]}/repos/{REPO}"
    api.get(f"{base}/collaborators/alice/permission", json={"permission": "write"})
    api.get(f"{base}/pulls/42", json=pull())
    reactions = f"{base}/issues/comments/{COMMENT_ID[forge]}/reactions"
    answer: dict[str, Any] = {"user": {"login": "cc-ci-bot"}, "content": "rocket"}
    if forge == "github":
        answer["id"] = ROCKET_ID["github"]
        api.delete(f"{reactions}/{ROCKET_ID['github']}", status=204)
    else:
        api.delete(reactions, status=200)
    api.post(reactions, status=201, json=answer)
    api.post(f"{base}/statuses/{SHA}", status=201, json={"id": 1})
    if thread is not None:
        thread.register(api)
        return base
    api.get(f"{API[forge]}/user", json={"id": BOT[0], "login": BOT[1]})
    api.get(f"{base}/issues/42/comments", json=[])
    api.post(f"{base}/issues/42/comments", status=reply_status, json={"id": REPLY_ID})
    api.patch(f"{base}/issues/comments/{REPLY_ID}", json={"id": REPLY_ID})
    return base


def _drone(
    api: responses.RequestsMock,
    status: str = "running",
    *,
    steps: tuple[tuple[str, str, int], ...] = (("clone", "success", 0), ("test", "success", 0)),
    log: list[str] | None = None,
) -> None:
    api.post(f"{CI}/builds", json={"id": 100207, "number": NUMBER, "status": "pending"})
    api.get(f"{CI}/builds/{NUMBER}", json=drone_build(NUMBER, status, steps=steps))
    for i, _ in enumerate(steps):
        api.get(f"{CI}/builds/{NUMBER}/logs/1/{i + 1}", json=drone_log(*(log or ["hello"])))


def _finish(api: responses.RequestsMock, status: str, **kwargs: Any) -> None:
    """Let Drone's build API answer build NUMBER as finished with ``status``."""
    api.replace(responses.GET, f"{CI}/builds/{NUMBER}", json=drone_build(NUMBER, status, **kwargs))


def _comment(client: flask.testing.FlaskClient, forge: str, body: str = "!testme") -> None:
    if forge == "gitea":
        data = encode(gitea_comment(body))
        response = client.post("/hooks/gitea", data=data, headers=gitea_headers(data))
    else:
        data = encode(github_comment(body))
        response = client.post("/hooks/github", data=data, headers=github_headers(data))
    assert 202 == response.status_code, response.get_json()


def _hook(
    client: flask.testing.FlaskClient, status: str, **kwargs: Any
) -> flask.testing.TestResponse:
    data = encode(drone_hook(NUMBER, status))
    return client.post("/hooks/drone", data=data, headers=drone_headers(data, **kwargs))


def _ask_in_chat(
    client: flask.testing.FlaskClient, api: responses.RequestsMock, room: str, event: str
) -> None:
    """Say ``!testme keycloak`` as event ``event`` in ``room`` (hookshot relays it); expect a start.

    Matrix answers the bridge's reply to it (transaction ``ccci-build-<n>``) with an event id.
    """
    send = f"{HOMESERVER}/_matrix/client/v3/rooms/{quote(room, safe='')}/send/m.room.message"
    api.put(f"{send}/ccci-build-{NUMBER}", json={"event_id": "$reply"})
    message = {
        "type": "m.room.message",
        "sender": "@alice:example.org",
        "room_id": room,
        "event_id": event,
        "content": {"msgtype": "m.text", "body": "!testme keycloak"},
    }
    asked = client.post(
        "/hooks/chat", json=message, headers={"X-Matrix-Hookshot-Token": "chat-token"}
    )
    assert "started" == asked.get_json()["status"], asked.get_json()


def _calls(api: responses.RequestsMock, method: str, needle: str) -> list[Any]:
    return [
        json.loads(c.request.body) if c.request.body else None
        for c in api.calls
        if c.request.method == method and needle in unquote(c.request.url)
    ]


def _later(app: flask.Flask, seconds: float) -> None:
    """Move the bridge's clocks (the store's and the verdicts') ``seconds`` ahead of now."""
    bridge = app.extensions["ccci_bridge"]
    ahead = bridge.store.clock() - time.time() + seconds
    bridge.store.clock = bridge.verdicts.clock = lambda: time.time() + ahead


def _build_reads(api: responses.RequestsMock) -> int:
    """Count the times the bridge asked Drone about build NUMBER (not its logs)."""
    return sum(
        c.request.method == "GET" and c.request.url.endswith(f"/builds/{NUMBER}") for c in api.calls
    )


def _statuses(api: responses.RequestsMock) -> list[tuple[str, str]]:
    return [(s["state"], s["context"]) for s in _calls(api, "POST", f"/statuses/{SHA}")]


def _reactions(api: responses.RequestsMock, method: str = "POST") -> list[Any]:
    return _calls(api, method, "/reactions")


@pytest.mark.parametrize("forge", ["gitea", "github"])
def test_a_pass_edits_the_reply_sets_success_and_moves_the_reaction(
    client: flask.testing.FlaskClient, api: responses.RequestsMock, forge: str
) -> None:
    """The full story of a green cold run, on both forges."""
    _forge(api, forge)
    _drone(api, log=["PASS install", RunResult(verdict="pass", lane="cold").line()])

    _comment(client, forge)
    assert [("pending", "cc-ci/cold")] == _statuses(api)
    assert 1 == len(_calls(api, "POST", "/issues/42/comments"))

    _finish(api, "success")
    response = _hook(client, "success")

    assert 202 == response.status_code, response.get_json()
    edits = _calls(api, "PATCH", f"/issues/comments/{REPLY_ID}")
    assert 1 == len(edits)
    body = edits[0]["body"]
    assert body.startswith(f"@alice ✅ PASS: cold run of `keycloak` at {SHA[:10]}, 4 min 12 s.")
    assert f"Drone: {DRONE}/coop-cloud/cc-ci/{NUMBER}" in body
    assert "Quick lane" not in body
    assert "Failing step" not in body
    assert [("pending", "cc-ci/cold"), ("success", "cc-ci/cold")] == _statuses(api)
    final = _calls(api, "POST", f"/statuses/{SHA}")[-1]
    assert (f"{DRONE}/coop-cloud/cc-ci/{NUMBER}", "PASS in 4 min 12 s") == (
        final["target_url"],
        final["description"],
    )
    assert [{"content": "eyes"}, {"content": "rocket"}, {"content": "+1"}] == _reactions(api)
    assert 1 == len(_reactions(api, "DELETE"))  # the rocket went
    assert 1 == len(_calls(api, "POST", "/issues/42/comments"))  # edited, never a new comment


def test_a_fail_names_the_step_and_its_detail_and_the_quick_lanes_place(
    client: flask.testing.FlaskClient, api: responses.RequestsMock
) -> None:
    """A red quick run: the failing step and detail from the run's last log line, 👎, failure."""
    steps = (("clone", "success", 0), ("test", "failure", 1))
    _forge(api, "gitea")
    _drone(api, steps=steps, log=["FAIL upgrade (120.0s) — …", FAIL_RESULT.line()])

    _comment(client, "gitea", "!testme --quick")
    _finish(api, "failure", steps=steps)
    assert 202 == _hook(client, "failure").status_code

    body = _calls(api, "PATCH", f"/issues/comments/{REPLY_ID}")[0]["body"]
    assert body.startswith(f"@alice ❌ FAIL: quick run of `keycloak` at {SHA[:10]}")
    assert "Failing step: `upgrade` — `app not ready after 120 s: app: exit 127`" in body, body
    assert "Canonical: `restored to its known-good snapshot`." in body
    assert "Quick lane: lower confidence, never gates merge." in body
    assert [("pending", "cc-ci/quick"), ("failure", "cc-ci/quick")] == _statuses(api)
    description = _calls(api, "POST", f"/statuses/{SHA}")[-1]["description"]
    assert description.startswith("FAIL in 4 min 12 s (quick lane, advisory): upgrade — app not")
    assert {"content": "-1"} == _reactions(api)[-1]


def test_a_fail_without_the_runs_line_names_drones_failed_step(
    client: flask.testing.FlaskClient, api: responses.RequestsMock
) -> None:
    """A plugin that died before its last line: the step Drone saw fail, and its exit code."""
    steps = (("clone", "success", 0), ("test", "failure", 137))
    _forge(api, "gitea")
    _drone(api, steps=steps, log=["Killed"])
    _comment(client, "gitea")
    _finish(api, "failure", steps=steps)
    _hook(client, "failure")

    body = _calls(api, "PATCH", f"/issues/comments/{REPLY_ID}")[0]["body"]
    assert "Failing step: `test` — `exit code 137`" in body


def test_a_cancelled_build_is_an_error(
    client: flask.testing.FlaskClient, api: responses.RequestsMock
) -> None:
    """Drone's ``killed``: ⚠️ cancelled, status error, 😕."""
    _forge(api, "github")
    _drone(api)
    _comment(client, "github")
    _finish(api, "killed")
    _hook(client, "killed")

    body = _calls(api, "PATCH", f"/issues/comments/{REPLY_ID}")[0]["body"]
    assert body.startswith("@alice ⚠️ cancelled: cold run of `keycloak`")
    assert "Reason: `the build was cancelled`" in body
    assert ("error", "cc-ci/cold") == _statuses(api)[-1]
    assert {"content": "confused"} == _reactions(api)[-1]


def test_a_forged_webhook_is_401_and_changes_nothing(
    client: flask.testing.FlaskClient, api: responses.RequestsMock
) -> None:
    """Wrong secret, a body not the signed one, no signature: 401, Drone is not even asked."""
    _forge(api, "gitea")
    _drone(api)
    _comment(client, "gitea")
    _finish(api, "success")
    data = encode(drone_hook(NUMBER, "success"))
    forged = [
        (data, drone_headers(data, secret="not-the-secret")),
        (data.replace(b"success", b"failure"), drone_headers(data)),
        (data, {"Content-Type": "application/json"}),
    ]
    for body, headers in forged:
        response = client.post("/hooks/drone", data=body, headers=headers)
        assert 401 == response.status_code, response.get_json()
    assert 0 == _build_reads(api)
    assert [] == _calls(api, "PATCH", "/issues/comments/")
    assert [("pending", "cc-ci/cold")] == _statuses(api)


def test_a_replayed_webhook_changes_nothing(
    client: flask.testing.FlaskClient, api: responses.RequestsMock
) -> None:
    """The same signed delivery again is a duplicate; an old one is refused as a replay."""
    _forge(api, "gitea")
    _drone(api)
    _comment(client, "gitea")
    _finish(api, "success")
    data = encode(drone_hook(NUMBER, "success"))
    headers = drone_headers(data)

    assert 202 == client.post("/hooks/drone", data=data, headers=headers).status_code
    again = client.post("/hooks/drone", data=data, headers=headers)
    stale = _hook(client, "success", date="Wed, 01 Jan 2020 00:00:00 GMT")

    assert (200, "duplicate") == (again.status_code, again.get_json()["status"])
    assert 401 == stale.status_code
    assert 1 == len(_calls(api, "PATCH", "/issues/comments/"))
    assert 1 == _build_reads(api)


def test_webhooks_of_other_builds_and_states_are_ignored(
    client: flask.testing.FlaskClient, api: responses.RequestsMock
) -> None:
    """A running build, another repository, a user event: 200 ignored; a bad body: 400."""
    for payload in (
        drone_hook(NUMBER, "running"),
        drone_hook(NUMBER, "success", repo="someone/else"),
        {"event": "user", "action": "created"},
    ):
        data = encode(payload)
        response = client.post("/hooks/drone", data=data, headers=drone_headers(data))
        assert (200, "ignored") == (response.status_code, response.get_json()["status"])
    data = encode({"event": "build", "repo": {"slug": "coop-cloud/cc-ci"}, "build": {}})
    response = client.post("/hooks/drone", data=data, headers=drone_headers(data))
    assert (400, "missing field build.number") == (
        response.status_code,
        response.get_json()["reason"],
    )
    assert [] == list(api.calls)


def test_webhook_and_poller_racing_apply_the_verdict_once(
    app: flask.Flask, client: flask.testing.FlaskClient, api: responses.RequestsMock
) -> None:
    """Both see the end at the same instant; one delivers, the other finds it taken."""
    _forge(api, "gitea")
    _drone(api)
    _comment(client, "gitea")
    both_asked = threading.Barrier(2)

    def finished(request: Any) -> tuple[int, dict[str, str], str]:
        both_asked.wait(timeout=30)  # hold each until the other has asked Drone too
        return 200, {}, json.dumps(drone_build(NUMBER, "success"))

    api.replace(responses.GET, f"{CI}/builds/{NUMBER}", body="")
    api.remove(responses.GET, f"{CI}/builds/{NUMBER}")
    api.add_callback(responses.GET, f"{CI}/builds/{NUMBER}", callback=finished)
    verdicts = app.extensions["ccci_bridge"].verdicts
    results: list[Any] = []
    poller = threading.Thread(target=lambda: results.append(verdicts.poll()))
    poller.start()
    response = _hook(client, "success")
    poller.join()

    assert 202 == response.status_code
    assert 1 == len(_calls(api, "PATCH", "/issues/comments/"))
    assert 1 == _statuses(api).count(("success", "cc-ci/cold"))
    assert 1 == _reactions(api).count({"content": "+1"})
    assert results in ([{"taken": 1}], [{"delivered": 1}])


def test_a_bridge_restart_between_build_and_verdict_still_delivers(
    chat_settings: BridgeSettings, api: responses.RequestsMock
) -> None:
    """The record is in SQLite: a new app on the same state dir edits the first one's reply."""
    _forge(api, "gitea")
    _drone(api)
    _comment(create_app(chat_settings, executor=InlineExecutor()).test_client(), "gitea")
    _finish(api, "success")

    restarted = create_app(chat_settings, executor=InlineExecutor())
    assert {"delivered": 1} == restarted.extensions["ccci_bridge"].verdicts.poll()

    edits = _calls(api, "PATCH", f"/issues/comments/{REPLY_ID}")
    assert 1 == len(edits)
    assert "✅ PASS" in edits[0]["body"]
    assert {} == restarted.extensions["ccci_bridge"].verdicts.poll()  # nothing left to do


def test_the_timeout_turns_a_lost_build_into_an_error(
    app: flask.Flask, client: flask.testing.FlaskClient, api: responses.RequestsMock
) -> None:
    """Drone never says it finished (or forgot the build): after the bound, error."""
    _forge(api, "gitea")
    _drone(api)
    _comment(client, "gitea")
    verdicts = app.extensions["ccci_bridge"].verdicts
    assert {"pending": 1} == verdicts.poll()  # running, within the bound
    api.replace(responses.GET, f"{CI}/builds/{NUMBER}", status=404, json={"message": "nope"})
    assert {"pending": 1} == verdicts.poll()  # not found, within the bound

    _later(app, 3 * 3600 + 1)
    assert {"delivered": 1} == verdicts.poll()

    body = _calls(api, "PATCH", f"/issues/comments/{REPLY_ID}")[0]["body"]
    assert body.startswith("@alice ⚠️ error: cold run of `keycloak`")
    assert "Reason: `no result from Drone`" in body
    assert ("error", "cc-ci/cold") == _statuses(api)[-1]
    description = _calls(api, "POST", f"/statuses/{SHA}")[-1]["description"]
    assert "error: no result from Drone" == description


def test_a_failed_delivery_is_retried_with_the_same_verdict(
    app: flask.Flask, client: flask.testing.FlaskClient, api: responses.RequestsMock
) -> None:
    """The forge refuses the edit: the next pass delivers; the verdict seen first stands."""
    base = _forge(api, "gitea")
    _drone(api)
    _comment(client, "gitea")
    _finish(api, "failure")
    api.replace(responses.PATCH, f"{base}/issues/comments/{REPLY_ID}", status=500)
    verdicts = app.extensions["ccci_bridge"].verdicts

    assert {"failed": 1} == verdicts.poll()
    _finish(api, "success")  # Drone changed its mind (a restarted build): the first word stands
    api.replace(responses.PATCH, f"{base}/issues/comments/{REPLY_ID}", json={"id": REPLY_ID})
    assert {} == verdicts.poll()  # not due: a failed delivery waits a minute first
    _later(app, 61)
    assert {"delivered": 1} == verdicts.poll()

    edits = _calls(api, "PATCH", f"/issues/comments/{REPLY_ID}")
    assert 2 == len(edits)
    assert edits[0] == edits[1]
    assert "❌ FAIL" in edits[1]["body"]
    assert 1 == _build_reads(api)  # the stored verdict, not asked again
    assert {} == verdicts.poll()


def test_a_verdict_never_deliverable_is_given_up_after_max_attempts(
    app: flask.Flask, client: flask.testing.FlaskClient, api: responses.RequestsMock
) -> None:
    """A forge that refuses forever does not get polled forever."""
    base = _forge(api, "gitea")
    _drone(api)
    _comment(client, "gitea")
    _finish(api, "success")
    api.replace(responses.POST, f"{base}/statuses/{SHA}", status=403)
    verdicts = app.extensions["ccci_bridge"].verdicts

    outcomes = []
    for _ in range(MAX_ATTEMPTS + 2):
        outcomes.append(verdicts.poll())
        _later(app, 3600)  # the longest backoff

    assert [{"failed": 1}] * MAX_ATTEMPTS + [{}, {}] == outcomes


def test_a_lost_first_reply_gets_the_verdict_as_a_new_comment_once(
    app: flask.Flask, client: flask.testing.FlaskClient, api: responses.RequestsMock
) -> None:
    """The forge failed the 'started' reply: the verdict is posted, and a retry edits that one."""
    base = _forge(api, "gitea", reply_status=502)
    _drone(api)
    _comment(client, "gitea")
    _finish(api, "success")
    api.replace(responses.POST, f"{base}/issues/42/comments", status=201, json={"id": 8800})
    api.add(responses.PATCH, f"{base}/issues/comments/8800", json={"id": 8800})
    reactions = f"{base}/issues/comments/{COMMENT_ID['gitea']}/reactions"
    api.replace(responses.POST, reactions, status=500)  # the delivery fails after the reply
    verdicts = app.extensions["ccci_bridge"].verdicts
    assert {"failed": 1} == verdicts.poll()
    api.replace(responses.POST, reactions, status=201, json={"content": "+1"})
    _later(app, 61)
    assert {"delivered": 1} == verdicts.poll()

    posted = _calls(api, "POST", "/issues/42/comments")
    assert 2 == len(posted)  # the failed 'started' reply, then the verdict
    assert "✅ PASS" in posted[1]["body"]
    assert 1 == len(_calls(api, "PATCH", "/issues/comments/8800"))


def test_a_chat_command_gets_its_verdict_as_a_matrix_reply(
    client: flask.testing.FlaskClient, api: responses.RequestsMock
) -> None:
    """Asked in chat: the reply goes to the command's event, with the build's transaction id."""
    _drone(api, log=[RunResult(verdict="pass", lane="cold").line()])
    room, event = "!ops:example.org", "$cmd-1"
    _ask_in_chat(client, api, room, event)
    _finish(api, "success")

    assert 202 == _hook(client, "success").status_code

    [sent] = [c for c in api.calls if c.request.method == "PUT"]
    assert sent.request.headers["Authorization"] == "Bearer matrix-token"
    content = json.loads(sent.request.body)
    assert {"m.in_reply_to": {"event_id": event}} == content["m.relates_to"]
    assert content["body"].startswith("✅ PASS: cold run of `keycloak`, 4 min 12 s — ")
    assert "m.notice" == content["msgtype"]
    assert [] == _statuses(api)  # no PR, no commit status


def test_text_from_the_run_cannot_mention_link_or_ping(
    client: flask.testing.FlaskClient, api: responses.RequestsMock
) -> None:
    """A detail the PR's tests wrote is a code span on the forge and pings nobody in chat."""
    hostile = "@room @admin ![](https://evil.example/t.png) [docs](https://evil.example/x) `x`"
    steps = (("clone", "success", 0), ("test", "failure", 1))
    line = RunResult(verdict="fail", lane="cold", step="tests", detail=hostile).line()
    _forge(api, "gitea")
    _drone(api, steps=steps, log=[line])
    _comment(client, "gitea")
    _finish(api, "failure", steps=steps)
    _hook(client, "failure")

    body = _calls(api, "PATCH", f"/issues/comments/{REPLY_ID}")[0]["body"]
    quoted = "`" + hostile.replace("`", "'") + "`"
    assert f"Failing step: `tests` — {quoted}" in body  # one code span: nothing in it renders


def test_a_chat_reply_pings_nobody(
    client: flask.testing.FlaskClient, api: responses.RequestsMock
) -> None:
    """``@room`` in a detail reaches chat with a zero-width space after the ``@``."""
    steps = (("clone", "success", 0), ("test", "failure", 1))
    line = RunResult(verdict="fail", lane="cold", step="tests", detail="@room look").line()
    _drone(api, steps=steps, log=[line])
    _ask_in_chat(client, api, "!r:x", "$cmd")
    _finish(api, "failure", steps=steps)
    _hook(client, "failure")

    [sent] = [c for c in api.calls if c.request.method == "PUT"]
    text = json.loads(sent.request.body)["body"]
    assert "@\u200broom look" in text
    assert "@room" not in text


def test_a_run_that_errored_is_an_error_not_a_fail(
    client: flask.testing.FlaskClient, api: responses.RequestsMock
) -> None:
    """The plugin's exit 2 (refused, engine away) makes Drone say failure; the run says error."""
    steps = (("clone", "success", 0), ("test", "failure", 2))
    line = RunResult(verdict="error", lane="cold", detail="the engine is unreachable").line()
    _forge(api, "gitea")
    _drone(api, steps=steps, log=[line])
    _comment(client, "gitea")
    _finish(api, "failure", steps=steps)
    _hook(client, "failure")

    body = _calls(api, "PATCH", f"/issues/comments/{REPLY_ID}")[0]["body"]
    assert body.startswith("@alice ⚠️ error: cold run")
    assert "Reason: `the engine is unreachable`" in body
    assert ("error", "cc-ci/cold") == _statuses(api)[-1]


def test_a_quick_request_that_ran_cold_says_so_without_the_quick_note(
    client: flask.testing.FlaskClient, api: responses.RequestsMock
) -> None:
    """The lane that ran heads the reply; the quick lane's caveat is only for quick runs."""
    line = RunResult(verdict="pass", lane="cold", fallback="no canonical yet").line()
    _forge(api, "gitea")
    _drone(api, log=[line])
    _comment(client, "gitea", "!testme --quick")
    _finish(api, "success")
    _hook(client, "success")

    body = _calls(api, "PATCH", f"/issues/comments/{REPLY_ID}")[0]["body"]
    assert body.startswith("@alice ✅ PASS: cold run of `keycloak`")
    assert "the cold lane ran: `no canonical yet`" in body
    assert "Quick lane" not in body
    assert ("success", "cc-ci/quick") == _statuses(api)[-1]  # the context is the lane asked


def test_a_deleted_reply_gets_a_new_one_and_a_deleted_command_is_no_error(
    app: flask.Flask, client: flask.testing.FlaskClient, api: responses.RequestsMock
) -> None:
    """The edit answers 404: the verdict is posted anew; reactions on a gone comment are skipped."""
    base = _forge(api, "gitea")
    _drone(api)
    _comment(client, "gitea")
    _finish(api, "success")
    reactions = f"{base}/issues/comments/{COMMENT_ID['gitea']}/reactions"
    api.replace(responses.PATCH, f"{base}/issues/comments/{REPLY_ID}", status=404, json={})
    api.replace(responses.POST, reactions, status=404, json={})
    api.replace(responses.DELETE, reactions, status=404, json={})

    assert {"delivered": 1} == app.extensions["ccci_bridge"].verdicts.poll()

    posted = _calls(api, "POST", "/issues/42/comments")
    assert 2 == len(posted)
    assert "✅ PASS" in posted[1]["body"]


def test_a_verdict_waits_for_the_started_messages(
    app: flask.Flask, client: flask.testing.FlaskClient, api: responses.RequestsMock
) -> None:
    """A build recorded but not yet announced (reply, pending status) is not overtaken."""
    _forge(api, "gitea")
    _drone(api)
    _comment(client, "gitea")
    _finish(api, "error")
    bridge = app.extensions["ccci_bridge"]
    with bridge.store.transaction() as db:
        db.execute("UPDATE builds SET announced = 0")

    assert {"pending": 1} == bridge.verdicts.poll()
    _later(app, 61)  # the announcement did not come within the grace: deliver anyway
    assert {"delivered": 1} == bridge.verdicts.poll()


def test_a_store_failing_for_one_build_does_not_stop_the_pass(
    app: flask.Flask,
    client: flask.testing.FlaskClient,
    api: responses.RequestsMock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One build's claim failing (disk full, locked) is 'failed'; the others are settled."""
    _forge(api, "gitea")
    _drone(api)
    _comment(client, "gitea")
    _finish(api, "success")
    bridge = app.extensions["ccci_bridge"]
    bridge.records.add(BuildRecord(16, 1.0, "traefik", "cold", "chat:a", "https://d/16"))
    api.get(f"{CI}/builds/16", json=drone_build(16, "success"))
    claim = bridge.records.claim

    def failing(number: int, outcome: Any) -> Any:
        if number == 16:
            raise StoreError("database or disk is full")
        return claim(number, outcome)

    monkeypatch.setattr(bridge.records, "claim", failing)
    assert {"failed": 1, "delivered": 1} == bridge.verdicts.poll()


# -- the verdict's reply is posted at most once -----------------------------------------------

MARK = f"<!-- ccci-build-{NUMBER} -->"
MALLORY = (666, "mallory")


def test_only_the_accounts_comment_with_the_builds_own_mark_is_its_reply() -> None:
    """Build 1's mark is not a prefix match of build 17's; another author's comment never counts."""
    comments = [
        Comment(1, MALLORY[0], marker(17)),
        Comment(2, BOT[0], marker(1)),
        Comment(3, BOT[0], "no mark"),
        Comment(4, BOT[0], f"@alice ✅ PASS\n\n{marker(17)}"),
        Comment(5, BOT[0], marker(17)),
    ]
    assert "<!-- ccci-build-17 -->" == marker(17)
    assert 4 == own_reply(comments, BOT[0], 17)
    assert 2 == own_reply(comments, BOT[0], 1)
    assert own_reply(comments, BOT[0], 170) is None
    assert own_reply(comments[:1], BOT[0], 17) is None


def _marked(thread: Thread) -> list[dict[str, Any]]:
    """Return the bridge's own comments carrying build NUMBER's mark."""
    return [c for c in thread.by(BOT) if MARK in c["body"]]


@pytest.mark.parametrize("forge", ["gitea", "github"])
def test_a_verdict_post_that_timed_out_is_edited_on_the_retry_not_posted_again(
    app: flask.Flask, client: flask.testing.FlaskClient, api: responses.RequestsMock, forge: str
) -> None:
    """The forge created the verdict's comment but the answer was lost: the retry edits it."""
    thread = Thread(forge, REPO, 42)
    thread.posts = ["refuse", "lose"]  # the 'started' reply fails; the verdict's post times out
    _forge(api, forge, thread=thread)
    _drone(api)
    _comment(client, forge)
    _finish(api, "success")
    verdicts = app.extensions["ccci_bridge"].verdicts

    assert {"failed": 1} == verdicts.poll()  # the timeout: the bridge cannot know it was created
    assert 1 == len(thread.by(BOT))
    _later(app, 61)
    assert {"delivered": 1} == verdicts.poll()

    (reply,) = thread.by(BOT)  # exactly one comment of the bridge: the verdict, edited
    assert MARK in reply["body"]
    assert "✅ PASS" in reply["body"]
    assert 2 == len(_calls(api, "POST", "/issues/42/comments"))  # the refused one, the lost one
    assert 1 == len(_calls(api, "PATCH", f"/issues/comments/{reply['id']}"))
    record = app.extensions["ccci_bridge"].records.get(NUMBER)
    assert reply["id"] == record.reply_id  # a later edit goes to it
    assert 1 == _reactions(api).count({"content": "+1"})


@pytest.mark.parametrize("forge", ["gitea", "github"])
def test_a_started_reply_whose_answer_was_lost_gets_the_verdict(
    app: flask.Flask, client: flask.testing.FlaskClient, api: responses.RequestsMock, forge: str
) -> None:
    """The 'started' reply carries the mark too: its id unknown, the verdict still edits it."""
    thread = Thread(forge, REPO, 42)
    thread.posts = ["lose"]
    _forge(api, forge, thread=thread)
    _drone(api)
    _comment(client, forge)
    (started,) = thread.by(BOT)
    assert MARK in started["body"]
    _finish(api, "success")

    assert {"delivered": 1} == app.extensions["ccci_bridge"].verdicts.poll()

    assert [started["id"]] == [c["id"] for c in thread.by(BOT)]
    assert "✅ PASS" in started["body"]
    assert 1 == len(_calls(api, "POST", "/issues/42/comments"))


@pytest.mark.parametrize("forge", ["gitea", "github"])
def test_the_mark_in_someone_elses_comment_is_ignored(
    app: flask.Flask, client: flask.testing.FlaskClient, api: responses.RequestsMock, forge: str
) -> None:
    """A user pasted the build's mark: their comment is never edited, the verdict is posted."""
    thread = Thread(forge, REPO, 42)
    pasted = thread.add(MALLORY, f"{MARK}\n\nlooks like the bot, is not the bot")
    thread.posts = ["refuse"]
    _forge(api, forge, thread=thread)
    _drone(api)
    _comment(client, forge)
    _finish(api, "success")

    assert {"delivered": 1} == app.extensions["ccci_bridge"].verdicts.poll()

    assert f"{MARK}\n\nlooks like the bot, is not the bot" == thread.get(pasted["id"])["body"]
    assert [] == _calls(api, "PATCH", f"/issues/comments/{pasted['id']}")
    (verdict,) = _marked(thread)  # posted, with the mark for a retry to find
    assert "✅ PASS" in verdict["body"]


@pytest.mark.parametrize("forge", ["gitea", "github"])
def test_a_retry_edits_its_own_lost_post_not_an_earlier_comment_with_the_mark(
    app: flask.Flask, client: flask.testing.FlaskClient, api: responses.RequestsMock, forge: str
) -> None:
    """The pasted mark comes first in the list; the bridge's own comment is the one edited."""
    thread = Thread(forge, REPO, 42)
    pasted = thread.add(MALLORY, MARK)
    thread.posts = ["refuse", "lose"]
    _forge(api, forge, thread=thread)
    _drone(api)
    _comment(client, forge)
    _finish(api, "success")
    verdicts = app.extensions["ccci_bridge"].verdicts
    assert {"failed": 1} == verdicts.poll()
    _later(app, 61)
    assert {"delivered": 1} == verdicts.poll()

    assert MARK == thread.get(pasted["id"])["body"]
    (verdict,) = thread.by(BOT)
    assert "✅ PASS" in verdict["body"]


@pytest.mark.parametrize(("forge", "reads"), [("github", 2), ("gitea", 1)])
def test_the_marked_reply_is_found_beyond_the_first_page(
    app: flask.Flask,
    client: flask.testing.FlaskClient,
    api: responses.RequestsMock,
    forge: str,
    reads: int,
) -> None:
    """130 comments before the bridge's: on GitHub it is on page 2 (Link rel="next"), on
    Gitea/Forgejo in the one answer (that endpoint does not page)."""
    thread = Thread(forge, REPO, 42)
    for i in range(130):
        thread.add((100 + i % 3, f"user{i % 3}"), f"comment {i}")
    thread.posts = ["lose"]  # the 'started' reply is created, its answer lost
    _forge(api, forge, thread=thread)
    _drone(api)
    _comment(client, forge)
    _finish(api, "success")

    assert {"delivered": 1} == app.extensions["ccci_bridge"].verdicts.poll()

    (reply,) = thread.by(BOT)
    assert "✅ PASS" in reply["body"]
    assert 1 == len(_calls(api, "POST", "/issues/42/comments"))
    urls = [str(c.request.url) for c in api.calls if c.request.method == "GET"]
    listed = [url for url in urls if "/42/comments" in url]
    assert reads == len(listed)
    if forge == "github":
        assert listed[0].endswith(f"/repos/{REPO}/issues/42/comments?per_page=100")
        assert f"/repositories/{REPO_ID}/issues/42/comments?per_page=100&page=2" in listed[1]
