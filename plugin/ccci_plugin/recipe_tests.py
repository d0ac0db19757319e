"""Run a recipe's own pytest files against the live app.

The tests live in ``<CCCI_TESTS_DIR>/<recipe>/test_*.py`` (beside ``recipe_meta.py``) and read
the app from the environment: ``CCCI_RECIPE``, ``CCCI_APP_DOMAIN``, ``CCCI_APP_STACK``,
``CCCI_APP_URL`` (how this host reaches the app, when it can), ``CCCI_REALM`` (when the run has
one), ``CCCI_LANE`` and ``CCCI_VERSION``. They run in a child pytest whose conftest search stops at
the recipe's folder, so the CI repository's own fixtures never leak in.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ccci_core.names import AppName

from .context import Run, Target

NO_TESTS_COLLECTED = 5  # pytest's exit code


@dataclass(frozen=True)
class TestOutcome:
    """What the recipe's tests said."""

    ran: bool
    passed: bool
    total: int = 0
    failed: list[str] = field(default_factory=list)
    output: str = ""

    def summary(self) -> str:
        """Return a one-line summary for the run log."""
        if not self.ran:
            return "no recipe tests"
        if self.passed:
            return f"{self.total} passed"
        return f"{len(self.failed)} of {self.total} failed: {', '.join(self.failed)}"


def has_tests(folder: Path) -> bool:
    """Return whether ``folder`` holds pytest files."""
    return folder.is_dir() and any(folder.glob("test_*.py"))


# What the child pytest may inherit from cc-ci's own environment: how to run and reach things,
# never cc-ci's settings or secrets (CCCI_*_TOKEN, passwords).
PASSED_THROUGH = frozenset(
    {"PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "DOCKER_HOST", "DOCKER_CONFIG"}
    | {"SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "VIRTUAL_ENV"}
    | {"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"}
)


def child_env(env: Mapping[str, str], parent: Mapping[str, str]) -> dict[str, str]:
    """Return the recipe tests' environment: the pass-through part of ``parent``, then ``env``."""
    return {**{k: v for k, v in parent.items() if k in PASSED_THROUGH}, **env}


def run_tests(
    folder: Path, env: Mapping[str, str], junit: Path, timeout: float = 1800.0
) -> TestOutcome:
    """Run the pytest files in ``folder`` with ``env`` (none of our secrets); return the outcome."""
    if not has_tests(folder):
        return TestOutcome(ran=False, passed=True)
    # The child runs in ``folder``: a relative path (CCCI_TESTS_DIR's default) would not be found.
    folder, junit = folder.resolve(), junit.resolve()
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts="]
    argv += [f"--confcutdir={folder}", f"--rootdir={folder}", f"--junitxml={junit}", str(folder)]
    try:
        done = subprocess.run(
            argv,
            env=child_env(env, os.environ),
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return TestOutcome(ran=True, passed=False, failed=[f"timed out after {timeout:.0f}s"])
    output = done.stdout + done.stderr
    if done.returncode == NO_TESTS_COLLECTED:
        return TestOutcome(ran=False, passed=True, output=output)
    total, failed = _junit(junit)
    if done.returncode != 0 and not failed:
        failed = [f"pytest exited {done.returncode}"]
    return TestOutcome(True, done.returncode == 0, total, failed, output)


def _junit(path: Path) -> tuple[int, list[str]]:
    try:
        root = ET.parse(path).getroot()  # noqa: S314 - our child's own junit file
    except (OSError, ET.ParseError):
        return 0, []
    total, failed = 0, []
    for case in root.iter("testcase"):
        total += 1
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(case.get("name", "?"))
    return total, failed


def recipe_tests_step(run: Run, app: AppName, target: Target) -> None:
    """Run the recipe's tests against ``app`` as the run's "recipe tests" step."""
    with run.report.step("recipe tests") as step:
        outcome = run_tests(
            run.tests_dir / run.recipe, test_env(run, app, target), run.run_dir / "junit.xml"
        )
        step.detail = outcome.summary()
        if not outcome.ran:
            step.skip(outcome.summary())
        elif not outcome.passed:
            run.report.say(outcome.output.rstrip())
            step.fail(outcome.summary())


def test_env(run: Run, app: AppName, target: Target) -> dict[str, str]:
    """Return what the recipe's tests learn about the live app."""
    env = {
        "CCCI_RECIPE": run.recipe,
        "CCCI_APP_DOMAIN": app.domain,
        "CCCI_APP_STACK": app.stack,
        "CCCI_LANE": run.report.ran,
        "CCCI_VERSION": target.label(),
    }
    url = run.apps.url(app)
    if url is not None:
        env["CCCI_APP_URL"] = url
    if run.realm is not None:
        env["CCCI_REALM"] = run.realm
    return env
