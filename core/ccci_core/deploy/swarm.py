"""Deploy a recipe folder straight to Swarm, the way abra does, for hosts without abra.

``new`` writes ``<apps_dir>/<domain>.env`` from the recipe's ``.env.sample`` plus the caller's env
(abra keeps the same file under ``servers/<server>/``). ``deploy`` merges ``compose.yml`` with the
``COMPOSE_FILE`` list, substitutes the app env plus ``abra.sh``'s ``export X=Y`` lines and
``STACK_NAME``, sets abra's version/chaos labels, creates missing secrets as
``<stack>_<name>_<version>``, and runs ``docker stack deploy``. ``undeploy`` is ``docker stack rm``
and waits until no service, task container or network of the stack is left. ``remove`` also
deletes the stack's volumes and generated secrets, after checking every one belongs to the stack.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import docker
import yaml

from ..atomic import write_text
from ..catalog import Checkout
from ..names import SWARM_NAME_MAX, AppName, object_names, suffix_len
from ..process import ProcessError, run
from . import compose
from .errors import DeployError, ForeignObject, RecipeError
from .protocol import Deployed, chaos_label, chaos_version_label, version_label
from .stack import SECRET_OWNER, Stack, docker_errors

ENV_SAMPLE = ".env.sample"
ABRA_SH = "abra.sh"
RM_ATTEMPTS = 3  # `docker stack rm` may race a stopping task for its network
STACK_FILE = ".ccci-stack.yml"  # the rendered compose file, written into the private checkout


class SwarmDeployer:
    """A :class:`~ccci_core.deploy.protocol.Deployer` driving the local engine directly."""

    def __init__(
        self,
        client: docker.DockerClient,
        apps_dir: Path,
        *,
        docker_cli: str = "docker",
        timeout: float = 300.0,
        poll: float = 0.5,
        token: Callable[[], str] = lambda: secrets.token_hex(16),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.apps_dir = apps_dir
        self.docker_cli = docker_cli
        self.timeout = timeout
        self.poll = poll
        self.token = token
        self.sleep = sleep

    # -- env ---------------------------------------------------------------------------------

    def env_path(self, app: AppName) -> Path:
        """Return the app's env file."""
        return self.apps_dir / f"{app.domain}.env"

    def env(self, app: AppName) -> dict[str, str]:
        """Return the app's env, or raise DeployError if the app was never created."""
        try:
            return compose.parse_env(self.env_path(app).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise DeployError(f"app {app.domain} has no env; create it first (new)") from exc

    def exists(self, app: AppName) -> bool:
        """Return whether the app has been created (its env file exists)."""
        return self.env_path(app).is_file()

    def new(self, app: AppName, checkout: Checkout, env: Mapping[str, str]) -> None:
        """Write the app's env from the recipe's ``.env.sample`` plus ``env``."""
        path = self.env_path(app)
        if path.exists():
            raise DeployError(f"app {app.domain} already exists ({path})")
        sample = checkout.path / ENV_SAMPLE
        base = compose.parse_env(sample.read_text(encoding="utf-8")) if sample.exists() else {}
        values = {**base, "TYPE": app.recipe, "DOMAIN": app.domain, **env}
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text(path, compose.render_env(values))

    def _full_env(self, app: AppName, checkout: Checkout) -> dict[str, str]:
        abra_sh = checkout.path / ABRA_SH
        exported = (
            compose.parse_abra_sh(abra_sh.read_text(encoding="utf-8")) if abra_sh.exists() else {}
        )
        return {**exported, **self.env(app), "STACK_NAME": app.stack}

    # -- objects -----------------------------------------------------------------------------

    def _check_names(self, app: AppName, tree: Mapping[str, Any], env: Mapping[str, str]) -> None:
        volumes = compose.volume_keys(tree)
        versions = compose.secret_versions(tree, env)
        names = object_names(app.stack, volumes, versions)
        names += [f"{app.stack}_{service}" for service in tree["services"]]
        longest = max(names, key=len)
        if len(longest) > SWARM_NAME_MAX:
            raise RecipeError(
                f"{longest!r} is longer than Swarm's {SWARM_NAME_MAX} characters "
                f"(the recipe needs suffix_len={suffix_len(volumes, versions)})"
            )

    def _ensure_secrets(self, app: AppName, versions: Mapping[str, str]) -> list[str]:
        existing = Stack(self.client, app.stack).secret_names()
        created = []
        for name, version in versions.items():
            full = compose.secret_name(app.stack, name, version)
            if full in existing:
                continue
            with docker_errors(f"creating secret {full}"):
                self.client.secrets.create(
                    name=full, data=self.token().encode(), labels={SECRET_OWNER: app.stack}
                )
            created.append(full)
        return created

    def generate_secrets(self, app: AppName, checkout: Checkout) -> None:
        """Create the app's missing secrets with generated values."""
        env = self._full_env(app, checkout)
        tree = compose.load_compose(checkout.path, env)
        self._ensure_secrets(app, compose.secret_versions(tree, env))

    def render(self, app: AppName, checkout: Checkout) -> dict[str, Any]:
        """Return the compose tree ``deploy`` hands to ``docker stack deploy``."""
        env = self._full_env(app, checkout)
        tree = compose.load_compose(checkout.path, env)
        self._check_names(app, tree, env)
        versions = compose.secret_versions(tree, env)
        for name, version in versions.items():
            spec = dict(tree["secrets"][name] or {})
            spec.pop("file", None)
            spec.update(name=compose.secret_name(app.stack, name, version), external=True)
            tree["secrets"][name] = spec
        labels: dict[str, str] = {chaos_label(app.stack): str(checkout.chaos).lower()}
        if checkout.version is not None:
            labels[version_label(app.stack)] = str(checkout.version)
        else:
            labels[chaos_version_label(app.stack)] = checkout.commit[:8]
        for service in tree["services"].values():
            deploy = service.setdefault("deploy", {})
            deploy["labels"] = compose.merge(deploy.get("labels") or {}, labels, "labels")
        return tree

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
        tree = self.render(app, checkout)
        self._ensure_secrets(app, compose.secret_versions(tree, self._full_env(app, checkout)))
        stack_file = checkout.path / STACK_FILE
        # Escape "$" so the CLI does not interpolate again what we already substituted.
        write_text(stack_file, yaml.safe_dump(compose.escape_tree(tree), sort_keys=False))
        try:
            # Images are local or pinned: never ask a registry to resolve them.
            self._docker(
                "stack", "deploy", "--resolve-image", "never", "--compose-file", STACK_FILE,
                app.stack, cwd=checkout.path,
            )  # fmt: skip
        finally:
            stack_file.unlink(missing_ok=True)
        deployed = Stack(self.client, app.stack).deployed()
        return deployed or Deployed(app.stack, None)

    def undeploy(self, app: AppName) -> None:
        """Run ``docker stack rm`` and wait until no task container of the stack is left."""
        stack = Stack(self.client, app.stack)
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
                stack.wait_gone(self.timeout, self.poll, self.sleep, networks=False)
        stack.wait_gone(self.timeout, self.poll, self.sleep)

    def remove(self, app: AppName) -> None:
        """Undeploy, then delete the stack's volumes, generated secrets and env file."""
        self.undeploy(app)
        stack = Stack(self.client, app.stack)
        volumes, owned = stack.volumes(), stack.secrets()
        prefix = f"{app.stack}_"
        foreign = [o.name for o in [*volumes, *owned] if not o.name.startswith(prefix)]
        if foreign:
            raise ForeignObject(app.stack, foreign)
        for volume in volumes:
            with docker_errors(f"removing volume {volume.name}"):
                volume.remove()
        for secret in owned:
            with docker_errors(f"removing secret {secret.name}"):
                secret.remove()
        self.env_path(app).unlink(missing_ok=True)

    def deployed(self, app: AppName) -> Deployed | None:
        """Return the stack's version and chaos labels, or None if it is not deployed."""
        return Stack(self.client, app.stack).deployed()

    def volumes(self, app: AppName) -> list[str]:
        """Return the names of the stack's volumes."""
        return sorted(v.name for v in Stack(self.client, app.stack).volumes())
