"""Caller tokens (services/runtime/identity.py) and the authorization table and check (services/runtime/authorization.py)."""

from __future__ import annotations

import grpc
import pytest
from prometheus_client import CollectorRegistry

from casemesh.services.catalog import SERVICES
from casemesh.services.runtime.authorization import Access, Authorizer, DeniedMetrics, access_table
from casemesh.services.runtime.component import ServiceDefinition
from casemesh.services.runtime.identity import (CALLER_METADATA_KEY, CLOCK_SKEW_S, REFRESH_AFTER_S, TEST_IDENTITY,
                                                TOKEN_LIFETIME_S, CallerIdentifier, CallerToken, InvalidToken,
                                                TokenVerifier, mint_token, service_identity, tls_identity)
from casemesh.services.runtime.secrets import SERVICE_TOKEN, MeshSecret

SECRET = MeshSecret("fedcba9876543210" * 4)
KEYS = SECRET.keyring(SERVICE_TOKEN)
SHORTENER = service_identity("urlshortener")
NOW = 1_800_000_000.0


def test_a_token_proves_its_identity_within_its_window_only():
    token = mint_token(SHORTENER, KEYS, int(NOW * 1000))
    assert token.startswith(f"v1.{KEYS.current_kid}.svc/urlshortener.")
    for at in (NOW - CLOCK_SKEW_S, NOW, NOW + TOKEN_LIFETIME_S - 1):
        assert TokenVerifier(KEYS, clock=lambda: at).identity(token) == SHORTENER
    with pytest.raises(InvalidToken, match="expired"):
        TokenVerifier(KEYS, clock=lambda: NOW + TOKEN_LIFETIME_S).identity(token)
    with pytest.raises(InvalidToken, match="future"):
        TokenVerifier(KEYS, clock=lambda: NOW - CLOCK_SKEW_S - 1).identity(token)


def test_a_cached_token_still_expires():
    clock = [NOW]
    verifier = TokenVerifier(KEYS, clock=lambda: clock[0])
    token = mint_token(SHORTENER, KEYS, int(NOW * 1000))
    assert verifier.identity(token) == SHORTENER
    clock[0] = NOW + TOKEN_LIFETIME_S
    with pytest.raises(InvalidToken, match="expired"):
        verifier.identity(token)


def test_altered_forged_and_rotated_out_tokens_are_invalid():
    token = mint_token(SHORTENER, KEYS, int(NOW * 1000))
    verifier = TokenVerifier(KEYS, clock=lambda: NOW)
    version, kid, path, issued, mac = token.split(".")
    with pytest.raises(InvalidToken, match="signature"):
        verifier.identity(".".join((version, kid, "svc/video-upload", issued, mac)))  # claims another identity
    with pytest.raises(InvalidToken, match="unknown or retired key"):
        verifier.identity(mint_token(SHORTENER, MeshSecret.generate().keyring(SERVICE_TOKEN), int(NOW * 1000)))
    rotated = MeshSecret("00112233445566778899aabbccddeeff" * 2, previous=(SECRET.current,)).keyring(SERVICE_TOKEN)
    assert TokenVerifier(rotated, clock=lambda: NOW).identity(token) == SHORTENER  # the old key is still listed
    for bad in ("", "v1", "v1.a.b.c.d", f"v1.{kid}.svc/x.notanumber.{mac}", f"v2.{kid}.{path}.{issued}.{mac}", "v1.é.é.1.é",
                f"v1.{kid}.{path}.²³.{mac}", f"v1.{kid}.{path}.{issued}.{mac}é"):
        with pytest.raises(InvalidToken):
            verifier.identity(bad)


