"""A pull request's comments as Gitea/Forgejo and GitHub keep and serve them, over ``responses``.

:class:`Thread` holds the comments and answers what the bridge asks of them, in each forge's JSON:

    GET   /user                                  the token's account (the bot)
    GET   /repos/{o}/{r}/issues/{n}/comments     oldest first. GitHub pages it: ``per_page``
                                                 (default 30, at most 100) and ``page``, with
                                                 ``Link: <…>; rel="next"`` (and prev, first,
                                                 last) pointing at ``/repositories/{id}/…`` as
                                                 GitHub writes it. Gitea/Forgejo document no
                                                 paging here: every comment, ``X-Total-Count``.
    POST  /repos/{o}/{r}/issues/{n}/comments     201 and the comment, written by the bot
    PATCH /repos/{o}/{r}/issues/comments/{id}    200 and the comment; 404 if there is none. The
                                                 bot has write access, so either forge lets it
                                                 edit anyone's comment.

``posts`` scripts the next POSTs: ``"refuse"`` answers 502 and creates nothing, ``"lose"`` creates
the comment and then times out (the answer never arrives), as a dropped connection would.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
import responses

from tests.bridge.payloads import GITEA, GITHUB_API

API = {"gitea": f"{GITEA}/api/v1", "github": GITHUB_API}
BOT = (31337, "cc-ci-bot")  # the bridge's account: id, login
REPO_ID = 1296269  # GitHub's id of the repository, which its page links use
GITHUB_DEFAULT_PAGE, GITHUB_MAX_PAGE = 30, 100
Answer = tuple[int, dict[str, str], str]


class Thread:
    """The comments of PR ``number`` of ``repo`` on ``forge``, and the bot account's identity."""

    def __init__(self, forge: str, repo: str, number: int) -> None:
        self.forge = forge
        self.repo = repo
        self.number = number
        self.comments: list[dict[str, Any]] = []
        self.posts: list[str] = []  # what the next POSTs do: refuse | lose (then: create)
        self._next_id = 9000
        self._clock = 0

    # -- the data ---------------------------------------------------------------------------

    def add(self, user: tuple[int, str], body: str) -> dict[str, Any]:
        """Append a comment by ``user`` (id, login), as the forge stores and lists it."""
        self._next_id += 1
        self._clock += 1
        when = f"2026-12-04T10:{self._clock // 60:02d}:{self._clock % 60:02d}Z"
        number, repo, cid = self.number, self.repo, self._next_id
        if self.forge == "github":
            comment: dict[str, Any] = {
                "id": cid,
                "node_id": f"IC_kw{cid}",
                "url": f"{GITHUB_API}/repos/{repo}/issues/comments/{cid}",
                "html_url": f"https://github.example/{repo}/pull/{number}#issuecomment-{cid}",
                "body": body,
                "user": {
                    "login": user[1],
                    "id": user[0],
                    "node_id": f"U_{user[0]}",
                    "type": "User",
                },
                "created_at": when,
                "updated_at": when,
                "issue_url": f"{GITHUB_API}/repos/{repo}/issues/{number}",
                "author_association": "NONE",
            }
        else:
            comment = {
                "id": cid,
                "html_url": f"{GITEA}/{repo}/pulls/{number}#issuecomment-{cid}",
                "pull_request_url": f"{GITEA}/{repo}/pulls/{number}",
                "issue_url": "",
                "user": {"id": user[0], "login": user[1], "username": user[1], "full_name": ""},
                "original_author": "",
                "original_author_id": 0,
                "body": body,
                "assets": [],
                "created_at": when,
                "updated_at": when,
            }
        self.comments.append(comment)
        return comment

    def by(self, user: tuple[int, str]) -> list[dict[str, Any]]:
        """Return the comments ``user`` wrote, oldest first."""
        return [c for c in self.comments if c["user"]["id"] == user[0]]

    def get(self, comment_id: int) -> dict[str, Any]:
        """Return comment ``comment_id``."""
        return next(c for c in self.comments if c["id"] == comment_id)

    # -- the API ----------------------------------------------------------------------------

    def register(self, api: responses.RequestsMock) -> None:
        """Serve this thread's routes on ``api``."""
        base = re.escape(API[self.forge])
        repo = re.escape(self.repo)
        listing = rf"{base}/(?:repos/{repo}|repositories/{REPO_ID})/issues/{self.number}/comments"
        api.add_callback(responses.GET, f"{API[self.forge]}/user", callback=self._user)
        api.add_callback(responses.GET, re.compile(rf"{listing}(\?.*)?$"), callback=self._list)
        api.add_callback(
            responses.POST,
            f"{API[self.forge]}/repos/{self.repo}/issues/{self.number}/comments",
            callback=self._post,
        )
        api.add_callback(
            responses.PATCH,
            re.compile(rf"{base}/repos/{repo}/issues/comments/(\d+)$"),
            callback=self._patch,
        )

    def _user(self, request: Any) -> Answer:
        if self.forge == "github":
            me: dict[str, Any] = {
                "login": BOT[1],
                "id": BOT[0],
                "type": "User",
                "site_admin": False,
            }
        else:
            me = {"id": BOT[0], "login": BOT[1], "username": BOT[1], "is_admin": False}
        return 200, {"Content-Type": "application/json"}, json.dumps(me)

    def _list(self, request: Any) -> Answer:
        headers = {"Content-Type": "application/json"}
        if self.forge == "gitea":
            headers["X-Total-Count"] = str(len(self.comments))
            return 200, headers, json.dumps(self.comments)
        query = dict(parse_qsl(urlsplit(request.url).query))
        size = min(int(query.get("per_page", GITHUB_DEFAULT_PAGE)), GITHUB_MAX_PAGE)
        page = int(query.get("page", 1))
        last = max(1, -(-len(self.comments) // size))
        link = f"{GITHUB_API}/repositories/{REPO_ID}/issues/{self.number}/comments?per_page={size}"
        rels = []
        if page < last:
            rels += [f'<{link}&page={page + 1}>; rel="next"', f'<{link}&page={last}>; rel="last"']
        if page > 1:
            rels += [f'<{link}&page={page - 1}>; rel="prev"', f'<{link}&page=1>; rel="first"']
        if rels:
            headers["Link"] = ", ".join(rels)
        return 200, headers, json.dumps(self.comments[(page - 1) * size : page * size])

    def _post(self, request: Any) -> Answer | Exception:
        what = self.posts.pop(0) if self.posts else "create"
        if what == "refuse":
            return 502, {}, "Bad Gateway"
        comment = self.add(BOT, json.loads(request.body)["body"])
        if what == "lose":
            return requests.exceptions.ReadTimeout("the forge did not answer in time")
        return 201, {"Content-Type": "application/json"}, json.dumps(comment)

    def _patch(self, request: Any) -> Answer:
        comment_id = int(urlsplit(request.url).path.rsplit("/", 1)[1])
        found = [c for c in self.comments if c["id"] == comment_id]
        if not found:
            return 404, {"Content-Type": "application/json"}, json.dumps({"message": "Not Found"})
        self._clock += 1
        found[0]["body"] = json.loads(request.body)["body"]
        found[0]["updated_at"] = f"2026-12-04T11:{self._clock // 60:02d}:{self._clock % 60:02d}Z"
        return 200, {"Content-Type": "application/json"}, json.dumps(found[0])
