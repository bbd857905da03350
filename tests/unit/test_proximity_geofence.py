"""proximity-geofence (services/proximity/geofence): fence events neither lost nor repeated.

The transition table (enter, stay, exit, re-enter, overlapping fences, a fence created or deleted while inside,
stale positions); retried and concurrent batches give each event once; a hypothesis state machine against a
brute-force model (fences created and deleted, batches retried, concurrent, failed commits, restarts) whose
event log must equal the model's exactly; a process SIGKILLed mid-run loses no acknowledged batch and, once the
tracker resends, repeats nothing; the fence index finds every fence containing a point (hypothesis, big fences at
coarser resolutions included); watchers resume without a gap or a repeat while events are written, get
OUT_OF_RANGE after retention, RESOURCE_EXHAUSTED when they fall behind or are too many, UNAVAILABLE on shutdown;
validation names the proto's fields; status codes over gRPC.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import shutil
import signal
import sqlite3
import sys
import tempfile
from pathlib import Path

import grpc
import h3
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from prometheus_client import CollectorRegistry

from casemesh.common.v1 import geo_pb2
from casemesh.proximity.v1 import geofence_pb2, geofence_pb2_grpc, proximity_pb2
from casemesh.services.proximity.contract import inside_fence
from casemesh.services.proximity.geofence import validation
from casemesh.services.proximity.geofence.evaluator import (
    ENTER,
    EXIT,
    EntityState,
    Evaluator,
    FenceEvent,
    Position,
)
from casemesh.services.proximity.geofence.fences import Fence, FenceIndex, fence_cells
from casemesh.services.proximity.geofence.geofences import Geofences, StoreUnavailable
from casemesh.services.proximity.geofence.service import (
    DEFINITION,
    EVALUATE_CALLERS,
    FILE_NAME,
    GeofenceServicer,
)
from casemesh.services.proximity.geofence.settings import GeofenceSettings
from casemesh.services.proximity.geofence.watchers import (
    EventFeed,
    EventsTrimmed,
    WatcherFellBehind,
    WatchStopped,
)
from casemesh.services.runtime.errors import AlreadyExists, InvalidArgument, NotFound, ResourceExhausted
from casemesh.services.runtime.interceptors.server import ServerInterceptor
from casemesh.services.runtime.metrics import RpcMetrics

WAIT_S = 10.0  # generous: only a hang would reach it
SF = (37.77, -122.42)
REPO = Path(__file__).resolve().parents[2]


def offset(lat: float, lng: float, north_m: float, east_m: float) -> tuple[float, float]:
    """A point ``north_m`` north and ``east_m`` east of (lat, lng) (flat-earth offset; fine within tens of km)."""
    new_lat = lat + math.degrees(north_m / 6_371_008.8)
    return new_lat, lng + math.degrees(east_m / (6_371_008.8 * math.cos(math.radians(new_lat))))


def at(north_m: float, east_m: float = 0.0) -> tuple[float, float]:
    return offset(*SF, north_m, east_m)


def pos(entity_id: str, sequence: int, point: tuple[float, float], sent_at: int = 0) -> Position:
    return Position(entity_id, sequence, point[0], point[1], sent_at)


def fence(fence_id: str, point: tuple[float, float], radius_m: float, name: str = "") -> Fence:
    return Fence(fence_id, name, point[0], point[1], radius_m)


def brief(events) -> list[tuple[str, str, str, int]]:
    """(fence, ENTER/EXIT, entity, entity sequence) of each event."""
    return [(e.fence_id, "ENTER" if e.transition == ENTER else "EXIT", e.position.entity_id, e.position.sequence)
            for e in events]


def logged(path: Path) -> list[tuple[int, str, int, str, int]]:
    """The event log as the file holds it: (sequence, fence, transition, entity, entity sequence)."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT sequence, fence_id, transition, entity_id, entity_sequence FROM events "
                          "ORDER BY sequence").fetchall()


@contextlib.asynccontextmanager
async def opened(folder: Path, **overrides):
    geofences = Geofences(GeofenceSettings(**overrides), folder / FILE_NAME, wall_clock=lambda: 1_700_000_000.0)
    await geofences.start()
    try:
        yield geofences
    finally:
        await asyncio.wait_for(geofences.close(), WAIT_S)


# -- the transition table (plain evaluator, no store) ----------------------------------------------------------------

class Table:
    """An evaluator over an index, applying each evaluation at once (what the service does once it is written)."""

    def __init__(self) -> None:
        self.index = FenceIndex(8, 500)
        self.evaluator = Evaluator(self.index)
        self.states: dict[str, EntityState] = {}
        self.next = 1
        self.generation = 0

    def add(self, f: Fence) -> None:
        self.generation += 1
        self.index.add(Fence(f.fence_id, f.name, f.lat_deg, f.lng_deg, f.radius_m, self.generation))

    def run(self, *positions: Position) -> list[tuple[str, str, str, int]]:
        evaluation = self.evaluator.evaluate(positions, self.states.get, self.next, 0)
        self.states.update(evaluation.states)
        assert [e.sequence for e in evaluation.events] == list(range(self.next, self.next + len(evaluation.events)))
        self.next += len(evaluation.events)
        return brief(evaluation.events)


def test_enter_stay_exit_and_enter_again():
    table = Table()
    table.add(fence("home", SF, 200))
    assert table.run(pos("e", 1, at(1_000))) == []  # first seen outside: nothing
    assert table.run(pos("e", 2, at(100))) == [("home", "ENTER", "e", 2)]
    assert table.run(pos("e", 3, at(50, 50))) == []  # stays inside
    assert table.run(pos("e", 4, at(0, 300))) == [("home", "EXIT", "e", 4)]
    assert table.run(pos("e", 5, at(0, 400))) == []
    assert table.run(pos("e", 6, SF)) == [("home", "ENTER", "e", 6)]
    assert table.states["e"] == EntityState(6, (("home", 1),))


