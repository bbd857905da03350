"""The end-of-run checks of the e-commerce workload: no unit oversold, the stock sold equal to the orders the shoppers
saw confirmed, and, in a flash sale, where the deals' units ended up.

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt line 512: "Consistency: Inventory
counts must be accurate (no overselling)"; line 529: "Inventory reservation: Optimistic locking with TTL"; line 542:
``reserve_stock`` "Reserve stock with TTL (prevents cart abandonment lock-up)"). ``disconnect`` runs :func:`finish`
after the load process's last journey; only load process 0 checks (``check_delay_s`` after its own drain with
``--workers``), with unrecorded calls:

1. **no_oversell**: InventoryService.Audit (one consistent state of every product): each violation line it reports
   that was not in the baseline taken at connect (:mod:`.live`) is a problem, and so is any product whose levels
   break the contract's rule (inventory.proto StockLevel: ``committed + held <= stocked``, ``available = stocked -
   committed - held``, none negative). One sample: ``OK``, ``DATA_LOSS`` (each problem logged), or the Audit's code
   when it failed for good.
2. **orders_consistent**: every order this process saw CONFIRMED is read back (CheckoutService.GetOrder,
   ``read_back_concurrency`` in flight, up to 3 attempts): it must still be CONFIRMED with the lines, total and payment
   answered (:func:`~.sales.read_back_problems`; NOT_FOUND is a lost order). With one load process and the baseline:
   for every product of the run that no checkout of unknown outcome touched, the units sold since connect equal the
   units of the orders answered CONFIRMED (:class:`~.sales.Sales`): stock sold without an order the shopper saw, or an
   order confirmed without its stock, is a problem. Units sold are :func:`net_sold`: committed since connect less
   stocked since (a failed order ends "with nothing held" (orders.proto), and ecommerce-orders gives back units of a
   partial commit by Restock; the workload restocks nothing during the run). The problems
   found in answers during the run (an order that is not the cart, one key answered with two orders) are problems
   too. One sample: ``OK``, ``DATA_LOSS``, or the code of a call that failed for good when nothing is wrong.
3. **sell_through** (only with deals, the flash sale): for each deal, from the baseline and the final Audit, one sample
   per unit that was for sale at connect (``available + held`` then): ``OK`` (sold: :func:`net_sold` since), ``STRANDED``
   (held at the end: in carts nobody checks out, the lock-up the TTL exists to prevent) or ``UNSOLD`` (available at
   the end); the three add up to the units for sale at connect. Without a baseline the deal's seeded stock stands for
   it. Latency 0.

The measures' latency is the check's time (``no_oversell``, ``orders_consistent``).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable

import grpc
from casemesh.ecommerce.v1 import inventory_pb2, orders_pb2

from ..idempotent_retry import RetryParams, send
from .live import Level, Shop, level_of
from .sales import read_back_problems
from .seeding import ORDERS

log = logging.getLogger("casemesh.workloads.ecommerce")

NO_OVERSELL = "no_oversell"
ORDERS_CONSISTENT = "orders_consistent"
SELL_THROUGH = "sell_through"
OK = "OK"
DATA_LOSS = "DATA_LOSS"
#: sell_through's codes: a unit sold is OK (an SLO counts good samples by gRPC code names).
SOLD, STRANDED, UNSOLD = OK, "STRANDED", "UNSOLD"
#: How the read back retries a GetOrder.
READ_RETRY = RetryParams(max_attempts=3, backoff_base_ms=100, backoff_cap_ms=1_000, retry_within_s=5)


def net_sold(before: Level, after: Level) -> int:
    """Units sold between two levels of one product: committed since, less stocked since (module docstring, 2)."""
    return (after.committed - after.stocked) - (before.committed - before.stocked)


def level_problems(levels: dict[str, Level]) -> list[str]:
    """Products whose levels break inventory.proto's StockLevel rule."""
    problems: list[str] = []
    for product, level in levels.items():
        if min(level.stocked, level.held, level.committed, level.available) < 0:
            problems.append(f"{product}: a negative level {level}")
        if level.committed + level.held > level.stocked:
            problems.append(f"{product} is oversold: {level.committed} committed + {level.held} held > "
                            f"{level.stocked} stocked")
        if level.available != level.stocked - level.committed - level.held:
            problems.append(f"{product}: available {level.available} is not stocked - committed - held "
                            f"({level.stocked - level.committed - level.held})")
    return problems


def oversell_problems(audit: inventory_pb2.AuditResponse, known: Iterable[str]) -> list[str]:
    """Problems of the final Audit: its violations not in ``known`` (the baseline's), and its levels'."""
    old = set(known)
    problems = [f"Audit: {line}" for line in audit.violations if line not in old]
    return problems + level_problems({s.product_id: level_of(s) for s in audit.stock})


