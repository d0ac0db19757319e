"""The relay pass: at least once, acknowledged only once every target took it; and cc-ci relay.

The pass is driven through fake targets and a fake agent first; then ``cc-ci relay`` runs against
the real agent (a subprocess on a socket) with the homeserver and the webhook faked by
``responses``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from responses import matchers

from ccci_agent.alerts import alert_id
from ccci_core.agent_client import AgentClient, AgentClientError, AgentUnreachable
from ccci_core.alert_message import Alert, Message
from ccci_core.atomic import write_json
from ccci_core.cli import main
from ccci_core.relay import DeliveryError, preview, relay
from tests.agent_server import running_agent

TS = "2024-05-01T12:00:00+00:00"


def make_alert(n: int, ts: str = TS) -> Alert:
    """The ``n``-th alert of a listing."""
    return Alert(f"{n:016x}", "infra-held", f"app{n}", f"held {n}", ts)


@dataclass
class FakeAgent:
    """An AlertSource that lists ``alerts`` and records acknowledgements."""

    alerts: list[Alert]
    acked: list[str] = field(default_factory=list)
    ack_error: AgentClientError | None = None

    def active(self) -> list[Alert]:
        """Return what is not acknowledged yet."""
        return [a for a in self.alerts if a.id not in self.acked]

    def ack(self, alert: Alert) -> str:
        """Record the acknowledgement, or fail as told."""
        if self.ack_error is not None:
            raise self.ack_error
        self.acked.append(alert.id)
        return "acknowledged"


@dataclass
class FakeTarget:
    """A Target that takes every alert but those in ``refuse``."""

    name: str
    refuse: dict[str, DeliveryError] = field(default_factory=dict)
    got: list[str] = field(default_factory=list)

    def deliver(self, alert: Alert, message: Message) -> None:
        """Take the alert or raise what ``refuse`` says for it."""
        if alert.id in self.refuse:
            raise self.refuse[alert.id]
        assert message.text.startswith("cc-ci: ")
        self.got.append(alert.id)


def refused(target: str, *, wide: bool) -> DeliveryError:
    """A delivery failure of ``target``: the alert's own, or one every alert would meet."""
    return DeliveryError(
        target, "answered 500" if not wide else "cannot reach it", target_wide=wide
    )


def run(agent: FakeAgent, *targets: FakeTarget) -> tuple[int, list[str]]:
    """Run one pass; return its exit code and its lines."""
    lines: list[str] = []
    return relay(agent, targets, out=lines.append), lines


def test_every_alert_is_delivered_to_every_target_then_acknowledged() -> None:
    """Oldest first, each to the room and the webhook, each acknowledged after both took it."""
    agent, room, hook = FakeAgent([make_alert(1), make_alert(2)]), FakeTarget("m"), FakeTarget("w")

    code, lines = run(agent, room, hook)

    assert (0, [make_alert(1).id, make_alert(2).id]) == (code, agent.acked)
    assert room.got == hook.got == agent.acked
    assert [
        f"delivered  {make_alert(1).id} infra-held app1 → m, w; acknowledged",
        f"delivered  {make_alert(2).id} infra-held app2 → m, w; acknowledged",
        "relay: 2 delivered, 0 failed, 0 not tried",
    ] == lines


def test_an_alert_a_target_refuses_stays_active_and_the_others_go_on() -> None:
    """A 500 for one alert fails that alert alone: the next is delivered and acknowledged."""
    first, second = make_alert(1), make_alert(2)
    agent = FakeAgent([first, second])
    room = FakeTarget("m", refuse={first.id: refused("m", wide=False)})

    code, lines = run(agent, room)

    assert (1, [second.id], [second.id]) == (code, agent.acked, room.got)
    assert f"failed     {first.id} infra-held app1: m: answered 500 (stays active)" == lines[0]
    assert "relay: 1 delivered, 1 failed, 0 not tried" == lines[-1]


def test_nothing_is_acknowledged_until_every_target_took_it() -> None:
    """The room took it, the webhook did not: the alert stays active for the next pass."""
    alert = make_alert(1)
    agent, room = FakeAgent([alert]), FakeTarget("m")
    hook = FakeTarget("w", refuse={alert.id: refused("w", wide=False)})

    code, _ = run(agent, room, hook)

    assert (1, [alert.id], []) == (code, room.got, agent.acked)


