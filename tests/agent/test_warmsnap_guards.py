"""Hostile and unlucky input to warmsnap (issue 10): every way it could lose or tear data, refused.

The real engine, real volumes, real mounts and a real full filesystem. Where something must happen
*during* tar, tar is a wrapper script that does it (starts a container, fills the disk) and then
runs the real GNU tar: the agent under test is unchanged, only the moment is chosen.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
import pytest

from ccci_agent.alerts import Alerts
from ccci_agent.canonical import Canonicals
from ccci_agent.errors import Conflict, EngineError, SnapshotCorrupt, StateCorrupt, StorageFull
from ccci_agent.store import StateDir
from ccci_core.atomic import write_json
from ccci_core.docker_engine import STACK_LABEL, SdkDocker
from tests.agent.conftest import BASE_DOMAIN, App
from tests.agent.volumes import fingerprint, write_dataset

pytestmark = pytest.mark.docker

V1 = "1.0.0+1.0"
V2 = "1.1.0+1.1"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _canonicals(state: StateDir, tar: str = "tar") -> Canonicals:
    return Canonicals(
        state,
        SdkDocker.from_env(EngineError),
        BASE_DOMAIN,
        tar=tar,
        wait_timeout=1.0,
        poll_interval=0.1,
    )


def _tar_wrapper(tmp_path: Path, mode: str, action: str) -> str:
    """Write a tar that runs ``action`` (sh) when called with ``--create``/``--extract``."""
    script = tmp_path / f"tar-{mode}"
    script.write_text(
        f'#!/bin/sh\ncase " $* " in *" --{mode} "*) {action} ;; esac\nexec tar "$@"\n'
    )
    script.chmod(0o755)
    return str(script)


@contextmanager
def bind_mount(source: Path, target: Path) -> Iterator[None]:
    """Bind-mount ``source`` at ``target`` for the block (as root, on the host)."""
    subprocess.run(["mount", "--bind", str(source), str(target)], check=True, timeout=30)
    try:
        yield
    finally:
        subprocess.run(["umount", str(target)], check=True, timeout=30)


def _host_dir(tmp_path: Path) -> Path:
    """Return a host directory that is not any volume's, holding one file that must survive."""
    folder = tmp_path / "host"
    folder.mkdir()
    (folder / "host-file").write_text("keep\n")
    return folder


def _generations(canonicals: Canonicals, app: App) -> list[str]:
    return sorted(p.name for p in canonicals.state.snapshots(app.recipe).iterdir())


def _alerts(canonicals: Canonicals) -> list[str]:
    return [a["kind"] for a in Alerts(canonicals.state).active()]


# -- 1. a re-take never launders a dirty volume ------------------------------------------------


def test_retake_of_a_dirty_volume_is_refused(canonicals: Canonicals, app: App) -> None:
    """Dirty, written into, re-taken: 409 "restore first"; registry and known-good untouched."""
    write_dataset(app.mountpoint, "a")
    known_good = fingerprint(app.mountpoint)
    canonicals.promote(app.recipe, app.domain, V1, COMMIT)
    registry = canonicals.state.canonical(app.recipe).read_bytes()
    generations = _generations(canonicals, app)
    canonicals.mark(app.recipe, volume="dirty")
    write_dataset(app.mountpoint, "b")

    with pytest.raises(Conflict, match="restore first"):
        canonicals.snapshot(app.recipe)
    with pytest.raises(Conflict, match="restore first"):
        canonicals.promote(app.recipe, app.domain, V2, COMMIT)
    with pytest.raises(Conflict, match="only a restore"):
        canonicals.mark(app.recipe, volume="clean")

    assert registry == canonicals.state.canonical(app.recipe).read_bytes()
    assert generations == _generations(canonicals, app)
    assert "dirty" == canonicals.view(app.recipe)["volume"]
    canonicals.restore(app.recipe)
    assert known_good == fingerprint(app.mountpoint)


def test_retake_during_a_pending_restore_is_refused(canonicals: Canonicals, app: App) -> None:
    """A restore-pending marker refuses re-take, seed and promote alike."""
    write_dataset(app.mountpoint, "a")
    canonicals.promote(app.recipe, app.domain, V1, COMMIT)
    write_json(canonicals.state.restore_pending(app.recipe), {"snapshot": "x"})

    for attempt in (
        lambda: canonicals.snapshot(app.recipe),
        lambda: canonicals.promote(app.recipe, app.domain, V2, COMMIT),
    ):
        with pytest.raises(Conflict, match="restore is pending; restore first"):
            attempt()


