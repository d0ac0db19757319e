"""Live-warm infra: running and last-good versions, the reconcile lock, and the realm guard."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from flask.testing import FlaskClient

from ccci_agent.alerts import Alerts
from ccci_agent.errors import Conflict, LeaseRefused, NotLeaseHolder
from ccci_agent.infra import RECONCILE_TTL, InfraVersions
from ccci_agent.leases import Leases
from ccci_agent.store import StateDir
from ccci_core.errors import InvalidName, VersionError


def test_a_failed_version_runs_but_the_last_good_stays(state: StateDir) -> None:
    """A reconcile that ends failed records what runs; the last-good stays the previous one."""
    infra = InfraVersions(state)
    infra.observed("keycloak", "10.0.0+25.0.1", "10.0.0+25.0.1")
    token = infra.begin(
        "keycloak",
        current="10.0.0+25.0.1",
        target="10.1.0+25.0.2",
        guard_realms=False,
        live_leases=[],
    )["token"]
    record = infra.end(
        "keycloak", token, outcome="failed", running="10.1.0+25.0.2", last_good="10.0.0+25.0.1"
    )
    assert ("10.1.0+25.0.2", "10.0.0+25.0.1") == (record["version"], record["last_good"])
    assert [record] == infra.all()


@pytest.mark.parametrize(("name", "version"), [("../x", "1.0.0+1"), ("keycloak", "latest")])
def test_bad_names_and_versions_are_refused(state: StateDir, name: str, version: str) -> None:
    """Names and versions are validated before a file is written."""
    with pytest.raises((InvalidName, VersionError)):
        InfraVersions(state).observed(name, version, version)
    assert not state.infra.exists() or [] == list(state.infra.iterdir())


def test_corrupt_record_is_moved_aside_and_the_rest_listed(state: StateDir) -> None:
    """A truncated infra record reads as never recorded, is moved aside and alerted."""
    infra = InfraVersions(state)
    kept = infra.observed("keycloak", "10.0.0+25.0.1", "10.0.0+25.0.1")
    (state.infra / "traefik.json").write_text('{"name": "traefik", "vers')

    assert [kept] == infra.all()
    assert infra.get("traefik") is None
    [moved] = state.infra.glob("traefik.json.corrupt-*")
    [alert] = Alerts(state).active()
    assert ("state-corrupt", str(moved)) == (alert["kind"], alert["details"]["moved_to"])
    record = infra.observed("traefik", "3.0.0+3.1", "3.0.0+3.1")
    assert "3.0.0+3.1" == record["last_good"]


# -- the reconcile lock ------------------------------------------------------------------------


class Clock:
    """A settable clock."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _begin(infra: InfraVersions, **kwargs: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "current": "1.0.0+1",
        "target": "1.1.0+1",
        "guard_realms": False,
        "live_leases": [],
    }
    return infra.begin("keycloak", **(args | kwargs))


def test_one_reconcile_at_a_time_and_only_its_token_moves_it(state: StateDir) -> None:
    """A second begin is refused while the first is live; steps and the end need its token."""
    infra = InfraVersions(state)
    begun = _begin(infra)
    with pytest.raises(Conflict) as busy:
        _begin(infra)
    assert "reconcile-busy" == busy.value.details["kind"]
    with pytest.raises(NotLeaseHolder):
        infra.step("keycloak", "0" * 32, "undeploy")
    with pytest.raises(NotLeaseHolder):
        infra.end("keycloak", None, outcome="applied", running="1.1.0+1", last_good="1.1.0+1")
    infra.step("keycloak", begun["token"], "snapshot", snapshot=True)
    assert ("snapshot", True, True) == (
        infra.get("keycloak")["reconcile"]["step"],  # type: ignore[index]
        infra.get("keycloak")["reconcile"]["snapshot"],  # type: ignore[index]
        infra.get("keycloak")["reconcile"]["live"],  # type: ignore[index]
    )
    record = infra.end(
        "keycloak", begun["token"], outcome="applied", running="1.1.0+1", last_good="1.1.0+1"
    )
    assert (None, "1.1.0+1", "applied") == (
        record["reconcile"],
        record["last_good"],
        record["last"]["outcome"],
    )
    assert "token_hash" not in json.dumps(infra.all())
    _begin(infra)  # free again


@pytest.mark.parametrize("gone", ["process", "ttl"])
def test_a_dead_reconcile_is_handed_to_the_next_with_its_step(state: StateDir, gone: str) -> None:
    """Its holder gone (process dead, or silent past the TTL): the next begin gets its job."""
    clock, alive = Clock(), {"yes": True}
    infra = InfraVersions(state, clock=clock, alive=lambda pid, start: alive["yes"])
    first = _begin(infra, pid=os.getpid())
    infra.step("keycloak", first["token"], "deploy-new", snapshot=True)
    if gone == "process":
        alive["yes"] = False
    else:
        clock.now += RECONCILE_TTL + 1
    assert infra.get("keycloak")["reconcile"]["live"] is False  # type: ignore[index]
    second = _begin(infra, current="1.1.0+1", target="1.2.0+1")
    assert {"step": "deploy-new", "from": "1.0.0+1", "to": "1.1.0+1", "snapshot": True} == second[
        "recovering"
    ]
    with pytest.raises(NotLeaseHolder):  # the dead one's token no longer moves anything
        infra.step("keycloak", first["token"], "rollback")


