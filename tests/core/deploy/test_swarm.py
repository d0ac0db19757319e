"""The swarm deployer and the health check on the real engine, with the test recipes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import docker
import pytest

from ccci_core import recipe_meta
from ccci_core.catalog import Catalog
from ccci_core.deploy.errors import ForeignObject, NotReady
from ccci_core.deploy.health import probe_for, wait_ready
from ccci_core.deploy.protocol import Deployed
from ccci_core.deploy.stack import Stack
from ccci_core.deploy.swarm import SwarmDeployer
from ccci_core.names import AppName
from tests.deploy_fixtures import stacks

pytestmark = pytest.mark.docker


def _engine_objects(client: docker.DockerClient, stack: str) -> dict[str, list[str]]:
    return {
        "services": sorted(s.name for s in client.services.list(filters={"name": stack})),
        "volumes": sorted(v.name for v in client.volumes.list(filters={"name": stack})),
        "secrets": sorted(s.name for s in client.secrets.list(filters={"name": stack})),
        "configs": sorted(c.name for c in client.configs.list(filters={"name": stack})),
        "networks": sorted(n.name for n in client.networks.list(filters={"name": stack})),
        "containers": sorted(
            c.name
            for c in client.containers.list(
                all=True,
                filters={"label": f"com.docker.stack.namespace={stack}"},
                ignore_removed=True,
            )
        ),
    }


def test_two_versions_keep_data_and_remove_leaves_nothing(
    docker_client: docker.DockerClient,
    swarm_deployer: SwarmDeployer,
    catalog: Catalog,
    tests_dir: Path,
    make_app: Callable[[str], AppName],
    web_image: str,
    free_port: int,
    tmp_path: Path,
) -> None:
    """new → v1 → data → undeploy → v2 keeps data, label moves → remove leaves nothing.

    v2 is deployed right after the undeploy, while Swarm still drops the stack's network: the
    deploy waits for it (else its services find no network).
    """
    app = make_app("ccci-web")
    meta = recipe_meta.load(tests_dir, "ccci-web")
    stack = Stack(stacks(docker_client), app.stack)
    bystander = docker_client.volumes.create(f"{app.stack}_bystander")  # not the stack's
    try:
        env = {"WEB_IMAGE": web_image, "HTTP_PORT": str(free_port)}
        with catalog.checkout("ccci-web", "1.0.0+1.0", tmp_path / "run1") as v1:
            swarm_deployer.new(app, v1, env)
            swarm_deployer.generate_secrets(app, v1)
            since = datetime.now(UTC)
            assert "1.0.0+1.0" == swarm_deployer.deploy(app, v1).version
        wait_ready(
            stack,
            timeout=meta.deploy_timeout,
            since=since,
            version="1.0.0+1.0",
            probe=probe_for("loopback", stack, app, meta),
        )
        assert (0, "1.0\n") == stack.exec("app", ["cat", "/www/version"])
        assert 0 == stack.exec("app", ["sh", "-c", f"echo kept > {meta['MARKER_PATH']}"])[0]
        secret = f"{app.stack}_api_key_v1"
        assert [f"{app.stack}_data"] == swarm_deployer.volumes(app)

        swarm_deployer.undeploy(app)
        assert ([], []) == (stack.services(), stack.containers())  # the network goes after
        assert swarm_deployer.deployed(app) is None
        assert [f"{app.stack}_data"] == swarm_deployer.volumes(app)

        with catalog.checkout("ccci-web", "1.1.0+1.1", tmp_path / "run2") as v2:
            since = datetime.now(UTC)
            deployed = swarm_deployer.deploy(app, v2)
        assert Deployed(app.stack, "1.1.0+1.1", False, None) == deployed
        wait_ready(
            stack,
            timeout=meta.deploy_timeout,
            since=since,
            version="1.1.0+1.1",
            probe=probe_for("exec", stack, app, meta),
        )
        assert (0, "1.1\n") == stack.exec("app", ["cat", "/www/version"])
        assert (0, "kept\n") == stack.exec("app", ["cat", meta["MARKER_PATH"]])
        assert [secret] == stack.secrets()

        swarm_deployer.remove(app)
        empty: dict[str, list[str]] = {
            "services": [],
            "volumes": [bystander.name],
            "secrets": [],
            "configs": [],
            "networks": [],
            "containers": [],
        }
        assert empty == _engine_objects(docker_client, app.stack)
        assert not swarm_deployer.env_path(app).exists()
    finally:
        bystander.remove(force=True)


def test_chaos_deploy_labels_the_commit(
    docker_client: docker.DockerClient,
    swarm_deployer: SwarmDeployer,
    catalog: Catalog,
    make_app: Callable[[str], AppName],
    web_image: str,
    free_port: int,
    tmp_path: Path,
) -> None:
    """A checkout at a commit deploys as chaos with the commit in its labels."""
    app = make_app("ccci-web")
    with catalog.checkout("ccci-web", "1.1.0+1.1", tmp_path / "tag") as tagged:
        commit = tagged.commit
    with catalog.checkout("ccci-web", commit, tmp_path / "run") as chaos:
        swarm_deployer.new(app, chaos, {"WEB_IMAGE": web_image, "HTTP_PORT": str(free_port)})
        deployed = swarm_deployer.deploy(app, chaos)
    assert Deployed(app.stack, "1.1.0+1.1", True, commit[:8]) == deployed
    swarm_deployer.remove(app)
    assert Stack(stacks(docker_client), app.stack).gone()


RACING_DOCKER = """#!/bin/sh
# Like docker, but the first `stack rm` behaves as Swarm does when it races a stopping task for
# the stack's network: the services go, the network stays, and it exits 1.
if [ "$1 $2" = "stack rm" ] && [ ! -e "$0.raced" ]; then
    touch "$0.raced"
    docker service rm $(docker service ls -q --filter "label=com.docker.stack.namespace=$3")
    echo "Failed to remove network x: network x is in use by task y" >&2
    exit 1