def test_first_position_inside_enters_and_the_radius_is_inclusive():
    table = Table()
    table.add(fence("f", SF, 100))
    edge = at(99.9)
    assert inside_fence(*SF, 100, *edge)
    assert table.run(pos("a", 1, edge), pos("b", 1, at(100.5))) == [("f", "ENTER", "a", 1)]


def test_overlapping_fences_give_one_event_each_in_fence_id_order():
    table = Table()
    table.add(fence("zeta", SF, 500))
    table.add(fence("alpha", at(300), 500))
    table.add(fence("mid", at(-2_000), 300))
    assert table.run(pos("e", 1, at(150))) == [("alpha", "ENTER", "e", 1), ("zeta", "ENTER", "e", 1)]
    assert table.run(pos("e", 2, at(-400))) == [("alpha", "EXIT", "e", 2)]
    # Leaving zeta and entering mid in one move: one position's events by fence id, whatever the transition.
    assert table.run(pos("e", 3, at(-2_000))) == [("mid", "ENTER", "e", 3), ("zeta", "EXIT", "e", 3)]


def test_a_fence_created_while_inside_enters_at_the_next_position():
    table = Table()
    assert table.run(pos("e", 1, SF)) == []
    table.add(fence("new", SF, 100))
    assert table.run(pos("e", 2, at(10))) == [("new", "ENTER", "e", 2)]


def test_a_fence_deleted_while_inside_gives_no_exit_and_created_again_enters_again():
    table = Table()
    table.add(fence("f", SF, 100))
    table.add(fence("g", SF, 1_000))
    assert table.run(pos("e", 1, SF)) == [("f", "ENTER", "e", 1), ("g", "ENTER", "e", 1)]
    table.index.remove("f")
    assert table.run(pos("e", 2, at(5_000))) == [("g", "EXIT", "e", 2)]  # no EXIT of f: it is gone
    assert table.states["e"].inside == ()
    assert table.run(pos("e", 3, SF)) == [("g", "ENTER", "e", 3)]
    table.index.remove("g")
    table.add(fence("g", SF, 1_000))  # the same id again, while e is inside: a new fence (generation)
    assert table.run(pos("e", 4, at(1))) == [("g", "ENTER", "e", 4)]


def test_stale_positions_change_nothing_and_an_entity_twice_in_a_batch_is_evaluated_in_order():
    table = Table()
    table.add(fence("f", SF, 100))
    assert table.run(pos("e", 5, SF)) == [("f", "ENTER", "e", 5)]
    assert table.run(pos("e", 5, at(900)), pos("e", 3, at(900))) == []
    assert table.states["e"] == EntityState(5, (("f", 1),))
    # The service refuses a batch naming an entity twice; the evaluator still gives the right answer.
    evaluation = table.evaluator.evaluate([pos("e", 6, at(900)), pos("e", 6, SF), pos("e", 7, SF)],
                                          table.states.get, 2, 0)
    assert (evaluation.applied, evaluation.stale) == (2, 1)
    assert brief(evaluation.events) == [("f", "EXIT", "e", 6), ("f", "ENTER", "e", 7)]


# -- the fence index -------------------------------------------------------------------------------------------------

def destination(lat: float, lng: float, bearing_deg: float, distance_m: float) -> tuple[float, float]:
    """The point ``distance_m`` from (lat, lng) along ``bearing_deg`` on the sphere of h3.great_circle_distance."""
    r = 6_371_008.8
    phi, lam, theta, delta = math.radians(lat), math.radians(lng), math.radians(bearing_deg), distance_m / r
    phi2 = math.asin(math.sin(phi) * math.cos(delta) + math.cos(phi) * math.sin(delta) * math.cos(theta))
    lam2 = lam + math.atan2(math.sin(theta) * math.sin(delta) * math.cos(phi),
                            math.cos(delta) - math.sin(phi) * math.sin(phi2))
    return math.degrees(phi2), (math.degrees(lam2) + 540) % 360 - 180


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lat=st.floats(37.70, 37.82), lng=st.floats(-122.52, -122.36),
       radius=st.one_of(st.floats(10, 50_000), st.sampled_from([10.0, 49_999.0, 50_000.0, 2_500.0])),
       resolution=st.integers(4, 12), max_cells=st.sampled_from([7, 19, 61, 500, 1_801]),
       bearing=st.floats(0, 360), share=st.one_of(st.floats(0, 1), st.just(1.0), st.floats(0.999, 1)))
def test_the_index_finds_every_fence_containing_a_point(lat, lng, radius, resolution, max_cells, bearing, share):
    index = FenceIndex(resolution, max_cells)
    index.add(Fence("f", "", lat, lng, radius))
    point = destination(lat, lng, bearing, radius * share)
    assume(inside_fence(lat, lng, radius, *point))
    assert "f" in [f.fence_id for f in index.candidates(*point)]
    inside, measured = index.containing(*point)
    assert [f.fence_id for f in inside] == ["f"] and measured == 1


def test_fence_cells_stay_under_the_bound_by_going_coarser():
    r, cells = fence_cells(*SF, 50_000, 8, 500)
    assert r < 8 and len(cells) <= 500 and len(set(cells)) == len(cells)
    assert all(h3.get_resolution(c) == r for c in cells)
    r, cells = fence_cells(*SF, 10, 8, 500)
    assert r == 8 and len(cells) == 7  # the centre cell and ring 1: a point near the cell's edge
    index = FenceIndex(8, 500)
    index.add(fence("big", SF, 50_000))
    index.add(fence("small", SF, 50))
    r_big = h3.get_resolution(index._cells_of["big"][0])
    assert r_big < 8 and index.resolutions == (8, r_big)
    assert {f.fence_id for f in index.candidates(*SF)} == {"big", "small"}
    index.remove("small")
    assert index.resolutions == (r_big,)
    index.remove("big")
    assert index.resolutions == () and index.cell_entries == 0 and index._by_cell == {}


