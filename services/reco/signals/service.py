"""``casemesh.reco.v1.SignalService`` (topology name ``reco-signals``): users' interactions, the real-time signals.

Seed 001 (shared/seeds/001_58dfc580020147d2.txt, #19 "Recommendation
Engine": "real-time signals") and seed 003
(shared/seeds/003_1dfe16d8ccfde9ed.txt, "Recommendation System",
``getWatchHistory(userId)``): clients record views and likes as they happen
(RecordInteractions, public); the ranker reads a user's newest ones at
request time (ListRecentInteractions, reco-ranker only), so a like shifts the
next recommendations before any retraining; model training reads the whole
log (ExportInteractions, reco-candidates only), streamed in batches. The
store is :class:`.store.InteractionStore`, in memory (its docstring says why
that is enough here).

Status codes: INVALID_ARGUMENT naming the field (``interactions``,
``interactions[i].user_id``, ``.item_id``, ``.kind``; ``user_id``, ``limit``;
``batch_size``). A rejected batch records nothing: the whole request is
validated first. Metrics beyond the gRPC ones:
``casemesh_reco_interactions_recorded_total{kind}`` (``view``, ``like``:
interactions recorded, new or updated) and ``casemesh_reco_interactions``
(gauge: distinct interactions held).
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import AsyncIterator

import grpc
from prometheus_client import Counter, Gauge

from casemesh.reco.v1 import signals_pb2 as pb
from casemesh.reco.v1 import signals_pb2_grpc as pb_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition, StatelessComponent
from ..validation import KINDS, export_batch_size, recent_limit, validate_id, validate_interactions
from .store import InteractionStore

NAME = "reco-signals"
FULL_NAME = pb.DESCRIPTOR.services_by_name["SignalService"].full_name

RECORDED = Counter("casemesh_reco_interactions_recorded", "Interactions recorded (new or updated), by kind.", ["kind"])
for _label in KINDS.values():
    RECORDED.labels(_label)
HELD = Gauge("casemesh_reco_interactions", "Distinct interactions held by reco-signals.")


def _interaction(message: pb.Interaction, user: str, item: str, kind: int, time_ns: int) -> None:
    message.user_id, message.item_id, message.kind = user, item, kind
    message.time.FromNanoseconds(time_ns)


class SignalServicer(pb_grpc.SignalServiceServicer):
    """Validates, then records into or reads the :class:`InteractionStore`."""

    def __init__(self, store: InteractionStore) -> None:
        self._store = store

    async def RecordInteractions(self, request: pb.RecordInteractionsRequest, context: grpc.aio.ServicerContext) -> pb.RecordInteractionsResponse:
        batch = validate_interactions(request.interactions)
        recorded, total = await self._store.record(batch)
        for kind, count in Tally(kind for _, _, kind in batch).items():
            RECORDED.labels(KINDS[kind]).inc(count)
        HELD.set(total)
        return pb.RecordInteractionsResponse(recorded=recorded, total=total)

    async def ListRecentInteractions(self, request: pb.ListRecentInteractionsRequest, context: grpc.aio.ServicerContext) -> pb.ListRecentInteractionsResponse:
        user = validate_id("user_id", request.user_id)
        limit = recent_limit(request.limit)
        response = pb.ListRecentInteractionsResponse()
        for item, kind, time_ns in await self._store.recent(user, limit):
            _interaction(response.interactions.add(), user, item, kind, time_ns)
        return response

    async def ExportInteractions(self, request: pb.ExportInteractionsRequest, context: grpc.aio.ServicerContext) -> AsyncIterator[pb.ExportInteractionsResponse]:
        size = export_batch_size(request.batch_size)
        async for batch in self._store.export(size):
            response = pb.ExportInteractionsResponse()
            add = response.interactions.add
            for user, item, kind, time_ns in batch:
                _interaction(add(), user, item, kind, time_ns)
            yield response


async def build(context: RuntimeContext) -> StatelessComponent:
    return StatelessComponent(SignalServicer(InteractionStore()), pb_grpc.add_SignalServiceServicer_to_server)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(), build=build,
    access=Access(public={"RecordInteractions"},  # clients record their views and likes
                  # Real-time signals are the ranker's; the whole log is the trainer's.
                  internal={"ListRecentInteractions": ("reco-ranker",), "ExportInteractions": ("reco-candidates",)}),
)
