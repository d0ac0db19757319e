"""The reconcile's decisions against in-memory ports: the record always says the step first.

The agent port, the deployer and the engine are fakes writing into one shared log, so the order
of what the record says and what is done can be read off: every irreversible step is announced
to the agent before it is taken (that is what makes a killed reconcile recoverable). The real
process on the real engine is ``test_reconcile.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ccci_agent.reconcile import Busy, Infra, Reconciler
from ccci_core.catalog import Catalog, Checkout
from ccci_core.deploy.protocol import Deployed, version_label
from ccci_core.docker_engine import Health
from ccci_core.names import AppName, infra_app
from ccci_core.recipe_meta import RecipeMeta
from tests.fake_docker import FakeDocker

APP = infra_app("ccci-keycloak", "kc.t.ccci.example")
BROKEN = {"1.4.0+20.4"}


@dataclass
class FakePort:
    """The agent: records every call into the shared ``log``."""

    log: list[str]
    record_: dict[str, Any] = field(default_factory=dict)
    busy: list[str] = field(default_factory=list)  # begin raises Busy while this has items
    recovering: dict[str, Any] | None = None

    def record(self, name: str) -> dict[str, Any] | None:
        return self.record_ or None

    def begin(
        self, name: str, current: str | None, target: str, guard_realms: bool
    ) -> dict[str, Any]:
        if self.busy:
            raise Busy(self.busy.pop(0), "realm-held")
        self.log.append(f"begin {current}→{target} guard={guard_realms}")
        return {"token": "t" * 32, "recovering": self.recovering}

    def step(self, name: str, token: str, step: str, snapshot: bool | None = None) -> None:
        self.log.append(f"step {step}")

    def snapshot(self, name: str, token: str, stack: str) -> dict[str, Any]:
        self.log.append("snapshot")
        return {"volumes": [{"name": f"{stack}_data"}], "size": 10}

    def restore(self, name: str, token: str) -> dict[str, Any]:
        self.log.append("restore")
        return {}

    def end(
        self,
        name: str,
        token: str,
        outcome: str,
        running: str | None,
        last_good: str | None,
        detail: str,
    ) -> None:
        self.log.append(f"end {outcome} {running} {last_good}")

    def hold(self, name: str, body: dict[str, Any]) -> bool:
        self.log.append(f"hold {body['target']}")
        return True

    def observed(self, name: str, running: str | None, last_good: str | None) -> None:
        self.log.append(f"observed {running}")

    def alert(self, kind: str, app: str, key: str, message: str, details: dict[str, Any]) -> None:
        self.log.append(f"alert {kind}")


@dataclass
class FakeDeployer:
    """Deploys into a FakeDocker: a healthy task, or (``BROKEN``) failing ones."""

    docker: FakeDocker
    log: list[str]
    created: bool = True

    def exists(self, app: AppName) -> bool:
        return self.created

    def new(self, app: AppName, checkout: Checkout, env: Mapping[str, str]) -> None:
        self.log.append("new")
        self.created = True

    def generate_secrets(self, app: AppName, checkout: Checkout) -> None:
        pass

    def deploy(self, app: AppName, checkout: Checkout) -> Deployed:
        version = str(checkout.version)
        self.log.append(f"deploy {version}")
        name = f"{app.stack}_app"
        if name in self.docker.service_list:
            self.docker.remove_service(name)
        self.docker.add_service(
            app.stack, "app", image=f"img:{version}", labels={version_label(app.stack): version}
        )
        if version in BROKEN:
            for _ in range(4):
                self.docker.add_task(name, "failed", error="task: non-zero exit (3)", exit_code=3)
        else:
            self.docker.add_task(name, health=Health("healthy"))
        return Deployed(app.stack, version)

    def undeploy(self, app: AppName) -> None:
        self.log.append("undeploy")
        self.docker.service_list.pop(f"{app.stack}_app", None)
        self.docker.task_list.pop(f"{app.stack}_app", None)

    def remove(self, app: AppName) -> None:
        raise AssertionError("a reconcile never removes an infra app")

    def deployed(self, app: AppName) -> Deployed | None:
        service = self.docker.service_list.get(f"{app.stack}_app")
        return (
            None
            if service is None
            else Deployed(app.stack, service.labels[version_label(app.stack)])
        )

    def volumes(self, app: AppName) -> list[str]:
        return [f"{app.stack}_data"]


@pytest.fixture
def make(recipes_dir: Path, tmp_path: Path) -> Any:
    """Return a factory of a reconciler over the fakes (and the shared log)."""

    def build(
        stateful: bool = True, running: str | None = None, **port: Any
    ) -> tuple[Reconciler, list[str]]:
        log: list[str] = []
        docker = FakeDocker()
        deployer = FakeDeployer(docker, log)
        if running is not None:
            deployer.deploy(APP, Checkout(APP.recipe, tmp_path, running, "c", _v(running)))
            log.clear()
        meta = RecipeMeta(APP.recipe, {"DEPLOY_TIMEOUT": 30})
        infra = Infra("keycloak", APP, stateful, meta, "exec", guard_realms=stateful)
        reconciler = Reconciler(
            infra=infra,
            port=FakePort(log, **port),
            deployer=deployer,
            docker=docker,
            catalog=Catalog(recipes_dir),
            checkouts=tmp_path / "checkouts",
            wait=5.0,
            say=lambda line: None,
            sleep=lambda seconds: log.append("sleep"),
        )
        return reconciler, log

    return build


def _v(text: str) -> Any:
    from ccci_core.versions import Version

    return Version.parse(text)


def test_a_stateful_upgrade_announces_each_step_before_taking_it(make: Any) -> None:
    """undeploy, snapshot, deploy: each recorded with the agent first; applied at the end."""
    reconciler, log = make(running="1.0.0+20.0")
    result = reconciler.run(to="1.0.1+20.0")
    assert "applied" == result.outcome
    assert [
        "begin 1.0.0+20.0→1.0.1+20.0 guard=True",
        "step undeploy",
        "undeploy",
        "step snapshot",
        "snapshot",
        "step deploy-new",
        "deploy 1.0.1+20.0",
        "end applied 1.0.1+20.0 1.0.1+20.0",
    ] == log


def test_a_failed_stateful_upgrade_restores_before_deploying_last_good(make: Any) -> None:
    """Unhealthy: the rollback is announced, the data restored, then last-good deployed."""
    reconciler, log = make(running="1.3.0+20.3")
    result = reconciler.run(to="1.4.0+20.4")
    assert ("rolled back", "1.3.0+20.3", 1) == (result.outcome, result.running, result.exit_code)
    tail = log[log.index("deploy 1.4.0+20.4") + 1 :]
    assert [
        "step rollback",
        "undeploy",
        "restore",
        "deploy 1.3.0+20.3",
        "alert infra-rollback",
        "end rolled back 1.3.0+20.3 1.3.0+20.3",
    ] == tail
    assert "keeps failing" in result.detail


def test_a_stateless_upgrade_never_undeploys_or_snapshots(make: Any) -> None:
    """traefik: the new version in place, the old one back on failure; nothing else."""
    reconciler, log = make(stateful=False, running="1.3.0+20.3")
    reconciler.run(to="1.4.0+20.4")
    assert [
        "begin 1.3.0+20.3→1.4.0+20.4 guard=False",
        "step deploy-new",
        "deploy 1.4.0+20.4",
        "step rollback",
        "deploy 1.3.0+20.3",
        "alert infra-rollback",
        "end rolled back 1.3.0+20.3 1.3.0+20.3",
    ] == log


@pytest.mark.parametrize(
    ("step", "snapshot", "restores"),
    [
        ("undeploy", False, False),  # the new version never ran: the data is as it was
        ("snapshot", False, False),
        ("deploy-new", True, True),  # it may have migrated the data
        ("rollback", True, True),  # the restore may be half done
    ],
)
def test_recovery_restores_exactly_when_the_new_version_may_have_touched_the_data(
    make: Any, step: str, snapshot: bool, restores: bool
) -> None:
    """A dead reconcile's job: restore only after deploy-new/rollback, then deploy its ``from``."""
    recovering = {"step": step, "from": "1.3.0+20.3", "to": "1.4.0+20.4", "snapshot": snapshot}
    on_record = {"reconcile": recovering | {"live": False}, "last_good": "1.3.0+20.3"}
    reconciler, log = make(running="1.4.0+20.4", recovering=recovering, record_=on_record)
    result = reconciler.run()  # latest is a held major: the dead one's job still comes first
    assert ("rolled back", "1.3.0+20.3") == (result.outcome, result.running)
    assert restores == ("restore" in log)
    assert log.index("step rollback") < log.index("deploy 1.3.0+20.3")
    if restores:
        assert log.index("undeploy") < log.index("restore") < log.index("deploy 1.3.0+20.3")


