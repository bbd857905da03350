"""What the trading journeys share in one load process: its market makers and takers, the orders they placed, and its
market data.

Seed 001 #08 "Stock Trading" (shared/seeds/001_58dfc580020147d2.txt line 22: "Order matching engine, order book,
market data, low-latency | <10ms p99 latency, NASDAQ-scale"). The workload's ``connect`` makes a :class:`Trading`
per load process:

- **accounts**: ``makers`` market makers (``mm<run><session>w<index>-<k>``) and ``takers`` takers
  (``tk<run><session>w<index>-<k>``), where ``session`` is 6 hex digits drawn per connect (``casemesh capacity``
  connects once per step against the same mesh: a step's accounts and client order ids never meet an earlier
  step's). Client order ids are ``<session>-<n>``, ``n`` counting this process's orders;
- **own orders** (:class:`OwnOrder`): every order this process placed, and its share of the seeded ladder
  (``state.ladder[index::count]``), with the shares known filled: from answers, and from the trades the first market
  data stream shows (:class:`~.market_data.TradeLedger`, fed before or after the order's answer arrives). An
  account's resting orders (:attr:`Account.resting`, oldest first) are the ones the journeys cancel;
- **the market** (:class:`~.market_data.Market`) and its ``subscribers`` held streams; :meth:`Trading.start` waits
  until each has had the snapshot of every symbol (UNAVAILABLE after ``ready_timeout_s``), then reads the ladder
  share back (GetOrder, unrecorded, ``check_concurrency`` at once): what it had filled before this process's first
  stream began is its ``base_filled`` (an earlier ``casemesh capacity`` step's takers may have traded it). A ladder
  order that cannot be read back is not judged at the end.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import random
import secrets
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from casemesh.trading.v1 import orders_pb2, trading_pb2

from .invariants import RESTING, TERMINAL
from .market_data import Market, Subscriber
from .prices import Top
from .seeding import GATEWAY, Placed, SeedParams, State

#: Own orders the ``query`` journey picks from: the newest this many.
RECENT_ORDERS = 2_000


@dataclass(eq=False)
class OwnOrder:
    """An order of this process: what was placed (:attr:`placed`), the shares filled before the first market data
    stream could show them (``base_filled``: a ladder order's when it was read back at connect, else 0), the shares
    the stream showed (``fed``), the most an answer said (``answered``), its status as last known, and whether the
    end-of-run check can judge its fills against the stream (``judged``)."""

    placed: Placed
    account: Account | None = None
    base_filled: int = 0
    fed: int = 0
    answered: int = 0
    status: int = trading_pb2.ORDER_STATUS_NEW
    judged: bool = True

    @property
    def order_id(self) -> str:
        return self.placed.order_id

    @property
    def known_filled(self) -> int:
        """The most shares known filled, from answers or the stream."""
        return max(self.answered, self.base_filled + self.fed)

    @property
    def resting(self) -> bool:
        """True while it may still rest in the book, as far as this process knows."""
        return (self.placed.type == trading_pb2.ORDER_TYPE_LIMIT and self.status in RESTING
                and self.known_filled < self.placed.quantity)


@dataclass(eq=False)
class Account:
    """A trader of this process and its resting orders, oldest first."""

    account_id: str
    resting: OrderedDict[str, OwnOrder] = field(default_factory=OrderedDict)

    def oldest(self) -> OwnOrder:
        return next(iter(self.resting.values()))

    def pick(self, rng: random.Random) -> OwnOrder:
        """One of its resting orders, uniformly."""
        return list(self.resting.values())[rng.randrange(len(self.resting))]


class Trading:
    """One load process's traders, orders and market data (module docstring).

    ``streams`` is :class:`casemesh.harness.streams.Streams`; ``clock`` and ``sleep`` are injectable for tests.
    """

    def __init__(self, streams: Any, state: State, params: SeedParams, *, clock: Callable[[], float] = time.perf_counter,
                 sleep: Callable[[float], Any] = asyncio.sleep) -> None:
        if not state.instruments:
            raise ValueError("the trading workload needs at least one instrument")
        self.streams = streams
        self.state = state
        self.params = params
        self.clock = clock
        self.sleep = sleep
        self.index, self.count = streams.share
        self.session = secrets.token_hex(3)
        self.symbols = [i.symbol for i in state.instruments]
        self.market = Market(streams, state.instruments, clock=clock, sleep=sleep)
        self.market.ledger.on_fill = self._fed
        prefix = f"{state.run}{self.session}w{self.index}"
        self.makers = [Account(f"mm{prefix}-{k}") for k in range(params.makers)]
        self.takers = [Account(f"tk{prefix}-{k}") for k in range(params.takers)]
        self.orders: dict[str, OwnOrder] = {}
        self.recent: collections.deque[OwnOrder] = collections.deque(maxlen=RECENT_ORDERS)
        for placed in state.ladder[self.index::self.count]:
            own = OwnOrder(placed, answered=placed.filled_at_ack)
            own.status = _status_after(own)
            self.orders[placed.order_id] = own
            self.recent.append(own)
        self._ids = itertools.count(1)
        self.subscribers = [Subscriber(self.market, i, self.symbols, params.subscriber_depth)
                            for i in range(params.subscribers)]
        self.counts: Counter[str] = Counter()

    # the population -------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the subscribers' streams, wait until each has every symbol's snapshot, read the ladder share back
        (module docstring)."""
        for subscriber in self.subscribers:
            subscriber.start()
        try:
            await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in self.subscribers)),
                                   self.params.ready_timeout_s)
        except TimeoutError:
            waiting = [s for s in self.subscribers if not s.ready.is_set()]
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(),
                f"{len(waiting)} of {len(self.subscribers)} market data subscribers had no snapshot of every symbol "
                f"after {self.params.ready_timeout_s:g} s (first: subscriber {waiting[0].index}, errors "
                f"{dict(waiting[0].errors)})") from None
        await self._read_ladder()

    async def _read_ladder(self) -> None:
        limit = asyncio.Semaphore(self.params.check_concurrency)

        async def one(own: OwnOrder) -> None:
            request = orders_pb2.OrderEntryServiceGetOrderRequest(account_id=own.placed.account_id,
                                                                  order_id=own.order_id)
            async with limit:
                try:
                    order = (await self.streams.call(GATEWAY, "GetOrder", request)).order
                except grpc.aio.AioRpcError as error:
                    own.judged = False
                    self.counts[f"ladder read back {error.code().name}"] += 1
                    return
            own.base_filled = order.filled_quantity - self.market.ledger.filled[own.order_id]
            self.update(own, order)

        await asyncio.gather(*(one(own) for own in self.orders.values() if own.account is None))

    async def stop(self) -> None:
        """Close the subscribers' streams (each session's last ``market_data_sequence`` sample)."""
        self.market.closing = True
        await asyncio.gather(*(s.close() for s in self.subscribers))

    # picking --------------------------------------------------------------------------------------------------------

    def top(self, symbol: str) -> Top:
        return self.market.tops[symbol]

    def symbol(self, rng: random.Random) -> str:
        return self.symbols[rng.randrange(len(self.symbols))]

    def maker(self, rng: random.Random) -> Account:
        return self.makers[rng.randrange(len(self.makers))]

    def taker(self, rng: random.Random) -> Account:
        return self.takers[rng.randrange(len(self.takers))]

    def recent_order(self, rng: random.Random) -> OwnOrder | None:
        """One of the newest own orders, uniformly (None before any)."""
        return self.recent[rng.randrange(len(self.recent))] if self.recent else None

    def client_order_id(self) -> str:
        """A client order id no other order of any account of this session carries."""
        return f"{self.session}-{next(self._ids)}"

    # bookkeeping ----------------------------------------------------------------------------------------------------

    def placed(self, account: Account, request: Any, order: trading_pb2.Order) -> OwnOrder:
        """Track the order of a PlaceOrder answer (fills the stream showed before the answer included)."""
        placed = Placed(order.order_id, request.client_order_id, request.account_id, request.symbol, request.side,
                        request.type, request.price_minor, request.quantity)
        own = self.orders.get(order.order_id)
        if own is None:
            own = self.orders[order.order_id] = OwnOrder(placed, account, fed=self.market.ledger.filled[order.order_id])
            self.recent.append(own)
        self.update(own, order)
        self.counts["placed"] += 1
        return own

    def update(self, own: OwnOrder, order: trading_pb2.Order) -> None:
        """An answer about ``own`` (placed, cancelled, read back): its filled shares and status."""
        own.answered = max(own.answered, order.filled_quantity)
        if order.status in TERMINAL or own.status not in TERMINAL:
            own.status = order.status
        own.status = _status_after(own)
        self._file(own)

    def gone(self, own: OwnOrder, status: int) -> None:
        """``own`` is out of the book with ``status`` (a cancel refused because it is FILLED)."""
        own.status = status
        self._file(own)

    def _fed(self, order_id: str, shares: int) -> None:
        own = self.orders.get(order_id)
        if own is not None:
            own.fed += shares
            own.status = _status_after(own)
            self._file(own)

    def _file(self, own: OwnOrder) -> None:
        account = own.account
        if account is None:
            return
        if own.resting:
            account.resting.setdefault(own.order_id, own)
        else:
            account.resting.pop(own.order_id, None)


def _status_after(own: OwnOrder) -> int:
    """``own``'s status once its known fills are counted (FILLED when every share is)."""
    if own.status in TERMINAL:
        return own.status
    filled = own.known_filled
    if filled >= own.placed.quantity:
        return trading_pb2.ORDER_STATUS_FILLED
    return trading_pb2.ORDER_STATUS_PARTIALLY_FILLED if filled else own.status