def test_only_the_seeded_deploy_promotes_a_dirty_volume(canonicals: Canonicals, app: App) -> None:
    """The seed's token promotes; a wrong token, another version, or a dirtying mark void it."""
    write_dataset(app.mountpoint, "a")
    canonicals.promote(app.recipe, app.domain, V1, COMMIT)
    seed = canonicals.seed(app.recipe, V2)
    token = seed["seed"]
    assert ("deployed", "dirty", V2) == (seed["status"], seed["volume"], seed["seeding"])
    assert token not in json.dumps(canonicals.view(app.recipe))
    write_dataset(app.mountpoint, "b")

    for wrong, version in (("0" * 32, V2), (token, "1.2.0+1.2")):
        with pytest.raises(Conflict, match="restore first"):
            canonicals.promote(app.recipe, app.domain, version, COMMIT, wrong)
    view = canonicals.promote(app.recipe, app.domain, V2, COMMIT, token)
    assert (V2, "clean", None) == (view["version"], view["volume"], view["seeding"])

    # A quick run marking the volume dirty after a seed makes the token worthless.
    token = canonicals.seed(app.recipe, "1.2.0+1.2")["seed"]
    canonicals.mark(app.recipe, status="deployed", volume="dirty")
    with pytest.raises(Conflict, match="restore first"):
        canonicals.promote(app.recipe, app.domain, "1.2.0+1.2", COMMIT, token)


# -- 2. restore never clears a volume that is not this stack's ----------------------------------


@pytest.mark.parametrize("owner", [None, "someone_else"])
def test_restore_refuses_a_same_named_volume_of_another_owner(
    canonicals: Canonicals,
    app: App,
    docker_client: docker.DockerClient,
    busybox_image: str,
    owner: str | None,
) -> None:
    """A same-named volume without this stack's label, in use, is refused and keeps its data."""
    write_dataset(app.mountpoint, "a")
    canonicals.promote(app.recipe, app.domain, V1, COMMIT)
    docker_client.volumes.get(app.volume).remove()
    labels = {} if owner is None else {STACK_LABEL: owner}
    foreign = docker_client.volumes.create(app.volume, labels=labels)
    try:
        mountpoint = Path(foreign.attrs["Mountpoint"])
        (mountpoint / "theirs").write_text("precious\n")
        docker_client.containers.run(
            busybox_image,
            ["sleep", "3600"],
            detach=True,
            labels={"ccci-test": app.recipe},
            volumes={app.volume: {"bind": "/data", "mode": "rw"}},
        )

        with pytest.raises(Conflict, match=f"{app.volume} exists but is labelled for"):
            canonicals.restore(app.recipe)

        assert "precious\n" == (mountpoint / "theirs").read_text()
        assert canonicals.warmsnap.pending_restore(app.recipe) is None
    finally:
        for container in docker_client.containers.list(
            all=True, filters={"label": f"ccci-test={app.recipe}"}
        ):
            container.remove(force=True)
        foreign.remove(force=True)


# -- 3. never through a mount point ------------------------------------------------------------


def test_restore_never_deletes_through_a_mount_inside_the_volume(
    canonicals: Canonicals, app: App, tmp_path: Path
) -> None:
    """A bind mount inside the volume is refused by restore and snapshot; its files stay."""
    write_dataset(app.mountpoint, "a")
    canonicals.promote(app.recipe, app.domain, V1, COMMIT)
    outside = _host_dir(tmp_path)
    point = app.mountpoint / "outside"
    point.mkdir()
    with bind_mount(outside, point):
        with pytest.raises(Conflict, match="mount points inside it"):
            canonicals.restore(app.recipe)
        with pytest.raises(Conflict, match="mount points inside it"):
            canonicals.snapshot(app.recipe)
        assert "keep\n" == (outside / "host-file").read_text()
        assert canonicals.warmsnap.pending_restore(app.recipe) is None


# -- 4./5. containers that come during the window ----------------------------------------------


