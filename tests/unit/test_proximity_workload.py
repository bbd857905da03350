"""The proximity workload without a mesh: the city and its movers, deterministic seeding through the API, the fence
replay and the exactly-once comparison, a gateway's resends against fake streams, the whole population against a fake
tracker and geofence service (losses and duplicates caught), the search checks, the profile and its SLOs, and that the
workload imports only the contracts."""

from __future__ import annotations

import ast
import asyncio
import math
import random
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from casemesh.common.v1 import geo_pb2
from casemesh.harness.errors import ConfigError
from casemesh.harness.profile import load_profile
from casemesh.harness.workloads import get_workload
from casemesh.harness.workloads.proximity.city import DISTRICTS, Leg, Mixture, Wanderer, inside, offset
from casemesh.harness.workloads.proximity.invariants import (
    DATA_LOSS,
    DUPLICATE,
    ENTER,
    EXIT,
    FENCE_EVENTS,
    OK,
    SEARCH_RESULTS,
    UNEXPECTED,
    FenceLedger,
    FenceSet,
    Replay,
    check_entities,
    check_places,
    compare,
    expected_events,
)
from casemesh.harness.workloads.proximity.movers import UPDATE_ACK, Population, probe_points
from casemesh.harness.workloads.proximity.searchers import NearbyParams, SearchParams, nearby, search
from casemesh.harness.workloads.proximity.seeding import (
    CATEGORY_MIX,
    GEOFENCE,
    PLACES,
    FenceSpec,
    SeedParams,
    State,
    plan,
    seed,
)
from casemesh.harness.workloads.proximity.watchers import FENCE_NOTIFY
from casemesh.proximity.v1 import geofence_pb2, places_pb2, proximity_pb2, tracker_pb2
from casemesh.services.proximity import contract

WORKLOAD_DIR = Path(__file__).resolve().parents[2] / "harness" / "workloads" / "proximity"
FIDI = DISTRICTS[0].centre


def rpc_error(code: grpc.StatusCode, details: str = "") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


# the city -------------------------------------------------------------------------------------------------------------

def test_the_districts_lie_in_the_service_area_and_draws_stay_in_it():
    assert all(inside(d.centre) for d in DISTRICTS) and math.isclose(sum(d.weight for d in DISTRICTS), 1.0)
    rng = random.Random(3)
    clustered, uniform = Mixture(1.0), Mixture(0.0)
    near = [clustered.point(rng) for _ in range(3000)]
    assert all(inside(p) and d is not None for p, d in near)
    assert all(inside(uniform.point(rng)[0]) and uniform.point(rng)[1] is None for _ in range(500))
    # Clustered draws crowd the Financial District (22% of the weight); uniform ones spread over ~190 km2.
    share_near_fidi = sum(contract.distance_m(*FIDI, *p) < 1000 for p, _ in near) / len(near)
    assert share_near_fidi > 0.18
    assert sum(contract.distance_m(*FIDI, *uniform.point(rng)[0]) < 1000 for _ in range(3000)) / 3000 < 0.05
    with pytest.raises(ValueError, match="district_share"):
        Mixture(1.5)


def test_a_wanderer_moves_at_its_speed_between_waypoints_inside_the_area():
    start = FIDI
    north = offset(start, 0, 1000)
    leg = Leg(start, north, 10.0, 100.0)
    assert leg.distance_m == pytest.approx(1000, rel=0.01) and leg.arrives_s == pytest.approx(20.0, rel=0.01)
    assert leg.position(5.0) == start and leg.position(1e9) == north
    assert contract.distance_m(*start, *leg.position(15.0)) == pytest.approx(500, rel=0.01)
    walker = Wanderer(random.Random(1), Mixture(0.6), 50.0, 0.0)
    last = walker.position(0.0)
    for t in range(1, 600):
        here = walker.position(float(t))
        assert inside(here) and contract.distance_m(*last, *here) <= 50.0 * 1.01
        last = here
    with pytest.raises(ValueError, match="speed"):
        Leg(start, north, 0, 0)


# seeding --------------------------------------------------------------------------------------------------------------

