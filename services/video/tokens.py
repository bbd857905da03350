"""Signed upload tokens: the platform's pre-signed upload URL.

Seed 004 ("Core API Surface"): the upload API hands the client "a pre-signed
S3 URL" so the raw bytes go "straight from the client to S3" and the app
servers "only handle metadata". Here ``video-upload`` signs a token at
InitiateUpload and ``video-storage`` checks it on every UploadObject and
GetUploadOffset call, without calling back: both hold the same secret.

A token is ``v2.<kid>.<payload>.<mac>``: ``kid`` is the id of the key it is
signed with; ``payload`` is the URL-safe base64 (no padding) of a compact JSON
object ``{"v": video_id, "k": object key, "s": declared size in bytes, "e":
expiry in Unix milliseconds}``; ``mac`` is the URL-safe base64 of
HMAC-SHA256(key, ``"casemesh-upload-v2." + kid + "." + payload``).
Verification looks the key up by ``kid``, recomputes the MAC (constant-time
comparison), then checks the expiry and the payload's shape. Tokens are
bearer credentials: whoever holds one may upload that one object until it
expires, nothing else.

The key is the mesh secret's ``upload-token`` key (HKDF-derived,
``casemesh.services.runtime.secrets``), so both services hold it without a
setting of their own and there is no default: a token signed under a rotated
out secret (no longer in ``CASEMESH_PREVIOUS_SECRETS_FILE``), or under any
key the mesh does not hold (the old public ``casemesh-dev-upload-token-secret``
included), is refused with ``UNAUTHENTICATED``; so is a ``v1`` token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass

from casemesh.services.runtime.errors import Unauthenticated
from casemesh.services.runtime.secrets import Keyring

_VERSION = "v2"
_DOMAIN = b"casemesh-upload-v2."
#: Video ids are URL-safe, at most 32 characters (video.proto, ``Video.video_id``).
VIDEO_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")


def raw_key(video_id: str) -> str:
    """The object key of a video's raw upload: ``raw/{video_id}``."""
    return f"raw/{video_id}"


@dataclass(frozen=True, slots=True)
class UploadGrant:
    """What a token allows: upload ``size_bytes`` bytes to ``key`` for ``video_id`` until ``expire_at_ms`` (Unix ms)."""

    video_id: str
    key: str
    size_bytes: int
    expire_at_ms: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class UploadTokenSigner:
    """Signs upload tokens with the keyring's current key and verifies them with any key it holds.

    ``keyring`` is the mesh secret's ``upload-token`` keyring
    (``MeshSecret.keyring(UPLOAD_TOKEN)``). Stateless and cheap: one
    HMAC-SHA256 per call.
    """

    def __init__(self, keyring: Keyring):
        self._keyring = keyring

    @staticmethod
    def _mac(key: bytes, kid: str, payload: str) -> bytes:
        return hmac.new(key, _DOMAIN + f"{kid}.{payload}".encode("ascii"), hashlib.sha256).digest()

    def sign(self, grant: UploadGrant) -> str:
        """The token of ``grant`` (ASCII, URL-safe), under the current key."""
        body = json.dumps({"v": grant.video_id, "k": grant.key, "s": grant.size_bytes, "e": grant.expire_at_ms},
                          separators=(",", ":"), sort_keys=True)
        payload = _b64(body.encode("utf-8"))
        kid = self._keyring.current_kid
        return f"{_VERSION}.{kid}.{payload}.{_b64(self._mac(self._keyring.current_key, kid, payload))}"

    def verify(self, token: str, now_ms: int) -> UploadGrant:
        """The grant of a genuine, unexpired ``token`` at ``now_ms`` (Unix ms).

        Raises :class:`Unauthenticated` (→ ``UNAUTHENTICATED``) when the token
        is missing, malformed, signed with a key the mesh does not hold (another
        or a rotated-out secret), altered, or expired (``now_ms >= expire_at_ms``).
        The message never echoes the token.
        """
        if not token:
            raise Unauthenticated("upload_token is missing")
        parts = token.split(".")
        if len(parts) != 4 or parts[0] != _VERSION:
            raise Unauthenticated("upload_token is malformed")
        _, kid, payload, mac = parts
        key = self._keyring.key(kid)
        if key is None:
            raise Unauthenticated("upload_token is signed with a key this mesh does not hold (another secret, or one "
                                  "rotated out)")
        try:
            given = _unb64(mac)
            expected = self._mac(key, kid, payload)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise Unauthenticated("upload_token is malformed") from None
        if not hmac.compare_digest(given, expected):
            raise Unauthenticated("upload_token signature is invalid (forged or altered)")
        try:
            fields = json.loads(_unb64(payload))
            grant = UploadGrant(str(fields["v"]), str(fields["k"]), int(fields["s"]), int(fields["e"]))
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise Unauthenticated("upload_token payload is malformed") from None
        if not VIDEO_ID_RE.fullmatch(grant.video_id) or grant.key != raw_key(grant.video_id) or grant.size_bytes <= 0:
            raise Unauthenticated("upload_token payload is malformed")
        if now_ms >= grant.expire_at_ms:
            raise Unauthenticated(f"upload_token expired {(now_ms - grant.expire_at_ms) / 1000:.0f} s ago")
        return grant
