"""``cc-ci reconcile {keycloak|traefik}``: keep a live-warm infra app on its newest safe release.

1. **Gate first.** The running version against the catalog's latest through ``ccci_core.gate``:
   only a non-major bump with no manual-migration note in ``(current, latest]`` applies by itself.
   Otherwise nothing changes and the agent raises one alert per held target, with the bump, the
   notes and the command that applies it once migrated (``--to V --accept-migration``).
2. **Health gate with rollback.** last-good := what runs. Stateful (keycloak): undeploy, snapshot
   its volumes through the agent, deploy the target, wait for convergence, health and the probe;
   unhealthy: undeploy, restore the snapshot, deploy last-good. Stateless (traefik): deploy the
   target in place; unhealthy: deploy last-good.
3. **Crash-safe.** The agent's record says which step is next *before* it is taken. A reconcile
   that finds a dead one's record finishes its job: where the new version may have touched the data
   it restores the snapshot, then it deploys last-good and checks it (outcome ``rolled back``).
4. **Never under a live run.** Keycloak's reconcile does not begin while a run holds a realm, and
   no run with a realm starts while it is in progress (the agent checks both under one lock); it
   waits up to ``CCCI_RECONCILE_WAIT_S`` for a run (or another reconcile) and then defers.
5. **Nothing to do is fast.** Latest running and healthy: one look at the engine and the probe.

The decisions here use ports only: the agent (:class:`InfraPort`), the deployer, the Docker
adapter and the catalog, so the tests drive them against fakes and the real engine alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from ccci_core.catalog import Catalog
from ccci_core.deploy.errors import DeployError
from ccci_core.deploy.health import ProbeMode, observe, probe_for, wait_ready
from ccci_core.deploy.protocol import Deployer
from ccci_core.deploy.stack import Stack
from ccci_core.docker_engine import DockerStacks
from ccci_core.errors import BadInput, CcciError
from ccci_core.gate import Action, Decision, decide
from ccci_core.names import AppName
from ccci_core.recipe_meta import RecipeMeta
from ccci_core.versions import Version

EXIT = {"applied": 0, "no-op": 0, "deferred": 0, "held": 1, "rolled back": 1, "failed": 1}
POLL = 2.0  # seconds between two tries to begin while a run or another reconcile is live


class Busy(CcciError):
    """The agent refused to begin: another reconcile, or a run holding a realm (``kind``)."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message, kind=kind)
        self.kind = kind


class InfraPort(Protocol):
    """What a reconcile asks of the host agent (its ``/v1/infra`` and ``/v1/alerts`` routes)."""

    def record(self, name: str) -> dict[str, Any] | None:
        """Return the infra app's record, or None when it was never reconciled."""

    def begin(
        self, name: str, current: str | None, target: str, guard_realms: bool
    ) -> dict[str, Any]:
        """Take the reconcile lock: ``{token, recovering}``; raise Busy when it cannot now."""

    def step(self, name: str, token: str, step: str, snapshot: bool | None = None) -> None:
        """Record the step about to be taken."""

    def snapshot(self, name: str, token: str, stack: str) -> dict[str, Any]:
        """Snapshot the undeployed app's volumes (one last-good generation)."""

    def restore(self, name: str, token: str) -> dict[str, Any]:
        """Restore that snapshot into the undeployed app's volumes."""

    def end(
        self,
        name: str,
        token: str,
        outcome: str,
        running: str | None,
        last_good: str | None,
        detail: str,
    ) -> None:
        """End the reconcile and drop the lock."""

    def hold(self, name: str, body: dict[str, Any]) -> bool:
        """Record a held upgrade and raise its alert once; return whether the alert is new."""

    def observed(self, name: str, running: str | None, last_good: str | None) -> None:
        """Record what a no-op found running and healthy."""

    def alert(self, kind: str, app: str, key: str, message: str, details: dict[str, Any]) -> None:
        """Raise an alert (deduplicated by ``key``)."""