def test_holder_arriving_during_extract_leaves_the_restore_pending(
    state: StateDir,
    app: App,
    tmp_path: Path,
    docker_client: docker.DockerClient,
    busybox_image: str,
) -> None:
    """A container that mounts the volume mid-extract: 409, restore-pending, dirty; retry works."""
    start = (
        f"docker run -d --label ccci-test={app.recipe} -v {app.volume}:/data "
        f"{busybox_image} sleep 3600 >/dev/null"
    )
    canonicals = _canonicals(state, _tar_wrapper(tmp_path, "extract", start))
    write_dataset(app.mountpoint, "a")
    known_good = fingerprint(app.mountpoint)
    canonicals.promote(app.recipe, app.domain, V1, COMMIT)
    write_dataset(app.mountpoint, "b")

    with pytest.raises(Conflict, match="used its volumes meanwhile"):
        canonicals.restore(app.recipe)

    assert canonicals.warmsnap.pending_restore(app.recipe) is not None
    assert "dirty" == canonicals.view(app.recipe)["volume"]
    for container in docker_client.containers.list(filters={"label": f"ccci-test={app.recipe}"}):
        container.remove(force=True)
    _canonicals(state).restore(app.recipe)
    assert known_good == fingerprint(app.mountpoint)


@pytest.mark.parametrize("how", ["volume", "bind"])
def test_short_lived_mount_during_tar_discards_the_generation(
    state: StateDir, app: App, tmp_path: Path, busybox_image: str, how: str
) -> None:
    """A container that mounts the volume, writes and is gone before tar ends tears nothing."""
    source = app.volume if how == "volume" else str(app.mountpoint)
    writer = (
        f"docker run --rm -v {source}:/data {busybox_image} sh -c 'echo torn > /data/torn'"
        " >/dev/null"
    )
    canonicals = _canonicals(state, _tar_wrapper(tmp_path, "create", writer))
    write_dataset(app.mountpoint, "a")
    _canonicals(state).promote(app.recipe, app.domain, V1, COMMIT)
    before = _generations(canonicals, app)

    with pytest.raises(Conflict, match="used its volumes meanwhile"):
        canonicals.snapshot(app.recipe)

    assert (app.mountpoint / "torn").exists(), "the writer never ran: the test proves nothing"
    assert before == _generations(canonicals, app)
    canonicals.warmsnap.verify(app.recipe)


# -- 6. bind mounts of the volume's path hold it -----------------------------------------------


@pytest.mark.parametrize("level", ["_data", "volume dir"])
def test_bind_mount_of_the_volume_path_holds_it(
    canonicals: Canonicals,
    app: App,
    docker_client: docker.DockerClient,
    busybox_image: str,
    level: str,
) -> None:
    """A stopped container binding the mountpoint (or its parent) blocks snapshot and restore."""
    write_dataset(app.mountpoint, "a")
    canonicals.promote(app.recipe, app.domain, V1, COMMIT)
    source = app.mountpoint if level == "_data" else app.mountpoint.parent
    docker_client.containers.create(
        busybox_image,
        ["true"],
        name=f"{app.recipe}-binder",
        labels={"ccci-test": app.recipe},
        volumes={str(source): {"bind": "/x", "mode": "rw"}},
    )
    with pytest.raises(Conflict, match=f"{app.recipe}-binder"):
        canonicals.snapshot(app.recipe)
    with pytest.raises(Conflict, match=f"{app.recipe}-binder"):
        canonicals.restore(app.recipe)


# -- 7./13. volumes warmsnap cannot archive, stacks with none ----------------------------------


def test_volume_with_driver_options_is_refused_at_promote(
    canonicals: Canonicals, app: App, docker_client: docker.DockerClient
) -> None:
    """A volume whose data is elsewhere (driver options) is refused; nothing is written."""
    docker_client.volumes.get(app.volume).remove()
    docker_client.volumes.create(
        app.volume,
        driver_opts={"type": "tmpfs", "device": "tmpfs", "o": "size=1m"},
        labels={STACK_LABEL: app.stack},
    )
    with pytest.raises(Conflict, match="driver 'local' with options device=tmpfs"):
        canonicals.promote(app.recipe, app.domain, V1, COMMIT)
    assert not canonicals.state.app(app.recipe).exists()


def test_promote_of_a_stack_without_volumes_is_refused(
    canonicals: Canonicals, app: App, docker_client: docker.DockerClient
) -> None:
    """No volumes means nothing to keep: a promote is refused, never recorded as empty."""
    docker_client.volumes.get(app.volume).remove()
    with pytest.raises(Conflict, match="has no volumes"):
        canonicals.promote(app.recipe, app.domain, V1, COMMIT)
    assert not canonicals.state.app(app.recipe).exists()


# -- 8. what tar skips is reported -------------------------------------------------------------


