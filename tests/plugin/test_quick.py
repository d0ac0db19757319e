"""The quick lane on the fakes: reattach, upgrade, tests, and a restore whatever happened."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ccci_core.deploy.health import SETTLE
from ccci_core.names import canonical_app
from ccci_core.recipe_meta import RecipeMeta
from ccci_plugin.context import Run
from ccci_plugin.errors import Cancelled, CheckFailed
from ccci_plugin.quick import quick_lane
from tests.plugin.conftest import FAKE_DOMAIN, LATEST, RECIPE, FakeRecipe, verdicts
from tests.plugin.fakes import IMAGE, FakeAgent, FakeApps

CANONICAL = canonical_app(RECIPE, FAKE_DOMAIN, suffix=len("data"))
PR = "refs/pull/1/head"
STEPS = ["reattach", "upgrade", "recipe tests", "restore"]
PASSING_TEST = "def test_passes():\n    pass\n"
FAILING_TEST = "def test_fails():\n    assert False\n"
HEAD_IMAGE = "ccci-test/head:1"


@pytest.fixture
def canonical(fake_agent: FakeAgent, fake_apps: FakeApps) -> dict[str, object]:
    """RECIPE's canonical: promoted at LATEST, idle and clean, its env on this host."""
    fake_agent.add_canonical(RECIPE, CANONICAL.domain, LATEST)
    fake_apps.deployer.envs.add(CANONICAL.domain)
    return fake_agent.canonicals[RECIPE]


@pytest.fixture
def head(fake_recipe: FakeRecipe, fake_apps: FakeApps) -> str:
    """The commit of PR, whose services bring an image of their own."""
    sha = fake_recipe.commit(PR)
    fake_apps.images_of[sha] = {IMAGE, HEAD_IMAGE}
    return sha


def test_a_pass_restores_the_known_good_and_keeps_the_images(
    canonical: dict[str, object],
    head: str,
    make_run: Callable[..., Run],
    fake_agent: FakeAgent,
    fake_apps: FakeApps,
) -> None:
    """PASS: every step passes, the known-good is restored, the canonical idle, no image removed."""
    run = make_run(PR, quick=True, recipe_test=PASSING_TEST)
    quick_lane(run, run.resolve())

    assert {name: "pass" for name in STEPS} == verdicts(run)
    assert ["canonical", "attach", "restore"] == fake_agent.calls.verbs()
    assert (["deploy", "deploy", "undeploy"], None) == (
        [c[0] for c in fake_apps.deployer.calls],
        fake_apps.deployer.deployed(CANONICAL),
    )
    assert ("idle", "clean") == (canonical["status"], canonical["volume"])
    assert "remove_unused_images" not in fake_apps.calls.verbs()
    # The reattached known-good counts as up at once; the upgraded head must settle.
    assert [0.0, SETTLE] == fake_apps.settles
    upgrade = run.report.steps[1]
    assert f"{LATEST} → chaos {head[:8]}, data kept" == upgrade.detail
    assert f"quick pass: known-good {LATEST} restored; idle, volumes kept" == run.report.canonical
    assert {"known-good": LATEST, "target": f"chaos {head[:8]} ({PR})"} == run.report.versions


@pytest.mark.parametrize(
    ("misbehave", "failed", "reason"),
    [
        ("never_up", "upgrade", f"{CANONICAL.stack} not ready: app keeps failing"),
        ("loses_data", "upgrade", "the data marker written before the upgrade is gone"),
        ("fails_tests", "recipe tests", "1 of 1 failed: test_fails"),
    ],
    ids=["head-never-up", "head-loses-data", "recipe-test-fails"],
)
def test_a_fail_restores_and_removes_the_images_the_head_brought(
    canonical: dict[str, object],
    head: str,
    make_run: Callable[..., Run],
    fake_agent: FakeAgent,
    fake_apps: FakeApps,
    misbehave: str,
    failed: str,
    reason: str,
) -> None:
    """FAIL: the failed step says why, restore still passes and removes the head's image."""
    if misbehave == "never_up":
        fake_apps.never_up.add(head)
    elif misbehave == "loses_data":
        fake_apps.loses_data.add(head)
    run = make_run(PR, quick=True, recipe_test=FAILING_TEST)

    quick_lane(run, run.resolve())

    step = next(s for s in run.report.steps if s.name == failed)
    assert ("fail", "pass") == (str(step.verdict), verdicts(run)["restore"])
    assert step.detail.startswith(reason), step.detail
    assert ["canonical", "attach", "restore"] == fake_agent.calls.verbs()
    assert ("idle", "clean") == (canonical["status"], canonical["volume"])
    assert ("remove_unused_images", [HEAD_IMAGE]) == fake_apps.calls[-1]
    assert run.report.steps[-1].detail.endswith(f"; removed the head's images {HEAD_IMAGE}")
    assert f"quick fail: known-good {LATEST} restored; idle, volumes kept" == run.report.canonical


