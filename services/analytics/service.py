"""``casemesh.analytics.v1.AnalyticsService``: click counts and geographic data per short code.

Fed asynchronously in batches by the URL shortener (eventually consistent);
counters live in memory behind a readers-writer lock (services/analytics/counters.py).
"""

from __future__ import annotations

import grpc

from casemesh.analytics.v1 import analytics_pb2 as pb
from casemesh.analytics.v1 import analytics_pb2_grpc as pb_grpc

from ..runtime.component import RuntimeContext, ServiceDefinition, StatelessComponent
from .counters import ClickCounters
from .validation import to_tuples, validate_batch, validate_stats_code

FULL_NAME = pb.DESCRIPTOR.services_by_name["AnalyticsService"].full_name


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
    return StatelessComponent(AnalyticsServicer(ClickCounters()), pb_grpc.add_AnalyticsServiceServicer_to_server)


DEFINITION = ServiceDefinition(name="analytics", grpc_services=(FULL_NAME,), dependencies=(), build=build)