def test_the_same_run_seed_plans_the_same_places_and_fences():
    params = SeedParams(places=3000, fences=40)
    state, places = plan(params, random.Random(42))
    again, places_again = plan(params, random.Random(42))
    assert state == again and places == places_again
    _, other_places = plan(params, random.Random(43))
    assert {p.place_id for p in places}.isdisjoint(p.place_id for p in other_places)
    assert [p.place_id for p in places] == [f"pl{state.run}-{i}" for i in range(3000)]
    assert all(contract.is_id(p.place_id) and 1 <= len(p.name) <= contract.MAX_NAME_CHARS for p in places)
    assert all(inside((p.point.lat_deg, p.point.lng_deg)) for p in places)
    assert all(0 <= p.rating_tenths <= contract.MAX_RATING_TENTHS and p.rating_tenths % 5 == 0 for p in places)
    counts = Counter(p.category for p in places)
    assert counts.most_common(1)[0][0] == places_pb2.PLACE_CATEGORY_RESTAURANT
    assert min(counts, key=counts.__getitem__) == places_pb2.PLACE_CATEGORY_MUSEUM
    assert set(counts) == set(CATEGORY_MIX) and math.isclose(sum(CATEGORY_MIX.values()), 1.0)
    assert len(state.fences) == 40 and all(contract.is_id(f.fence_id) for f in state.fences)
    assert all(100 <= f.radius_m <= 600 and inside(f.centre) for f in state.fences)


class SeedCaller:
    def __init__(self, failures: list[grpc.StatusCode] | None = None) -> None:
        self.calls: list[tuple[str, str, object]] = []
        self.failures = failures or []

    async def __call__(self, service: str, method: str, request):
        if self.failures:
            raise rpc_error(self.failures.pop(0), "busy")
        self.calls.append((service, method, request))
        if method == "CreatePlaces":
            return places_pb2.CreatePlacesResponse(created=len(request.places))
        return geofence_pb2.CreateFenceResponse(created=True)


async def test_seeding_creates_every_place_in_batches_of_1000_and_every_fence():
    params = SeedParams(places=2500, fences=7)
    caller = SeedCaller()
    state = await seed(caller, params, random.Random(5))
    batches = [r for s, m, r in caller.calls if m == "CreatePlaces"]
    assert all(s == PLACES for s, m, _ in caller.calls if m == "CreatePlaces")
    assert sorted(len(b.places) for b in batches) == [500, 1000, 1000]
    expected_state, places = plan(params, random.Random(5))
    assert state == expected_state
    assert sorted(p.place_id for b in batches for p in b.places) == sorted(p.place_id for p in places)
    fences = [r.fence for s, m, r in caller.calls if m == "CreateFence" and s == GEOFENCE]
    assert [(f.fence_id, f.center.lat_deg, f.center.lng_deg, f.radius_m) for f in fences] == [
        (f.fence_id, f.lat_deg, f.lng_deg, f.radius_m) for f in state.fences]
    assert all(len(f.name) <= contract.MAX_NAME_CHARS for f in fences)


async def test_seeding_sends_a_call_again_when_its_answer_was_lost_and_stops_at_a_refusal():
    params = SeedParams(places=10, fences=1, seed_concurrency=1)
    caller = SeedCaller([grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED])
    await seed(caller, params, random.Random(5))
    assert [m for _, m, _ in caller.calls] == ["CreatePlaces", "CreateFence"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await seed(SeedCaller([grpc.StatusCode.ALREADY_EXISTS]), params, random.Random(5))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS


def test_seed_params_refuse_what_the_contract_cannot_take():
    with pytest.raises(ValidationError, match="fence_min_radius_m"):
        SeedParams(fence_min_radius_m=700, fence_max_radius_m=600)
    with pytest.raises(ValidationError, match="add gateways"):
        SeedParams(entities=5000, gateways=4)
    with pytest.raises(ValidationError, match="place_batch"):
        SeedParams(place_batch=1001)
    assert SeedParams().updates_per_s == 1000
    assert SeedParams().speed_mps(True) == pytest.approx(5 / 3.6 * 10)


# the fence replay and the comparison ----------------------------------------------------------------------------------

def _fence(fence_id: str, centre: tuple[float, float], radius_m: float) -> FenceSpec:
    return FenceSpec(fence_id, centre[0], centre[1], radius_m)


points = st.tuples(st.floats(contract.SERVICE_AREA.south_deg, contract.SERVICE_AREA.north_deg),
                   st.floats(contract.SERVICE_AREA.west_deg, contract.SERVICE_AREA.east_deg))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(points, st.floats(10, 3000)), min_size=1, max_size=30), st.lists(points, max_size=40))
