"""The courier population: online for the whole run, reporting positions, receiving assignments, driving them.

Couriers are drivers of the ride-sharing location service (food.proto: "a courier's id is its driver id"). Each
courier of this load process (``state.couriers[index::count]`` with ``--workers``:
:attr:`casemesh.harness.streams.Streams.share`), named ``<seeded id>-<session>`` (a random suffix per connect),
holds two streams, each reconnected after 100 ms doubling to 2 s when it breaks (a service restart):

- a casemesh.rides.v1.LocationService.ReportLocations **client stream**: its position, heading and
  ``sent_at_unix_ms``, with status AVAILABLE while it holds no order and BUSY while it holds one, and one report at
  once when that changes. **Adaptive telemetry** (seed 001 #13, shared/seeds/001_58dfc580020147d2.txt line 38): a
  courier holding no order reports every ``ping_interval_s`` (4 s: dispatch only needs to know roughly where free
  couriers are), one holding an order every ``busy_ping_interval_s`` (2 s: its customer watches it on the map). The
  first report of each connection goes out at once, the next after a random part of the interval (spreading the
  population's reports). At the end of the run it reports OFFLINE and half-closes;
- a casemesh.food.v1.FoodDispatchService.ReceiveAssignments **server stream**: its assignments, each a batch id and
  every order of the batch so far, in the order to pick them up.

Between jobs a courier cruises by random-waypoint mobility (:mod:`.city`) at ``speed_kmh`` x ``time_scale`` on roads
``detour_factor`` times longer than the straight line (:attr:`.seeding.SeedParams.straight_mps`). On an assignment it
plans its route (:func:`plan_route`): the restaurants in dispatch's pickup order, then the drop-offs,
nearest first from where it is (a greedy nearest-neighbour tour); an order joining its batch while it drives to a
pickup goes into the route at once (the leg being driven is cut short and the route planned again from where the
courier is). At a restaurant it waits until the order's ``ready_at`` if it is early, loses an exponential
``pickup_handoff_s`` / ``time_scale`` (the counter), then UpdateOrder PICK_UP; at a door it loses an exponential
``dropoff_handoff_s`` / ``time_scale`` (parking, the stairs), then UpdateOrder DELIVER. UNAVAILABLE and other
transient codes are retried (the order service restarting); a PICK_UP refused FAILED_PRECONDITION because the customer
cancelled drops the order from the route.

The population's calls are its own (unrecorded per RPC); it records:

- ``food_wait``: one sample per pickup, at the courier's arrival at the restaurant: how long the food had been ready
  (arrival − ``ready_at``, 0 when the courier came first and waited), code OK. Just-in-time dispatch sends a courier
  so that it arrives as the food is ready: this is what it misses by (a courier sent late, a batch's detour, a stale
  position);
- ``courier_utilisation``: every ``utilisation_interval_s`` while customers are arriving (an order journey started
  within the last :data:`ARRIVING_S` seconds), one sample per courier of this process, code ``BUSY`` when it holds
  an order and ``IDLE`` when it does not (latency 0): the share of BUSY samples is the fleet's time-sampled
  utilisation under load. The run's drain, when couriers only finish the last orders, is left out (and the warm-up,
  as every measure's); the first seconds of the measured window still hold the ramp of a cold start (the first
  orders are not due before their food is nearly ready). The time-weighted share from the load's start to the last
  arrival (:meth:`Fleet.utilisation_under_load`) is logged at the end;
- ``single_dispatch`` through :class:`~.invariants.Dispatches` (assignments on the feeds, PERMISSION_DENIED pickups).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import random
import secrets
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

import grpc

from casemesh.common.v1 import geo_pb2
from casemesh.food.v1 import dispatch_pb2, food_pb2, orders_pb2
from casemesh.rides.v1 import location_pb2, rides_pb2

from .city import City, Leg, Point, distance_m, leg
from .invariants import SINGLE_DISPATCH, Dispatches
from .seeding import DISPATCH, LOCATION, ORDERS, SeedParams, State

log = logging.getLogger("casemesh.workloads.food")

FOOD_WAIT = "food_wait"
COURIER_UTILISATION = "courier_utilisation"
OK = "OK"
#: ``courier_utilisation`` codes.
BUSY = "BUSY"
IDLE = "IDLE"
#: Seconds after a customer's arrival during which the fleet counts as under load (``courier_utilisation``).
ARRIVING_S = 5.0
#: Kinds of route stop.
PICKUP = "pickup"
DROPOFF = "dropoff"

#: The streams' deadline: longer than any run (they end when the courier goes offline, not by a deadline).
STREAM_TIMEOUT_S = 7 * 24 * 3600.0
RECONNECT_BASE_S = 0.1
RECONNECT_MAX_S = 2.0
#: Codes after which a call is tried again: the service is restarting or overloaded, the request may not have applied.
TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                       grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL})
#: Codes that end a courier's stream for good (a bug of the workload or a refusal that retrying cannot change).
FATAL = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED,
                   grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNIMPLEMENTED})
#: Order states in which the courier has the food, or has delivered it.
PICKED_UP_STATES = frozenset({food_pb2.ORDER_STATE_PICKED_UP, food_pb2.ORDER_STATE_DELIVERED})


def backoff_s(failures: int) -> float:
    """Pause before the next attempt after ``failures`` failures in a row: 100 ms doubling up to 2 s."""
    return min(RECONNECT_BASE_S * 2 ** min(max(failures, 1) - 1, 10), RECONNECT_MAX_S)


def latlng(point: Point) -> geo_pb2.LatLng:
    """A point as the contract's LatLng."""
    return geo_pb2.LatLng(lat_deg=point[0], lng_deg=point[1])