def test_a_dead_endpoint_stops_the_pass() -> None:
    """Unreachable for the first alert: the others are not tried (nor sent to other targets)."""
    alerts = [make_alert(n) for n in (1, 2, 3)]
    agent = FakeAgent(alerts)
    room = FakeTarget("m", refuse={alerts[0].id: refused("m", wide=True)})
    hook = FakeTarget("w")

    code, lines = run(agent, room, hook)

    assert (1, [], [], []) == (code, agent.acked, room.got, hook.got)
    assert [
        f"failed     {alerts[0].id} infra-held app1: m: cannot reach it (stays active)",
        f"not tried  {alerts[1].id} infra-held app2: m failed (stays active)",
        f"not tried  {alerts[2].id} infra-held app3: m failed (stays active)",
        "relay: 0 delivered, 1 failed, 2 not tried",
    ] == lines


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (AgentClientError(507, "no space left on device"), 1),
        (AgentUnreachable(Path("/run/x.sock"), "gone"), 2),
    ],
)
def test_an_acknowledgement_that_fails_stops_the_pass(error: AgentClientError, code: int) -> None:
    """Delivered but not archived: it goes again next pass, and no more is sent to be doubled."""
    agent, room = FakeAgent([make_alert(1), make_alert(2)], ack_error=error), FakeTarget("m")

    got, lines = run(agent, room)

    assert (code, [make_alert(1).id]) == (got, room.got)
    assert "not acknowledged, sent again next" in lines[0]
    assert lines[1].startswith(f"not tried  {make_alert(2).id}")
    assert "relay: 0 delivered, 1 failed, 1 not tried" == lines[-1]


def test_nothing_to_do_is_exit_0() -> None:
    """No active alert: one line, exit 0, nothing sent."""
    room = FakeTarget("m")
    assert (0, ["no active alerts"], []) == (*run(FakeAgent([]), room), room.got)


def test_a_pass_without_targets_refuses_rather_than_acknowledging() -> None:
    """Acknowledging with nowhere to deliver would lose every alert."""
    agent = FakeAgent([make_alert(1)])
    with pytest.raises(Exception, match="no target"):
        run(agent)
    assert [] == agent.acked


def test_preview_sends_and_acknowledges_nothing() -> None:
    """--dry-run prints each message and its occurrence, sends and acknowledges nothing."""
    agent, room = FakeAgent([make_alert(1)]), FakeTarget("m")
    lines: list[str] = []

    assert 0 == preview(agent, [room], out=lines.append)

    assert ([], []) == (agent.acked, room.got)
    assert f"occurrence {make_alert(1).occurrence}" in lines[0]
    assert "    cc-ci: app1: an upgrade is held" == lines[1].splitlines()[0]
    assert lines[2].startswith("    html: <p><b>cc-ci: app1")


# --- cc-ci relay against the real agent -------------------------------------------------------

HOMESERVER = "https://matrix.example.org"
ROOM = "!ops:example.org"
TOKEN = "syt_relay_token"
WEBHOOK = "https://hooks.example.org/webhook/secret-hook"
SEND = re.compile(
    re.escape(f"{HOMESERVER}/_matrix/client/v3/rooms/%21ops%3Aexample.org/send/m.room.message/")
    + r"(?P<txn>[^/]+)"
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start without CCCI_* variables from the developer's shell."""
    for key in list(os.environ):
        if key.startswith("CCCI_"):
            monkeypatch.delenv(key)


@dataclass
class Host:
    """The real agent and what cc-ci relay is run with."""

    agent: AgentClient
    socket: Path
    state_dir: Path

    def raise_alert(self, key: str, message: str = "keycloak 27 held") -> dict[str, Any]:
        """Raise an alert through the agent."""
        body = {"kind": "infra-held", "app": "keycloak", "key": key, "message": message}
        return dict(self.agent.post("/v1/alerts", body))

    def active(self) -> list[dict[str, Any]]:
        """Return the active alerts."""
        return list(self.agent.get("/v1/alerts")["alerts"])

    def seen(self) -> list[dict[str, Any]]:
        """Return the acknowledged alerts."""
        seen = self.state_dir / "alerts" / "seen"
        return [json.loads(p.read_text()) for p in sorted(seen.glob("*.json"))]

    def relay(self, *flags: str) -> int:
        """Run ``cc-ci relay`` on this agent."""
        return main(["relay", "--socket", str(self.socket), *flags])


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Host]:
    """The agent in a subprocess; the relay configured for the room (token in a file) and a hook."""
    socket, state_dir = tmp_path / "agent.sock", tmp_path / "state"
    env = {"CCCI_SOCKET_GROUP": "root", "CCCI_DOMAIN": "ci.example.net"}
    monkeypatch.setenv("CCCI_MATRIX_HOMESERVER", HOMESERVER)
    monkeypatch.setenv("CCCI_MATRIX_ROOM", ROOM)
    (tmp_path / "matrix-token").write_text(TOKEN + "\n")  # as systemd credentials hold it
    monkeypatch.setenv("CCCI_MATRIX_TOKEN_FILE", str(tmp_path / "matrix-token"))
    monkeypatch.setenv("CCCI_ALERT_WEBHOOK_URL", WEBHOOK)
    with running_agent(socket, state_dir, env) as agent:
        yield Host(agent, socket, state_dir)


