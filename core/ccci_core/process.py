"""Run an external command (git, docker, abra, tar) without a shell.

Every way a command can fail (non-zero exit, timeout, missing executable) becomes one
:class:`ProcessError` carrying the argv, the exit code (-1 when it never exited) and its output,
which each adapter maps to its own error with ``raise ... from exc``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from .errors import CcciError


class ProcessError(CcciError):
    """A command failed; ``command``, ``returncode`` and ``output`` say how."""

    def __init__(self, command: Sequence[str], returncode: int, output: str) -> None:
        super().__init__(f"{command[0]} exited {returncode}", command=list(command))
        self.command = list(command)
        self.returncode = returncode
        self.output = output


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """Run ``argv`` and return its stdout, or raise ProcessError."""
    try:
        done = subprocess.run(
            list(argv),
            cwd=cwd,
            env=None if env is None else dict(env),
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.CalledProcessError as exc:
        raise ProcessError(argv, exc.returncode, (exc.stderr or "") + (exc.stdout or "")) from exc
    except subprocess.TimeoutExpired as exc:
        raise ProcessError(argv, -1, f"timed out after {timeout:.0f}s") from exc
    except OSError as exc:
        raise ProcessError(argv, -1, f"cannot run: {exc}") from exc
    return done.stdout
