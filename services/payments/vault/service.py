"""``casemesh.payments.v1.CardVaultService`` (topology name ``payments-vault``): card numbers in, tokens out.

Seed 001 #25 (shared/seeds/001_58dfc580020147d2.txt line 49: "| 25 | Payment Gateway | PSP routing, fraud
detection, PCI DSS (HSM tokenization), settlement | 10K TPS, Stripe/Adyen |"). The vault is the seed's PCI DSS
tokenization: the merchant's page sends the card here and gets a token back, so neither the merchant nor the
gateway's payment records ever hold a card number; only the gateway turns a token back into a number, for its one
call to an acquirer. The mechanism (:mod:`.cipher`): numbers sealed with AES-256-GCM under a key derived from the
mesh secret (purpose ``card-vault``, standing in for the seed's HSM), a random 96-bit nonce per card, the token as
associated data; the fingerprint an HMAC-SHA256 under a second derived key (``card-fingerprint``), so the fraud
rules count a card without its number. Cards are durable (:mod:`.store`: SQLite, fsynced before answering); the
security code is checked for shape and never stored, logged or kept.

RPCs and status codes (protos/casemesh/payments/v1/vault.proto):

- TokenizeCard (public: the merchant's payment page): INVALID_ARGUMENT naming ``merchant_id``, ``card_number`` (not
  12 to 19 digits, or a wrong Luhn check digit), ``exp_month`` (not 1 to 12), ``exp_year`` (expired, or more than
  20 years ahead) or ``cvc`` (not 3 or 4 digits). A new token (``tok_`` and 24 random characters of [a-z0-9],
  ``secrets``) per call, even for a card stored before: the same card tokenized twice gets two tokens with one
  fingerprint. A token valid for its merchant only.
- DetokenizeCard (internal: :data:`GATEWAY_CALLERS`): INVALID_ARGUMENT naming ``merchant_id`` or ``card_token``;
  NOT_FOUND for an unknown token and for another merchant's token alike (the answer does not tell them apart).
  Also (as the proto lists): FAILED_PRECONDITION when the card was sealed under a key the vault no longer holds (the
  mesh secret was rotated and the old one dropped from ``CASEMESH_PREVIOUS_SECRETS_FILE``), DATA_LOSS when the
  stored row fails authentication (altered on disk).

Both answer UNAVAILABLE when the store cannot be read or written (nothing changed). A crash inside one request ends
that request (UNKNOWN, logged by the runtime's interceptor); the server goes on. Settings:
:class:`.settings.VaultSettings`; metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import functools
import logging
import secrets
import string
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import NamedTuple

import grpc

from casemesh.payments.v1 import vault_pb2, vault_pb2_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from ...runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from ..contract import CARD_TOKEN_PREFIX, GATEWAY_ID_CHARS, card_brand, last4
from . import metrics
from . import validation as check
from .cipher import CardCipher, Undecryptable
from .settings import VaultSettings
from .store import CardRecord, CardStore, StoreUnavailable, TokenTaken

log = logging.getLogger("casemesh.payments.vault")

NAME = "payments-vault"
GATEWAY = "payments-gateway"
FULL_NAME = vault_pb2.DESCRIPTOR.services_by_name["CardVaultService"].full_name
#: Who may call DetokenizeCard.
GATEWAY_CALLERS: tuple[str, ...] = (GATEWAY,)
#: The characters of a token after its prefix.
TOKEN_ALPHABET = string.ascii_lowercase + string.digits
#: Draws of a fresh token before giving up (a repeat has odds 36^-24 per draw: one retry is already a miracle).
TOKEN_DRAWS = 4


def new_token() -> str:
    """``tok_`` and 24 characters of [a-z0-9] from ``secrets`` (about 124 random bits)."""
    return CARD_TOKEN_PREFIX + "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(GATEWAY_ID_CHARS))


class Tokenized(NamedTuple):
    """TokenizeCard's answer: the token and the stored card."""

    card_token: str
    card: CardRecord


class Detokenized(NamedTuple):
    """DetokenizeCard's answer: the number and the stored card."""

    card_number: str
    card: CardRecord


class CardUnreadable(Exception):
    """The stored row failed authentication (altered on disk): DATA_LOSS."""