def test_the_fence_grid_finds_exactly_the_fences_inside_fence_finds(fences, probes):
    specs = [_fence(f"f{i}", centre, radius) for i, (centre, radius) in enumerate(fences)]
    fence_set = FenceSet(specs)
    for spec in specs:  # the centre, the edge just inside and just outside
        for point in (spec.centre, offset(spec.centre, 0, spec.radius_m * 0.999), offset(spec.centre, spec.radius_m * 1.001, 0)):
            probes.append(point)
    for lat, lng in probes:
        brute = {s.fence_id for s in specs if contract.inside_fence(s.lat_deg, s.lng_deg, s.radius_m, lat, lng)}
        assert fence_set.containing(lat, lng) == brute


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(-1500, 1500), st.floats(-1500, 1500)), min_size=1, max_size=60))
def test_a_random_walk_across_fences_gives_alternating_enter_and_exit_per_fence(steps):
    fences = [_fence("a", FIDI, 400.0), _fence("b", offset(FIDI, 500, 0), 300.0), _fence("c", offset(FIDI, 0, -800), 150.0)]
    walk = [offset(FIDI, east, north) for east, north in steps]
    positions = [("e1", n + 1, lat, lng) for n, (lat, lng) in enumerate(walk)]
    events = expected_events(FenceSet(fences), positions)
    assert all(count == 1 for count in events.values())
    for fence in fences:
        own = sorted((seq, transition) for f, _, seq, transition in events if f == fence.fence_id)
        assert [t for _, t in own] == [ENTER, EXIT] * (len(own) // 2) + [ENTER] * (len(own) % 2)
        flips = 0
        was = False
        for lat, lng in walk:
            now = contract.inside_fence(fence.lat_deg, fence.lng_deg, fence.radius_m, lat, lng)
            flips += now != was
            was = now
        assert len(own) == flips


def test_stale_positions_cause_no_events_and_entities_start_outside():
    replay = Replay(FenceSet([_fence("a", FIDI, 200.0)]))
    outside = offset(FIDI, 0, 500)
    assert replay.apply("e1", 1, *outside) == []
    assert replay.apply("e1", 2, *FIDI) == [("a", "e1", 2, ENTER)]
    assert replay.apply("e1", 2, *outside) == [] and replay.apply("e1", 1, *outside) == []  # stale: skipped
    assert replay.apply("e1", 5, *outside) == [("a", "e1", 5, EXIT)]
    assert replay.apply("e2", 1, *FIDI) == [("a", "e2", 1, ENTER)]  # another entity: its own state
    assert replay.inside("e2") == {"a"} and replay.inside("nobody") == frozenset()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(-1500, 1500), st.floats(-1500, 1500)), min_size=2, max_size=60), st.data())
def test_losses_duplicates_and_strays_are_counted_apart(steps, data):
    fences = FenceSet([_fence("a", FIDI, 400.0), _fence("b", offset(FIDI, 500, 0), 300.0)])
    positions = [("e1", n + 1, *offset(FIDI, east, north)) for n, (east, north) in enumerate(steps)]
    expected = expected_events(fences, positions)
    keys = sorted(expected)
    lost = set(data.draw(st.sets(st.sampled_from(keys), max_size=len(keys))) if keys else set())
    doubled = {k: data.draw(st.integers(1, 3)) for k in keys if k not in lost and data.draw(st.booleans())}
    strays = data.draw(st.integers(0, 3))
    received = Counter({k: 1 + doubled.get(k, 0) for k in keys if k not in lost})
    for n in range(strays):
        received[("a", "e1", 10_000 + n, EXIT)] += 1
    verdict = compare(expected, received)
    assert (verdict.lost, verdict.duplicated, verdict.unexpected) == (len(lost), sum(doubled.values()), strays)
    assert verdict.matched == len(keys) - len(lost) and verdict.holds == (not lost and not doubled and not strays)
    samples = Counter(verdict.samples())
    assert samples == Counter({OK: verdict.matched, DATA_LOSS: len(lost), DUPLICATE: sum(doubled.values()),
                               UNEXPECTED: strays}) - Counter()


def test_events_of_unacknowledged_positions_may_come_once_or_not_at_all():
    fences = FenceSet([_fence("a", FIDI, 200.0)])
    ledger = FenceLedger(fences, ["e1", "e2"])
    outside = offset(FIDI, 0, 500)
    ledger.acknowledged([("e1", 1, *FIDI), ("e2", 1, *outside)])
    assert dict(ledger.expected) == {("a", "e1", 1, ENTER): 1} and not ledger.caught_up()

    def event(entity: str, sequence: int, transition: int) -> geofence_pb2.FenceEvent:
        return geofence_pb2.FenceEvent(fence_id="a", transition=transition,
                                       position=proximity_pb2.EntityPosition(entity_id=entity, sequence=sequence))

    assert ledger.saw(event("e1", 1, ENTER)) and not ledger.saw(event("someone-else", 1, ENTER))
    assert ledger.caught_up() and ledger.missing() == 0
    unacked = [("e1", 2, *outside), ("e2", 2, *FIDI)]
    assert ledger.verdict(unacked).holds  # neither came: fine
    ledger.saw(event("e2", 2, ENTER))
    verdict = ledger.verdict(unacked)
    assert verdict.holds and verdict.uncertain_seen == 1 and verdict.samples() == [OK]
    ledger.saw(event("e2", 2, ENTER))  # but never twice
    assert ledger.verdict(unacked).duplicated == 1


