"""The build parameters the bridge gives a Drone build and the plugin reads: one contract.

Drone hands a build's parameters to every step as environment variables; the plugin's settings
come as ``PLUGIN_<NAME>``. Both sides name them only through this module, and
``tests/plugin/test_request.py`` round-trips the bridge's output through the plugin's parser.
"""

from __future__ import annotations

from dataclasses import dataclass

RECIPE = "RECIPE"  # the recipe to test
REF = "REF"  # refs/pull/N/head, a tag or a commit; absent: the latest release
PR = "CCCI_PR"  # the pull request number (for the verdict's way back)
SHA = "CCCI_SHA"  # the head the forge reported: the commit the run tests
QUICK = "CCCI_QUICK"  # "1": the quick lane
TRUE = "1"


def plugin_setting(name: str) -> str:
    """Return the ``PLUGIN_*`` variable a pipeline sets for build parameter ``name``."""
    return f"PLUGIN_{name.removeprefix('CCCI_')}"


@dataclass(frozen=True)
class BuildParams:
    """What one run is asked to test, as the bridge asks it."""

    recipe: str
    ref: str | None = None
    pr: int | None = None
    sha: str | None = None
    quick: bool = False

    def to_env(self) -> dict[str, str]:
        """Return the parameters as Drone passes them (only those that are set)."""
        params = {RECIPE: self.recipe}
        if self.ref is not None:
            params[REF] = self.ref
        if self.pr is not None:
            params[PR] = str(self.pr)
        if self.sha is not None:
            params[SHA] = self.sha
        if self.quick:
            params[QUICK] = TRUE
        return params
