"""Talk to the forges that host recipes: Gitea/Forgejo and GitHub.

Both speak nearly the same REST dialect; only the base URL, the auth scheme and a few values differ:

    Gitea/Forgejo  {url}/api/v1   Authorization: token <t>    permission none|read|write|admin|owner
    GitHub         {url}          Authorization: Bearer <t>   permission none|read|write|admin

    GET    /user                                               the token's account: id, login
    GET    /repos/{o}/{r}/pulls/{n}                            state, head sha, base clone URL
    GET    /repos/{o}/{r}/collaborators/{user}/permission      404 when the user is unknown
    POST   /repos/{o}/{r}/issues/comments/{id}/reactions       {"content": "eyes"}; GitHub
                                                               answers the reaction's id
    DELETE /repos/{o}/{r}/issues/comments/{id}/reactions       Gitea: {"content": "rocket"}
    DELETE /repos/{o}/{r}/issues/comments/{id}/reactions/{rid} GitHub: by the reaction's id
    GET    /repos/{o}/{r}/issues/{n}/comments                  id, user.id, body of each; GitHub
                                                               pages (per_page=100, Link rel=next),
                                                               Gitea answers them all at once
    POST   /repos/{o}/{r}/issues/{n}/comments                  {"body": "..."}; answers its id
    PATCH  /repos/{o}/{r}/issues/comments/{id}                 {"body": "..."}: edit a comment
    POST   /repos/{o}/{r}/statuses/{sha}                       {"state", "context",
                                                               "target_url", "description"}

Every failure leaves this module as ForgeError.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import quote

import requests

from .errors import ForgeError

# Both forges accept these (Gitea's default ALLOWED_REACTIONS, GitHub's fixed set).
Reaction = Literal["eyes", "rocket", "confused", "+1", "-1"]
StatusState = Literal["pending", "success", "failure", "error"]  # common to both forges
WRITE_PERMISSIONS = frozenset({"write", "admin", "owner"})
STATUS_DESCRIPTION_LIMIT = 140  # GitHub refuses a longer description
MAX_PAGES = 50  # pages of comments read at most (GitHub: 5,000 comments), so no Link loops forever


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


@dataclass(frozen=True)
class Comment:
    """A comment on an issue or pull request: its id, its author's account id and its body."""

    id: int
    author_id: int
    body: str


class Forge(Protocol):
    """What the bridge needs from a forge."""

    name: str

    def pull(self, repo: str, number: int) -> Pull:
        """Return pull request ``number`` of ``repo`` (``owner/name``)."""
        ...

    def can_write(self, repo: str, user: str) -> bool:
        """Return whether ``user`` has write access to ``repo``."""
        ...

    def react(self, repo: str, comment_id: int, reaction: Reaction) -> str | None:
        """Add ``reaction`` to a comment; return its id where removing it needs one."""
        ...

    def unreact(
        self, repo: str, comment_id: int, reaction: Reaction, reaction_id: str | None
    ) -> None:
        """Remove the bridge's ``reaction`` (of id ``reaction_id``, where known) from a comment."""
        ...

    def account_id(self) -> int:
        """Return the id of the account the bridge's token acts as."""
        ...

    def comments(self, repo: str, number: int) -> list[Comment]:
        """Return every comment on issue or pull request ``number``, oldest first."""
        ...

    def reply(self, repo: str, number: int, body: str) -> int:
        """Comment ``body`` on issue or pull request ``number``; return the comment's id."""
        ...

    def edit(self, repo: str, comment_id: int, body: str) -> bool:
        """Replace the body of the bridge's comment ``comment_id``; False if it is gone."""
        ...

    def set_status(
        self, repo: str, sha: str, state: StatusState, *, context: str, url: str, description: str
    ) -> None:
        """Set the commit status ``context`` of ``sha``."""
        ...


