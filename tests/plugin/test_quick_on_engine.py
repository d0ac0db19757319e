"""The quick lane end to end, and the WC9 rollback proof, on the real engine and agent."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import pytest

from ccci_core.names import canonical_app
from ccci_plugin.report import Verdict
from tests.deploy_fixtures import BASE_DOMAIN, SUFFIX
from tests.images import image_exists
from tests.plugin.conftest import KNOWN_GOOD_TEST, RECIPE, Agent, Heads, Outcome
from tests.plugin.fakes import FakeRealms

pytestmark = pytest.mark.docker

CANONICAL = canonical_app(RECIPE, BASE_DOMAIN, suffix=SUFFIX)
VOLUME = f"{CANONICAL.stack}_data"
PASS, FAIL = Verdict.PASS, Verdict.FAIL
QUICK_STEPS = ["lease", "reattach", "upgrade", "recipe tests", "restore"]


def steps(outcome: Outcome) -> dict[str, Verdict]:
    """Return each step's verdict."""
    return {step.name: step.verdict for step in outcome.run.report.steps}


@pytest.fixture(scope="module")
def fallback(run_recipe: Callable[..., Outcome]) -> Outcome:
    """A quick run before any canonical exists (it falls back to a cold run)."""
    return run_recipe(Heads.harmless, quick=True)


@pytest.fixture(scope="module")
def seeded(fallback: Outcome, run_recipe: Callable[..., Outcome]) -> Outcome:
    """A green cold run on latest, after the fallback: it seeds the canonical."""
    outcome = run_recipe()
    assert 0 == outcome.code, outcome.log
    return outcome


def assert_canonical_at_rest(
    agent: Agent, docker_client: docker.DockerClient, scratch: Path
) -> None:
    """The canonical is idle, undeployed, its volume kept and equal to the known-good snapshot."""
    view = agent.client().get(f"/v1/canonicals/{RECIPE}")
    assert ("idle", "clean", None) == (view["status"], view["volume"], view["restore_pending"])
    assert [] == docker_client.services.list(filters={"name": CANONICAL.stack})
    mountpoint = Path(docker_client.volumes.get(VOLUME).attrs["Mountpoint"])
    assert agent.volume_equals_snapshot(VOLUME, mountpoint, scratch)


def test_quick_without_a_canonical_falls_back_to_cold(fallback: Outcome, agent: Agent) -> None:
    """The first log line says so, the PR is tested cold, and nothing is promoted."""
    first = fallback.log.splitlines()[0]
    assert first.startswith(f"cc-ci: quick lane → full cold run (no canonical of {RECIPE}")
    assert (0, PASS, PASS) == (
        fallback.code,
        steps(fallback)["install"],
        steps(fallback)["teardown"],
    )
    assert "promote" not in steps(fallback)
    assert not (agent.state_dir / RECIPE).exists()
    # The summary and the result name the lane that ran, and why it was not the one asked for.
    reason = f"no canonical of {RECIPE}"
    assert f"lane      cold (quick asked: {reason})" in fallback.log.splitlines()
    result = json.loads((fallback.run.run_dir.parent / "result.json").read_text())
    assert ("cold", "quick", reason) == (result["lane"], result["asked"], result["fallback"])


