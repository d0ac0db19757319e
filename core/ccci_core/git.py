"""Run git non-interactively; failures become GitError."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from .errors import GitError


class Git:
    """A git executable with a timeout and an environment that never prompts."""

    def __init__(self, executable: str = "git", timeout: float = 300.0) -> None:
        self.executable = executable
        self.timeout = timeout

    def __call__(self, *args: str, cwd: Path | None = None) -> str:
        """Run ``git args...`` and return its stdout, or raise GitError."""
        argv = [self.executable, *args]
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C", "GIT_ASKPASS": "true"}
        try:
            done = subprocess.run(
                argv,
                cwd=cwd,
                env=env,
                check=True,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.CalledProcessError as exc:
            raise GitError(argv, exc.returncode, (exc.stderr or "") + (exc.stdout or "")) from exc
        except subprocess.TimeoutExpired as exc:
            raise GitError(argv, -1, f"timed out after {self.timeout:.0f}s") from exc
        except OSError as exc:
            raise GitError(argv, -1, str(exc)) from exc
        return done.stdout

    def succeeds(self, *args: str, cwd: Path | None = None) -> bool:
        """Return whether ``git args...`` exits 0."""
        try:
            self(*args, cwd=cwd)
        except GitError:
            return False
        return True
