"""The cold lane and promotion, end to end on the real engine with a real host agent."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import pytest

from ccci_core.agent_client import AgentClientError
from ccci_core.names import canonical_app, cold_app
from ccci_plugin.agent import SocketAgent
from ccci_plugin.report import Verdict
from tests.deploy_fixtures import BASE_DOMAIN, SUFFIX
from tests.plugin.conftest import RECIPE, Agent, Heads, Outcome, _pr_head

pytestmark = pytest.mark.docker

CANONICAL = canonical_app(RECIPE, BASE_DOMAIN, suffix=SUFFIX)
PASS, FAIL, SKIP = Verdict.PASS, Verdict.FAIL, Verdict.SKIP


def steps(outcome: Outcome) -> dict[str, Verdict]:
    """Return each step's verdict."""
    return {step.name: step.verdict for step in outcome.run.report.steps}


def assert_cold_app_gone(outcome: Outcome) -> None:
    """Nothing of the run's cold app is left on the engine or disk."""
    app = cold_app(RECIPE, BASE_DOMAIN, outcome.run.run_hex, suffix=SUFFIX)
    assert [] == outcome.run.apps.leftovers(app)
    assert not outcome.run.apps.deployer.exists(app)
    assert not outcome.run.run_dir.exists()


@pytest.fixture(scope="module")
def seeded(run_recipe: Callable[..., Outcome]) -> Outcome:
    """The module's first run: green, cold, on latest — it seeds the canonical."""
    return run_recipe()


def test_green_cold_run_on_latest_seeds_the_canonical(
    seeded: Outcome, agent: Agent, docker_client: docker.DockerClient
) -> None:
    """Every step passes, nothing of the run is left, the canonical is seeded and idle."""
    expected = {"lease": PASS, "install": PASS, "upgrade": PASS, "recipe tests": PASS}
    expected |= {"teardown": PASS, "promote": PASS}
    assert (0, expected) == (seeded.code, steps(seeded)), seeded.log
    assert_cold_app_gone(seeded)
    record = json.loads((agent.state_dir / RECIPE / "canonical.json").read_text())
    assert ("1.1.0+1.1", "idle", "clean", CANONICAL.domain) == (
        record["version"],
        record["status"],
        record["volume"],
        record["domain"],
    )
    manifest = json.loads((agent.state_dir / RECIPE / "snapshot" / "manifest.json").read_text())
    assert [f"{CANONICAL.stack}_data"] == [v["name"] for v in manifest["volumes"]]
    assert [] == docker_client.services.list(filters={"name": CANONICAL.stack})
    volumes = docker_client.volumes.list(filters={"name": CANONICAL.stack})
    assert [f"{CANONICAL.stack}_data"] == [v.name for v in volumes]
    assert "upgrade from 1.0.0+1.0" in seeded.run.report.summary()
    upgrade = next(step for step in seeded.run.report.steps if step.name == "upgrade")
    assert "1.0.0+1.0 → 1.1.0+1.1, data kept" == upgrade.detail


@pytest.mark.parametrize(
    ("ref", "failed"),
    [(Heads.crashing, "install"), (Heads.wrong_version, "recipe tests")],
    ids=["never-healthy", "recipe-test-fails"],
)
def test_red_cold_run_tears_down_and_keeps_the_canonical(
    seeded: Outcome, run_recipe: Callable[..., Outcome], agent: Agent, ref: str, failed: str
) -> None:
    """A red run exits 1, leaves nothing, and the known-good is byte-identical."""
    before = agent.fingerprint()
    outcome = run_recipe(ref)
    verdicts = steps(outcome)
    assert (1, FAIL, PASS) == (outcome.code, verdicts[failed], verdicts["teardown"]), outcome.log
    assert "promote" not in verdicts
    assert_cold_app_gone(outcome)
    assert before == agent.fingerprint()


def test_cold_run_with_a_ref_never_promotes(
    seeded: Outcome, run_recipe: Callable[..., Outcome], agent: Agent
) -> None:
    """A green run with a REF leaves the canonical untouched."""
    before = agent.fingerprint()
    outcome = run_recipe("1.1.0+1.1")
    assert 0 == outcome.code, outcome.log
    assert "promote" not in steps(outcome)
    assert outcome.run.report.canonical.startswith("untouched (a run with a REF")
    assert before == agent.fingerprint()


def test_second_green_run_on_latest_repromotes_in_place(
    seeded: Outcome, run_recipe: Callable[..., Outcome], agent: Agent
) -> None:
    """A later green run re-seeds the same canonical: a new snapshot, the same volumes."""
    before = json.loads((agent.state_dir / RECIPE / "canonical.json").read_text())
    outcome = run_recipe()
    after = json.loads((agent.state_dir / RECIPE / "canonical.json").read_text())
    assert (0, PASS) == (outcome.code, steps(outcome).get("promote")), outcome.log
    assert before["snapshot_id"] != after["snapshot_id"]
    assert (before["domain"], "1.1.0+1.1", "clean") == (
        after["domain"],
        after["version"],
        after["volume"],
    )


class RefusingPromote:
    """The real agent adapter, except that promote meets the agent's 409 (volumes in use)."""

    def __init__(self, real: SocketAgent) -> None:
        self.real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def promote(self, *args: Any) -> dict[str, Any]:
        raise AgentClientError(409, "volumes still in use after 60s (warm-x_data: holder)")


def test_an_agent_refusal_mid_run_is_a_red_run_not_bad_input(
    seeded: Outcome, run_recipe: Callable[..., Outcome], agent: Agent
) -> None:
    """A 409 at promote, after install, tests and teardown: exit 1 with the summary, not 2."""
    before = agent.fingerprint()

    outcome = run_recipe(agent_adapter=RefusingPromote)

    assert (1, FAIL) == (outcome.code, steps(outcome)["promote"]), outcome.log
    assert {"install": PASS, "teardown": PASS} == {
        k: steps(outcome)[k] for k in ("install", "teardown")
    }
    assert "verdict   FAIL" in outcome.log
    result = json.loads((outcome.run.run_dir.parent / "result.json").read_text())
    assert ("fail", 1) == (result["verdict"], result["exit"])
    assert before == agent.fingerprint()


def test_a_run_tests_the_pinned_sha_though_the_pull_request_moved(
    seeded: Outcome, run_recipe: Callable[..., Outcome], plugin_recipes: Path
) -> None:
    """CCCI_SHA of a harmless head is tested though the PR now points at a crashing one."""
    repo = plugin_recipes / RECIPE
    # The latest release as a PR (a comment added): healthy, its tests pass.
    harmless = _pr_head(repo, 6, {"compose.yml": lambda t: t + "# PR 6\n"})
    entry, exit_at_once = 'command: ["sh", "/entrypoint.sh"]', 'command: ["sh", "-c", "exit 3"]'
    _pr_head(repo, 6, {"compose.yml": lambda t: t.replace(entry, exit_at_once)})  # pushed since

    outcome = run_recipe("refs/pull/6/head", sha=harmless)

    assert 0 == outcome.code, outcome.log
    assert f"commit: {harmless} (pinned by CCCI_SHA)" in outcome.log.splitlines()
    result = json.loads((outcome.run.run_dir.parent / "result.json").read_text())
    assert (harmless, True) == (result["commit"], result["sha_pinned"])
