"""Promotion (WC5): a green cold run on latest re-seeds the recipe's data-warm canonical.

The canonical app ``warm-<recipe>`` is deployed at the green-verified version on its own volumes
(never a per-run volume), waited for, undeployed, and then the host agent snapshots it and records
it as the known-good in one atomic step. The canonical keeps its secrets across promotions (its
data may depend on them), so an existing canonical is upgraded in place — after restoring its
known-good data if another version touched it — and a new one is created.

Until the agent's promote succeeds the previous known-good stays intact: the agent's *seed* marks
the canonical ``dirty`` before anything deploys on it (and hands out the token the promote must
carry: nothing else may promote a dirty volume), so a failed re-seed leaves the old registry and
snapshot and a volume that is restored before the next reattach.
"""

from __future__ import annotations

from ccci_core.errors import CcciError
from ccci_core.names import AppName, canonical_app

from .context import Run, Target


def should_promote(run: Run, target: Target, lane: str) -> str | None:
    """Return why this run may not promote, or None when it may (so far: the run is not red)."""
    if run.request.ref is not None:
        return "a run with a REF (a pull request) never promotes"
    if run.request.quick or lane != "cold":
        return "a quick run never promotes"
    if not run.apps.meta["WARM_CANONICAL"]:
        return "the recipe is not enrolled (WARM_CANONICAL is not True)"
    if target.version is None:
        return "latest is not a release (no version tag)"
    if not run.report.passed:
        return "the cold run is red"
    return None


def promote(run: Run, target: Target) -> None:
    """Re-seed the canonical at ``target`` into ``run.report`` (a failed step on failure)."""
    report = run.report
    app = canonical_app(run.recipe, run.domain, suffix=target.suffix)
    with report.step("promote") as step:
        record = run.agent.canonical(run.recipe)
        old = None if record is None else record.get("version")
        seed = None
        try:
            if record is not None:  # the agent restores the known-good first if it must
                seed = run.agent.seed(run.recipe, str(target.version))
            with run.checkout(target) as co:
                if run.apps.deployer.exists(app):
                    run.apps.deployer.generate_secrets(app, co)
                else:
                    run.apps.create(app, co)
                run.apps.up(app, co)
            with run.cancel.shield():
                run.apps.deployer.undeploy(app)
                view = run.agent.promote(
                    run.recipe, app.domain, str(target.version), target.commit, seed
                )
        except CcciError:
            with run.cancel.shield():
                _settle(run, app)
            kept = f"known-good {old} kept" if old else "no known-good yet"
            report.canonical = f"re-seed failed; {kept}"
            raise
        snapshot = (view.get("snapshot") or {}).get("id", "?")
        report.canonical = f"promoted {old or 'nothing'} → {target.version} (snapshot {snapshot})"
        step.detail = f"{app.domain} at {target.version}, undeployed, snapshot {snapshot}"


def _settle(run: Run, app: AppName) -> None:
    """Leave a failed re-seed undeployed (its volume stays marked dirty)."""
    try:
        run.apps.deployer.undeploy(app)
    except CcciError as exc:
        run.report.notes.append(f"could not undeploy {app.domain} after a failed re-seed: {exc}")
