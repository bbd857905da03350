"""What the e-commerce journeys share in one load process: the seeded shop, who and what they draw, the book of what
they bought, and the inventory as it was when the process connected.

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt line 512: "Inventory counts must
be accurate (no overselling)"; line 541: ``reserve_stock(product_id, quantity, user_id, ttl=600)``). The workload's
``connect`` makes a :class:`Shop` for the process and, in load process 0:

1. with ``restock_hot_at_connect`` and a flash sale, restocks each deal whose available units are below
   ``hot_stock`` back up to it (InventoryService.Restock with a fresh restock ID, unrecorded): ``casemesh capacity``
   seeds once and connects once per step, so each step is a new sale of ``hot_stock`` units;
2. with ``baseline_audit``, audits the inventory (InventoryService.Audit, unrecorded) and keeps every product's stock
   level and the violations already there (a data directory kept from an earlier run): the end-of-run checks
   (:mod:`.end_checks`) judge what this run changed, so each capacity step is judged on its own.

Shoppers are drawn as a shop's traffic is: products by popularity (Zipf over the seeded order, :meth:`Shop.product`),
categories likewise (:meth:`Shop.category`), a deal uniformly, a card uniformly among the seeded tokens; each
journey is a new visitor's session (:meth:`Shop.new_user`), so no two journeys share a cart.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
import uuid
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from casemesh.ecommerce.v1 import ecommerce_pb2, inventory_pb2

from .sales import Sales
from .seeding import INVENTORY, Product, SeedParams, State

log = logging.getLogger("casemesh.workloads.ecommerce")

#: Codes after which Audit is sent again, and the pause before it.
AUDIT_RETRIED = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
AUDIT_PAUSE_S = 1.0


@dataclass(frozen=True)
class Level:
    """A product's stock level, in units."""

    stocked: int
    held: int
    committed: int
    available: int


def level_of(stock: ecommerce_pb2.StockLevel) -> Level:
    return Level(stock.stocked, stock.held, stock.committed, stock.available)


@dataclass(frozen=True)
class Baseline:
    """The inventory when the process connected: every product's level, and the audit's violations then."""

    levels: dict[str, Level]
    violations: frozenset[str]


def zipf_cdf(size: int, exponent: float) -> list[float]:
    """Cumulative weights of ranks 1 .. ``size``, rank r weighing ``1 / r**exponent`` (0: uniform)."""
    return list(itertools.accumulate(1.0 / (r ** exponent) for r in range(1, size + 1)))


class Shop:
    """A load process's share of the workload (module docstring).

    ``streams`` is :class:`casemesh.harness.streams.Streams` (its unrecorded ``call``, ``observe`` and ``share``);
    ``clock`` and ``sleep`` are injectable for tests.
    """

    def __init__(self, streams: Any, state: State, params: SeedParams, *, clock: Any = time.perf_counter,
                 sleep: Any = asyncio.sleep) -> None:
        if not state.products or not state.cards or not state.categories:
            raise ValueError("the e-commerce workload needs at least one product, category and card")
        self.streams = streams
        self.state = state
        self.params = params
        self.sales = Sales()
        self.clock = clock
        self.sleep = sleep
        self.baseline: Baseline | None = None
        self._cdfs: dict[tuple[int, float], list[float]] = {}

    @property
    def currency(self) -> str:
        return self.state.currency

    def _zipf(self, items: Sequence[Any], exponent: float, rng: random.Random) -> Any:
        cdf = self._cdfs.get((len(items), exponent))
        if cdf is None:
            cdf = self._cdfs[(len(items), exponent)] = zipf_cdf(len(items), exponent)
        return items[min(bisect_left(cdf, rng.random() * cdf[-1]), len(items) - 1)]

    def product(self, rng: random.Random, exponent: float) -> Product:
        """A catalogue product by popularity: rank r of the seeded order weighs ``1 / r**exponent``."""
        return self._zipf(self.state.products, exponent, rng)

    def category(self, rng: random.Random, exponent: float) -> str:
        """A category by popularity (Zipf over the categories' order, as :meth:`product`)."""
        return self._zipf(self.state.categories, exponent, rng)

    def deal(self, rng: random.Random) -> Product:
        """One of the flash sale's deals, uniformly; ``ValueError`` when the shop has none."""
        if not self.state.hot:
            raise ValueError("a flash-sale journey needs the seed's hot_products (none were seeded)")
        return rng.choice(self.state.hot)

    def card(self, rng: random.Random) -> str:
        """A shopper's card token, uniformly among the seeded ones."""
        return self.state.cards[rng.randrange(len(self.state.cards))]

    def new_user(self) -> str:
        """A new visitor's ID for one session: ``ec<run>-u`` and a uuid4 (unique across load processes)."""
        return f"ec{self.state.run}-u{uuid.uuid4().hex}"

    @property
    def checker(self) -> bool:
        """True for the load process that restocks the deals and runs the end-of-run checks (process 0)."""
        return self.streams.share[0] == 0

    @property
    def alone(self) -> bool:
        """True when this is the only load process (its answers are all the answers)."""
        return self.streams.share[1] == 1

    async def audit(self) -> inventory_pb2.AuditResponse:
        """One InventoryService.Audit (unrecorded), sent again on UNAVAILABLE or DEADLINE_EXCEEDED; raises its last
        error."""
        for attempt in range(1, self.params.check_attempts + 1):
            try:
                return await self.streams.call(INVENTORY, "Audit", inventory_pb2.AuditRequest(),
                                               timeout_s=self.params.check_timeout_s)
            except grpc.aio.AioRpcError as error:
                if error.code() not in AUDIT_RETRIED or attempt == self.params.check_attempts:
                    raise
                log.info("ecommerce: Audit answered %s, again in %.0f s", error.code().name, AUDIT_PAUSE_S)
                await self.sleep(AUDIT_PAUSE_S)
        raise AssertionError("unreachable")  # pragma: no cover

    async def restock_deals(self) -> None:
        """Restock each deal whose available units are below ``hot_stock`` back up to it (module docstring, 1)."""
        for deal in self.state.hot:
            try:
                stock = (await self.streams.call(INVENTORY, "GetStock",
                                                 inventory_pb2.GetStockRequest(product_id=deal.product_id))).stock
                missing = self.params.hot_stock - stock.available
                if missing > 0:
                    await self.streams.call(INVENTORY, "Restock", inventory_pb2.RestockRequest(
                        restock_id=f"{deal.product_id}-{uuid.uuid4().hex[:16]}", product_id=deal.product_id,
                        quantity=missing))
                    log.info("ecommerce: deal %s restocked with %d units to %d available", deal.product_id,
                             missing, self.params.hot_stock)
            except grpc.aio.AioRpcError as error:
                log.warning("ecommerce: restocking deal %s failed: %s %s", deal.product_id, error.code().name,
                            error.details())

    async def take_baseline(self) -> None:
        """At connect, in load process 0: the deals restocked, then the baseline audit (module docstring)."""
        if not self.checker:
            return
        if self.state.hot and self.params.restock_hot_at_connect:
            await self.restock_deals()
        if not self.params.baseline_audit:
            return
        try:
            response = await self.audit()
        except grpc.aio.AioRpcError as error:
            log.warning("ecommerce: the baseline Audit failed (%s %s): the end-of-run checks judge the inventory "
                        "as it is, not what this run changed", error.code().name, error.details())
            return
        self.baseline = Baseline({s.product_id: level_of(s) for s in response.stock},
                                 frozenset(response.violations))
        if response.violations:
            log.warning("ecommerce: the inventory has %d violations before the run (an earlier run's): not judged",
                        len(response.violations))
