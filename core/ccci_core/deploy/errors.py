"""The deployers' exception tree (all under :class:`ccci_core.errors.CcciError`).

    DeployError               a deploy step failed (``command``, ``returncode``, ``output`` tail)
    ├── NotReady              the app did not converge in time (``report``: one line per service)
    └── ForeignObject         remove found an object that does not belong to the stack; nothing
                              was deleted
    RecipeError (BadInput)    a recipe's compose files, env or abra.sh cannot be used
    └── RecipeMetaError       ``tests/<recipe>/recipe_meta.py`` is invalid (``path``, ``key``)

Adapters map Docker SDK, subprocess and YAML errors into these with ``raise ... from exc``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import BadInput, CcciError

TAIL_LINES = 15


def tail(output: str, lines: int = TAIL_LINES) -> str:
    """Return the last ``lines`` lines of ``output``."""
    return "\n".join(output.strip().splitlines()[-lines:])


class DeployError(CcciError):
    """A deploy step failed; ``command`` and the tail of its output say where."""

    def __init__(
        self,
        message: str,
        *,
        command: Sequence[str] | None = None,
        returncode: int | None = None,
        output: str = "",
    ) -> None:
        shown = tail(output)
        text = message
        if command is not None:
            text += f" ({' '.join(command)} exited {returncode})"
        if shown:
            text += f": {shown}"
        super().__init__(text, command=list(command or []), returncode=returncode)
        self.command = list(command or [])
        self.returncode = returncode
        self.output = shown


class NotReady(DeployError):
    """The app did not become ready; ``report`` names what was not."""

    def __init__(self, stack: str, reason: str, report: Sequence[str]) -> None:
        super().__init__(f"{stack} not ready: {reason}", output="\n".join(report))
        self.stack = stack
        self.reason = reason
        self.report = list(report)


class ForeignObject(DeployError):
    """Refuse to delete Docker objects that do not belong to the stack."""

    def __init__(self, stack: str, names: Sequence[str]) -> None:
        super().__init__(f"refusing to remove objects of {stack} that are not its own: {names}")
        self.stack = stack
        self.names = list(names)


class RecipeError(BadInput):
    """A recipe's compose files, env or abra.sh cannot be used."""


class RecipeMetaError(RecipeError):
    """A ``recipe_meta.py`` is invalid; ``path`` and ``key`` say where."""

    def __init__(self, path: Path, key: str | None, reason: str) -> None:
        where = f"{path}" if key is None else f"{path}: {key}"
        super().__init__(f"{where}: {reason}", path=str(path), key=key)
        self.path = path
        self.key = key
        self.reason = reason