def test_a_channel_token_is_made_again_before_it_expires():
    clock = [NOW]
    token = CallerToken(SHORTENER, KEYS, clock=lambda: clock[0])
    first = token.metadata()
    assert first[0][0] == CALLER_METADATA_KEY and token.metadata() is first
    clock[0] = NOW + REFRESH_AFTER_S
    assert token.metadata() != first
    with pytest.raises(ValueError, match="not a casemesh identity"):
        CallerToken("spiffe://elsewhere/svc/x", KEYS)


def test_tls_identity_takes_the_one_spiffe_san():
    assert tls_identity([b"spiffe://casemesh.local/svc/idgen", b"localhost", b"127.0.0.1"]) == "spiffe://casemesh.local/svc/idgen"
    assert tls_identity([b"localhost"]) is None and tls_identity(None) is None
    assert tls_identity([b"spiffe://casemesh.local/svc/a", b"spiffe://casemesh.local/svc/b"]) is None


def test_every_method_of_every_service_is_declared_public_or_internal():
    """A new RPC must be put in its service's Access on purpose: undeclared methods are denied to everyone."""
    for definition in SERVICES.values():
        if not definition.grpc_services:
            continue
        assert definition.access is not None, definition.name
        table = access_table([definition])
        undeclared = [m for m, allowed in table.items() if allowed is not None and not allowed]
        assert not undeclared, f"{definition.name}: methods nobody may call: {undeclared}"
        for allowed in table.values():  # internal callers are services of the catalog
            assert allowed is None or allowed <= {service_identity(name) for name in SERVICES}


def test_an_access_naming_a_missing_method_is_refused():
    definition = SERVICES["idgen"]
    typo = ServiceDefinition(definition.name, definition.grpc_services, (), definition.build,
                             access=Access(internal={"LeaseId": ("urlshortener",)}))
    with pytest.raises(ValueError, match="do not have: LeaseId"):
        access_table([typo])


class FakeContext:
    def __init__(self, metadata=(), identities=None):
        self._metadata, self._identities = metadata, identities

    def invocation_metadata(self):
        return self._metadata

    def peer_identities(self):
        return self._identities


def test_the_check_allows_declared_callers_and_names_the_refused_one():
    metrics = DeniedMetrics(CollectorRegistry())
    authorizer = Authorizer([SERVICES["idgen"]], CallerIdentifier(TokenVerifier(KEYS)), metrics=metrics)
    lease = "/casemesh.idgen.v1.IdGeneratorService/LeaseIds"

    def as_(identity):
        return FakeContext(((CALLER_METADATA_KEY, CallerToken(identity, KEYS).metadata()[0][1]),))

    assert authorizer.check(lease, as_(SHORTENER)) is None
    assert authorizer.check(lease, FakeContext(identities=[SHORTENER.encode()])) is None  # mTLS peer
    refused = authorizer.check(lease, as_(service_identity("video-edge")))
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    assert refused.message == "casemesh.idgen.v1.IdGeneratorService/LeaseIds may not be called by spiffe://casemesh.local/svc/video-edge"
    assert authorizer.check(lease, FakeContext()).code == grpc.StatusCode.PERMISSION_DENIED
    assert authorizer.check(lease, as_(TEST_IDENTITY)).code == grpc.StatusCode.PERMISSION_DENIED  # not opted in
    assert authorizer.check(lease, FakeContext(((CALLER_METADATA_KEY, "v1.x.y.1.z"),))).code == grpc.StatusCode.UNAUTHENTICATED
    assert authorizer.check("/grpc.health.v1.Health/Check", FakeContext()) is None  # health stays open
    counted = {s.labels["caller"]: s.value for s in metrics.denied.collect()[0].samples if s.name.endswith("_total")}
    assert counted == {"spiffe://casemesh.local/svc/video-edge": 1, "none": 1, TEST_IDENTITY: 1, "invalid": 1}
    opted_in = Authorizer([SERVICES["idgen"]], CallerIdentifier(TokenVerifier(KEYS)), allow_test_identity=True, metrics=metrics)
    assert opted_in.check(lease, as_(TEST_IDENTITY)) is None
