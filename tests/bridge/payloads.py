"""Webhook payloads shaped like the forges' own (trimmed to the fields a receiver may read)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from email.utils import formatdate
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


# -- Drone: its system webhook and its build API, as Drone 2 answers them -------------------------

DRONE_SECRET = "bea26a2221fd8090ea38720fc445eca6"  # DRONE_WEBHOOK_SECRET, as openssl rand -hex 16
CI_REPO = "coop-cloud/cc-ci"


def drone_hook(number: int, status: str, *, repo: str = CI_REPO) -> dict[str, Any]:
    """Return Drone's ``build`` webhook payload (``action`` updated) for build ``number``."""
    owner, name = repo.split("/")
    return {
        "event": "build",
        "action": "updated",
        "user": {"id": 1, "login": "drone-admin"},
        "repo": {"id": 5, "namespace": owner, "name": name, "slug": repo},
        "build": {"id": 9000 + number, "number": number, "status": status, "event": "custom"},
    }


def drone_headers(
    body: bytes, *, date: str | None = None, secret: str = DRONE_SECRET
) -> dict[str, str]:
    """Return the headers Drone's webhook sender sets: Date, Digest and the HTTP signature.

    Computed here from the scheme (``tests/bridge/test_signatures.py`` checks the same against
    openssl), not with the bridge's own signer.
    """
    date = date or formatdate(usegmt=True)
    digest = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
    mac = hmac.new(secret.encode(), f"date: {date}\ndigest: {digest}".encode(), hashlib.sha256)
    signature = base64.b64encode(mac.digest()).decode()
    return {
        "Content-Type": "application/json",
        "Date": date,
        "Digest": digest,
        "Signature": (
            'keyId="hmac-key",algorithm="hmac-sha256",headers="date digest",'
            f'signature="{signature}"'
        ),
    }


def drone_build(
    number: int,
    status: str,
    *,
    steps: tuple[tuple[str, str, int], ...] = (("clone", "success", 0), ("test", "success", 0)),
    started: int = 1_700_000_000,
    took: int = 252,
) -> dict[str, Any]:
    """Return ``GET /api/repos/{repo}/builds/{n}``: one stage, ``steps`` as (name, status, exit)."""
    done = status not in {"pending", "running"}
    return {
        "id": 9000 + number,
        "number": number,
        "status": status,
        "event": "custom",
        "error": "",
        "started": started,
        "finished": started + took if done else 0,
        "stages": [
            {
                "id": 1,
                "number": 1,
                "name": "default",
                "status": status,
                "steps": [
                    {"id": 10 + i, "number": i + 1, "name": n, "status": s, "exit_code": code}
                    for i, (n, s, code) in enumerate(steps)
                ],
            }
        ],
    }


def drone_log(*lines: str) -> list[dict[str, Any]]:
    """Return ``GET …/logs/{stage}/{step}``: one entry per line, as Drone stores them."""
    return [{"pos": i, "out": line + "\n", "time": i} for i, line in enumerate(lines)]
