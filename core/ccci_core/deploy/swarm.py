"""Deploy a recipe folder straight to Swarm, the way abra does, for hosts without abra.

``new`` writes ``<apps_dir>/<domain>.env`` as abra writes an app's env: the recipe's
``.env.sample`` text with ``TYPE``, ``DOMAIN`` and the caller's values set in place (expansion of
``$VAR`` happens at each read, :mod:`.envfile`). ``deploy`` hands the ``COMPOSE_FILE`` list and
the app env (plus ``abra.sh``'s ``export X=Y`` lines and ``STACK_NAME``) to docker's compose
loader (:mod:`.stack_config`), then adds only what abra adds: the version/chaos labels and the
secrets the recipe names, generated with the length and charset its env asks for. Then
``docker stack deploy`` (once a previous undeploy's network is gone). ``undeploy`` is ``docker
stack rm``, then stops the task containers it left as Swarm would (without Swarm's gossip delay,
see ``Stack.stop_orphans``) and waits until no service or task container of the stack is left.
``remove`` waits until the stack's network is gone too, then deletes its volumes and generated
secrets, after checking every one belongs to the stack.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..atomic import write_text
from ..catalog import Checkout
from ..docker_engine import SECRET_OWNER, DockerStacks
from ..names import AppName
from ..process import ProcessError, run
from . import compose, envfile
from .errors import DeployError, ForeignObject
from .protocol import Deployed, chaos_label, chaos_version_label, version_label
from .stack import Stack, StackQueries
from .stack_config import StackConfig

RM_ATTEMPTS = 3  # `docker stack rm` may race a stopping task for its network
STACK_FILE = ".ccci-stack.yml"  # the rendered compose file, written into the private checkout


def generate(secret: compose.Secret) -> str:
    """Return a new value for ``secret``: ``length`` characters of its charset."""
    characters = compose.alphabet(secret.charset)
    return "".join(secrets.choice(characters) for _ in range(secret.length))


class SwarmDeployer(StackQueries):
    """A :class:`~ccci_core.deploy.protocol.Deployer` driving the local engine directly."""

    def __init__(
        self,
        docker: DockerStacks,
        apps_dir: Path,
        *,
        docker_cli: str = "docker",
        timeout: float = 300.0,
        poll: float = 0.5,
        token: Callable[[compose.Secret], str] = generate,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.docker = docker
        self.apps_dir = apps_dir
        self.docker_cli = docker_cli
        self.loader = StackConfig(docker_cli)
        self.timeout = timeout
        self.poll = poll
        self.token = token
        self.sleep = sleep

    # -- env ---------------------------------------------------------------------------------

    def env_path(self, app: AppName) -> Path:
        """Return the app's env file."""
        return self.apps_dir / f"{app.domain}.env"

    def env_file(self, app: AppName) -> envfile.EnvFile:
        """Return the app's env (values and modifiers), or raise if the app was never created."""
        try:
            return envfile.parse(self.env_path(app).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise DeployError(f"app {app.domain} has no env; create it first (new)") from exc

    def env(self, app: AppName) -> dict[str, str]:
        """Return the app's env values (``$VAR`` expanded, as abra reads them)."""
        return self.env_file(app).values

    def exists(self, app: AppName) -> bool:
        """Return whether the app has been created (its env file exists)."""
        return self.env_path(app).is_file()

    def new(self, app: AppName, checkout: Checkout, env: Mapping[str, str]) -> None:
        """Write the app's env: the recipe's ``.env.sample`` with TYPE, DOMAIN and ``env`` set."""
        path = self.env_path(app)
        if path.exists():
            raise DeployError(f"app {app.domain} already exists ({path})")
        sample = checkout.path / compose.ENV_SAMPLE
        text = sample.read_text(encoding="utf-8") if sample.exists() else ""
        values = {"TYPE": app.recipe, "DOMAIN": app.domain, **env}
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, envfile.set_values(text, values), mode=0o600)

    def _full_env(self, app: AppName, checkout: Checkout) -> dict[str, str]:
        abra_sh = checkout.path / compose.ABRA_SH
        exported = (
            compose.parse_abra_sh(abra_sh.read_text(encoding="utf-8")) if abra_sh.exists() else {}
        )
        return {**exported, **self.env(app), "STACK_NAME": app.stack}

    # -- objects -----------------------------------------------------------------------------

    def _load(
        self, app: AppName, checkout: Checkout
    ) -> tuple[dict[str, Any], list[compose.Secret]]:
        """Return the loaded tree and the secrets it needs, names checked against Swarm's limit."""
        env = self._full_env(app, checkout)
        files = compose.compose_files(env)
        tree = self.loader.load(checkout.path, files, env)
        raw = compose.raw_secret_names(checkout.path, files)
        needed = compose.secrets(tree, raw, self.env_file(app).modifiers, app.stack)
        compose.check_names(compose.object_names(tree, needed, app.stack))
        return tree, needed

    def _ensure_secrets(self, app: AppName, needed: list[compose.Secret]) -> list[str]:
        existing = set(Stack(self.docker, app.stack).named_secrets())
        created = []
        for secret in needed:
            if secret.name in existing:
                continue
            labels = {SECRET_OWNER: app.stack}
            self.docker.create_secret(secret.name, self.token(secret).encode(), labels)
            created.append(secret.name)
        return created

    def generate_secrets(self, app: AppName, checkout: Checkout) -> None:
        """Create the app's missing secrets with generated values."""
        self._ensure_secrets(app, self._load(app, checkout)[1])

    def render(self, app: AppName, checkout: Checkout) -> dict[str, Any]:
        """Return the compose tree ``deploy`` hands to ``docker stack deploy``."""
        return self._render(app, checkout)[0]

    def _render(
        self, app: AppName, checkout: Checkout
    ) -> tuple[dict[str, Any], list[compose.Secret]]:
        tree, needed = self._load(app, checkout)
        for secret in needed:
            spec = dict(tree["secrets"][secret.key] or {})
            spec.update(name=secret.name, external=True)
            tree["secrets"][secret.key] = spec
        labels: dict[str, str] = {chaos_label(app.stack): str(checkout.chaos).lower()}
        if checkout.version is not None:
            labels[version_label(app.stack)] = str(checkout.version)
        else:
            labels[chaos_version_label(app.stack)] = checkout.commit[:8]
        for service in tree["services"].values():
            deploy = service.setdefault("deploy", {})
            deploy["labels"] = {**(deploy.get("labels") or {}), **labels}
        return tree, needed

    # -- operations --------------------------------------------------------------------------

    def _docker(self, *args: str, cwd: Path | None = None) -> str:
        argv = [self.docker_cli, *args]
        try:
            return run(argv, cwd=cwd, timeout=self.timeout)
        except ProcessError as exc:
            raise DeployError(
                "docker failed", command=argv, returncode=exc.returncode, output=exc.output
            ) from exc

    def deploy(self, app: AppName, checkout: Checkout) -> Deployed:
        """Deploy the checkout: its version, or chaos at its commit; return without waiting."""
        tree, needed = self._render(app, checkout)
        self._ensure_secrets(app, needed)
        Stack(self.docker, app.stack).wait_released(self.timeout, self.poll, self.sleep)
        stack_file = checkout.path / STACK_FILE
        # Escape "$" so the CLI does not interpolate again what we already substituted.
        write_text(stack_file, compose.dump_tree(tree))
        try:
            # Images are local or pinned: never ask a registry to resolve them.
            self._docker(
                "stack", "deploy", "--resolve-image", "never", "--compose-file", STACK_FILE,
                app.stack, cwd=checkout.path,
            )  # fmt: skip
        finally:
            stack_file.unlink(missing_ok=True)
        return self.deployed(app) or Deployed(app.stack, None)

    def undeploy(self, app: AppName) -> None:
        """Run ``docker stack rm``, stop its task containers, wait until none of them is left.

        Then the volumes are free. The stack's network goes a few seconds later, at Swarm's pace:
        ``deploy`` waits for that (``Stack.wait_released``), ``remove`` proves it gone. When a
        task was on its way up at the removal (a crash loop's restart), undeploy waits for the
        network too: Swarm releases it only once that task is done, and until then the task may
        still create a container on the volumes.
        """
        stack = Stack(self.docker, app.stack)
        settled = stack.settled()
        graces = stack.stop_graces()
        attempts = RM_ATTEMPTS
        while stack.services() or stack.networks():
            try:
                self._docker("stack", "rm", app.stack)
                break
            except DeployError:
                # Swarm refuses to remove a network a stopping task still uses ("is in use by
                # task"), though the services are gone: once their containers are, rm again.
                attempts -= 1
                if attempts == 0 or stack.services():
                    raise
                stack.stop_orphans(graces)
                stack.wait_gone(self.timeout, self.poll, self.sleep, networks=False)
        stack.stop_orphans(graces)
        stack.wait_gone(self.timeout, self.poll, self.sleep, networks=not settled)

    def remove(self, app: AppName) -> None:
        """Undeploy, then delete the stack's volumes, generated secrets and env file."""
        self.undeploy(app)
        stack = Stack(self.docker, app.stack)
        # The network too, before a volume goes: only then has Swarm finished every task of the
        # stack, so none can re-create a volume by starting a container after its removal.
        stack.wait_gone(self.timeout, self.poll, self.sleep)
        volumes, owned = stack.volumes(), stack.secrets()
        prefix = f"{app.stack}_"
        foreign = [name for name in [*volumes, *owned] if not name.startswith(prefix)]
        if foreign:
            raise ForeignObject(app.stack, foreign)
        for volume in volumes:
            self.docker.remove("volume", volume)
        for secret in owned:
            self.docker.remove("secret", secret)
        self.env_path(app).unlink(missing_ok=True)