def test_quick_pass_keeps_the_known_good(
    seeded: Outcome,
    run_recipe: Callable[..., Outcome],
    agent: Agent,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    """PASS: exit 0, registry and snapshot byte-identical, canonical idle with its volume."""
    before = agent.fingerprint()
    outcome = run_recipe(Heads.harmless, quick=True)
    assert (0, QUICK_STEPS) == (outcome.code, list(steps(outcome))), outcome.log
    assert {PASS} == set(steps(outcome).values())
    assert before == agent.fingerprint()
    assert_canonical_at_rest(agent, docker_client, tmp_path)


def test_quick_fail_with_a_bad_image_restores_and_removes_it(
    seeded: Outcome,
    run_recipe: Callable[..., Outcome],
    agent: Agent,
    docker_client: docker.DockerClient,
    bad_image: str,
    tmp_path: Path,
) -> None:
    """FAIL: exit 1, known-good intact and restored, redeployable, the head's image gone."""
    before = agent.fingerprint()
    outcome = run_recipe(Heads.bad_image, quick=True)
    assert (1, FAIL, PASS) == (
        outcome.code,
        steps(outcome)["upgrade"],
        steps(outcome)["restore"],
    ), outcome.log
    assert before == agent.fingerprint()
    assert_canonical_at_rest(agent, docker_client, tmp_path)
    assert not image_exists(bad_image)
    run = outcome.run
    with run.checkout(run.catalog.latest(RECIPE)) as known_good:  # type: ignore[arg-type]
        run.apps.up(CANONICAL, known_good)  # waits until it answers on /version
    run.apps.deployer.undeploy(CANONICAL)
    agent.client().post(f"/v1/canonicals/{RECIPE}/restore")


def test_quick_fail_after_the_head_migrated_data_restores(
    seeded: Outcome,
    run_recipe: Callable[..., Outcome],
    make_tests_dir: Callable[..., Path],
    agent: Agent,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    """A head that migrates data and then fails its tests leaves the known-good data behind."""
    before = agent.fingerprint()
    outcome = run_recipe(Heads.migrating, quick=True, tests_dir=make_tests_dir(KNOWN_GOOD_TEST))
    assert (1, FAIL) == (outcome.code, steps(outcome)["recipe tests"]), outcome.log
    assert before == agent.fingerprint()
    assert_canonical_at_rest(agent, docker_client, tmp_path)


def test_a_pass_that_migrated_data_never_reaches_the_next_reattach(
    seeded: Outcome,
    run_recipe: Callable[..., Outcome],
    make_tests_dir: Callable[..., Path],
    agent: Agent,
) -> None:
    """After a PASS whose head migrated data, the next quick run sees known-good data."""
    migrated = run_recipe(Heads.migrating, quick=True)
    assert 0 == migrated.code, migrated.log
    checking = run_recipe(Heads.harmless, quick=True, tests_dir=make_tests_dir(KNOWN_GOOD_TEST))
    assert (0, PASS) == (checking.code, steps(checking)["recipe tests"]), checking.log


def test_two_quick_runs_on_one_recipe_are_serialised(
    seeded: Outcome, run_recipe: Callable[..., Outcome], agent: Agent
) -> None:
    """Concurrent quick runs never attach the canonical together; both pass."""
    before = agent.fingerprint()
    with ThreadPoolExecutor(2) as pool:
        runs = list(
            pool.map(lambda _: run_recipe(Heads.harmless, quick=True, lease_wait=300), range(2))
        )
    assert [0, 0] == [r.code for r in runs], [r.log for r in runs]
    waited = ["another run holds this recipe's canonical" in r.log for r in runs]
    assert [False, True] == sorted(waited)
    assert before == agent.fingerprint()


REALM_TEST = """\"\"\"The recipe's test sees the run's own realm.\"\"\"

import os
import re


def test_realm_is_the_runs():
    \"\"\"CCCI_REALM is <recipe>-<6hex>.\"\"\"
    assert re.fullmatch(r"ccci-web-[0-9a-f]{6}", os.environ["CCCI_REALM"])
"""


def test_a_keycloak_dependent_run_gets_its_own_realm(
    seeded: Outcome,
    run_recipe: Callable[..., Outcome],
    make_tests_dir: Callable[..., Path],
) -> None:
    """DEPS = ["keycloak"]: the run's realm is created, handed to the tests, deleted at the end."""
    realms = FakeRealms()
    tests_dir = make_tests_dir(REALM_TEST, meta='DEPS = ["keycloak"]\n')
    outcome = run_recipe(Heads.harmless, quick=True, tests_dir=tests_dir, realms=realms)
    realm = f"{RECIPE}-{outcome.run.run_hex}"
    assert (0, PASS) == (outcome.code, steps(outcome)["realm"]), outcome.log
    assert ([realm], [realm]) == (realms.created, realms.deleted)
