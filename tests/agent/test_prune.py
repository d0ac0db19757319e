"""``cc-ci prune`` on the real engine against a real agent: only old dangling images go.

Every object here is the test's own, named by a unique marker, and the assertions look only at
those. The prunes run with the engine's 24 h filters, so nothing of other processes younger than
that can go (what is older may: that is what prune is for). An image "older than 24 h" is one whose
config says so (``tests.images.load_dated_image``): the engine's ``until`` reads that date. A
container cannot be made old (the engine dates it at creation), so a stopped container going is
shown on the fake (``test_prune_logic``), and here a fresh one staying.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import docker
import pytest

from ccci_agent.prune import AgentRuns, PruneError, Pruner, Result, _engine
from ccci_core.agent_client import LEASE_HOLDER_HEADER, AgentClient
from ccci_core.cli import main
from ccci_core.docker_engine import STACK_LABEL, SdkDocker
from ccci_core.errors import ConfigError
from tests.agent_server import running_agent
from tests.images import load_dated_image

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


@dataclass
class Objects:
    """What one test made: images of each kind, a container, volumes."""

    marker: str
    old: str  # a dangling image dated 2020: the only one a prune may take
    fresh: str  # a dangling image dated now
    tagged: str  # an image dated 2020, tagged
    used: str  # a dangling image dated 2020 that a fresh (never started) container uses
    container: str
    volumes: tuple[str, ...]  # unused: a plain one, and one labelled like a canonical's
    client: docker.DockerClient

    def missing(self) -> list[str]:
        """Return which of the objects are gone."""
        images = {"old": self.old, "fresh": self.fresh, "tagged": self.tagged, "used": self.used}
        gone = [name for name, ident in images.items() if not self._exists(ident)]
        if not self.client.containers.list(all=True, filters={"id": self.container}):
            gone.append("container")
        names = {v.name for v in self.client.volumes.list(filters={"name": self.marker})}
        return gone + [v for v in self.volumes if v not in names]

    def _exists(self, image: str) -> bool:
        try:
            self.client.api.inspect_image(image)
        except docker.errors.ImageNotFound:
            return False
        return True


@pytest.fixture
def objects(docker_client: docker.DockerClient) -> Iterator[Objects]:
    """Four images, a container of one and two unused volumes; all removed afterwards."""
    marker = f"ccci-prune-{uuid.uuid4().hex[:8]}"
    images: list[str] = []
    volumes: list[str] = []
    container = ""
    try:
        images.append(load_dated_image(f"{marker}-old", LONG_AGO))
        images.append(load_dated_image(f"{marker}-fresh", datetime.now(UTC)))
        images.append(load_dated_image(f"{marker}-tagged", LONG_AGO, f"ccci-test/{marker}:old"))
        images.append(load_dated_image(f"{marker}-used", LONG_AGO))
        container = docker_client.api.create_container(images[3], name=marker)["Id"]
        stack = (
            f"warm-{marker}_ci_example_net"  # a canonical's stack, as docker stack deploy labels
        )
        volumes.append(docker_client.volumes.create(marker).name)
        volumes.append(
            docker_client.volumes.create(f"{stack}_data", labels={STACK_LABEL: stack}).name
        )
        old, fresh, tagged, used = images
        yield Objects(marker, old, fresh, tagged, used, container, tuple(volumes), docker_client)
    finally:
        if container:
            docker_client.api.remove_container(container, force=True)
        for image in images:
            with contextlib.suppress(docker.errors.ImageNotFound):  # the prune took it
                docker_client.api.remove_image(image, force=True)
        for volume in volumes:
            docker_client.volumes.get(volume).remove()


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentClient]:
    """A real host agent on its own socket and state directory (one run at most)."""
    root = tmp_path_factory.mktemp("prune-agent")
    env = {"CCCI_DOMAIN": "ci.example.net", "CCCI_SOCKET_GROUP": "root", "CCCI_MAX_TESTS": "1"}
    with running_agent(root / "agent.sock", root / "state", env) as client:
        yield client


def disk(percent: float) -> Callable[[str], tuple[int, int, int]]:
    """A disk_usage of / used ``percent``."""
    return lambda path: (1000, round(percent * 10), 1000 - round(percent * 10))


def prune(agent: AgentClient, percent: float, said: list[str], dry_run: bool = False) -> Result:
    """Run a prune on the real engine and agent, / reading ``percent`` used."""
    pruner = Pruner(
        AgentRuns(agent),
        lambda: SdkDocker.from_env(PruneError),
        80,
        disk_usage=disk(percent),
        say=said.append,
    )
    return pruner.run(dry_run=dry_run)


@pytest.mark.docker
def test_the_adapter_sees_the_dangling_images_their_users_and_stopped_containers(
    objects: Objects,
) -> None:
    """Dangling images with their dates and users (no tagged one), stopped containers by name."""
    engine = SdkDocker.from_env(PruneError)
    dangling = {i.id: i for i in engine.dangling_images()}
    stopped = {c.id: c for c in engine.stopped_containers()}

    assert (LONG_AGO, ()) == (dangling[objects.old].created, dangling[objects.old].used_by)
    assert (objects.container,) == dangling[objects.used].used_by
    assert dangling[objects.fresh].created > datetime.now(UTC) - timedelta(hours=1)
    assert objects.tagged not in dangling
    assert objects.marker == stopped[objects.container].name


@pytest.mark.docker
def test_a_prune_takes_the_old_dangling_image_and_nothing_else(
    objects: Objects, agent: AgentClient
) -> None:
    """Above the threshold with no run: the old dangling image goes; the fresh one, the tagged
    one, the one a container uses, that container and every volume stay."""
    said: list[str] = []
    result = prune(agent, 95.0, said)

    assert (["old"], "pruned", 0) == (objects.missing(), result.outcome, result.exit_code)
    images, size = result.pruned["dangling images"], len(f"{objects.marker}-old")  # its one file
    assert (True, True) == (objects.old in images.removed, images.space >= size)
    short = objects.old.removeprefix("sha256:")[:12]
    assert f"  {short}  created 2020-01-01 00:00 UTC  {size} B" in said


@pytest.mark.docker
def test_a_dry_run_through_the_cli_lists_the_old_dangling_image_and_removes_nothing(
    objects: Objects,
    agent: AgentClient,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """cc-ci prune --dry-run (threshold 0: acts at any use) names ours that would go, only it."""
    monkeypatch.setenv("CCCI_AGENT_SOCKET", str(agent.socket_path))
    monkeypatch.setenv("CCCI_PRUNE_THRESHOLD", "0")

    code = main(["prune", "--dry-run"])
    out = capsys.readouterr().out

    def listed(image: str) -> bool:
        return f"  {image.removeprefix('sha256:')[:12]}  created" in out

    assert (0, [], True) == (code, objects.missing(), listed(objects.old))
    assert (False, False, False) == tuple(
        listed(i) for i in (objects.fresh, objects.tagged, objects.used)
    )
    assert objects.marker not in out  # the fresh stopped container
    assert "nothing removed (dry run)" == out.splitlines()[-1]


@pytest.mark.docker
def test_below_the_threshold_nothing_goes(objects: Objects, agent: AgentClient) -> None:
    """/ below CCCI_PRUNE_THRESHOLD: the old dangling image stays."""
    said: list[str] = []
    result = prune(agent, 79.9, said)

    assert ("below threshold", []) == (result.outcome, objects.missing())


@pytest.mark.docker
def test_a_lease_in_flight_holds_the_prune(objects: Objects, agent: AgentClient) -> None:
    """While a run holds a lease on the real agent the old dangling image stays; exit 0."""
    lease = agent.post("/v1/leases", {"recipe": "ccci-prune", "lane": "cold"})
    try:
        said: list[str] = []
        result = prune(agent, 95.0, said)
    finally:
        agent.delete(f"/v1/leases/{lease['id']}", headers={LEASE_HOLDER_HEADER: lease["token"]})

    assert ("in flight", 0, []) == (result.outcome, result.exit_code, objects.missing())
    assert f"lease {lease['id']}: ccci-prune cold" in said[0]


@pytest.mark.docker
def test_an_unreachable_agent_is_exit_2_and_nothing_goes(
    objects: Objects,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No agent on the socket: one line on stderr, exit 2, the old dangling image stays."""
    monkeypatch.setenv("CCCI_AGENT_SOCKET", str(tmp_path / "none.sock"))
    monkeypatch.setenv("CCCI_PRUNE_THRESHOLD", "0")

    code = main(["prune"])
    err = capsys.readouterr().err

    assert (2, 1, []) == (code, len(err.splitlines()), objects.missing())
    assert err.startswith("cc-ci: cannot tell whether a run is in flight: the host agent is not ")


def test_an_unreachable_engine_at_the_start_is_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the gates, an engine nobody serves is bad configuration naming DOCKER_HOST."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    with pytest.raises(ConfigError, match=r"^DOCKER_HOST: cannot reach the Docker engine"):
        _engine()