def test_a_reattach_that_fails_still_restores_and_never_deploys_the_head(
    canonical: dict[str, object],
    head: str,
    make_run: Callable[..., Run],
    fake_agent: FakeAgent,
    fake_apps: FakeApps,
    fake_recipe: FakeRecipe,
) -> None:
    """The known-good does not come up: no upgrade step, the restore runs, nothing to remove."""
    fake_apps.never_up.add(fake_recipe.commit(LATEST))
    run = make_run(PR, quick=True)

    quick_lane(run, run.resolve())

    assert {"reattach": "fail", "restore": "pass"} == verdicts(run)
    assert head not in [c[2] for c in fake_apps.deployer.calls if c[0] == "deploy"]
    assert ("remove_unused_images", []) == fake_apps.calls[-1]
    assert "restore" == fake_agent.calls[-1][0]


def test_a_dirty_canonical_is_restored_before_the_reattach(
    canonical: dict[str, object], make_run: Callable[..., Run]
) -> None:
    """A canonical some run left dirty: the agent restores first, and the step says so."""
    canonical["volume"] = "dirty"
    run = make_run(PR, quick=True)

    quick_lane(run, run.resolve())

    assert f"{LATEST} up (known-good data restored first)" == run.report.steps[0].detail


def test_a_recipe_without_a_marker_checks_no_data(
    canonical: dict[str, object], head: str, make_run: Callable[..., Run], fake_apps: FakeApps
) -> None:
    """No MARKER_PATH: nothing is written or read, and the upgrade does not claim data kept."""
    fake_apps.meta = RecipeMeta(RECIPE, {"WARM_CANONICAL": True})
    run = make_run(PR, quick=True)

    quick_lane(run, run.resolve())

    assert f"{LATEST} → chaos {head[:8]}" == run.report.steps[1].detail
    assert {} == fake_apps.markers


def test_a_canonical_gone_while_the_run_waited_stops_before_any_step(
    make_run: Callable[..., Run], fake_agent: FakeAgent
) -> None:
    """The registry is read again under the lock: no canonical there is a failure, no restore."""
    run = make_run(PR, quick=True)

    with pytest.raises(CheckFailed, match="disappeared while this run waited"):
        quick_lane(run, run.resolve())

    assert ([], ["canonical"]) == (run.report.steps, fake_agent.calls.verbs())


def test_a_cancel_mid_upgrade_restores_then_stops_the_run(
    canonical: dict[str, object],
    head: str,
    make_run: Callable[..., Run],
    fake_agent: FakeAgent,
    fake_apps: FakeApps,
) -> None:
    """Drone's cancel lands in the head's deploy: restore runs to its end, then Cancelled."""
    run = make_run(PR, quick=True)
    run.cancel.requested = "SIGTERM"  # what the handler records before it raises
    fake_apps.up_raises[head] = Cancelled("cancelled by SIGTERM")

    with pytest.raises(Cancelled):
        quick_lane(run, run.resolve())

    assert {"reattach": "pass", "upgrade": "fail", "restore": "pass"} == verdicts(run)
    assert ("idle", "clean") == (canonical["status"], canonical["volume"])
    assert ("remove_unused_images", [HEAD_IMAGE]) == fake_apps.calls[-1]
