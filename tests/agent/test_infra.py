"""Live-warm infra versions: running and last-good."""

from __future__ import annotations

import pytest

from ccci_agent.alerts import Alerts
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


def test_corrupt_record_is_moved_aside_and_the_rest_listed(state: StateDir) -> None:
    """A truncated infra record reads as never recorded, is moved aside and alerted."""
    infra = InfraVersions(state)
    kept = infra.record("keycloak", "10.0.0+25.0.1", healthy=True)
    (state.infra / "traefik.json").write_text('{"name": "traefik", "vers')

    assert [kept] == infra.all()
    assert infra.get("traefik") is None
    [moved] = state.infra.glob("traefik.json.corrupt-*")
    [alert] = Alerts(state).active()
    assert ("state-corrupt", str(moved)) == (alert["kind"], alert["details"]["moved_to"])
    record = infra.record("traefik", "3.0.0+3.1", healthy=True)
    assert "3.0.0+3.1" == record["last_good"]
