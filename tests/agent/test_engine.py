"""The Docker adapter maps every failure of the engine to EngineError."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import docker
import pytest

from ccci_agent.errors import EngineError
from ccci_agent.warmsnap import mounts_inside
from ccci_core.docker_engine import DockerVolumes, SdkDocker, Volume, mount_holds

VOLUME = Volume("s_data", Path("/var/lib/docker/volumes/s_data/_data"))


@pytest.fixture
def dead_engine(tmp_path: Path) -> SdkDocker:
    """An adapter whose daemon socket does not exist."""
    client = docker.DockerClient(base_url=f"unix://{tmp_path}/none.sock", version="1.41")
    return SdkDocker(client, EngineError)


@pytest.mark.parametrize(
    "call",
    [
        lambda e: e.stack_volumes("s"),
        lambda e: e.stack_services("s"),
        lambda e: e.volume("v"),
        lambda e: e.holders([VOLUME]),
        lambda e: e.watch_mounts([VOLUME]).__enter__(),
        lambda e: e.create_volume("v", "s"),
        lambda e: e.remove_volume("v"),
    ],
)
def test_unreachable_daemon_is_an_engine_error(
    dead_engine: SdkDocker, call: Callable[[DockerVolumes], object]
) -> None:
    """A stopped daemon is reported as EngineError, never as a requests exception."""
    with pytest.raises(EngineError):
        call(dead_engine)


def test_from_env_with_a_dead_daemon_is_an_engine_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Connecting to a socket nobody serves fails with EngineError."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    with pytest.raises(EngineError):
        SdkDocker.from_env(EngineError)


@pytest.mark.docker
def test_missing_volume_is_an_engine_error() -> None:
    """Removing a volume that does not exist is an EngineError from the real engine."""
    with pytest.raises(EngineError, match="volume rm"):
        SdkDocker.from_env(EngineError).remove_volume("ccci-test-no-such-volume-4f1c")


@pytest.mark.parametrize(
    ("mount", "holds"),
    [
        ({"Type": "volume", "Name": "s_data"}, True),
        ({"Type": "volume", "Name": "s_data2"}, False),
        ({"Type": "bind", "Source": "/var/lib/docker/volumes/s_data/_data", "RW": True}, True),
        ({"Type": "bind", "Source": "/var/lib/docker/volumes/s_data/_data/sub", "RW": True}, True),
        ({"Type": "bind", "Source": "/var/lib/docker/volumes/s_data", "RW": True}, True),
        ({"Type": "bind", "Source": "/var/lib/docker/volumes", "RW": True}, True),
        ({"Type": "bind", "Source": "/", "RW": True}, True),
        ({"Type": "bind", "Source": "/var/lib/docker/volumes/s_data2", "RW": True}, False),
        ({"Type": "bind", "Source": "/var/lib/docker/volumes/s_dat", "RW": True}, False),
        ({"Type": "bind", "Source": "/var/lib/docker/volumes", "RW": False}, False),
        ({"Type": "tmpfs", "Destination": "/tmp"}, False),
    ],
)
def test_which_mounts_hold_a_volume(mount: dict[str, object], holds: bool) -> None:
    """Named mounts, and writable binds at, above or below the mountpoint, hold the volume."""
    assert holds == mount_holds(mount, VOLUME)


def test_mounts_inside_reads_mountinfo_with_escapes(tmp_path: Path) -> None:
    """Mount points at or inside a path are found, octal escapes decoded, siblings not."""
    mountinfo = tmp_path / "mountinfo"
    root = tmp_path / "vol"
    root.mkdir()
    mountinfo.write_text(
        f"22 1 0:21 / {root} rw - ext4 /dev/vda rw\n"
        f"23 22 0:22 / {root}/with\\040space rw - tmpfs tmpfs rw\n"
        f"24 1 0:23 / {root}-sibling rw - tmpfs tmpfs rw\n"
    )
    assert [str(root), f"{root}/with space"] == mounts_inside(root, mountinfo)
