"""Upload tokens (services/video/tokens.py): sign, verify, expiry, forgery, key ids and rotation."""

from __future__ import annotations

import base64
import json

import pytest

from casemesh.services.runtime.errors import Unauthenticated
from casemesh.services.runtime.secrets import PUBLIC_DEV_SECRET, UPLOAD_TOKEN, Keyring, MeshSecret, derive_key, key_id
from casemesh.services.video.tokens import UploadGrant, UploadTokenSigner, raw_key

SECRET = MeshSecret("test-secret-0123456789abcdef-0123456789").keyring(UPLOAD_TOKEN)
GRANT = UploadGrant("vid_123-abc", raw_key("vid_123-abc"), 5_000_000, 1_000_000)


def test_sign_then_verify_returns_the_grant():
    signer = UploadTokenSigner(SECRET)
    token = signer.sign(GRANT)
    assert token.startswith(f"v2.{SECRET.current_kid}.") and token.isascii() and " " not in token
    assert signer.verify(token, now_ms=999_999) == GRANT
    assert signer.sign(GRANT) == token  # deterministic


def test_expired_token_is_refused():
    signer = UploadTokenSigner(SECRET)
    token = signer.sign(GRANT)
    with pytest.raises(Unauthenticated, match="expired"):
        signer.verify(token, now_ms=GRANT.expire_at_ms)


def test_token_of_another_secret_is_refused():
    token = UploadTokenSigner(MeshSecret("another-secret-0123456789abcdef-xyz").keyring(UPLOAD_TOKEN)).sign(GRANT)
    with pytest.raises(Unauthenticated, match="key this mesh does not hold"):
        UploadTokenSigner(SECRET).verify(token, now_ms=0)


def test_altered_payload_is_refused():
    signer = UploadTokenSigner(SECRET)
    version, kid, payload, mac = signer.sign(GRANT).split(".")
    fields = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    fields["s"] = 10**12  # claim a bigger upload
    forged_payload = base64.urlsafe_b64encode(json.dumps(fields).encode()).rstrip(b"=").decode()
    with pytest.raises(Unauthenticated, match="signature"):
        signer.verify(f"{version}.{kid}.{forged_payload}.{mac}", now_ms=0)


@pytest.mark.parametrize("token", ["", "garbage", "v1.a.b", "v2.x.y", "v1..", "v1.!!!.???", "v1.é.é",
                                   f"v2.{SECRET.current_kid}.!!!.???", f"v2.{SECRET.current_kid}.é.é", "v2.é.a.b"])
def test_malformed_tokens_are_unauthenticated(token):
    with pytest.raises(Unauthenticated):
        UploadTokenSigner(SECRET).verify(token, now_ms=0)


def test_genuine_token_with_bad_payload_shape_is_refused():
    signer = UploadTokenSigner(SECRET)
    token = signer.sign(UploadGrant("../etc", "raw/../etc", 10, 10**15))
    with pytest.raises(Unauthenticated, match="malformed"):
        signer.verify(token, now_ms=0)


def test_token_self_minted_with_the_old_public_constant_is_refused():
    """Issue 12: anyone could mint tokens with the public default secret; no mesh holds its key now."""
    import hashlib
    import hmac
    import json as _json

    old_v1 = "v1.{p}.{m}"
    payload = base64.urlsafe_b64encode(_json.dumps({"v": "x", "k": "raw/x", "s": 1 << 40, "e": 10**15}).encode()).rstrip(b"=").decode()
    mac = base64.urlsafe_b64encode(hmac.new(PUBLIC_DEV_SECRET.encode(), b"casemesh-upload-v1." + payload.encode(),
                                            hashlib.sha256).digest()).rstrip(b"=").decode()
    with pytest.raises(Unauthenticated):
        UploadTokenSigner(SECRET).verify(old_v1.format(p=payload, m=mac), now_ms=0)
    # The same constant as a v2 key (its own kid) is no key of this mesh either.
    public_key = derive_key(PUBLIC_DEV_SECRET, UPLOAD_TOKEN)
    forged = UploadTokenSigner(Keyring(key_id(public_key), public_key, {key_id(public_key): public_key})).sign(GRANT)
    with pytest.raises(Unauthenticated, match="key this mesh does not hold"):
        UploadTokenSigner(SECRET).verify(forged, now_ms=0)


def test_tokens_survive_a_rotation_while_the_old_secret_is_listed_and_fail_after():
    old, new = "old-secret-0123456789abcdef-0123456789", "new-secret-0123456789abcdef-0123456789"
    token = UploadTokenSigner(MeshSecret(old).keyring(UPLOAD_TOKEN)).sign(GRANT)
    rotated = UploadTokenSigner(MeshSecret(new, previous=(old,)).keyring(UPLOAD_TOKEN))
    assert rotated.verify(token, now_ms=0) == GRANT
    assert rotated.sign(GRANT).split(".")[1] != token.split(".")[1]  # new tokens name the new key
    with pytest.raises(Unauthenticated, match="rotated out"):
        UploadTokenSigner(MeshSecret(new).keyring(UPLOAD_TOKEN)).verify(token, now_ms=0)
