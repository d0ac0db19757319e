"""The cold lane: a fresh app, its full lifecycle, and a teardown that deletes everything.

1. install   new app at a fresh cold domain, secrets generated, deploy the target, wait until up
2. upgrade   recreate the app at the upgrade base (the newest release older than the target),
             write a data marker, deploy the target, check it reconverged, the version label moved,
             it still answers and the marker survived; skipped with a reason when there is no base
3. tests     the recipe's own pytest files against the live app
4. teardown  always: stack, volumes, secrets, env removed, and proven gone

A green cold run on latest of a recipe with ``WARM_CANONICAL`` then promotes its canonical
(:mod:`.promote`).
"""

from __future__ import annotations

from ccci_core.errors import CcciError
from ccci_core.names import AppName, cold_app

from .context import Run, Target
from .errors import CheckFailed
from .recipe_tests import recipe_tests_step
from .upgrade import upgrade_in_place


def cold_lane(run: Run, target: Target) -> AppName:
    """Run the cold lane's steps into ``run.report``; return the app (already torn down)."""
    app = cold_app(run.recipe, run.domain, run.run_hex, suffix=target.suffix)
    report = run.report
    report.versions["target"] = target.label()
    report.say(f"cold app {app.domain} (stack {app.stack})")
    try:
        with report.step("install") as step:
            with run.checkout(target) as co:
                run.apps.create(app, co)
                deployed = run.apps.up(app, co)
            step.detail = f"{deployed.version or 'chaos'} up"
        base = run.upgrade_base(target)
        with report.step("upgrade") as step:
            if base is None:
                step.skip("no release older than the target to upgrade from")
            else:
                report.versions["upgrade from"] = str(base)
                # The upgrade starts from a fresh app at the base. A removal is never left
                # half-done (a killed `docker stack rm` races the teardown's own and fails it,
                # leaving volumes and secrets): a cancel waits for it, then stops this step.
                with run.cancel.shield():
                    _teardown(run, app)
                run.cancel.check()
                with run.checkout(base) as co:
                    run.apps.create(app, co)
                    before = run.apps.up(app, co)
                marker = run.apps.write_marker(app)
                step.detail = upgrade_in_place(run, app, before, marker, target)
        recipe_tests_step(run, app, target)
    except CcciError:
        pass  # the failed step is in the report; teardown below decides nothing differently
    finally:
        with run.cancel.shield(), report.step("teardown") as step:
            _teardown(run, app)
            step.detail = "stack, volumes, secrets and env removed; nothing left"
    run.cancel.check()  # a cancel swallowed above or deferred by the teardown stops the run here
    return app


def _teardown(run: Run, app: AppName) -> None:
    """Remove the app and prove nothing of it is left on the engine."""
    if run.apps.deployer.exists(app):
        run.apps.deployer.remove(app)
    left = run.apps.leftovers(app)
    if left:
        raise CheckFailed(f"teardown left {', '.join(left)}")
