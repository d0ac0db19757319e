"""The plugin's exception tree (under :class:`ccci_core.errors.CcciError`).

    PluginError               root of what a run raises on purpose (exit 1)
    ├── LeaseUnavailable      no run lease within the wait (``waited`` seconds)
    ├── Cancelled             Drone cancelled the run (SIGTERM); teardown still runs
    └── CheckFailed           an assertion about the app failed (marker lost, label not moved)

A run maps every error to a failed step in its report; only bad input (``BadInput``) exits 2.
"""

from __future__ import annotations

from ccci_core.errors import CcciError


class PluginError(CcciError):
    """Root of the plugin's own errors."""


class LeaseUnavailable(PluginError):
    """The host agent granted no run lease within the wait."""


class Cancelled(PluginError):
    """The run was cancelled (SIGTERM from Drone's cancel)."""


class CheckFailed(PluginError):
    """An assertion about the app failed."""
