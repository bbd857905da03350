"""Market data fan-out: each engine event applied to the books, then queued to the subscribers of its symbol.

Seed 001 #08 (shared/seeds/001_58dfc580020147d2.txt line 22: "| 08 | Stock Trading | Order matching engine, order
book, market data, low-latency | <10ms p99 latency, NASDAQ-scale |"). The publisher is the market data service's
:class:`~..engine_feed.EngineFeed` handler: it runs on the event loop, synchronously, for each event in sequence
order, and never waits on a subscriber.

Subscriptions are indexed by symbol, then by depth (:class:`_DepthGroup`): an event touches only its symbol's
subscribers, and the top ``depth`` levels are computed and compared once per (symbol, depth), not per subscriber.
All subscribers of one (symbol, depth) were last sent the same levels: each got a snapshot of the group's levels
when it joined, and every change since. For each event of a symbol with subscribers:

1. a ``trade`` event queues one ``trade`` message to all of them;
2. for each depth group, the book's top ``depth`` levels are compared with what the group was last sent; when they
   differ, one ``depth`` message (the new levels) is queued to the group.

Both carry the event's ``sequence`` and ``engine_at_unix_ns``; one message object is shared by every subscriber it is
queued to. :meth:`Publisher.subscribe` queues, per symbol, a ``snapshot`` of the top ``depth`` levels as of the last
event applied (its sequence and time), then registers the subscriber, with no await in between, so the next event a
subscriber hears of is the first after its snapshot.

Each subscriber (:class:`Subscriber`) has a bounded queue (``queue_size`` messages, all its symbols together). A
subscriber whose queue is full when a message is due has fallen behind: it is taken out of the index and ends with
RESOURCE_EXHAUSTED (the proto's "reconnect: the new stream starts with a fresh snapshot"), counted in
``casemesh_trading_marketdata_dropped_subscribers_total``; the others are not delayed. Each event that queued at
least one message is timed in ``casemesh_trading_marketdata_publish_lag_seconds`` (the engine's ``at_unix_ns`` to
the last queue put).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence

import grpc

from casemesh.trading.v1 import marketdata_pb2, trading_pb2

from . import metrics
from .books import Books, Levels, SymbolBook


class SubscriberEnded(Exception):
    """A subscription must end with ``code`` (RESOURCE_EXHAUSTED: fell behind; UNAVAILABLE: shutdown)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        self.code = code
        super().__init__(message)


class Subscriber:
    """One StreamMarketData call: its symbols, depth, and queue of messages (at most ``queue_size``)."""

    def __init__(self, symbols: Sequence[str], depth: int, queue_size: int) -> None:
        self.symbols = tuple(symbols)
        self.depth = depth
        self._queue_size = queue_size
        self._messages: deque[marketdata_pb2.StreamMarketDataResponse] = deque()
        self._wake = asyncio.Event()
        self.ended: SubscriberEnded | None = None

    def offer(self, message: marketdata_pb2.StreamMarketDataResponse) -> bool:
        """Queue ``message``; False when the queue is full (the subscriber fell behind) or the stream ended."""
        if len(self._messages) >= self._queue_size or self.ended is not None:
            return False
        self._messages.append(message)
        self._wake.set()
        return True

    def end(self, code: grpc.StatusCode, message: str) -> None:
        """Make the stream end with ``code`` (the first reason wins); messages still queued are dropped."""
        if self.ended is None:
            self.ended = SubscriberEnded(code, message)
            self._messages.clear()
            self._wake.set()

    async def next(self) -> marketdata_pb2.StreamMarketDataResponse:
        """The next message, waiting for one; raises :class:`SubscriberEnded` once the stream must end."""
        while True:
            if self.ended is not None:
                raise self.ended
            if self._messages:
                return self._messages.popleft()
            self._wake.clear()
            await self._wake.wait()


class _DepthGroup:
    """The subscribers of one (symbol, depth), and the levels they were last sent."""

    __slots__ = ("depth", "levels", "subscribers")

    def __init__(self, depth: int, levels: tuple[Levels, Levels]) -> None:
        self.depth = depth
        self.levels = levels
        self.subscribers: set[Subscriber] = set()