# fakes of the tracker and the geofence service ------------------------------------------------------------------------

class FakeMesh:
    """A tracker and a geofence service in one: positions evaluated with the contract's rule, events numbered and
    streamed to watchers (from now, or after a sequence). ``fail`` scripts the next position streams: a stream ends
    UNAVAILABLE on receiving its n-th batch, after applying it (its ack lost) or before."""

    def __init__(self, fences: list[FenceSpec]):
        self.replay = Replay(FenceSet(fences))
        self.last: dict[str, int] = {}
        self.events: list[geofence_pb2.FenceEvent] = []
        self.watches: list[FakeWatch] = []
        self.position_streams: list[FakePositions] = []
        self.fail: list[tuple[int, bool]] = []
        self.drop_events = 0  # mover events to lose (written, never delivered)
        self.duplicate_events = 0  # mover events to deliver twice

    def evaluate(self, positions) -> tuple[int, int]:
        applied = stale = 0
        for position in positions:
            if position.sequence <= self.last.get(position.entity_id, 0):
                stale += 1
                continue
            self.last[position.entity_id] = position.sequence
            keys = self.replay.apply(position.entity_id, position.sequence, position.point.lat_deg, position.point.lng_deg)
            applied += 1
            for fence_id, _, _, transition in keys:
                event = geofence_pb2.FenceEvent(sequence=len(self.events) + 1, fence_id=fence_id, transition=transition,
                                                position=position, recorded_at_unix_ms=int(time.perf_counter() * 1000))
                self.events.append(event)
                mover = position.entity_id.startswith("en")
                if mover and self.drop_events:
                    self.drop_events -= 1
                    continue
                copies = 2 if mover and self.duplicate_events else 1
                if copies == 2:
                    self.duplicate_events -= 1
                for watch in list(self.watches):
                    for _ in range(copies):
                        watch.offer(event)
        return applied, stale

    def break_watches(self, code: grpc.StatusCode) -> None:
        for watch in list(self.watches):
            watch.end(rpc_error(code, "restarting"))


class FakeWatch:
    def __init__(self, mesh: FakeMesh, request: geofence_pb2.WatchFenceEventsRequest):
        self.mesh = mesh
        self.fences = set(request.fence_ids)
        self.queue: asyncio.Queue = asyncio.Queue()
        if not request.from_now:
            for event in mesh.events:
                if event.sequence > request.after_sequence:
                    self.offer(event)
        mesh.watches.append(self)

    def offer(self, event: geofence_pb2.FenceEvent) -> None:
        if not self.fences or event.fence_id in self.fences:
            self.queue.put_nowait(geofence_pb2.WatchFenceEventsResponse(event=event))

    def end(self, error: BaseException) -> None:
        if self in self.mesh.watches:
            self.mesh.watches.remove(self)
        self.queue.put_nowait(error)

    def __aiter__(self):
        return self

    async def __anext__(self):
        item = await self.queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def cancel(self) -> None:
        self.end(asyncio.CancelledError())


class FakePositions:
    """A StreamPositions stream as casemesh.harness.streams.BidiStream presents it."""

    def __init__(self, mesh: FakeMesh):
        self.mesh = mesh
        self.code: str | None = None
        self.sent: list[tracker_pb2.StreamPositionsRequest] = []
        self.responses: asyncio.Queue = asyncio.Queue()
        self.fail = mesh.fail.pop(0) if mesh.fail else None
        mesh.position_streams.append(self)

    @property
    def ended(self) -> bool:
        return self.code is not None

    def send(self, request: tracker_pb2.StreamPositionsRequest) -> None:
        if self.code is not None:
            return
        self.sent.append(request)
        if self.fail is not None and len(self.sent) == self.fail[0]:
            if self.fail[1]:
                self.mesh.evaluate(request.positions)
            self._end("UNAVAILABLE")
            return
        applied, stale = self.mesh.evaluate(request.positions)
        self.responses.put_nowait(tracker_pb2.StreamPositionsResponse(batch_id=request.batch_id, applied=applied, stale=stale))

    async def recv(self):
        item = await self.responses.get()
        if item is None:
            self.responses.put_nowait(None)
        return item

    def _end(self, code: str) -> None:
        if self.code is None:
            self.code = code
            self.responses.put_nowait(None)

    async def close(self, timeout_s: float = 5.0) -> str:
        self._end("OK")
        return self.code

    def cancel(self) -> None:
        self._end("CANCELLED")