def point_of(value: geo_pb2.LatLng) -> Point:
    """The contract's LatLng as a point."""
    return (value.lat_deg, value.lng_deg)


@dataclass
class Job:
    """One order a courier holds: where to fetch it and take it, when it is ready, and its place in the pickup order
    (``rank``: the batch's arrival at this courier, then its index in dispatch's list)."""

    order_id: str
    batch_id: str
    pickup: Point
    dropoff: Point
    ready_at_unix_ms: int
    rank: tuple[int, int]
    picked_up: bool = False


class Stop(NamedTuple):
    """A stop of a route: ``kind`` (:data:`PICKUP` or :data:`DROPOFF`), the order and the point."""

    kind: str
    order_id: str
    point: Point


def plan_route(position: Point, jobs: Iterable[Job]) -> list[Stop]:
    """The route of a courier at ``position`` holding ``jobs``: every order not yet picked up in pickup order
    (``rank``), then every drop-off, the nearest to where the courier then is first (greedy nearest neighbour; ties
    in ``jobs``' order)."""
    jobs = list(jobs)
    stops = [Stop(PICKUP, j.order_id, j.pickup) for j in sorted((j for j in jobs if not j.picked_up), key=lambda j: j.rank)]
    here = stops[-1].point if stops else position
    left = list(jobs)
    while left:
        nearest = min(left, key=lambda j: distance_m(here, j.dropoff))
        left.remove(nearest)
        stops.append(Stop(DROPOFF, nearest.order_id, nearest.dropoff))
        here = nearest.dropoff
    return stops


