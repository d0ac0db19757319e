"""The janitor's choices on an in-memory engine: only dead cold runs of this domain, by hex.

The real SIGKILLed run is ``test_run_cli.py::test_the_janitor_removes_a_killed_runs_leftovers``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from ccci_core.docker_engine import SECRET_OWNER, STACK_LABEL
from ccci_core.names import AppName, cold_app, stack_name
from ccci_plugin.janitor import Janitor, cold_domain, stack_of_object
from tests.fake_docker import FakeDocker

BASE = "ci.example.org"
DEAD, LIVE = "aaaaaa", "bbbbbb"


class Remover:
    """The deployer's remove, recorded (the engine part is the swarm deployer's, tested there)."""

    def __init__(self, docker: FakeDocker) -> None:
        self.docker, self.removed = docker, []  # type: ignore[var-annotated]

    def remove(self, app: AppName) -> None:
        self.removed.append(app.stack)
        for name in list(self.docker.service_list):
            if name.startswith(f"{app.stack}_"):
                self.docker.remove_service(name)


def _stack(recipe: str, run_hex: str) -> str:
    return cold_app(recipe, BASE, run_hex, suffix=6).stack


@pytest.fixture
def engine() -> FakeDocker:
    """A dead and a live cold run, a canonical, an infra app, and a run on another domain."""
    docker = FakeDocker()
    for stack in (_stack("web", DEAD), _stack("web", LIVE)):
        docker.add_service(stack, "app")
        docker.object_list[("volume", f"{stack}_data")] = {STACK_LABEL: stack}
        docker.object_list[("secret", f"{stack}_key_v1")] = {SECRET_OWNER: stack}
    docker.add_service(stack_name(f"warm-web.{BASE}"), "app")
    docker.add_service(stack_name(f"proxy-cccccc.{BASE}"), "app")  # infra with a hex-like name
    docker.add_service(_stack("web", DEAD).replace("ci_example_org", "other_org"), "app")
    # What a run killed after its services were gone leaves: objects only.
    orphan = _stack("db", "dddddd")
    docker.object_list[("config", f"{orphan}_entrypoint_v1")] = {}
    return docker


def janitor(engine: FakeDocker, tmp_path: Path, leases: list[dict[str, Any]]) -> Janitor:
    """A janitor over ``engine`` with ``leases`` live."""
    return Janitor(
        docker=engine,
        deployer=Remover(engine),  # type: ignore[arg-type]
        base_domain=BASE,
        runs_dir=tmp_path / "runs",
        env_dirs=[tmp_path / "apps"],
        live_leases=lambda: leases,
        never={stack_name(f"proxy-cccccc.{BASE}")},
        say=lambda line: None,
    )


def test_only_dead_cold_runs_of_this_domain_go(engine: FakeDocker, tmp_path: Path) -> None:
    """The dead run and the objects-only one go; live, canonical, infra and foreign stay."""
    jan = janitor(engine, tmp_path, [{"recipe": "web", "run_hex": LIVE}])
    swept = jan.sweep()
    assert sorted([_stack("db", "dddddd"), _stack("web", DEAD)]) == sorted(jan.deployer.removed)  # type: ignore[attr-defined]
    left = {s.stack for s in engine.services()}
    assert {
        _stack("web", LIVE),
        stack_name(f"warm-web.{BASE}"),
        stack_name(f"proxy-cccccc.{BASE}"),
        _stack("web", DEAD).replace("ci_example_org", "other_org"),
    } == left
    assert [] == engine.named("config", _stack("db", "dddddd"))  # abra's unlabelled objects too
    assert any(line.startswith(f"stack {_stack('web', LIVE)}") for line in swept.kept)


def test_a_lease_without_a_hex_keeps_its_recipes_leftovers(
    engine: FakeDocker, tmp_path: Path
) -> None:
    """An older plugin's lease names no hex: every leftover of its recipe is kept."""
    jan = janitor(engine, tmp_path, [{"recipe": "web"}])
    jan.sweep()
    assert [_stack("db", "dddddd")] == jan.deployer.removed  # type: ignore[attr-defined]