# -- Geofences: retries, concurrency, durability ---------------------------------------------------------------------

async def test_a_retried_batch_gives_no_event_again(tmp_path):
    async with opened(tmp_path) as g:
        assert await g.create_fence(fence("f", SF, 100)) is True
        batch = [pos("a", 1, SF, 111), pos("b", 1, at(500))]
        result = await g.evaluate(batch)
        assert (result.applied, result.stale, result.events) == (2, 0, 1)
        again = await g.evaluate(batch)
        assert (again.applied, again.stale, again.events) == (0, 2, 0)
        assert logged(tmp_path / FILE_NAME) == [(1, "f", ENTER, "a", 1)]


async def test_a_retry_while_the_first_is_still_being_written_waits_for_it_and_repeats_nothing(tmp_path):
    async with opened(tmp_path) as g:
        await g.create_fence(fence("f", SF, 100))
        batch = [pos(f"e{i}", 1, SF) for i in range(50)]
        results = await asyncio.gather(*(g.evaluate(batch) for _ in range(5)))
        assert [(r.applied, r.events) for r in results] == [(50, 50)] + [(0, 0)] * 4
        assert [row[0] for row in logged(tmp_path / FILE_NAME)] == list(range(1, 51))


async def test_concurrent_batches_are_group_committed_with_consecutive_sequences(tmp_path):
    async with opened(tmp_path, max_commit_positions=7) as g:
        await g.create_fence(fence("f", SF, 100))

        async def device(n: int) -> None:
            for seq in range(1, 9):
                await g.evaluate([pos(f"d{n}", seq, SF if seq % 2 else at(1_000))])

        await asyncio.gather(*(device(n) for n in range(12)))
        rows = logged(tmp_path / FILE_NAME)
        assert [row[0] for row in rows] == list(range(1, len(rows) + 1)) and g.last_sequence == len(rows)
        for n in range(12):
            mine = [(transition, seq) for _, _, transition, entity, seq in rows if entity == f"d{n}"]
            assert mine == [(ENTER if s % 2 else EXIT, s) for s in range(1, 9)]


async def test_state_fences_and_sequence_survive_a_restart(tmp_path):
    async with opened(tmp_path) as g:
        await g.create_fence(fence("f", SF, 100, name="Ferry Building"))
        await g.create_fence(fence("gone", SF, 100))
        await g.evaluate([pos("e", 4, SF, 1_234)])
        await g.delete_fence("gone")
    async with opened(tmp_path) as g:
        assert g.get_fence("f").name == "Ferry Building" and "gone" not in g.index
        assert g.last_sequence == 2 and g.entity_state("e").last_sequence == 4
        assert (await g.evaluate([pos("e", 4, at(900))])).stale == 1  # stale across the restart
        assert (await g.evaluate([pos("e", 5, at(900))])).events == 1  # EXIT f; "gone" dropped silently
        await g.create_fence(fence("gone", SF, 100))  # a new generation: never one given before the restart
        assert g.get_fence("gone").generation == 3
        events = [e async for e in _take(g.watch(frozenset(), 0), 3)]
        assert brief(events) == [("f", "ENTER", "e", 4), ("gone", "ENTER", "e", 4), ("f", "EXIT", "e", 5)]
        assert events[0].position.sent_at_unix_ms == 1_234 and events[0].recorded_at_unix_ms == 1_700_000_000_000


async def _take(stream, n: int):
    async with contextlib.aclosing(stream) as events:
        async for event in events:
            yield event
            n -= 1
            if n == 0:
                return


async def test_fence_changes_are_idempotent_bounded_and_durable(tmp_path):
    async with opened(tmp_path, max_fences=2) as g:
        assert await g.create_fence(fence("a", SF, 100, "A")) is True
        assert await g.create_fence(fence("a", SF, 100, "A")) is False
        with pytest.raises(AlreadyExists):
            await g.create_fence(fence("a", SF, 101, "A"))
        await g.create_fence(fence("b", SF, 100))
        with pytest.raises(ResourceExhausted):
            await g.create_fence(fence("c", SF, 100))
        assert await g.create_fence(fence("b", SF, 100)) is False  # a retry at the limit is still answered
        assert (await g.delete_fence("b")).fence_id == "b"
        with pytest.raises(NotFound):
            await g.delete_fence("b")
        with pytest.raises(NotFound):
            g.get_fence("b")
        assert await g.create_fence(fence("c", SF, 100)) is True
    async with opened(tmp_path) as g:
        assert {f.fence_id: f.generation for f in g.index.fences()} == {"a": 1, "c": 3}


async def test_a_failed_commit_changes_nothing_and_the_retry_counts_once(tmp_path):
    async with opened(tmp_path) as g:
        await g.create_fence(fence("f", SF, 100))
        real = g.store.commit

        def refuse(changes):
            raise sqlite3.OperationalError("database or disk is full")

        g.store.commit = refuse
        batch = [pos("e", 1, SF)]
        with pytest.raises(StoreUnavailable):
            await g.evaluate(batch)
        assert g.entity_state("e") is None and g.last_sequence == 0
        g.store.commit = real
        await _settled(g)  # until the file is re-read, calls are answered UNAVAILABLE
        result = await g.evaluate(batch)
        assert (result.applied, result.events) == (1, 1)
        assert logged(tmp_path / FILE_NAME) == [(1, "f", ENTER, "e", 1)]


async def _settled(g: Geofences) -> None:
    for _ in range(1_000):
        if not g._resync_needed and (g._writer is None or g._writer.done()):
            return
        await asyncio.sleep(0.001)
    raise AssertionError("the writer did not settle")


