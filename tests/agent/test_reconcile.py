"""``cc-ci reconcile`` as a real process on the real engine, against a real agent.

Stand-ins for both infra apps (``tests/recipes/ccci-keycloak``, stateful; ``ccci-traefik``,
stateless) are deployed by the swarm deployer from locally built images. Each test has its own
agent (so its own ``_infra`` records), its own app domains, and reaps what it deployed.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest

from ccci_core.agent_client import AgentClient
from ccci_core.names import infra_app
from tests.agent_server import ROOT, running_agent
from tests.deploy_fixtures import BASE_DOMAIN, _reap

KEYCLOAK, TRAEFIK = "ccci-keycloak", "ccci-traefik"
META = (
    'HEALTH_PATH = "/health"\n'
    'HEALTH_SERVICE = "app"\n'
    "HEALTH_PORT = 80\n"
    "DEPLOY_TIMEOUT = 60\n"
    'EXTRA_ENV = {{"WEB_IMAGE": "{image}"}}\n'
)


@dataclass
class Host:
    """One agent, the reconcile's environment, and the infra apps' names."""

    env: dict[str, str]
    agent: AgentClient
    state_dir: Path
    client: docker.DockerClient

    def reconcile(self, *args: str, **env: str) -> tuple[int, dict[str, Any], str]:
        """Run ``cc-ci reconcile ARGS --json``; return the exit code, the JSON, stderr."""
        done = subprocess.run(
            [sys.executable, "-m", "ccci_core.cli", "reconcile", *args, "--json"],
            cwd=ROOT,
            env=self.env | env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert "Traceback" not in done.stderr, done.stderr
        result = json.loads(done.stdout) if done.stdout.strip() else {}
        return done.returncode, result, done.stderr

    def start(self, *args: str) -> subprocess.Popen[str]:
        """Start ``cc-ci reconcile ARGS`` without waiting."""
        return subprocess.Popen(
            [sys.executable, "-m", "ccci_core.cli", "reconcile", *args],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def stack(self, name: str) -> str:
        """Return the stack of infra app ``name`` (``keycloak`` or ``traefik``)."""
        recipe = KEYCLOAK if name == "keycloak" else TRAEFIK
        return infra_app(recipe, self.env[f"CCCI_{name.upper()}_DOMAIN"]).stack

    def services(self, name: str) -> list[dict[str, Any]]:
        """Return the engine's view of the infra app's services (spec, version, update time)."""
        label = {"label": f"com.docker.stack.namespace={self.stack(name)}"}
        return sorted(
            (
                {
                    "name": s.name,
                    "version": s.attrs["Version"]["Index"],
                    "spec": s.attrs["Spec"],
                }
                for s in self.client.services.list(filters=label)
            ),
            key=lambda s: str(s["name"]),
        )

    def data(self, name: str = "keycloak") -> Path:
        """Return the host path of the keycloak stand-in's ``data`` volume."""
        volume = self.client.volumes.get(f"{self.stack(name)}_data")
        return Path(volume.attrs["Mountpoint"])

    def alerts(self, kind: str) -> list[dict[str, Any]]:
        """Return the agent's active alerts of ``kind``."""
        return [a for a in self.agent.get("/v1/alerts")["alerts"] if a["kind"] == kind]

    def record(self, name: str) -> dict[str, Any]:
        """Return the agent's record of infra app ``name``."""
        return dict(self.agent.get(f"/v1/infra/{name}"))


@pytest.fixture
def host(
    tmp_path: Path, docker_client: docker.DockerClient, recipes_dir: Path, web_image: str
) -> Iterator[Host]:
    """An agent and the reconcile's environment; both stand-ins are reaped after the test."""
    tests_dir = tmp_path / "tests"
    for recipe in (KEYCLOAK, TRAEFIK):
        (tests_dir / recipe).mkdir(parents=True)
        (tests_dir / recipe / "recipe_meta.py").write_text(META.format(image=web_image))
    tag = uuid.uuid4().hex[:4]
    socket, state_dir = tmp_path / "agent.sock", tmp_path / "state"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CCCI_", "DRONE_", "PLUGIN_"))
    } | {
        "CCCI_DOMAIN": BASE_DOMAIN,
        "CCCI_AGENT_SOCKET": str(socket),
        "CCCI_DEPLOYER": "swarm",
        "CCCI_RECIPES_DIR": str(recipes_dir),
        "CCCI_TESTS_DIR": str(tests_dir),
        "CCCI_HEALTH_PROBE": "exec",
        "CCCI_KEYCLOAK_RECIPE": KEYCLOAK,
        "CCCI_TRAEFIK_RECIPE": TRAEFIK,
        "CCCI_KEYCLOAK_DOMAIN": f"kc{tag}.{BASE_DOMAIN}",
        "CCCI_TRAEFIK_DOMAIN": f"tr{tag}.{BASE_DOMAIN}",
        "CCCI_APPS_DIR": str(tmp_path / "apps"),
        "CCCI_RUNS_DIR": str(tmp_path / "runs"),
        "CCCI_RECONCILE_WAIT_S": "0",
    }
    agent_env = {"CCCI_DOMAIN": BASE_DOMAIN, "CCCI_SOCKET_GROUP": "root", "CCCI_MAX_TESTS": "4"}
    try:
        with running_agent(socket, state_dir, agent_env) as agent:
            yield Host(env, agent, state_dir, docker_client)
    finally:
        for name in ("keycloak", "traefik"):
            stack = infra_app(
                KEYCLOAK if name == "keycloak" else TRAEFIK, env[f"CCCI_{name.upper()}_DOMAIN"]
            ).stack
            _reap(docker_client, stack)
            for volume in docker_client.volumes.list(filters={"name": f"{stack}_"}):
                volume.remove(force=True)