def test_held_changes_nothing_and_a_busy_agent_is_waited_for_then_deferred(make: Any) -> None:
    """The gate holds without the lock; Busy is retried until the wait is over, then deferred."""
    reconciler, log = make(running="1.1.0+20.1")
    result = reconciler.run(to="1.3.0+20.3")
    assert ("held", ["hold 1.3.0+20.3"]) == (result.outcome, log)

    waits = ["run a holds realm r"] * 1000
    reconciler, log = make(running="1.0.0+20.0", busy=waits)
    clock = iter(range(100))
    reconciler.monotonic = lambda: float(next(clock))
    result = reconciler.run(to="1.0.1+20.0")
    assert ("deferred", "run a holds realm r", 0) == (
        result.outcome,
        result.detail,
        result.exit_code,
    )
    assert {"sleep"} == set(log)  # waited, never began, nothing deployed


def test_no_op_when_the_target_runs_healthy_and_no_lock_is_taken(make: Any) -> None:
    """Latest already healthy: one look; the last-good is recorded when it was not yet."""
    reconciler, log = make(running="1.0.1+20.0", record_={"last_good": "1.0.0+20.0"})
    result = reconciler.run(to="1.0.1+20.0")
    assert ("no-op", ["observed 1.0.1+20.0"]) == (result.outcome, log)


def test_a_live_reconcile_is_waited_for_then_the_decision_is_made_afresh(make: Any) -> None:
    """Another reconcile on record: wait for the lock, re-read, and decide under the lock."""
    on_record = {"reconcile": {"step": "deploy-new", "live": True}, "last_good": "1.0.1+20.0"}
    reconciler, log = make(
        running="1.0.1+20.0", record_=on_record, busy=["a reconcile of keycloak"]
    )
    result = reconciler.run(to="1.0.1+20.0")
    assert ("no-op", 0) == (result.outcome, result.exit_code)
    assert [
        "sleep",
        "begin 1.0.1+20.0→1.0.1+20.0 guard=True",
        "end no-op 1.0.1+20.0 1.0.1+20.0",
    ] == log
