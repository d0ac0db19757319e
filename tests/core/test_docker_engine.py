"""The Docker adapter's prune part, without the engine: its errors and its protocol.

What it lists and removes on the real engine is in ``tests/agent/test_prune.py``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

import docker
import pytest

from ccci_core.deploy.errors import DeployError
from ccci_core.docker_engine import DockerPrune, SdkDocker
from tests.fake_docker import FakeDocker


@pytest.mark.parametrize(
    "call",
    [
        lambda e: e.stopped_containers(),
        lambda e: e.dangling_images(),
        lambda e: e.prune_containers(),
        lambda e: e.prune_images(),
        lambda e: e.prune_build_cache(),
    ],
)
def test_an_unreachable_engine_is_the_components_error(
    tmp_path: Path, call: Callable[[DockerPrune], object]
) -> None:
    """A daemon that is gone fails each prune call with the component's error class."""
    client = docker.DockerClient(base_url=f"unix://{tmp_path}/none.sock", version="1.41")
    with pytest.raises(DeployError, match=r"^docker: "):
        call(SdkDocker(client, DeployError))


def test_both_adapters_offer_the_prune_protocol() -> None:
    """Every DockerPrune method exists on SdkDocker and FakeDocker with the same signature."""

    def methods(cls: type) -> dict[str, inspect.Signature]:
        return {
            name: inspect.signature(member)
            for name, member in inspect.getmembers(cls, inspect.isfunction)
            if name in DockerPrune.__dict__ and not name.startswith("_")
        }

    wanted = methods(DockerPrune)
    assert 5 == len(wanted)
    assert wanted == methods(SdkDocker) == methods(FakeDocker)
