"""Run git non-interactively; failures become GitError."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import GitError
from .process import ProcessError, run


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
            return run(argv, cwd=cwd, env=env, timeout=self.timeout)
        except ProcessError as exc:
            raise GitError(exc.command, exc.returncode, exc.output) from exc

    def succeeds(self, *args: str, cwd: Path | None = None) -> bool:
        """Return whether ``git args...`` exits 0."""
        try:
            self(*args, cwd=cwd)
        except GitError:
            return False
        return True
