"""The state directory's reading helpers: corrupt files are moved aside, never deleted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ccci_agent.errors import AgentError, StateCorrupt
from ccci_agent.store import Report, StateDir, quarantine, read_json, read_json_or_quarantine

Reported = list[tuple[Path, Path, str]]


@pytest.fixture
def reported() -> Reported:
    """What the corrupt-file reporter was told, in order."""
    return []


def _report(into: Reported) -> Report:
    return lambda path, moved, reason: into.append((path, moved, reason))


def test_quarantine_moves_a_file_aside_in_its_directory(tmp_path: Path) -> None:
    """The bytes stay, under ``<name>.corrupt-<utc-ts>`` beside where they were."""
    path = tmp_path / "_leases.json"
    path.write_bytes(b'{"trunc')

    moved = quarantine(path)

    assert (tmp_path, False) == (moved.parent, path.exists())
    assert moved.name.startswith("_leases.json.corrupt-2")
    assert b'{"trunc' == moved.read_bytes()


def test_quarantine_never_overwrites_an_earlier_one(tmp_path: Path) -> None:
    """Three corrupt files at one path within a second: three quarantined copies, none lost."""
    path = tmp_path / "x.json"
    moved = []
    for i in range(3):
        path.write_text(f"garbage {i}")
        moved.append(quarantine(path))

    assert 3 == len(set(moved))
    assert ["garbage 0", "garbage 1", "garbage 2"] == [m.read_text() for m in moved]


@pytest.mark.parametrize("kind", ["directory", "symlink"])
def test_quarantine_moves_directories_and_symlinks(tmp_path: Path, kind: str) -> None:
    """Any entry can be moved aside: a directory with its content, a symlink as a link."""
    path = tmp_path / "entry"
    if kind == "directory":
        path.mkdir()
        (path / "inside").write_text("kept")
    else:
        path.symlink_to("nowhere")

    moved = quarantine(path)

    assert not path.is_symlink()
    assert not path.exists()
    if kind == "directory":
        assert "kept" == (moved / "inside").read_text()
    else:
        assert Path("nowhere") == moved.readlink()


def test_read_json_still_raises_on_a_corrupt_file(tmp_path: Path) -> None:
    """read_json leaves the file alone and raises StateCorrupt, an AgentError naming it."""
    path = tmp_path / "canonical.json"
    path.write_text("{")
    with pytest.raises(StateCorrupt) as raised:
        read_json(path)
    assert isinstance(raised.value, AgentError)
    assert str(path) == raised.value.details["path"]
    assert path.exists()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "Expecting value"),
        (b'{"a": {"expires": 1', "Expecting"),
        (b"\xc3\x28 garbage", "codec can't decode"),
        (b"[1, 2]", "unexpected content"),
    ],
)
def test_corrupt_file_is_quarantined_and_reported(
    tmp_path: Path, reported: Reported, content: bytes, reason: str
) -> None:
    """Truncated, empty, binary or wrongly shaped: None, moved aside, reported with a reason."""
    path = tmp_path / "state.json"
    path.write_bytes(content)

    value = read_json_or_quarantine(path, _report(reported), lambda v: isinstance(v, dict))

    assert (None, False) == (value, path.exists())
    [(where, moved, why)] = reported
    assert (path, content) == (where, moved.read_bytes())
    assert reason in why


def test_good_and_absent_files_are_not_reported(tmp_path: Path, reported: Reported) -> None:
    """A parsing file is returned and an absent one is None; neither moves."""
    path = tmp_path / "state.json"
    assert read_json_or_quarantine(path, _report(reported)) is None
    path.write_text(json.dumps({"a": 1}))
    assert {"a": 1} == read_json_or_quarantine(path, _report(reported))
    assert ([], ["state.json"]) == (reported, [p.name for p in tmp_path.iterdir()])


def test_peek_takes_the_lock_only_to_quarantine(state: StateDir, reported: Reported) -> None:
    """A good file is read without the lock; a corrupt one is moved aside holding it."""
    path = state.root / "x.json"
    path.write_text('{"ok": true}')
    assert {"ok": True} == state.peek_json(path, "x", _report(reported))
    assert not (state.locks / "x.lock").exists()
    path.write_text("{")
    assert state.peek_json(path, "x", _report(reported)) is None
    assert ([path], True) == ([w for w, _, _ in reported], (state.locks / "x.lock").exists())
