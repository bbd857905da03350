"""The vault's cryptography: card numbers sealed with AES-256-GCM, fingerprints as keyed hashes.

Seed 001 #25 (shared/seeds/001_58dfc580020147d2.txt line 49, "Payment Gateway": "PCI DSS (HSM tokenization)"). The
seed's HSM holds the key that encrypts card numbers and never lets it out; here the keys are derived from the mesh
secret (services/runtime/secrets.py: HKDF-SHA256, ``info = casemesh/PURPOSE``), which every process of the mesh holds
and nothing else does, standing in for it:

- :data:`CARD_KEY_PURPOSE` (``card-vault``): the AES-256-GCM key that seals numbers (``cryptography``'s ``AESGCM``).
  Each card gets a fresh random 96-bit nonce (``os.urandom``: the nonces of one key must never repeat, and 2^-32
  collision odds hold up to about 2^32 cards per key, NIST SP 800-38D 8.3), and its token is the associated data: a
  sealed number copied onto another token's row fails authentication instead of decrypting. The key id (``kid``:
  services/runtime/secrets.py ``key_id``) is stored beside each card, so after the mesh secret rotates the cards
  sealed under a previous secret still open while that secret is listed in ``CASEMESH_PREVIOUS_SECRETS_FILE``; new
  cards are sealed under the current one.
- :data:`FINGERPRINT_PURPOSE` (``card-fingerprint``): the HMAC-SHA256 key of fingerprints (hex, 64 characters), the
  same for every token of a card number, so the fraud rules count a card without its number, and nobody without the
  key can test a guessed number against a fingerprint (a plain hash of a 16-digit number with a known check digit and
  prefix is a few billion guesses away). Fingerprints come from the current secret's key: a rotation of the mesh
  secret gives cards new fingerprints (the fraud rules' windows, minutes long, start again for them).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ...runtime.secrets import Keyring, MeshSecret

#: The purpose of the key that seals card numbers (services/runtime/secrets.py ``derive_key``).
CARD_KEY_PURPOSE = "card-vault"
#: The purpose of the fingerprint key.
FINGERPRINT_PURPOSE = "card-fingerprint"
#: AES-GCM nonce, bytes (96 bits, the size GCM is defined for).
NONCE_BYTES = 12
#: AES-GCM authentication tag, bytes: a sealed number is this much longer than the number.
TAG_BYTES = 16


class Sealed(NamedTuple):
    """A sealed card number: the id of the key (``kid``), the nonce, and the ciphertext with its tag."""

    kid: str
    nonce: bytes
    ciphertext: bytes


class Undecryptable(Exception):
    """A sealed number cannot be opened: its key is no longer held (``unknown_key``), or it failed authentication
    (tampered with, or moved to another token)."""

    def __init__(self, message: str, unknown_key: bool) -> None:
        self.unknown_key = unknown_key
        super().__init__(message)


class CardCipher:
    """Seals and opens card numbers (AES-256-GCM under ``card_keys``, the current key sealing) and fingerprints them
    (HMAC-SHA256 under ``fingerprint_key``). :meth:`from_secret` derives both from the mesh secret."""

    def __init__(self, card_keys: Keyring, fingerprint_key: bytes) -> None:
        if len(card_keys.current_key) != 32 or len(fingerprint_key) != 32:
            raise ValueError("the card key and the fingerprint key must be 32 bytes")
        if hmac.compare_digest(card_keys.current_key, fingerprint_key):
            raise ValueError("the card key and the fingerprint key must differ")
        self._keys = card_keys
        self._aead = {kid: AESGCM(key) for kid, key in card_keys.keys.items()}
        self._fingerprint_key = fingerprint_key

    @classmethod
    def from_secret(cls, secret: MeshSecret) -> CardCipher:
        """The cipher of ``secret``: its ``card-vault`` keyring and its current ``card-fingerprint`` key."""
        return cls(secret.keyring(CARD_KEY_PURPOSE), secret.keyring(FINGERPRINT_PURPOSE).current_key)

    @property
    def current_kid(self) -> str:
        """The id of the key new cards are sealed under."""
        return self._keys.current_kid

    def seal(self, card_token: str, card_number: str) -> Sealed:
        """``card_number`` sealed under the current key with a fresh random nonce, ``card_token`` as associated data."""
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = self._aead[self._keys.current_kid].encrypt(nonce, card_number.encode("ascii"),
                                                                  card_token.encode("ascii"))
        return Sealed(self._keys.current_kid, nonce, ciphertext)

    def open(self, card_token: str, sealed: Sealed) -> str:
        """The number sealed in ``sealed`` for ``card_token``; :class:`Undecryptable` when its key is not held or it
        fails authentication."""
        aead = self._aead.get(sealed.kid)
        if aead is None:
            raise Undecryptable(f"the card was sealed under key {sealed.kid}, which this vault no longer holds (the "
                                f"mesh secret changed); tokenize the card again", unknown_key=True)
        try:
            return aead.decrypt(sealed.nonce, sealed.ciphertext, card_token.encode("ascii")).decode("ascii")
        except (InvalidTag, UnicodeDecodeError):
            raise Undecryptable("the stored card failed authentication (altered, or not this token's)",
                                unknown_key=False) from None

    def fingerprint(self, card_number: str) -> str:
        """HMAC-SHA256 of ``card_number`` under the fingerprint key, 64 lower-case hex characters."""
        return hmac.new(self._fingerprint_key, card_number.encode("ascii"), hashlib.sha256).hexdigest()
