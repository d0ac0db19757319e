"""The fakes stand in faithfully: the public methods of what they fake, with the same signatures."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest

from ccci_core.deploy.compose import Loader
from ccci_core.deploy.protocol import Deployer
from ccci_plugin.agent import Agent, SocketAgent
from ccci_plugin.apps import Apps
from ccci_plugin.keycloak import KeycloakRealms, Realms
from tests.plugin.fakes import FakeAgent, FakeApps, FakeDeployer, FakeRealms, YamlLoader

# What a fake has beyond its original, for tests to set it up.
EXTRAS = {FakeAgent: {"add_canonical"}}


def public(cls: type) -> dict[str, str]:
    """Return the public methods and properties ``cls`` defines (or inherits), by signature."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass.__module__ in {"builtins", "typing", "abc"}:
            continue
        for name, member in vars(klass).items():
            if name.startswith("_"):
                continue
            if isinstance(member, property) and member.fget is not None:
                found[name] = f"property {inspect.signature(member.fget)}"
            elif inspect.isfunction(member):
                found[name] = str(inspect.signature(member))
    return found


@pytest.mark.parametrize(
    ("fake", "originals"),
    [
        (FakeAgent, [Agent, SocketAgent]),
        (FakeDeployer, [Deployer]),
        (FakeApps, [Apps]),
        (FakeRealms, [Realms, KeycloakRealms]),
        (YamlLoader, [Loader]),
    ],
    ids=lambda value: getattr(value, "__name__", "originals"),
)
def test_a_fake_has_exactly_the_public_methods_of_what_it_fakes(
    fake: type, originals: list[type[Any]]
) -> None:
    """Same names, same parameters and annotations; nothing more but the listed set-up helpers."""
    faked = public(fake)
    for original in originals:
        expected = public(original)
        assert expected == {k: v for k, v in faked.items() if k not in EXTRAS.get(fake, set())}


def test_the_fake_apps_hold_what_lanes_read_of_the_real_ones() -> None:
    """The deployer, metadata, probe mode and env are there; the Docker adapter is not."""
    real = {field.name for field in dataclasses.fields(Apps)}
    assert real - {"docker"} <= {field.name for field in dataclasses.fields(FakeApps)}