def tree(root: Path) -> dict[str, str]:
    """Return every file under ``root`` with its content's digest (links by their target)."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            found[str(path.relative_to(root))] = f"-> {path.readlink()}"
        elif path.is_file():
            found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.mark.docker
def test_first_deploy_then_a_healthy_patch_then_a_no_op_and_dry_runs(host: Host) -> None:
    """First reconcile deploys; a healthy patch is applied, last-good advances; then nothing.

    ``--dry-run`` then plans an upgrade and two holds, leaving everything byte-identical.
    """
    code, first, err = host.reconcile("keycloak", "--to", "1.0.0+20.0")
    assert (0, "applied", "1.0.0+20.0") == (code, first["outcome"], first["running"]), err
    assert ["deploy 1.0.0+20.0"] == [s["name"] for s in first["steps"]]

    code, patch, err = host.reconcile("keycloak", "--to", "1.0.1+20.0")
    assert (0, "applied") == (code, patch["outcome"]), err
    assert [
        "undeploy 1.0.0+20.0",
        "snapshot",
        "deploy 1.0.1+20.0",
    ] == [s["name"] for s in patch["steps"]]
    record = host.record("keycloak")
    assert ("1.0.1+20.0", "1.0.1+20.0", None) == (
        record["version"],
        record["last_good"],
        record["reconcile"],
    )
    ran = (host.data() / "versions-that-ran").read_text().split()
    assert ["1.0.0+20.0", "1.0.1+20.0"] == ran  # one volume, kept across the upgrade

    before, files = host.services("keycloak"), tree(host.state_dir)
    code, again, err = host.reconcile("keycloak", "--to", "1.0.1+20.0")
    assert (0, "no-op", []) == (code, again["outcome"], again["steps"]), err
    assert before == host.services("keycloak")  # nothing deployed
    assert files == tree(host.state_dir)  # no snapshot, no record written

    # --dry-run prints the plan (an upgrade, a held major, a held note) and changes nothing.
    plans = [
        host.reconcile("keycloak", "--dry-run", *args)
        for args in (["--to", "1.1.0+20.1"], [], ["--to", "1.3.0+20.3"])
    ]
    assert [(0, "plan")] * 3 == [(code, plan["outcome"]) for code, plan, _ in plans]
    assert "snapshot the volumes (last-good data)" in plans[0][1]["plan"]
    assert (
        "once migrated: cc-ci reconcile keycloak --to 2.0.0+21.0 --accept-migration"
        in plans[1][1]["plan"]
    )
    assert before == host.services("keycloak")
    assert files == tree(host.state_dir)


@pytest.mark.docker
def test_a_major_bump_and_a_skipped_migration_note_are_held_with_one_alert_each(
    host: Host,
) -> None:
    """Held targets change nothing and alert once each; --accept-migration then applies."""
    assert 0 == host.reconcile("keycloak", "--to", "1.1.0+20.1")[0]
    before = host.services("keycloak")
    for _ in range(2):
        code, major, _ = host.reconcile("keycloak")  # latest: 2.0.0+21.0
        assert (1, "held") == (code, major["outcome"])
        code, noted, _ = host.reconcile("keycloak", "--to", "1.3.0+20.3")
        assert (1, "held") == (code, noted["outcome"])
    assert "major" == major["decision"]["bump"]
    assert "release/1.2.0+20.2 asks for a manual migration" in noted["detail"]
    held = sorted(host.alerts("infra-held"), key=lambda a: a["details"]["target"])
    assert ["1.3.0+20.3", "2.0.0+21.0"] == [a["details"]["target"] for a in held]
    note = held[0]["details"]["notes"][0]
    assert ("1.2.0+20.2", True) == (note["version"], "manual migration is required" in note["text"])
    assert (
        "cc-ci reconcile keycloak --to 1.3.0+20.3 --accept-migration"
        == held[0]["details"]["command"]
    )
    assert before == host.services("keycloak")

    code, applied, err = host.reconcile("keycloak", "--to", "1.3.0+20.3", "--accept-migration")
    assert (0, "applied", "1.3.0+20.3") == (code, applied["outcome"], applied["running"]), err
    assert "1.3.0+20.3" == host.record("keycloak")["last_good"]


@pytest.mark.docker
def test_an_unhealthy_keycloak_is_rolled_back_onto_its_snapshot(host: Host) -> None:
    """The failed version's writes are gone, ours from before are back, and it is alerted."""
    assert 0 == host.reconcile("keycloak", "--to", "1.3.0+20.3")[0]
    (host.data() / "ours").write_text("written before the attempt\n")

    code, result, err = host.reconcile("keycloak", "--to", "1.4.0+20.4")

    assert (1, "rolled back", "1.3.0+20.3") == (code, result["outcome"], result["running"]), err
    assert "written before the attempt\n" == (host.data() / "ours").read_text()
    assert not (host.data() / "written-by-broken").exists()
    assert ["1.3.0+20.3", "1.3.0+20.3"] == (host.data() / "versions-that-ran").read_text().split()
    [alert] = host.alerts("infra-rollback")
    assert ("1.4.0+20.4", "1.3.0+20.3", True) == (
        alert["details"]["target"],
        alert["details"]["back"],
        alert["details"]["restored"],
    )
    assert "1.3.0+20.3" == host.record("keycloak")["last_good"]