class FakeStreams:
    """What the proximity population needs of casemesh.harness.streams.Streams, over a FakeMesh."""

    share = (0, 1)

    def __init__(self, mesh: FakeMesh):
        self.mesh = mesh
        self.observed: list[tuple[str, float, str]] = []

    def observe(self, name: str, latency_s: float, code: str = "OK", *, sent_at: float) -> None:
        self.observed.append((name, latency_s, code))

    def codes(self, name: str) -> Counter[str]:
        return Counter(code for measured, _, code in self.observed if measured == name)

    def wall_ns(self, at: float) -> int:
        return int(at * 1e9)

    def perf_at(self, wall_ns: int) -> float:
        return wall_ns / 1e9

    def open(self, service: str, method: str, *, metadata=None) -> FakePositions:
        assert method == "StreamPositions"
        return FakePositions(self.mesh)

    def server_stream(self, service: str, method: str, request) -> FakeWatch:
        assert (service, method) == (GEOFENCE, "WatchFenceEvents")
        return FakeWatch(self.mesh, request)


def _fences() -> list[FenceSpec]:
    return [_fence(f"fn0000abcd-{i}", d.centre, 350.0) for i, d in enumerate(DISTRICTS[:6])]


def _population(mesh: FakeMesh | None = None, fences: list[FenceSpec] | None = None, **params) -> tuple[Population, FakeStreams]:
    fences = fences if fences is not None else _fences()
    mesh = mesh or FakeMesh(fences)
    values = {"places": 1, "fences": len(fences), "entities": 30, "gateways": 3, "report_interval_s": 0.05,
              "time_scale": 600, "walk_share": 0.0, "waypoint_district_share": 1.0, "ready_timeout_s": 3,
              "settle_timeout_s": 3, "catch_up_timeout_s": 3}
    values.update(params)
    streams = FakeStreams(mesh)
    return Population(streams, State(run="0000abcd", places=1, fences=fences), SeedParams(**values)), streams


async def _until(condition, timeout_s: float = 5.0) -> None:
    deadline = time.perf_counter() + timeout_s
    while not condition():
        assert time.perf_counter() < deadline, "timed out"
        await asyncio.sleep(0.005)


# a gateway against fake streams ---------------------------------------------------------------------------------------

async def test_a_gateway_resends_its_unacknowledged_batches_in_order_after_its_stream_breaks():
    population, streams = _population()
    mesh = streams.mesh
    gateway = population.gateways[0]
    assert [e.id for e in gateway.entities] == [f"en0000abcd-{i}-{population.session}" for i in range(0, 30, 3)]
    first = gateway.report(population.clock())  # before any stream: held
    assert first is not None and gateway.stream is None and list(gateway.unacked) == [first]
    mesh.fail = [(2, True), (1, False)]  # the 1st stream applies batch 2 and dies (its ack lost); the 2nd dies at once
    task = asyncio.get_running_loop().create_task(gateway.run_connection())
    await _until(lambda: gateway.acked == 1)
    gateway.report(population.clock())  # batch 2: applied, then the stream breaks
    await _until(lambda: len(mesh.position_streams) >= 3 and gateway.acked >= 2)
    gateway.report(population.clock())  # batch 3 on the third stream
    await _until(lambda: gateway.acked == 3)
    assert [r.batch_id for r in mesh.position_streams[0].sent] == [1, 2]
    assert [r.batch_id for r in mesh.position_streams[1].sent] == [2]  # resent first, then the stream died
    assert [r.batch_id for r in mesh.position_streams[2].sent] == [2, 3]
    assert gateway.stale == len(gateway.entities) and gateway.applied == 2 * len(gateway.entities)
    sequences = [[p.sequence for p in r.positions] for r in mesh.position_streams[2].sent]
    assert sequences == [[2] * 10, [3] * 10]  # each entity's sequence one up per report, the same on a resend
    assert streams.codes(UPDATE_ACK) == Counter({OK: 3}) and gateway.errors["StreamPositions UNAVAILABLE"] == 2
    assert population.ledger.acked_positions == 30  # each acknowledged batch into the ledger once
    await gateway.stop_reports()
    await asyncio.wait_for(task, 2)
    assert gateway.finished and mesh.position_streams[-1].code == "OK"


async def test_a_gateway_with_a_full_window_skips_reports():
    population, streams = _population(max_unacked_batches=2)
    gateway = population.gateways[0]
    assert gateway.report(1.0) is not None and gateway.report(2.0) is not None
    assert gateway.report(3.0) is None and gateway.skipped == 1
    assert streams.codes(UPDATE_ACK) == Counter({"RESOURCE_EXHAUSTED": 1})
    gateway.acknowledge(tracker_pb2.StreamPositionsResponse(batch_id=2))  # out of order: counted, still taken
    assert [b.batch_id for b in gateway.unacked] == [1] and gateway.errors["acknowledgement out of order"] == 1
    assert gateway.acknowledge(tracker_pb2.StreamPositionsResponse(batch_id=9)) is None


