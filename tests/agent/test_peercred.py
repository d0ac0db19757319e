"""Peer credentials: the supplementary groups the kernel recorded (SO_PEERGROUPS) decide."""

from __future__ import annotations

import errno
import os
import pwd
import shutil
import socket
import struct
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from ccci_agent.peercred import Peer, is_allowed, peer_of

GROUP = "nogroup"
GROUP_GID = 65534
STRANGER = 54321  # a uid and gid no passwd or group entry names
OTHER_GID = 54322  # a gid no group entry names
SO_PEERGROUPS = 59  # Linux; the socket module does not export it

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="starts a peer as another uid")


def _connect_as(uid: int, gid: int, groups: Sequence[int], path: Path) -> None:
    """In a forked child: become uid:gid with exactly ``groups``, connect, wait for the close."""
    status = 1
    try:
        os.setgroups(list(groups))
        os.setgid(gid)
        os.setuid(uid)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(str(path))
            sock.sendall(b"x")
            sock.recv(1)  # until the test closes its end
        status = 0
    finally:
        os._exit(status)


@contextmanager
def _accepted_from(uid: int, gid: int, groups: Sequence[int]) -> Iterator[socket.socket]:
    """Yield the server end of a Unix socket a child running as uid:gid + groups connected."""
    base = Path(tempfile.mkdtemp(prefix="ccci-peer-"))
    base.chmod(0o711)
    path = base / "peer.sock"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(str(path))
            path.chmod(0o666)
            server.listen(1)
            server.settimeout(30)
            child = os.fork()
            if child == 0:
                _connect_as(uid, gid, groups, path)
            try:
                conn, _ = server.accept()
                with conn:
                    conn.settimeout(30)
                    assert b"x" == conn.recv(1)  # connected, as the child
                    yield conn
            finally:
                assert 0 == os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
    finally:
        shutil.rmtree(base)


@pytest.fixture
def ghost_in_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """/etc/group lists STRANGER's passwd entry ("ghost") in the agent's group."""
    ghost = pwd.struct_passwd(("ghost", "x", STRANGER, STRANGER, "", "/", "/bin/false"))
    monkeypatch.setattr(pwd, "getpwuid", lambda _uid: ghost)
    monkeypatch.setattr(os, "getgrouplist", lambda _name, gid: [gid, GROUP_GID])


@as_root
def test_a_peer_in_the_group_only_as_a_supplementary_group_is_allowed() -> None:
    """No passwd entry, primary gid not the group's: the kernel's supplementary list admits it."""
    with _accepted_from(STRANGER, STRANGER, [OTHER_GID, GROUP_GID]) as conn:
        peer = peer_of(conn)

    assert (STRANGER, STRANGER, (OTHER_GID, GROUP_GID)) == (peer.uid, peer.gid, peer.groups)
    assert is_allowed(peer, GROUP)


@as_root
def test_a_peer_without_the_group_is_refused_whatever_etc_group_says(
    ghost_in_group: None,
) -> None:
    """A uid /etc/group lists in the group but whose process dropped it: the kernel's list wins."""
    with _accepted_from(STRANGER, STRANGER, [OTHER_GID]) as conn:
        peer = peer_of(conn)

    assert (STRANGER, (OTHER_GID,)) == (peer.gid, peer.groups)
    assert not is_allowed(peer, GROUP)


class FakeSocket:
    """A socket whose peer is uid:gid with ``groups``, on a kernel that may lack SO_PEERGROUPS."""

    def __init__(self, groups: Sequence[int], *, peergroups: bool = True) -> None:
        self.groups = groups
        self.peergroups = peergroups
        self.buflens: list[int] = []

    def getsockopt(self, level: int, option: int, buflen: int) -> bytes:
        assert socket.SOL_SOCKET == level
        if option == socket.SO_PEERCRED:
            return struct.pack("3i", 4242, STRANGER, STRANGER)
        assert SO_PEERGROUPS == option
        self.buflens.append(buflen)
        if not self.peergroups:
            raise OSError(errno.ENOPROTOOPT, os.strerror(errno.ENOPROTOOPT))
        if buflen > 1024:
            raise OSError("getsockopt buflen out of range")  # as socket.getsockopt does
        if buflen < 4 * len(self.groups):
            raise OSError(errno.ERANGE, os.strerror(errno.ERANGE))
        return struct.pack(f"={len(self.groups)}I", *self.groups)


def _peer_of(fake: FakeSocket) -> Peer:
    return peer_of(fake)  # type: ignore[arg-type] # a socket as far as peer_of looks


def test_erange_retries_with_a_larger_buffer() -> None:
    """Too many groups for the first buffer: ERANGE, a larger one, all the groups."""
    groups = [GROUP_GID, *range(1000, 1099)]  # 100 gids: 400 bytes
    fake = FakeSocket(groups)

    peer = _peer_of(fake)

    assert (tuple(groups), [64, 256, 1024]) == (peer.groups, fake.buflens)
    assert is_allowed(peer, GROUP)


def test_erange_at_the_largest_buffer_falls_back_to_etc_group(ghost_in_group: None) -> None:
    """More groups than getsockopt can take: bounded retries, then /etc/group decides."""
    fake = FakeSocket(range(2000, 2300))  # 300 gids: 1200 bytes

    peer = _peer_of(fake)

    assert ((STRANGER, GROUP_GID), [64, 256, 1024]) == (peer.groups, fake.buflens)


def test_enoprotoopt_falls_back_to_etc_group(ghost_in_group: None) -> None:
    """A kernel without SO_PEERGROUPS (< 4.13): the uid's groups in /etc/group, as before."""
    fake = FakeSocket([], peergroups=False)

    peer = _peer_of(fake)

    assert ((STRANGER, GROUP_GID), [64]) == (peer.groups, fake.buflens)
    assert is_allowed(peer, GROUP)