async def test_a_commit_that_failed_after_reaching_the_file_is_published_once_and_its_retry_is_stale(tmp_path):
    async with opened(tmp_path) as g:
        await g.create_fence(fence("f", SF, 100))
        watcher = g.watch(frozenset(), 0)
        first = asyncio.ensure_future(anext(watcher))
        real = g.store.commit

        def written_then_failed(changes):
            real(changes)
            raise sqlite3.OperationalError("disk I/O error")

        g.store.commit = written_then_failed
        batch = [pos("e", 1, SF), pos("x", 1, SF)]
        with pytest.raises(StoreUnavailable):
            await g.evaluate(batch)
        g.store.commit = real
        await _settled(g)
        assert g.last_sequence == 2 and g.entity_state("e").last_sequence == 1  # re-read from the file
        result = await g.evaluate(batch)
        assert (result.applied, result.stale, result.events) == (0, 2, 0)
        assert (await asyncio.wait_for(first, WAIT_S)).sequence == 1
        assert (await asyncio.wait_for(anext(watcher), WAIT_S)).sequence == 2
        await g.evaluate([pos("e", 2, at(900))])
        assert (await asyncio.wait_for(anext(watcher), WAIT_S)).sequence == 3  # no repeat of 1 or 2
        await watcher.aclose()
        assert [row[0] for row in logged(tmp_path / FILE_NAME)] == [1, 2, 3]


async def test_batches_queued_behind_a_failed_commit_fail_too(tmp_path):
    async with opened(tmp_path) as g:
        await g.create_fence(fence("f", SF, 100))
        real = g.store.commit
        gate = asyncio.Event()
        loop = asyncio.get_running_loop()

        def slow_refuse(changes):
            asyncio.run_coroutine_threadsafe(gate.wait(), loop).result(WAIT_S)
            raise sqlite3.OperationalError("disk I/O error")

        g.store.commit = slow_refuse
        first = asyncio.ensure_future(g.evaluate([pos("e", 1, SF)]))
        await asyncio.sleep(0.01)
        second = asyncio.ensure_future(g.evaluate([pos("e", 2, at(900))]))  # evaluated on top of the first
        await asyncio.sleep(0)
        g.store.commit = real
        gate.set()
        for call in (first, second):
            with pytest.raises(StoreUnavailable):
                await asyncio.wait_for(call, WAIT_S)
        await _settled(g)
        assert g.entity_state("e") is None
        await g.evaluate([pos("e", 2, at(900))])
        assert logged(tmp_path / FILE_NAME) == [] and g.entity_state("e").last_sequence == 2


# -- the model -------------------------------------------------------------------------------------------------------

GRID = [at(north, east) for north in (-600, -200, 0, 250, 700) for east in (-500, 0, 450)]
ENTITIES = ("e0", "e1", "e2", "e3")
FENCE_IDS = ("fa", "fb", "fc")
RADII = (150.0, 420.0, 900.0)


class Model:
    """Fences (with generations), entity states and the event log, by brute force over every fence."""

    def __init__(self) -> None:
        self.fences: dict[str, tuple[Fence, int]] = {}
        self.generation = 0
        self.states: dict[str, tuple[int, dict[str, int]]] = {}
        self.events: list[tuple[str, int, str, int]] = []  # (fence, transition, entity, entity sequence)

    def evaluate(self, batch: list[Position]) -> tuple[int, int, int]:
        applied = stale = events = 0
        for p in batch:
            last, inside = self.states.get(p.entity_id, (0, {}))
            if p.sequence <= last:
                stale += 1
                continue
            now = {fid: gen for fid, (f, gen) in self.fences.items()
                   if inside_fence(f.lat_deg, f.lng_deg, f.radius_m, p.lat_deg, p.lng_deg)}
            before = {fid: gen for fid, gen in inside.items()
                      if fid in self.fences and self.fences[fid][1] == gen}
            for fid in sorted(set(now) | set(before)):
                if (fid in now) != (fid in before):
                    self.events.append((fid, ENTER if fid in now else EXIT, p.entity_id, p.sequence))
                    events += 1
            self.states[p.entity_id] = (p.sequence, now)
            applied += 1
        return applied, stale, events