def test_unix_sockets_are_reported_as_skipped(canonicals: Canonicals, app: App) -> None:
    """tar leaves sockets out: the manifest and the answer say which."""
    write_dataset(app.mountpoint, "a")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(app.mountpoint / "many" / "db.sock"))
    listener.close()

    view = canonicals.promote(app.recipe, app.domain, V1, COMMIT)

    expected = [f"{app.volume}:./many/db.sock"]
    assert expected == view["snapshot"]["skipped"]
    assert expected == canonicals.warmsnap.verify(app.recipe)["skipped"]


# -- 9. a full disk ------------------------------------------------------------------------------


@pytest.fixture
def small_state(tmp_path: Path) -> Iterator[StateDir]:
    """A state directory on a 4 MiB tmpfs of its own."""
    root = tmp_path / "small"
    root.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(root)], check=True, timeout=30
    )
    try:
        state = StateDir(root / "state")
        state.ensure()
        yield state
    finally:
        subprocess.run(["umount", str(root)], check=True, timeout=30)


def test_full_disk_while_writing_the_manifest_leaves_the_old_snapshot(
    small_state: StateDir, app: App, tmp_path: Path
) -> None:
    """ENOSPC after the tars: the half generation goes, the error says so, later calls work."""
    filler = small_state.root.parent / "filler"
    fill = f'tar "$@"; code=$?; cat /dev/zero > {filler} 2>/dev/null; exit $code'
    write_dataset(app.mountpoint, "a", bulk=64 << 10)
    _canonicals(small_state).promote(app.recipe, app.domain, V1, COMMIT)
    canonicals = _canonicals(small_state, _tar_wrapper(tmp_path, "create", fill))
    before = _generations(canonicals, app)

    with pytest.raises(StorageFull, match=f"the previous snapshot {before[0]} is intact"):
        canonicals.snapshot(app.recipe)

    assert os.statvfs(small_state.root).f_bavail * os.statvfs(small_state.root).f_frsize > 0
    assert before == _generations(canonicals, app)
    canonicals.warmsnap.verify(app.recipe)
    assert "dirty" == canonicals.mark(app.recipe, volume="dirty")["volume"]


# -- 10./14. corrupt state is reported, quarantined, alerted; never fatal -------------------------


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"format": 1, "id": "x", "vol', "cannot be read"),
        (b'{"format": 1}', "is malformed"),
        ("traversal", "unexpected volume name '../../etc/x'"),
    ],
)
def test_corrupt_manifest_is_reported_and_alerted(
    canonicals: Canonicals, app: App, content: bytes | str, reason: str
) -> None:
    """A broken manifest: view says corrupt naming the file, restore is SnapshotCorrupt, alert."""
    write_dataset(app.mountpoint, "a")
    canonicals.promote(app.recipe, app.domain, V1, COMMIT)
    manifest_path = canonicals.warmsnap.current(app.recipe) / "manifest.json"  # type: ignore[operator]
    if content == "traversal":
        manifest = json.loads(manifest_path.read_bytes())
        manifest["volumes"][0]["name"] = "../../etc/x"
        content = json.dumps(manifest).encode()
    assert isinstance(content, bytes)
    manifest_path.write_bytes(content)

    view = canonicals.view(app.recipe)
    with pytest.raises(SnapshotCorrupt, match=reason):
        canonicals.restore(app.recipe)

    assert [f"manifest.json {reason}"] == [
        f"manifest.json {reason}" for c in view["corrupt"] if "manifest.json" in c and reason in c
    ]
    assert view["snapshot"] is None
    assert ["snapshot-corrupt"] == _alerts(canonicals)
    assert [app.recipe] == [c["recipe"] for c in canonicals.all()]
    canonicals.recover()  # never raises for one broken canonical


def test_tar_that_does_not_extract_is_corrupt_and_alerted(canonicals: Canonicals, app: App) -> None:
    """An archive matching its sha256 that tar cannot read: SnapshotCorrupt, alert, untouched."""
    write_dataset(app.mountpoint, "a")
    canonicals.promote(app.recipe, app.domain, V1, COMMIT)
    write_dataset(app.mountpoint, "b")
    touched = fingerprint(app.mountpoint)
    current = canonicals.warmsnap.current(app.recipe)
    assert current is not None
    garbage = b"\x00not a tar" * 1000
    (current / f"{app.volume}.tar").write_bytes(garbage)
    manifest = json.loads((current / "manifest.json").read_bytes())
    manifest["volumes"][0] |= {"sha256": hashlib.sha256(garbage).hexdigest(), "size": len(garbage)}
    (current / "manifest.json").write_text(json.dumps(manifest))

    with pytest.raises(SnapshotCorrupt, match="does not extract"):
        canonicals.restore(app.recipe)
    assert ["snapshot-corrupt"] == _alerts(canonicals)
    # It was extracted into a staging directory beside the volume: the volume never changed.
    assert touched == fingerprint(app.mountpoint)
    assert canonicals.warmsnap.pending_restore(app.recipe) is None
    assert [app.mountpoint] == list(app.mountpoint.parent.iterdir())


