"""The Docker side of the deployers maps every engine failure to DeployError (httpx's manner).

A client pointed at a socket nobody serves raises what docker-py raises when the daemon goes away
(``requests.ConnectionError``, not a ``DockerException``): every call must still be a DeployError.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import pytest

from ccci_core.deploy.errors import DeployError
from ccci_core.deploy.stack import Stack, live_stacks
from ccci_core.deploy.swarm import SwarmDeployer
from ccci_core.names import cold_app


@pytest.fixture
def dead_client(tmp_path: Path) -> docker.DockerClient:
    """A docker-py client whose daemon socket does not exist."""
    return docker.DockerClient(base_url=f"unix://{tmp_path}/none.sock", version="1.41")


APP = cold_app("ccci-web", "t.ccci.example", "abcdef", suffix=10)


@pytest.mark.parametrize(
    "call",
    [
        lambda c, _: live_stacks(c),
        lambda c, _: Stack(c, "s").services(),
        lambda c, _: Stack(c, "s").containers(),
        lambda c, _: Stack(c, "s").container("abc"),
        lambda c, _: Stack(c, "s").running_container("app"),
        lambda c, _: Stack(c, "s").volumes(),
        lambda c, _: Stack(c, "s").secrets(),
        lambda c, _: Stack(c, "s").named_secrets(),
        lambda c, _: Stack(c, "s").secret_names(),
        lambda c, _: Stack(c, "s").networks(),
        lambda c, _: Stack(c, "s").deployed(),
        lambda c, _: Stack(c, "s").gone(),
        lambda c, p: SwarmDeployer(c, p).deployed(APP),
        lambda c, p: SwarmDeployer(c, p).volumes(APP),
    ],
)
def test_a_daemon_that_went_away_is_a_deploy_error(
    dead_client: docker.DockerClient, tmp_path: Path, call: Callable[[Any, Path], object]
) -> None:
    """No requests or docker exception escapes: each is a DeployError naming what failed."""
    with pytest.raises(DeployError, match="docker: "):
        call(dead_client, tmp_path)