def book_depth(levels: tuple[Levels, Levels]) -> marketdata_pb2.BookDepth:
    """``BookDepth`` of ``(bids, asks)``."""
    bids, asks = levels
    return marketdata_pb2.BookDepth(
        bids=[trading_pb2.BookLevel(price_minor=p, quantity=q, order_count=n) for p, q, n in bids],
        asks=[trading_pb2.BookLevel(price_minor=p, quantity=q, order_count=n) for p, q, n in asks])


_EMPTY: tuple[Levels, Levels] = ((), ())


class Publisher:
    """The books and their subscribers (module docstring); :meth:`on_event` is the engine feed's handler."""

    def __init__(self, queue_size: int) -> None:
        self.books = Books()
        self._queue_size = queue_size
        self._index: dict[str, dict[int, _DepthGroup]] = {}
        self.subscribers: set[Subscriber] = set()

    def subscribe(self, symbols: Sequence[str], depth: int) -> Subscriber:
        """A new subscriber with a snapshot of each symbol queued, registered for what follows."""
        subscriber = Subscriber(symbols, depth, self._queue_size)
        books = self.books
        sequence, at = books.sequence, books.at_unix_ns
        for symbol in subscriber.symbols:
            groups = self._index.setdefault(symbol, {})
            group = groups.get(depth)
            if group is None:
                book = books.get(symbol)
                group = groups[depth] = _DepthGroup(depth, _EMPTY if book is None else book.top(depth))
            group.subscribers.add(subscriber)
            subscriber.offer(marketdata_pb2.StreamMarketDataResponse(
                symbol=symbol, sequence=sequence, engine_at_unix_ns=at, snapshot=book_depth(group.levels)))
        self.subscribers.add(subscriber)
        metrics.SUBSCRIBERS.inc()
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Forget ``subscriber`` (its stream ended); idempotent."""
        if subscriber not in self.subscribers:
            return
        self.subscribers.discard(subscriber)
        metrics.SUBSCRIBERS.dec()
        for symbol in subscriber.symbols:
            groups = self._index.get(symbol)
            group = None if groups is None else groups.get(subscriber.depth)
            if group is None:
                continue
            group.subscribers.discard(subscriber)
            if not group.subscribers:
                del groups[subscriber.depth]
                if not groups:
                    del self._index[symbol]

    def on_event(self, event) -> None:
        """Apply one engine event (``EngineEvent``) to the books and queue what it changed to its subscribers."""
        book = self.books.apply(event)
        if book is None:
            return
        groups = self._index.get(book.symbol)
        if groups:
            self._publish(event, book, groups)

    def end_all(self, code: grpc.StatusCode, message: str) -> None:
        """End every subscriber with ``code`` (shutdown)."""
        for subscriber in list(self.subscribers):
            subscriber.end(code, message)

    def _publish(self, event, book: SymbolBook, groups: dict[int, _DepthGroup]) -> None:
        fallen: list[Subscriber] = []
        queued = False
        sequence, at, symbol = event.sequence, event.at_unix_ns, book.symbol
        if event.HasField("trade"):
            message = marketdata_pb2.StreamMarketDataResponse(symbol=symbol, sequence=sequence, engine_at_unix_ns=at,
                                                              trade=event.trade)
            for group in groups.values():
                queued |= _offer(group, message, fallen)
        for group in groups.values():
            levels = book.top(group.depth)
            if levels != group.levels:
                group.levels = levels
                message = marketdata_pb2.StreamMarketDataResponse(
                    symbol=symbol, sequence=sequence, engine_at_unix_ns=at, depth=book_depth(levels))
                queued |= _offer(group, message, fallen)
        if queued:
            metrics.PUBLISH_LAG_SECONDS.observe(max(0.0, time.time() - at / 1e9))
        for subscriber in fallen:
            if subscriber.ended is None:
                metrics.DROPPED_SUBSCRIBERS.inc()
                subscriber.end(grpc.StatusCode.RESOURCE_EXHAUSTED,
                               f"the market data stream fell {self._queue_size:,} messages behind; reconnect (the new "
                               "stream starts with a fresh snapshot)")
            self.unsubscribe(subscriber)


def _offer(group: _DepthGroup, message: marketdata_pb2.StreamMarketDataResponse, fallen: list[Subscriber]) -> bool:
    """Queue ``message`` to every subscriber of ``group``; those whose queue is full go to ``fallen``."""
    queued = False
    for subscriber in group.subscribers:
        if subscriber.offer(message):
            queued = True
        else:
            fallen.append(subscriber)
    return queued
