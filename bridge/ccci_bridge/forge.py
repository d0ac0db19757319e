"""Talk to the forges that host recipes: Gitea/Forgejo and GitHub.

Both speak nearly the same REST dialect; only the base URL, the auth scheme and a few values differ:

    Gitea/Forgejo  {url}/api/v1   Authorization: token <t>    permission none|read|write|admin|owner
    GitHub         {url}          Authorization: Bearer <t>   permission none|read|write|admin

    GET  /repos/{o}/{r}/pulls/{n}                              state, head sha, base clone URL
    GET  /repos/{o}/{r}/collaborators/{user}/permission        404 when the user is unknown
    POST /repos/{o}/{r}/issues/comments/{id}/reactions         {"content": "eyes"}
    POST /repos/{o}/{r}/issues/{n}/comments                    {"body": "..."}

Every failure leaves this module as ForgeError.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import quote

import requests

from .errors import ForgeError

Reaction = Literal["eyes", "rocket", "confused"]
WRITE_PERMISSIONS = frozenset({"write", "admin", "owner"})


@dataclass(frozen=True)
class Pull:
    """What the bridge trusts about a pull request: what the forge API says, not the payload."""

    number: int
    state: str
    head_sha: str

    @property
    def ref(self) -> str:
        """Return the ref that holds the PR's head in the base repository (works for forks)."""
        return f"refs/pull/{self.number}/head"


class Forge(Protocol):
    """What the bridge needs from a forge."""

    name: str

    def pull(self, repo: str, number: int) -> Pull:
        """Return pull request ``number`` of ``repo`` (``owner/name``)."""
        ...

    def can_write(self, repo: str, user: str) -> bool:
        """Return whether ``user`` has write access to ``repo``."""
        ...

    def react(self, repo: str, comment_id: int, reaction: Reaction) -> None:
        """Add ``reaction`` to a comment."""
        ...

    def reply(self, repo: str, number: int, body: str) -> None:
        """Comment ``body`` on issue or pull request ``number``."""
        ...


class ForgeAPI:
    """The shared REST client of Gitea/Forgejo and GitHub; subclasses set the dialect."""

    name = "forge"

    def __init__(
        self,
        api: str,
        token: str,
        *,
        timeout: float = 10.0,
        session: requests.Session | None = None,
    ) -> None:
        self.api = api.rstrip("/")
        self.timeout = timeout
        self._token = token
        self._session = session or requests.Session()

    def _headers(self) -> dict[str, str]:
        return {"Accept": "application/json"}

    def _call(self, method: str, path: str, *, json: Any = None, ok_404: bool = False) -> Any:
        try:
            response = self._session.request(
                method, self.api + path, json=json, headers=self._headers(), timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise ForgeError(f"cannot reach {self.name}: {type(exc).__name__}") from exc
        if ok_404 and response.status_code == 404:
            return None
        if not response.ok:
            raise ForgeError(
                f"{self.name} answered {response.status_code} to {method} {path}",
                status_code=response.status_code,
            )
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise ForgeError(f"{self.name} answered {method} {path} with non-JSON") from exc

    def pull(self, repo: str, number: int) -> Pull:
        """Return pull request ``number`` of ``repo`` as the API reports it."""
        body = self._call("GET", f"/repos/{_path(repo)}/pulls/{int(number)}")
        try:
            return Pull(
                number=_int(body["number"]),
                state=_str(body["state"]),
                head_sha=_str(body["head"]["sha"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ForgeError(f"{self.name} answered a pull request without {exc}") from exc

    def can_write(self, repo: str, user: str) -> bool:
        """Return whether the forge grants ``user`` write access to ``repo``."""
        body = self._call(
            "GET",
            f"/repos/{_path(repo)}/collaborators/{quote(user, safe='')}/permission",
            ok_404=True,
        )
        if body is None:
            return False
        permission = body.get("permission") if isinstance(body, dict) else None
        return permission in WRITE_PERMISSIONS

    def react(self, repo: str, comment_id: int, reaction: Reaction) -> None:
        """Add ``reaction`` to comment ``comment_id`` of ``repo``."""
        self._call(
            "POST",
            f"/repos/{_path(repo)}/issues/comments/{int(comment_id)}/reactions",
            json={"content": reaction},
        )

    def reply(self, repo: str, number: int, body: str) -> None:
        """Comment ``body`` on issue or pull request ``number`` of ``repo``."""
        self._call(
            "POST", f"/repos/{_path(repo)}/issues/{int(number)}/comments", json={"body": body}
        )


class Gitea(ForgeAPI):
    """Gitea and Forgejo: ``{url}/api/v1``, ``Authorization: token``."""

    name = "gitea"

    def __init__(self, url: str, token: str, **kwargs: Any) -> None:
        super().__init__(url.rstrip("/") + "/api/v1", token, **kwargs)

    def _headers(self) -> dict[str, str]:
        return {**super()._headers(), "Authorization": f"token {self._token}"}


class GitHub(ForgeAPI):
    """GitHub (or GitHub Enterprise's API URL): ``Authorization: Bearer``."""

    name = "github"

    def _headers(self) -> dict[str, str]:
        return {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "Authorization": f"Bearer {self._token}",
        }


def _path(repo: str) -> str:
    owner, _, name = repo.partition("/")
    return f"{quote(owner, safe='')}/{quote(name, safe='')}"


def _str(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("a string")
    return value


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError("an integer")
    return value
