"""Snapshot and restore real Docker volumes with warmsnap."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import docker
import pytest

from ccci_agent.canonical import Canonicals
from ccci_agent.errors import Conflict, EngineError, SnapshotCorrupt, TarError
from ccci_agent.store import StateDir
from ccci_core.docker_engine import STACK_LABEL, SdkDocker, Volume
from tests.agent.conftest import BASE_DOMAIN, App
from tests.agent.volumes import SPARSE_SIZE, fingerprint, write_dataset

pytestmark = pytest.mark.docker

V1 = "1.0.0+1.0"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _promote(canonicals: Canonicals, app: App, version: str = V1) -> dict[str, object]:
    return canonicals.promote(app.recipe, app.domain, version, COMMIT)


def test_round_trip_is_byte_exact(canonicals: Canonicals, app: App) -> None:
    """Owners, modes, symlinks, hard links, sparse files and xattrs come back exactly."""
    write_dataset(app.mountpoint, "a")
    expected = fingerprint(app.mountpoint)
    _promote(canonicals, app)
    write_dataset(app.mountpoint, "b")
    assert expected != fingerprint(app.mountpoint)

    canonicals.restore(app.recipe)

    assert expected == fingerprint(app.mountpoint)
    assert not (app.mountpoint / "added-after-snapshot").exists()
    sparse = (app.mountpoint / "sparse.img").stat()
    assert SPARSE_SIZE == sparse.st_size
    assert sparse.st_blocks * 512 < SPARSE_SIZE // 8, "the sparse file was restored dense"


def test_manifest_records_every_volume(canonicals: Canonicals, app: App) -> None:
    """The manifest names each volume with the size and sha256 of its tar, and the version."""
    write_dataset(app.mountpoint, "a")
    _promote(canonicals, app)

    manifest = canonicals.warmsnap.verify(app.recipe)

    assert [app.volume] == [v["name"] for v in manifest["volumes"]]
    tar = canonicals.state.snapshot_link(app.recipe) / f"{app.volume}.tar"
    assert tar.stat().st_size == manifest["volumes"][0]["size"]
    assert V1 == manifest["canonical"]["version"]
    assert manifest["tar"].startswith("tar (GNU tar)")


def test_stopped_container_blocks_snapshot_and_restore(
    canonicals: Canonicals, app: App, docker_client: docker.DockerClient, busybox_image: str
) -> None:
    """A stopped container that references the volume is named in a refusal; nothing is written."""
    write_dataset(app.mountpoint, "a")
    _promote(canonicals, app)
    before = sorted(p.name for p in canonicals.state.snapshots(app.recipe).iterdir())
    holder = docker_client.containers.create(
        busybox_image,
        ["true"],
        name=f"{app.recipe}-holder",
        labels={"ccci-test": app.recipe},
        volumes={app.volume: {"bind": "/data", "mode": "rw"}},
    )
    write_dataset(app.mountpoint, "b")
    expected = fingerprint(app.mountpoint)

    with pytest.raises(Conflict, match=f"{app.recipe}-holder"):
        canonicals.snapshot(app.recipe)
    with pytest.raises(Conflict, match=f"{app.recipe}-holder"):
        canonicals.restore(app.recipe)

    assert before == sorted(p.name for p in canonicals.state.snapshots(app.recipe).iterdir())
    assert expected == fingerprint(app.mountpoint)
    assert canonicals.warmsnap.pending_restore(app.recipe) is None
    holder.remove()


def test_first_refused_promote_leaves_no_files(
    canonicals: Canonicals, app: App, docker_client: docker.DockerClient, busybox_image: str
) -> None:
    """A refused first promote creates no app directory."""
    docker_client.containers.create(
        busybox_image,
        ["true"],
        labels={"ccci-test": app.recipe},
        volumes={app.volume: {"bind": "/data", "mode": "rw"}},
    )
    with pytest.raises(Conflict):
        _promote(canonicals, app)
    assert not canonicals.state.app(app.recipe).exists()


def test_snapshot_waits_for_lingering_container(
    state: StateDir, app: App, docker_client: docker.DockerClient, busybox_image: str
) -> None:
    """A task container that goes away while we wait does not fail the snapshot."""
    canonicals = Canonicals(state, SdkDocker.from_env(EngineError), BASE_DOMAIN, poll_interval=0.05)
    write_dataset(app.mountpoint, "a")
    holder = docker_client.containers.create(
        busybox_image,
        ["true"],
        labels={"ccci-test": app.recipe},
        volumes={app.volume: {"bind": "/data", "mode": "rw"}},
    )
    seen = threading.Event()
    engine = canonicals.warmsnap.engine
    original = engine.holders

    def holders(volumes: Sequence[Volume]) -> dict[str, list[str]]:
        found = original(volumes)
        if found:
            seen.set()
        return found

    canonicals.warmsnap.engine.holders = holders  # type: ignore[method-assign]
    remover = threading.Thread(target=lambda: (seen.wait(), holder.remove()))
    remover.start()
    _promote(canonicals, app)
    remover.join()
    assert seen.is_set()
    assert V1 == canonicals.view(app.recipe)["version"]


def test_deployed_stack_is_refused(
    canonicals: Canonicals, app: App, docker_client: docker.DockerClient, busybox_image: str
) -> None:
    """A service of the canonical's stack means it is deployed: no snapshot."""
    service = docker_client.services.create(
        busybox_image,
        ["sleep", "600"],
        name=f"{app.stack}_app",
        labels={STACK_LABEL: app.stack},
        stop_grace_period=1_000_000_000,
    )
    try:
        with pytest.raises(Conflict, match="is deployed"):
            _promote(canonicals, app)
    finally:
        service.remove()
        for _ in range(100):
            if not docker_client.containers.list(
                all=True,
                filters={"label": f"com.docker.swarm.service.name={app.stack}_app"},
                ignore_removed=True,
            ):
                break
            time.sleep(0.2)