@dataclass(frozen=True)
class Infra:
    """One live-warm infra app as configured."""

    name: str  # keycloak | traefik
    app: AppName
    stateful: bool
    meta: RecipeMeta
    probe_mode: ProbeMode
    guard_realms: bool  # runs use its realms: never reconcile under one

    @property
    def recipe(self) -> str:
        """Return the recipe the app is deployed from."""
        return self.app.recipe


@dataclass
class Step:
    """One step of a reconcile as it is reported."""

    name: str
    seconds: float = 0.0
    detail: str = ""


@dataclass
class Result:
    """What a reconcile did (or, with ``--dry-run``, would do)."""

    name: str
    recipe: str
    outcome: str  # applied | no-op | held | rolled back | deferred | failed | plan
    current: str | None = None
    target: str | None = None
    latest: str | None = None
    last_good: str | None = None
    running: str | None = None
    decision: dict[str, Any] | None = None
    plan: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    detail: str = ""

    @property
    def exit_code(self) -> int:
        """Return the exit status: 0 applied/no-op/deferred/a plan, 1 held/rolled back/failed."""
        return EXIT.get(self.outcome, 0)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready form."""
        return {
            "app": self.name,
            "recipe": self.recipe,
            "outcome": self.outcome,
            "current": self.current,
            "target": self.target,
            "latest": self.latest,
            "last_good": self.last_good,
            "running": self.running,
            "decision": self.decision,
            "plan": self.plan,
            "steps": [
                {"name": s.name, "seconds": round(s.seconds, 1), "detail": s.detail}
                for s in self.steps
            ],
            "detail": self.detail,
            "exit": self.exit_code,
        }

    def final_line(self) -> str:
        """Return the last line of the log: the outcome and the versions."""
        versions = f"{self.current or 'nothing'} → {self.target or '?'}"
        if self.outcome in ("rolled back", "failed", "no-op", "applied"):
            versions += f", running {self.running or 'nothing'}"
        return f"{self.name}: {self.outcome} ({versions})" + (
            f": {self.detail}" if self.detail else ""
        )


class Deferred(CcciError):
    """The reconcile waited for a run (or another reconcile) long enough: try again later."""


@dataclass
class Reconciler:
    """Reconcile one infra app (see the module doc); every side effect goes through a port."""

    infra: Infra
    port: InfraPort
    deployer: Deployer
    docker: DockerStacks
    catalog: Catalog
    checkouts: Path
    wait: float = 600.0
    say: Callable[[str], None] = print
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    poll: float = POLL
    result: Result = field(init=False)
    token: str = field(init=False, default="")

    # -- the plan --------------------------------------------------------------------------------

    def run(self, *, dry_run: bool = False, to: str | None = None, accept: bool = False) -> Result:
        """Reconcile (or plan, with ``dry_run``) and return what happened."""
        name, recipe = self.infra.name, self.infra.recipe
        if accept and to is None:
            raise BadInput("--accept-migration needs --to <version> (the version you migrated to)")
        versions = self.catalog.versions(recipe)
        if not versions:
            raise BadInput(f"recipe {recipe} has no release tags to reconcile {name} to")
        target = versions[-1]
        if to is not None:
            target = Version.parse(to)
            if target not in versions:
                raise BadInput(f"--to {to} is not a release of {recipe}")
        self.result = Result(name, recipe, "plan", target=str(target), latest=str(versions[-1]))
        record = self.port.record(name) or {}
        running = record.get("reconcile")
        if running is not None:
            # Another reconcile is on record: finish its job (its holder is gone) or wait for it,
            # then decide afresh under the lock: what runs may have changed meanwhile.
            self._observe(record)
            if running.get("live"):
                plan = [f"wait for the reconcile in progress (step {running.get('step')})"]
            else:
                plan = ["finish the interrupted reconcile", *self._recovery_plan(running)]
            self.result.plan = plan
            if dry_run or not self._lock():
                return self.result
            record = self.port.record(name) or {}
        return self._decide(record, target, dry_run=dry_run, accepted=accept)

    def _observe(self, record: dict[str, Any]) -> Version | None:
        """Read what runs into the result (and the record's last-good); return its version."""
        deployed = self.deployer.deployed(self.infra.app)
        label = deployed.version if deployed is not None else None
        if deployed is not None and not label:
            raise BadInput(f"{self.infra.app.stack} is deployed without a version label")
        current = Version.parse(label) if label else None
        self.result.current = None if current is None else str(current)
        self.result.last_good = record.get("last_good")
        return current

    def _decide(
        self, record: dict[str, Any], target: Version, *, dry_run: bool, accepted: bool
    ) -> Result:
        """Choose and take what the gate allows (the lock is taken when a change is due)."""
        current = self._observe(record)
        last_good = self.result.last_good
        if current is None:
            base = Version.parse(last_good) if last_good else target
            self.result.target = str(base)
            plan = [f"deploy {base} (nothing is deployed)", "health gate"]
            return self._go(dry_run, plan, lambda: self._bring_up(base))
        decision = decide(current, target, self.catalog.notes(self.infra.recipe, target))
        self.result.decision = decision.to_dict()
        if decision.action is Action.NONE:
            if dry_run:
                self.result.plan.append("check health; a no-op when healthy, else redeploy")
                return self.result
            if self._healthy_now():
                return self._no_op(current, last_good)
            return self._go(dry_run, [], lambda: self._upgrade(current, current))
        if decision.action is Action.HOLD and not accepted:
            return self._held(decision, dry_run)
        plan = self._upgrade_plan(current, target)
        return self._go(dry_run, plan, lambda: self._upgrade(current, target))

    def _upgrade_plan(self, current: Version, target: Version) -> list[str]:
        if not self.infra.stateful:
            return [f"deploy {target} in place", f"health gate; on failure redeploy {current}"]
        return [
            f"undeploy {current} (volumes kept)",
            "snapshot the volumes (last-good data)",
            f"deploy {target}",
            f"health gate; on failure undeploy, restore the snapshot, redeploy {current}",
        ]

    def _recovery_plan(self, running: dict[str, Any]) -> list[str]:
        back = running.get("from") or self.result.last_good or running.get("to")
        restore = self._must_restore(running)
        return [
            "undeploy",
            *(
                ["restore the snapshot (the new version may have touched the data)"]
                if restore
                else []
            ),
            f"deploy {back}",
            "health gate",
        ]

    def _must_restore(self, running: dict[str, Any]) -> bool:
        touched = running.get("step") in ("deploy-new", "rollback")
        return self.infra.stateful and touched and bool(running.get("snapshot"))

    def _go(self, dry_run: bool, plan: list[str], act: Callable[[], None]) -> Result:
        self.result.plan = [*self.result.plan, *plan]
        if dry_run:
            return self.result
        # Not yet held unless a wait for another reconcile took it earlier.
        if self.token or self._lock():
            act()
        return self.result

    def _lock(self) -> bool:
        """Take the lock; return False when the reconcile is over already (deferred, or it
        finished a dead reconcile's job, which comes first on the agent's word)."""
        try:
            recovering = self._begin()
        except Deferred as exc:
            self.result.outcome, self.result.detail = "deferred", str(exc)
            return False
        if recovering:
            self._recover(recovering)
            return False
        return True

    # -- the lock ----------------------------------------------------------------------------------

    def _begin(self) -> dict[str, Any] | None:
        """Take the reconcile lock, waiting up to ``wait`` for a run or another reconcile.

        Return what a dead reconcile left to finish (its step, versions, snapshot), if anything.
        """
        deadline = self.monotonic() + self.wait
        said = ""
        while True:
            try:
                begun = self.port.begin(
                    self.infra.name,
                    self.result.current,
                    self.result.target or "",
                    self.infra.guard_realms,
                )
            except Busy as exc:
                if self.monotonic() >= deadline:
                    raise Deferred(str(exc)) from exc
                if str(exc) != said:
                    self.say(f"waiting: {exc} (up to {self.wait:.0f}s)")
                    said = str(exc)
                self.sleep(self.poll)
                continue
            self.token = str(begun["token"])
            recovering = begun.get("recovering")
            return dict(recovering) if recovering else None

    @contextmanager
    def _step(
        self, name: str, step: str | None = None, snapshot: bool | None = None
    ) -> Iterator[Step]:
        """Record ``step`` with the agent first (when given), then time and report ``name``."""
        if step is not None:
            self.port.step(self.infra.name, self.token, step, snapshot)
        entry = Step(name)
        started = self.monotonic()
        try:
            yield entry
        finally:
            entry.seconds = self.monotonic() - started
            self.result.steps.append(entry)
            detail = f" — {entry.detail}" if entry.detail else ""
            self.say(f"{name} ({entry.seconds:.1f}s){detail}")

    def _end(
        self, outcome: str, running: Version | None, last_good: Version | None, detail: str = ""
    ) -> None:
        self.result.outcome, self.result.detail = outcome, detail
        self.result.running = None if running is None else str(running)
        self.result.last_good = None if last_good is None else str(last_good)
        self.port.end(
            self.infra.name, self.token, outcome, self.result.running, self.result.last_good, detail
        )

    # -- what a reconcile does ---------------------------------------------------------------------

    def _healthy_now(self) -> bool:
        """Return whether the app is up right now: converged, healthy, and its probe answers."""
        stack = Stack(self.docker, self.infra.app.stack)
        try:
            states = observe(stack, datetime.now(UTC))
        except DeployError:
            return False
        if not states or not all(s.ready for s in states):
            return False
        probe = probe_for(self.infra.probe_mode, stack, self.infra.app, self.infra.meta)
        return probe is None or probe() is None

    def _no_op(self, current: Version, last_good: str | None) -> Result:
        if self.token:  # held since a wait for another reconcile: record and drop it
            self._end("no-op", current, current)
            return self.result
        self.result.outcome, self.result.running = "no-op", str(current)
        self.result.last_good = str(current)
        if last_good != str(current):  # a healthy latest is the last-good
            self.port.observed(self.infra.name, str(current), str(current))
        return self.result

    def _held(self, decision: Decision, dry_run: bool) -> Result:
        self.result.outcome = "held"
        self.result.running = self.result.current
        self.result.detail = "; ".join(decision.reasons)
        command = f"cc-ci reconcile {self.infra.name} --to {decision.target} --accept-migration"
        self.result.plan = [f"stay on {decision.current}", f"once migrated: {command}"]
        if dry_run:
            self.result.outcome = "plan"
            return self.result
        new = self.port.hold(
            self.infra.name,
            {
                "current": str(decision.current),
                "target": str(decision.target),
                "bump": str(decision.bump),
                "reasons": list(decision.reasons),
                "notes": [
                    {"version": str(n.version), "path": n.path, "text": n.text}
                    for n in decision.notes
                ],
                "command": command,
            },
        )
        self.say(f"held: {self.result.detail} ({'alert raised' if new else 'already alerted'})")
        if self.token:  # held since a wait for another reconcile: drop it, nothing changed
            last_good = self.result.last_good
            self._end(
                "held",
                decision.current,
                Version.parse(last_good) if last_good else None,
                self.result.detail,
            )
        return self.result

    def _deploy(self, version: Version) -> str | None:
        """Deploy ``version`` and wait until it is up; return None, or why it is not."""
        app, meta = self.infra.app, self.infra.meta
        since = datetime.now(UTC)
        try:
            with self.catalog.checkout(app.recipe, str(version), self.checkouts) as co:
                if not self.deployer.exists(app):
                    self.deployer.new(app, co, dict(meta.extra_env))
                self.deployer.generate_secrets(app, co)
                self.deployer.deploy(app, co)
            stack = Stack(self.docker, app.stack)
            wait_ready(
                stack,
                timeout=meta.deploy_timeout,
                since=since,
                version=str(version),
                probe=probe_for(self.infra.probe_mode, stack, app, meta),
            )
        except DeployError as exc:  # NotReady included: the reason and the services' report
            return str(exc)
        return None

    def _alert(self, kind: str, key: str, message: str, **details: Any) -> None:
        self.port.alert(kind, self.infra.name, key, message, details)

    def _bring_up(self, base: Version) -> None:
        with self._step(f"deploy {base}", "deploy-new", False) as step:
            failed = self._deploy(base)
            step.detail = failed or "healthy"
        if failed is None:
            self._end("applied", base, base)
            return
        self._alert(
            "infra-down",
            f"infra-down:{self.infra.name}:{base}",
            f"{self.infra.name}: {base} does not come up healthy: {failed}",
            version=str(base),
        )
        self._end(
            "failed",
            None,
            Version.parse(self.result.last_good) if self.result.last_good else None,
            failed,
        )

    def _upgrade(self, current: Version, target: Version) -> None:
        app, stateful = self.infra.app, self.infra.stateful
        snapshot = False
        if stateful:
            with self._step(f"undeploy {current}", "undeploy"):
                self.deployer.undeploy(app)
            with self._step("snapshot", "snapshot") as step:
                manifest = self.port.snapshot(self.infra.name, self.token, app.stack)
                step.detail = (
                    f"{len(manifest.get('volumes', []))} volume(s), {manifest.get('size', 0)} bytes"
                )
            snapshot = True
        with self._step(f"deploy {target}", "deploy-new", snapshot) as step:
            failed = self._deploy(target)
            step.detail = failed or "healthy"
        if failed is None:
            self._end("applied", target, target)
            return
        self._rollback(current, target, failed, restore=snapshot)

    def _rollback(
        self, back: Version, target: Version | None, failed: str, *, restore: bool
    ) -> None:
        """Go back to ``back`` (restoring the snapshot first when the data may be touched)."""
        name, app = self.infra.name, self.infra.app
        with self._step(f"roll back to {back}", "rollback") as step:
            if self.infra.stateful:
                self.deployer.undeploy(app)
                if restore:
                    self.port.restore(name, self.token)
            again = self._deploy(back)
            step.detail = (again or "healthy") + (", data restored" if restore else "")
        what = f"{target}" if target is not None else "the interrupted version"
        self._alert(
            "infra-rollback",
            f"infra-rollback:{name}:{target}",
            f"{name}: {what} failed its health gate and was rolled back to {back}: {failed}",
            target=None if target is None else str(target),
            back=str(back),
            reason=failed,
            restored=restore,
        )
        if again is not None:
            self._alert(
                "infra-down",
                f"infra-down:{name}:{back}",
                f"{name}: the rollback to {back} is not healthy either: {again}",
                version=str(back),
            )
            self._end("failed", back, back, f"{failed}; rollback: {again}")
            return
        self._end("rolled back", back, back, failed)

    def _recover(self, running: dict[str, Any]) -> None:
        """Finish a dead reconcile's job: restore where it may have touched data, then last-good."""
        back_text = running.get("from") or self.result.last_good
        step = running.get("step")
        self.say(f"an interrupted reconcile of {self.infra.name} stopped at step {step}")
        if back_text is None:  # it was the first deploy: bring the target up again
            self._bring_up(Version.parse(str(running.get("to"))))
            return
        to = running.get("to")
        self._rollback(
            Version.parse(back_text),
            Version.parse(to) if to else None,
            f"interrupted at step {step}",
            restore=self._must_restore(running),
        )
