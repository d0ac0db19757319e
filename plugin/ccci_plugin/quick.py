"""The quick lane: reattach the data-warm canonical, upgrade it in place to the PR head, assert.

1. reattach      restore the known-good data first if the canonical's volume is not clean, mark
                 it dirty (anything deployed on it may write), deploy ``warm-<recipe>`` at its
                 known-good version on its retained volumes, wait until up, write a data marker
2. upgrade       deploy the PR head (a chaos deploy) once; check it reconverged, the version
                 label moved, it still answers and the marker survived
3. recipe tests  the recipe's own tests against the upgraded canonical
4. restore       always: undeploy (volumes kept) and restore the known-good snapshot at once —
                 on PASS as on FAIL — so an idle canonical's volume always equals its known-good;
                 on FAIL also remove the images the head brought that nothing else uses

The lane never promotes: ``canonical.json`` and the snapshot are never written (the dirty mark
lives in the agent's ``live.json``). A run killed before step 4 leaves the canonical marked dirty,
and the next reattach restores it first: a canonical is never deployed at its known-good version
on data another version touched.
"""

from __future__ import annotations

import time
from typing import Any

from ccci_core.errors import CcciError
from ccci_core.names import AppName
from ccci_core.versions import Version

from .context import Run, Target
from .errors import CheckFailed
from .recipe_tests import recipe_tests_step
from .upgrade import upgrade_in_place


def canonical_of(record: dict[str, Any], recipe: str) -> AppName:
    """Return the canonical app a registry entry names."""
    return AppName(recipe, "canonical", str(record["domain"]), str(record["stack"]))


def quick_lane(run: Run, target: Target) -> None:
    """Run the quick lane's steps against the recipe's canonical into ``run.report``.

    Call it holding the canonical's lock (the lease): the registry entry is read here, under the
    lock, because another run may have changed it (promoted, or died leaving it dirty) while this
    one waited.
    """
    report, apps, agent = run.report, run.apps, run.agent
    record = agent.canonical(run.recipe)
    if record is None:
        raise CheckFailed(f"the canonical of {run.recipe} disappeared while this run waited")
    app = canonical_of(record, run.recipe)
    known_good = Version.parse(str(record["version"]))
    report.versions["known-good"] = str(known_good)
    report.versions["target"] = target.label()
    report.say(f"canonical {app.domain} (stack {app.stack}), known-good {known_good}")
    head_images: set[str] = set()
    try:
        with report.step("reattach") as step:
            restored = agent.attach(run.recipe)  # the agent restores first if it must
            with run.checkout(known_good) as co:
                # No settle window: the known-good on its known-good data is what a green cold
                # run proved; the upgrade replaces this task at once and settles its own.
                before = apps.up(app, co, settle=0.0)
            marker = apps.write_marker(app)
            step.detail = f"{known_good} up" + (
                " (known-good data restored first)" if restored else ""
            )
        with report.step("upgrade") as step:
            old_images = apps.images(app)
            try:
                step.detail = upgrade_in_place(run, app, before, marker, target)
            finally:  # what the head brought, whether or not it came up
                head_images = apps.images(app) - old_images
        recipe_tests_step(run, app, target)
    except CcciError:
        pass  # the failed step is in the report; the restore below runs either way
    finally:
        with run.cancel.shield(), report.step("restore") as step:
            started = time.monotonic()
            apps.deployer.undeploy(app)
            undeployed = time.monotonic()
            agent.restore(run.recipe)
            restore_s, undeploy_s = time.monotonic() - undeployed, undeployed - started
            step.detail = (
                f"known-good data restored in {restore_s:.1f}s (undeploy {undeploy_s:.1f}s)"
            )
            if not report.passed:
                removed = apps.remove_unused_images(head_images)
                if removed:
                    step.detail += f"; removed the head's images {', '.join(removed)}"
        verdict = "pass" if report.passed else "fail"
        report.canonical = f"quick {verdict}: known-good {known_good} restored; idle, volumes kept"
    run.cancel.check()  # a cancel swallowed above or deferred by the restore makes the run red