@pytest.fixture
def chat() -> Iterator[responses.RequestsMock]:
    """The homeserver and the webhook, faked at the transport (no call is let through)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def txn_ids(chat: responses.RequestsMock) -> list[str]:
    """Return the transaction id of every PUT the homeserver saw, in order."""
    found = [SEND.fullmatch(c.request.url or "") for c in chat.calls]
    return [m["txn"] for m in found if m]


def test_delivered_alerts_are_archived_in_seen(
    host: Host, chat: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both targets take both alerts: each is acknowledged into alerts/seen/, none is active."""
    first, second = host.raise_alert("k1"), host.raise_alert("k2", "traefik 3 held")
    chat.put(
        SEND,
        json={"event_id": "$e"},
        match=[matchers.header_matcher({"Authorization": "Bearer " + TOKEN})],
    )
    chat.post(WEBHOOK, json={"ok": True})

    assert 0 == host.relay()

    assert ([], {first["id"], second["id"]}) == (host.active(), {a["id"] for a in host.seen()})
    out = capsys.readouterr().out
    assert (
        f"delivered  {first['id']} infra-held keycloak → matrix {ROOM}, "
        "webhook https://hooks.example.org; acknowledged"
    ) in out
    assert "secret-hook" not in out
    posted = [json.loads(c.request.body or b"") for c in chat.calls if c.request.method == "POST"]
    assert [{"text", "html"}] * 2 == [set(body) for body in posted]
    said = sorted(body["text"].splitlines()[1] for body in posted)  # the agent's message
    assert ["keycloak 27 held", "traefik 3 held"] == said


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 500, "json": {"errcode": "M_UNKNOWN", "error": "boom"}},
        {"body": requests.ReadTimeout("no answer")},
        {"body": requests.ConnectionError("connection refused")},
    ],
    ids=["500", "timeout", "refused"],
)
def test_a_failing_homeserver_leaves_them_active(
    host: Host, chat: responses.RequestsMock, failure: dict[str, Any]
) -> None:
    """A 500, a timeout or a refused connection: exit 1, nothing archived, nothing posted later."""
    host.raise_alert("k1")
    chat.put(SEND, **failure)
    chat.post(WEBHOOK, json={"ok": True})

    assert 1 == host.relay()

    assert (1, []) == (len(host.active()), host.seen())
    assert [] == [c for c in chat.calls if c.request.method == "POST"]  # ack needs both anyway


