"""The end-of-run checks of the trading workload: every book, and a sample of this process's orders against the trades
its market data showed.

Seed 001 #08 "Stock Trading" (shared/seeds/001_58dfc580020147d2.txt line 22: "Order matching engine, order book,
market data"). ``disconnect`` runs :func:`finish` after the load process's last journey, with the market data
streams still open:

1. **Caught up**: wait until no market data message has arrived for ``quiet_s`` (at most ``settle_timeout_s``):
   the streams have delivered every event the load made.
2. **Books** (``check_books``, load process 0): MatchingEngineService.GetBook of every symbol with all its levels and
   resting orders, and MarketDataService.GetTopOfBook, then wait for quiet again. The comparison with the market data
   is race-free only when no market data message arrived from just before those calls to the end of the wait (no
   event changed a top level meanwhile: the books, the published tops and the streams' last levels are then at one
   point of the log); otherwise the calls are made again, up to :data:`BOOK_ATTEMPTS` times, and the comparison is
   left out (logged) if the market never stands still (other load processes still trading). One
   ``book_integrity`` sample per symbol: the book's own consistency (:func:`~.invariants.book_problems`), and when
   comparable, every held stream's last levels equal the book's top ``subscriber_depth`` levels at a sequence
   number not after the book's, and the published best bid and ask equal the book's best levels; ``DATA_LOSS`` when
   anything differs, the call's status code when it failed.
3. **Orders** (``check_orders``): ``check_orders`` of this process's orders drawn at random (its ladder share
   included), each read back with OrderEntryService.GetOrder: one ``order_integrity`` sample (the order placed,
   consistent, never fewer fills than known; NOT_FOUND for an acknowledged order is ``DATA_LOSS``), and one
   ``fills_match_trades`` sample when the trades seen can judge it: its ``filled_quantity`` equals the shares of the
   trades the first market data stream showed for it (plus, for a ladder order, what it had filled when it was read
   back at connect). That needs the stream to have run unbroken since connect
   (:attr:`~.market_data.TradeLedger.complete`), and with ``--workers`` the order to be FILLED or CANCELLED (a resting
   one may still trade with another process) and not a ladder order (another process may trade it between this
   one's first snapshot and its read-back).
4. ``order_to_trade_visible``: takers' trades that never arrived are ``NOT_SEEN`` samples
   (:meth:`~.market_data.TradeLedger.expire`).

The calls are unrecorded (:meth:`casemesh.harness.streams.Streams.call`), ``check_concurrency`` at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import grpc

from casemesh.trading.v1 import engine_pb2, marketdata_pb2, orders_pb2

from .invariants import (
    BOOK_INTEGRITY,
    FILLS_MATCH_TRADES,
    ORDER_INTEGRITY,
    TERMINAL,
    book_problems,
    read_back_problems,
    record,
    status_name,
    top_problems,
)
from .market_data import levels
from .seeding import ENGINE, GATEWAY, MARKETDATA
from .traders import OwnOrder, Trading

log = logging.getLogger("casemesh.workloads.trading")

#: Rounds of GetBook and GetTopOfBook before the comparison with the market data is left out.
BOOK_ATTEMPTS = 3


def _observer(live: Trading) -> Any:
    return lambda measure, code: live.market.observe(measure, 0.0, code, live.clock())


async def finish(live: Trading) -> None:
    """The end-of-run checks (module docstring)."""
    params = live.params
    if not await live.market.wait_quiet(params.quiet_s, params.settle_timeout_s):
        # Expected while other load processes still trade; with one, the market data lags or never stops.
        log.log(logging.WARNING if live.count == 1 else logging.INFO,
                "trading: the market data did not go quiet within %g s of the last journey", params.settle_timeout_s)
    if params.check_books and live.index == 0:
        await check_books(live)
    if params.check_orders:
        await check_orders(live)
    live.market.ledger.expire()


async def _snapshot(live: Trading, limit: asyncio.Semaphore) -> dict[str, tuple[Any, Any]]:
    """GetBook (all levels, with orders) and GetTopOfBook of every symbol: an answer or the error, per symbol."""
    async def one(symbol: str) -> tuple[Any, Any]:
        async with limit:
            try:
                book = await live.streams.call(ENGINE, "GetBook", engine_pb2.GetBookRequest(
                    symbol=symbol, depth=0, include_orders=True))
            except grpc.aio.AioRpcError as error:
                book = error
            try:
                top = await live.streams.call(MARKETDATA, "GetTopOfBook",
                                              marketdata_pb2.GetTopOfBookRequest(symbol=symbol))
            except grpc.aio.AioRpcError as error:
                top = error
            return book, top

    answers = await asyncio.gather(*(one(s) for s in live.symbols))
    return dict(zip(live.symbols, answers, strict=True))


def _published_problems(book: Any, top: Any) -> list[str]:
    """The published best bid and ask against the book's best levels."""
    problems = []
    for name, published, best in (("bid", top.best_bid if top.HasField("best_bid") else None, book.bids[:1]),
                                  ("ask", top.best_ask if top.HasField("best_ask") else None, book.asks[:1])):
        shown = levels([published]) if published is not None else ()
        if shown != levels(best):
            problems.append(f"GetTopOfBook's best {name} {shown} at {top.sequence}, the book's {levels(best)} at "
                            f"{book.sequence}")
    return problems