def test_corrupt_registry_is_repaired_from_the_manifest(canonicals: Canonicals, app: App) -> None:
    """A truncated canonical.json reads corrupt, recover rebuilds it and keeps the broken file."""
    write_dataset(app.mountpoint, "a")
    canonicals.promote(app.recipe, app.domain, V1, COMMIT)
    registry = canonicals.state.canonical(app.recipe)
    registry.write_bytes(registry.read_bytes()[:20])

    assert "corrupt" == canonicals.view(app.recipe)["status"]
    assert ["state-corrupt"] == _alerts(canonicals)
    actions = canonicals.recover()

    assert V1 == canonicals.view(app.recipe)["version"]
    assert [] == canonicals.view(app.recipe)["corrupt"]
    assert any("moved to canonical.json.corrupt-" in a for a in actions), actions
    assert 1 == len(list(registry.parent.glob("canonical.json.corrupt-*")))


def test_corrupt_live_state_reads_dirty_and_is_quarantined(
    canonicals: Canonicals, app: App
) -> None:
    """A truncated live.json reads dirty (restore first); the next write moves it aside."""
    write_dataset(app.mountpoint, "a")
    canonicals.promote(app.recipe, app.domain, V1, COMMIT)
    canonicals.state.live(app.recipe).write_bytes(b'{"volume": "cl')

    assert "dirty" == canonicals.view(app.recipe)["volume"]
    with pytest.raises(Conflict, match="restore first"):
        canonicals.snapshot(app.recipe)
    canonicals.restore(app.recipe)

    assert "clean" == canonicals.view(app.recipe)["volume"]
    assert 1 == len(list(canonicals.state.app(app.recipe).glob("live.json.corrupt-*")))


def test_corrupt_restore_marker_still_means_pending(canonicals: Canonicals, app: App) -> None:
    """A restore-pending marker that cannot be read keeps the volume dirty until restored."""
    write_dataset(app.mountpoint, "a")
    canonicals.promote(app.recipe, app.domain, V1, COMMIT)
    canonicals.state.restore_pending(app.recipe).write_bytes(b"{")

    assert "dirty" == canonicals.view(app.recipe)["volume"]
    with pytest.raises(Conflict, match="restore is pending"):
        canonicals.snapshot(app.recipe)
    canonicals.restore(app.recipe)
    assert canonicals.warmsnap.pending_restore(app.recipe) is None


# -- 15. modes ----------------------------------------------------------------------------------


def test_snapshot_files_are_not_world_readable(canonicals: Canonicals, app: App) -> None:
    """Tars and manifest are 0640 like every other state file."""
    write_dataset(app.mountpoint, "a")
    canonicals.promote(app.recipe, app.domain, V1, COMMIT)
    current = canonicals.warmsnap.current(app.recipe)
    assert current is not None
    assert {0o640} == {stat.S_IMODE(p.stat().st_mode) for p in current.iterdir()}


# -- found by a second hostile pass -------------------------------------------------------------


@pytest.mark.parametrize("fields", [{"status": "idle"}, {}, {"status": None, "volume": None}])
def test_a_mark_without_volume_keeps_the_dirty_mark(
    canonicals: Canonicals, app: App, fields: dict[str, str | None]
) -> None:
    """A PATCH that does not name the volume leaves it dirty: a re-take stays refused."""
    write_dataset(app.mountpoint, "a")
    canonicals.promote(app.recipe, app.domain, V1, COMMIT)
    canonicals.mark(app.recipe, volume="dirty")

    canonicals.mark(app.recipe, **fields)  # type: ignore[arg-type]

    assert "dirty" == canonicals.view(app.recipe)["volume"]
    with pytest.raises(Conflict, match="restore first"):
        canonicals.snapshot(app.recipe)


