"""The matching engine (domain, no gRPC): the books, every order, the sequenced events and their subscribers.

Seed 001 #08 (shared/seeds/001_58dfc580020147d2.txt line 22: "| 08 | Stock Trading | Order matching engine, order
book, market data, low-latency | <10ms p99 latency, NASDAQ-scale |"). The design is the LMAX exchange's (Fowler,
"The LMAX Architecture", 2011) at the scale of one Python process:

- one thread matches (the event loop): :meth:`MatchingEngine.submit` validates an order, gives its accepted event the
  next sequence number, matches it against its symbol's book (:class:`.book.OrderBook`: price-time priority) and
  records its events (accepted, then each trade, then for a market order's rest its cancel, each with the next
  sequence number), all synchronously: there is no ``await`` between an order's acceptance and the end of its
  matching, so orders are matched one at a time, in sequence order, by construction;
- every event goes to the durable log (:class:`.journal.Journal`); the order is answered only once its events are
  durable (``Submitted.durable``), and so is every read (GetOrder, GetBook, a retry): an answer never shows an event
  that a crash could still take back;
- the books are rebuilt at start by replaying the log (:meth:`MatchingEngine.recover`): recorded trades are applied
  as fills of both orders, never matched again, so the rebuilt books are exactly the ones that were written;
- StreamEvents (:meth:`MatchingEngine.stream`) sends the log from a sequence number (catch-up from memory or the
  file), then each event once it is durable, with no gap and no repeat.

The engine holds every order it ever accepted (``orders``, by id: retries, GetOrder and CancelOrder find them there):
about 500 bytes per order (its object, its id strings, its dict entries; the account and symbol strings shared;
measured here), so memory grows with the orders of the log's life: about 5 GB per 10 M orders. A production engine
would start each trading day with an empty log (day orders), as exchanges do; here the log lives as long as the data
folder. The population only grows, so the engine keeps it out of the garbage collector's full scans
(``settings.gc_freeze_orders``). Orders of one account may trade with each other (no self-trade prevention).

Errors (services/runtime/errors.py, and :class:`.journal.JournalFailed` / :class:`EngineClosed`: UNAVAILABLE), per
method below.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import NamedTuple

from google.protobuf.message import DecodeError

from casemesh.trading.v1 import engine_pb2, trading_pb2

from ...runtime.errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted, Unavailable
from . import metrics, validation
from .book import CANCELLED, FILLED, LIMIT, Order, OrderBook
from .journal import Journal, JournalFailed
from .settings import EngineSettings

log = logging.getLogger("casemesh.trading.engine")

#: Events read from the log (or its in-memory ring) at a time by a StreamEvents catch-up.
CATCH_UP_CHUNK = 1_000

_Event = engine_pb2.StreamEventsResponse
_intern = sys.intern
_now = time.perf_counter


class EngineClosed(Unavailable):
    """The engine is shutting down: nothing more is accepted (UNAVAILABLE; retry on the restarted engine)."""


class JournalCorrupt(RuntimeError):
    """A record of the log passed its CRC check but cannot be replayed (a sequence gap, an unknown order): the log
    is not one this engine wrote; the engine refuses to start rather than serve wrong books."""


class Submitted(NamedTuple):
    """SubmitOrder's answer (``response``: the order after matching and its trades) and ``durable``: a future done
    once the order's events are on disk (it raises :class:`.journal.JournalFailed` when they could not be written)."""

    response: engine_pb2.SubmitOrderResponse
    durable: asyncio.Future[None]


class Cancelled(NamedTuple):
    """CancelOrder's answer (``order``: CANCELLED) and ``durable`` as :class:`Submitted`'s."""

    order: trading_pb2.Order
    durable: asyncio.Future[None]


class _Pending:
    """One order's (or cancel's) events on their way to disk: its future, when it was accepted (perf_counter
    seconds), its events to publish."""

    __slots__ = ("accepted_at", "events", "future")

    def __init__(self, future: asyncio.Future[None], accepted_at: float, events: list[_Event]) -> None:
        self.future = future
        self.accepted_at = accepted_at
        self.events = events


class _Subscriber:
    """A StreamEvents caller following live events: its bounded queue, and why it ended (``None`` while it runs)."""

    __slots__ = ("ended", "queue")

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[_Event | None] = asyncio.Queue(size)
        self.ended: Exception | None = None

    def end(self, error: Exception) -> None:
        self.ended = error
        try:
            self.queue.put_nowait(None)  # wakes a waiting reader; a full queue has no waiting reader
        except asyncio.QueueFull:
            pass


