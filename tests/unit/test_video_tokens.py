"""Upload tokens (services/video/tokens.py): sign, verify, expiry, forgery."""

from __future__ import annotations

import base64
import json

import pytest

from casemesh.services.runtime.errors import Unauthenticated
from casemesh.services.video.tokens import UploadGrant, UploadTokenSigner, raw_key

SECRET = "test-secret-0123456789"
GRANT = UploadGrant("vid_123-abc", raw_key("vid_123-abc"), 5_000_000, 1_000_000)


def test_sign_then_verify_returns_the_grant():
    signer = UploadTokenSigner(SECRET)
    token = signer.sign(GRANT)
    assert token.startswith("v1.") and token.isascii() and " " not in token
    assert signer.verify(token, now_ms=999_999) == GRANT
    assert signer.sign(GRANT) == token  # deterministic


def test_expired_token_is_refused():
    signer = UploadTokenSigner(SECRET)
    token = signer.sign(GRANT)
    with pytest.raises(Unauthenticated, match="expired"):
        signer.verify(token, now_ms=GRANT.expire_at_ms)


def test_token_of_another_secret_is_refused():
    token = UploadTokenSigner("another-secret-0123456789").sign(GRANT)
    with pytest.raises(Unauthenticated, match="signature"):
        UploadTokenSigner(SECRET).verify(token, now_ms=0)


def test_altered_payload_is_refused():
    signer = UploadTokenSigner(SECRET)
    version, payload, mac = signer.sign(GRANT).split(".")
    fields = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    fields["s"] = 10**12  # claim a bigger upload
    forged_payload = base64.urlsafe_b64encode(json.dumps(fields).encode()).rstrip(b"=").decode()
    with pytest.raises(Unauthenticated, match="signature"):
        signer.verify(f"{version}.{forged_payload}.{mac}", now_ms=0)


@pytest.mark.parametrize("token", ["", "garbage", "v1.a.b", "v2.x.y", "v1..", "v1.!!!.???", "v1.é.é"])
def test_malformed_tokens_are_unauthenticated(token):
    with pytest.raises(Unauthenticated):
        UploadTokenSigner(SECRET).verify(token, now_ms=0)


def test_genuine_token_with_bad_payload_shape_is_refused():
    signer = UploadTokenSigner(SECRET)
    token = signer.sign(UploadGrant("../etc", "raw/../etc", 10, 10**15))
    with pytest.raises(Unauthenticated, match="malformed"):
        signer.verify(token, now_ms=0)


def test_short_secret_is_rejected():
    with pytest.raises(ValueError):
        UploadTokenSigner("short")