def test_keycloak_and_realm_leases_exclude_each_other(state: StateDir) -> None:
    """No guarded reconcile begins under a realm lease, and no realm lease starts under one."""
    infra = InfraVersions(state)
    leases = Leases(state, max_tests=4, realm_guard=infra.realm_guard)
    lease = leases.acquire("ccci-web", "cold", realm="ccci-web-abcdef")
    with leases.frozen() as live, pytest.raises(Conflict) as held:
        _begin(infra, guard_realms=True, live_leases=live)
    assert ("realm-held", lease["id"]) == (held.value.details["kind"], held.value.details["lease"])
    leases.release(lease["id"], lease["token"])

    with leases.frozen() as live:
        begun = _begin(infra, guard_realms=True, live_leases=live)
    with pytest.raises(LeaseRefused, match="keycloak is being reconciled"):
        leases.acquire("ccci-web", "cold", realm="ccci-web-abcdef")
    leases.acquire("ccci-web", "cold")  # a run without a realm does not need keycloak
    infra.end("keycloak", begun["token"], outcome="applied", running="1.1.0+1", last_good="1.1.0+1")
    leases.acquire("ccci-web", "cold", realm="ccci-web-abcdef")


def test_traefik_reconciles_do_not_guard_realms(state: StateDir) -> None:
    """A reconcile without ``guard_realms`` begins under a realm lease and blocks none."""
    infra = InfraVersions(state)
    leases = Leases(state, max_tests=4, realm_guard=infra.realm_guard)
    leases.acquire("ccci-web", "cold", realm="ccci-web-abcdef")
    with leases.frozen() as live:
        infra.begin("traefik", current=None, target="1.0.0+2", guard_realms=False, live_leases=live)
    leases.acquire("ccci-web", "cold", realm="ccci-web-123456")


def test_unknown_steps_outcomes_and_apps_are_refused(state: StateDir) -> None:
    """The step, the outcome and the app are closed sets."""
    infra = InfraVersions(state)
    token = _begin(infra)["token"]
    with pytest.raises(InvalidName):
        infra.step("keycloak", token, "dance")
    with pytest.raises(InvalidName):
        infra.end("keycloak", token, outcome="fine", running=None, last_good=None)
    with pytest.raises(InvalidName):
        infra.get("postgres")


# -- the same through the HTTP API -------------------------------------------------------------


def test_the_routes_begin_step_end_and_hold_once(client: FlaskClient) -> None:
    """The reconcile verbs answer JSON; two holds of one target raise one alert."""
    begun = client.post("/v1/infra/keycloak/begin", json={"target": "1.0.0+1"})
    assert 201 == begun.status_code, begun.json
    token = begun.json["token"]  # type: ignore[index]
    busy = client.post("/v1/infra/keycloak/begin", json={"target": "1.0.0+1"})
    assert (409, "reconcile-busy") == (busy.status_code, busy.json["details"]["kind"])  # type: ignore[index]
    step = client.post("/v1/infra/keycloak/step", json={"token": token, "step": "deploy-new"})
    assert 200 == step.status_code, step.json
    end = client.post(
        "/v1/infra/keycloak/end",
        json={"token": token, "outcome": "applied", "running": "1.0.0+1", "last_good": "1.0.0+1"},
    )
    assert ("1.0.0+1", None) == (end.json["last_good"], end.json["reconcile"])  # type: ignore[index]

    hold = {
        "current": "1.0.0+1",
        "target": "2.0.0+1",
        "bump": "major",
        "reasons": ["major bump 1.0.0+1 → 2.0.0+1"],
        "command": "cc-ci reconcile keycloak --to 2.0.0+1 --accept-migration",
    }
    answers = [client.post("/v1/infra/keycloak/hold", json=hold).json for _ in range(2)]
    assert [True, False] == [a["new"] for a in answers]  # type: ignore[index]
    alerts = client.get("/v1/alerts").json["alerts"]  # type: ignore[index]
    assert ["infra-held"] == [a["kind"] for a in alerts]
    assert "2.0.0+1" == client.get("/v1/infra/keycloak").json["held"]["target"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/infra/postgres/begin", {"target": "1.0.0+1"}, 400),
        ("/v1/infra/keycloak/begin", {"target": "latest"}, 400),
        ("/v1/infra/keycloak/begin", {"target": "1.0.0+1", "extra": 1}, 400),
        ("/v1/infra/keycloak/step", {"token": "x", "step": "undeploy"}, 400),
        ("/v1/infra/keycloak/step", {"token": "0" * 32, "step": "undeploy"}, 404),
        ("/v1/infra/keycloak/end", {"token": "0" * 32, "outcome": "great"}, 400),
        ("/v1/infra/traefik/snapshot", {"token": "0" * 32}, 400),
    ],
)
def test_bad_reconcile_requests_are_4xx_with_a_reason(
    client: FlaskClient, path: str, body: dict[str, Any], status: int
) -> None:
    """Bad input is a JSON 4xx naming what is wrong; nothing is recorded."""
    answer = client.post(path, json=body)
    assert (status, True) == (answer.status_code, bool(answer.json["reason"])), answer.json  # type: ignore[index]
    assert 404 == client.get("/v1/infra/keycloak").status_code
