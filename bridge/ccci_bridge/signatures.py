"""Verify webhook signatures over the raw body, in constant time.

Gitea and Forgejo send the hex HMAC-SHA256 of the body in ``X-Gitea-Signature`` (Forgejo also in
``X-Forgejo-Signature``); GitHub sends ``sha256=<hex>`` in ``X-Hub-Signature-256``. Drone's
system webhooks carry a draft-cavage HTTP signature over ``Date`` and ``Digest``
(:func:`verify_drone`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

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


# -- Drone's system webhooks ---------------------------------------------------------------------
#
# Drone signs with github.com/99designs/httpsignatures-go (draft-cavage HTTP signatures): it sets
# ``Digest: SHA-256=<base64 sha256 of the body>`` and ``Date`` (RFC 7231), then adds
# ``Signature: keyId="hmac-key",algorithm="hmac-sha256",headers="date digest",signature="<b64>"``
# where the signature is the base64 HMAC-SHA256, keyed with DRONE_WEBHOOK_SECRET, of the signing
# string: one ``<lowercase header>: <value>`` line per listed header, in order, joined by "\n"
# (``(request-target)`` is ``<lowercase method> <path?query>``).

DRONE_ALGORITHM = "hmac-sha256"
DRONE_REQUIRED = ("date", "digest")  # what Drone signs; a signature over less is refused
DRONE_MAX_SKEW_S = 300.0  # a Date this far from now is a replay (or a clock to fix)
_PARAM_RE = re.compile(r'\s*([A-Za-z]+)="([^"]*)"\s*(?:,|$)')


def parse_signature(header: str) -> dict[str, str]:
    """Return the parameters of a ``Signature`` header (or ``Authorization: Signature …``)."""
    value = header.strip().removeprefix("Signature ").strip()
    params: dict[str, str] = {}
    at = 0
    while at < len(value):
        match = _PARAM_RE.match(value, at)
        if match is None:
            raise Rejected(401, "bad signature: malformed Signature header")
        params[match[1]] = match[2]
        at = match.end()
    return params


def body_digest(body: bytes) -> str:
    """Return the ``Digest`` header value Drone sends for ``body``."""
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()


def drone_signing_string(
    names: list[str], headers: Mapping[str, str], method: str = "POST", target: str = "/"
) -> str:
    """Return the draft-cavage signing string of ``names`` (lowercase) from ``headers``."""
    lines = []
    for name in names:
        if name == "(request-target)":
            lines.append(f"(request-target): {method.lower()} {target}")
            continue
        value = headers.get(name)
        if not value:
            raise Rejected(401, f"bad signature: signed header {name!r} is missing")
        lines.append(f"{name}: {value}")
    return "\n".join(lines)


def sign_drone(
    secret: str, headers: Mapping[str, str], names: tuple[str, ...] = DRONE_REQUIRED
) -> str:
    """Return the ``Signature`` header Drone would send (tests sign with it, as Drone does)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    text = drone_signing_string(list(names), lowered)
    mac = hmac.new(secret.encode(), text.encode(), hashlib.sha256).digest()
    signature = base64.b64encode(mac).decode()
    return (
        f'keyId="hmac-key",algorithm="{DRONE_ALGORITHM}",headers="{" ".join(names)}",'
        f'signature="{signature}"'
    )


def verify_drone(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    method: str = "POST",
    target: str = "/",
    now: float | None = None,
) -> None:
    """Accept a Drone system webhook signed with ``secret``, or raise Rejected (401).

    The signature must cover ``date`` and ``digest``, the ``Digest`` must be the body's, and the
    ``Date`` within :data:`DRONE_MAX_SKEW_S` of ``now`` (a captured delivery replayed later is
    refused; the bridge applies a verdict once anyway).
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    raw = lowered.get("signature") or lowered.get("authorization", "")
    if not raw or (not lowered.get("signature") and not raw.startswith("Signature ")):
        raise Rejected(401, "missing signature")
    params = parse_signature(raw)
    if params.get("algorithm", "").lower() != DRONE_ALGORITHM:
        raise Rejected(401, f"bad signature: algorithm must be {DRONE_ALGORITHM}")
    names = params.get("headers", "date").lower().split()
    if not set(DRONE_REQUIRED) <= set(names):
        raise Rejected(401, "bad signature: it must cover the date and digest headers")
    given = lowered.get("digest", "").encode("utf-8", "replace")
    if not hmac.compare_digest(body_digest(body).encode(), given):
        raise Rejected(401, "bad signature: the Digest does not match the body")
    try:
        sent = parsedate_to_datetime(lowered.get("date", "")).timestamp()
    except (TypeError, ValueError, IndexError) as exc:
        raise Rejected(401, "bad signature: the Date header is not a date") from exc
    if abs((time.time() if now is None else now) - sent) > DRONE_MAX_SKEW_S:
        raise Rejected(401, "bad signature: the Date is too far from now (a replay?)")
    text = drone_signing_string(names, lowered, method, target)
    expected = base64.b64encode(
        hmac.new(secret.encode(), text.encode(), hashlib.sha256).digest()
    ).decode()
    if not hmac.compare_digest(
        expected.encode(), params.get("signature", "").encode("utf-8", "replace")
    ):
        raise Rejected(401, "bad signature")
