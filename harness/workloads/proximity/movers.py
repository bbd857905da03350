"""The moving population: entities wandering the city, reported in batches by device gateways on
TrackerService.StreamPositions streams held for the whole run (seed 001 #29 "Proximity Service",
shared/seeds/001_58dfc580020147d2.txt line 51: "real-time location updates | 10M updates/sec").

**Entities** (``entities``, ids ``en<run>-<i>-<session>``) move by random waypoints (:class:`.city.Wanderer`),
``walk_share`` of them at ``walk_kmh`` and the rest at ``drive_kmh``, through a city that runs ``time_scale`` times
faster than real time; waypoints are drawn around the busy districts (``waypoint_district_share``) or anywhere.
Each entity's path comes from its own generator, seeded by its id without the session: the same run seed, the
same paths.

**Gateways** (``gateways``; entity ``i`` belongs to gateway ``i mod gateways``; with ``--workers N`` load process
``k`` runs gateways ``g`` with ``g mod N = k``, :attr:`casemesh.harness.streams.Streams.share`) aggregate devices
the way a mobile carrier's or a fleet's gateway does: every ``report_interval_s`` (the first after a random part of
it, spreading the gateways) a gateway sends one batch (StreamPositionsRequest) holding every one of its entities'
newest position, each with its entity's sequence + 1 and ``sent_at_unix_ms`` = now: ``entities /
report_interval_s`` updates a second in all. It keeps every batch until its acknowledgement (in order, one per
batch). When its stream ends other than by its own half-close (UNAVAILABLE when the geofence service cannot be
reached, a restart of the tracker, ...) it opens a new one after 100 ms doubling up to 2 s and sends every
unacknowledged batch again, oldest first, before any new one: positions are idempotent by sequence (a position
applied already is skipped as stale), so nothing is lost or applied twice. A report due while the gateway holds
``max_unacked_batches`` is skipped (the device's buffer is full). INVALID_ARGUMENT, PERMISSION_DENIED,
UNAUTHENTICATED or UNIMPLEMENTED end a gateway for good (logged): sending the same batch again cannot help.

Measures:

- ``update_ack``: per batch, from the instant its report was due to its acknowledgement (through every resend),
  code OK; a batch still unacknowledged when the run's end stops waiting (``settle_timeout_s``) is one sample with
  code DEADLINE_EXCEEDED, a skipped report one with RESOURCE_EXHAUSTED (latency 0);
- every acknowledged batch's positions go to the :class:`~.invariants.FenceLedger`, which replays them against the
  fences for ``fence_events_exactly_once`` (:mod:`.invariants`, :mod:`.watchers`).

:class:`Population` is what ``connect`` returns and the journeys get: it starts the watchers, proves them live
with probe entities (:mod:`.watchers`), starts the gateways, and at the end stops the reports, waits for the
acknowledgements and the watchers, and judges the invariant.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import random
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from casemesh.common.v1 import geo_pb2
from casemesh.proximity.v1 import proximity_pb2, tracker_pb2
from casemesh.services.proximity.contract import MAX_WATCHED_FENCES, inside_fence

from .city import Point, Wanderer, inside, offset
from .invariants import FENCE_EVENTS, FenceLedger, FenceSet, record_verdict
from .seeding import TRACKER, FenceSpec, SeedParams, State
from .watchers import FATAL, Watcher, backoff_s

log = logging.getLogger("casemesh.workloads.proximity")

UPDATE_ACK = "update_ack"
OK = "OK"
#: Seconds the end of the run waits after the watchers caught up, for a duplicate still on its way.
DUPLICATE_GRACE_S = 0.5
#: Seconds between polls while waiting (acknowledgements, watchers).
POLL_S = 0.05
#: Seconds connect waits for one probe batch's acknowledgement before sending the next.
PROBE_WAIT_S = 1.0

Position = tuple[str, int, float, float]
FATAL_NAMES = frozenset(code.name for code in FATAL)


def latlng(point: Point) -> geo_pb2.LatLng:
    """A point as the contract's LatLng."""
    return geo_pb2.LatLng(lat_deg=point[0], lng_deg=point[1])


