"""The market data side of the trading workload: streams held for the whole run, what every market data message is
checked and measured for, and the trades this load process saw.

Seed 001 #08 "Stock Trading" (shared/seeds/001_58dfc580020147d2.txt line 22: "Order matching engine, order book,
market data, low-latency | <10ms p99 latency, NASDAQ-scale"). MarketDataService.StreamMarketData sends, per symbol, a
snapshot of the top levels, then every trade and every change of those levels, each with the engine sequence number
and the engine's time of the event it reflects (marketdata.proto).

**Subscribers** (:class:`Subscriber`): each load process holds ``subscribers`` streams from connect to the end of the
run, each following every traded symbol at ``subscriber_depth`` levels (a broker's market data handler). A stream
that ends (UNAVAILABLE: the service restarted; RESOURCE_EXHAUSTED: it fell behind) is opened again after 100 ms
doubling to 2 s, and starts with fresh snapshots; the time to its first message is then a ``market_data_first_message``
sample (the ``subscribe`` journey's clients give the run's other samples).

**Every message** (:meth:`Market.receive`, the hot path):

- the stream's order (:class:`StreamView`): per symbol the first message is the snapshot and the only one; after it,
  each message's sequence number is above the previous one's, except the depth update that follows a trade at the
  trade's own sequence (one engine event, a trade that moved the top levels: marketdata.proto "increasing per
  symbol"). Each stream session is one ``market_data_sequence`` sample when it ends: ``OK``, or ``DATA_LOSS`` after any
  break (each logged);
- ``market_data_freshness``: for each trade message, its receipt (``time.time_ns()``) less its ``engine_at_unix_ns``:
  the engine and this process share the machine's wall clock (the seed's market data, "low-latency");
- the process's view of each book (:class:`~.prices.Top`: best bid and ask, the shares of the top levels, the last
  trade), which prices the journeys' orders;
- ``order_to_trade_visible`` (:class:`TradeLedger`): a taker's PlaceOrder sent (its journey's intended start) to the
  first of its trades arriving on one of this process's subscriber streams, whichever comes first (the trade may
  arrive before the order's answer).

**The trades seen** (:class:`TradeLedger`): the first subscriber's stream adds each trade's shares to its maker's and
its taker's order; the journeys read it to keep their resting orders current, and the end-of-run check compares each
own order's ``filled_quantity`` with it (:mod:`.end_checks`). It is complete only while that stream never had to be
opened again (:attr:`TradeLedger.complete`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import grpc
from cachetools import TTLCache

from casemesh.trading.v1 import marketdata_pb2, trading_pb2

from .prices import Instrument, Top
from .seeding import MARKETDATA

log = logging.getLogger("casemesh.workloads.trading")

FRESHNESS = "market_data_freshness"
FIRST_MESSAGE = "market_data_first_message"
SEQUENCE = "market_data_sequence"
ORDER_TO_TRADE_VISIBLE = "order_to_trade_visible"
OK = "OK"
DATA_LOSS = "DATA_LOSS"
#: An ``order_to_trade_visible`` sample whose trade never arrived on a complete ledger's stream.
NOT_SEEN = "NOT_SEEN"

#: Seconds a trade's first sighting is remembered for a taker's answer that comes later.
SEEN_TTL_S = 60.0
RECONNECT_BASE_S = 0.1
RECONNECT_MAX_S = 2.0
#: Codes that end a subscriber for good (a request the service will never take).
FATAL = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED,
                   grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNIMPLEMENTED})
#: Problems logged per stream session at most (the rest are counted).
LOGGED_PROBLEMS = 3

#: One level as compared: (price minor units, shares, orders).
Level = tuple[int, int, int]


def levels(book_levels: Iterable[trading_pb2.BookLevel]) -> tuple[Level, ...]:
    """``BookLevel`` messages as (price, shares, orders) tuples."""
    return tuple((level.price_minor, level.quantity, level.order_count) for level in book_levels)


@dataclass
class SymbolView:
    """One symbol on one stream: the last message's sequence number and kind, and the top levels last sent."""

    sequence: int
    kind: str
    bids: tuple[Level, ...] = ()
    asks: tuple[Level, ...] = ()


