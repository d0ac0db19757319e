"""Webhook signatures: HMAC-SHA256 over the raw body, compared in constant time."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from ccci_bridge.errors import Rejected
from ccci_bridge.signatures import sign, verify_github, verify_hex, verify_token

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