def _freeze_gc() -> None:
    """Collect the young generations, then move every tracked object out of the collector's future scans (the
    engine's orders only grow: without it every full collection walks them all; settings.gc_freeze_orders)."""
    gc.collect(1)
    gc.freeze()


def _fail(future: asyncio.Future[None], error: Exception) -> None:
    if not future.done():
        future.set_exception(error)
        future.exception()  # retrieved: no "exception never retrieved" log for a caller that went away


class MatchingEngine:
    """The engine over its log in ``folder`` (``events.log``), configured by ``settings`` (commit mode, catch-up
    memory, subscriber queues). ``clock_ns()`` is Unix time in nanoseconds (event and order timestamps).

    Lifecycle: :meth:`open` (replay the log, then commit from the running loop; or :meth:`recover` then
    :meth:`start`), the operations, :meth:`close`. ``books`` (symbol → :class:`.book.OrderBook`) and ``orders``
    (order_id → :class:`.book.Order`) are the engine's state; ``sequence`` the last sequence number given out.
    """

    def __init__(self, folder: Path, settings: EngineSettings | None = None, *,
                 clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.settings = settings = settings or EngineSettings()
        self.journal = Journal(folder, commit=settings.commit, recent_events=settings.recent_events,
                               index_every=settings.index_every)
        self.books: dict[str, OrderBook] = {}
        self.orders: dict[str, Order] = {}
        self.sequence = 0
        self._clock_ns = clock_ns
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers: set[_Subscriber] = set()
        #: (sequence, future) of reads waiting for their state to be durable, in sequence order.
        self._barriers: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._closing = False
        self._failed_logged = False
        #: Orders accepted since the last gc.freeze() (settings.gc_freeze_orders).
        self._unfrozen = 0

    # -- lifecycle ----------------------------------------------------------------------------------------------------

    async def open(self) -> tuple[int, float]:
        """Replay the log (in a worker thread), then start; returns (events replayed, seconds it took)."""
        started = _now()
        events = await asyncio.to_thread(self.recover)
        seconds = _now() - started
        if self.settings.gc_freeze_orders:
            _freeze_gc()
        self.start()
        metrics.started(self._state, events, seconds)
        return events, seconds

    def recover(self) -> int:
        """Rebuild the books and orders from the log (truncating a torn or corrupt tail); returns the events applied.

        Accepted events create orders; trades are applied as fills of their maker (resting, at its price) and their
        taker (the order accepted just before them); a limit order rests, with what its trades left, once its
        events are applied; a cancel takes an order out of the book. :class:`JournalCorrupt` when an event does not
        follow from the ones before it."""
        parse = engine_pb2.EngineEvent.FromString
        orders, books = self.orders, self.books
        expected = 1
        taker: Order | None = None  # the order whose trades may follow
        try:
            for payload in self.journal.recover():
                event = parse(payload)
                if event.sequence != expected:
                    raise JournalCorrupt(f"event {expected} of the log has sequence {event.sequence}")
                kind = event.WhichOneof("kind")
                if kind == "trade":
                    trade = event.trade
                    if taker is None or trade.taker_order_id != taker.order_id:
                        raise JournalCorrupt(f"trade {expected} does not follow its taker's acceptance")
                    books[taker.symbol].fill_resting(orders[trade.maker_order_id], trade.quantity)
                    taker.fill(trade.quantity)
                elif kind == "accepted":
                    if taker is not None:
                        self._settle(taker)
                    accepted = event.accepted
                    book = self._book(accepted.symbol)
                    taker = Order(accepted.order_id, accepted.client_order_id, _intern(accepted.account_id),
                                  book.symbol, accepted.side, accepted.type, accepted.price_minor, accepted.quantity,
                                  accepted.accepted_sequence, accepted.accepted_at_unix_ns)
                    orders[taker.order_id] = taker
                elif kind == "cancelled":
                    order = orders[event.cancelled.order_id]
                    if order is not taker:
                        if taker is not None:
                            self._settle(taker)
                        books[order.symbol].remove(order)
                    taker = None
                    order.status = CANCELLED
                else:
                    raise JournalCorrupt(f"event {expected} of the log is empty")
                expected += 1
        except (KeyError, DecodeError) as error:
            raise JournalCorrupt(f"event {expected} of the log cannot be applied ({error!r})") from error
        if taker is not None:
            self._settle(taker)
        self.sequence = expected - 1
        return self.sequence

    def _settle(self, order: Order) -> None:
        """Replay: a limit order whose trades are applied rests with what is left."""
        if order.type == LIMIT and order.filled < order.quantity:
            self.books[order.symbol].rest(order)

    def start(self) -> None:
        """Commit from now on (after :meth:`recover`), on the running event loop."""
        self._loop = asyncio.get_running_loop()
        self.journal.start(self._loop, self._committed, self._commit_failed)

    async def close(self) -> None:
        """Refuse new work, end every StreamEvents UNAVAILABLE, write what is buffered (its orders are answered)."""
        self._closing = True
        for subscriber in self._subscribers:
            subscriber.end(EngineClosed("trading-engine is shutting down; reconnect from the last sequence you have"))
        await self.journal.close()

    def _state(self) -> tuple[int, dict[str, int], int]:
        """What the scrape-time gauges report (metrics.EngineState); called from the metrics server's thread."""
        return (self.journal.durable_sequence, {symbol: book.resting for symbol, book in list(self.books.items())},
                len(self._subscribers))

    # -- orders -------------------------------------------------------------------------------------------------------

    def _book(self, symbol: str) -> OrderBook:
        book = self.books.get(symbol)
        if book is None:
            book = self.books[symbol] = OrderBook(_intern(symbol))
        return book

    def _writable(self) -> None:
        if self._closing:
            raise EngineClosed("trading-engine is shutting down; retry with the same order_id")
        if self.journal.failed is not None:
            raise self.journal.failed

    def submit(self, request: engine_pb2.SubmitOrderRequest) -> Submitted:
        """SubmitOrder: match a new order at once and return it with its trades; ``durable`` is done once its events
        are on disk (answer only then).

        An ``order_id`` already held returns that order as it is now and no trades, once its state is durable;
        :class:`~services.runtime.errors.FailedPrecondition` when it was held with another order (client order id,
        account, symbol, side, type, price or quantity). :class:`~services.runtime.errors.InvalidArgument` naming the
        field (:func:`.validation.submit_order`); :class:`.journal.JournalFailed` after a failed write and
        :class:`EngineClosed` while shutting down (UNAVAILABLE: nothing accepted)."""
        new = validation.submit_order(request)
        held = self.orders.get(new[0])
        if held is not None:
            return self._resubmitted(held, new)
        self._writable()
        accepted_at = _now()
        now = self._clock_ns()
        sequence = self.sequence + 1
        book = self.books.get(new[3]) or self._book(new[3])
        symbol = book.symbol
        order = Order(new[0], new[1], _intern(new[2]), symbol, new[4], new[5], new[6], new[7], sequence, now)
        self.orders[order.order_id] = order
        wrapped = _Event()
        event = wrapped.event
        event.sequence = sequence
        event.at_unix_ns = now
        accepted = order.to_proto(event.accepted)
        events = [wrapped]
        payloads = [event.SerializeToString()]  # each event is serialized as soon as it is complete
        response = engine_pb2.SubmitOrderResponse()
        response.order.CopyFrom(accepted)  # then only what matching changed
        fills = book.match(order)
        if fills:
            trades = response.trades
            shares = 0
            order_id, side = order.order_id, order.side
            for maker, quantity in fills:
                sequence += 1
                wrapped = _Event()
                event = wrapped.event
                event.sequence = sequence
                event.at_unix_ns = now
                trade = event.trade
                trade.trade_id = f"{symbol}-{sequence}"
                trade.symbol = symbol
                trade.price_minor = maker.price
                trade.quantity = quantity
                trade.maker_order_id = maker.order_id
                trade.taker_order_id = order_id
                trade.taker_side = side
                trade.sequence = sequence
                trade.executed_at_unix_ns = now
                trades.append(trade)
                events.append(wrapped)
                payloads.append(event.SerializeToString())
                shares += quantity
            metrics.TRADES.inc(len(fills))
            metrics.TRADED_SHARES.inc(shares)
        if order.filled < order.quantity:
            if order.type == LIMIT:
                book.rest(order)
            else:  # a market order's rest never rests
                order.status = CANCELLED
                sequence += 1
                wrapped = _Event()
                event = wrapped.event
                event.sequence = sequence
                event.at_unix_ns = now
                order.to_proto(event.cancelled)
                events.append(wrapped)
                payloads.append(event.SerializeToString())
        if order.status != trading_pb2.ORDER_STATUS_NEW:
            response.order.filled_quantity = order.filled
            response.order.status = order.status
        self.sequence = sequence
        pending = _Pending(self._loop.create_future(), accepted_at, events)
        metrics.ACCEPTED[order.side, order.type].inc()
        metrics.MATCH_SECONDS.observe(_now() - accepted_at)
        self.journal.append(payloads, pending)
        self._unfrozen += 1
        if self._unfrozen == self.settings.gc_freeze_orders:
            self._unfrozen = 0
            _freeze_gc()
        return Submitted(response, pending.future)

    def _resubmitted(self, held: Order, new: validation.NewOrder) -> Submitted:
        fields = ("client_order_id", "account_id", "symbol", "side", "type", "price_minor", "quantity")
        had = (held.client_order_id, held.account_id, held.symbol, held.side, held.type, held.price, held.quantity)
        differing = [name for name, old, now in zip(fields, had, new[1:], strict=True) if old != now]
        if differing:
            raise FailedPrecondition(f"order_id: {held.order_id} is held with a different order (its "
                                     f"{', '.join(differing)} differ)")
        return Submitted(engine_pb2.SubmitOrderResponse(order=held.to_proto()), self._barrier())

    def cancel(self, order_id: str, account_id: str) -> Cancelled:
        """CancelOrder: take a resting order of ``account_id`` out of its book (its cancelled event); a cancelled
        order is returned as it is (no new event). ``durable`` as :meth:`submit`'s.

        :class:`~services.runtime.errors.InvalidArgument` naming ``order_id`` or ``account_id``;
        :class:`~services.runtime.errors.NotFound` for an unknown order or another account's;
        :class:`~services.runtime.errors.FailedPrecondition` when it is FILLED; UNAVAILABLE as :meth:`submit`."""
        validation.order_id(order_id)
        validation.account_id(account_id)
        order = self.orders.get(order_id)
        if order is None or order.account_id != account_id:
            raise NotFound(f"order_id: account {account_id} has no order {order_id}")
        if order.status == FILLED:
            raise FailedPrecondition(f"order_id: {order_id} is filled; nothing is left to cancel")
        if order.status == CANCELLED:
            return Cancelled(order.to_proto(), self._barrier())
        self._writable()
        accepted_at = _now()
        self.books[order.symbol].remove(order)
        order.status = CANCELLED
        self.sequence += 1
        wrapped = _Event()
        event = wrapped.event
        event.sequence = self.sequence
        event.at_unix_ns = self._clock_ns()
        order.to_proto(event.cancelled)
        pending = _Pending(self._loop.create_future(), accepted_at, [wrapped])
        self.journal.append([event.SerializeToString()], pending)
        return Cancelled(order.to_proto(), pending.future)

    # -- reads --------------------------------------------------------------------------------------------------------

    def _barrier(self) -> asyncio.Future[None]:
        """A future done once every event given a sequence number so far is durable (at once when it is)."""
        if self.journal.failed is not None:
            raise self.journal.failed
        future = self._loop.create_future()
        if self.journal.durable_sequence >= self.sequence:
            future.set_result(None)
        else:
            self._barriers.append((self.sequence, future))
        return future

    async def get_order(self, order_id: str) -> trading_pb2.Order:
        """GetOrder: the order as it is now (answered once that state is durable). InvalidArgument naming
        ``order_id``; NotFound."""
        order = self.orders.get(validation.order_id(order_id))
        if order is None:
            raise NotFound(f"order_id: no order {order_id}")
        proto = order.to_proto()
        await self._barrier()
        return proto

    async def get_book(self, symbol: str, depth: int = 0, include_orders: bool = False,
                       ) -> engine_pb2.GetBookResponse:
        """GetBook: ``symbol``'s top ``depth`` levels per side (0: all), best first, and with ``include_orders``
        every resting order in priority order, as of ``sequence`` (answered once that is durable). A symbol never
        traded has an empty book. InvalidArgument naming ``symbol`` or ``depth``."""
        validation.symbol(symbol)
        validation.depth(depth)
        response = engine_pb2.GetBookResponse(sequence=self.sequence)
        book = self.books.get(symbol)
        if book is not None:
            for levels, side in ((response.bids, trading_pb2.SIDE_BUY), (response.asks, trading_pb2.SIDE_SELL)):
                for price, quantity, count in book.levels(side, depth):
                    levels.add(price_minor=price, quantity=quantity, order_count=count)
            if include_orders:
                for orders, side in ((response.bid_orders, trading_pb2.SIDE_BUY),
                                     (response.ask_orders, trading_pb2.SIDE_SELL)):
                    for order in book.resting_orders(side):
                        order.to_proto(orders.add())
        await self._barrier()
        return response

    # -- durability and subscribers -----------------------------------------------------------------------------------

    def _committed(self, tokens: list[_Pending], events: int, seconds: float) -> None:
        """The journal made ``tokens``' events durable (one commit of ``events`` in ``seconds``): answer their
        orders, publish their events, release the reads waiting for them."""
        metrics.COMMIT_SECONDS.observe(seconds)
        metrics.COMMIT_EVENTS.observe(events)
        now = _now()
        ack_wait = metrics.ACK_WAIT_SECONDS.observe
        subscribers = tuple(self._subscribers)
        for pending in tokens:
            future = pending.future
            if not future.done():  # done: its caller went away (cancelled)
                future.set_result(None)
            ack_wait(now - pending.accepted_at)
            for subscriber in subscribers:
                if subscriber.ended is None:
                    put = subscriber.queue.put_nowait
                    try:
                        for wrapped in pending.events:
                            put(wrapped)
                    except asyncio.QueueFull:
                        self._drop(subscriber)
        barriers = self._barriers
        if barriers:
            durable = self.journal.durable_sequence
            while barriers and barriers[0][0] <= durable:
                future = barriers.popleft()[1]
                if not future.done():
                    future.set_result(None)

    def _drop(self, subscriber: _Subscriber) -> None:
        self._subscribers.discard(subscriber)
        subscriber.end(ResourceExhausted(
            f"StreamEvents: this stream fell {self.settings.stream_queue_events:,} events behind; reconnect with "
            "from_sequence the last sequence number you have + 1"))
        metrics.STREAM_DROPPED.inc()

    def _commit_failed(self, tokens: list[_Pending], error: JournalFailed) -> None:
        """The journal could not write ``tokens``' events: fail them, every waiting read and every stream."""
        if not self._failed_logged:
            self._failed_logged = True
            log.error("trading-engine: %s; answering UNAVAILABLE until restarted", error)
        for pending in tokens:
            _fail(pending.future, error)
        while self._barriers:
            _fail(self._barriers.popleft()[1], error)
        for subscriber in self._subscribers:
            subscriber.end(JournalFailed(str(error)))
        self._subscribers.clear()

    async def stream(self, from_sequence: int) -> AsyncIterator[engine_pb2.StreamEventsResponse]:
        """StreamEvents: the log's events from ``from_sequence`` (0 or 1: the whole log) in sequence order, those
        already durable first (from memory or the file), then each new one once it is durable; no gap, no repeat.

        InvalidArgument naming ``from_sequence`` beyond the next sequence number; ResourceExhausted when this
        reader falls ``stream_queue_events`` behind (dropped); JournalFailed or EngineClosed (UNAVAILABLE)."""
        following = self.sequence + 1
        if from_sequence > following:
            raise InvalidArgument("from_sequence", f"{from_sequence} is beyond the next sequence number {following}")
        cursor = max(from_sequence, 1)
        journal = self.journal
        while True:
            if self._closing:
                raise EngineClosed("trading-engine is shutting down; reconnect from the last sequence you have")
            if journal.failed is not None:
                raise JournalFailed(str(journal.failed))
            if cursor > journal.durable_sequence:
                break  # caught up: from here to the subscription below nothing awaits, so no event is missed
            payloads = await journal.read(cursor, CATCH_UP_CHUNK)
            for payload in payloads:
                wrapped = _Event()
                wrapped.event.ParseFromString(payload)
                yield wrapped
            cursor += len(payloads)
        subscriber = _Subscriber(self.settings.stream_queue_events)
        self._subscribers.add(subscriber)
        queue = subscriber.queue
        try:
            while True:
                if subscriber.ended is not None:
                    raise subscriber.ended
                wrapped = await queue.get()
                if wrapped is not None:
                    yield wrapped
        finally:
            self._subscribers.discard(subscriber)