class CardVault:
    """The vault without gRPC: cards sealed by ``cipher`` and kept in ``store``. ``clock()`` is the time in seconds
    since the Unix epoch (injectable for tests). ``new_token()`` draws tokens (injectable for tests).

    Errors: the runtime's domain errors (``services/runtime/errors.py``), :class:`.store.StoreUnavailable`
    (UNAVAILABLE) and :class:`CardUnreadable` (DATA_LOSS), as the module docstring lists per RPC.
    """

    def __init__(self, cipher: CardCipher, store: CardStore, *, clock: Callable[[], float] = time.time,
                 new_token: Callable[[], str] = new_token) -> None:
        self.cipher = cipher
        self.store = store
        self._clock = clock
        self._new_token = new_token

    def now(self) -> datetime:
        """The clock's time, UTC (what card expiries are judged at)."""
        return datetime.fromtimestamp(self._clock(), UTC)

    async def tokenize(self, card: check.NewCard) -> Tokenized:
        """Seal and store ``card`` (validated) under a new token; returns once it is on disk (fsynced)."""
        fingerprint = self.cipher.fingerprint(card.card_number)
        for _ in range(TOKEN_DRAWS):
            token = self._new_token()
            sealed = self.cipher.seal(token, card.card_number)
            record = CardRecord(
                card_token=token, merchant_id=card.merchant_id, kid=sealed.kid, nonce=sealed.nonce,
                ciphertext=sealed.ciphertext, fingerprint=fingerprint, brand=card_brand(card.card_number),
                last4=last4(card.card_number), exp_month=card.exp_month, exp_year=card.exp_year,
                created_at_unix_ms=int(self._clock() * 1000))
            try:
                await self.store.put(record)
            except TokenTaken:
                log.warning("%s: a token was drawn twice (%s); drawing another", NAME, token)
                continue
            metrics.tokenized(record.brand)
            return Tokenized(token, record)
        raise StoreUnavailable(f"no unused token in {TOKEN_DRAWS} draws; retry")

    async def detokenize(self, merchant_id: str, card_token: str) -> Detokenized:
        """The number and card of ``card_token``, a token of ``merchant_id``'s (validated). :class:`NotFound` for an
        unknown token or another merchant's (one message for both)."""
        try:
            record = await self.store.get(card_token)
        except StoreUnavailable:
            metrics.detokenized("unavailable")
            raise
        if record is None or record.merchant_id != merchant_id:
            metrics.detokenized("not_found" if record is None else "wrong_merchant")
            raise NotFound(f"card_token: no card {card_token} for merchant {merchant_id}")
        try:
            number = self.cipher.open(card_token, record.sealed)
        except Undecryptable as error:
            metrics.detokenized("undecryptable")
            log.error("%s: card %s cannot be opened: %s", NAME, card_token, error)
            if error.unknown_key:
                raise FailedPrecondition(f"card_token: {error}") from None
            raise CardUnreadable(f"card_token: {error}") from None
        metrics.detokenized("ok")
        return Detokenized(number, record)

    async def close(self) -> None:
        await self.store.close()


# -- gRPC -------------------------------------------------------------------------------------------------------------

def _status_on(method):
    """A unary handler that answers UNAVAILABLE when the store cannot be read or written, DATA_LOSS for a stored
    card that fails authentication."""

    @functools.wraps(method)
    async def handler(self, request, context: grpc.aio.ServicerContext):
        try:
            return await method(self, request, context)
        except StoreUnavailable as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))
        except CardUnreadable as error:
            await context.abort(grpc.StatusCode.DATA_LOSS, str(error))

    return handler


class VaultServicer(vault_pb2_grpc.CardVaultServiceServicer):
    """Validates each request (:mod:`.validation`) and calls :class:`CardVault`."""

    def __init__(self, vault: CardVault) -> None:
        self._vault = vault

    @_status_on
    async def TokenizeCard(self, request: vault_pb2.TokenizeCardRequest,
                           context: grpc.aio.ServicerContext) -> vault_pb2.TokenizeCardResponse:
        card = check.tokenize_card(request, self._vault.now())
        token, record = await self._vault.tokenize(card)
        return vault_pb2.TokenizeCardResponse(card_token=token, card=record.to_proto())

    @_status_on
    async def DetokenizeCard(self, request: vault_pb2.DetokenizeCardRequest,
                             context: grpc.aio.ServicerContext) -> vault_pb2.DetokenizeCardResponse:
        try:
            merchant_id, card_token = check.detokenize_card(request)
        except InvalidArgument:
            metrics.detokenized("invalid")
            raise
        number, record = await self._vault.detokenize(merchant_id, card_token)
        return vault_pb2.DetokenizeCardResponse(card_number=number, card=record.to_proto())


class VaultComponent:
    """The servicer over :class:`CardVault`: the store at ``DATA_DIR/payments-vault/cards.sqlite``, the keys from
    the mesh secret the runtime holds (``context.secret``)."""

    def __init__(self, context: RuntimeContext) -> None:
        settings = context.settings(NAME, VaultSettings)
        store = CardStore(context.data_dir(NAME) / "cards.sqlite", settings.record_cache_size,
                          settings.max_commit_cards)
        self.vault = CardVault(CardCipher.from_secret(context.secret), store)
        self.servicer = VaultServicer(self.vault)

    def register(self, server: grpc.aio.Server) -> None:
        vault_pb2_grpc.add_CardVaultServiceServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        log.info("%s: %d cards stored; sealing under key %s", NAME, self.vault.store.count(),
                 self.vault.cipher.current_kid)

    async def stop(self) -> None:
        await self.vault.close()


async def build(context: RuntimeContext) -> VaultComponent:
    return VaultComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(), build=build, settings_model=VaultSettings,
    access=Access(public={"TokenizeCard"}, internal={"DetokenizeCard": GATEWAY_CALLERS}),
)
