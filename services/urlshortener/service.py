"""``casemesh.urlshortener.v1.UrlShortenerService``: the URL-shortener case study's API server.

Mechanisms (shared/seeds/000_69ff90d97cf45f9b.txt, "URL Shortener"):
- Shorten takes a unique ID from a block leased from the ID service (the
  case study's "distributed counter service") and encodes it as a 7-character
  base62 code; custom aliases are stored as given (ALREADY_EXISTS when taken).
  The new mapping is put in the cache at once ("pre-warm cache").
- Resolve reads through a bounded LRU cache to the sharded store ("check
  cache first (fast path)"), and hands a click event to a bounded buffer that
  a background task sends to the analytics service in batches
  ("increment_clicks_async").
- Expired codes stop resolving (checked on every read; swept periodically).

Metrics beyond the gRPC ones: ``casemesh_urlshortener_cache_lookups_total{result="hit"|"miss"}``,
``casemesh_urlshortener_clicks_total{outcome="sent"|"dropped"}``,
``casemesh_urlshortener_id_leases_total``, ``casemesh_urlshortener_taken_codes_total`` (generated
codes skipped because a custom alias, or an ID handed out twice, already took them).

Shorten without an alias answers UNAVAILABLE (or DEADLINE_EXCEEDED) when its
leased ID block is used up and idgen cannot lease another, and ABORTED after
``MAX_CODE_ATTEMPTS`` taken codes in a row; never UNKNOWN.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import grpc
from prometheus_client import Counter

from casemesh.analytics.v1 import analytics_pb2, analytics_pb2_grpc
from casemesh.idgen.v1 import idgen_pb2, idgen_pb2_grpc
from casemesh.urlshortener.v1 import urlshortener_pb2 as pb
from casemesh.urlshortener.v1 import urlshortener_pb2_grpc as pb_grpc

from ..runtime.authorization import Access
from ..runtime.component import RuntimeContext, ServiceDefinition
from ..runtime.errors import AlreadyExists, NotFound
from .cache import ResolveCache
from .click_buffer import Click, ClickBuffer
from .codes import code_for_id
from ..idgen.id_block import IdBlockLease, NoIdsLeased, no_id_status
from .store import UrlRecord, UrlStore
from .validation import validate_code, validate_country, validate_shorten

log = logging.getLogger("casemesh.urlshortener")

FULL_NAME = pb.DESCRIPTOR.services_by_name["UrlShortenerService"].full_name

CACHE_LOOKUPS = Counter("casemesh_urlshortener_cache_lookups", "Resolve cache lookups by result.", ["result"])
CLICKS = Counter("casemesh_urlshortener_clicks", "Click events by outcome: sent to analytics or dropped (buffer full).", ["outcome"])
ID_LEASES = Counter("casemesh_urlshortener_id_leases", "ID blocks leased from the ID service.")
TAKEN_CODES = Counter("casemesh_urlshortener_taken_codes", "Generated codes skipped because the code was already taken.")

#: Generated codes that collide with a custom alias are skipped; this many in a row means something is wrong.
MAX_CODE_ATTEMPTS = 16
SWEEP_INTERVAL_S = 60.0


class UrlShortenerServicer(pb_grpc.UrlShortenerServiceServicer):
    """Validates requests and runs the case study's read and write paths."""

    def __init__(self, store: UrlStore, cache: ResolveCache, ids: IdBlockLease, clicks: ClickBuffer,
                 analytics: analytics_pb2_grpc.AnalyticsServiceStub):
        self._store = store
        self._cache = cache
        self._ids = ids
        self._clicks = clicks
        self._analytics = analytics

    async def Shorten(self, request: pb.ShortenRequest, context: grpc.aio.ServicerContext) -> pb.ShortenResponse:
        validate_shorten(request.long_url, request.custom_alias, request.ttl_seconds)
        now = time.time()
        expire_at = now + request.ttl_seconds if request.ttl_seconds else None
        if request.custom_alias:
            record = UrlRecord(request.custom_alias, request.long_url, now, expire_at)
            await self._store.insert(record, now)
        else:
            record = await self._insert_generated(request.long_url, now, expire_at, context)
        self._cache.put(record)
        response = pb.ShortenResponse(code=record.code)
        if expire_at is not None:
            response.expire_time.FromNanoseconds(int(expire_at * 1e9))
        return response

    async def _insert_generated(self, long_url: str, now: float, expire_at: float | None,
                                context: grpc.aio.ServicerContext) -> UrlRecord:
        """Store ``long_url`` under the code of the next leased ID.

        Aborts the call with UNAVAILABLE (DEADLINE_EXCEEDED when the lease
        ran out of time) when no ID can be had: the local block is used up
        and the ID service cannot lease another one (unreachable, its ID space
        exhausted, or an empty answer). Aborts with ABORTED when
        ``MAX_CODE_ATTEMPTS`` generated codes in a row were already taken
        (by custom aliases): a retry takes fresh IDs.
        """
        for _ in range(MAX_CODE_ATTEMPTS):
            try:
                next_id = await self._ids.next_id()
            except (grpc.aio.AioRpcError, NoIdsLeased) as error:
                code, why = no_id_status(error)
                await context.abort(code, f"no ID for a new code: {why}")
            record = UrlRecord(code_for_id(next_id), long_url, now, expire_at)
            try:
                await self._store.insert(record, now)
                return record
            except AlreadyExists:  # a custom alias took this code: use the next ID
                TAKEN_CODES.inc()
                continue
        log.warning("%d generated codes in a row were already taken", MAX_CODE_ATTEMPTS)
        await context.abort(grpc.StatusCode.ABORTED, f"{MAX_CODE_ATTEMPTS} generated codes in a row were already taken "
                                                     f"(by custom aliases or IDs handed out twice); retry for fresh IDs")
        raise AssertionError("unreachable")  # pragma: no cover - abort raises

    async def Resolve(self, request: pb.ResolveRequest, context: grpc.aio.ServicerContext) -> pb.ResolveResponse:
        validate_code(request.code)
        validate_country(request.country_code)
        now = time.time()
        record = self._cache.get(request.code, now)
        if record is None:
            token = self._cache.token()  # a Delete racing this read must not be undone by the put below
            record = await self._store.get(request.code, now)
            if record is None:
                raise NotFound(f"code {request.code!r} does not exist or has expired")
            self._cache.put(record, token)
        if not self._clicks.add(Click(request.code, now, request.country_code)):
            CLICKS.labels("dropped").inc()
        return pb.ResolveResponse(long_url=record.long_url)

    async def GetStats(self, request: pb.GetStatsRequest, context: grpc.aio.ServicerContext) -> pb.GetStatsResponse:
        validate_code(request.code)
        if await self._store.get(request.code, time.time()) is None:
            raise NotFound(f"code {request.code!r} does not exist or has expired")
        stats = await self._analytics.GetClickStats(analytics_pb2.GetClickStatsRequest(code=request.code))
        response = pb.GetStatsResponse(total_clicks=stats.total_clicks, clicks_by_country=stats.clicks_by_country)
        if stats.HasField("last_click_time"):
            response.last_click_time.CopyFrom(stats.last_click_time)
        return response

    async def Delete(self, request: pb.DeleteRequest, context: grpc.aio.ServicerContext) -> pb.DeleteResponse:
        validate_code(request.code)
        deleted = await self._store.delete(request.code, time.time())
        self._cache.invalidate(request.code)
        if not deleted:
            raise NotFound(f"code {request.code!r} does not exist or has expired")
        return pb.DeleteResponse()


