"""Bring apps up, check them, and tear them down: the steps both lanes are made of.

:class:`Apps` binds a run's deployer, Docker adapter, recipe metadata and probe mode. It deploys a
checkout and waits until the app is really up (``ccci_core.deploy.health``), checks that an
upgrade moved the version label, writes and reads the data marker (``MARKER_PATH`` in
``HEALTH_SERVICE``), and proves a cold teardown left nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from ccci_core.catalog import Checkout
from ccci_core.deploy.errors import DeployError
from ccci_core.deploy.health import SETTLE, ProbeMode, loopback_port, probe_for, wait_ready
from ccci_core.deploy.protocol import Deployed, Deployer
from ccci_core.deploy.stack import Stack
from ccci_core.docker_engine import DockerStacks, ObjectKind
from ccci_core.names import AppName
from ccci_core.recipe_meta import RecipeMeta

from .errors import CheckFailed


@dataclass
class Apps:
    """Deploy and check the apps of one recipe during one run."""

    deployer: Deployer
    docker: DockerStacks
    meta: RecipeMeta
    probe_mode: ProbeMode
    env: Mapping[str, str]

    def stack(self, app: AppName) -> Stack:
        """Return the engine's view of ``app``'s stack."""
        return Stack(self.docker, app.stack)

    def create(self, app: AppName, checkout: Checkout) -> None:
        """Create the app (env from the recipe plus the run's env) and generate its secrets."""
        self.deployer.new(app, checkout, {**self.meta.extra_env, **self.env})
        self.deployer.generate_secrets(app, checkout)

    def up(self, app: AppName, checkout: Checkout, *, settle: float = SETTLE) -> Deployed:
        """Deploy ``checkout`` and wait until the app is up (for ``settle`` seconds in a row)
        and answers; return what runs."""
        since = datetime.now(UTC)
        self.deployer.deploy(app, checkout)
        stack = self.stack(app)
        version = None if checkout.version is None else str(checkout.version)
        wait_ready(
            stack,
            timeout=self.meta.deploy_timeout,
            since=since,
            version=version,
            probe=probe_for(self.probe_mode, stack, app, self.meta),
            settle=settle,
        )
        deployed = self.deployer.deployed(app)
        if deployed is None:
            raise CheckFailed(f"{app.stack} is up but reports no deployment")
        return deployed

    def check_moved(self, app: AppName, before: Deployed, checkout: Checkout) -> str:
        """Check the version label moved to what ``checkout`` is; return how it reads now."""
        now = self.deployer.deployed(app)
        if now is None:
            raise CheckFailed(f"{app.stack} is not deployed after the upgrade")
        if checkout.version is not None:
            if now.version != str(checkout.version):
                raise CheckFailed(f"version label is {now.version}, want {checkout.version}")
            if now.version == before.version:
                raise CheckFailed(f"version label did not move from {before.version}")
            return f"{before.version} → {now.version}"
        if not now.chaos:
            raise CheckFailed(f"{app.stack} is not marked as a chaos deploy of {checkout.commit}")
        if now.chaos_version and not checkout.commit.startswith(now.chaos_version):
            raise CheckFailed(f"chaos version is {now.chaos_version}, want {checkout.commit[:8]}")
        return f"{before.version} → chaos {checkout.commit[:8]}"

    @property
    def marker_path(self) -> str | None:
        """Return where the recipe keeps the data marker, or None when it says nowhere."""
        value = self.meta["MARKER_PATH"]
        return None if value is None else str(value)

    def write_marker(self, app: AppName) -> str | None:
        """Write a fresh marker into the app's data; return it (None when the recipe has none)."""
        path = self.marker_path
        if path is None:
            return None
        token = f"ccci-{secrets.token_hex(8)}"
        script = 'printf "%s" "$1" > "$2" && sync'
        code, output = self.stack(app).exec(
            self.meta.health_service, ["sh", "-c", script, "sh", token, path]
        )
        if code != 0:
            raise CheckFailed(f"cannot write the data marker {path}: {output.strip()}")
        return token

    def read_marker(self, app: AppName) -> str | None:
        """Return the marker in the app's data, or None when it is missing."""
        path = self.marker_path
        if path is None:
            return None
        code, output = self.stack(app).exec(self.meta.health_service, ["cat", path])
        return output if code == 0 else None

    def url(self, app: AppName) -> str | None:
        """Return how this host reaches the app for the recipe's tests, if it can."""
        if self.probe_mode == "proxy":
            return f"https://{app.domain}"
        if self.probe_mode == "exec":
            return None
        try:
            port = loopback_port(self.stack(app), self.meta.health_service, self.meta.health_port)
        except DeployError:
            return None
        return None if port is None else f"http://127.0.0.1:{port}"

    def images(self, app: AppName) -> set[str]:
        """Return the images the app's services run."""
        return {service.image for service in self.stack(app).services()}

    def remove_unused_images(self, images: set[str]) -> list[str]:
        """Remove those of ``images`` no service or container uses; return what was removed."""
        removed = []
        for image in sorted(images - self.docker.images_in_use()):
            ref = image.split("@", 1)[0] or image  # a digest-pinned ref is removed by its tag
            if self.docker.remove_image(ref):  # in use after all, or a shared layer: DeployError
                removed.append(ref)
        return removed

    def leftovers(self, app: AppName) -> list[str]:
        """Return every Docker object of ``app``'s stack still on the engine."""
        prefix = f"{app.stack}_"
        kinds: tuple[ObjectKind, ...] = ("volume", "secret", "config", "network")
        found = [f"service {s.name}" for s in self.docker.services() if s.name.startswith(prefix)]
        found += [f"{kind} {name}" for kind in kinds for name in self.docker.named(kind, prefix)]
        found += [f"container {c.name}" for c in self.stack(app).containers()]
        return sorted(found)
