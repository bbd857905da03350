"""``casemesh.trading.v1.MarketDataService`` (topology name ``trading-marketdata``): the exchange's market data.

Seed 001 #08 (shared/seeds/001_58dfc580020147d2.txt line 22: "| 08 | Stock Trading | Order matching engine, order
book, market data, low-latency | <10ms p99 latency, NASDAQ-scale |"). The service follows the matching engine's
event log from sequence 1 (:class:`~..engine_feed.EngineFeed`, resumed from its last sequence when the engine
restarts), rebuilds every book from it (:mod:`.books`) and fans each change out to the subscribers of its symbol
(:mod:`.publisher`). The engine streams only durable events, so only durable events are published. A thin servicer
over :class:`.publisher.Publisher`.

RPCs and status codes (protos/casemesh/trading/v1/marketdata.proto), all public:

- StreamMarketData: INVALID_ARGUMENT naming ``symbols`` (``symbols[i]``) or ``depth``; RESOURCE_EXHAUSTED when the
  caller reads too slowly (its queue of ``subscriber_queue_size`` messages filled; reconnect for a fresh snapshot);
  UNAVAILABLE when the service shuts down. Per symbol a ``snapshot`` first, then ``trade`` and ``depth`` messages in
  sequence order.
- GetTopOfBook: INVALID_ARGUMENT naming ``symbol``; the best bid and ask and the last trade as published
  (``sequence`` 0 before the symbol's first event).

StreamMarketData calls have admission slots of their own (:data:`.settings.STREAM_SLOTS`), not the unary ones. A
crash inside one request ends that request (UNKNOWN, logged by the runtime's interceptor); the server goes on.
Settings: :class:`.settings.MarketDataSettings`; metrics: :mod:`.metrics`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from casemesh.trading.v1 import engine_pb2_grpc, marketdata_pb2, marketdata_pb2_grpc, trading_pb2

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from ..engine_feed import EngineFeed
from . import metrics, validation
from .publisher import Publisher, SubscriberEnded
from .settings import STREAM_SLOTS, MarketDataSettings

NAME = "trading-marketdata"
ENGINE = "trading-engine"
FULL_NAME = marketdata_pb2.DESCRIPTOR.services_by_name["MarketDataService"].full_name
PUBLIC_METHODS = frozenset({"StreamMarketData", "GetTopOfBook"})
UNARY_SLOTS = 256


def _level(level: tuple[int, int, int] | None) -> trading_pb2.BookLevel | None:
    return None if level is None else trading_pb2.BookLevel(price_minor=level[0], quantity=level[1],
                                                           order_count=level[2])


class MarketDataServicer(marketdata_pb2_grpc.MarketDataServiceServicer):
    """Validates each request and reads the :class:`.publisher.Publisher`."""

    def __init__(self, publisher: Publisher) -> None:
        self._publisher = publisher

    async def StreamMarketData(self, request: marketdata_pb2.StreamMarketDataRequest,
                               context: grpc.aio.ServicerContext
                               ) -> AsyncIterator[marketdata_pb2.StreamMarketDataResponse]:
        symbols, depth = validation.stream_market_data(request)
        subscriber = self._publisher.subscribe(symbols, depth)
        sent = metrics.SENT
        try:
            while True:
                message = await subscriber.next()
                yield message
                sent[message.WhichOneof("update")].inc()
        except SubscriberEnded as ended:
            await context.abort(ended.code, str(ended))
        finally:
            self._publisher.unsubscribe(subscriber)

    async def GetTopOfBook(self, request: marketdata_pb2.GetTopOfBookRequest,
                           context: grpc.aio.ServicerContext) -> marketdata_pb2.GetTopOfBookResponse:
        book = self._publisher.books.get(validation.get_top_of_book(request))
        if book is None:
            return marketdata_pb2.GetTopOfBookResponse()
        return marketdata_pb2.GetTopOfBookResponse(
            sequence=book.sequence, best_bid=_level(book.best(trading_pb2.SIDE_BUY)),
            best_ask=_level(book.best(trading_pb2.SIDE_SELL)), last_trade=book.last_trade)


class MarketDataComponent:
    """The servicer over the publisher, and the engine feed that drives it."""

    def __init__(self, context: RuntimeContext) -> None:
        settings = context.settings(NAME, MarketDataSettings)
        self.publisher = Publisher(settings.subscriber_queue_size)
        self.feed = EngineFeed(engine_pb2_grpc.MatchingEngineServiceStub(context.channel(ENGINE)),
                               self.publisher.on_event, name=NAME, metrics=metrics.FEED,
                               initial_backoff_s=settings.feed_initial_backoff_s,
                               max_backoff_s=settings.feed_max_backoff_s, renew_s=settings.feed_renew_s)

    def register(self, server: grpc.aio.Server) -> None:
        marketdata_pb2_grpc.add_MarketDataServiceServicer_to_server(MarketDataServicer(self.publisher), server)

    async def start(self) -> None:
        metrics.started()
        self.feed.start()

    async def stop(self) -> None:
        """Stop following the engine; end every stream UNAVAILABLE (subscribers reconnect for a fresh snapshot)."""
        await self.feed.stop()
        self.publisher.end_all(grpc.StatusCode.UNAVAILABLE, f"{NAME} is shutting down; reconnect")


async def build(context: RuntimeContext) -> MarketDataComponent:
    return MarketDataComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(ENGINE,), build=build, settings_model=MarketDataSettings,
    access=Access(public=PUBLIC_METHODS),
    # StreamMarketData calls last a trading session: their own slots, not the 256 of unary work.
    default_limits={FULL_NAME: STREAM_SLOTS + UNARY_SLOTS, f"{FULL_NAME}/StreamMarketData": STREAM_SLOTS},
)
