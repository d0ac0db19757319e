"""Webhook signatures: HMAC-SHA256 over the raw body, compared in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import subprocess
from collections.abc import Callable

import pytest

from ccci_bridge.errors import Rejected
from ccci_bridge.signatures import (
    body_digest,
    sign,
    sign_drone,
    verify_drone,
    verify_github,
    verify_hex,
    verify_token,
)
from tests.bridge.payloads import DRONE_SECRET

BODY = b'{"action":"created"}'


def test_sign_is_hex_hmac_sha256() -> None:
    """The signature is what Gitea and GitHub compute."""
    assert hmac.new(b"k", BODY, hashlib.sha256).hexdigest() == sign("k", BODY)


def test_valid_signatures_pass() -> None:
    """Both header formats verify, and hex case does not matter."""
    verify_hex("k", BODY, sign("k", BODY).upper())
    verify_github("k", BODY, "sha256=" + sign("k", BODY))


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing signature"),
        ("", "missing signature"),
        (sign("other", BODY), "bad signature"),
        (sign("k", BODY + b" "), "bad signature"),
        ("ẞ" * 64, "bad signature"),
    ],
)
def test_bad_hex_signatures_are_401(header: str | None, reason: str) -> None:
    """Missing, empty, wrong-key, wrong-body and non-ASCII signatures are all refused."""
    with pytest.raises(Rejected) as caught:
        verify_hex("k", BODY, header)
    assert (401, reason) == (caught.value.status, caught.value.reason)


def test_github_needs_the_prefix() -> None:
    """GitHub's header is ``sha256=<hex>``; a bare hex is refused."""
    with pytest.raises(Rejected):
        verify_github("k", BODY, sign("k", BODY))


@pytest.mark.parametrize("given", [None, "", "nope", "tökén"])
def test_bad_tokens_are_401(given: str | None) -> None:
    """The chat token is compared in constant time too."""
    with pytest.raises(Rejected):
        verify_token("token", given)


# -- Drone's system webhooks (draft-cavage HTTP signatures, as httpsignatures-go signs) -----------


DRONE_BODY = (
    b'{"event":"build","action":"updated","repo":{"slug":"coop-cloud/ci"},'
    b'"build":{"number":42,"status":"success"}}'
)
DRONE_DATE = "Wed, 01 Jan 2020 00:00:00 GMT"
DRONE_NOW = 1577836800.0  # that Date


def _drone_request(body: bytes = DRONE_BODY, secret: str = DRONE_SECRET) -> dict[str, str]:
    """Sign as Drone does, computed independently: sha256/HMAC by openssl, the string literal."""
    digest = subprocess.run(
        ["openssl", "dgst", "-sha256", "-binary"], input=body, capture_output=True, check=True
    ).stdout
    digest_header = "SHA-256=" + base64.b64encode(digest).decode()
    signing_string = f"date: {DRONE_DATE}\ndigest: {digest_header}".encode()
    mac = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", secret, "-binary"],
        input=signing_string,
        capture_output=True,
        check=True,
    ).stdout
    signature = base64.b64encode(mac).decode()
    return {
        "Date": DRONE_DATE,
        "Digest": digest_header,
        "Content-Type": "application/json",
        "X-Drone-Event": "build",
        "Signature": (
            'keyId="hmac-key",algorithm="hmac-sha256",headers="date digest",'
            f'signature="{signature}"'
        ),
    }


def test_a_request_signed_the_way_drone_signs_verifies() -> None:
    """The signature openssl computes over Drone's signing string is accepted, in both headers."""
    headers = _drone_request()
    verify_drone(DRONE_SECRET, headers, DRONE_BODY, now=DRONE_NOW)
    as_auth = {k: v for k, v in headers.items() if k != "Signature"}
    as_auth["Authorization"] = "Signature " + headers["Signature"]
    verify_drone(DRONE_SECRET, as_auth, DRONE_BODY, now=DRONE_NOW + 60)
    assert headers["Signature"] == sign_drone(DRONE_SECRET, headers)  # our test signer agrees


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda h, b: (h, b + b" "), "Digest does not match"),
        (lambda h, b: (h | {"Digest": body_digest(b + b"x")}, b + b"x"), "bad signature"),
        (lambda h, b: ({k: v for k, v in h.items() if k != "Signature"}, b), "missing signature"),
        (
            lambda h, b: (h | {"Signature": h["Signature"].replace("sha256", "sha1")}, b),
            "algorithm",
        ),
        (
            lambda h, b: (h | {"Signature": h["Signature"].replace("date digest", "date")}, b),
            "cover",
        ),
        (lambda h, b: (h | {"Signature": "garbage"}, b), "malformed"),
        (lambda h, b: (h | {"Date": "Thu, 02 Jan 2020 00:00:00 GMT"}, b), "too far"),
        (lambda h, b: (h | {"Date": "yesterday"}, b), "not a date"),
    ],
)
def test_a_forged_altered_or_replayed_drone_request_is_refused(
    change: Callable[[dict[str, str], bytes], tuple[dict[str, str], bytes]], reason: str
) -> None:
    """Each is a 401 with a reason; none is accepted."""
    headers, body = change(_drone_request(), DRONE_BODY)
    with pytest.raises(Rejected, match=reason) as caught:
        verify_drone(DRONE_SECRET, headers, body, now=DRONE_NOW)
    assert 401 == caught.value.status


def test_another_secret_or_a_late_replay_is_refused() -> None:
    """Signed with another secret: refused; the genuine request an hour later: refused."""
    with pytest.raises(Rejected, match="bad signature"):
        verify_drone(DRONE_SECRET, _drone_request(secret="x" * 32), DRONE_BODY, now=DRONE_NOW)
    with pytest.raises(Rejected, match="too far"):
        verify_drone(DRONE_SECRET, _drone_request(), DRONE_BODY, now=DRONE_NOW + 3600)