class ForgeAPI:
    """The shared REST client of Gitea/Forgejo and GitHub; subclasses set the dialect."""

    name = "forge"
    comments_query = ""  # the first page's query of the comments list

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
        self._account_id: int | None = None

    def _headers(self) -> dict[str, str]:
        return {"Accept": "application/json"}

    def _call(self, method: str, path: str, *, json: Any = None, ok_404: bool = False) -> Any:
        return self._fetch(method, path, json=json, ok_404=ok_404)[0]

    def _fetch(
        self, method: str, path: str, *, json: Any = None, ok_404: bool = False
    ) -> tuple[Any, str | None]:
        """Return the JSON answer to ``method`` on ``path`` (below the API) and its next page."""
        try:
            response = self._session.request(
                method, self.api + path, json=json, headers=self._headers(), timeout=self.timeout
            )
        except requests.RequestException as exc:
            raise ForgeError(f"cannot reach {self.name}: {type(exc).__name__}") from exc
        if ok_404 and response.status_code == 404:
            return _GONE, None
        if not response.ok:
            raise ForgeError(
                f"{self.name} answered {response.status_code} to {method} {path}",
                status_code=response.status_code,
            )
        following = response.links.get("next", {}).get("url")
        if not response.content:
            return None, following
        try:
            return response.json(), following
        except ValueError as exc:
            raise ForgeError(f"{self.name} answered {method} {path} with non-JSON") from exc

    def account_id(self) -> int:
        """Return the id of the token's account (``GET /user``), asked once."""
        if self._account_id is None:
            body = self._call("GET", "/user")
            try:
                self._account_id = _int(body["id"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ForgeError(f"{self.name} answered /user without an id") from exc
        return self._account_id

    def comments(self, repo: str, number: int) -> list[Comment]:
        """Return the comments on issue or pull request ``number`` of ``repo``, every page.

        A next page is followed only below the API's URL (the token goes with it); a list longer
        than ``MAX_PAGES`` pages is an error rather than a partial answer.
        """
        path = f"/repos/{_path(repo)}/issues/{int(number)}/comments{self.comments_query}"
        found: list[Comment] = []
        for _ in range(MAX_PAGES):
            body, following = self._fetch("GET", path)
            if not isinstance(body, list):
                raise ForgeError(f"{self.name} answered the comments of #{number} without a list")
            found.extend(comment for item in body if (comment := _comment(item)) is not None)
            if following is None:
                return found
            if not following.startswith(self.api + "/"):
                raise ForgeError(f"{self.name} gave a next page of comments outside its API")
            path = following[len(self.api) :]
        raise ForgeError(f"{self.name} has more than {MAX_PAGES} pages of comments on #{number}")

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
        if body is _GONE:
            return False
        permission = body.get("permission") if isinstance(body, dict) else None
        return permission in WRITE_PERMISSIONS

    def react(self, repo: str, comment_id: int, reaction: Reaction) -> str | None:
        """Add ``reaction`` to comment ``comment_id`` of ``repo``; return GitHub's reaction id.

        A comment deleted meanwhile is nothing to react to (not an error).
        """
        body = self._call(
            "POST",
            f"/repos/{_path(repo)}/issues/comments/{int(comment_id)}/reactions",
            json={"content": reaction},
            ok_404=True,
        )
        given = body.get("id") if isinstance(body, dict) else None
        return str(given) if isinstance(given, int) and not isinstance(given, bool) else None

    def unreact(
        self, repo: str, comment_id: int, reaction: Reaction, reaction_id: str | None
    ) -> None:
        """Remove the token user's ``reaction`` from comment ``comment_id`` (Gitea's way)."""
        self._call(
            "DELETE",
            f"/repos/{_path(repo)}/issues/comments/{int(comment_id)}/reactions",
            json={"content": reaction},
            ok_404=True,
        )

    def reply(self, repo: str, number: int, body: str) -> int:
        """Comment ``body`` on issue or pull request ``number`` of ``repo``; return its id."""
        answer = self._call(
            "POST", f"/repos/{_path(repo)}/issues/{int(number)}/comments", json={"body": body}
        )
        try:
            return _int(answer["id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ForgeError(f"{self.name} answered a comment without an id") from exc

    def edit(self, repo: str, comment_id: int, body: str) -> bool:
        """Replace the body of comment ``comment_id`` of ``repo``; False if it was deleted."""
        answer = self._call(
            "PATCH",
            f"/repos/{_path(repo)}/issues/comments/{int(comment_id)}",
            json={"body": body},
            ok_404=True,
        )
        return answer is not _GONE

    def set_status(
        self, repo: str, sha: str, state: StatusState, *, context: str, url: str, description: str
    ) -> None:
        """Set the commit status ``context`` of ``sha`` in ``repo`` (the latest one counts)."""
        if not _SHA_RE.fullmatch(sha):
            raise ForgeError(f"{sha[:50]!r} is not a commit id")
        limit = STATUS_DESCRIPTION_LIMIT
        short = description if len(description) <= limit else description[: limit - 1] + "…"
        self._call(
            "POST",
            f"/repos/{_path(repo)}/statuses/{sha}",
            json={"state": state, "context": context, "target_url": url, "description": short},
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
    comments_query = "?per_page=100"  # the most GitHub gives a page (30 by default)

    def unreact(
        self, repo: str, comment_id: int, reaction: Reaction, reaction_id: str | None
    ) -> None:
        """Remove the reaction ``reaction_id`` (GitHub deletes by id; unknown: nothing to do)."""
        if reaction_id is None or not reaction_id.isdigit():
            return
        self._call(
            "DELETE",
            f"/repos/{_path(repo)}/issues/comments/{int(comment_id)}/reactions/{reaction_id}",
            ok_404=True,
        )

    def _headers(self) -> dict[str, str]:
        return {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "Authorization": f"Bearer {self._token}",
        }


_GONE: Any = object()  # what _call answers for a 404 it was told to expect
_SHA_RE = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


def _path(repo: str) -> str:
    owner, _, name = repo.partition("/")
    return f"{quote(owner, safe='')}/{quote(name, safe='')}"


def _comment(item: object) -> Comment | None:
    """Return a listed comment, or None for one without an id or an author (not the bridge's)."""
    if not isinstance(item, dict) or not isinstance(author := item.get("user"), dict):
        return None
    if not isinstance(body := item.get("body"), str):
        body = ""
    try:
        return Comment(_int(item.get("id")), _int(author.get("id")), body)
    except ValueError:
        return None


def _str(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("a string")
    return value


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError("an integer")
    return value
