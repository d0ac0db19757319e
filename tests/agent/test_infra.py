"""Live-warm infra versions: running and last-good."""

from __future__ import annotations

import pytest

from ccci_agent.infra import InfraVersions
from ccci_agent.store import StateDir
from ccci_core.errors import InvalidName, VersionError


def test_unhealthy_version_keeps_the_last_good(state: StateDir) -> None:
    """A version that failed its health check runs, but the last-good stays the previous one."""
    infra = InfraVersions(state)
    infra.record("keycloak", "10.0.0+25.0.1", healthy=True)
    record = infra.record("keycloak", "10.1.0+25.0.2", healthy=False)
    assert ("10.1.0+25.0.2", "10.0.0+25.0.1") == (record["version"], record["last_good"])
    assert [record] == infra.all()


@pytest.mark.parametrize(("name", "version"), [("../x", "1.0.0+1"), ("keycloak", "latest")])
def test_bad_names_and_versions_are_refused(state: StateDir, name: str, version: str) -> None:
    """Names and versions are validated before a file is written."""
    with pytest.raises((InvalidName, VersionError)):
        InfraVersions(state).record(name, version, healthy=True)
    assert [] == list(state.infra.iterdir())