def test_recover_keeps_the_dirty_mark_when_it_rebuilds_the_registry(
    canonicals: Canonicals, app: App
) -> None:
    """Rebuilding a broken canonical.json from the manifest never declares the volume clean."""
    write_dataset(app.mountpoint, "a")
    canonicals.promote(app.recipe, app.domain, V1, COMMIT)
    canonicals.mark(app.recipe, volume="dirty")
    canonicals.state.canonical(app.recipe).write_bytes(b"{")

    canonicals.recover()

    assert (V1, "dirty") == tuple(canonicals.view(app.recipe)[k] for k in ("version", "volume"))
    with pytest.raises(Conflict, match="restore first"):
        canonicals.snapshot(app.recipe)


@pytest.mark.parametrize("content", [b"null", b"[]", b"{}", b'{"recipe": 1}'])
def test_registry_of_the_wrong_shape_is_corrupt_not_absent(
    canonicals: Canonicals, app: App, content: bytes
) -> None:
    """``null`` or ``{}`` in canonical.json is a broken canonical, not a free first promote."""
    write_dataset(app.mountpoint, "a")
    canonicals.promote(app.recipe, app.domain, V1, COMMIT)
    canonicals.mark(app.recipe, volume="dirty")
    canonicals.state.canonical(app.recipe).write_bytes(content)

    with pytest.raises(StateCorrupt):
        canonicals.promote(app.recipe, app.domain, V2, COMMIT)
    view = canonicals.view(app.recipe)
    assert ("corrupt", "dirty") == (view["status"], view["volume"])
    assert [app.recipe] == [c["recipe"] for c in canonicals.all()]


@pytest.mark.parametrize(
    "content", [b"null", b"[]", b'"dirty"', b"5", b'{"volume": 1}', b'{"volume": "Dirty"}']
)
def test_live_state_of_the_wrong_shape_reads_dirty(
    canonicals: Canonicals, app: App, content: bytes
) -> None:
    """Anything but a live-state object with volume exactly ``clean`` is dirty."""
    write_dataset(app.mountpoint, "a")
    canonicals.promote(app.recipe, app.domain, V1, COMMIT)
    canonicals.state.live(app.recipe).write_bytes(content)

    assert "dirty" == canonicals.view(app.recipe)["volume"]
    with pytest.raises(Conflict, match="restore first"):
        canonicals.snapshot(app.recipe)


def test_live_state_never_renames_the_stack(canonicals: Canonicals, app: App) -> None:
    """Only status, volume and seed come from live.json; domain and stack are the registry's."""
    write_dataset(app.mountpoint, "a")
    canonicals.promote(app.recipe, app.domain, V1, COMMIT)
    write_json(canonicals.state.live(app.recipe), {"stack": "other_stack", "volume": "clean"})

    assert app.stack == canonicals.view(app.recipe)["stack"]


def test_restore_marker_holding_null_still_means_pending(canonicals: Canonicals, app: App) -> None:
    """A marker file is pending whatever it holds."""
    write_dataset(app.mountpoint, "a")
    canonicals.promote(app.recipe, app.domain, V1, COMMIT)
    canonicals.state.restore_pending(app.recipe).write_bytes(b"null")

    with pytest.raises(Conflict, match="restore is pending"):
        canonicals.snapshot(app.recipe)


def test_another_version_on_clean_data_needs_the_seed(canonicals: Canonicals, app: App) -> None:
    """Clean data holds the known-good's version: another version or a stale seed is refused."""
    write_dataset(app.mountpoint, "a")
    canonicals.promote(app.recipe, app.domain, V1, COMMIT)
    stale = canonicals.seed(app.recipe, V2)["seed"]
    canonicals.restore(app.recipe)  # an operator restores: the seed is void

    for seed in (None, stale):
        with pytest.raises(Conflict, match="needs the seed"):
            canonicals.promote(app.recipe, app.domain, V2, COMMIT, seed)
    assert V1 == canonicals.view(app.recipe)["version"]
    canonicals.snapshot(app.recipe)  # a re-take at the recorded version stays allowed


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"volumes": []}, "at least one volume"),
        ({"created": "2026-01-01T00:00:00"}, "no time zone"),
        ({"created": "yesterday"}, "Invalid isoformat"),
        ({"skipped": "x"}, "skipped is not a list"),
    ],
)
def test_manifest_of_the_wrong_shape_is_corrupt(
    canonicals: Canonicals, app: App, change: dict[str, object], reason: str
) -> None:
    """No volumes (a restore would remove them all), a bad date, bad skips: corrupt, reported."""
    write_dataset(app.mountpoint, "a")
    canonicals.promote(app.recipe, app.domain, V1, COMMIT)
    current = canonicals.warmsnap.current(app.recipe)
    assert current is not None
    manifest = json.loads((current / "manifest.json").read_bytes())
    (current / "manifest.json").write_text(json.dumps(manifest | change))

    assert any(reason in c for c in canonicals.view(app.recipe)["corrupt"])
    with pytest.raises(SnapshotCorrupt, match=reason):
        canonicals.restore(app.recipe)
    assert [app.volume] == [v.name for v in canonicals.engine.stack_volumes(app.stack)]


