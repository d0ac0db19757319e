"""The cold lane on the fakes: install, upgrade from the release before, tests, teardown."""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest

from ccci_core.names import AppName, cold_app
from ccci_core.recipe_meta import RecipeMeta
from ccci_plugin.cold import cold_lane
from ccci_plugin.context import Run
from ccci_plugin.errors import Cancelled, CheckFailed
from tests.plugin.conftest import BASE, FAKE_DOMAIN, FAKE_HEX, LATEST, RECIPE, FakeRecipe, verdicts
from tests.plugin.fakes import FakeApps

APP = cold_app(RECIPE, FAKE_DOMAIN, FAKE_HEX, suffix=len("data"))
PR = "refs/pull/1/head"


def detail(run: Run, name: str) -> str:
    """Return the detail of the run's step ``name``."""
    return next(step.detail for step in run.report.steps if step.name == name)


def test_a_green_run_upgrades_a_fresh_app_from_the_release_before(
    make_run: Callable[..., Run], fake_apps: FakeApps
) -> None:
    """Latest: installed, torn down, recreated at the base, upgraded in place, torn down."""
    run = make_run()

    assert APP == cold_lane(run, run.resolve())

    assert {"install": "pass", "upgrade": "pass", "recipe tests": "skip", "teardown": "pass"} == (
        verdicts(run)
    )
    assert [
        ("create", APP.domain, LATEST),
        ("up", APP.domain, LATEST),
        ("create", APP.domain, BASE),
        ("up", APP.domain, BASE),
        ("write_marker", APP.domain),
        ("up", APP.domain, LATEST),
        ("check_moved", APP.domain, LATEST),
        ("read_marker", APP.domain),
    ] == [c for c in fake_apps.calls if c[0] != "leftovers"]
    assert 2 == fake_apps.deployer.calls.verbs().count("remove")
    assert f"{BASE} → {LATEST}, data kept" == detail(run, "upgrade")
    assert {"target": LATEST, "upgrade from": BASE} == run.report.versions
    assert not fake_apps.deployer.exists(APP)


def test_the_oldest_release_has_nothing_to_upgrade_from(make_run: Callable[..., Run]) -> None:
    """The first release: the upgrade step is skipped with the reason."""
    run = make_run(BASE)

    cold_lane(run, run.resolve())

    assert ("skip", "no release older than the target to upgrade from") == (
        verdicts(run)["upgrade"],
        detail(run, "upgrade"),
    )


def test_a_pull_request_head_upgrades_from_the_latest_release(
    make_run: Callable[..., Run], fake_recipe: FakeRecipe
) -> None:
    """A chaos head: the base is the latest release, the detail names the head's commit."""
    run = make_run(PR)

    cold_lane(run, run.resolve())

    assert f"{LATEST} → chaos {fake_recipe.commit(PR)[:8]}, data kept" == detail(run, "upgrade")


def test_an_upgrade_that_loses_the_data_fails_and_still_tears_down(
    make_run: Callable[..., Run], fake_apps: FakeApps, fake_recipe: FakeRecipe
) -> None:
    """The marker is gone after the upgrade: upgrade fails, no tests run, teardown passes."""
    fake_apps.loses_data.add(fake_recipe.commit(LATEST))
    run = make_run()

    cold_lane(run, run.resolve())

    assert {"install": "pass", "upgrade": "fail", "teardown": "pass"} == verdicts(run)
    assert "the data marker written before the upgrade is gone" == detail(run, "upgrade")
    assert not fake_apps.deployer.exists(APP)


def test_a_recipe_without_a_marker_upgrades_without_checking_data(
    make_run: Callable[..., Run], fake_apps: FakeApps
) -> None:
    """No MARKER_PATH: the detail does not claim the data was kept."""
    fake_apps.meta = RecipeMeta(RECIPE, {})
    run = make_run()

    cold_lane(run, run.resolve())

    assert f"{BASE} → {LATEST}" == detail(run, "upgrade")


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        (LATEST, {"install": "fail", "teardown": "pass"}),
        (BASE, {"install": "pass", "upgrade": "fail", "teardown": "pass"}),
    ],
    ids=["target", "upgrade-base"],
)
def test_an_app_that_never_comes_up_fails_its_step_and_is_torn_down(
    make_run: Callable[..., Run],
    fake_apps: FakeApps,
    fake_recipe: FakeRecipe,
    broken: str,
    expected: dict[str, str],
) -> None:
    """The step that deployed it fails; the steps after it do not run; teardown passes."""
    fake_apps.never_up.add(fake_recipe.commit(broken))
    run = make_run()

    cold_lane(run, run.resolve())

    assert expected == verdicts(run)
    assert not fake_apps.deployer.exists(APP)


def test_a_teardown_that_leaves_something_fails(
    make_run: Callable[..., Run], fake_apps: FakeApps
) -> None:
    """Whatever is still on the engine after the remove is named in the failed teardown."""
    fake_apps.left_behind.append(f"volume {APP.stack}_data")
    run = make_run(BASE)

    with pytest.raises(CheckFailed, match="teardown left"):
        cold_lane(run, run.resolve())

    assert ("fail", f"teardown left volume {APP.stack}_data") == (
        verdicts(run)["teardown"],
        detail(run, "teardown"),
    )


def test_a_cancel_during_the_upgrades_recreate_lets_the_removal_finish(
    make_run: Callable[..., Run], fake_apps: FakeApps
) -> None:
    """A SIGTERM while the upgrade removes the installed app waits for it, then fails the step.

    An interrupted removal (``docker stack rm`` killed half-way) races the teardown's own, which
    then fails and leaves the app's volume and secrets (seen in the plugin image, on the engine).
    """
    run = make_run()
    remove, begun, ended = fake_apps.deployer.remove, [], []

    def remove_while_cancelled(app: AppName) -> None:
        begun.append(app.domain)
        if len(begun) == 1:  # the upgrade's re-create: Drone's cancel arrives in the middle
            signal.raise_signal(signal.SIGTERM)
        remove(app)
        ended.append(app.domain)

    fake_apps.deployer.remove = remove_while_cancelled  # type: ignore[method-assign]
    with run.cancel, pytest.raises(Cancelled):
        cold_lane(run, run.resolve())

    assert [APP.domain] == begun == ended  # finished, and nothing left for the teardown
    assert ("fail", "pass") == (verdicts(run)["upgrade"], verdicts(run)["teardown"])
    assert "cancelled by SIGTERM" == detail(run, "upgrade")
    assert not fake_apps.deployer.exists(APP)
