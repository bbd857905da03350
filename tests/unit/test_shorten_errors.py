"""Shorten's honest status codes when no ID can be had or generated codes keep colliding (never UNKNOWN)."""

import grpc
import pytest

from casemesh.services.urlshortener.cache import ResolveCache
from casemesh.services.urlshortener.codes import code_for_id
from casemesh.services.idgen.id_block import IdBlockLease
from casemesh.services.urlshortener.service import MAX_CODE_ATTEMPTS, UrlShortenerServicer
from casemesh.services.urlshortener.store import UrlRecord, UrlStore
from casemesh.urlshortener.v1 import urlshortener_pb2 as pb


class Aborted(Exception):
    pass


class Context:
    async def abort(self, code, details):
        raise Aborted(code, details)


class Unreachable(grpc.aio.AioRpcError):
    def __init__(self, code=grpc.StatusCode.UNAVAILABLE):
        super().__init__(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="failed to connect to all addresses")


def servicer(lease, store=None):
    return UrlShortenerServicer(store or UrlStore(), ResolveCache(), IdBlockLease(lease, block_size=4, low_water=0),
                                clicks=None, analytics=None)


async def shorten(s):
    with pytest.raises(Aborted) as failed:
        await s.Shorten(pb.ShortenRequest(long_url="https://example.com/a"), Context())
    return failed.value.args


@pytest.mark.parametrize("error, expected", [
    (Unreachable(), grpc.StatusCode.UNAVAILABLE),
    (Unreachable(grpc.StatusCode.RESOURCE_EXHAUSTED), grpc.StatusCode.UNAVAILABLE),  # idgen's ID space ran out
    (Unreachable(grpc.StatusCode.DEADLINE_EXCEEDED), grpc.StatusCode.DEADLINE_EXCEEDED),
])
async def test_no_id_is_unavailable_or_deadline_exceeded(error, expected):
    async def lease(count):
        raise error

    code, details = await shorten(servicer(lease))
    assert code == expected
    assert "ID service" in details and error.code().name in details


async def test_an_empty_lease_is_unavailable():
    async def lease(count):
        return []

    code, details = await shorten(servicer(lease))
    assert code == grpc.StatusCode.UNAVAILABLE and "none" in details


async def test_a_streak_of_taken_codes_is_aborted():
    store = UrlStore()
    for id in range(1, MAX_CODE_ATTEMPTS + 1):  # custom aliases that happen to equal the next generated codes
        await store.insert(UrlRecord(code_for_id(id), "https://example.com/alias", 0.0, None), 0.0)
    nxt = 1

    async def lease(count):
        nonlocal nxt
        start, nxt = nxt, nxt + count
        return [(start, count)]

    s = servicer(lease, store)
    code, details = await shorten(s)
    assert code == grpc.StatusCode.ABORTED and f"{MAX_CODE_ATTEMPTS} generated codes in a row" in details
    # A retry goes on with fresh IDs and succeeds.
    created = await s.Shorten(pb.ShortenRequest(long_url="https://example.com/b"), Context())
    assert created.code == code_for_id(MAX_CODE_ATTEMPTS + 1)
