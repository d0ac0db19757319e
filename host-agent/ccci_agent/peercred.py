"""Who is on the other end of the socket: SO_PEERCRED and membership of the agent's group."""

from __future__ import annotations

import grp
import os
import pwd
import socket
import struct
from dataclasses import dataclass
from typing import Any

_UCRED = struct.Struct("3i")  # struct ucred {pid_t pid; uid_t uid; gid_t gid;}


@dataclass(frozen=True)
class Peer:
    """The credentials the kernel recorded for a Unix socket peer."""

    pid: int
    uid: int
    gid: int


def peer_of(sock: socket.socket) -> Peer:
    """Return the credentials of ``sock``'s peer."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    return Peer(*_UCRED.unpack(raw))


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
    if gid is None:
        return False
    if peer.gid == gid:
        return True
    try:
        user = pwd.getpwuid(peer.uid)
    except KeyError:
        return False
    return gid in os.getgrouplist(user.pw_name, user.pw_gid)


def environ_allowed(environ: dict[str, Any], group: str) -> bool:
    """Return whether the request in ``environ`` comes from an allowed peer (no socket: no)."""
    sock = socket_of(environ)
    return sock is not None and is_allowed(peer_of(sock), group)


def environ_is_root(environ: dict[str, Any]) -> bool:
    """Return whether the request in ``environ`` comes from a uid-0 peer (no socket: no)."""
    sock = socket_of(environ)
    return sock is not None and peer_of(sock).uid == 0
