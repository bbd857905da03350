"""The kitchens: each restaurant's queue of orders, in memory, without gRPC.

Seed 001 #13 (shared/seeds/001_58dfc580020147d2.txt line 38): "| 13 | Food Delivery | Regional dispatch, ML ETA,
adaptive telemetry, surge pricing | 10M orders/day, DoorDash/UberEats |". An order is not ready when it is placed: it
flows through its restaurant's kitchen, and a courier dispatched to arrive just in time must arrive when the food is
ready, not before. The model (a multi-server FIFO queue, one per restaurant):

- a kitchen prepares ``kitchen_slots`` orders at once (parallel cooks);
- an order of ``items`` items takes ``prep_s = (prep_base_s + prep_per_item_s × items) × jitter`` seconds once it has
  a slot, ``jitter`` being ``1 + prep_jitter × u``, ``u`` in [-1, 1) drawn from the order id (blake2b: the same
  order id always the same ``u``, across processes) — so ready times are not exact, and the order service's ETA
  model, which knows only the nominal times, must cope with ±``prep_jitter`` around them;
- it starts when the earliest slot frees (now, when one is free already): ``start = max(now, earliest free)``, and
  is ready at ``start + prep_s``; that slot is then busy until then. Orders take slots in arrival order.

Idempotent per order: the answer of each (restaurant id, order id) is remembered in an LRU of ``recent_orders``
entries (``cachetools.LRUCache``); a retry gets the same ready time and queues nothing. An order evicted from it (a
retry after ``recent_orders`` newer orders) would be queued again. The same order id at another restaurant is another
order.

Everything here is in memory: a restart forgets the kitchens' load (every kitchen restarts empty, so the next orders'
ready times are optimistic until the queues build up again) and the recent order ids (a retry after a restart queues
the order again). The order service stored the ready time it was given before the restart, so no order loses its
ready time; only the estimate of the queue is lost. Restaurants themselves are durable (:mod:`.store`).

A kitchen with no order left in it holds nothing: :meth:`Kitchens.sweep` (every ``sweep_interval_s``) drops finished
orders and idle kitchens and sets the kitchen gauges. Every method is synchronous (no await): on the event loop, each
call is atomic.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from cachetools import LRUCache

from . import metrics
from .settings import RestaurantsSettings
from .store import RestaurantRecord

_SCALE = float(1 << 64)


def jitter_factor(order_id: str, share: float) -> float:
    """The factor of ``order_id``'s preparation time: ``1 + share × u``, ``u`` in [-1, 1) from the blake2b hash of
    the order id (deterministic: the same order id always gets the same factor)."""
    if share == 0:
        return 1.0
    u = int.from_bytes(hashlib.blake2b(order_id.encode(), digest_size=8).digest(), "big") / _SCALE
    return 1.0 + share * (2.0 * u - 1.0)


def unix_ms(seconds: float) -> int:
    """Seconds since the Unix epoch as whole ms, rounded up (a ready time is never announced early)."""
    return math.ceil(seconds * 1000)


class Prepared(NamedTuple):
    """PrepareOrder's answer: ``ready_at_unix_ms``; ``repeated`` when it came from the memory of recent orders (a
    retry: nothing queued, ``wait_s`` and ``prep_s`` 0); else how long the order waits for a slot and its preparation
    time, seconds."""

    ready_at_unix_ms: int
    repeated: bool = False
    wait_s: float = 0.0
    prep_s: float = 0.0


class Outlook(NamedTuple):
    """A kitchen now: orders in it not yet ready, and when a new one-item order would be ready if it came now (ms since
    the Unix epoch; the nominal preparation time, no jitter)."""

    orders_preparing: int
    next_ready_at_unix_ms: int


@dataclass
class _Kitchen:
    """One restaurant's kitchen: ``slots``, a min-heap of the times (seconds since the epoch) the busy slots free;
    ``orders``, a min-heap of the ready times of the orders not yet ready."""

    slots: list[float] = field(default_factory=list)
    orders: list[float] = field(default_factory=list)

    def prune(self, now: float) -> None:
        """Free the slots whose order is ready by ``now`` and forget the orders ready by then."""
        slots, orders = self.slots, self.orders
        while slots and slots[0] <= now:
            heapq.heappop(slots)
        while orders and orders[0] <= now:
            heapq.heappop(orders)

    def start(self, now: float, kitchen_slots: int) -> float:
        """When an order coming ``now`` would start (after :meth:`prune`): now if a slot is free, else when the
        earliest one frees."""
        return now if len(self.slots) < kitchen_slots else self.slots[0]

    @property
    def idle(self) -> bool:
        return not self.slots and not self.orders


class Kitchens:
    """Every restaurant's kitchen queue. ``clock()`` is the time in seconds since the Unix epoch (injectable for
    tests)."""

    def __init__(self, settings: RestaurantsSettings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self._clock = clock
        self._kitchens: dict[str, _Kitchen] = {}
        #: (restaurant id, order id) → ready_at_unix_ms, the recent answers (bounded: ``recent_orders``).
        self._recent: LRUCache[tuple[str, str], int] = LRUCache(maxsize=settings.recent_orders)

    def __len__(self) -> int:
        """Kitchens with orders in them (or not yet swept)."""
        return len(self._kitchens)

    def prepare(self, restaurant: RestaurantRecord, order_id: str, items: int) -> Prepared:
        """Queue order ``order_id`` of ``items`` items (1 to 50, valid) in ``restaurant``'s kitchen; its ready time.
        The same ready time again for an order id already prepared there and still remembered."""
        key = (restaurant.restaurant_id, order_id)
        remembered = self._recent.get(key)
        if remembered is not None:
            metrics.ORDERS_REPEATED.inc()
            return Prepared(remembered, repeated=True)
        now = self._clock()
        kitchen = self._kitchens.get(restaurant.restaurant_id)
        if kitchen is None:
            kitchen = self._kitchens[restaurant.restaurant_id] = _Kitchen()
        kitchen.prune(now)
        start = kitchen.start(now, restaurant.kitchen_slots)
        prep_s = restaurant.prep_s(items) * jitter_factor(order_id, self.settings.prep_jitter)
        ready = start + prep_s
        if len(kitchen.slots) < restaurant.kitchen_slots:
            heapq.heappush(kitchen.slots, ready)
        else:
            heapq.heapreplace(kitchen.slots, ready)  # the earliest slot to free takes it
        heapq.heappush(kitchen.orders, ready)
        ready_ms = unix_ms(ready)
        self._recent[key] = ready_ms
        wait_s = start - now
        metrics.ORDERS_PREPARED.inc()
        metrics.KITCHEN_WAIT_SECONDS.observe(wait_s)
        metrics.PREP_SECONDS.observe(prep_s)
        return Prepared(ready_ms, False, wait_s, prep_s)

    def outlook(self, restaurant: RestaurantRecord) -> Outlook:
        """``restaurant``'s kitchen now: orders not yet ready, and the nominal ready time of a one-item order placed
        now (the smallest order; no jitter, which depends on an order id)."""
        now = self._clock()
        kitchen = self._kitchens.get(restaurant.restaurant_id)
        if kitchen is None:
            return Outlook(0, unix_ms(now + restaurant.prep_s(1)))
        kitchen.prune(now)
        start = kitchen.start(now, restaurant.kitchen_slots)
        return Outlook(len(kitchen.orders), unix_ms(start + restaurant.prep_s(1)))

    def sweep(self) -> tuple[int, int]:
        """Drop finished orders and idle kitchens; set and return (slots busy now, orders not yet ready), over every
        kitchen."""
        now = self._clock()
        busy = preparing = 0
        idle: list[str] = []
        for restaurant_id, kitchen in self._kitchens.items():
            kitchen.prune(now)
            if kitchen.idle:
                idle.append(restaurant_id)
            busy += len(kitchen.slots)  # after prune, every slot left frees later: it is preparing an order now
            preparing += len(kitchen.orders)
        for restaurant_id in idle:
            del self._kitchens[restaurant_id]
        metrics.KITCHEN_SLOTS_BUSY.set(busy)
        metrics.ORDERS_PREPARING.set(preparing)
        return busy, preparing