class Entity:
    """One moving entity: its id, its last sequence sent and its wanderings."""

    __slots__ = ("id", "sequence", "walker", "walking")

    def __init__(self, entity_id: str, walker: Wanderer, walking: bool):
        self.id = entity_id
        self.sequence = 0
        self.walker = walker
        self.walking = walking


@dataclass
class Batch:
    """One batch sent: its id, the perf_counter instant its report was due, the request and its positions."""

    batch_id: int
    intended: float
    request: tracker_pb2.StreamPositionsRequest
    positions: list[Position]


class Gateway:
    """One device gateway: its entities, its StreamPositions stream, its unacknowledged batches (module docstring).

    ``report(now)`` makes a batch; ``run_connection()`` holds the stream; ``run_reports()`` reports on schedule.
    """

    def __init__(self, population: Population, index: int, entities: list[Entity]):
        self.population = population
        self.index = index
        self.name = f"gateway-{index}"
        self.entities = entities
        self.next_batch_id = 1
        self.unacked: collections.deque[Batch] = collections.deque()
        #: The stream new batches go out on (None while reconnecting: they wait in ``unacked``).
        self.stream: Any = None
        self.closing = False
        self.finished = False
        self.sessions = 0
        self.batches = 0
        self.acked = 0
        self.skipped = 0
        self.applied = 0
        self.stale = 0
        self.errors: Counter[str] = Counter()
        self.tasks: list[asyncio.Task] = []
        self.closers: set[asyncio.Task] = set()

    # batches ------------------------------------------------------------------------------------------------------

    def report(self, intended: float) -> Batch | None:
        """The report due at perf_counter instant ``intended``: one batch of every entity's position now (sent at once
        when the stream is up), or None when the gateway holds ``max_unacked_batches`` already (skipped)."""
        population = self.population
        if len(self.unacked) >= population.params.max_unacked_batches:
            self.skipped += 1
            population.observe(UPDATE_ACK, 0.0, grpc.StatusCode.RESOURCE_EXHAUSTED.name, intended)
            return None
        now = population.clock()
        sent_ms = population.streams.wall_ns(now) // 1_000_000
        messages = []
        positions: list[Position] = []
        for entity in self.entities:
            entity.sequence += 1
            lat, lng = entity.walker.position(now)
            messages.append(proximity_pb2.EntityPosition(entity_id=entity.id, sequence=entity.sequence,
                                                         point=geo_pb2.LatLng(lat_deg=lat, lng_deg=lng),
                                                         sent_at_unix_ms=sent_ms))
            positions.append((entity.id, entity.sequence, lat, lng))
        batch = Batch(self.next_batch_id, intended,
                      tracker_pb2.StreamPositionsRequest(batch_id=self.next_batch_id, positions=messages), positions)
        self.next_batch_id += 1
        self.batches += 1
        self.unacked.append(batch)
        if self.stream is not None:
            self.stream.send(batch.request)
        return batch

    def acknowledge(self, response: tracker_pb2.StreamPositionsResponse) -> Batch | None:
        """An acknowledgement: its batch leaves ``unacked`` (timed: ``update_ack``) and its positions go to the
        ledger; None (counted) when no unacknowledged batch has its id."""
        batch = None
        if self.unacked and self.unacked[0].batch_id == response.batch_id:
            batch = self.unacked.popleft()
        else:
            for held in self.unacked:
                if held.batch_id == response.batch_id:
                    batch = held
                    break
            if batch is None:
                self.errors["acknowledgement of no batch held"] += 1
                return None
            self.errors["acknowledgement out of order"] += 1
            self.unacked.remove(batch)
        population = self.population
        self.acked += 1
        self.applied += response.applied
        self.stale += response.stale
        population.observe(UPDATE_ACK, population.clock() - batch.intended, OK, batch.intended)
        population.ledger.acknowledged(batch.positions)
        return batch

    # the stream ---------------------------------------------------------------------------------------------------

    async def run_connection(self) -> None:
        """Hold StreamPositions until closed and drained, reconnecting and resending (module docstring)."""
        try:
            await self._hold()
        finally:
            self.finished = True

    async def _hold(self) -> None:
        failures = 0
        streams = self.population.streams
        while not (self.closing and not self.unacked):
            stream = streams.open(TRACKER, "StreamPositions")
            self.sessions += 1
            for batch in self.unacked:  # oldest first, before any new batch (no await in between)
                stream.send(batch.request)
            self.stream = stream
            acked = self.acked
            try:
                while (response := await stream.recv()) is not None:
                    self.acknowledge(response)
                    if self.closing and not self.unacked:
                        self.half_close()
            finally:
                self.stream = None
            if self.closing and not self.unacked:
                break
            code = stream.code or "CANCELLED"
            self.errors[f"StreamPositions {code}"] += 1
            log.info("%s: StreamPositions ended %s with %d batches unacknowledged", self.name, code, len(self.unacked))
            if code in FATAL_NAMES:
                log.warning("%s: StreamPositions refused %s: the gateway stops", self.name, code)
                return
            failures = 1 if self.acked > acked else failures + 1
            await asyncio.sleep(backoff_s(failures))

    def half_close(self) -> None:
        """Half-close the stream (the server then ends it OK, which the connection's reader sees); new batches wait."""
        stream, self.stream = self.stream, None
        if stream is not None:
            task = asyncio.get_running_loop().create_task(stream.close(), name=f"proximity-{self.name}-close")
            self.closers.add(task)
            task.add_done_callback(self.closers.discard)

    async def run_reports(self) -> None:
        """Report every ``report_interval_s`` until closing, the first after a random part of the interval."""
        population = self.population
        interval = population.params.report_interval_s
        due = population.clock() + population.rng.uniform(0, interval)
        while not self.closing:
            wait = due - population.clock()
            if wait > 0:
                await asyncio.sleep(wait)
                if self.closing:
                    return
            self.report(due)
            due += interval
            behind = population.clock() - due
            if behind > interval:  # the loop stalled for more than an interval: skip ahead, do not burst
                due += math.floor(behind / interval) * interval

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.tasks = [loop.create_task(self.population.guard(self.name, self.run_connection()), name=f"proximity-{self.name}"),
                      loop.create_task(self.population.guard(self.name, self.run_reports()), name=f"proximity-{self.name}-reports")]

    async def stop_reports(self) -> None:
        """No more batches: the report task ends (the connection goes on until drained)."""
        self.closing = True
        if len(self.tasks) > 1:
            self.tasks[1].cancel()
            await asyncio.gather(self.tasks[1], return_exceptions=True)
        if not self.unacked:
            self.half_close()

    async def close(self) -> None:
        """End the stream (whatever is unacknowledged) and the tasks."""
        self.closing = True
        stream, self.stream = self.stream, None
        if stream is not None:
            stream.cancel()
        for task in (*self.tasks, *self.closers):
            task.cancel()
        await asyncio.gather(*self.tasks, *self.closers, return_exceptions=True)


