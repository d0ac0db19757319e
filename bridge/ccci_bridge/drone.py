"""Create builds of the CI repository through Drone's REST API.

``POST {server}/api/repos/{owner}/{name}/builds?branch=B&KEY=VALUE`` with ``Authorization: Bearer``
creates a custom build of the branch's latest commit; each ``KEY=VALUE`` reaches the pipeline's
steps as an environment variable. Drone answers the build as JSON, or ``null`` when no pipeline of
the repository matched (e.g. a ``trigger`` that excludes custom events).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import requests

from .errors import DroneError, NoPipeline


@dataclass(frozen=True)
class Build:
    """A build Drone created: its number and its page in the Drone UI."""

    number: int
    link: str


class Drone(Protocol):
    """What the bridge needs from Drone."""

    def create_build(self, params: Mapping[str, str]) -> Build:
        """Create a build of the CI repository with ``params``; raise DroneError if none started."""
        ...


class DroneAPI:
    """The Drone adapter: one requests session, errors mapped to DroneError."""

    def __init__(
        self,
        server: str,
        token: str,
        repo: str,
        branch: str,
        *,
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        self.server = server.rstrip("/")
        self.repo = repo
        self.branch = branch
        self.timeout = timeout
        self._token = token
        self._session = session or requests.Session()

    def create_build(self, params: Mapping[str, str]) -> Build:
        """Create a build of the CI repository's branch with ``params`` as pipeline variables."""
        url = f"{self.server}/api/repos/{self.repo}/builds"
        query = {"branch": self.branch, **params}
        try:
            response = self._session.post(
                url,
                params=query,
                headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json"},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise DroneError(f"cannot reach Drone: {type(exc).__name__}") from exc
        if not response.ok:
            raise DroneError(
                f"Drone answered {response.status_code}: {_tail(response.text)}",
                status_code=response.status_code,
            )
        try:
            body = response.json()
        except ValueError as exc:
            raise DroneError("Drone answered something that is not JSON") from exc
        if body is None:
            raise NoPipeline(
                f"no pipeline of {self.repo} matched a custom build of {self.branch!r}",
                status_code=response.status_code,
            )
        number = body.get("number") if isinstance(body, dict) else None
        if not isinstance(number, int) or isinstance(number, bool):
            raise DroneError("Drone answered a build without a number")
        return Build(number, f"{self.server}/{self.repo}/{number}")


def _tail(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"