def test_corrupt_snapshot_is_refused_before_touching_the_volume(
    canonicals: Canonicals, app: App
) -> None:
    """A tar that does not match its manifest stops the restore; the volume stays as it was."""
    write_dataset(app.mountpoint, "a")
    _promote(canonicals, app)
    write_dataset(app.mountpoint, "b")
    expected = fingerprint(app.mountpoint)
    tar = canonicals.state.snapshot_link(app.recipe) / f"{app.volume}.tar"
    with tar.open("r+b") as handle:
        handle.seek(600)
        byte = handle.read(1)
        handle.seek(600)
        handle.write(bytes([byte[0] ^ 0xFF]))

    with pytest.raises(SnapshotCorrupt):
        canonicals.restore(app.recipe)

    assert expected == fingerprint(app.mountpoint)
    assert canonicals.warmsnap.pending_restore(app.recipe) is None


def test_restore_recreates_missing_and_removes_extra_volumes(
    canonicals: Canonicals, app: App, docker_client: docker.DockerClient
) -> None:
    """After a restore the stack has exactly the known-good volumes, with their data."""
    write_dataset(app.mountpoint, "a")
    expected = fingerprint(app.mountpoint)
    _promote(canonicals, app)
    docker_client.volumes.get(app.volume).remove()
    extra = docker_client.volumes.create(f"{app.stack}_new", labels={STACK_LABEL: app.stack})

    result = canonicals.restore(app.recipe)

    assert [extra.name] == result["restored"]["removed"]
    volumes = docker_client.volumes.list(filters={"label": f"{STACK_LABEL}={app.stack}"})
    assert [app.volume] == [v.name for v in volumes]
    assert expected == fingerprint(Path(volumes[0].attrs["Mountpoint"]))


def test_recover_drops_orphan_generations(canonicals: Canonicals, app: App) -> None:
    """Generations nothing points to and temp links are removed at start; the snapshot stays."""
    write_dataset(app.mountpoint, "a")
    _promote(canonicals, app)
    current = canonicals.warmsnap.current(app.recipe)
    assert current is not None
    orphan = canonicals.state.snapshots(app.recipe) / "20990101T000000Z-deadbeef"
    orphan.mkdir()
    (orphan / f"{app.volume}.tar").write_bytes(b"half")
    temp = canonicals.state.app(app.recipe) / ".tmp-snapshot.0000"
    temp.symlink_to("snapshots/20990101T000000Z-deadbeef")

    actions = canonicals.recover()

    assert [current.name] == [p.name for p in canonicals.state.snapshots(app.recipe).iterdir()]
    assert not temp.is_symlink()
    assert 2 == len(actions)
    canonicals.warmsnap.verify(app.recipe)


def test_recover_keeps_what_the_link_names_even_if_incomplete(
    canonicals: Canonicals, app: App
) -> None:
    """Recovery never deletes the committed generation, even one that no longer verifies."""
    write_dataset(app.mountpoint, "a")
    _promote(canonicals, app)
    current = canonicals.warmsnap.current(app.recipe)
    assert current is not None
    (current / "manifest.json").unlink()

    actions = canonicals.recover()

    assert [current.name] == [p.name for p in canonicals.state.snapshots(app.recipe).iterdir()]
    assert any("kept for inspection" in a for a in actions)


def test_failed_tar_leaves_no_generation(canonicals: Canonicals, app: App) -> None:
    """A snapshot whose tar fails leaves the previous last-good alone and no partial generation."""
    write_dataset(app.mountpoint, "a")
    _promote(canonicals, app)
    before = canonicals.warmsnap.current(app.recipe)
    canonicals.warmsnap.tar = "false"

    with pytest.raises(TarError):
        canonicals.snapshot(app.recipe)

    assert before == canonicals.warmsnap.current(app.recipe)
    assert 1 == len(list(canonicals.state.snapshots(app.recipe).iterdir()))
