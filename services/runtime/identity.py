"""Who is calling: the caller identity of an inbound call, and the token outbound mesh channels carry.

Identities are SPIFFE-style URIs in the trust domain ``casemesh.local``:
``spiffe://casemesh.local/svc/<topology name>`` for a service,
``spiffe://casemesh.local/harness`` for the load generator and
``spiffe://casemesh.local/test`` for tests calling internal RPCs
(docs/security.md, "Identities and authorization").

The identity of an inbound call (:meth:`CallerIdentifier.identify`):

- over mTLS, the peer certificate's SPIFFE URI SAN, as grpc-core verified it
  (``ServicerContext.peer_identities()``: the certificate's SANs; the one
  ``spiffe://`` entry is taken, none or several means no identity);
- otherwise the caller token in the ``casemesh-caller`` metadata entry::

      v1.<kid>.<path>.<issued_ms>.<mac>

  ``path`` is the identity without ``spiffe://casemesh.local/`` (``svc/urlshortener``),
  ``issued_ms`` the Unix time in milliseconds it was made, ``kid`` the key id
  (:mod:`.secrets`), ``mac`` the URL-safe base64 (no padding) of
  HMAC-SHA256(service-token key, ``"casemesh-caller." + v1.<kid>.<path>.<issued_ms>``).
  A token is accepted from :data:`CLOCK_SKEW_S` before ``issued_ms`` until
  :data:`TOKEN_LIFETIME_S` after it, under the current or a previous key.
  The MAC is compared in constant time; a verified token is cached until it
  expires (a channel's token is the same on every call), so a call pays one
  dictionary lookup and one clock read.

Outbound, a :class:`CallerToken` makes the token of a service's identity and
makes a new one every :data:`REFRESH_AFTER_S`; the client interceptor adds
it to every call of the channel (:mod:`.channels`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Sequence

import grpc

from .secrets import Keyring

TRUST_DOMAIN = "casemesh.local"
_PREFIX = f"spiffe://{TRUST_DOMAIN}/"
#: The harness's identity (it calls public methods only).
HARNESS_IDENTITY = _PREFIX + "harness"
#: The identity of tests that call internal methods; servers accept it only when they opt in (:mod:`.authorization`).
TEST_IDENTITY = _PREFIX + "test"

#: The metadata key of the caller token.
CALLER_METADATA_KEY = "casemesh-caller"
#: How long a caller token is accepted after it was made, in seconds.
TOKEN_LIFETIME_S = 3600.0
#: How early a token's ``issued_ms`` may be (clocks of two hosts disagree), in seconds.
CLOCK_SKEW_S = 300.0
#: A channel's token is made again after this many seconds (well inside its lifetime).
REFRESH_AFTER_S = 600.0
#: Verified tokens kept (a mesh has a few dozen identities; the cache is cleared when full).
MAX_CACHED_TOKENS = 4096

_VERSION = "v1"
_DOMAIN = b"casemesh-caller."
_PATH_RE = re.compile(r"[a-z0-9][a-z0-9-]*(/[a-z0-9][a-z0-9-]*)*")
_SVC_NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]*")
_ISSUED_RE = re.compile(r"[0-9]{1,16}")


def service_identity(name: str) -> str:
    """The identity of topology service ``name``: ``spiffe://casemesh.local/svc/<name>``.

    ``ValueError`` when ``name`` is not lowercase letters, digits and dashes.
    """
    if not _SVC_NAME_RE.fullmatch(name):
        raise ValueError(f"service name {name!r} cannot be an identity: lowercase letters, digits and dashes only")
    return f"{_PREFIX}svc/{name}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _mac(key: bytes, signed: str) -> str:
    return _b64(hmac.new(key, _DOMAIN + signed.encode("ascii"), hashlib.sha256).digest())


def mint_token(identity: str, keyring: Keyring, issued_ms: int) -> str:
    """The caller token of ``identity`` (a ``spiffe://casemesh.local/...`` URI) made at ``issued_ms``, signed with the current key.

    ``ValueError`` when ``identity`` is outside the trust domain or its path is not ``[a-z0-9-]`` segments.
    """
    if not identity.startswith(_PREFIX) or not _PATH_RE.fullmatch(identity[len(_PREFIX):]):
        raise ValueError(f"{identity!r} is not a casemesh identity (spiffe://{TRUST_DOMAIN}/PATH)")
    signed = f"{_VERSION}.{keyring.current_kid}.{identity[len(_PREFIX):]}.{int(issued_ms)}"
    return f"{signed}.{_mac(keyring.current_key, signed)}"


class CallerToken:
    """The token an outbound channel carries for ``identity``, made again every :data:`REFRESH_AFTER_S`.

    ``metadata()`` is what the client interceptor appends to each call:
    ``(("casemesh-caller", token),)``.
    """

    __slots__ = ("identity", "_keyring", "_clock", "_metadata", "_refresh_at")

    def __init__(self, identity: str, keyring: Keyring, clock: Callable[[], float] = time.time):
        self.identity = identity
        self._keyring = keyring
        self._clock = clock
        self._refresh_at = 0.0
        self._metadata: tuple[tuple[str, str], ...] = ()
        self.metadata()  # a bad identity fails here, at channel creation

    def metadata(self) -> tuple[tuple[str, str], ...]:
        now = self._clock()
        if now >= self._refresh_at:
            self._metadata = ((CALLER_METADATA_KEY, mint_token(self.identity, self._keyring, int(now * 1000))),)
            self._refresh_at = now + REFRESH_AFTER_S
        return self._metadata


class InvalidToken(Exception):
    """A caller token that is malformed, forged, signed with an unknown key, or outside its validity window.

    The message says which, never echoing the token.
    """


class TokenVerifier:
    """Checks caller tokens against a keyring (the ``service-token`` keys); verified tokens are cached until they expire."""

    def __init__(self, keyring: Keyring, clock: Callable[[], float] = time.time):
        self._keyring = keyring
        self._clock = clock
        self._verified: dict[str, tuple[str, float, float]] = {}  # token → (identity, valid from, valid until) in s

    def identity(self, token: str) -> str:
        """The identity ``token`` proves now; :class:`InvalidToken` otherwise."""
        now = self._clock()
        cached = self._verified.get(token)
        if cached is not None:
            identity, valid_from, valid_until = cached
            if valid_from <= now < valid_until:
                return identity
            del self._verified[token]
            raise InvalidToken("caller token expired" if now >= valid_until else "caller token is from the future")
        identity, issued_s = self._verify(token)
        valid_from, valid_until = issued_s - CLOCK_SKEW_S, issued_s + TOKEN_LIFETIME_S
        if now >= valid_until:
            raise InvalidToken(f"caller token expired {now - valid_until:.0f} s ago")
        if now < valid_from:
            raise InvalidToken("caller token is from the future (check the clocks)")
        if len(self._verified) >= MAX_CACHED_TOKENS:
            self._verified.clear()
        self._verified[token] = (identity, valid_from, valid_until)
        return identity

    def _verify(self, token: str) -> tuple[str, float]:
        parts = token.split(".")
        if len(parts) != 5 or parts[0] != _VERSION or not _ISSUED_RE.fullmatch(parts[3]):
            raise InvalidToken("caller token is malformed")
        _, kid, path, issued, mac = parts
        key = self._keyring.key(kid)
        if key is None:
            raise InvalidToken("caller token is signed with an unknown or retired key")
        signed = token[: len(token) - len(mac) - 1]
        try:
            expected = _mac(key, signed)
        except UnicodeEncodeError:
            raise InvalidToken("caller token is malformed") from None
        if not hmac.compare_digest(mac.encode("ascii", "replace"), expected.encode("ascii")):
            raise InvalidToken("caller token signature is invalid")
        if not _PATH_RE.fullmatch(path):
            raise InvalidToken("caller token is malformed")
        return _PREFIX + path, int(issued) / 1000


def tls_identity(identities: Sequence[bytes] | None) -> str | None:
    """The one ``spiffe://`` entry of a TLS peer's verified identities (its SANs), or ``None`` (none or several)."""
    if not identities:
        return None
    found = [value for value in identities if value.startswith(b"spiffe://")]
    if len(found) != 1:
        return None
    try:
        return found[0].decode("ascii")
    except UnicodeDecodeError:
        return None


class CallerIdentifier:
    """The identity of an inbound call: the TLS peer's SPIFFE ID, else a verified caller token."""

    def __init__(self, verifier: TokenVerifier):
        self.verifier = verifier

    def identify(self, context: grpc.aio.ServicerContext) -> tuple[str | None, str]:
        """``(identity, "")`` when the caller proved one; ``(None, why)`` otherwise.

        ``why`` is ``"no caller identity"`` (no certificate identity, no
        token) or the :class:`InvalidToken` reason.
        """
        identity = tls_identity(context.peer_identities())
        if identity is not None:
            return identity, ""
        token = None
        for key, value in context.invocation_metadata() or ():
            if key == CALLER_METADATA_KEY:
                token = value
                break
        if token is None:
            return None, "no caller identity"
        if not isinstance(token, str):
            return None, "caller token is malformed"
        try:
            return self.verifier.identity(token), ""
        except InvalidToken as error:
            return None, str(error)