class GeofenceMachine(RuleBasedStateMachine):
    """Any sequence of fence changes, batches (retried, concurrent, stale), failed commits and restarts: the event
    log on disk equals the model's, numbered 1, 2, 3, ... and every entity's state equals the model's."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = Path(tempfile.mkdtemp(prefix="geofence-"))
        self.g: Geofences | None = None
        self.model = Model()
        self.sequences = dict.fromkeys(ENTITIES, 0)
        self.last_batch: list[Position] | None = None
        self.applied_last = False
        self.reopen()

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    def reopen(self) -> None:
        async def make():
            if self.g is not None:
                await self.g.close()
            return Geofences(GeofenceSettings(max_commit_positions=3, recent_events=8), self.folder / FILE_NAME)

        self.g = self.run(make())

    def batch(self, moves) -> list[Position]:
        positions = []
        for entity, point, step in moves:
            self.sequences[entity] += step
            positions.append(Position(entity, self.sequences[entity], *GRID[point]))
        return positions

    moves = st.lists(st.tuples(st.sampled_from(ENTITIES), st.integers(0, len(GRID) - 1), st.integers(1, 3)),
                     min_size=1, max_size=4, unique_by=lambda move: move[0])

    @rule(fence_id=st.sampled_from(FENCE_IDS), point=st.integers(0, len(GRID) - 1), radius=st.sampled_from(RADII))
    def create_fence(self, fence_id, point, radius):
        f = fence(fence_id, GRID[point], radius)
        known = self.model.fences.get(fence_id)
        if known is not None and not known[0].same_definition(f):
            with pytest.raises(AlreadyExists):
                self.run(self.g.create_fence(f))
            return
        assert self.run(self.g.create_fence(f)) is (known is None)
        if known is None:
            self.model.generation += 1
            self.model.fences[fence_id] = (f, self.model.generation)

    @rule(fence_id=st.sampled_from(FENCE_IDS))
    def delete_fence(self, fence_id):
        if fence_id not in self.model.fences:
            with pytest.raises(NotFound):
                self.run(self.g.delete_fence(fence_id))
            return
        self.run(self.g.delete_fence(fence_id))
        del self.model.fences[fence_id]

    @rule(moves=moves)
    def move(self, moves):
        batch = self.batch(moves)
        result = self.run(self.g.evaluate(batch))
        assert (result.applied, result.stale, result.events) == self.model.evaluate(batch)
        self.remember(batch, True)

    @precondition(lambda self: self.last_batch is not None)
    @rule()
    def retry_last_batch(self):
        """The tracker sends the last batch again: all stale once it was written (a failed one is evaluated now)."""
        result = self.run(self.g.evaluate(self.last_batch))
        assert (result.applied, result.stale, result.events) == self.model.evaluate(self.last_batch)
        assert result.applied == 0 or not self.applied_last
        self.applied_last = True

    def remember(self, batch: list[Position], applied: bool) -> None:
        self.last_batch = batch
        self.applied_last = applied

    @rule(first=moves, second=moves, retry=st.booleans())
    def concurrent(self, first, second, retry):
        one = self.batch(first)
        two = self.batch(second)
        batches = [one, two] + ([one] if retry else [])

        async def together():
            return await asyncio.gather(*(self.g.evaluate(b) for b in batches))

        results = self.run(together())
        for batch, result in zip(batches, results, strict=True):  # queue order = call order
            assert (result.applied, result.stale, result.events) == self.model.evaluate(batch)

    @rule(moves=moves, reached_the_file=st.booleans())
    def failed_commit(self, moves, reached_the_file):
        batch = self.batch(moves)
        real = self.g.store.commit

        def failing(changes):
            if reached_the_file:
                real(changes)
            raise sqlite3.OperationalError("disk I/O error")

        self.g.store.commit = failing
        with pytest.raises(StoreUnavailable):
            self.run(self.g.evaluate(batch))
        self.g.store.commit = real
        self.run(_settled(self.g))
        if reached_the_file:
            self.model.evaluate(batch)
        self.remember(batch, reached_the_file)  # the tracker sends it again

    @rule()
    def restart(self):
        self.reopen()

    @invariant()
    def the_log_equals_the_model(self):
        rows = logged(self.folder / FILE_NAME)
        assert [row[0] for row in rows] == list(range(1, len(rows) + 1))
        assert [row[1:] for row in rows] == self.model.events
        assert self.g.last_sequence == len(rows)
        for entity, (last, inside) in self.model.states.items():
            state = self.g.entity_state(entity)
            assert state.last_sequence == last
            assert dict(state.inside) == inside
        assert {f.fence_id: f.generation for f in self.g.index.fences()} == {
            fid: gen for fid, (_, gen) in self.model.fences.items()}
        assert self.g._overlay == {} and self.g._unfinished == 0 and self.g._queue == []  # nothing left behind

    def teardown(self):
        if self.g is not None:
            self.run(self.g.close())
        self.run(self.loop.shutdown_default_executor())
        self.loop.close()
        shutil.rmtree(self.folder, ignore_errors=True)


TestGeofenceModel = GeofenceMachine.TestCase
TestGeofenceModel.settings = settings(max_examples=40, stateful_step_count=30, deadline=None,
                                      suppress_health_check=[HealthCheck.too_slow])


# -- a SIGKILL mid-run -----------------------------------------------------------------------------------------------

CHILD = """
import asyncio, json, sys
from pathlib import Path
from casemesh.services.proximity.geofence.evaluator import Position
from casemesh.services.proximity.geofence.fences import Fence
from casemesh.services.proximity.geofence.geofences import Geofences
from casemesh.services.proximity.geofence.settings import GeofenceSettings

async def main(folder, plan):
    g = Geofences(GeofenceSettings(), Path(folder) / "geofences.sqlite")
    for f in plan["fences"]:
        await g.create_fence(Fence(*f))
    print("ready", flush=True)

    async def device(n, batches):
        for i, batch in enumerate(batches):
            await g.evaluate([Position(*p) for p in batch])
            print(f"ack {n} {i}", flush=True)

    await asyncio.gather(*(device(n, b) for n, b in enumerate(plan["devices"])))
    print("done", flush=True)
    await asyncio.sleep(60)