class UrlShortenerComponent:
    """The servicer plus its background work: the click flusher and the expiry sweep."""

    def __init__(self, context: RuntimeContext):
        idgen = idgen_pb2_grpc.IdGeneratorServiceStub(context.channel("idgen"))
        analytics = analytics_pb2_grpc.AnalyticsServiceStub(context.channel("analytics"))

        async def lease(count: int) -> list[tuple[int, int]]:
            ID_LEASES.inc()
            response = await idgen.LeaseIds(idgen_pb2.LeaseIdsRequest(count=count, layout=idgen_pb2.ID_LAYOUT_COUNTER))
            return [(r.start, r.count) for r in response.ranges]

        async def send(batch: list[Click]) -> None:
            events = []
            for click in batch:
                event = analytics_pb2.ClickEvent(code=click.code, country_code=click.country_code)
                event.click_time.FromNanoseconds(int(click.at_s * 1e9))
                events.append(event)
            await analytics.RecordClicks(analytics_pb2.RecordClicksRequest(events=events))
            CLICKS.labels("sent").inc(len(batch))

        self.store = UrlStore()
        self.cache = ResolveCache(on_lookup=lambda hit: CACHE_LOOKUPS.labels("hit" if hit else "miss").inc())
        self.clicks = ClickBuffer(send)
        self.ids = IdBlockLease(lease)
        self.servicer = UrlShortenerServicer(self.store, self.cache, self.ids, self.clicks, analytics)
        self._sweeper: asyncio.Task | None = None

    def register(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_UrlShortenerServiceServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        await self.clicks.start()
        self._sweeper = asyncio.create_task(self._sweep(), name="urlshortener-expiry-sweep")

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL_S)
            await self.store.purge_expired(time.time())

    async def stop(self) -> None:
        if self._sweeper:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.ids.aclose()
        unsent = await self.clicks.stop()
        if unsent:
            log.error("%d click events could not be delivered to analytics at shutdown", unsent)


async def build(context: RuntimeContext) -> UrlShortenerComponent:
    return UrlShortenerComponent(context)


DEFINITION = ServiceDefinition(
    name="urlshortener", grpc_services=(FULL_NAME,), dependencies=("idgen", "analytics"), build=build,
    # Resolve and Shorten work while analytics is down (clicks wait in the buffer); only GetStats fails.
    optional_dependencies=("analytics",),
    access=Access(public={"Shorten", "Resolve", "GetStats", "Delete"}),
)
