"""Promotion on the fakes: when a run may promote, and what a re-seed asks of the agent."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ccci_core.agent_client import AgentClientError
from ccci_core.deploy.errors import DeployError, NotReady
from ccci_core.names import canonical_app
from ccci_core.recipe_meta import RecipeMeta
from ccci_core.versions import Version
from ccci_plugin.context import Run, Target
from ccci_plugin.promote import promote, should_promote
from tests.plugin.conftest import FAKE_DOMAIN, LATEST, RECIPE, FakeRecipe, verdicts
from tests.plugin.fakes import FakeAgent, FakeApps

CANONICAL = canonical_app(RECIPE, FAKE_DOMAIN, suffix=len("data"))
RELEASE = Target(None, "1" * 40, Version.parse(LATEST), len("data"))
CHAOS = Target(None, "2" * 40, None, len("data"))
A_REF = "a run with a REF (a pull request) never promotes"
UNENROLLED = "the recipe is not enrolled (WARM_CANONICAL is not True)"


@pytest.mark.parametrize(
    ("ref", "quick", "lane", "enrolled", "target", "red", "reason"),
    [
        (None, False, "cold", True, RELEASE, False, None),
        ("refs/pull/1/head", False, "cold", True, RELEASE, False, A_REF),
        (LATEST, False, "cold", True, RELEASE, False, A_REF),
        (None, True, "cold", True, RELEASE, False, "a quick run never promotes"),
        (None, False, "quick", True, RELEASE, False, "a quick run never promotes"),
        (None, False, "cold", False, RELEASE, False, UNENROLLED),
        (None, False, "cold", True, CHAOS, False, "latest is not a release (no version tag)"),
        (None, False, "cold", True, RELEASE, True, "the cold run is red"),
    ],
    ids=["green-latest", "pull", "tag", "quick-fallback", "quick", "unenrolled", "chaos", "red"],
)
def test_only_a_green_cold_run_on_a_released_latest_promotes(
    make_run: Callable[..., Run],
    fake_apps: FakeApps,
    ref: str | None,
    quick: bool,
    lane: str,
    enrolled: bool,
    target: Target,
    red: bool,
    reason: str | None,
) -> None:
    """should_promote says None only then; otherwise why not."""
    fake_apps.meta = RecipeMeta(RECIPE, {"WARM_CANONICAL": enrolled})
    run = make_run(ref, quick)
    if red:
        run.report.stop("a step failed")

    assert reason == should_promote(run, target, lane)


def test_the_first_promote_creates_the_canonical_and_records_it(
    make_run: Callable[..., Run], fake_agent: FakeAgent, fake_apps: FakeApps
) -> None:
    """No canonical yet: no seed, the app is created, deployed, undeployed, then promoted."""
    run = make_run()
    target = run.resolve()

    promote(run, target)

    assert "pass" == verdicts(run)["promote"]
    assert ["canonical", "promote"] == fake_agent.calls.verbs()
    assert (RECIPE, CANONICAL.domain, LATEST, target.commit, None) == fake_agent.calls[-1][1:]
    assert ["create", "up"] == fake_apps.calls.verbs()
    assert "undeploy" == fake_apps.deployer.calls[-1][0]
    assert fake_apps.deployer.deployed(CANONICAL) is None
    snapshot = fake_agent.canonicals[RECIPE]["snapshot"]["id"]
    assert f"promoted nothing → {LATEST} (snapshot {snapshot})" == run.report.canonical


def test_a_repromote_seeds_first_and_keeps_the_canonicals_secrets(
    make_run: Callable[..., Run], fake_agent: FakeAgent, fake_apps: FakeApps
) -> None:
    """An existing canonical: seed (the agent restores first), secrets topped up, token carried."""
    fake_agent.add_canonical(RECIPE, CANONICAL.domain, "1.0.0+1.0")
    fake_apps.deployer.envs.add(CANONICAL.domain)
    run = make_run()

    promote(run, run.resolve())

    assert ["canonical", "seed", "promote"] == fake_agent.calls.verbs()
    assert fake_agent.seeds[RECIPE] == fake_agent.calls[-1][-1]
    assert ["up"] == fake_apps.calls.verbs()  # no create: the env and its secrets stay
    assert ("generate_secrets", CANONICAL.domain) in fake_apps.deployer.calls
    assert run.report.canonical.startswith(f"promoted 1.0.0+1.0 → {LATEST}")


@pytest.mark.parametrize(
    ("fail", "error"),
    [
        ("up", NotReady(CANONICAL.stack, "app keeps failing", [])),
        ("promote", AgentClientError(409, "volumes still in use")),
    ],
    ids=["never-up", "agent-refuses"],
)
def test_a_failed_reseed_is_left_undeployed_and_keeps_the_known_good(
    make_run: Callable[..., Run],
    fake_agent: FakeAgent,
    fake_apps: FakeApps,
    fake_recipe: FakeRecipe,
    fail: str,
    error: Exception,
) -> None:
    """The step fails with the error, the canonical is undeployed, the old record stands."""
    fake_agent.add_canonical(RECIPE, CANONICAL.domain, "1.0.0+1.0")
    fake_apps.deployer.envs.add(CANONICAL.domain)
    if fail == "up":
        fake_apps.never_up.add(fake_recipe.commit(LATEST))
    else:
        fake_agent.refuse["promote"] = AgentClientError(409, "volumes still in use")
    run = make_run()

    with pytest.raises(type(error)):
        promote(run, run.resolve())

    assert "fail" == verdicts(run)["promote"]
    assert "re-seed failed; known-good 1.0.0+1.0 kept" == run.report.canonical
    assert fake_apps.deployer.deployed(CANONICAL) is None
    assert ("undeploy", CANONICAL.domain) == fake_apps.deployer.calls[-1]
    assert "1.0.0+1.0" == fake_agent.canonicals[RECIPE]["version"]


def test_a_reseed_that_cannot_even_undeploy_says_so_in_the_notes(
    make_run: Callable[..., Run], fake_apps: FakeApps, fake_recipe: FakeRecipe
) -> None:
    """The undeploy after a failed re-seed fails too: noted, the first error is what is raised."""
    fake_apps.never_up.add(fake_recipe.commit(LATEST))
    fake_apps.deployer.refuse["undeploy"] = DeployError("docker stack rm failed")
    run = make_run()

    with pytest.raises(NotReady):
        promote(run, run.resolve())

    assert "re-seed failed; no known-good yet" == run.report.canonical
    assert [f"could not undeploy {CANONICAL.domain} after a failed re-seed: "] == [
        note.split("docker")[0] for note in run.report.notes
    ]