def test_prune_with_a_corrupt_manifest_refuses_that_one_only(
    canonicals: Canonicals, app: App
) -> None:
    """One canonical that cannot be read is reported as refused; its volumes stay."""
    write_dataset(app.mountpoint, "a")
    canonicals.promote(app.recipe, app.domain, V1, COMMIT)
    (canonicals.warmsnap.current(app.recipe) / "manifest.json").write_bytes(b"{")  # type: ignore[operator]

    result = canonicals.prune_stale([])

    assert [] == result["pruned"]
    assert app.recipe in result["refused"]
    assert [app.volume] == [v.name for v in canonicals.engine.stack_volumes(app.stack)]


def test_mountpoint_replaced_by_a_symlink_is_refused(
    canonicals: Canonicals, app: App, tmp_path: Path
) -> None:
    """``_data`` pointing elsewhere is never cleared or archived; the target keeps its files."""
    write_dataset(app.mountpoint, "a")
    canonicals.promote(app.recipe, app.domain, V1, COMMIT)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "host-file").write_text("keep\n")
    saved = app.mountpoint.with_name("_data.saved")
    app.mountpoint.rename(saved)
    app.mountpoint.symlink_to(elsewhere)
    try:
        with pytest.raises(Conflict, match="not a directory"):
            canonicals.restore(app.recipe)
        with pytest.raises(Conflict, match="not a directory"):
            canonicals.snapshot(app.recipe)
        assert "keep\n" == (elsewhere / "host-file").read_text()
    finally:
        app.mountpoint.unlink()
        saved.rename(app.mountpoint)


def test_missing_mountpoint_is_a_conflict(canonicals: Canonicals, app: App) -> None:
    """A volume whose ``_data`` is gone answers a clear refusal, not a FileNotFoundError."""
    write_dataset(app.mountpoint, "a")
    canonicals.promote(app.recipe, app.domain, V1, COMMIT)
    saved = app.mountpoint.with_name("_data.saved")
    app.mountpoint.rename(saved)
    try:
        with pytest.raises(Conflict, match="unusable"):
            canonicals.restore(app.recipe)
        assert canonicals.warmsnap.pending_restore(app.recipe) is None
    finally:
        saved.rename(app.mountpoint)


def test_mount_exactly_at_the_mountpoint_is_refused(
    canonicals: Canonicals, app: App, tmp_path: Path
) -> None:
    """A filesystem mounted on ``_data`` itself is not the volume's data: refused, kept."""
    write_dataset(app.mountpoint, "a")
    canonicals.promote(app.recipe, app.domain, V1, COMMIT)
    other = _host_dir(tmp_path)
    with bind_mount(other, app.mountpoint):
        with pytest.raises(Conflict, match="mount points inside it"):
            canonicals.restore(app.recipe)
        assert "keep\n" == (other / "host-file").read_text()


@pytest.mark.parametrize("mode", ["create", "extract"])
def test_mount_made_during_tar_is_noticed(
    state: StateDir, app: App, tmp_path: Path, mode: str
) -> None:
    """A bind mount that appears inside the volume while tar runs: the result is not kept."""
    other = tmp_path / "other"
    other.mkdir()
    point = app.mountpoint / "private"
    mount = f"mkdir -p {point} && mount --bind {other} {point}"
    canonicals = _canonicals(state, _tar_wrapper(tmp_path, mode, mount))
    write_dataset(app.mountpoint, "a")
    _canonicals(state).promote(app.recipe, app.domain, V1, COMMIT)
    before = _generations(canonicals, app)
    operation = canonicals.snapshot if mode == "create" else canonicals.restore
    try:
        with pytest.raises(Conflict, match="mount points inside it"):
            operation(app.recipe)
        assert before == _generations(canonicals, app)
        if mode == "extract":
            assert canonicals.warmsnap.pending_restore(app.recipe) is not None
    finally:
        subprocess.run(["umount", str(point)], check=False, timeout=30)


