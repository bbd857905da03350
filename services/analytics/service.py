"""``casemesh.analytics.v1.AnalyticsService``: click counts and geographic data per short code.

Fed asynchronously in batches by the URL shortener (eventually consistent);
counters live in memory behind a readers-writer lock, bounded by
``settings.analytics.max_counters``: the least recently clicked codes are
evicted past it (services/analytics/counters.py says why evict, not refuse).

Metrics beyond the gRPC ones: ``casemesh_analytics_evicted_codes_total``
(codes evicted to stay within ``max_counters``), ``casemesh_analytics_counters``
(gauge: counters held, codes plus per-country counters).
"""

from __future__ import annotations

import grpc
from prometheus_client import Counter, Gauge
from pydantic import BaseModel, ConfigDict, Field

from casemesh.analytics.v1 import analytics_pb2 as pb
from casemesh.analytics.v1 import analytics_pb2_grpc as pb_grpc

from ..runtime.authorization import Access
from ..runtime.component import RuntimeContext, ServiceDefinition, StatelessComponent
from .counters import DEFAULT_MAX_COUNTERS, ClickCounters
from .validation import MAX_BATCH_EVENTS, to_tuples, validate_batch, validate_stats_code

NAME = "analytics"
FULL_NAME = pb.DESCRIPTOR.services_by_name["AnalyticsService"].full_name

EVICTED_CODES = Counter("casemesh_analytics_evicted_codes", "Codes evicted (least recently clicked first) to stay within max_counters.")
COUNTERS = Gauge("casemesh_analytics_counters", "Click counters held: one per code plus one per (code, country).")


class AnalyticsSettings(BaseModel):
    """``settings.analytics`` of the topology.

    ``max_counters``: most counters held in memory, one per code plus one
    per (code, country) pair (default 200,000, about 40 MB at most; at
    least 20,000 so one full batch of 5,000 new codes always fits; at most
    100,000,000). Past it the least recently clicked codes are evicted.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_counters: int = Field(default=DEFAULT_MAX_COUNTERS, ge=4 * MAX_BATCH_EVENTS, le=100_000_000)


class AnalyticsServicer(pb_grpc.AnalyticsServiceServicer):
    """Validates batches and stats requests; the counting is ClickCounters'."""

    def __init__(self, counters: ClickCounters):
        self._counters = counters

    async def RecordClicks(self, request: pb.RecordClicksRequest, context: grpc.aio.ServicerContext) -> pb.RecordClicksResponse:
        validate_batch(request.events)
        accepted = await self._counters.record(to_tuples(request.events))
        return pb.RecordClicksResponse(accepted_count=accepted)

    async def GetClickStats(self, request: pb.GetClickStatsRequest, context: grpc.aio.ServicerContext) -> pb.GetClickStatsResponse:
        validate_stats_code(request.code)
        total, by_country, last_at_s = await self._counters.stats(request.code)
        response = pb.GetClickStatsResponse(total_clicks=total, clicks_by_country=by_country)
        if last_at_s is not None:
            response.last_click_time.FromNanoseconds(int(last_at_s * 1e9))
        return response


async def build(context: RuntimeContext) -> StatelessComponent:
    settings = context.settings(NAME, AnalyticsSettings)
    counters = ClickCounters(settings.max_counters, on_evict=EVICTED_CODES.inc)
    COUNTERS.set_function(lambda: counters.counters)
    return StatelessComponent(AnalyticsServicer(counters), pb_grpc.add_AnalyticsServiceServicer_to_server)


DEFINITION = ServiceDefinition(name=NAME, grpc_services=(FULL_NAME,), dependencies=(), build=build,
                               settings_model=AnalyticsSettings,
                               # Users read click counts through UrlShortenerService.GetStats.
                               access=Access(internal={"RecordClicks": ("urlshortener",),
                                                       "GetClickStats": ("urlshortener",)}))
