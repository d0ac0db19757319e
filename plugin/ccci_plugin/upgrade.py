"""The in-place upgrade both lanes check: deploy the target over a running app, prove it moved.

The cold lane upgrades a fresh app brought up at the release before the target; the quick lane
upgrades the reattached canonical to the PR head. Either way the app runs ``before`` and, when the
recipe names a ``MARKER_PATH``, holds a marker written into its data: the target must move the
version label and leave that marker where it was.
"""

from __future__ import annotations

from ccci_core.deploy.protocol import Deployed
from ccci_core.names import AppName

from .context import Run, Target
from .errors import CheckFailed


def upgrade_in_place(
    run: Run, app: AppName, before: Deployed, marker: str | None, target: Target
) -> str:
    """Deploy ``target`` over ``app`` and check it moved and kept ``marker``; return the detail."""
    with run.checkout(target) as co:
        run.apps.up(app, co)
        moved = run.apps.check_moved(app, before, co)
    if marker is not None and run.apps.read_marker(app) != marker:
        raise CheckFailed("the data marker written before the upgrade is gone")
    return moved + ("" if marker is None else ", data kept")
