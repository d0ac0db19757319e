"""Webhook payloads shaped like the forges' own (trimmed to the fields a receiver may read)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from ccci_bridge.signatures import sign

SECRET = "s3cret-webhook"
DRONE = "https://drone.example.org"
GITEA = "https://git.example.org"
GITHUB_API = "https://api.github.example"
SHA = "9fc1ad6ebf12462f3f9773003e26b4c6f54a772e"


def _user(login: str, **extra: Any) -> dict[str, Any]:
    return {"id": 7, "login": login, "username": login, **extra}


def gitea_comment(
    body: str = "!testme",
    *,
    action: str = "created",
    user: str = "alice",
    repo: str = "coop-cloud/keycloak",
    number: int = 42,
    comment_id: int = 1001,
    state: str = "open",
    is_pull: bool = True,
) -> dict[str, Any]:
    """Return a Gitea/Forgejo ``issue_comment`` payload on a pull request."""
    owner, name = repo.split("/")
    return {
        "action": action,
        "issue": {
            "id": 500,
            "number": number,
            "title": "Bump to 26.0",
            "state": state,
            "user": _user("bob"),
            "pull_request": {"merged": False, "merged_at": None} if is_pull else None,
        },
        "comment": {
            "id": comment_id,
            "html_url": f"{GITEA}/{repo}/pulls/{number}#issuecomment-{comment_id}",
            "pull_request_url": f"{GITEA}/{repo}/pulls/{number}",
            "user": _user(user),
            "body": body,
        },
        "repository": {
            "id": 3,
            "owner": _user(owner),
            "name": name,
            "full_name": repo,
            "clone_url": f"{GITEA}/{repo}.git",
        },
        "sender": _user(user),
        "is_pull": is_pull,
    }


def github_comment(
    body: str = "!testme",
    *,
    action: str = "created",
    user: str = "alice",
    user_type: str = "User",
    repo: str = "coop-cloud/keycloak",
    number: int = 42,
    comment_id: int = 2002,
    state: str = "open",
) -> dict[str, Any]:
    """Return a GitHub ``issue_comment`` payload on a pull request."""
    owner, name = repo.split("/")
    return {
        "action": action,
        "issue": {
            "number": number,
            "state": state,
            "user": {"login": "bob", "type": "User"},
            "pull_request": {"url": f"{GITHUB_API}/repos/{repo}/pulls/{number}"},
        },
        "comment": {"id": comment_id, "body": body, "user": {"login": user, "type": user_type}},
        "repository": {"name": name, "full_name": repo, "owner": {"login": owner}},
        "sender": {"login": user, "type": user_type},
    }


def pull(
    number: int = 42, state: str = "open", repo: str = "coop-cloud/keycloak"
) -> dict[str, Any]:
    """Return a forge's pull request resource."""
    return {
        "number": number,
        "state": state,
        "head": {"ref": "bump", "sha": SHA, "repo": {"full_name": "bob/keycloak"}},
        "base": {"ref": "main", "repo": {"full_name": repo, "clone_url": f"{GITEA}/{repo}.git"}},
    }


def gitea_headers(
    body: bytes, *, delivery: str | None = None, event: str = "issue_comment"
) -> dict[str, str]:
    """Return the headers Gitea sends with ``body``."""
    return {
        "Content-Type": "application/json",
        "X-Gitea-Event": event,
        "X-Gitea-Event-Type": "pull_request_comment",
        "X-Gitea-Delivery": delivery or str(uuid.uuid4()),
        "X-Gitea-Signature": sign(SECRET, body),
    }


def github_headers(
    body: bytes, *, delivery: str | None = None, event: str = "issue_comment"
) -> dict[str, str]:
    """Return the headers GitHub sends with ``body``."""
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": "sha256=" + sign(SECRET, body),
    }


def encode(payload: Any) -> bytes:
    """Return ``payload`` as the JSON bytes a forge posts."""
    return json.dumps(payload).encode()
