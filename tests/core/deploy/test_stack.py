"""The Docker side of the deployers maps every engine failure to DeployError (httpx's manner).

A client pointed at a socket nobody serves raises what docker-py raises when the daemon goes away
(``requests.ConnectionError``, not a ``DockerException``): every call must still be a DeployError.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import responses

from ccci_core.deploy.errors import DeployError
from ccci_core.deploy.stack import Stack, live_stacks
from ccci_core.deploy.swarm import SwarmDeployer
from ccci_core.names import cold_app
from ccci_plugin.apps import Apps
from tests.deploy_fixtures import stacks


@pytest.fixture
def dead_client(tmp_path: Path) -> docker.DockerClient:
    """A docker-py client whose daemon socket does not exist."""
    return docker.DockerClient(base_url=f"unix://{tmp_path}/none.sock", version="1.41")


APP = cold_app("ccci-web", "t.ccci.example", "abcdef", suffix=10)


@pytest.mark.parametrize(
    "call",
    [
        lambda c, _: live_stacks(stacks(c)),
        lambda c, _: Stack(stacks(c), "s").services(),
        lambda c, _: Stack(stacks(c), "s").containers(),
        lambda c, _: Stack(stacks(c), "s").container("abc"),
        lambda c, _: Stack(stacks(c), "s").running_container("app"),
        lambda c, _: Stack(stacks(c), "s").volumes(),
        lambda c, _: Stack(stacks(c), "s").secrets(),
        lambda c, _: Stack(stacks(c), "s").named_secrets(),
        lambda c, _: Stack(stacks(c), "s").networks(),
        lambda c, _: Stack(stacks(c), "s").deployed(),
        lambda c, _: Stack(stacks(c), "s").gone(),
        lambda c, p: SwarmDeployer(stacks(c), p).deployed(APP),
        lambda c, p: SwarmDeployer(stacks(c), p).volumes(APP),
    ],
)
def test_a_daemon_that_went_away_is_a_deploy_error(
    dead_client: docker.DockerClient, tmp_path: Path, call: Callable[[Any, Path], object]
) -> None:
    """No requests or docker exception escapes: each is a DeployError naming what failed."""
    with pytest.raises(DeployError, match="docker: "):
        call(dead_client, tmp_path)


@pytest.fixture
def vanishing(tmp_path: Path) -> Iterator[docker.DockerClient]:
    """A client whose engine lists two containers of stack ``s``, one removed before its inspect.

    The engine's own API answers (through ``responses``): the listing names both, the inspect of
    the removed one is docker's 404 "No such container" — what a teardown racing a listing meets.
    """
    api = "http+docker://localhost/v1.41"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(
            f"{api}/containers/json",
            json=[{"Id": "gone", "Image": "img:0"}, {"Id": "here", "Image": "img:1"}],
        )
        mock.get(f"{api}/containers/gone/json", status=404, json={"message": "No such container"})
        mock.get(
            f"{api}/containers/here/json",
            json={"Id": "here", "Name": "/s_app.1.x", "Config": {"Image": "img:1"}},
        )
        mock.get(f"{api}/services", json=[])
        for kind in ("volumes", "secrets", "configs", "networks"):
            mock.get(f"{api}/{kind}", json={"Volumes": []} if kind == "volumes" else [])
        yield docker.DockerClient(base_url=f"unix://{tmp_path}/none.sock", version="1.41")


@pytest.mark.parametrize(
    "call",
    [
        lambda c: [x.name for x in Stack(stacks(c), "s").containers()],
        lambda c: [Stack(stacks(c), "s").running_container("app").name],
        lambda c: [x.removeprefix("container ") for x in apps(c).leftovers(APP)],
    ],
)
def test_a_container_removed_while_listing_is_not_an_error(
    vanishing: docker.DockerClient, call: Callable[[Any], list[str]]
) -> None:
    """A container gone between the listing and its inspect is simply not there any more."""
    assert ["s_app.1.x"] == call(vanishing)


def test_images_in_use_skip_a_container_removed_while_listing(
    vanishing: docker.DockerClient,
) -> None:
    """The in-use check of image removal survives the same race (and still sees ``img:1``)."""
    assert [] == apps(vanishing).remove_unused_images({"img:1"})


def apps(client: docker.DockerClient) -> Apps:
    """An Apps over ``client`` alone (the listing calls use nothing else)."""
    return Apps(deployer=None, docker=stacks(client), meta=None, probe_mode="loopback", env={})  # type: ignore[arg-type]