def test_a_retry_after_a_lost_answer_reuses_the_transaction(
    host: Host, chat: responses.RequestsMock
) -> None:
    """The homeserver got the PUT, its answer was lost: the next pass PUTs the same txn id."""
    host.raise_alert("k1")
    answers = iter([requests.ReadTimeout("answer lost"), None])

    def homeserver(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        lost = next(answers)
        if lost is not None:
            raise lost
        return 200, {}, json.dumps({"event_id": "$first"})

    chat.add_callback(responses.PUT, SEND, callback=homeserver)
    chat.post(WEBHOOK, json={"ok": True})

    assert (1, 1) == (host.relay(), len(host.active()))
    assert (0, 0) == (host.relay(), len(host.active()))

    first, again = txn_ids(chat)
    assert first == again  # the homeserver answers the retry with the first event, posting nothing
    assert 1 == len(host.seen())


def test_an_alert_raised_again_after_its_ack_is_a_new_transaction(
    host: Host, chat: responses.RequestsMock
) -> None:
    """The same key after an acknowledgement is the same alert id, but a new message."""
    key = "infra-held:keycloak:27.0.0+27.0"
    ident = alert_id(key)
    earlier = {"id": ident, "kind": "infra-held", "app": "keycloak", "key": key}
    write_json(  # an occurrence an earlier day raised, as the agent writes it
        host.state_dir / "alerts" / f"{ident}.json",
        earlier | {"message": "held", "details": {}, "ts": TS},
    )
    chat.put(SEND, json={"event_id": "$e"})
    chat.post(WEBHOOK, json={"ok": True})
    assert 0 == host.relay()

    again = host.raise_alert(key)
    assert 0 == host.relay()

    first, second = txn_ids(chat)
    assert (ident, f"ccci-{ident}-202405011200000000") == (again["id"], first)
    assert second.startswith(f"ccci-{ident}-")
    assert second != first
    assert [TS, again["ts"]] == sorted(a["ts"] for a in host.seen())


def test_an_occurrence_raised_during_delivery_is_not_archived_undelivered(
    host: Host, chat: responses.RequestsMock
) -> None:
    """Acknowledged by hand and raised again while its post was on the way: the new one stays."""
    key = "infra-held:keycloak:27.0.0+27.0"
    ident = alert_id(key)
    write_json(
        host.state_dir / "alerts" / f"{ident}.json",
        {"id": ident, "kind": "infra-held", "app": "keycloak", "key": key}
        | {"message": "held", "details": {}, "ts": TS},
    )

    posts = []

    def homeserver(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        posts.append(request.url)
        if len(posts) == 1:  # while the first post is on its way, an operator and a reconcile act
            host.agent.post(f"/v1/alerts/{ident}/ack")
            host.raise_alert(key, "held again")
        return 200, {}, json.dumps({"event_id": "$e"})

    chat.add_callback(responses.PUT, SEND, callback=homeserver)
    chat.post(WEBHOOK, json={"ok": True})

    assert 0 == host.relay()
    assert ["held again"] == [a["message"] for a in host.active()]

    assert 0 == host.relay()
    assert [] == host.active()
    first, second = txn_ids(chat)
    assert first != second


def test_an_alert_acknowledged_by_hand_meanwhile_counts_as_delivered(
    host: Host, chat: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    """An operator acknowledged it while its post was on the way: delivered, nothing to archive."""
    alert = host.raise_alert("k1")

    def homeserver(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        host.agent.post(f"/v1/alerts/{alert['id']}/ack")
        return 200, {}, json.dumps({"event_id": "$e"})

    chat.add_callback(responses.PUT, SEND, callback=homeserver)
    chat.post(WEBHOOK, json={"ok": True})

    assert (0, [], 1) == (host.relay(), host.active(), len(host.seen()))
    assert "; already acknowledged\n" in capsys.readouterr().out


def test_dry_run_sends_and_acknowledges_nothing(
    host: Host, chat: responses.RequestsMock, capsys: pytest.CaptureFixture[str]
) -> None:
    """--dry-run prints the message each target would get; no request, no acknowledgement."""
    alert = host.raise_alert("k1")

    assert 0 == host.relay("--dry-run")

    assert ([], 1) == (list(chat.calls), len(host.active()))
    out = capsys.readouterr().out
    assert f"would send {alert['id']} infra-held keycloak → matrix {ROOM}, webhook" in out
    assert "    keycloak 27 held" in out


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"CCCI_MATRIX_HOMESERVER": HOMESERVER, "CCCI_MATRIX_TOKEN": TOKEN}, "CCCI_MATRIX_ROOM"),
        (
            {"CCCI_MATRIX_HOMESERVER": HOMESERVER, "CCCI_MATRIX_ROOM": "#ops:example.org"},
            "CCCI_MATRIX_ROOM",
        ),
        ({"CCCI_MATRIX_HOMESERVER": HOMESERVER, "CCCI_MATRIX_ROOM": ROOM}, "CCCI_MATRIX_TOKEN"),
        ({"CCCI_MATRIX_ROOM": ROOM}, "CCCI_MATRIX_ROOM"),
        ({"CCCI_MATRIX_TOKEN": TOKEN}, "CCCI_MATRIX_TOKEN"),
        ({"CCCI_MATRIX_HOMESERVER": "matrix.example.org"}, "CCCI_MATRIX_HOMESERVER"),
        ({"CCCI_ALERT_WEBHOOK_URL": "ftp://secret-hook"}, "CCCI_ALERT_WEBHOOK_URL"),
        ({"CCCI_ALERT_WEBHOOK_URL": "https://h/secret-hook#x"}, "CCCI_ALERT_WEBHOOK_URL"),
    ],
)
def test_bad_settings_exit_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    env: dict[str, str],
    variable: str,
) -> None:
    """A half-configured room or a bad URL: one line naming the variable, no secret, exit 2."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    code = main(["relay", "--socket", str(tmp_path / "none.sock")])

    err = capsys.readouterr().err
    assert (2, True, 1) == (code, err.startswith(f"cc-ci: {variable}: "), len(err.splitlines()))
    assert TOKEN not in err
    assert "secret-hook" not in err


def test_no_target_configured_is_one_line_and_exit_0(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Nowhere to deliver: say so, leave the alerts active, and do not even ask the agent."""
    assert 0 == main(["relay", "--socket", str(tmp_path / "none.sock")])
    assert capsys.readouterr().out.startswith("relay: no target configured (")


def test_an_unreachable_agent_is_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Configured, but no agent answers: one line on stderr, exit 2."""
    monkeypatch.setenv("CCCI_ALERT_WEBHOOK_URL", WEBHOOK)
    socket = tmp_path / "none.sock"

    assert 2 == main(["relay", "--socket", str(socket)])
    assert capsys.readouterr().err.startswith(f"cc-ci: the host agent is not reachable on {socket}")
