"""payments-vault (services/payments/vault): tokenize/detokenize round trips, no card number in clear on disk, one
fingerprint per card, tokens bound to their merchant (and to their row: the token is the AES-GCM associated data),
validation naming each field, durability across a reopened store, key rotation, and the RPCs over real gRPC with
the runtime's authorization (DetokenizeCard for payments-gateway only).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from prometheus_client import REGISTRY, CollectorRegistry
from pydantic import ValidationError

from casemesh.payments.v1 import payments_pb2, vault_pb2, vault_pb2_grpc
from casemesh.services.payments.vault import validation
from casemesh.services.payments.vault.cipher import CARD_KEY_PURPOSE, CardCipher, Undecryptable
from casemesh.services.payments.vault.service import (
    DEFINITION,
    GATEWAY_CALLERS,
    CardUnreadable,
    CardVault,
    new_token,
)
from casemesh.services.payments.vault.settings import VaultSettings
from casemesh.services.payments.vault.store import CardStore
from casemesh.services.runtime.authorization import Authorizer, DeniedMetrics
from casemesh.services.runtime.component import RuntimeContext
from casemesh.services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from casemesh.services.runtime.identity import CallerIdentifier, TokenVerifier, service_identity
from casemesh.services.runtime.interceptors.server import ServerInterceptor
from casemesh.services.runtime.metrics import RpcMetrics
from casemesh.services.runtime.secrets import SERVICE_TOKEN, MeshSecret, generate_secret
from casemesh.services.runtime.topology import Endpoint, Topology
from tests.caller_identity import TEST_SECRET, identified_channel

WAIT_S = 10.0
VISA = "4242424242424242"
MASTERCARD = "5555555555554444"
AMEX = "378282246310005"
YEAR = datetime.now(UTC).year + 3


def card(merchant: str = "m1", number: str = VISA, month: int = 12, year: int = YEAR) -> validation.NewCard:
    return validation.NewCard(merchant, number, month, year)


def make_vault(path: Path, secret: MeshSecret, **store_args) -> CardVault:
    return CardVault(CardCipher.from_secret(secret), CardStore(path / "cards.sqlite", **store_args))


@pytest.fixture
def secret() -> MeshSecret:
    return MeshSecret.generate()


@pytest.fixture
async def vault(tmp_path, secret):
    vault = make_vault(tmp_path, secret)
    try:
        yield vault
    finally:
        await vault.close()


def sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# ----------------------------------------------------------------------------- tokenize and detokenize


async def test_round_trip(vault):
    before = sample("casemesh_payments_vault_cards_tokenized_total", {"brand": "visa"})
    ok_before = sample("casemesh_payments_vault_detokenize_total", {"outcome": "ok"})
    token, stored = await vault.tokenize(card(month=7))
    assert token.startswith("tok_") and len(token) == 28 and token[4:].isalnum() and token[4:].islower()
    number, record = await vault.detokenize("m1", token)
    assert number == VISA and record == stored
    shown = record.to_proto()
    assert shown == payments_pb2.Card(brand=payments_pb2.CARD_BRAND_VISA, last4="4242", exp_month=7, exp_year=YEAR,
                                      fingerprint=vault.cipher.fingerprint(VISA))
    assert sample("casemesh_payments_vault_cards_tokenized_total", {"brand": "visa"}) == before + 1
    assert sample("casemesh_payments_vault_detokenize_total", {"outcome": "ok"}) == ok_before + 1


@pytest.mark.parametrize("number, brand", [(VISA, payments_pb2.CARD_BRAND_VISA),
                                           (MASTERCARD, payments_pb2.CARD_BRAND_MASTERCARD),
                                           ("2223003122003222", payments_pb2.CARD_BRAND_MASTERCARD),
                                           (AMEX, payments_pb2.CARD_BRAND_AMEX),
                                           ("6011111111111117", payments_pb2.CARD_BRAND_OTHER)])
async def test_brands_and_last4(vault, number, brand):
    token, record = await vault.tokenize(card(number=number))
    assert record.to_proto().brand == brand and record.last4 == number[-4:]
    assert (await vault.detokenize("m1", token)).card_number == number


async def test_the_file_never_holds_a_number_in_clear(tmp_path, secret):
    vault = make_vault(tmp_path, secret)
    numbers = [VISA, MASTERCARD, AMEX, "4000000000000002"]
    tokens = [(await vault.tokenize(card(number=n))).card_token for n in numbers]

    def disk() -> bytes:
        files = sorted(tmp_path.glob("cards.sqlite*"))
        assert files
        return b"".join(path.read_bytes() for path in files)

    written = disk()  # the WAL too: rows sit there until a checkpoint
    assert all(token.encode() in written for token in tokens)  # the rows are there ...
    assert all(number.encode() not in written for number in numbers)  # ... the numbers are not
    await vault.close()  # closing checkpoints the WAL into the main file
    reopened = disk()
    assert all(token.encode() in reopened for token in tokens)
    assert all(number.encode() not in reopened for number in numbers)
    with sqlite3.connect(tmp_path / "cards.sqlite") as db:
        for row in db.execute("SELECT * FROM cards"):
            assert not any(isinstance(value, str) and any(n in value for n in numbers) for value in row)


async def test_one_card_two_tokens_one_fingerprint(vault):
    first_token, first = await vault.tokenize(card())
    second_token, second = await vault.tokenize(card(merchant="m2", month=1))
    _, other = await vault.tokenize(card(number=MASTERCARD))
    assert first_token != second_token
    assert first.fingerprint == second.fingerprint != other.fingerprint
    assert len(first.fingerprint) == 64 and first.fingerprint == first.fingerprint.lower()
    assert first.nonce != second.nonce and first.ciphertext != second.ciphertext  # a fresh nonce per card


async def test_another_merchants_token_is_not_found(vault):
    token, _ = await vault.tokenize(card(merchant="m1"))
    before = sample("casemesh_payments_vault_detokenize_total", {"outcome": "wrong_merchant"})
    with pytest.raises(NotFound) as other:
        await vault.detokenize("m2", token)
    with pytest.raises(NotFound) as unknown:
        await vault.detokenize("m2", new_token())
    assert str(other.value).startswith("card_token:") and str(unknown.value).startswith("card_token:")
    assert token in str(other.value) and "m1" not in str(other.value)  # nothing says whose it is
    assert sample("casemesh_payments_vault_detokenize_total", {"outcome": "wrong_merchant"}) == before + 1
    assert (await vault.detokenize("m1", token)).card_number == VISA


async def test_concurrent_tokenize_group_commits_every_card(vault):
    results = await asyncio.gather(*(vault.tokenize(card(merchant=f"m{i % 3}")) for i in range(60)))
    assert len({token for token, _ in results}) == 60
    assert vault.store.count() == 60
    numbers = await asyncio.gather(*(vault.detokenize(r.merchant_id, t) for t, r in results))
    assert {n for n, _ in numbers} == {VISA}


async def test_a_token_drawn_twice_is_drawn_again(tmp_path, secret):
    draws = iter(["tok_" + "a" * 24, "tok_" + "a" * 24, "tok_" + "b" * 24])
    vault = CardVault(CardCipher.from_secret(secret), CardStore(tmp_path / "cards.sqlite"),
                      new_token=lambda: next(draws))
    try:
        assert (await vault.tokenize(card())).card_token == "tok_" + "a" * 24
        assert (await vault.tokenize(card(number=MASTERCARD))).card_token == "tok_" + "b" * 24
        assert (await vault.detokenize("m1", "tok_" + "a" * 24)).card_number == VISA
        assert (await vault.detokenize("m1", "tok_" + "b" * 24)).card_number == MASTERCARD
    finally:
        await vault.close()


# ----------------------------------------------------------------------------- durability and keys


async def test_a_reopened_store_still_detokenizes(tmp_path, secret):
    vault = make_vault(tmp_path, secret)
    tokens = {(await vault.tokenize(card(number=n))).card_token: n for n in (VISA, MASTERCARD, AMEX)}
    await vault.close()
    reopened = make_vault(tmp_path, MeshSecret(secret.current), cache_size=0)  # a new process: nothing in memory
    try:
        for token, number in tokens.items():
            got, record = await reopened.detokenize("m1", token)
            assert got == number and record.fingerprint == reopened.cipher.fingerprint(number)
        assert reopened.store.count() == 3
    finally:
        await reopened.close()


async def test_key_rotation_keeps_old_cards_while_the_old_secret_is_listed(tmp_path, secret):
    vault = make_vault(tmp_path, secret)
    old_token, old = await vault.tokenize(card())
    await vault.close()

    rotated = MeshSecret(generate_secret(), previous=(secret.current,))
    vault = make_vault(tmp_path, rotated)
    assert (await vault.detokenize("m1", old_token)).card_number == VISA
    new_token_, new = await vault.tokenize(card())
    assert new.kid == rotated.keyring(CARD_KEY_PURPOSE).current_kid != old.kid
    await vault.close()

    forgotten = MeshSecret(rotated.current)  # the old secret dropped from the previous secrets
    vault = make_vault(tmp_path, forgotten)
    try:
        assert (await vault.detokenize("m1", new_token_)).card_number == VISA
        with pytest.raises(FailedPrecondition, match="card_token: .*no longer holds"):
            await vault.detokenize("m1", old_token)
    finally:
        await vault.close()


async def test_stored_cards_never_change_and_a_moved_number_fails_authentication(vault, tmp_path):
    token_a, record_a = await vault.tokenize(card())
    _, record_b = await vault.tokenize(card(number=MASTERCARD))
    with sqlite3.connect(tmp_path / "cards.sqlite") as db, pytest.raises(sqlite3.IntegrityError,
                                                                         match="cards_immutable"):
        db.execute("UPDATE cards SET ciphertext = ? WHERE card_token = ?", (record_b.ciphertext, token_a))
    # The token is the associated data: B's sealed number does not open as A's.
    with pytest.raises(Undecryptable) as error:
        vault.cipher.open(token_a, record_b.sealed)
    assert not error.value.unknown_key
    flipped = record_a.sealed._replace(ciphertext=bytes([record_a.ciphertext[0] ^ 1]) + record_a.ciphertext[1:])
    with pytest.raises(Undecryptable):
        vault.cipher.open(token_a, flipped)


async def test_a_tampered_row_is_data_loss(tmp_path, secret):
    vault = make_vault(tmp_path, secret, cache_size=0)
    try:
        token_a, _ = await vault.tokenize(card())
        _, record_b = await vault.tokenize(card(number=MASTERCARD))
        with sqlite3.connect(tmp_path / "cards.sqlite") as db:
            db.execute("DROP TRIGGER cards_immutable")
            db.execute("UPDATE cards SET nonce = ?, ciphertext = ? WHERE card_token = ?",
                       (record_b.nonce, record_b.ciphertext, token_a))
        with pytest.raises(CardUnreadable):
            await vault.detokenize("m1", token_a)
    finally:
        await vault.close()


def test_the_cipher_refuses_one_key_for_both_uses(secret):
    ring = secret.keyring(CARD_KEY_PURPOSE)
    with pytest.raises(ValueError):
        CardCipher(ring, ring.current_key)
    fingerprint = CardCipher.from_secret(secret).fingerprint(VISA)
    assert fingerprint != CardCipher.from_secret(MeshSecret.generate()).fingerprint(VISA)  # keyed, not a plain hash


# ----------------------------------------------------------------------------- validation


def tokenize_request(**changes) -> vault_pb2.TokenizeCardRequest:
    fields = {"merchant_id": "m1", "card_number": VISA, "exp_month": 12, "exp_year": YEAR, "cvc": "123", **changes}
    return vault_pb2.TokenizeCardRequest(**fields)


NOW = datetime(2030, 6, 15, tzinfo=UTC)


@pytest.mark.parametrize("changes, field", [
    ({"merchant_id": ""}, "merchant_id"),
    ({"merchant_id": "m 1"}, "merchant_id"),
    ({"merchant_id": "m" * 65}, "merchant_id"),
    ({"card_number": ""}, "card_number"),
    ({"card_number": "42424242424"}, "card_number"),  # 11 digits
    ({"card_number": "4" * 20}, "card_number"),
    ({"card_number": "4242 4242 4242 4242"}, "card_number"),
    ({"card_number": "4242424242424241"}, "card_number"),  # wrong check digit
    ({"card_number": "４２４２４２４２４２４２４２４２"}, "card_number"),  # full-width digits
    ({"exp_month": 0}, "exp_month"),
    ({"exp_month": 13}, "exp_month"),
    ({"exp_month": -1}, "exp_month"),
    ({"exp_year": 0}, "exp_year"),
    ({"exp_year": 30}, "exp_year"),  # two digits
    ({"exp_year": 2029}, "exp_year"),  # expired
    ({"exp_year": 2030, "exp_month": 5}, "exp_year"),  # expired at the end of May 2030
    ({"exp_year": 2051}, "exp_year"),  # more than 20 years ahead
    ({"cvc": ""}, "cvc"),
    ({"cvc": "12"}, "cvc"),
    ({"cvc": "12345"}, "cvc"),
    ({"cvc": "12a"}, "cvc"),
])
def test_tokenize_validation_names_the_field(changes, field):
    with pytest.raises(InvalidArgument) as error:
        validation.tokenize_card(tokenize_request(**{"exp_year": 2031, **changes}), NOW)
    assert error.value.field == field and str(error.value).startswith(f"{field}: ")
    for secret_value in (VISA, "4242424242424241", "123"):
        assert secret_value not in error.value.reason  # never echoed


def test_tokenize_validation_accepts_the_edges():
    assert validation.tokenize_card(tokenize_request(exp_year=2030, exp_month=6), NOW).exp_month == 6  # this month
    assert validation.tokenize_card(tokenize_request(exp_year=2050, cvc="1234"), NOW).exp_year == 2050
    for number in ("424242424242", "4242424242424242428"):  # 12 and 19 digits
        assert validation.tokenize_card(tokenize_request(card_number=number, exp_year=2031), NOW).card_number == number
    new = validation.tokenize_card(tokenize_request(card_number=AMEX, exp_year=2031), NOW)
    assert new == validation.NewCard("m1", AMEX, 12, 2031)


@pytest.mark.parametrize("merchant, token, field", [
    ("", "tok_" + "a" * 24, "merchant_id"),
    ("m/1", "tok_" + "a" * 24, "merchant_id"),
    ("m1", "", "card_token"),
    ("m1", "tok_" + "a" * 23, "card_token"),
    ("m1", "tok_" + "A" * 24, "card_token"),
    ("m1", "pay_" + "a" * 24, "card_token"),
])
def test_detokenize_validation_names_the_field(merchant, token, field):
    with pytest.raises(InvalidArgument) as error:
        validation.detokenize_card(vault_pb2.DetokenizeCardRequest(merchant_id=merchant, card_token=token))
    assert error.value.field == field


def test_settings_and_definition():
    with pytest.raises(ValidationError):
        VaultSettings(record_cache_sise=5)
    with pytest.raises(ValidationError):
        VaultSettings(max_commit_cards=0)
    assert VaultSettings().record_cache_size == 100_000
    assert DEFINITION.name == "payments-vault" and DEFINITION.dependencies == ()
    assert GATEWAY_CALLERS == ("payments-gateway",)
    assert DEFINITION.access.public == {"TokenizeCard"}
    assert DEFINITION.access.internal == {"DetokenizeCard": GATEWAY_CALLERS}


# ----------------------------------------------------------------------------- over gRPC


async def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error.value.details()


@contextlib.asynccontextmanager
async def served(tmp_path: Path):
    """payments-vault built by its DEFINITION (data under ``tmp_path``, the tests' mesh secret) on a loopback server
    with the runtime's interceptor and authorization; yields its address."""
    topology = Topology(services={"payments-vault": Endpoint(address="127.0.0.1:1")}, data_dir=str(tmp_path))
    component = await DEFINITION.build(RuntimeContext(topology, secret=TEST_SECRET).for_service("payments-vault"))
    authorizer = Authorizer([DEFINITION], CallerIdentifier(TokenVerifier(TEST_SECRET.keyring(SERVICE_TOKEN))),
                            metrics=DeniedMetrics(CollectorRegistry()))
    server = grpc.aio.server(interceptors=[ServerInterceptor(metrics=RpcMetrics("server", registry=CollectorRegistry()),
                                                             authorizer=authorizer)])
    component.register(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await component.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)
        await component.stop()


async def test_over_grpc_with_authorization(tmp_path):
    async with served(tmp_path) as address:
        page_channel = grpc.aio.insecure_channel(address)
        gateway = identified_channel(address, TEST_SECRET, service_identity("payments-gateway"))
        other = identified_channel(address, TEST_SECRET, service_identity("payments-fraud"))
        try:
            page = vault_pb2_grpc.CardVaultServiceStub(page_channel)
            tokenized = await page.TokenizeCard(tokenize_request(card_number=MASTERCARD), timeout=WAIT_S)
            assert tokenized.card.brand == payments_pb2.CARD_BRAND_MASTERCARD and tokenized.card.last4 == "4444"
            code, details = await _code(page.TokenizeCard(tokenize_request(cvc="1"), timeout=WAIT_S))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("cvc: ")

            request = vault_pb2.DetokenizeCardRequest(merchant_id="m1", card_token=tokenized.card_token)
            code, _ = await _code(page.DetokenizeCard(request, timeout=WAIT_S))
            assert code == grpc.StatusCode.PERMISSION_DENIED  # anonymous: the merchant's page
            code, _ = await _code(vault_pb2_grpc.CardVaultServiceStub(other).DetokenizeCard(request, timeout=WAIT_S))
            assert code == grpc.StatusCode.PERMISSION_DENIED  # another service of the mesh

            stub = vault_pb2_grpc.CardVaultServiceStub(gateway)
            detokenized = await stub.DetokenizeCard(request, timeout=WAIT_S)
            assert detokenized.card_number == MASTERCARD and detokenized.card == tokenized.card
            code, details = await _code(stub.DetokenizeCard(vault_pb2.DetokenizeCardRequest(
                merchant_id="m2", card_token=tokenized.card_token), timeout=WAIT_S))
            assert code == grpc.StatusCode.NOT_FOUND and details.startswith("card_token: ")
            code, details = await _code(stub.DetokenizeCard(vault_pb2.DetokenizeCardRequest(
                merchant_id="m1", card_token="tok_short"), timeout=WAIT_S))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("card_token: ")
            assert (tmp_path / "payments-vault" / "cards.sqlite").exists()
        finally:
            for channel in (page_channel, gateway, other):
                await channel.close()
    # A restarted vault (a new component over the same folder, the same mesh secret) still opens the card.
    async with served(tmp_path) as address, identified_channel(
            address, TEST_SECRET, service_identity("payments-gateway")) as gateway:
        again = await vault_pb2_grpc.CardVaultServiceStub(gateway).DetokenizeCard(request, timeout=WAIT_S)
        assert again.card_number == MASTERCARD