def test_bind_holders_are_found_however_the_path_is_spelled(
    canonicals: Canonicals,
    app: App,
    docker_client: docker.DockerClient,
    busybox_image: str,
    tmp_path: Path,
) -> None:
    """Through a symlink, or through another bind mount of the volumes directory: still held."""
    write_dataset(app.mountpoint, "a")
    canonicals.promote(app.recipe, app.domain, V1, COMMIT)
    link = tmp_path / "link"
    link.symlink_to(app.mountpoint)
    alias = tmp_path / "alias"
    alias.mkdir()
    with bind_mount(app.mountpoint.parent, alias):
        for source in (link, alias / "_data"):
            holder = docker_client.containers.create(
                busybox_image,
                ["true"],
                labels={"ccci-test": app.recipe},
                volumes={str(source): {"bind": "/x", "mode": "rw"}},
            )
            with pytest.raises(Conflict, match=str(holder.name)):
                canonicals.snapshot(app.recipe)
            holder.remove(force=True)


def test_full_disk_after_the_flip_says_the_snapshot_is_committed(
    small_state: StateDir, app: App, tmp_path: Path
) -> None:
    """Space for the manifest but not the registry: 507 says committed; recover repairs it."""
    filler = small_state.root.parent / "filler"
    # Fill the disk in whole pages after tar, then free exactly one: the manifest takes it.
    fill = (
        f'tar "$@"; code=$?; dd if=/dev/zero of={filler} bs=4096 2>/dev/null; '
        f"truncate -s -4096 {filler}; exit $code"
    )
    write_dataset(app.mountpoint, "a", bulk=64 << 10)
    canonicals = _canonicals(small_state, _tar_wrapper(tmp_path, "create", fill))

    with pytest.raises(StorageFull, match="is committed but its registry entry"):
        canonicals.promote(app.recipe, app.domain, V1, COMMIT)

    filler.unlink()
    canonicals.recover()
    assert V1 == canonicals.view(app.recipe)["version"]


def test_an_acknowledged_broken_file_stays_quiet_until_it_breaks_anew(
    canonicals: Canonicals, app: App
) -> None:
    """Every read meets the broken file: one alert; acked, it stays quiet; broken again, alerts."""
    write_dataset(app.mountpoint, "a")
    canonicals.promote(app.recipe, app.domain, V1, COMMIT)
    registry = canonicals.state.canonical(app.recipe)
    registry.write_bytes(b"{")
    alerts = Alerts(canonicals.state)

    canonicals.view(app.recipe)
    canonicals.view(app.recipe)
    [alert] = alerts.active()
    alerts.ack(alert["id"])
    canonicals.view(app.recipe)
    assert [] == alerts.active()

    registry.write_bytes(b"[")  # broken anew: another occurrence
    canonicals.view(app.recipe)
    assert ["state-corrupt"] == [a["kind"] for a in alerts.active()]


def test_attach_restores_touched_data_before_a_deploy(canonicals: Canonicals, app: App) -> None:
    """Dirty: attach brings back the known-good, then marks it dirty; clean: it only marks."""
    write_dataset(app.mountpoint, "a")
    known_good = fingerprint(app.mountpoint)
    canonicals.promote(app.recipe, app.domain, V1, COMMIT)

    clean = canonicals.attach(app.recipe)
    write_dataset(app.mountpoint, "b")  # what the deploy did
    touched = canonicals.attach(app.recipe)  # the next deploy (the run before was killed)

    assert (None, "dirty", "deployed") == (clean["restored"], clean["volume"], clean["status"])
    assert touched["restored"] is not None
    assert known_good == fingerprint(app.mountpoint)
    assert "dirty" == touched["volume"]


def test_a_second_seed_starts_again_from_the_known_good(canonicals: Canonicals, app: App) -> None:
    """A re-seed that failed and is tried again never builds on the failed attempt's data."""
    write_dataset(app.mountpoint, "a")
    known_good = fingerprint(app.mountpoint)
    canonicals.promote(app.recipe, app.domain, V1, COMMIT)
    first = canonicals.seed(app.recipe, V2)["seed"]
    write_dataset(app.mountpoint, "b")  # the failed attempt's deploy

    second = canonicals.seed(app.recipe, V2)

    assert second["restored"] is not None
    assert known_good == fingerprint(app.mountpoint)
    with pytest.raises(Conflict, match="restore first"):
        canonicals.promote(app.recipe, app.domain, V2, COMMIT, first)