asyncio.run(main(sys.argv[1], json.loads(sys.stdin.readline())))
"""


def kill_plan() -> dict:
    """Four gateways, each with its own 10 entities walking across three fences, 40 batches each."""
    fences = [("north", "", *at(300), 250.0), ("south", "", *at(-300), 250.0), ("wide", "", *SF, 700.0)]
    path = [at(north) for north in (-900, -300, 0, 300, 900, 300, 0, -300)]
    devices = []
    for n in range(4):
        batches = []
        for i in range(40):
            batches.append([(f"g{n}e{k}", i + 1, *path[(i + k) % len(path)], 0) for k in range(10)])
        devices.append(batches)
    return {"fences": fences, "devices": devices}


async def test_a_sigkill_loses_no_acknowledged_batch_and_the_resend_repeats_no_event(tmp_path):
    plan = kill_plan()
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(tmp_path), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        cwd=REPO)
    child.stdin.write((json.dumps(plan) + "\n").encode())
    await child.stdin.drain()
    acked: dict[int, int] = {}  # device → last batch acknowledged
    try:
        async with asyncio.timeout(WAIT_S * 3):
            while sum(i + 1 for i in acked.values()) < 60:
                line = (await child.stdout.readline()).decode().split()
                assert line, "the child ended early"
                if line[0] == "ack":
                    acked[int(line[1])] = int(line[2])
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
    assert child.returncode == -signal.SIGKILL

    async with opened(tmp_path) as g:
        for n, batches in enumerate(plan["devices"]):
            last = acked.get(n, -1)
            for k in range(10):  # nothing acknowledged was lost
                state = g.entity_state(f"g{n}e{k}")
                assert last < 0 or (state is not None and state.last_sequence >= last + 1)
        # The gateways resend every batch not acknowledged (the one in flight may or may not have been written).
        for n, batches in enumerate(plan["devices"]):
            for batch in batches[acked.get(n, -1) + 1:]:
                await g.evaluate([Position(*p) for p in batch])
    model = Model()
    for f in plan["fences"]:
        model.generation += 1
        model.fences[f[0]] = (Fence(*f), model.generation)
    for batches in plan["devices"]:
        for batch in batches:
            model.evaluate([Position(*p) for p in batch])
    rows = logged(tmp_path / FILE_NAME)
    assert [row[0] for row in rows] == list(range(1, len(rows) + 1))
    for entity in {p[0] for batches in plan["devices"] for batch in batches for p in batch}:
        # Devices ran concurrently, so the global order interleaves them; each entity's own events are exact.
        assert [row[1:] for row in rows if row[3] == entity] == [e for e in model.events if e[2] == entity]


# -- watchers --------------------------------------------------------------------------------------------------------

async def test_watchers_resume_without_gap_or_repeat_while_events_are_written(tmp_path):
    fences = [fence("a", SF, 200), fence("b", at(400), 200)]
    path = [at(north) for north in (-600, 0, 400, 1_000, 400, 0)]
    devices = [[pos(f"d{n}", i + 1, path[(i + n) % len(path)]) for i in range(60)] for n in range(4)]
    model = Model()
    for generation, f in enumerate(fences, start=1):
        model.fences[f.fence_id] = (f, generation)
    for positions in devices:
        for p in positions:
            model.evaluate([p])
    expected_all = len(model.events)
    expected_a = sum(1 for e in model.events if e[0] == "a")

    async with opened(tmp_path, recent_events=16, backlog_page=5, watcher_queue=4) as g:
        for f in fences:
            await g.create_fence(f)

        async def device(positions: list[Position]) -> None:
            for i, p in enumerate(positions):
                await g.evaluate([p])
                if i % 7 == 0:
                    await asyncio.sleep(0.001)

        async def watcher(fence_ids: frozenset[str], expected: int, stop_after: int) -> list[FenceEvent]:
            seen: list[FenceEvent] = []
            reconnects = 0
            while len(seen) < expected:
                after = seen[-1].sequence if seen else 0
                try:
                    async with contextlib.aclosing(g.watch(fence_ids, after)) as events:
                        async for event in events:
                            seen.append(event)
                            if len(seen) == expected or len(seen) % stop_after == 0:
                                break  # the client goes away (and resumes)
                            if len(seen) % 3 == 0:
                                await asyncio.sleep(0.002)  # a slow client: its queue may overflow
                except WatcherFellBehind:
                    pass
                reconnects += 1
            assert reconnects > 1
            return seen

        writing = asyncio.gather(*(device(positions) for positions in devices))
        every, only_a = await asyncio.wait_for(
            asyncio.gather(watcher(frozenset(), expected_all, 11), watcher(frozenset({"a"}), expected_a, 5)),
            WAIT_S * 3)
        await writing
        rows = logged(tmp_path / FILE_NAME)
        assert len(rows) == expected_all
        assert [(e.sequence, e.fence_id, e.transition, e.position.entity_id, e.position.sequence)
                for e in every] == rows
        assert [e.sequence for e in only_a] == [row[0] for row in rows if row[1] == "a"]


async def test_from_now_and_a_sequence_beyond_the_newest(tmp_path):
    async with opened(tmp_path) as g:
        await g.create_fence(fence("f", SF, 100))
        await g.evaluate([pos("e", 1, SF)])
        live = g.watch(frozenset(), from_now=True)
        ahead = g.watch(frozenset(), after_sequence=3)
        next_live = asyncio.ensure_future(anext(live))
        next_ahead = asyncio.ensure_future(anext(ahead))
        await asyncio.sleep(0.01)
        for seq in range(2, 6):
            await g.evaluate([pos("e", seq, SF if seq % 2 else at(900))])
        assert (await asyncio.wait_for(next_live, WAIT_S)).sequence == 2
        assert (await asyncio.wait_for(next_ahead, WAIT_S)).sequence == 4
        await live.aclose()
        await ahead.aclose()


async def test_out_of_range_after_retention_trims(tmp_path):
    async with opened(tmp_path, event_retention=5, recent_events=0) as g:
        await g.create_fence(fence("f", SF, 100))
        for seq in range(1, 21):
            await g.evaluate([pos("e", seq, SF if seq % 2 else at(900))])
        assert await g.trim() == 15
        assert g.oldest_kept == 16 and [row[0] for row in logged(tmp_path / FILE_NAME)] == list(range(16, 21))
        with pytest.raises(EventsTrimmed):
            await anext(g.watch(frozenset(), after_sequence=3))
        assert [e.sequence async for e in _take(g.watch(frozenset(), after_sequence=15), 5)] == [16, 17, 18, 19, 20]
        assert [e.sequence async for e in _take(g.watch(frozenset(), after_sequence=0), 1)] == [16]
        assert await g.trim() == 0
    async with opened(tmp_path, event_retention=5) as g:  # the floor survives a restart
        assert g.oldest_kept == 16 and g.last_sequence == 20
        with pytest.raises(EventsTrimmed):
            await anext(g.watch(frozenset(), after_sequence=14))


def _events(first: int, last: int, fence_id: str = "f") -> list[FenceEvent]:
    return [FenceEvent(s, fence_id, ENTER, Position("e", s, *SF), 0) for s in range(first, last + 1)]


async def test_a_watcher_reading_the_log_while_retention_trims_it_gets_out_of_range():
    async def trimmed_meanwhile(after: int, up_to: int, limit: int) -> list[FenceEvent]:
        return _events(after + 3, up_to)  # what the log holds once the oldest were deleted

    feed = EventFeed(trimmed_meanwhile, last_sequence=10, oldest_kept=1, recent_events=0)
    with pytest.raises(EventsTrimmed):
        await anext(feed.watch(frozenset(), 0))


async def test_a_watcher_that_falls_behind_is_ended_and_too_many_are_refused():
    async def log(after: int, up_to: int, limit: int) -> list[FenceEvent]:
        return []

    feed = EventFeed(log, watcher_queue=3, max_watchers=2)
    slow = feed.watch(frozenset())
    first = asyncio.ensure_future(anext(slow))
    await asyncio.sleep(0)
    other = feed.watch(frozenset({"g"}))
    pending = asyncio.ensure_future(anext(other))
    await asyncio.sleep(0)
    with pytest.raises(ResourceExhausted):
        await anext(feed.watch(frozenset()))
    feed.publish(_events(1, 1))
    assert (await first).sequence == 1
    feed.publish(_events(2, 6))  # four more than the slow one took: its queue of 3 overflows
    with pytest.raises(WatcherFellBehind):
        await anext(slow)
    feed.publish(_events(7, 7, fence_id="g"))
    assert (await asyncio.wait_for(pending, WAIT_S)).sequence == 7  # the other watcher goes on
    await other.aclose()
    assert feed.watchers == 0


async def test_shutdown_ends_watchers_unavailable(tmp_path):
    g = Geofences(GeofenceSettings(), tmp_path / FILE_NAME)
    watcher = g.watch(frozenset())
    pending = asyncio.ensure_future(anext(watcher))
    await asyncio.sleep(0.01)
    await g.close()
    with pytest.raises(WatchStopped):
        await asyncio.wait_for(pending, WAIT_S)
    with pytest.raises(WatchStopped):
        await anext(g.watch(frozenset()))
    with pytest.raises(StoreUnavailable):
        await g.evaluate([pos("e", 1, SF)])


# -- validation ------------------------------------------------------------------------------------------------------

def _field(call) -> str:
    with pytest.raises(InvalidArgument) as error:
        call()
    return error.value.field


def _latlng(point: tuple[float, float]) -> geo_pb2.LatLng:
    return geo_pb2.LatLng(lat_deg=point[0], lng_deg=point[1])


def _position(entity_id="e", sequence=1, point=SF) -> proximity_pb2.EntityPosition:
    return proximity_pb2.EntityPosition(entity_id=entity_id, sequence=sequence,
                                        point=_latlng(point) if point is not None else None)


def test_fence_validation_names_the_field():
    def create(**fields):
        base = {"fence_id": "f-1", "name": "Pier 39", "center": _latlng(SF), "radius_m": 100.0}
        base.update(fields)
        return lambda: validation.fence(geofence_pb2.CreateFenceRequest(fence=geofence_pb2.Fence(**base)))

    assert validation.fence(geofence_pb2.CreateFenceRequest(fence=geofence_pb2.Fence(
        fence_id="f-1", center=_latlng(SF), radius_m=10))).radius_m == 10
    assert _field(lambda: validation.fence(geofence_pb2.CreateFenceRequest())) == "fence.fence_id"
    assert _field(create(fence_id="bad id")) == "fence.fence_id"
    assert _field(create(name="x" * 201)) == "fence.name"
    assert _field(create(name="tab\there")) == "fence.name"
    assert _field(create(center=None)) == "fence.center"
    assert _field(create(center=geo_pb2.LatLng(lat_deg=91, lng_deg=0))) == "fence.center.lat_deg"
    assert _field(create(center=geo_pb2.LatLng(lat_deg=37.77, lng_deg=math.nan))) == "fence.center.lng_deg"
    assert _field(create(center=_latlng((40.7, -74.0)))) == "fence.center"  # New York: outside the service area
    for radius in (9.99, 50_000.1, math.inf, math.nan):
        assert _field(create(radius_m=radius)) == "fence.radius_m"


def test_positions_validation_names_the_field():
    def evaluate(*positions):
        return lambda: validation.positions(geofence_pb2.EvaluatePositionsRequest(positions=positions))

    assert _field(evaluate()) == "positions"
    assert _field(evaluate(*(_position(f"e{i}") for i in range(1_001)))) == "positions"
    third_bad = evaluate(_position("a"), _position("b"), _position("c", point=(91, 0)))
    assert _field(third_bad) == "positions[2].point.lat_deg"
    assert _field(evaluate(_position("a"), _position("a"))) == "positions[1].entity_id"
    assert _field(evaluate(_position(""))) == "positions[0].entity_id"
    assert _field(evaluate(_position("a"), _position("b", sequence=0))) == "positions[1].sequence"
    assert _field(evaluate(_position("a", point=None))) == "positions[0].point"
    assert _field(evaluate(_position("a", point=(37.77, 200)))) == "positions[0].point.lng_deg"
    assert _field(evaluate(_position("a", point=(37.5, -122.42)))) == "positions[0].point"
    parsed = validation.positions(geofence_pb2.EvaluatePositionsRequest(positions=[
        proximity_pb2.EntityPosition(entity_id="a", sequence=7, point=_latlng(SF), sent_at_unix_ms=5)]))
    assert parsed == [Position("a", 7, SF[0], SF[1], 5)]


def test_watch_validation_names_the_field():
    def watch(**fields):
        return lambda: validation.watch(geofence_pb2.WatchFenceEventsRequest(**fields))

    assert _field(watch(fence_ids=[f"f{i}" for i in range(101)])) == "fence_ids"
    assert _field(watch(fence_ids=["ok", "not ok"])) == "fence_ids"
    assert _field(watch(after_sequence=-1)) == "after_sequence"
    assert _field(watch(after_sequence=3, from_now=True)) == "after_sequence"
    assert validation.watch(geofence_pb2.WatchFenceEventsRequest(fence_ids=["a", "a", "b"], after_sequence=9)) == (
        frozenset({"a", "b"}), 9, False)


# -- over gRPC -------------------------------------------------------------------------------------------------------

def test_definition():
    assert DEFINITION.name == "proximity-geofence" and EVALUATE_CALLERS == ("proximity-tracker",)
    assert DEFINITION.access.internal == {"EvaluatePositions": ("proximity-tracker",)}
    assert DEFINITION.access.public == {"CreateFence", "GetFence", "DeleteFence", "WatchFenceEvents"}
    assert DEFINITION.default_limits["casemesh.proximity.v1.GeofenceService/WatchFenceEvents"] >= 1_000


@pytest.fixture
async def stub(tmp_path):
    geofences = Geofences(GeofenceSettings(event_retention=2), tmp_path / FILE_NAME)
    interceptor = ServerInterceptor(metrics=RpcMetrics("server", registry=CollectorRegistry()))
    server = grpc.aio.server(interceptors=[interceptor])
    geofence_pb2_grpc.add_GeofenceServiceServicer_to_server(GeofenceServicer(geofences), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield geofences, geofence_pb2_grpc.GeofenceServiceStub(channel)
    finally:
        await channel.close()
        await server.stop(None)
        await geofences.close()


async def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error.value.details()


async def test_grpc_status_codes(stub):
    geofences, stub = stub
    wire = geofence_pb2.Fence(fence_id="pier", name="Pier 39", center=_latlng(SF), radius_m=100)
    assert (await stub.CreateFence(geofence_pb2.CreateFenceRequest(fence=wire), timeout=WAIT_S)).created
    assert not (await stub.CreateFence(geofence_pb2.CreateFenceRequest(fence=wire), timeout=WAIT_S)).created
    other = geofence_pb2.Fence(fence_id="pier", center=_latlng(SF), radius_m=100)
    code, _ = await _code(stub.CreateFence(geofence_pb2.CreateFenceRequest(fence=other), timeout=WAIT_S))
    assert code == grpc.StatusCode.ALREADY_EXISTS
    code, details = await _code(stub.CreateFence(geofence_pb2.CreateFenceRequest(
        fence=geofence_pb2.Fence(fence_id="x", center=_latlng(SF), radius_m=5)), timeout=WAIT_S))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("fence.radius_m:")
    assert (await stub.GetFence(geofence_pb2.GetFenceRequest(fence_id="pier"), timeout=WAIT_S)).fence == wire
    code, _ = await _code(stub.GetFence(geofence_pb2.GetFenceRequest(fence_id="nope"), timeout=WAIT_S))
    assert code == grpc.StatusCode.NOT_FOUND
    code, details = await _code(stub.DeleteFence(geofence_pb2.DeleteFenceRequest(), timeout=WAIT_S))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("fence_id:")

    watch = stub.WatchFenceEvents(geofence_pb2.WatchFenceEventsRequest(fence_ids=["pier"]), timeout=WAIT_S)
    positions = [proximity_pb2.EntityPosition(entity_id="e", sequence=s, point=_latlng(SF if s % 2 else at(900)),
                                              sent_at_unix_ms=42) for s in range(1, 5)]
    for p in positions:
        answer = await stub.EvaluatePositions(geofence_pb2.EvaluatePositionsRequest(positions=[p]), timeout=WAIT_S)
        assert (answer.applied, answer.stale, answer.events) == (1, 0, 1)
    answer = await stub.EvaluatePositions(geofence_pb2.EvaluatePositionsRequest(positions=positions[:1]),
                                          timeout=WAIT_S)
    assert (answer.applied, answer.stale, answer.events) == (0, 1, 0)
    for s in range(1, 5):
        event = (await watch.read()).event
        assert (event.sequence, event.fence_id, event.position) == (s, "pier", positions[s - 1])
        assert event.transition == (geofence_pb2.FENCE_TRANSITION_ENTER if s % 2
                                    else geofence_pb2.FENCE_TRANSITION_EXIT)
    code, details = await _code(stub.EvaluatePositions(geofence_pb2.EvaluatePositionsRequest(
        positions=[positions[0], positions[0]]), timeout=WAIT_S))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("positions[1].entity_id:")

    await geofences.trim()  # event_retention=2: 1 and 2 are gone
    old = stub.WatchFenceEvents(geofence_pb2.WatchFenceEventsRequest(after_sequence=1), timeout=WAIT_S)
    code, _ = await _code(old.read())
    assert code == grpc.StatusCode.OUT_OF_RANGE
    bad = stub.WatchFenceEvents(geofence_pb2.WatchFenceEventsRequest(after_sequence=-1), timeout=WAIT_S)
    code, details = await _code(bad.read())
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("after_sequence:")

    assert (await stub.DeleteFence(geofence_pb2.DeleteFenceRequest(fence_id="pier"), timeout=WAIT_S)) is not None
    code, _ = await _code(stub.DeleteFence(geofence_pb2.DeleteFenceRequest(fence_id="pier"), timeout=WAIT_S))
    assert code == grpc.StatusCode.NOT_FOUND

    await geofences.close()  # shutdown: the watcher ends UNAVAILABLE, writes too
    code, _ = await _code(watch.read())
    assert code == grpc.StatusCode.UNAVAILABLE
    code, _ = await _code(stub.EvaluatePositions(geofence_pb2.EvaluatePositionsRequest(positions=positions[:1]),
                                                 timeout=WAIT_S))
    assert code == grpc.StatusCode.UNAVAILABLE