@pytest.mark.docker
def test_a_reconcile_killed_after_the_new_version_wrote_is_finished_by_the_next(
    host: Host,
) -> None:
    """SIGKILL once 1.4 migrated the data: the next reconcile restores it and ends on 1.3."""
    assert 0 == host.reconcile("keycloak", "--to", "1.3.0+20.3")[0]
    (host.data() / "ours").write_text("known data\n")
    proc = host.start("keycloak", "--to", "1.4.0+20.4")
    marker = host.data() / "written-by-broken"
    while proc.poll() is None and not marker.exists():
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert marker.exists(), "the new version never wrote"
    assert "deploy-new" == host.record("keycloak")["reconcile"]["step"]
    status = subprocess.run(
        [sys.executable, "-m", "ccci_core.cli", "status"],
        cwd=ROOT,
        env=host.env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert (
        "INFRA  keycloak 1.3.0+20.3; reconcile 1.3.0+20.3 → 1.4.0+20.4 interrupted"
        " (the next one finishes it) at step deploy-new"
    ) in status

    code, result, err = host.reconcile("keycloak")

    assert (1, "rolled back", "1.3.0+20.3") == (code, result["outcome"], result["running"]), err
    assert not (host.data() / "written-by-broken").exists()
    assert "known data\n" == (host.data() / "ours").read_text()
    record = host.record("keycloak")
    assert (None, "1.3.0+20.3") == (record["reconcile"], record["last_good"])
    code, after, _ = host.reconcile("keycloak", "--to", "1.3.0+20.3")
    assert (0, "no-op") == (code, after["outcome"])  # healthy on last-good


@pytest.mark.docker
def test_a_realm_defers_keycloak_not_traefik_which_rolls_back_by_version(host: Host) -> None:
    """A live lease with a realm: keycloak defers (exit 0, nothing deployed); traefik goes on.

    traefik is stateless: an unhealthy release is rolled back by version alone.
    """
    lease = host.agent.post(
        "/v1/leases", {"recipe": "ccci-web", "lane": "cold", "realm": "ccci-web-abcdef"}
    )
    code, result, err = host.reconcile("keycloak", "--to", "1.0.0+20.0")
    assert (0, "deferred") == (code, result["outcome"]), err
    assert f"run {lease['id']} holds realm ccci-web-abcdef" in result["detail"]
    assert [] == host.services("keycloak")
    code, result, err = host.reconcile("traefik", "--to", "1.0.0+2.0")
    assert (0, "applied") == (code, result["outcome"]), err

    # Stateless and unhealthy: no undeploy, no snapshot; the version goes back, alerted.
    code, result, err = host.reconcile("traefik", "--to", "1.1.0+2.1")
    assert (1, "rolled back", "1.0.0+2.0") == (code, result["outcome"], result["running"]), err
    assert ["deploy 1.1.0+2.1", "roll back to 1.0.0+2.0"] == [s["name"] for s in result["steps"]]
    assert not (host.state_dir / "_infra" / "traefik").exists()  # no snapshot was ever taken
    assert 1 == len(host.alerts("infra-rollback"))
