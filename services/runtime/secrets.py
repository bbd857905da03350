"""The mesh secret: where it comes from, and the purpose keys derived from it (docs/security.md, "Secrets").

Every process of a mesh holds the same secret. Nothing signs with it
directly: each use gets its own 32-byte key, derived with HKDF-SHA256
(``cryptography``) with ``info = b"casemesh/" + purpose``:

================= ============================================================
``service-token``  the caller tokens outbound mesh channels carry (:mod:`.identity`)
``upload-token``   the video upload tokens (``casemesh.services.video.tokens``)
================= ============================================================

Each derived key has a key id, ``kid``: the first 8 hex digits of
SHA-256(key). Tokens name their ``kid``, so keys can rotate: a process signs
with the current secret's key and verifies with the current one or any
previous one still listed.

Sources, read from the environment by :func:`load_mesh_secret`:

- ``CASEMESH_SECRET``: the secret itself, or ``CASEMESH_SECRET_FILE``: a file
  holding it (surrounding whitespace ignored). Exactly one of them.
- ``CASEMESH_PREVIOUS_SECRETS_FILE`` (optional): earlier secrets, one per line
  (blank lines and ``#`` comments ignored), still accepted when verifying.

A secret is at least :data:`MIN_SECRET_CHARS` characters with at least
:data:`MIN_DISTINCT_CHARS` distinct ones (``openssl rand -hex 32`` makes
one), and never the old public constant ``casemesh-dev-upload-token-secret``.
:func:`generate_secret` makes one (the embedded mesh does, per run).
"""

from __future__ import annotations

import hashlib
import os
import secrets as _random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SECRET_ENV = "CASEMESH_SECRET"
SECRET_FILE_ENV = "CASEMESH_SECRET_FILE"
PREVIOUS_SECRETS_FILE_ENV = "CASEMESH_PREVIOUS_SECRETS_FILE"

#: The purposes keys are derived for.
SERVICE_TOKEN = "service-token"
UPLOAD_TOKEN = "upload-token"

#: Shortest accepted secret, in characters (32 random bytes as hex are 64).
MIN_SECRET_CHARS = 32
#: Fewest distinct characters in a secret (rejects ``aaaa...``; random hex has 16).
MIN_DISTINCT_CHARS = 10
#: The upload-token secret every casemesh before issue 12 used by default; public, so refused everywhere.
PUBLIC_DEV_SECRET = "casemesh-dev-upload-token-secret"

_KEY_BYTES = 32


class SecretError(ValueError):
    """The mesh secret is missing or unusable; the message names the variable or file and says how to fix it."""


def generate_secret() -> str:
    """A fresh random secret: 32 random bytes as 64 hex characters."""
    return _random.token_hex(32)


def check_secret(secret: str, source: str) -> str:
    """``secret`` when usable, else :class:`SecretError` naming ``source`` (never echoing the secret)."""
    if secret == PUBLIC_DEV_SECRET:
        raise SecretError(f"{source} is the public development constant {PUBLIC_DEV_SECRET!r}, which anyone can sign "
                          f"with; generate a secret with `openssl rand -hex 32`")
    if len(secret) < MIN_SECRET_CHARS or len(set(secret)) < MIN_DISTINCT_CHARS:
        raise SecretError(f"{source} is too weak: at least {MIN_SECRET_CHARS} characters with {MIN_DISTINCT_CHARS} "
                          f"distinct ones are needed (it has {len(secret)} characters, {len(set(secret))} distinct); "
                          f"generate one with `openssl rand -hex 32`")
    return secret


def key_id(key: bytes) -> str:
    """The key id of ``key``: the first 8 hex digits of its SHA-256."""
    return hashlib.sha256(key).hexdigest()[:8]


def derive_key(secret: str, purpose: str) -> bytes:
    """The 32-byte key of ``purpose`` under ``secret`` (HKDF-SHA256, no salt, ``info = casemesh/PURPOSE``)."""
    return HKDF(algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=None,
                info=b"casemesh/" + purpose.encode("ascii")).derive(secret.encode("utf-8"))


