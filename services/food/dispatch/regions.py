"""Regional dispatch: the city cut into H3 regions, one dispatcher task per region, each tick giving its due orders to
couriers, in batches when that saves courier time.

Seed 001 #13 (shared/seeds/001_58dfc580020147d2.txt line 38), "Food Delivery | Regional dispatch, ML ETA, adaptive
telemetry, surge pricing | 10M orders/day, DoorDash/UberEats". The pieces:

1. **Regions** (:class:`Region`): H3 cells at ``region_resolution`` (6 by default, about 36 km²). DispatchOrder
   (:meth:`RegionalDispatcher.dispatch`) puts an order in the queue of the region of its pickup point (a repeat, or
   an order finished moments ago, is ignored; more than ``max_queued`` orders in all: RESOURCE_EXHAUSTED). A region's
   dispatcher task starts with its first order and then ticks every ``tick_s``. Regions share no lock and no task: a
   slow AssignCourier in one region delays only that region's next orders. The one thing they share is the courier
   book (:mod:`.couriers`), whose check-and-reserve has no suspension point, so two regions never both pick one
   courier.
2. **Due orders**: an order is due when ``ready_at - now <= dispatch_lead_s`` (just-in-time dispatch: the courier
   should arrive as the food is ready, neither waiting at the kitchen nor keeping the food waiting; DoorDash
   dispatches ahead of readiness by about the approach time). Each tick takes the region's due orders oldest first
   (by ``placed_at``) and, for each (:meth:`RegionalDispatcher._step`):

   a. searches the AVAILABLE couriers around the restaurant (LocationService.FindNearbyDrivers: ``search_radius_m``
      doubling up to ``max_radius_m``, ``search_limit`` at a time; couriers dispatch knows to hold an assignment, with
      an AssignCourier in flight, or without an open ReceiveAssignments feed are left out, and the search asks once
      more for 100 when every courier it found was left out);
   b. with ``batching`` on, weighs every courier holding exactly one order not yet picked up whose restaurant is
      within ``batch_radius_m`` (:func:`.batching.decide`: the combined route against the separate trips, the second
      trip by the nearest free courier of step a) and joins the best batch (AssignCourier with the courier's
      ``batch_id``);
   c. otherwise (or when the join is refused) gives the order to the nearest free courier in a new batch
      (``bat-`` and 26 random characters).

   AssignCourier's answers: OK (the assignment goes on the courier's feed with every order of its batch so far);
   ABORTED or NOT_FOUND (the order is no longer PLACED: cancelled, or given elsewhere: dropped, never retried on
   another courier); FAILED_PRECONDITION (the courier holds another batch, or its batch was picked up: the next
   courier); anything else (UNAVAILABLE, DEADLINE_EXCEEDED: the outcome is unknown) makes the next tick retry the
   very same assignment first, which AssignCourier answers OK if the first one went through (its retry rule), so a
   lost answer never leaves a courier holding an order it was not told about.
3. **Release**: an order still without a courier ``max_dispatch_s`` after it became due (and after at least one
   attempt) is released: ReleaseOrder, CANCEL_REASON_NO_COURIER.
4. **Recovery** (:meth:`RegionalDispatcher.sweep`): at start and every ``sweep_interval_s``, ListOpenOrders, and
   every PLACED order not held is queued (a restart of dispatch, or a DispatchOrder lost while it was down). The
   first sweep that lists (until one succeeds) also asks for the ASSIGNED orders not yet picked up
   (``include_assigned``) and rebuilds each courier's holding from them, not notified (:mod:`.couriers`): an
   AssignCourier committed just before a restart may never have reached the courier (its answer, or the feed
   message, lost with the process). The courier's reconnected feed gets the whole batch first
   (:meth:`RegionalDispatcher.reconnected`; a feed already open gets it at once), and until then the courier is not
   offered as free. Batching starts empty.

GetOrder is not needed: AssignCourier's compare-and-set and retry rule say everything dispatch must know about an
order, and the location service's AVAILABLE status says when a courier is done.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import logging
import math
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import h3
from cachetools import TTLCache
from sortedcontainers import SortedKeyList

from casemesh.food.v1 import dispatch_pb2, food_pb2
from casemesh.rides.v1 import location_pb2

from ...rides.contract import MAX_EXCLUDED_DRIVERS, MAX_NEARBY_LIMIT
from ...runtime.errors import Aborted, FailedPrecondition, NotFound, ResourceExhausted
from ..contract import BATCH_ID_PREFIX, MAX_OPEN_ORDERS_LIMIT
from . import batching, metrics
from .couriers import CourierBook, Holding
from .feeds import AssignmentFeeds
from .settings import FoodDispatchSettings

log = logging.getLogger("casemesh.food.dispatch")

#: Outcomes of one assignment attempt.
DONE = "done"  # assigned
DROPPED = "dropped"  # the order is no longer PLACED (or unknown): out of the queue
REFUSED = "refused"  # FAILED_PRECONDITION (or the courier was taken meanwhile): try another courier
RETRY = "retry"  # the order service could not answer: next tick


def new_batch_id() -> str:
    """``bat-`` and 26 random characters of base32 (A-Z, 2-7): 128 bits."""
    return BATCH_ID_PREFIX + base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=")


class NearbyCouriers(Protocol):
    """LocationService.FindNearbyDrivers (any exception: the search failed)."""

    async def find(self, lat_deg: float, lng_deg: float, radius_m: float, limit: int,
                   exclude: list[str]) -> list[location_pb2.NearbyDriver]: ...


class OrdersApi(Protocol):
    """The OrderService calls dispatch makes: ABORTED, FAILED_PRECONDITION and NOT_FOUND raised as the runtime's
    :class:`Aborted`, :class:`FailedPrecondition` and :class:`NotFound`; anything else raised as it came."""

    async def assign(self, order_ids: list[str], courier_id: str, batch_id: str) -> list[food_pb2.Order]: ...

    async def release(self, order_id: str) -> food_pb2.Order: ...

    async def open_orders(self, limit: int, include_assigned: bool = False) -> list[food_pb2.Order]: ...


@dataclass(frozen=True)
class Attempt:
    """An AssignCourier whose outcome is unknown, retried as it was: ``join`` an existing batch or a new one
    (``arrive_s``: the courier's estimated arrival at the restaurant)."""

    courier_id: str
    batch_id: str
    join: bool
    arrive_s: float = 0.0


@dataclass(eq=False)
class QueuedOrder:
    """An order in its region's queue: ``due_s`` when it became (or becomes) due, seconds on the dispatcher's clock;
    ``attempts`` dispatch steps taken; ``pending`` an assignment to retry first."""

    order: food_pb2.Order
    region: str
    due_s: float
    attempts: int = 0
    pending: Attempt | None = None

    @property
    def order_id(self) -> str:
        return self.order.order_id


@dataclass(frozen=True)
class Candidate:
    """A free courier found near a restaurant: its id, position, and seconds to reach the restaurant."""

    courier_id: str
    position: location_pb2.NearbyDriver
    approach_s: float


def _due_key(queued: QueuedOrder) -> tuple[float, str]:
    return queued.due_s, queued.order_id


@dataclass(eq=False)
class Region:
    """One H3 cell's queue (by due time) and its dispatcher task."""

    cell: str
    queue: SortedKeyList = field(default_factory=lambda: SortedKeyList(key=_due_key))
    task: asyncio.Task[None] | None = None

    def due(self, now_s: float) -> list[QueuedOrder]:
        """The orders due at ``now_s``, oldest (``placed_at``) first."""
        due = list(self.queue.irange_key(max_key=(now_s, "\U0010ffff")))
        due.sort(key=lambda q: (q.order.placed_at_unix_ms, q.order_id))
        return due


def _point(message) -> tuple[float, float]:
    return message.lat_deg, message.lng_deg


def _job(order: food_pb2.Order) -> batching.Job:
    """The order as batching weighs it; an order without a promised time (0) has no promise to keep."""
    promised_s = order.promised_at_unix_ms / 1000 if order.promised_at_unix_ms else math.inf
    return batching.Job(_point(order.pickup), _point(order.dropoff), order.ready_at_unix_ms / 1000, promised_s)


class RegionalDispatcher:
    """Orders queued by region, the regions' dispatcher tasks, the courier book, and the couriers' feeds.

    ``orders`` and ``location`` are the other services (fakes in tests). ``clock()`` is the time in seconds since the
    Unix epoch (the orders' ``ready_at`` and ``placed_at`` are on it); the ticks' pauses run on the event loop.
    ``run_regions=False`` starts no dispatcher task: tests call :meth:`tick` themselves.
    """

    def __init__(self, settings: FoodDispatchSettings, orders: OrdersApi, location: NearbyCouriers,
                 feeds: AssignmentFeeds, clock: Callable[[], float] = time.time, *, run_regions: bool = True) -> None:
        self.settings = settings
        self.feeds = feeds
        self.couriers = CourierBook()
        self.travel = batching.TravelModel(settings.courier_speed_mps, settings.detour_factor, settings.stop_s)
        self._orders = orders
        self._location = location
        self._clock = clock
        self._run_regions = run_regions
        self._regions: dict[str, Region] = {}
        self._queued: dict[str, QueuedOrder] = {}
        # Orders finished moments ago: a sweep's list made before they were assigned must not queue them again.
        self._finished: TTLCache[str, bool] = TTLCache(settings.max_queued, max(30.0, 3 * settings.sweep_interval_s),
                                                       timer=clock)
        self._closing = False
        self._sweep_failing = False
        self._search_failing = False
        self._recovered = False  # a sweep rebuilt the couriers' holdings from the ASSIGNED orders
        # This process's gauges describe this dispatcher from now on (an earlier one in the process may have left them
        # set: they are set on change only).
        for gauge in (metrics.QUEUED, metrics.REGIONS, metrics.HOLDING, metrics.FEEDS):
            gauge.set(0)

    # -- queries ----------------------------------------------------------------------------------------------------

    def region_of(self, lat_deg: float, lng_deg: float) -> str:
        """The H3 cell (``region_resolution``) of a point: its region."""
        return h3.latlng_to_cell(lat_deg, lng_deg, self.settings.region_resolution)

    def queued(self, order_id: str) -> QueuedOrder | None:
        """The order while it is queued (due or not, an assignment in flight included)."""
        return self._queued.get(order_id)

    def regions(self) -> dict[str, Region]:
        """The regions with orders so far, by cell."""
        return dict(self._regions)

    def reconnected(self, courier_id: str) -> dispatch_pb2.ReceiveAssignmentsResponse | None:
        """The courier's batch as dispatch knows it, if any: what its new ReceiveAssignments sends first (a reconnect;
        the courier counts as told of it from now)."""
        holding = self.couriers.notified(courier_id, self._clock())
        if holding is None:
            return None
        return dispatch_pb2.ReceiveAssignmentsResponse(batch_id=holding.batch_id, orders=holding.orders)

    # -- queueing ---------------------------------------------------------------------------------------------------

    def dispatch(self, order: food_pb2.Order) -> bool:
        """Queue ``order`` (validated: an id and a pickup point) in its region; False when it is queued already,
        finished moments ago, or dispatch is shutting down. :class:`ResourceExhausted` at ``max_queued``."""
        order_id = order.order_id
        if self._closing or order_id in self._queued or order_id in self._finished:
            return False
        if len(self._queued) >= self.settings.max_queued:
            raise ResourceExhausted(f"food-dispatch holds {self.settings.max_queued:,} queued orders already")
        cell = self.region_of(order.pickup.lat_deg, order.pickup.lng_deg)
        due_s = max(order.placed_at_unix_ms / 1000, order.ready_at_unix_ms / 1000 - self.settings.dispatch_lead_s)
        queued = self._queued[order_id] = QueuedOrder(order, cell, due_s)
        region = self._regions.get(cell)
        if region is None:
            region = self._regions[cell] = Region(cell)
            if self._run_regions:
                # A context of its own: the task outlives the DispatchOrder (or sweep) that began it, whose deadline
                # (propagated through the runtime's context variables) must not bound its calls.
                region.task = asyncio.create_task(self._run(region), name=f"food-dispatch-region-{cell}",
                                                  context=contextvars.Context())
            metrics.REGIONS.set(len(self._regions))
        region.queue.add(queued)
        metrics.QUEUED.set(len(self._queued))
        return True

    def _finish(self, queued: QueuedOrder) -> None:
        """Take ``queued`` out of its region's queue (assigned, dropped or released)."""
        if self._queued.get(queued.order_id) is queued:
            del self._queued[queued.order_id]
            self._regions[queued.region].queue.discard(queued)
            self._finished[queued.order_id] = True
            metrics.QUEUED.set(len(self._queued))

    # -- recovery ---------------------------------------------------------------------------------------------------

    async def sweep(self) -> int:
        """Queue every PLACED order of the order service that dispatch does not hold; returns how many. Until one
        sweep has listed, also rebuild the couriers' holdings from the ASSIGNED orders (:meth:`_recover`). Also
        forgets holdings older than ``holding_ttl_s``. A failure to list is logged (when sweeps start failing) and
        counted; never raised."""
        self.couriers.prune(self._clock() - self.settings.holding_ttl_s)
        recovering = not self._recovered
        try:
            orders = await self._orders.open_orders(MAX_OPEN_ORDERS_LIMIT, recovering)
        except Exception as error:  # noqa: BLE001 - the order service down must not stop dispatch: next sweep
            metrics.SWEEP_ERRORS.inc()
            if not self._sweep_failing:
                self._sweep_failing = True
                log.warning("food-dispatch: the sweep could not list open orders (%s); retrying every %.0f s",
                            error, self.settings.sweep_interval_s)
            return 0
        self._sweep_failing = False
        if recovering:
            self._recovered = True
            self._recover([o for o in orders if o.state == food_pb2.ORDER_STATE_ASSIGNED])
        recovered = 0
        for order in orders:
            if order.state != food_pb2.ORDER_STATE_PLACED or not order.order_id or not order.HasField("pickup"):
                continue
            try:
                recovered += self.dispatch(order)
            except ResourceExhausted:
                break
        if recovered:
            metrics.SWEEP_RECOVERED.inc(recovered)
            log.info("food-dispatch: the sweep queued %d orders", recovered)
        return recovered

    def _recover(self, assigned: list[food_pb2.Order]) -> int:
        """Rebuild each courier's holding from its ASSIGNED orders (per courier and batch, in the order they were
        assigned), not notified, and send the batch at once on a feed already open; returns how many holdings
        changed."""
        batches: dict[tuple[str, str], list[food_pb2.Order]] = {}
        for order in assigned:
            if order.order_id and order.courier_id and order.batch_id:
                batches.setdefault((order.courier_id, order.batch_id), []).append(order)
        now_s = self._clock()
        changed = 0
        for (courier_id, batch_id), members in batches.items():
            members.sort(key=lambda o: (o.assigned_at_unix_ms, o.placed_at_unix_ms, o.order_id))
            holding = self.couriers.recovered(courier_id, batch_id, members, now_s)
            if holding is None:
                continue
            changed += 1
            holding.notified = self.feeds.send(courier_id, dispatch_pb2.ReceiveAssignmentsResponse(
                batch_id=holding.batch_id, orders=holding.orders))
        if changed:
            log.info("food-dispatch: recovered the batches of %d couriers from the order service", changed)
        return changed

    async def run_sweeps(self) -> None:
        """:meth:`sweep` at once, then every ``sweep_interval_s``, until cancelled."""
        while True:
            await self.sweep()
            await asyncio.sleep(self.settings.sweep_interval_s)

    # -- a region's dispatcher --------------------------------------------------------------------------------------

    async def _run(self, region: Region) -> None:
        while True:
            started = time.perf_counter()
            try:
                await self.tick(region.cell)
            except Exception:  # noqa: BLE001 - one tick's failure must not stop the region
                log.exception("food-dispatch: a tick of region %s failed", region.cell)
            metrics.TICK_SECONDS.observe(time.perf_counter() - started)
            await asyncio.sleep(self.settings.tick_s)

    async def tick(self, cell: str) -> int:
        """One pass of region ``cell``'s dispatcher over its due orders, oldest first; returns how many were taken
        out of the queue (assigned, dropped or released). A failure of one order is logged; the others go on."""
        region = self._regions.get(cell)
        if region is None:
            return 0
        finished = 0
        for queued in region.due(self._clock()):
            if self._closing:
                break
            if self._queued.get(queued.order_id) is not queued:
                continue
            try:
                await self._step(queued)
            except Exception as error:  # noqa: BLE001 - one order's failure must not touch the others
                log.warning("food-dispatch: dispatching order %s failed (%s: %s); next tick", queued.order_id,
                            type(error).__name__, error)
            if self._queued.get(queued.order_id) is not queued:
                finished += 1
        return finished

    async def _step(self, queued: QueuedOrder) -> None:
        """One dispatch step of a due order: a pending assignment retried, else a release past ``max_dispatch_s``,
        else a search, a batch, the nearest free courier."""
        s = self.settings
        if queued.pending is not None:
            pending = queued.pending
            if self.couriers.reserved(pending.courier_id):
                return  # another region's call for that courier is in flight: the retry waits a tick
            outcome = await self._assign(queued, pending.courier_id, pending.batch_id, pending.join, pending.arrive_s)
            if outcome != REFUSED:
                return
        now_s = self._clock()
        if queued.attempts >= 1 and now_s >= queued.due_s + s.max_dispatch_s:
            await self._release(queued)
            return
        queued.attempts += 1
        order = queued.order
        try:
            free = await self._search(order)
        except Exception as error:  # noqa: BLE001 - the location service down: next tick
            self._search_failed(error)
            return
        if s.batching and order.HasField("dropoff"):
            chosen = self._best_batch(order, free, self._clock())
            if chosen is not None:
                outcome = await self._assign(queued, chosen.courier_id, chosen.batch_id, True)
                if outcome != REFUSED:
                    return
        for candidate in free:
            now_s = self._clock()
            if not self._free(candidate.courier_id, candidate.position):  # taken meanwhile (another region)
                continue
            outcome = await self._assign(queued, candidate.courier_id, new_batch_id(), False,
                                         now_s + candidate.approach_s)
            if outcome != REFUSED:
                return

    # -- searching --------------------------------------------------------------------------------------------------

    def _free(self, courier_id: str, found: location_pb2.NearbyDriver) -> bool:
        """May the courier get a new batch: an open feed, no call in flight, and no assignment dispatch knows of
        (or the location service shows it AVAILABLE ``free_grace_s`` after it: done)."""
        if not self.feeds.has(courier_id) or self.couriers.reserved(courier_id):
            return False
        return self.couriers.free_if_done(courier_id, found.position.received_at_unix_ms / 1000,
                                          self.settings.free_grace_s)

    async def _find(self, order: food_pb2.Order, radius_m: float, limit: int,
                    exclude: list[str]) -> list[location_pb2.NearbyDriver]:
        started = time.perf_counter()
        try:
            found = await self._location.find(order.pickup.lat_deg, order.pickup.lng_deg, radius_m, limit,
                                              exclude[:MAX_EXCLUDED_DRIVERS])
        finally:
            metrics.SEARCH_SECONDS.observe(time.perf_counter() - started)
        self._search_failing = False
        return found

    async def _search(self, order: food_pb2.Order) -> list[Candidate]:
        """Free couriers near the order's restaurant, nearest first: the radius doubles from ``search_radius_m`` up
        to ``max_radius_m`` until one is found."""
        s = self.settings
        pickup = _point(order.pickup)
        radius_m = s.search_radius_m
        while True:
            found = await self._find(order, radius_m, s.search_limit, [])
            free = [d for d in found if self._free(d.position.driver_id, d)]
            if not free and len(found) >= s.search_limit and s.search_limit < MAX_NEARBY_LIMIT:
                skipped = [d.position.driver_id for d in found]
                found = await self._find(order, radius_m, MAX_NEARBY_LIMIT, skipped)
                free = [d for d in found if self._free(d.position.driver_id, d)]
            if free or radius_m >= s.max_radius_m:
                return [Candidate(d.position.driver_id, d,
                                  self.travel.travel_s(_point(d.position.point), pickup)) for d in free]
            radius_m = min(radius_m * 2, s.max_radius_m)

    def _search_failed(self, error: Exception) -> None:
        metrics.SEARCH_ERRORS.inc()
        if not self._search_failing:
            self._search_failing = True
            log.warning("food-dispatch: FindNearbyDrivers failed (%s); retrying every tick", error)

    # -- batching ---------------------------------------------------------------------------------------------------

    def _best_batch(self, order: food_pb2.Order, free: list[Candidate], now_s: float) -> Holding | None:
        """The courier whose batch the order should join (:func:`.batching.decide`, the largest saving), if any."""
        s = self.settings
        new = _job(order)
        free_approach_s = free[0].approach_s if free else None
        best: tuple[Holding, batching.Decision] | None = None
        for holding in self.couriers.candidates():
            if now_s > holding.pickup_s:
                self.couriers.close_batch(holding.courier_id)  # picked up by now (estimated)
                continue
            held = holding.orders[0]
            if not self.feeds.has(holding.courier_id) or not held.HasField("dropoff"):
                continue  # the courier could not be told; or the held order cannot be routed
            held_job = _job(held)
            decision = batching.decide(self.travel, now_s, held_job, max(0.0, holding.arrive_s - now_s), new,
                                       free_approach_s, batch_radius_m=s.batch_radius_m,
                                       max_delay_s=s.max_batch_delay_s)
            if decision.result == batching.FAR:
                continue
            metrics.batch_evaluation(decision.result)
            if decision.batch and (best is None or decision.saved_s > best[1].saved_s):
                best = (holding, decision)
        if best is None:
            return None
        if math.isfinite(best[1].saved_s):
            metrics.SECONDS_SAVED.inc(best[1].saved_s)
        return best[0]

    # -- the order service ------------------------------------------------------------------------------------------

    async def _assign(self, queued: QueuedOrder, courier_id: str, batch_id: str, join: bool,
                      arrive_s: float = 0.0) -> str:
        """AssignCourier(the order, ``courier_id``, ``batch_id``) and what follows from its answer."""
        if not self.couriers.reserve(courier_id):
            return REFUSED  # another region's call for this courier is in flight
        queued.pending = Attempt(courier_id, batch_id, join, arrive_s)
        try:
            assigned = await self._orders.assign([queued.order_id], courier_id, batch_id)
        except (Aborted, NotFound):
            queued.pending = None
            metrics.decision("aborted")
            self._finish(queued)
            return DROPPED
        except FailedPrecondition:
            queued.pending = None
            metrics.decision("refused")
            self.couriers.refused(courier_id, self._clock())
            return REFUSED
        except Exception as error:  # noqa: BLE001 - UNAVAILABLE, DEADLINE_EXCEEDED: the same call next tick
            metrics.decision("unavailable")
            log.info("food-dispatch: AssignCourier of order %s failed (%s); retried next tick", queued.order_id, error)
            return RETRY
        finally:
            self.couriers.unreserve(courier_id)
        queued.pending = None
        now_s = self._clock()
        order = assigned[0] if assigned else queued.order
        holding = self.couriers.joined(courier_id, order) if join else None
        if holding is None:  # a new batch (or a join of a batch dispatch forgot: it holds this order at least)
            pickup_s = max(arrive_s, order.ready_at_unix_ms / 1000)
            holding = self.couriers.assigned(courier_id, batch_id, order, now_s, arrive_s, pickup_s)
            if join:
                self.couriers.close_batch(courier_id)
        metrics.decision("batched" if join else "assigned_new")
        metrics.DECISION_SECONDS.observe(max(0.0, now_s - queued.due_s))
        holding.notified = self.feeds.send(courier_id, dispatch_pb2.ReceiveAssignmentsResponse(
            batch_id=batch_id, orders=holding.orders))
        if not holding.notified:  # the courier gets it when its app reconnects
            metrics.FEED_DROPS.inc()
        self._finish(queued)
        return DONE

    async def _release(self, queued: QueuedOrder) -> None:
        """ReleaseOrder (NO_COURIER); the order leaves the queue unless the order service could not answer."""
        try:
            released = await self._orders.release(queued.order_id)
        except (FailedPrecondition, NotFound, Aborted):
            metrics.decision("aborted")  # a courier has it (or the order is gone): nothing to release
            self._finish(queued)
            return
        except Exception as error:  # noqa: BLE001 - next tick
            metrics.decision("unavailable")
            log.info("food-dispatch: ReleaseOrder of order %s failed (%s); retried next tick", queued.order_id, error)
            return
        metrics.decision("released" if released.cancel_reason == food_pb2.CANCEL_REASON_NO_COURIER else "aborted")
        self._finish(queued)

    # -- shutdown ---------------------------------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop every region's dispatcher (the queued orders stay PLACED: the next dispatch's sweep queues them)."""
        self._closing = True
        tasks = [r.task for r in self._regions.values() if r.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
