"""Create builds of the CI repository through Drone's REST API, and read how they ended.

``POST {server}/api/repos/{owner}/{name}/builds?branch=B&KEY=VALUE`` with ``Authorization: Bearer``
creates a custom build of the branch's latest commit; each ``KEY=VALUE`` reaches the pipeline's
steps as an environment variable. Drone answers the build as JSON, or ``null`` when no pipeline of
the repository matched (e.g. a ``trigger`` that excludes custom events).

``GET …/builds/{n}`` answers the build with ``status`` (``pending``, ``running``, ``blocked``,
``waiting_on_dependencies`` while it is not done; ``success``, ``failure``, ``killed``, ``error``,
``skipped``, ``declined`` once it is), ``started``/``finished`` (Unix seconds) and its ``stages``,
each with ``number`` and ``steps`` (``number``, ``name``, ``status``, ``exit_code``).
``GET …/builds/{n}/logs/{stage}/{step}`` answers a step's log as ``[{"pos", "out", "time"}]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import requests

from .errors import DroneError, NoPipeline


@dataclass(frozen=True)
class Build:
    """A build Drone created: its number and its page in the Drone UI."""

    number: int
    link: str


FINISHED = frozenset({"success", "failure", "killed", "error", "skipped", "declined"})


@dataclass(frozen=True)
class StepInfo:
    """One step of a build: where its log is and how it ended."""

    stage: int
    number: int
    name: str
    status: str
    exit_code: int


@dataclass(frozen=True)
class BuildInfo:
    """A build as Drone reports it now."""

    number: int
    status: str
    started: int
    finished: int
    error: str
    steps: tuple[StepInfo, ...]

    @property
    def done(self) -> bool:
        """Return whether Drone has finished the build."""
        return self.status in FINISHED


class Drone(Protocol):
    """What the bridge needs from Drone."""

    def create_build(self, params: Mapping[str, str]) -> Build:
        """Create a build of the CI repository with ``params``; raise DroneError if none started."""
        ...

    def build(self, number: int) -> BuildInfo | None:
        """Return build ``number`` of the CI repository, or None if Drone has no such build."""
        ...

    def step_log(self, number: int, stage: int, step: int) -> list[str]:
        """Return the lines a step of build ``number`` printed (empty if it has no log)."""
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

    def _request(
        self, method: str, path: str, params: Mapping[str, str] | None = None
    ) -> requests.Response:
        try:
            return self._session.request(
                method,
                f"{self.server}/api/repos/{self.repo}{path}",
                params=params,
                headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json"},
                timeout=self.timeout,
                allow_redirects=False,  # the token stays with the configured server
            )
        except requests.RequestException as exc:
            raise DroneError(f"cannot reach Drone: {type(exc).__name__}") from exc

    def _json(self, method: str, path: str, params: Mapping[str, str] | None = None) -> Any:
        """Return the JSON answer, or None for a 404; raise DroneError otherwise."""
        response = self._request(method, path, params)
        if response.status_code == 404 and method == "GET":
            return None
        if not 200 <= response.status_code < 300:  # a redirect too: it is not followed
            raise DroneError(
                f"Drone answered {response.status_code}: {_tail(response.text)}",
                status_code=response.status_code,
            )
        try:
            return response.json()
        except ValueError as exc:
            raise DroneError("Drone answered something that is not JSON") from exc

    def create_build(self, params: Mapping[str, str]) -> Build:
        """Create a build of the CI repository's branch with ``params`` as pipeline variables."""
        body = self._json("POST", "/builds", {"branch": self.branch, **params})
        if body is None:
            raise NoPipeline(
                f"no pipeline of {self.repo} matched a custom build of {self.branch!r}",
                status_code=200,
            )
        number = body.get("number") if isinstance(body, dict) else None
        if not isinstance(number, int) or isinstance(number, bool):
            raise DroneError("Drone answered a build without a number")
        return Build(number, self.link(number))

    def link(self, number: int) -> str:
        """Return build ``number``'s page in the Drone UI."""
        return f"{self.server}/{self.repo}/{number}"

    def build(self, number: int) -> BuildInfo | None:
        """Return build ``number`` as Drone reports it, or None if Drone has no such build."""
        body = self._json("GET", f"/builds/{int(number)}")
        if body is None:
            return None
        if not isinstance(body, dict) or not _is_int(body.get("number")):
            raise DroneError(f"Drone answered build {number} without its number")
        steps = []
        for stage in _list(body.get("stages")):
            if not isinstance(stage, dict) or not _is_int(stage.get("number")):
                continue
            for step in _list(stage.get("steps")):
                if isinstance(step, dict) and _is_int(step.get("number")):
                    steps.append(
                        StepInfo(
                            stage=stage["number"],
                            number=step["number"],
                            name=_text(step.get("name")),
                            status=_text(step.get("status")),
                            exit_code=step["exit_code"] if _is_int(step.get("exit_code")) else 0,
                        )
                    )
        return BuildInfo(
            number=body["number"],
            status=_text(body.get("status")),
            started=body["started"] if _is_int(body.get("started")) else 0,
            finished=body["finished"] if _is_int(body.get("finished")) else 0,
            error=_text(body.get("error")),
            steps=tuple(steps),
        )

    def step_log(self, number: int, stage: int, step: int) -> list[str]:
        """Return the lines step ``stage``/``step`` of build ``number`` printed."""
        body = self._json("GET", f"/builds/{int(number)}/logs/{int(stage)}/{int(step)}")
        return [
            line["out"]
            for line in _list(body)
            if isinstance(line, dict) and isinstance(line.get("out"), str)
        ]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: object, limit: int = 500) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _tail(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"