async def check_books(live: Trading) -> None:
    """One ``book_integrity`` sample per symbol (module docstring)."""
    params, market = live.params, live.market
    limit = asyncio.Semaphore(params.check_concurrency)
    comparable = False
    answers: dict[str, tuple[Any, Any]] = {}
    for _ in range(BOOK_ATTEMPTS):
        before = market.messages
        answers = await _snapshot(live, limit)
        if await market.wait_quiet(params.quiet_s, params.settle_timeout_s) and market.messages == before:
            comparable = True
            break
    if not comparable:
        log.log(logging.WARNING if live.count == 1 else logging.INFO,
                "trading: the market data kept moving at the end: the books are checked without comparing them with "
                "the market data")
    observe = _observer(live)
    for symbol, (book, top) in answers.items():
        if isinstance(book, grpc.aio.AioRpcError):
            log.warning("trading: GetBook %s failed: %s %s", symbol, book.code().name, book.details())
            observe(BOOK_INTEGRITY, book.code().name)
            continue
        problems = book_problems(symbol, book)
        if comparable:
            for subscriber in live.subscribers:
                view = subscriber.view.books.get(symbol)
                if view is None:
                    continue
                if view.sequence > book.sequence:
                    problems.append(f"subscriber {subscriber.index}'s stream is at {view.sequence}, after the book's "
                                    f"{book.sequence}, with the market quiet")
                problems += top_problems(book, view, params.subscriber_depth)
            if isinstance(top, grpc.aio.AioRpcError):
                problems.append(f"GetTopOfBook failed: {top.code().name} {top.details()}")
            else:
                problems += _published_problems(book, top)
        record(observe, BOOK_INTEGRITY, problems, f"the book of {symbol} at sequence {book.sequence}")


async def check_orders(live: Trading) -> None:
    """``order_integrity`` and ``fills_match_trades`` samples for a sample of own orders (module docstring)."""
    params = live.params
    ledger = live.market.ledger
    orders = list(live.orders.values())
    sample = random.Random(f"casemesh-trading-check-{live.session}").sample(orders, min(params.check_orders, len(orders)))
    limit = asyncio.Semaphore(params.check_concurrency)
    observe = _observer(live)
    judged = 0

    async def one(own: OwnOrder) -> None:
        nonlocal judged
        request = orders_pb2.OrderEntryServiceGetOrderRequest(account_id=own.placed.account_id, order_id=own.order_id)
        known = own.known_filled
        async with limit:
            try:
                order = (await live.streams.call(GATEWAY, "GetOrder", request)).order
            except grpc.aio.AioRpcError as error:
                if error.code() == grpc.StatusCode.NOT_FOUND:
                    record(observe, ORDER_INTEGRITY, [f"GetOrder: NOT_FOUND ({error.details()})"],
                           f"acknowledged order {own.order_id} of {own.placed.account_id}")
                else:
                    log.warning("trading: GetOrder %s at the end failed: %s", own.order_id, error.code().name)
                return
        record(observe, ORDER_INTEGRITY, read_back_problems(own.placed, own.order_id, known, order),
               f"GetOrder {own.order_id} at the end")
        live.update(own, order)
        ladder = own.account is None
        if not (ledger.complete and own.judged) or (live.count > 1 and (ladder or order.status not in TERMINAL)):
            return
        judged += 1
        shown = ledger.filled[own.order_id]
        problems = [] if shown + own.base_filled == order.filled_quantity else [
            f"{order.filled_quantity} shares filled ({status_name(order.status)}), the market data showed trades of {shown}"
            + (f" after {own.base_filled} filled when it was read back at connect" if own.base_filled else "")]
        record(observe, FILLS_MATCH_TRADES, problems, f"order {own.order_id} of {own.placed.account_id}")

    await asyncio.gather(*(one(own) for own in sample))
    if not ledger.complete:
        log.warning("trading: the first market data stream was reopened during the run: fills_match_trades not judged")
    log.info("trading: %d orders read back at the end, %d judged against the %d trades seen", len(sample), judged,
             ledger.trades)