@dataclass(frozen=True)
class Keyring:
    """The keys of one purpose: ``current`` (``(kid, key)``) signs, every key in ``keys`` (by kid) verifies."""

    current_kid: str
    current_key: bytes = field(repr=False)
    keys: Mapping[str, bytes] = field(repr=False)

    def key(self, kid: str) -> bytes | None:
        """The key of ``kid``, or ``None`` when it is not (or no longer) accepted."""
        return self.keys.get(kid)


@dataclass(frozen=True)
class MeshSecret:
    """The current secret and the previous ones still accepted; ``keyring(purpose)`` derives the keys (cached)."""

    current: str = field(repr=False)
    previous: tuple[str, ...] = field(default=(), repr=False)
    _keyrings: dict[str, Keyring] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_secret(self.current, "the mesh secret")
        for number, old in enumerate(self.previous, 1):
            check_secret(old, f"previous secret {number}")

    def keyring(self, purpose: str) -> Keyring:
        """The keyring of ``purpose`` (:data:`SERVICE_TOKEN`, :data:`UPLOAD_TOKEN`)."""
        ring = self._keyrings.get(purpose)
        if ring is None:
            current = derive_key(self.current, purpose)
            keys = {key_id(k): k for k in (derive_key(s, purpose) for s in reversed(self.previous))}
            keys[key_id(current)] = current
            ring = self._keyrings[purpose] = Keyring(key_id(current), current, keys)
        return ring

    @classmethod
    def generate(cls) -> MeshSecret:
        """A mesh secret made of a fresh :func:`generate_secret`."""
        return cls(generate_secret())


def _read(path: str, variable: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SecretError(f"{variable}: cannot read {path}: {getattr(error, 'strerror', None) or error}") from None


def _previous(environ: Mapping[str, str]) -> tuple[str, ...]:
    path = environ.get(PREVIOUS_SECRETS_FILE_ENV)
    if not path:
        return ()
    lines = [line.strip() for line in _read(path, PREVIOUS_SECRETS_FILE_ENV).splitlines()]
    found = tuple(line for line in lines if line and not line.startswith("#"))
    for number, old in enumerate(found, 1):
        check_secret(old, f"{PREVIOUS_SECRETS_FILE_ENV} ({path}) entry {number}")
    return found


def load_mesh_secret(environ: Mapping[str, str] | None = None) -> MeshSecret:
    """The mesh secret from ``environ`` (default ``os.environ``): see the module's docstring for the variables.

    Raises :class:`SecretError` when neither or both of ``CASEMESH_SECRET`` and
    ``CASEMESH_SECRET_FILE`` are set, the file cannot be read, or a secret is
    weak or the public constant. The message never contains a secret.
    """
    environ = os.environ if environ is None else environ
    value, path = environ.get(SECRET_ENV), environ.get(SECRET_FILE_ENV)
    if value and path:
        raise SecretError(f"both {SECRET_ENV} and {SECRET_FILE_ENV} are set; set only one")
    if path:
        secret = check_secret(_read(path, SECRET_FILE_ENV).strip(), f"{SECRET_FILE_ENV} ({path})")
    elif value:
        secret = check_secret(value, SECRET_ENV)
    else:
        raise SecretError(f"no mesh secret: set {SECRET_ENV} or {SECRET_FILE_ENV} (one line, at least "
                          f"{MIN_SECRET_CHARS} characters; `openssl rand -hex 32` makes one), the same for every "
                          f"process of the mesh")
    return MeshSecret(secret, _previous(environ))


def secret_environment(secret: MeshSecret) -> dict[str, str]:
    """The variables that hand ``secret`` (the current one only) to a child process: ``{CASEMESH_SECRET: ...}``."""
    return {SECRET_ENV: secret.current}

