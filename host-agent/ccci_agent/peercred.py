"""Who is on the other end of the socket: SO_PEERCRED, SO_PEERGROUPS and the agent's group.

The kernel records a Unix socket peer's credentials when it calls connect(): its pid, uid and gid
(SO_PEERCRED) and its supplementary groups (SO_PEERGROUPS, Linux >= 4.13). Those are the answer
the agent trusts. It never reads ``/proc/<pid>/status`` for the groups instead: the pid may have
exited and been reused by another process between connect() and the read (a TOCTOU hole), and
even a live process may have changed its groups since it connected.
"""

from __future__ import annotations

import errno
import grp
import logging
import os
import pwd
import socket
import struct
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

_UCRED = struct.Struct("3i")  # struct ucred {pid_t pid; uid_t uid; gid_t gid;}
# CPython's socket module does not export SO_PEERGROUPS (3.11 does not); 59 is its value on
# Linux (include/uapi/asm-generic/socket.h, the same on every architecture that has it).
SO_PEERGROUPS: int = getattr(socket, "SO_PEERGROUPS", 59)
_GID_SIZE = struct.calcsize("=I")  # gid_t: a native unsigned 32-bit integer
_FIRST_BUFLEN = 16 * _GID_SIZE
# socket.getsockopt refuses a buflen over 1024 bytes: at most 256 supplementary groups are read.
MAX_BUFLEN = 1024


@dataclass(frozen=True)
class Peer:
    """The credentials of a Unix socket peer.

    ``groups`` are its supplementary gids as the kernel recorded them at connect()
    (SO_PEERGROUPS). Where the kernel cannot say (no SO_PEERGROUPS, or more groups than can be
    read), they are what /etc/group says now for the uid's passwd entry (getgrouplist), or none
    for a uid the host has no account for.
    """

    pid: int
    uid: int
    gid: int
    groups: tuple[int, ...] = ()


def kernel_groups(sock: socket.socket) -> tuple[int, ...] | None:
    """Return the supplementary gids the kernel recorded for ``sock``'s peer (SO_PEERGROUPS).

    None when the kernel cannot say: it has no SO_PEERGROUPS (ENOPROTOOPT, Linux < 4.13), or the
    peer has more groups than ``MAX_BUFLEN`` holds (ERANGE at the largest buffer).
    """
    buflen = _FIRST_BUFLEN
    while True:
        try:
            raw = sock.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, buflen)
        except OSError as exc:
            if exc.errno == errno.ENOPROTOOPT:
                return None
            if exc.errno != errno.ERANGE:
                raise
            if buflen >= MAX_BUFLEN:  # the kernel wants more than socket.getsockopt can take
                log.warning("peer has over %d groups: /etc/group decides", buflen // _GID_SIZE)
                return None
            buflen = min(buflen * 4, MAX_BUFLEN)  # ERANGE: the buffer is too small
            continue
        count = len(raw) // _GID_SIZE
        return struct.unpack(f"={count}I", raw[: count * _GID_SIZE])


def passwd_groups(uid: int) -> tuple[int, ...]:
    """Return the groups /etc/group gives ``uid``'s passwd entry now (none if it has no entry)."""
    try:
        user = pwd.getpwuid(uid)
    except KeyError:
        return ()
    return tuple(os.getgrouplist(user.pw_name, user.pw_gid))


def peer_of(sock: socket.socket) -> Peer:
    """Return the credentials of ``sock``'s peer."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    pid, uid, gid = _UCRED.unpack(raw)
    groups = kernel_groups(sock)
    return Peer(pid, uid, gid, passwd_groups(uid) if groups is None else groups)


def socket_of(environ: dict[str, Any]) -> socket.socket | None:
    """Return the client socket gunicorn or werkzeug put in the WSGI environ."""
    for key in ("gunicorn.socket", "werkzeug.socket"):
        sock = environ.get(key)
        if isinstance(sock, socket.socket) and sock.family == socket.AF_UNIX:
            return sock
    return None


def group_gid(group: str) -> int | None:
    """Return the gid of ``group``, or None if the host has no such group."""
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        return None


def is_allowed(peer: Peer, group: str) -> bool:
    """Return whether ``peer`` is root or belongs to ``group`` (primary or supplementary)."""
    if peer.uid == 0:
        return True
    gid = group_gid(group)
    return gid is not None and (peer.gid == gid or gid in peer.groups)


def environ_allowed(environ: dict[str, Any], group: str) -> bool:
    """Return whether the request in ``environ`` comes from an allowed peer (no socket: no)."""
    sock = socket_of(environ)
    return sock is not None and is_allowed(peer_of(sock), group)


def environ_is_root(environ: dict[str, Any]) -> bool:
    """Return whether the request in ``environ`` comes from a uid-0 peer (no socket: no)."""
    sock = socket_of(environ)
    return sock is not None and peer_of(sock).uid == 0
