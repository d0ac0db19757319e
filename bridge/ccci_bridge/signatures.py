"""Verify webhook signatures over the raw body, in constant time.

Gitea and Forgejo send the hex HMAC-SHA256 of the body in ``X-Gitea-Signature`` (Forgejo also in
``X-Forgejo-Signature``); GitHub sends ``sha256=<hex>`` in ``X-Hub-Signature-256``.
"""

from __future__ import annotations

import hashlib
import hmac

from .errors import Rejected

GITHUB_PREFIX = "sha256="


def sign(secret: str, body: bytes) -> str:
    """Return the hex HMAC-SHA256 of ``body`` keyed with ``secret``."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_hex(secret: str, body: bytes, header: str | None) -> None:
    """Accept a Gitea/Forgejo signature header or raise Rejected (401)."""
    if not header:
        raise Rejected(401, "missing signature")
    expected = sign(secret, body).encode()
    # Compare bytes: compare_digest refuses non-ASCII str, and the sender controls the header.
    if not hmac.compare_digest(expected, header.strip().lower().encode("utf-8", "replace")):
        raise Rejected(401, "bad signature")


def verify_github(secret: str, body: bytes, header: str | None) -> None:
    """Accept a GitHub ``X-Hub-Signature-256`` header or raise Rejected (401)."""
    if not header:
        raise Rejected(401, "missing signature")
    if not header.startswith(GITHUB_PREFIX):
        raise Rejected(401, "bad signature: expected sha256=<hex>")
    verify_hex(secret, body, header.removeprefix(GITHUB_PREFIX))


def verify_token(expected: str, given: str | None) -> None:
    """Accept a shared bearer token or raise Rejected (401)."""
    if not given:
        raise Rejected(401, "missing token")
    if not hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace")):
        raise Rejected(401, "bad token")
