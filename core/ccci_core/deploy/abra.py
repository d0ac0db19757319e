"""Drive the ``abra`` CLI non-interactively: the production deployer.

Each run gets its own ``ABRA_DIR`` (:meth:`AbraDeployer.for_run`): ``servers/`` (and
``catalogue/``) are symlinks to the operator's, so app env files land where operators look, and
``recipes/`` is private to the run, so concurrent runs never share a recipe working tree. Callers
check a recipe out into :attr:`AbraDeployer.recipes_dir` (``Catalog.checkout(recipe, ref,
deployer.recipes_dir)``), which is exactly where abra reads it.

Command lines (pinned by ``tests/deploy/test_abra.py``); ``-n/--no-input`` everywhere:

    new       abra app new <recipe> [<version>|--chaos] --server <s> --domain <d> --secrets -n
    secrets   abra app secret generate <domain> --all -n
    deploy    abra app deploy <domain> [<version>|--chaos] --force --no-converge-checks -n
    undeploy  abra app undeploy <domain> -n             (then wait until no task is left)
    remove    abra app remove <domain> --force -n       (after undeploy; volumes, secrets, env)

We run our own convergence check (:mod:`.health`), hence ``--no-converge-checks``. What is
deployed and the app's volumes are read from the engine (abra's labels), not from abra's output.
A non-zero exit becomes :class:`~ccci_core.deploy.errors.DeployError` with the command line and
the tail of abra's output.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from ..atomic import write_text
from ..catalog import Checkout
from ..docker_engine import DockerStacks
from ..names import AppName
from ..process import ProcessError, run
from . import envfile
from .errors import DeployError, RecipeError
from .protocol import Deployed
from .stack import Stack, StackQueries

NO_INPUT = "--no-input"


class AbraDeployer(StackQueries):
    """A :class:`~ccci_core.deploy.protocol.Deployer` that shells out to ``abra``."""

    def __init__(
        self,
        docker: DockerStacks,
        abra_dir: Path,
        *,
        server: str = "default",
        executable: str = "abra",
        timeout: float = 900.0,
        poll: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.docker = docker
        self.abra_dir = abra_dir
        self.server = server
        self.executable = executable
        self.timeout = timeout
        self.poll = poll
        self.sleep = sleep

    @classmethod
    def for_run(
        cls, docker: DockerStacks, run_dir: Path, operator_dir: Path, **kwargs: object
    ) -> AbraDeployer:
        """Lay out ``<run_dir>/abra`` (shared ``servers/``, private ``recipes/``) for a deployer."""
        abra_dir = run_dir / "abra"
        (abra_dir / "recipes").mkdir(parents=True, exist_ok=True)
        for shared in ("servers", "catalogue"):
            link, target = abra_dir / shared, operator_dir / shared
            if target.exists() and not link.is_symlink():
                link.symlink_to(target, target_is_directory=True)
        return cls(docker, abra_dir, **kwargs)  # type: ignore[arg-type]

    @property
    def recipes_dir(self) -> Path:
        """Return where this run's recipe checkouts must live for abra to find them."""
        return self.abra_dir / "recipes"

    def env_path(self, app: AppName) -> Path:
        """Return the app's env file (in the operator's ``servers/`` through the symlink)."""
        return self.abra_dir / "servers" / self.server / f"{app.domain}.env"

    def _run(self, *args: str) -> str:
        argv = [self.executable, *args]
        env = {**os.environ, "ABRA_DIR": str(self.abra_dir)}
        try:
            return run(argv, env=env, timeout=self.timeout)
        except ProcessError as exc:
            raise DeployError(
                "abra failed", command=argv, returncode=exc.returncode, output=exc.output
            ) from exc

    def _check(self, app: AppName, checkout: Checkout) -> list[str]:
        """Return the version-or-chaos arguments, refusing a checkout abra would not see."""
        if checkout.path != self.recipes_dir / app.recipe:
            raise RecipeError(
                f"{checkout.path} is not {self.recipes_dir / app.recipe}; abra reads there"
            )
        return ["--chaos"] if checkout.version is None else [str(checkout.version)]

    def exists(self, app: AppName) -> bool:
        """Return whether the app has been created (its env file exists)."""
        return self.env_path(app).is_file()

    def new(self, app: AppName, checkout: Checkout, env: Mapping[str, str]) -> None:
        """Create the app (secrets generated at creation), then set ``env`` in its env file."""
        at = self._check(app, checkout)
        self._run(
            "app", "new", app.recipe, *at, "--server", self.server, "--domain", app.domain,
            "--secrets", NO_INPUT,
        )  # fmt: skip
        if env:
            path = self.env_path(app)
            try:
                text = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise DeployError(f"abra created no env file {path}: {exc}") from exc
            write_text(path, envfile.set_values(text, env), mode=0o600)

    def generate_secrets(self, app: AppName, checkout: Checkout) -> None:
        """Generate every secret of the app that abra does not hold yet."""
        self._check(app, checkout)
        self._run("app", "secret", "generate", app.domain, "--all", NO_INPUT)

    def deploy(self, app: AppName, checkout: Checkout) -> Deployed:
        """Deploy the checkout's version (or chaos); abra's converge checks are ours to run."""
        at = self._check(app, checkout)
        Stack(self.docker, app.stack).wait_released(self.timeout, self.poll, self.sleep)
        self._run("app", "deploy", app.domain, *at, "--force", "--no-converge-checks", NO_INPUT)
        return self.deployed(app) or Deployed(app.stack, None)

    def undeploy(self, app: AppName) -> None:
        """Undeploy (volumes kept) and wait until no task container of the stack is left.

        The network goes at Swarm's pace: ``deploy`` waits for it, ``remove`` proves it gone,
        and undeploy waits for it when a task was on its way up (see ``SwarmDeployer.undeploy``).
        """
        stack = Stack(self.docker, app.stack)
        settled = stack.settled()
        graces = stack.stop_graces()
        if graces:
            self._run("app", "undeploy", app.domain, NO_INPUT)
        stack.stop_orphans(graces)
        stack.wait_gone(self.timeout, self.poll, self.sleep, networks=not settled)

    def remove(self, app: AppName) -> None:
        """Undeploy, then let abra delete volumes, secrets and env; check nothing is left."""
        self.undeploy(app)
        stack = Stack(self.docker, app.stack)
        stack.wait_gone(self.timeout, self.poll, self.sleep)  # every task done: see SwarmDeployer
        self._run("app", "remove", app.domain, "--force", NO_INPUT)
        left = stack.volumes() + stack.named_secrets()
        if left:
            raise DeployError(f"abra app remove left objects of {app.stack}: {sorted(left)}")