class StreamView:
    """One stream session's symbols, checked message by message (module docstring)."""

    def __init__(self, symbols: Iterable[str]) -> None:
        self.wanted = frozenset(symbols)
        self.books: dict[str, SymbolView] = {}
        self.problems = 0
        self.messages = 0
        #: True once the session's ``market_data_sequence`` sample is recorded.
        self.judged = False

    @property
    def complete(self) -> bool:
        """True once every wanted symbol has had its snapshot."""
        return len(self.books) == len(self.wanted)

    def apply(self, message: marketdata_pb2.StreamMarketDataResponse) -> str | None:
        """Check and apply one message; returns what is wrong with it, if anything."""
        self.messages += 1
        kind = message.WhichOneof("update")
        symbol, sequence = message.symbol, message.sequence
        problem = None
        book = self.books.get(symbol)
        if kind is None:
            self.problems += 1
            return f"a message of {symbol!r} at {sequence} without an update"
        if symbol not in self.wanted:
            problem = f"a {kind} of {symbol!r}, a symbol not asked for"
        elif book is None:
            if kind != "snapshot":
                problem = f"{symbol}'s first message is a {kind} at {sequence}, not its snapshot"
            book = self.books[symbol] = SymbolView(sequence, kind)
        elif kind == "snapshot":
            problem = f"a second snapshot of {symbol} at {sequence} (the first at or before {book.sequence})"
        elif sequence < book.sequence or (sequence == book.sequence and not (book.kind == "trade" and kind == "depth")):
            problem = f"{symbol}: a {kind} at {sequence} after a {book.kind} at {book.sequence}"
        if problem is not None:
            self.problems += 1
        if book is not None:
            book.sequence, book.kind = max(book.sequence, sequence), kind
            if kind != "trade":
                depth = message.snapshot if kind == "snapshot" else message.depth
                book.bids, book.asks = levels(depth.bids), levels(depth.asks)
        return problem


class TradeLedger:
    """The trades this process saw (module docstring): shares per order from the first subscriber's stream, first
    sightings for ``order_to_trade_visible``.

    ``observe(name, latency_s, code, at)`` records a measure of an event at perf_counter instant ``at``;
    ``on_fill(order_id, shares)`` is told of every fill the first subscriber's stream shows.
    """

    def __init__(self, observe: Callable[[str, float, str, float], None], *, clock: Callable[[], float]) -> None:
        self._observe = observe
        self.filled: Counter[str] = Counter()
        self.trades = 0
        self.complete = True
        self.on_fill: Callable[[str, int], None] | None = None
        self._seen_at: TTLCache[str, float] = TTLCache(maxsize=1_000_000, ttl=SEEN_TTL_S, timer=clock)
        self.waiting: dict[str, float] = {}

    def fill(self, trade: trading_pb2.Trade) -> None:
        """A trade on the first subscriber's stream: its shares onto its maker's and its taker's order."""
        self.trades += 1
        for order_id in (trade.maker_order_id, trade.taker_order_id):
            self.filled[order_id] += trade.quantity
            if self.on_fill is not None:
                self.on_fill(order_id, trade.quantity)

    def seen(self, trade_id: str, at: float) -> None:
        """A trade arrived at perf_counter instant ``at`` on one of this process's subscriber streams."""
        if trade_id in self._seen_at:
            return
        self._seen_at[trade_id] = at
        sent = self.waiting.pop(trade_id, None)
        if sent is not None:
            self._observe(ORDER_TO_TRADE_VISIBLE, at - sent, OK, sent)

    def await_visible(self, trade_id: str, sent_at: float) -> None:
        """A taker's order sent at ``sent_at`` traded ``trade_id``: measured now if it was seen, else once it is."""
        seen = self._seen_at.get(trade_id)
        if seen is not None:
            self._observe(ORDER_TO_TRADE_VISIBLE, max(seen - sent_at, 0.0), OK, sent_at)
        else:
            self.waiting[trade_id] = sent_at

    def expire(self) -> int:
        """At the end: the trades still awaited are ``NOT_SEEN`` samples when the ledger is complete (else only
        counted); returns how many there were."""
        left = len(self.waiting)
        if self.complete:
            for sent in self.waiting.values():
                self._observe(ORDER_TO_TRADE_VISIBLE, 0.0, NOT_SEEN, sent)
        if left:
            log.warning("trading: %d takers' trades never arrived on the market data streams%s", left,
                        "" if self.complete else " (a stream was reopened: not judged)")
        self.waiting.clear()
        return left


