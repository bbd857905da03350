"""``casemesh.trading.v1.MatchingEngineService`` (topology name ``trading-engine``): the exchange's matching engine.

Seed 001 #08 (shared/seeds/001_58dfc580020147d2.txt line 22: "| 08 | Stock Trading | Order matching engine, order
book, market data, low-latency | <10ms p99 latency, NASDAQ-scale |"). A thin servicer over
:class:`.engine.MatchingEngine`: one limit order book per symbol with price-time priority (:mod:`.book`), matched on
the event loop's one thread, every event in a durable sequenced log (:mod:`.journal`, group commit or a flush per
order: the A/B switch ``commit``), the books rebuilt from the log at start. It calls no other service.

RPCs and status codes (protos/casemesh/trading/v1/engine.proto):

- SubmitOrder (internal: :data:`GATEWAY_CALLERS`): INVALID_ARGUMENT naming ``order_id``, ``client_order_id``,
  ``account_id``, ``symbol``, ``side``, ``type``, ``price_minor`` or ``quantity``; a held ``order_id`` returns the
  order as it is now and no trades (FAILED_PRECONDITION when held with a different order); answered once the order's
  events are durable; UNAVAILABLE when the log cannot be written (nothing acknowledged: retry with the same
  ``order_id``) or the engine is shutting down.
- CancelOrder (internal: :data:`GATEWAY_CALLERS`): INVALID_ARGUMENT naming ``order_id`` or ``account_id``;
  NOT_FOUND for an unknown order or another account's; FAILED_PRECONDITION when FILLED; a cancelled order is
  returned; UNAVAILABLE as SubmitOrder.
- GetOrder (internal: :data:`GATEWAY_CALLERS`): INVALID_ARGUMENT naming ``order_id``; NOT_FOUND.
- GetBook (public): INVALID_ARGUMENT naming ``symbol`` or ``depth`` (0 to 1,000; 0: all levels); a symbol never
  traded has an empty book.
- StreamEvents (internal: :data:`STREAM_CALLERS`): INVALID_ARGUMENT naming ``from_sequence`` (beyond the next
  sequence number; 0 is read as 1); RESOURCE_EXHAUSTED when the caller falls ``stream_queue_events`` behind;
  UNAVAILABLE when the engine shuts down or its log fails.

Every answer shows only durable state (a read waits for the events it reflects to be on disk). After a failed log
write the engine answers UNAVAILABLE to everything until it is restarted (fail-stop: its books in memory hold events
that are not on disk; the restart replays exactly what is). A crash inside one request ends that request (UNKNOWN,
logged by the runtime's interceptor); the server goes on. Settings: :class:`.settings.EngineSettings`; metrics:
:mod:`.metrics`.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import AsyncIterator

import grpc

from casemesh.trading.v1 import engine_pb2, engine_pb2_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from .engine import EngineClosed, MatchingEngine
from .journal import JournalFailed
from .settings import EngineSettings

log = logging.getLogger("casemesh.trading.engine.service")

NAME = "trading-engine"
GATEWAY = "trading-gateway"
MARKETDATA = "trading-marketdata"
#: Who may call SubmitOrder, CancelOrder and GetOrder.
GATEWAY_CALLERS: tuple[str, ...] = (GATEWAY,)
#: Who may call StreamEvents.
STREAM_CALLERS: tuple[str, ...] = (MARKETDATA, GATEWAY)
FULL_NAME = engine_pb2.DESCRIPTOR.services_by_name["MatchingEngineService"].full_name
#: StreamEvents streams last as long as their follower: their own admission slots, not the unary calls'.
STREAM_SLOTS = 64
#: Unary calls in flight: group commit answers every order of a flush at once, so many may wait on one fdatasync.
UNARY_SLOTS = 1_024



class MatchingEngineServicer(engine_pb2_grpc.MatchingEngineServiceServicer):
    """Calls :class:`.engine.MatchingEngine` (which validates each request) and answers once its state is durable."""

    def __init__(self, engine: MatchingEngine) -> None:
        self._engine = engine

    async def SubmitOrder(self, request: engine_pb2.SubmitOrderRequest,
                          context: grpc.aio.ServicerContext) -> engine_pb2.SubmitOrderResponse:
        submitted = self._engine.submit(request)
        await submitted.durable
        return submitted.response

    async def CancelOrder(self, request: engine_pb2.CancelOrderRequest,
                          context: grpc.aio.ServicerContext) -> engine_pb2.CancelOrderResponse:
        cancelled = self._engine.cancel(request.order_id, request.account_id)
        await cancelled.durable
        return engine_pb2.CancelOrderResponse(order=cancelled.order)

    async def GetOrder(self, request: engine_pb2.GetOrderRequest,
                       context: grpc.aio.ServicerContext) -> engine_pb2.GetOrderResponse:
        return engine_pb2.GetOrderResponse(order=await self._engine.get_order(request.order_id))

    async def GetBook(self, request: engine_pb2.GetBookRequest,
                      context: grpc.aio.ServicerContext) -> engine_pb2.GetBookResponse:
        return await self._engine.get_book(request.symbol, request.depth, request.include_orders)

    async def StreamEvents(self, request: engine_pb2.StreamEventsRequest,
                           context: grpc.aio.ServicerContext) -> AsyncIterator[engine_pb2.StreamEventsResponse]:
        try:
            async with contextlib.aclosing(self._engine.stream(request.from_sequence)) as events:
                async for event in events:
                    yield event
        except (JournalFailed, EngineClosed) as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))


class EngineComponent:
    """The servicer over :class:`.engine.MatchingEngine` and its log (``DATA_DIR/trading-engine/events.log``); while it
    runs, the interpreter's thread switch interval is ``settings.gil_switch_interval_ms`` (the group-commit writer
    thread's hand-off to the event loop)."""

    def __init__(self, context: RuntimeContext) -> None:
        self.settings = context.settings(NAME, EngineSettings)
        self.engine = MatchingEngine(context.data_dir(NAME), self.settings)
        self.servicer = MatchingEngineServicer(self.engine)
        #: The interpreter's switch interval before start (restored at stop), when settings change it.
        self._switch_interval_s: float | None = None

    def register(self, server: grpc.aio.Server) -> None:
        engine_pb2_grpc.add_MatchingEngineServiceServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        if self.settings.gil_switch_interval_ms:
            self._switch_interval_s = sys.getswitchinterval()
            sys.setswitchinterval(self.settings.gil_switch_interval_ms / 1_000)
        events, seconds = await self.engine.open()
        log.info("%s: %d events replayed from %s in %.2f s (%d books, %d orders); commit %s", NAME, events,
                 self.engine.journal.path, seconds, len(self.engine.books), len(self.engine.orders),
                 self.settings.commit)

    async def stop(self) -> None:
        await self.engine.close()
        if self._switch_interval_s is not None:
            sys.setswitchinterval(self._switch_interval_s)


async def build(context: RuntimeContext) -> EngineComponent:
    return EngineComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(), build=build, settings_model=EngineSettings,
    access=Access(public={"GetBook"},
                  internal={"SubmitOrder": GATEWAY_CALLERS, "CancelOrder": GATEWAY_CALLERS,
                            "GetOrder": GATEWAY_CALLERS, "StreamEvents": STREAM_CALLERS}),
    default_limits={FULL_NAME: STREAM_SLOTS + UNARY_SLOTS, f"{FULL_NAME}/StreamEvents": STREAM_SLOTS},
)