def test_probe_points_are_inside_and_just_outside_their_fence():
    north_edge = _fence("f", (contract.SERVICE_AREA.north_deg - 0.0001, -122.42), 300.0)
    for fence in (_fence("f", FIDI, 300.0), north_edge):
        inner, outer = probe_points(fence)
        assert contract.inside_fence(fence.lat_deg, fence.lng_deg, fence.radius_m, *inner)
        assert not contract.inside_fence(fence.lat_deg, fence.lng_deg, fence.radius_m, *outer) and inside(outer)


# the whole population against the fake services ----------------------------------------------------------------------

async def _run(population: Population, seconds: float = 0.6, during=None) -> None:
    await population.connect()
    try:
        await asyncio.sleep(seconds / 2)
        if during is not None:
            during()
        await asyncio.sleep(seconds / 2)
    finally:
        await population.close()


async def test_every_fence_event_arrives_exactly_once_through_reconnects_and_watch_restarts():
    population, streams = _population()
    mesh = streams.mesh
    # The probe's first stream breaks; then two gateways' streams, one after applying the batch (its ack lost), one
    # before; midway the watch stream breaks too.
    mesh.fail = [(1, True), (9, True), (2, False), (3, True)]
    await _run(population, during=lambda: mesh.break_watches(grpc.StatusCode.UNAVAILABLE))
    assert [g.errors["StreamPositions UNAVAILABLE"] for g in population.gateways] == [1, 1, 0]
    assert [g.stale for g in population.gateways] == [0, 10, 0] and population.probe_batches >= 2
    codes = streams.codes(FENCE_EVENTS)
    assert codes[OK] > 10 and set(codes) == {OK}, codes
    assert codes[OK] == sum(population.ledger.expected.values())
    assert streams.codes(UPDATE_ACK)[OK] == sum(g.batches for g in population.gateways)
    assert set(streams.codes(UPDATE_ACK)) == {OK}
    assert sum(streams.codes(FENCE_NOTIFY).values()) == codes[OK]
    assert all(w.sessions >= 2 and w.primed.is_set() for w in population.watchers)
    assert all(s.code in {"OK", "UNAVAILABLE", "CANCELLED"} for s in mesh.position_streams)


async def test_a_lost_and_a_duplicated_fence_event_are_caught():
    population, streams = _population(catch_up_timeout_s=0.5)
    streams.mesh.drop_events = 2
    streams.mesh.duplicate_events = 1
    await _run(population)
    codes = streams.codes(FENCE_EVENTS)
    assert codes[DATA_LOSS] == 2 and codes[DUPLICATE] == 1 and codes[OK] > 5