class Courier:
    """One courier: its movement, its two streams, its assignments and its route (module docstring)."""

    def __init__(self, courier_id: str, fleet: Fleet, rng: random.Random):
        self.id = courier_id
        self.fleet = fleet
        self.params = fleet.params
        self.city: City = fleet.city
        self.rng = rng
        now = fleet.clock()
        self.leg: Leg = leg(self.city, self.city.uniform(rng), self.city.uniform(rng), now, self.params.straight_mps)
        #: Orders held (assigned, not yet delivered nor dropped), by order id, in the order they came.
        self.jobs: dict[str, Job] = {}
        #: Orders this courier is done with (delivered, or dropped): a feed's replay does not bring them back.
        self.finished: set[str] = set()
        self._batches: dict[str, int] = {}
        self._batch_seq = itertools.count()
        self.route_changed = asyncio.Event()
        self.wake = asyncio.Event()
        self.busy_since: float | None = None
        self.busy_s = 0.0
        self.reports = 0
        self.report_sessions = 0
        self.feed_sessions = 0
        self.errors: Counter[str] = Counter()
        self.tasks: set[asyncio.Task] = set()
        self.work_task: asyncio.Task | None = None
        self.feed_call: Any = None

    # movement -----------------------------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """True while the courier holds an order."""
        return bool(self.jobs)

    def position(self, now: float) -> Point:
        """Where the courier is at clock instant ``now``; a free courier past its waypoint heads for the next one."""
        while not self.busy and now >= self.leg.arrives_s:
            self.leg = leg(self.city, self.leg.end, self.city.uniform(self.rng), self.leg.arrives_s, self.params.straight_mps)
        return self.leg.position(now)

    def busy_time(self, now: float) -> float:
        """Clock seconds this courier has held an order since it came online, up to ``now``."""
        return self.busy_s + (now - self.busy_since if self.busy_since is not None else 0.0)

    def _held_changed(self) -> None:
        """Account busy time and report the status at once after ``jobs`` went from empty to not, or back."""
        now = self.fleet.clock()
        if self.jobs and self.busy_since is None:
            self.busy_since = now
            self.wake.set()
        elif not self.jobs and self.busy_since is not None:
            self.busy_s += now - self.busy_since
            self.busy_since = None
            self.wake.set()

    def frame(self, status: int | None = None) -> location_pb2.ReportLocationsRequest:
        """A position report of now."""
        now = self.fleet.clock()
        if status is None:
            status = rides_pb2.DRIVER_STATUS_BUSY if self.busy else rides_pb2.DRIVER_STATUS_AVAILABLE
        point = self.position(now)  # first: it may start the next leg, whose heading goes with it
        return location_pb2.ReportLocationsRequest(
            driver_id=self.id, point=latlng(point), status=status, heading_deg=self.leg.heading_deg,
            sent_at_unix_ms=self.fleet.streams.wall_ns(now) // 1_000_000)

    def interval_s(self) -> float:
        """Seconds to the next report: adaptive telemetry, shorter while the courier holds an order."""
        return self.params.busy_ping_interval_s if self.busy else self.params.ping_interval_s

    # the location stream ------------------------------------------------------------------------------------------

    async def frames(self) -> Any:
        """One connection's reports: now, then after a random part of the interval, then every interval (adapted to
        the courier's status) or at a status change; OFFLINE and the half-close once the fleet closes."""
        self.report_sessions += 1
        wait = self.rng.uniform(0, self.interval_s())
        while not self.fleet.closing:
            self.reports += 1
            yield self.frame()
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), wait)
            except TimeoutError:
                pass
            wait = self.interval_s()
        yield self.frame(rides_pb2.DRIVER_STATUS_OFFLINE)

    async def report(self) -> None:
        """Hold ReportLocations until the fleet closes, reconnecting after failures."""
        failures = 0
        while not self.fleet.closing:
            before = self.reports
            try:
                await self.fleet.streams.call(LOCATION, "ReportLocations", self.frames(), timeout_s=STREAM_TIMEOUT_S)
                if self.fleet.closing:
                    return
                self.errors["ReportLocations OK"] += 1  # ended by the server without being asked: connect again
            except grpc.aio.AioRpcError as error:
                if self.fleet.closing:
                    return
                self.errors[f"ReportLocations {error.code().name}"] += 1
                log.info("%s: ReportLocations ended %s: %s", self.id, error.code().name, error.details())
                if error.code() in FATAL:
                    log.warning("%s: ReportLocations refused %s: the courier stops reporting", self.id, error.code().name)
                    return
            failures = 1 if self.reports - before > 1 else failures + 1
            await asyncio.sleep(backoff_s(failures))

    # the assignment feed ------------------------------------------------------------------------------------------

    async def feed(self) -> None:
        """Hold ReceiveAssignments until the fleet closes, reconnecting after failures; each assignment handled at
        once."""
        failures = 0
        request = dispatch_pb2.ReceiveAssignmentsRequest(courier_id=self.id)
        while not self.fleet.closing:
            call = self.feed_call = self.fleet.streams.server_stream(DISPATCH, "ReceiveAssignments", request)
            self.feed_sessions += 1
            try:
                async for event in call:
                    failures = 0
                    self.assignment(event)
                self.errors["ReceiveAssignments OK"] += 1
            except grpc.aio.AioRpcError as error:
                if self.fleet.closing:
                    return
                self.errors[f"ReceiveAssignments {error.code().name}"] += 1
                log.info("%s: ReceiveAssignments ended %s: %s", self.id, error.code().name, error.details())
                if error.code() in FATAL:
                    log.warning("%s: ReceiveAssignments refused %s: the courier takes no more orders", self.id,
                                error.code().name)
                    return
            except asyncio.CancelledError:
                call.cancel()
                raise
            finally:
                self.feed_call = None
            failures += 1
            await asyncio.sleep(backoff_s(failures))

    def assignment(self, event: dispatch_pb2.ReceiveAssignmentsResponse) -> None:
        """A batch, or an order joining it: checked (single dispatch), new orders added to the route (pickup order as
        dispatch gives it), the courier BUSY, its work started."""
        batch_id = event.batch_id
        self.fleet.checker.assigned(self.id, batch_id, [order.order_id for order in event.orders])
        seq = self._batches.get(batch_id)
        if seq is None:
            seq = self._batches[batch_id] = next(self._batch_seq)
            others = [job.order_id for job in self.jobs.values() if job.batch_id != batch_id]
            if others:
                self.spawn(self.check_overlap(batch_id, others), f"overlap-{batch_id}")
        added = changed = False
        for index, order in enumerate(event.orders):
            if order.order_id in self.finished:
                continue
            job = self.jobs.get(order.order_id)
            if job is None:
                self.jobs[order.order_id] = Job(
                    order_id=order.order_id, batch_id=batch_id, pickup=point_of(order.pickup),
                    dropoff=point_of(order.dropoff), ready_at_unix_ms=order.ready_at_unix_ms, rank=(seq, index),
                    picked_up=order.state in PICKED_UP_STATES)
                added = True
            elif job.rank != (seq, index):
                job.rank = (seq, index)  # dispatch changed the pickup order
                changed = True
        if added:
            self._held_changed()
        if added or changed:
            self.route_changed.set()
        if self.jobs and (self.work_task is None or self.work_task.done()):
            self.work_task = self.spawn(self.work(), "work")

    async def check_overlap(self, batch_id: str, held: list[str]) -> None:
        """A new batch came while the courier holds orders of another: the order service allows one batch per
        courier, unless those orders ended under it (a customer cancelled). Counted and logged when one of them is
        still this courier's and open."""
        for order_id in held:
            try:
                order = (await self.fleet.streams.call(ORDERS, "GetOrder", orders_pb2.GetOrderRequest(
                    order_id=order_id))).order
            except grpc.aio.AioRpcError as error:
                self.errors[f"GetOrder {error.code().name}"] += 1
                continue
            if order.courier_id == self.id and order.state in (food_pb2.ORDER_STATE_ASSIGNED,
                                                                food_pb2.ORDER_STATE_PICKED_UP):
                self.fleet.overlapping_batches += 1
                log.warning("%s: batch %s assigned while it holds %s (%s) of another batch", self.id, batch_id,
                            order_id, food_pb2.OrderState.Name(order.state))
                return

    def spawn(self, coroutine: Any, name: str) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(self.fleet.guard(self.id, coroutine), name=f"food-{self.id}-{name}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    # the route ----------------------------------------------------------------------------------------------------

    async def work(self) -> None:
        """Drive the route until every held order is delivered or dropped, planning it again after each stop and
        each change; then cruise again, AVAILABLE (reported at once)."""
        while self.jobs and not self.fleet.closing:
            stop = plan_route(self.position(self.fleet.clock()), self.jobs.values())[0]
            if not await self.go(stop.point):
                continue  # the route changed on the way: plan it again from here
            job = self.jobs.get(stop.order_id)
            if job is None:
                continue
            if stop.kind == PICKUP:
                await self.pick_up(job)
            else:
                await self.deliver(job)
        if self.fleet.closing:
            return
        now = self.fleet.clock()
        self.leg = leg(self.city, self.position(now), self.city.uniform(self.rng), now, self.params.straight_mps)

    async def go(self, point: Point) -> bool:
        """Drive straight to ``point`` (positions reported on the way by the location stream); False when the route
        changed before the courier got there (it is then where the leg had brought it)."""
        now = self.fleet.clock()
        self.leg = leg(self.city, self.position(now), point, now, self.params.straight_mps)
        self.route_changed.clear()
        try:
            await asyncio.wait_for(self.route_changed.wait(), self.leg.duration_s)
        except TimeoutError:
            return True
        return False

    def drop(self, job: Job) -> None:
        """The courier is done with ``job`` (delivered, cancelled under it, or refused)."""
        self.jobs.pop(job.order_id, None)
        self.finished.add(job.order_id)
        self._held_changed()

    async def handoff(self, mean_simulated_s: float) -> None:
        """Lose an exponential time of mean ``mean_simulated_s`` simulated seconds (real: / ``time_scale``)."""
        if mean_simulated_s > 0:
            await asyncio.sleep(self.rng.expovariate(self.params.time_scale / mean_simulated_s))

    async def pick_up(self, job: Job) -> None:
        """At the restaurant: the ``food_wait`` sample, the wait for the food if early, the handoff, UpdateOrder
        PICK_UP."""
        arrived = self.fleet.clock()
        if job.ready_at_unix_ms > 0:
            ready = self.fleet.streams.perf_at(job.ready_at_unix_ms * 1_000_000)
            self.fleet.observe(FOOD_WAIT, max(arrived - ready, 0.0), OK, arrived)
            if ready > arrived:
                await asyncio.sleep(ready - arrived)
        await self.handoff(self.params.pickup_handoff_s)
        if await self.update(job, orders_pb2.COURIER_EVENT_PICK_UP):
            job.picked_up = True
        else:
            self.drop(job)

    async def deliver(self, job: Job) -> None:
        """At the door: the handoff, UpdateOrder DELIVER."""
        await self.handoff(self.params.dropoff_handoff_s)
        if await self.update(job, orders_pb2.COURIER_EVENT_DELIVER):
            self.fleet.delivered += 1
        self.drop(job)

    async def order_state(self, order_id: str) -> int | None:
        """The order service's state of ``order_id``, or None when it cannot say."""
        try:
            return (await self.fleet.streams.call(ORDERS, "GetOrder", orders_pb2.GetOrderRequest(
                order_id=order_id))).order.state
        except grpc.aio.AioRpcError as error:
            self.errors[f"GetOrder {error.code().name}"] += 1
            return None

    async def update(self, job: Job, event: int) -> bool:
        """UpdateOrder ``event``, tried again after transient errors until it is answered; False when the order is
        over for this courier: cancelled by its customer, taken by another courier (PERMISSION_DENIED: a
        single-dispatch breach), or refused for another reason (logged)."""
        failures = 0
        request = orders_pb2.UpdateOrderRequest(order_id=job.order_id, courier_id=self.id, event=event)
        name = orders_pb2.CourierEvent.Name(event)
        while not self.fleet.closing:
            try:
                await self.fleet.streams.call(ORDERS, "UpdateOrder", request)
                return True
            except grpc.aio.AioRpcError as error:
                code = error.code()
                if code in TRANSIENT:
                    failures += 1
                    await asyncio.sleep(backoff_s(failures))
                    continue
                if code == grpc.StatusCode.PERMISSION_DENIED:
                    self.fleet.checker.refused(job.order_id, self.id, f"UpdateOrder {name}")
                    return False
                if code == grpc.StatusCode.FAILED_PRECONDITION:
                    state = await self.order_state(job.order_id)
                    if state == food_pb2.ORDER_STATE_CANCELLED:
                        self.fleet.cancelled_under += 1
                        return False
                    if (event == orders_pb2.COURIER_EVENT_PICK_UP and state in PICKED_UP_STATES) or \
                            (event == orders_pb2.COURIER_EVENT_DELIVER and state == food_pb2.ORDER_STATE_DELIVERED):
                        return True  # applied by an attempt whose answer was lost
                self.errors[f"UpdateOrder {code.name}"] += 1
                log.warning("%s: UpdateOrder %s of %s refused %s: %s", self.id, name, job.order_id, code.name,
                            error.details())
                return False
        return False

    # the life of the courier --------------------------------------------------------------------------------------

    def start(self) -> None:
        """Come online: both streams."""
        self.spawn(self.report(), "report")
        self.spawn(self.feed(), "feed")

    async def stop(self) -> None:
        """Go offline: OFFLINE and the half-close on the location stream, the feed and every task ended."""
        self.wake.set()
        if self.feed_call is not None:
            self.feed_call.cancel()
        report = [t for t in self.tasks if t.get_name().endswith("-report")]
        others = [t for t in self.tasks if t not in report]
        for task in others:
            task.cancel()
        _, pending = await asyncio.wait(report, timeout=2.0) if report else (set(), set())
        for task in pending:
            task.cancel()
        await asyncio.gather(*others, *pending, return_exceptions=True)
        if self.busy_since is not None:
            self.busy_s += self.fleet.clock() - self.busy_since
            self.busy_since = None


class Fleet:
    """This process's couriers and what the customers' journeys share: built by ``connect``, closed by
    ``disconnect``.

    ``started_at`` is the clock instant the load starts (the end of ``connect``): the hotspot's elapsed time and the
    time-weighted utilisation are counted from it.
    """

    def __init__(self, streams: Any, state: State, params: SeedParams, *, clock: Any = time.perf_counter):
        self.streams = streams
        self.state = state
        self.params = params
        self.clock = clock
        self.city = params.city()
        self.restaurants = state.restaurants
        self.demand = params.demand(tuple(r.point for r in state.restaurants))
        index, count = streams.share
        self.worker = index
        self.closing = False
        self.checker = Dispatches(lambda code: self.observe(SINGLE_DISPATCH, 0.0, code, self.clock()))
        #: This connect's own suffix of every courier and customer id (`casemesh capacity` seeds once and connects
        #: once per step against the same mesh: a step must not find the last step's orders under its ids).
        self.session = secrets.token_hex(3)
        self.couriers = [Courier(f"{courier_id}-{self.session}", self, random.Random(courier_id))
                         for courier_id in state.couriers[index::count]]
        self.started_at = clock()
        self.customers = 0
        #: Clock instant of the last customer's arrival, and the couriers' busy seconds then (None before the first).
        self.last_arrival: float | None = None
        self.busy_at_last_arrival = 0.0
        #: Open WatchOrder calls of the customers' journeys (cancelled at close).
        self.watches: set[Any] = set()
        self.delivered = 0
        self.cancelled_under = 0
        self.overlapping_batches = 0
        self.sampler: asyncio.Task | None = None

    def observe(self, name: str, latency_s: float, code: str, at: float) -> None:
        """Record measure ``name`` of an event at clock instant ``at`` (recorded when ``at`` is after the warm-up)."""
        self.streams.observe(name, latency_s, code, sent_at=at)

    def next_customer(self) -> str:
        """A new customer's ID (one per order journey); notes the arrival (the load is on)."""
        self.customers += 1
        now = self.last_arrival = self.clock()
        self.busy_at_last_arrival = sum(c.busy_time(now) for c in self.couriers)
        return f"fd{self.state.run}-w{self.worker}-{self.session}-u{self.customers}"

    def utilisation(self, now: float | None = None) -> float:
        """The share of courier-time spent holding an order from the load's start to ``now`` (0 to 1;
        time-weighted)."""
        now = self.clock() if now is None else now
        span = (now - self.started_at) * len(self.couriers)
        if span <= 0:
            return 0.0
        return min(sum(c.busy_time(now) for c in self.couriers) / span, 1.0)

    def utilisation_under_load(self) -> float:
        """The share of courier-time spent holding an order from the load's start to the last customer's arrival
        (the drain left out; 0 before any arrival)."""
        if self.last_arrival is None:
            return 0.0
        span = (self.last_arrival - self.started_at) * len(self.couriers)
        return min(self.busy_at_last_arrival / span, 1.0) if span > 0 else 0.0

    async def guard(self, courier_id: str, coroutine: Any) -> None:
        """Run a courier's task; a bug is logged, never raised into the event loop's void."""
        try:
            await coroutine
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: a courier task failed", courier_id)

    async def sample(self) -> None:
        """Every ``utilisation_interval_s`` while customers are arriving: one ``courier_utilisation`` sample per courier
        (BUSY or IDLE)."""
        while not self.closing:
            await asyncio.sleep(self.params.utilisation_interval_s)
            now = self.clock()
            if self.last_arrival is None or now - self.last_arrival > ARRIVING_S:
                continue
            for courier in self.couriers:
                self.observe(COURIER_UTILISATION, 0.0, BUSY if courier.busy else IDLE, now)

    async def connect(self) -> None:
        """Bring every courier online, then wait until ``ready_fraction`` of them have a position in the location
        service (UNAVAILABLE naming the count and the first missing courier's errors after ``ready_timeout_s``)."""
        for courier in self.couriers:
            courier.start()
        await self.ready()
        now = self.clock()
        self.started_at = now
        for courier in self.couriers:  # busy time counts from the load's start
            courier.busy_s = 0.0
            courier.busy_since = now if courier.busy_since is not None else None
        self.sampler = asyncio.get_running_loop().create_task(self.guard("fleet", self.sample()), name="food-utilisation")

    async def ready(self) -> None:
        total = len(self.couriers)
        needed = math.ceil(total * self.params.ready_fraction)
        limit = asyncio.Semaphore(self.params.connect_concurrency)
        deadline = self.clock() + self.params.ready_timeout_s
        pending = list(self.couriers)
        last_error: dict[str, str] = {}

        async def online(courier: Courier) -> bool:
            async with limit:
                try:
                    await self.streams.call(LOCATION, "GetDriverPosition",
                                            location_pb2.GetDriverPositionRequest(driver_id=courier.id))
                except grpc.aio.AioRpcError as error:
                    last_error[courier.id] = error.code().name
                    return False
                return True

        while total - len(pending) < needed:
            found = await asyncio.gather(*(online(c) for c in pending))
            pending = [c for c, ok in zip(pending, found, strict=True) if not ok]
            if total - len(pending) >= needed:
                break
            if self.clock() >= deadline:
                first = pending[0]
                raise grpc.aio.AioRpcError(
                    grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(),
                    f"only {total - len(pending)} of {total} couriers had reported a position after "
                    f"{self.params.ready_timeout_s:g} s (need {needed}); first missing: {first.id}, GetDriverPosition "
                    f"{last_error.get(first.id)}, its streams' errors {dict(first.errors)}")
            await asyncio.sleep(0.2)
        log.info("food: %d of %d couriers of this process online", total - len(pending), total)

    async def close(self) -> None:
        """End the customers' watches, then take every courier offline; log what the population went through (the
        time-weighted utilisation among it)."""
        utilisation = self.utilisation_under_load()
        self.closing = True
        if self.sampler is not None:
            self.sampler.cancel()
            await asyncio.gather(self.sampler, return_exceptions=True)
        for call in list(self.watches):
            call.cancel()
        await asyncio.gather(*(c.stop() for c in self.couriers), return_exceptions=True)
        errors: Counter[str] = Counter()
        for courier in self.couriers:
            errors.update(courier.errors)
        log.info("food: %d orders delivered by this process's %d couriers, %d cancelled under their courier; courier "
                 "utilisation %.1f%% (time-weighted, from the load's start to the last arrival); single dispatch: %d OK, %d breaches; "
                 "%d batches assigned over another open batch; %d location and %d assignment-feed reconnects; "
                 "courier stream and call errors %s", self.delivered, len(self.couriers), self.cancelled_under,
                 100 * utilisation, self.checker.delivered_ok, self.checker.breaches, self.overlapping_batches,
                 sum(max(c.report_sessions - 1, 0) for c in self.couriers),
                 sum(max(c.feed_sessions - 1, 0) for c in self.couriers), dict(errors))