def test_dry_run_removes_nothing(engine: FakeDocker, tmp_path: Path) -> None:
    """--dry-run lists the dead run and removes nothing."""
    before = (dict(engine.service_list), dict(engine.object_list))
    swept = janitor(engine, tmp_path, []).sweep(dry_run=True)
    assert f"stack {_stack('web', DEAD)} (would remove)" in swept.removed
    assert before == (engine.service_list, engine.object_list)


def test_run_dirs_and_env_files_go_only_when_older_than_a_lease(tmp_path: Path) -> None:
    """A run checks out before it leases: a fresh run dir is kept, an old one goes."""
    runs, apps = tmp_path / "runs", tmp_path / "apps"
    fresh, old = runs / f"web-{DEAD}", runs / "db-dddddd"
    for folder in (fresh / "recipes", old / "recipes"):
        folder.mkdir(parents=True)
    apps.mkdir()
    env = apps / f"db-dddddd.{BASE}.env"
    env.write_text("TYPE=db\n")
    (apps / f"warm-web.{BASE}.env").write_text("TYPE=web\n")
    (apps / f"proxy-cccccc.{BASE}.env").write_text("TYPE=traefik\n")
    (runs / "reconcile-keycloak").mkdir()
    past = time.time() - 3600
    for path in (old, old / "recipes", env):
        os.utime(path, (past, past))
    swept = janitor(FakeDocker(), tmp_path, []).sweep()
    assert (True, False, False) == (fresh.exists(), old.exists(), env.exists())
    assert {f"warm-web.{BASE}.env", f"proxy-cccccc.{BASE}.env"} == {p.name for p in apps.iterdir()}
    assert (runs / "reconcile-keycloak").exists()
    assert any(str(fresh) in line for line in swept.kept)


@pytest.mark.parametrize(
    ("stack", "cold"),
    [
        (_stack("web", DEAD), True),
        (stack_name(f"warm-web-{DEAD}.{BASE}"), False),  # a canonical, however it is spelled
        (stack_name(f"web.{BASE}"), False),  # no hex
        (stack_name(f"web-{DEAD}.other.org"), False),  # another CI domain
        (stack_name(f"web-{DEAD}.x.{BASE}"), False),  # a deeper name is not a run's
        (f"web-{DEAD}_ci_example_orgx", False),
    ],
)
def test_cold_stacks_are_told_by_their_naming_alone(stack: str, cold: bool) -> None:
    """Only ``<recipe>-<hex>_<domain>`` on this domain is a cold run's stack."""
    assert cold == (cold_domain(stack, BASE) is not None)
    assert (stack if cold else None) == stack_of_object(f"{stack}_data", BASE)


class FakeRealms:
    """Keycloak's realms, in memory."""

    def __init__(self, names: list[str]) -> None:
        self.names = set(names)

    def create(self, realm: str) -> None:
        self.names.add(realm)

    def delete(self, realm: str) -> None:
        self.names.discard(realm)

    def list(self) -> list[str]:
        return sorted(self.names)

    def exists(self, realm: str) -> bool:
        return realm in self.names


def test_only_orphan_run_realms_are_deleted(engine: FakeDocker, tmp_path: Path) -> None:
    """A run-shaped realm whose hex has no lease (its stack is dead too) goes; other shapes stay."""
    realms = FakeRealms(["master", "shared", f"web-{DEAD}", f"web-{LIVE}", "db-dddddd", "x-eeeeee"])
    jan = janitor(engine, tmp_path, [{"recipe": "web", "run_hex": LIVE}])
    jan.realms = realms
    dry = jan.sweep(dry_run=True)
    assert {
        "master",
        "shared",
        f"web-{DEAD}",
        f"web-{LIVE}",
        "db-dddddd",
        "x-eeeeee",
    } == realms.names
    assert {f"web-{DEAD}", "db-dddddd", "x-eeeeee"} == {r.split()[0] for r in dry.realms}
    jan.sweep()
    assert {"master", "shared", f"web-{LIVE}"} == realms.names