def probe_points(fence: FenceSpec) -> tuple[Point, Point]:
    """A point inside ``fence`` (its centre) and one just outside it (50 m past its edge, north, else south, east or
    west: whichever is inside the service area)."""
    reach = fence.radius_m + 50.0
    for east, north in ((0.0, reach), (0.0, -reach), (reach, 0.0), (-reach, 0.0)):
        point = offset(fence.centre, east, north)
        if inside(point) and not inside_fence(fence.lat_deg, fence.lng_deg, fence.radius_m, *point):
            return fence.centre, point
    raise ValueError(f"fence {fence.fence_id} covers the service area: no probe point outside it")


class Population:
    """This load process's entities, gateways and watchers, and what the journeys share: built by ``connect``,
    closed by ``disconnect``. ``started_at`` is the clock instant the load starts (the end of ``connect``)."""

    def __init__(self, streams: Any, state: State, params: SeedParams, *, clock: Callable[[], float] = time.perf_counter):
        self.streams = streams
        self.state = state
        self.params = params
        self.clock = clock
        index, count = streams.share
        self.worker = index
        #: This connect's own suffix of every entity id: a kept data directory or an earlier step of `casemesh
        #: capacity` (seeded once, connected per step) holds other entities' positions and fence states.
        self.session = secrets.token_hex(3)
        self.rng = random.Random(f"{state.run}-{index}-{self.session}")
        self.fences = FenceSet(state.fences)
        waypoints = params.waypoint_mixture()
        now = clock()
        mine = [g for g in range(params.gateways) if g % count == index]
        members: dict[int, list[Entity]] = {g: [] for g in mine}
        for i in range(params.entities):
            gateway = i % params.gateways
            if gateway not in members:
                continue
            base = f"en{state.run}-{i}"
            rng = random.Random(base)
            walking = rng.random() < params.walk_share
            members[gateway].append(Entity(f"{base}-{self.session}", Wanderer(rng, waypoints, params.speed_mps(walking), now),
                                           walking))
        self.gateways = [Gateway(self, g, members[g]) for g in mine if members[g]]
        self.entity_ids = [e.id for g in self.gateways for e in g.entities]
        self.ledger = FenceLedger(self.fences, self.entity_ids)
        chunk = MAX_WATCHED_FENCES
        slices = [state.fences[i:i + chunk] for i in range(0, len(state.fences), chunk)]
        self.probes = [f"pr{state.run}-w{index}-{self.session}-{k}" for k in range(len(slices))]
        self.probe_fences = [fences[0] for fences in slices]
        probe_ids = frozenset(self.probes)
        self.watchers = [Watcher(streams, f"watcher-{k}", [f.fence_id for f in fences], self.ledger, probe_ids, clock=clock)
                         for k, fences in enumerate(slices)]
        self.started_at = now
        self.closing = False
        self.probe_batches = 0

    def observe(self, name: str, latency_s: float, code: str, at: float) -> None:
        """Record measure ``name`` of an event at clock instant ``at`` (recorded when ``at`` is after the warm-up)."""
        self.streams.observe(name, latency_s, code, sent_at=at)

    async def guard(self, name: str, coroutine: Any) -> None:
        """Run a population task; a bug is logged, never raised into the event loop's void."""
        try:
            await coroutine
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: a proximity population task failed", name)

    # connect ------------------------------------------------------------------------------------------------------

    async def connect(self) -> None:
        """Start the watchers, prove them live with the probes, then start the gateways (module docstring);
        UNAVAILABLE naming what did not answer after ``ready_timeout_s``."""
        for watcher in self.watchers:
            watcher.start()
        await self.prime()
        for gateway in self.gateways:
            gateway.start()
        self.started_at = self.clock()
        log.info("proximity: %d entities on %d gateways (%.0f updates/s), %d fence watchers of this process online",
                 len(self.entity_ids), len(self.gateways), len(self.entity_ids) / self.params.report_interval_s,
                 len(self.watchers))

    async def prime(self) -> None:
        """Send probe batches (each probe in, then out of, its watcher's first fence) until every watcher has received
        a probe's event."""
        deadline = self.clock() + self.params.ready_timeout_s
        points = [probe_points(fence) for fence in self.probe_fences]
        sequence = 0
        failures = 0
        last: str | None = None
        stream: Any = None
        reading: asyncio.Task | None = None
        try:
            while not all(w.primed.is_set() for w in self.watchers):
                if self.clock() >= deadline:
                    waiting = [w.name for w in self.watchers if not w.primed.is_set()]
                    raise grpc.aio.AioRpcError(
                        grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(),
                        f"{len(waiting)} of {len(self.watchers)} fence watchers received no probe event after "
                        f"{self.params.ready_timeout_s:g} s ({', '.join(waiting)}; watch errors "
                        f"{dict(sum((w.errors for w in self.watchers), Counter()))}); the probe's StreamPositions: "
                        f"{last or 'acknowledged'}")
                if stream is None or stream.ended:
                    if stream is not None:
                        failures += 1
                        await asyncio.sleep(backoff_s(failures))
                    stream = self.streams.open(TRACKER, "StreamPositions")
                    reading = None
                sequence += 1
                sent_ms = self.streams.wall_ns(self.clock()) // 1_000_000
                positions = [proximity_pb2.EntityPosition(entity_id=probe, sequence=sequence,
                                                          point=latlng(inside_point if sequence % 2 else outside_point),
                                                          sent_at_unix_ms=sent_ms)
                             for probe, (inside_point, outside_point) in zip(self.probes, points, strict=True)]
                self.probe_batches += 1
                stream.send(tracker_pb2.StreamPositionsRequest(batch_id=sequence, positions=positions))
                if reading is None:
                    reading = asyncio.ensure_future(stream.recv())
                done, _ = await asyncio.wait({reading}, timeout=PROBE_WAIT_S)
                if not done:
                    last = f"no acknowledgement within {PROBE_WAIT_S:g} s"
                    continue
                response, reading = reading.result(), None
                if response is None:
                    last = f"ended {stream.code}"
                    continue
                last = None
                waits = [asyncio.ensure_future(w.primed.wait()) for w in self.watchers if not w.primed.is_set()]
                if waits:
                    await asyncio.wait(waits, timeout=PROBE_WAIT_S / 2)
                    for wait in waits:
                        wait.cancel()
        finally:
            if stream is not None:
                stream.cancel()
            if reading is not None:
                reading.cancel()
                await asyncio.gather(reading, return_exceptions=True)

    # close --------------------------------------------------------------------------------------------------------

    async def settle(self) -> None:
        """Stop the reports, wait (``settle_timeout_s``) for every batch's acknowledgement and then
        (``catch_up_timeout_s``) for the watchers to receive every expected event, and judge
        ``fence_events_exactly_once``."""
        for gateway in self.gateways:
            await gateway.stop_reports()
        deadline = self.clock() + self.params.settle_timeout_s
        while any(g.unacked and not g.finished for g in self.gateways) and self.clock() < deadline:
            await asyncio.sleep(POLL_S)
        unacknowledged: list[Position] = []
        now = self.clock()
        for gateway in self.gateways:
            for batch in gateway.unacked:
                self.observe(UPDATE_ACK, now - batch.intended, grpc.StatusCode.DEADLINE_EXCEEDED.name, batch.intended)
                unacknowledged.extend(batch.positions)
        if unacknowledged:
            log.warning("proximity: %d positions still unacknowledged after %.0f s: their fence events may come or not",
                        len(unacknowledged), self.params.settle_timeout_s)
        deadline = self.clock() + self.params.catch_up_timeout_s
        while not self.ledger.caught_up() and self.clock() < deadline:
            await asyncio.sleep(POLL_S)
        if self.ledger.caught_up():
            await asyncio.sleep(min(DUPLICATE_GRACE_S, max(deadline - self.clock(), 0.0)))
        else:
            log.warning("proximity: the watchers still miss %d of %d expected fence events after %.0f s",
                        self.ledger.missing(), sum(self.ledger.expected.values()), self.params.catch_up_timeout_s)
        verdict = self.ledger.verdict(unacknowledged)
        at = self.clock()
        record_verdict(verdict, lambda code: self.observe(FENCE_EVENTS, 0.0, code, at))

    async def close(self) -> None:
        """Settle (once), then end every stream; log what the population went through."""
        if not self.closing:
            self.closing = True
            try:
                if self.gateways and any(g.tasks for g in self.gateways):
                    await self.settle()
            finally:
                await asyncio.gather(*(g.close() for g in self.gateways), return_exceptions=True)
                await asyncio.gather(*(w.stop() for w in self.watchers), return_exceptions=True)
        errors: Counter[str] = Counter()
        for part in (*self.gateways, *self.watchers):
            errors.update(part.errors)
        log.info("proximity: %d batches sent, %d acknowledged (%d positions applied, %d stale), %d skipped, %d stream "
                 "reconnects; watchers received %d events (%d of this process's entities, %d reconnects, %d not above "
                 "the last sequence); errors %s",
                 sum(g.batches for g in self.gateways), sum(g.acked for g in self.gateways),
                 sum(g.applied for g in self.gateways), sum(g.stale for g in self.gateways),
                 sum(g.skipped for g in self.gateways), sum(max(g.sessions - 1, 0) for g in self.gateways),
                 sum(w.received for w in self.watchers), sum(w.own for w in self.watchers),
                 sum(max(w.sessions - 1, 0) for w in self.watchers), sum(w.out_of_order for w in self.watchers),
                 dict(errors))
