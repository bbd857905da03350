"""The URL-shortener mesh through real gRPC: behaviour a client of the contract relies on."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from casemesh.idgen.v1 import idgen_pb2, idgen_pb2_grpc
from casemesh.urlshortener.v1 import urlshortener_pb2 as pb
from casemesh.urlshortener.v1 import urlshortener_pb2_grpc as pb_grpc


@pytest.fixture
def shortener(mesh):
    return pb_grpc.UrlShortenerServiceStub(mesh.channel("urlshortener"))


async def _status(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value.code(), caught.value.details()


async def test_shorten_resolve_and_click_stats(shortener):
    created = await shortener.Shorten(pb.ShortenRequest(long_url="https://example.com/a/long/path?q=1"))
    assert len(created.code) == 7 and created.code.isalnum()
    assert not created.HasField("expire_time")
    for country in ("DE", "DE", "JP", ""):
        resolved = await shortener.Resolve(pb.ResolveRequest(code=created.code, country_code=country))
        assert resolved.long_url == "https://example.com/a/long/path?q=1"
    # Clicks reach analytics asynchronously in batches (flush interval 100 ms): eventually consistent.
    for _ in range(50):
        stats = await shortener.GetStats(pb.GetStatsRequest(code=created.code))
        if stats.total_clicks == 4:
            break
        await asyncio.sleep(0.05)
    assert stats.total_clicks == 4
    assert dict(stats.clicks_by_country) == {"DE": 2, "JP": 1, "ZZ": 1}
    assert stats.HasField("last_click_time")


async def test_generated_codes_are_unique_across_lease_blocks(shortener):
    responses = await asyncio.gather(*(shortener.Shorten(pb.ShortenRequest(long_url=f"https://example.com/{i}")) for i in range(600)))
    codes = {r.code for r in responses}
    assert len(codes) == 600
    for i, r in enumerate(responses[:20]):
        assert (await shortener.Resolve(pb.ResolveRequest(code=r.code))).long_url == f"https://example.com/{i}"


async def test_custom_alias_conflict_returns_already_exists(shortener):
    await shortener.Shorten(pb.ShortenRequest(long_url="https://example.com/x", custom_alias="my-link_1"))
    code, details = await _status(shortener.Shorten(pb.ShortenRequest(long_url="https://example.com/y", custom_alias="my-link_1")))
    assert code == grpc.StatusCode.ALREADY_EXISTS
    assert "my-link_1" in details
    assert (await shortener.Resolve(pb.ResolveRequest(code="my-link_1"))).long_url == "https://example.com/x"


async def test_expired_code_stops_resolving(shortener):
    created = await shortener.Shorten(pb.ShortenRequest(long_url="https://example.com/soon-gone", ttl_seconds=1))
    assert created.HasField("expire_time")
    await shortener.Resolve(pb.ResolveRequest(code=created.code))  # now cached too
    await asyncio.sleep(1.2)
    code, _ = await _status(shortener.Resolve(pb.ResolveRequest(code=created.code)))
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = await _status(shortener.GetStats(pb.GetStatsRequest(code=created.code)))
    assert code == grpc.StatusCode.NOT_FOUND


async def test_delete_stops_resolving_even_when_cached(shortener):
    created = await shortener.Shorten(pb.ShortenRequest(long_url="https://example.com/del"))
    await shortener.Resolve(pb.ResolveRequest(code=created.code))
    await shortener.Delete(pb.DeleteRequest(code=created.code))
    assert (await _status(shortener.Resolve(pb.ResolveRequest(code=created.code))))[0] == grpc.StatusCode.NOT_FOUND
    assert (await _status(shortener.Delete(pb.DeleteRequest(code=created.code))))[0] == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.ShortenRequest(long_url="not a url"), "long_url"),
        (pb.ShortenRequest(long_url="ftp://example.com/file"), "long_url"),
        (pb.ShortenRequest(long_url="https://example.com/" + "a" * 2100), "long_url"),
        (pb.ShortenRequest(long_url=""), "long_url"),
        (pb.ShortenRequest(long_url="https://example.com/", custom_alias="bad alias!"), "custom_alias"),
        (pb.ShortenRequest(long_url="https://example.com/", custom_alias="abc"), "custom_alias"),
        (pb.ShortenRequest(long_url="https://example.com/", ttl_seconds=-5), "ttl_seconds"),
    ],
)
async def test_invalid_shorten_names_the_field(shortener, request_, field):
    code, details = await _status(shortener.Shorten(request_))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details.startswith(f"{field}: ")


async def test_invalid_resolve_names_the_field(shortener):
    code, details = await _status(shortener.Resolve(pb.ResolveRequest(code="")))
    assert (code, details.split(":")[0]) == (grpc.StatusCode.INVALID_ARGUMENT, "code")
    code, details = await _status(shortener.Resolve(pb.ResolveRequest(code="abcdefg", country_code="de")))
    assert (code, details.split(":")[0]) == (grpc.StatusCode.INVALID_ARGUMENT, "country_code")


async def test_missing_code_is_not_found(shortener):
    assert (await _status(shortener.Resolve(pb.ResolveRequest(code="nosuchcode"))))[0] == grpc.StatusCode.NOT_FOUND
    assert (await _status(shortener.GetStats(pb.GetStatsRequest(code="nosuchcode"))))[0] == grpc.StatusCode.NOT_FOUND


async def test_idgen_validates_and_leases_snowflake_ids(mesh):
    idgen = idgen_pb2_grpc.IdGeneratorServiceStub(mesh.channel("idgen"))
    code, details = await _status(idgen.LeaseIds(idgen_pb2.LeaseIdsRequest(count=0, layout=idgen_pb2.ID_LAYOUT_COUNTER)))
    assert (code, details.split(":")[0]) == (grpc.StatusCode.INVALID_ARGUMENT, "count")
    code, details = await _status(idgen.LeaseIds(idgen_pb2.LeaseIdsRequest(count=5)))
    assert (code, details.split(":")[0]) == (grpc.StatusCode.INVALID_ARGUMENT, "layout")
    lease = await idgen.LeaseIds(idgen_pb2.LeaseIdsRequest(count=5000, layout=idgen_pb2.ID_LAYOUT_SNOWFLAKE))
    assert sum(r.count for r in lease.ranges) == 5000
    assert all(r.count <= 4096 for r in lease.ranges)


async def test_health_reports_each_service_serving(mesh):
    for name, service in (("urlshortener", "casemesh.urlshortener.v1.UrlShortenerService"),
                          ("idgen", "casemesh.idgen.v1.IdGeneratorService"),
                          ("analytics", "casemesh.analytics.v1.AnalyticsService")):
        health = health_pb2_grpc.HealthStub(mesh.channel(name))
        for checked in ("", service):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=checked))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
