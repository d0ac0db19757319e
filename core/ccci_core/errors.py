"""The core's exception tree.

    CcciError                 root; ``exit_code`` 1 (a check failed)
    ├── BadInput              exit 2: the caller gave something we refuse
    │   ├── InvalidName       a recipe, hex, domain or ref that must not reach a path/stack/realm
    │   ├── ConfigError       a ``CCCI_*`` setting (``variable`` names it)
    │   ├── VersionError      a version string that is not ``<semver>+<app-version>``
    │   └── UnknownRecipe     no such recipe repository in the catalog
    └── GitError              git failed (``command``, ``returncode``, ``output`` tail)

Entry points map ``exit_code`` to the process exit status and print ``str(error)`` on one line.
"""

from __future__ import annotations

from typing import Any


class CcciError(Exception):
    """Root of every error cc-ci raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class BadInput(CcciError):
    """Refuse input or configuration; maps to exit 2 / HTTP 4xx."""

    exit_code = 2


class InvalidName(BadInput):
    """Refuse a name before it reaches a path, a domain, a stack, a secret or a realm."""

    def __init__(self, kind: str, value: object, reason: str) -> None:
        super().__init__(f"invalid {kind} {value!r}: {reason}", kind=kind, value=value)
        self.kind = kind
        self.value = value
        self.reason = reason


class ConfigError(BadInput):
    """Refuse a setting; ``variable`` is the environment variable to fix."""

    def __init__(self, variable: str, reason: str) -> None:
        super().__init__(f"{variable}: {reason}", variable=variable)
        self.variable = variable
        self.reason = reason


class VersionError(BadInput):
    """Refuse a string that is not a Co-op Cloud version."""


class UnknownRecipe(BadInput):
    """Refuse a recipe the catalog does not hold."""


class GitError(CcciError):
    """Report a failed git command with the tail of its output."""

    def __init__(self, command: list[str], returncode: int, output: str) -> None:
        tail = "\n".join(output.strip().splitlines()[-5:])
        super().__init__(
            f"git failed ({returncode}): {' '.join(command)}: {tail}",
            command=command,
            returncode=returncode,
        )
        self.command = command
        self.returncode = returncode
        self.output = output