def committed_problems(shop: Shop, levels: dict[str, Level]) -> list[str]:
    """Per product of the run not touched by a checkout of unknown outcome: the units sold since connect against the
    units of the orders answered CONFIRMED (module docstring, 2)."""
    assert shop.baseline is not None
    sales, start = shop.sales, shop.baseline.levels
    problems: list[str] = []
    skipped = 0
    for product in shop.state.product_ids:
        if sales.uncertain(product):
            skipped += 1
            continue
        zero = Level(0, 0, 0, 0)
        sold = net_sold(start.get(product, zero), levels.get(product, zero))
        if sold != sales.units[product]:
            problems.append(f"{product}: {sold} units sold during the run, the orders answered CONFIRMED hold "
                            f"{sales.units[product]}")
    if skipped:
        log.info("ecommerce: %d products touched by checkouts of unknown outcome not compared", skipped)
    return problems


async def read_back(shop: Shop) -> tuple[list[str], list[str]]:
    """GetOrder of every order answered CONFIRMED: the problems, and the codes of the reads that failed for good."""
    limit = asyncio.Semaphore(shop.params.read_back_concurrency)
    rng = random.Random(shop.state.run)
    problems: list[str] = []
    codes: list[str] = []

    async def one(order_id: str) -> None:
        async with limit:
            outcome = await send(shop.streams.call, ORDERS, "GetOrder", orders_pb2.GetOrderRequest(order_id=order_id),
                                 READ_RETRY, rng, clock=shop.clock, sleep=shop.sleep)
        answered = shop.sales.orders[order_id]
        if outcome.answered:
            problems.extend(read_back_problems(answered, outcome.response.order))
        elif outcome.code == grpc.StatusCode.NOT_FOUND.name:
            problems.append(f"{order_id} was answered CONFIRMED, GetOrder finds no such order")
        else:
            log.warning("ecommerce: GetOrder %s failed: %s", order_id, outcome.code)
            codes.append(outcome.code)

    await asyncio.gather(*(one(order_id) for order_id in shop.sales.orders))
    return problems, codes


def record(shop: Shop, measure: str, started: float, problems: list[str], failed: list[str]) -> str:
    """One sample of ``measure``: DATA_LOSS with problems (each logged), else the first failed code, else OK."""
    for problem in problems:
        log.warning("ecommerce: %s: %s", measure, problem)
    code = DATA_LOSS if problems else failed[0] if failed else OK
    shop.streams.observe(measure, shop.clock() - started, code, sent_at=started)
    return code


def sell_through(shop: Shop, levels: dict[str, Level]) -> dict[str, int]:
    """The ``sell_through`` samples of every deal (module docstring, 3); returns the counts by code."""
    counts = {SOLD: 0, STRANDED: 0, UNSOLD: 0}
    now = shop.clock()
    for deal in shop.state.hot:
        start = shop.baseline.levels.get(deal.product_id) if shop.baseline is not None else None
        if start is None:
            start = Level(deal.stock, 0, 0, deal.stock)
        end = levels.get(deal.product_id)
        if end is None:
            log.warning("ecommerce: deal %s is not in the final Audit: its sell-through is not measured",
                        deal.product_id)
            continue
        units = {SOLD: net_sold(start, end), STRANDED: end.held, UNSOLD: end.available}
        if min(units.values()) < 0:
            log.warning("ecommerce: deal %s's levels went from %s to %s: its sell-through is not measured",
                        deal.product_id, start, end)
            continue
        log.info("ecommerce: deal %s: %d units for sale at connect, %d sold, %d stranded in carts, %d unsold",
                 deal.product_id, start.available + start.held, *units.values())
        for code, count in units.items():
            counts[code] += count
            for _ in range(count):
                shop.streams.observe(SELL_THROUGH, 0.0, code, sent_at=now)
    return counts


async def finish(shop: Shop) -> None:
    """The end-of-run checks (module docstring)."""
    if not shop.checker:
        return
    if not shop.alone and shop.params.check_delay_s > 0:
        await shop.sleep(shop.params.check_delay_s)
    started = shop.clock()
    audit: inventory_pb2.AuditResponse | None = None
    try:
        audit = await shop.audit()
    except grpc.aio.AioRpcError as error:
        log.warning("ecommerce: the end-of-run Audit failed: %s %s", error.code().name, error.details())
        audit_code = error.code().name
        record(shop, NO_OVERSELL, started, [], [audit_code])
    levels: dict[str, Level] = {}
    if audit is not None:
        levels = {s.product_id: level_of(s) for s in audit.stock}
        log.info("ecommerce: Audit: %d products, %d reservations held, %d expired since the start, %d violations",
                 len(audit.stock), audit.held_reservations, audit.expired_reservations, len(audit.violations))
        record(shop, NO_OVERSELL, started, oversell_problems(audit, shop.baseline.violations if shop.baseline else ()),
               [])
    started = shop.clock()
    problems, failed = await read_back(shop)
    problems = list(shop.sales.problems) + problems
    if audit is None:
        failed.append(audit_code)
    elif not shop.alone:
        log.info("ecommerce: the stock sold not compared with the orders seen: several load processes")
    elif shop.baseline is None:
        log.info("ecommerce: the stock sold not compared with the orders seen: no baseline audit at connect")
    else:
        problems += committed_problems(shop, levels)
    record(shop, ORDERS_CONSISTENT, started, problems, failed)
    if shop.state.hot and audit is not None:
        sell_through(shop, levels)