class Market:
    """This process's market data: the books as it knows them, the trades it saw, and every message's checks.

    ``streams`` is :class:`casemesh.harness.streams.Streams` (``server_stream``, ``observe``, ``perf_at``);
    ``clock`` and ``sleep`` are injectable for tests.
    """

    def __init__(self, streams: Any, instruments: Iterable[Instrument], *, clock: Callable[[], float] = time.perf_counter,
                 sleep: Callable[[float], Any] = asyncio.sleep) -> None:
        self.streams = streams
        self.clock = clock
        self.sleep = sleep
        self.tops = {i.symbol: Top(i) for i in instruments}
        self.ledger = TradeLedger(self.observe, clock=clock)
        self.last_message_at = clock()
        self.messages = 0
        self.closing = False

    def observe(self, name: str, latency_s: float, code: str, at: float) -> None:
        """Record measure ``name`` of an event at perf_counter instant ``at`` (measured when ``at`` is after the
        warm-up)."""
        self.streams.observe(name, latency_s, code, sent_at=at)

    def receive(self, view: StreamView, message: marketdata_pb2.StreamMarketDataResponse, *, ledger: bool,
                seen: bool) -> str | None:
        """One message of a stream (module docstring); ``ledger``: it is the first subscriber's (fills counted),
        ``seen``: it is a held subscriber's (first sightings). Returns the stream order's problem, if any."""
        now_ns = time.time_ns()
        now = self.last_message_at = self.clock()
        self.messages += 1
        problem = view.apply(message)
        kind = message.WhichOneof("update")
        top = self.tops.get(message.symbol)
        if kind is None:
            return problem
        if kind == "trade":
            trade = message.trade
            engine_ns = message.engine_at_unix_ns
            self.observe(FRESHNESS, max(now_ns - engine_ns, 0) / 1e9, OK, self.streams.perf_at(engine_ns))
            if ledger:
                self.ledger.fill(trade)
            if seen:
                self.ledger.seen(trade.trade_id, now)
            if top is not None:
                top.trade(trade.sequence, trade.price_minor)
        elif top is not None:
            depth = message.snapshot if kind == "snapshot" else message.depth
            top.depth(message.sequence, [(lv.price_minor, lv.quantity) for lv in depth.bids],
                      [(lv.price_minor, lv.quantity) for lv in depth.asks])
        return problem

    async def wait_quiet(self, quiet_s: float, timeout_s: float) -> bool:
        """Wait until no message has arrived for ``quiet_s`` (the streams have caught up); False after ``timeout_s``."""
        deadline = self.clock() + timeout_s
        while True:
            now = self.clock()
            idle = now - self.last_message_at
            if idle >= quiet_s:
                return True
            if now >= deadline:
                return False
            await self.sleep(min(quiet_s - idle, deadline - now))


class Subscriber:
    """One market data stream held for the whole run (module docstring); ``index`` 0 feeds the ledger."""

    def __init__(self, market: Market, index: int, symbols: Iterable[str], depth: int) -> None:
        self.market = market
        self.index = index
        self.request = marketdata_pb2.StreamMarketDataRequest(symbols=list(symbols), depth=depth)
        self.view = StreamView(self.request.symbols)
        self.sessions = 0
        self.errors: Counter[str] = Counter()
        self.ready = asyncio.Event()
        self.call: Any = None
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._guard(), name=f"trading-subscriber-{self.index}")

    async def _guard(self) -> None:
        try:
            await self.run()
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug must not end the run silently
            log.exception("trading: market data subscriber %d stopped", self.index)

    async def run(self) -> None:
        """Hold the stream until the market closes, opening it again after it ends."""
        market = self.market
        failures = 0
        while not market.closing:
            opened = market.clock()
            self.sessions += 1
            if self.sessions > 1 and self.index == 0:
                market.ledger.complete = False
            view = self.view = StreamView(self.request.symbols)
            call = self.call = market.streams.server_stream(MARKETDATA, "StreamMarketData", self.request)
            try:
                async for message in call:
                    if view.messages == 0 and self.sessions > 1:
                        market.observe(FIRST_MESSAGE, market.clock() - opened, OK, opened)
                    self._receive(view, message)
                    failures = 0
                self.errors["ended"] += 1
            except grpc.aio.AioRpcError as error:
                if market.closing:
                    return
                self.errors[error.code().name] += 1
                log.info("trading: market data subscriber %d: StreamMarketData ended %s: %s", self.index,
                         error.code().name, error.details())
                if error.code() in FATAL:
                    log.warning("trading: market data subscriber %d refused %s: it stops", self.index,
                                error.code().name)
                    return
            except asyncio.CancelledError:
                call.cancel()
                raise
            finally:
                self.call = None
                if not market.closing:
                    self.session_ended(view)
            failures += 1
            await market.sleep(min(RECONNECT_BASE_S * 2 ** min(failures - 1, 10), RECONNECT_MAX_S))

    def _receive(self, view: StreamView, message: marketdata_pb2.StreamMarketDataResponse) -> None:
        problem = self.market.receive(view, message, ledger=self.index == 0 and self.sessions == 1, seen=True)
        if problem is not None and view.problems <= LOGGED_PROBLEMS:
            log.warning("trading: market data subscriber %d: %s", self.index, problem)
        if not self.ready.is_set() and view.complete:
            self.ready.set()

    def session_ended(self, view: StreamView) -> None:
        """One ``market_data_sequence`` sample for a stream session that ended (or the run's end); once per session,
        and none for a session that never delivered a message."""
        if view.judged or view.messages == 0:
            return
        view.judged = True
        self.market.observe(SEQUENCE, 0.0, DATA_LOSS if view.problems else OK, self.market.clock())

    async def close(self) -> None:
        """Stop following (after the market closed): the current session's ``market_data_sequence`` sample."""
        if self.call is not None:
            self.call.cancel()
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        self.session_ended(self.view)