async def test_watchers_over_more_than_100_fences_each_get_a_probe():
    fences = [_fence(f"fn0000abcd-{i}", offset(FIDI, (i % 15) * 300 - 2000, (i // 15) * 300 - 1000), 120.0) for i in range(130)]
    population, streams = _population(fences=fences, entities=6)
    assert [len(w.fence_ids) for w in population.watchers] == [100, 30]
    await _run(population, seconds=0.3)
    assert all(w.primed.is_set() for w in population.watchers)
    assert set(streams.codes(FENCE_EVENTS)) <= {OK}


async def test_connect_fails_clearly_when_no_watcher_hears_a_probe():
    population, streams = _population(ready_timeout_s=0.3)
    streams.server_stream = lambda service, method, request: FakeWatchNever()
    with pytest.raises(grpc.aio.AioRpcError, match="received no probe event") as caught:
        await population.connect()
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    await population.close()


class FakeWatchNever:
    def __aiter__(self):
        return self

    async def __anext__(self):
        await asyncio.sleep(3600)

    def cancel(self) -> None:
        pass


# the journeys and their checks ----------------------------------------------------------------------------------------

def _hit(place_id: str, point: tuple[float, float], centre: tuple[float, float],
         category: int = places_pb2.PLACE_CATEGORY_CAFE) -> places_pb2.PlaceHit:
    return places_pb2.PlaceHit(place=places_pb2.Place(place_id=place_id, name=place_id, category=category,
                                                      point=geo_pb2.LatLng(lat_deg=point[0], lng_deg=point[1])),
                               distance_m=contract.distance_m(*centre, *point))


def test_search_pages_must_be_nearest_first_within_the_radius_of_the_category_and_without_repeats():
    centre = FIDI
    a, b, c = (_hit(f"p{i}", offset(centre, 100 * i, 0), centre) for i in (1, 2, 3))
    cafe = places_pb2.PLACE_CATEGORY_CAFE
    assert check_places([[a, b], [c]], centre, 1000, cafe, 2) is None
    assert "comes after" in check_places([[b, a]], centre, 1000, cafe, 2)
    assert "comes after" in check_places([[a, c], [b]], centre, 1000, cafe, 2)
    assert "twice" in check_places([[a, b], [b]], centre, 1000, cafe, 2)
    assert "beyond the radius" in check_places([[a, b, c]], centre, 250, 0, 3)
    assert "more than page_size" in check_places([[a, b, c]], centre, 1000, 0, 2)
    assert "category" in check_places([[a]], centre, 1000, places_pb2.PLACE_CATEGORY_BAR, 2)
    wrong = places_pb2.PlaceHit(place=a.place, distance_m=a.distance_m + 10)
    assert "reported at" in check_places([[wrong]], centre, 1000, 0, 2)
    twin = _hit("p0", (a.place.point.lat_deg, a.place.point.lng_deg), centre)
    assert check_places([[twin, a]], centre, 1000, 0, 2) is None  # a tie: by id
    assert "comes after" in check_places([[a, twin]], centre, 1000, 0, 2)


def test_nearby_answers_must_be_nearest_first_within_the_radius_and_the_limit():
    centre = FIDI

    def found(entity: str, east_m: float) -> tracker_pb2.NearbyEntity:
        point = offset(centre, east_m, 0)
        return tracker_pb2.NearbyEntity(position=proximity_pb2.EntityPosition(
            entity_id=entity, sequence=1, point=geo_pb2.LatLng(lat_deg=point[0], lng_deg=point[1])),
            distance_m=contract.distance_m(*centre, *point))

    near, far = found("e1", 100), found("e2", 400)
    assert check_entities([near, far], centre, 500, 2) is None
    assert "comes after" in check_entities([far, near], centre, 500, 2)
    assert "beyond" in check_entities([near, far], centre, 300, 2)
    assert "limit" in check_entities([near, far], centre, 500, 1)
    assert "twice" in check_entities([near, near], centre, 500, 2)


class JourneyCaller:
    """A journey's Caller over canned answers: SearchPlaces pages by token, GetPlace of what the search returned."""

    def __init__(self, hits, *, other_place: bool = False) -> None:
        self.calls: list[tuple[str, object]] = []
        self.observed: list[tuple[str, str]] = []
        self.hits = hits
        self.returned: dict[str, places_pb2.Place] = {}
        self.other_place = other_place
        self.intended_at = time.perf_counter()

    async def __call__(self, service: str, method: str, request):
        self.calls.append((method, request))
        if method == "SearchPlaces":
            hits = self.hits((request.center.lat_deg, request.center.lng_deg), request)
            size = request.page_size
            page = hits[:size] if not request.page_token else hits[size:2 * size]
            assert request.page_token in ("", "page-2")
            self.returned.update((hit.place.place_id, hit.place) for hit in page)
            return places_pb2.SearchPlacesResponse(places=page, next_page_token="" if request.page_token else "page-2")
        if method == "GetPlace":
            place = places_pb2.Place()
            place.CopyFrom(self.returned[request.place_id])
            if self.other_place:
                place.rating_tenths += 5
            return places_pb2.GetPlaceResponse(place=place)
        if method == "FindNearbyEntities":
            return tracker_pb2.FindNearbyEntitiesResponse()
        raise AssertionError(method)

    def observe(self, name: str, latency_s: float, code: str = "OK") -> None:
        self.observed.append((name, code))


def _places(centre, request) -> list:
    return [_hit(f"p{i:02d}", offset(centre, 20 * i, 0), centre, request.category or places_pb2.PLACE_CATEGORY_CAFE)
            for i in range(1, 50)]


async def test_the_search_journey_pages_with_the_token_and_opens_a_hit():
    params = SearchParams(next_page_p=1.0, open_p=1.0, any_category_p=0.0, radii_m=(2000.0,), radius_weights=(1.0,))
    caller = JourneyCaller(_places)
    await search(caller, params, None, random.Random(4))
    assert [m for m, _ in caller.calls] == ["SearchPlaces", "SearchPlaces", "GetPlace"]
    first, second, opened = (request for _, request in caller.calls)
    assert second.page_token == "page-2" and (second.center, second.radius_m, second.category) == (
        first.center, first.radius_m, first.category)
    assert first.category != places_pb2.PLACE_CATEGORY_UNSPECIFIED and first.radius_m == 2000
    assert inside((first.center.lat_deg, first.center.lng_deg)) and opened.place_id in caller.returned
    assert caller.observed == [(SEARCH_RESULTS, OK)]


async def test_a_search_whose_place_changes_when_opened_breaks_the_contract():
    params = SearchParams(next_page_p=0.0, open_p=1.0)
    caller = JourneyCaller(_places, other_place=True)
    await search(caller, params, None, random.Random(4))
    assert [m for m, _ in caller.calls] == ["SearchPlaces", "GetPlace"] and caller.observed == [(SEARCH_RESULTS, DATA_LOSS)]
    empty = JourneyCaller(lambda centre, request: [])
    await search(empty, params, None, random.Random(4))
    assert [m for m, _ in empty.calls] == ["SearchPlaces"] and empty.observed == [(SEARCH_RESULTS, OK)]


async def test_the_nearby_journey_asks_within_its_radius_and_limit():
    caller = JourneyCaller(_places)
    await nearby(caller, NearbyParams(radius_min_m=600, radius_max_m=700, limit=7), None, random.Random(2))
    (method, request), = caller.calls
    assert method == "FindNearbyEntities" and 600 <= request.radius_m <= 700 and request.limit == 7
    assert caller.observed == [(SEARCH_RESULTS, OK)]


def test_journey_params_refuse_what_the_contract_cannot_take():
    with pytest.raises(ValidationError, match="one weight per radius"):
        SearchParams(radii_m=(500.0, 1000.0), radius_weights=(1.0,))
    with pytest.raises(ValidationError, match="radii_m"):
        SearchParams(radii_m=(60_000.0,), radius_weights=(1.0,))
    with pytest.raises(ValidationError, match="page_size"):
        SearchParams(page_size=101)
    with pytest.raises(ValidationError, match="radius_min_m"):
        NearbyParams(radius_min_m=3000, radius_max_m=2000)


# the profile and the contracts ----------------------------------------------------------------------------------------

def test_the_workload_declares_its_services_journeys_and_measures():
    workload = get_workload("proximity")
    assert set(workload.services) == {"proximity-places", "proximity-tracker", "proximity-geofence"}
    assert set(workload.measures) == {"update_ack", "fence_notify", "fence_events_exactly_once", "search_results"}
    assert "casemesh.proximity.v1.PlacesService/SearchPlaces" in workload.rpcs
    assert list(workload.journeys) == ["search", "nearby"]


def test_the_shipped_profile_loads_with_its_slos():
    profile = load_profile("proximity")
    assert profile.seed.places == 50_000 and profile.seed.entities == 2000 and profile.seed.updates_per_s == 1000
    assert list(profile.services) == ["proximity-places", "proximity-tracker", "proximity-geofence"]
    names = {slo.name for slo in profile.slos}
    assert {"search-latency", "update-ack", "fence-notify", "search-availability", "fence-events-exactly-once",
            "search-results", "search-latency-server", "update-ack-server", "fence-notify-server"} <= names
    twins = {slo.name: slo.twin_of for slo in profile.slos if slo.twin_of}
    assert twins["search-latency-server"] == "search-latency" and twins["fence-notify-server"] == "fence-notify"
    search_latency = next(slo for slo in profile.slos if slo.name == "search-latency")
    assert search_latency.target == 0.99 and search_latency.good.latency_le_ms == 100
    assert "line 51" in profile.metadata.source


def test_a_bad_workload_option_names_its_field(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent("""\
        apiVersion: casemesh.dev/v1
        kind: Profile
        metadata: {name: p}
        workload: proximity
        services: [proximity-places, proximity-tracker, proximity-geofence]
        seed:
          entities: 0
        arrival: {process: poisson, rate_per_s: 1}
        duration_s: 5
        journeys:
          - {name: search, weight: 1, params: {next_page_p: 2}}
        """))
    with pytest.raises(ConfigError) as caught:
        load_profile(str(path))
    text = str(caught.value) + " ".join(str(p) for p in caught.value.more)
    assert "entities" in text and "next_page_p" in text


def test_the_workload_imports_only_the_contracts():
    for source in WORKLOAD_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                if name.startswith("casemesh.services"):
                    assert name == "casemesh.services.proximity.contract", f"{source.name} imports {name}"
    code = ("import sys; from casemesh.harness.workloads import get_workload; get_workload('proximity'); "
            "print(sorted(m for m in sys.modules if m.startswith('casemesh.services.')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # The contract module and what it is made of: the shared service area and identifier rule (and its error type).
    assert done.stdout.strip() == str(sorted([
        "casemesh.services.proximity", "casemesh.services.proximity.contract", "casemesh.services.geo",
        "casemesh.services.geo.area", "casemesh.services.runtime", "casemesh.services.runtime.identifiers",
        "casemesh.services.runtime.errors"]))