fi
exec docker "$@"
"""


def test_undeploy_survives_the_network_in_use_race(
    docker_client: docker.DockerClient,
    catalog: Catalog,
    make_app: Callable[[str], AppName],
    web_image: str,
    free_port: int,
    tmp_path: Path,
) -> None:
    """A `docker stack rm` that leaves the network behind is retried once the tasks are gone."""
    racing = tmp_path / "docker"
    racing.write_text(RACING_DOCKER)
    racing.chmod(0o755)
    deployer = SwarmDeployer(stacks(docker_client), tmp_path / "apps", docker_cli=str(racing))
    app = make_app("ccci-web")
    with catalog.checkout("ccci-web", "1.1.0+1.1", tmp_path / "run") as co:
        deployer.new(app, co, {"WEB_IMAGE": web_image, "HTTP_PORT": str(free_port)})
        deployer.deploy(app, co)
    stack = Stack(stacks(docker_client), app.stack)
    assert stack.networks()

    deployer.undeploy(app)

    assert racing.with_name("docker.raced").exists()
    assert ([], []) == (stack.services(), stack.containers())
    stack.wait_released(60, 0.25)  # the retried rm removed the network: it goes by itself
    assert stack.gone()


@pytest.mark.parametrize(
    ("version", "symptom"),
    [("1.0.0+unhealthy", "healthcheck unhealthy (exit 1)"), ("2.0.0+crashloop", "(exit 3)")],
)
def test_broken_version_fails_with_a_report(
    docker_client: docker.DockerClient,
    swarm_deployer: SwarmDeployer,
    catalog: Catalog,
    tests_dir: Path,
    make_app: Callable[[str], AppName],
    web_image: str,
    tmp_path: Path,
    version: str,
    symptom: str,
) -> None:
    """A version that never becomes healthy or exits in a loop fails with a useful report."""
    app = make_app("ccci-broken")
    meta = recipe_meta.load(tests_dir, "ccci-broken")
    stack = Stack(stacks(docker_client), app.stack)
    with catalog.checkout("ccci-broken", version, tmp_path / "run") as checkout:
        swarm_deployer.new(app, checkout, {"WEB_IMAGE": web_image})
        since = datetime.now(UTC)
        swarm_deployer.deploy(app, checkout)
    with pytest.raises(NotReady) as caught:
        wait_ready(stack, timeout=meta.deploy_timeout, since=since, version=version)
    assert "keeps failing" in caught.value.reason
    assert 1 == len(caught.value.report)
    assert caught.value.report[0].startswith(f"{app.stack}_app: 0/1 running")
    assert symptom in caught.value.report[0]
    swarm_deployer.remove(app)


def test_remove_refuses_a_foreign_object(
    docker_client: docker.DockerClient,
    swarm_deployer: SwarmDeployer,
    make_app: Callable[[str], AppName],
) -> None:
    """A volume labelled as the stack's but named otherwise stops remove before any delete."""
    app = make_app("ccci-web")
    own = docker_client.volumes.create(
        f"{app.stack}_data", labels={"com.docker.stack.namespace": app.stack}
    )
    odd = docker_client.volumes.create(
        f"x{app.stack}", labels={"com.docker.stack.namespace": app.stack}
    )
    try:
        with pytest.raises(ForeignObject) as caught:
            swarm_deployer.remove(app)
        assert [odd.name] == caught.value.names
        assert sorted([own.name, odd.name]) == swarm_deployer.volumes(app)
    finally:
        odd.remove(force=True)
        own.remove(force=True)
