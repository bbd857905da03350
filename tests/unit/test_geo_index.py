"""The sharded H3 index (services/geo/index.py) against brute force.

nearest() returns exactly what a scan of every entity returns, in the order (distance, id) (hypothesis, on random
points around the globe and at several resolutions, so the ring bound is checked where cells are distorted); ties
are broken by id, whatever the insertion order; paging with ``after`` (keyset pagination) visits the scan's order
exactly once, ties and filters included (hypothesis); limit, radius, exclude and predicate;
moves across cells and shards; counts at coarser and finer resolutions; concurrent movers and searches (two shards'
locks held in opposite orders) end with every entity in exactly one cell; expiry by the owner's sweep.
"""

from __future__ import annotations

import asyncio
import math
import random

import h3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casemesh.services.geo.index import GeoIndex

SF = (37.77, -122.42)


def offset(lat: float, lng: float, north_m: float, east_m: float) -> tuple[float, float]:
    """A point ``north_m`` north and ``east_m`` east of (lat, lng) (flat-earth offset; fine within tens of km)."""
    new_lat = lat + math.degrees(north_m / 6_371_008.8)
    new_lng = lng + math.degrees(east_m / (6_371_008.8 * math.cos(math.radians(new_lat))))
    return max(-89.9, min(89.9, new_lat)), (new_lng + 180) % 360 - 180


def brute_force(points: dict[str, tuple[float, float]], lat: float, lng: float, radius_m: float, limit: int,
                keep=lambda entity_id: True) -> list[tuple[str, float]]:
    found = []
    for entity_id, point in points.items():
        d = h3.great_circle_distance((lat, lng), point, unit="m")
        if d <= radius_m and keep(entity_id):
            found.append((entity_id, d))
    return sorted(found, key=lambda hit: (hit[1], hit[0]))[:limit]


def check_consistent(index: GeoIndex) -> None:
    """Every indexed entity is in exactly one cell, the one its entry names, in the shard its entry names."""
    seen: dict[str, str] = {}
    for key, shard in index._shards.items():
        for cell, members in shard.cells.items():
            assert members, "an empty cell was left behind"
            assert h3.cell_to_parent(cell, index.shard_resolution) == key
            for entity_id, entry in members.items():
                assert entity_id not in seen, f"{entity_id} is in {seen[entity_id]} and {cell}"
                seen[entity_id] = cell
                assert entry.cell == cell and entry.shard == key
                assert index.get(entity_id) is entry
                assert h3.latlng_to_cell(entry.lat_deg, entry.lng_deg, index.resolution) == cell
    assert len(seen) == len(index)


async def filled(points: dict[str, tuple[float, float]], **kwargs) -> GeoIndex[int]:
    index: GeoIndex[int] = GeoIndex(**kwargs)
    for n, (entity_id, (lat, lng)) in enumerate(points.items()):
        await index.upsert(entity_id, lat, lng, n)
    return index


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    center=st.tuples(st.floats(-80, 80), st.floats(-180, 180)),
    offsets=st.lists(st.tuples(st.floats(-20_000, 20_000), st.floats(-20_000, 20_000)), min_size=0, max_size=60),
    resolution=st.sampled_from([6, 7, 8, 9, 10]),
    radius_m=st.floats(1, 25_000),
    limit=st.integers(1, 15),
    query=st.tuples(st.floats(-5_000, 5_000), st.floats(-5_000, 5_000)),
    odd_only=st.booleans(),
)
def test_nearest_equals_brute_force_anywhere_at_any_resolution(center, offsets, resolution, radius_m, limit, query,
                                                                odd_only):
    points = {f"e{i}": offset(*center, north, east) for i, (north, east) in enumerate(offsets)}
    lat, lng = offset(*center, *query)
    excluded = {"e3", "e5"}

    def keep(entity_id: str) -> bool:
        return entity_id not in excluded and (not odd_only or int(entity_id[1:]) % 2 == 1)

    async def run():
        index = await filled(points, resolution=resolution, shard_resolution=resolution - 3)
        predicate = (lambda entry: entry.payload % 2 == 1) if odd_only else None
        return await index.nearest(lat, lng, radius_m, limit, predicate=predicate, exclude=excluded)

    got = asyncio.run(run())
    expected = brute_force(points, lat, lng, radius_m, limit, keep)
    assert [(entry.entity_id, d) for entry, d in got.hits] == expected
    assert got.cells_searched >= (1 if points else 0)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    center=st.tuples(st.floats(-70, 70), st.floats(-180, 180)),
    # Points on a coarse grid, several entities per point: many exact ties in distance.
    grid=st.lists(st.tuples(st.integers(-12, 12), st.integers(-12, 12)), min_size=0, max_size=40),
    copies=st.integers(1, 3),
    ids=st.randoms(use_true_random=False),
    resolution=st.sampled_from([7, 8, 9]),
    radius_m=st.floats(1, 15_000),
    page_size=st.integers(1, 7),
    query=st.sampled_from([(0, 0), (250, 250), (1_000, -3_000), (123.4, 56.7)]),
    odd_only=st.booleans(),
)
def test_paging_with_after_visits_every_match_once_in_order(center, grid, copies, ids, resolution, radius_m,
                                                           page_size, query, odd_only):
    names = [f"p{n}" for n in range(len(grid) * copies)]
    ids.shuffle(names)  # id order unrelated to insertion order
    points = {names[i * copies + c]: offset(*center, north * 500, east * 500)
              for i, (north, east) in enumerate(grid) for c in range(copies)}
    lat, lng = offset(*center, *query)
    excluded = {"p3"}

    def keep(entity_id: str) -> bool:
        return entity_id not in excluded and (not odd_only or int(entity_id[1:]) % 2 == 1)

    async def run() -> tuple[list[tuple[str, float]], int]:
        index = await filled(points, resolution=resolution, shard_resolution=resolution - 3)
        predicate = (lambda entry: int(entry.entity_id[1:]) % 2 == 1) if odd_only else None
        seen: list[tuple[str, float]] = []
        cursor = None
        pages = 0
        while True:
            page = await index.nearest(lat, lng, radius_m, page_size, predicate=predicate, exclude=excluded,
                                       after=cursor)
            pages += 1
            assert pages <= len(points) + 1, "paging does not end"
            seen.extend((entry.entity_id, d) for entry, d in page.hits)
            if len(page.hits) < page_size:
                return seen, pages
            cursor = (page.hits[-1][1], page.hits[-1][0].entity_id)

    seen, pages = asyncio.run(run())
    expected = brute_force(points, lat, lng, radius_m, len(points) + 1, keep)
    assert seen == expected  # nothing lost, nothing repeated, the same order
    assert pages == len(expected) // page_size + 1


async def test_ties_are_broken_by_id_not_insertion_order():
    index: GeoIndex[None] = GeoIndex()
    near = offset(*SF, 100, 0)
    for entity_id in ("zeta", "alpha", "mu", "beta"):
        await index.upsert(entity_id, *near, None)
    await index.upsert("far", *offset(*SF, 200, 0), None)
    assert [e.entity_id for e, _ in (await index.nearest(*SF, 1_000, 2)).hits] == ["alpha", "beta"]
    assert [e.entity_id for e, _ in (await index.nearest(*SF, 1_000, 10)).hits] == \
        ["alpha", "beta", "mu", "zeta", "far"]
    d = (await index.nearest(*SF, 1_000, 1)).hits[0][1]
    after = await index.nearest(*SF, 1_000, 2, after=(d, "beta"))
    assert [e.entity_id for e, _ in after.hits] == ["mu", "zeta"]
    after = await index.nearest(*SF, 1_000, 5, after=(d, "zeta"))
    assert [e.entity_id for e, _ in after.hits] == ["far"]
    assert (await index.nearest(*SF, 1_000, 5, after=(d + 500, ""))).hits == []
    # At the centre itself (every ring floor is 0 at first): the smallest ids, whatever was inserted first.
    for entity_id in ("c9", "c1", "c5"):
        await index.upsert(entity_id, *SF, None)
    assert [e.entity_id for e, _ in (await index.nearest(*SF, 1_000, 2)).hits] == ["c1", "c5"]
    with pytest.raises(ValueError):
        await index.nearest(*SF, 1_000, 2, after=(float("nan"), "a"))
    with pytest.raises(ValueError):
        await index.nearest(*SF, 1_000, 2, after=(-1.0, "a"))


async def test_limit_radius_exclude_and_predicate():
    rng = random.Random(5)
    points = {f"d{i}": offset(*SF, rng.uniform(-5_000, 5_000), rng.uniform(-5_000, 5_000)) for i in range(400)}
    index = await filled(points)
    for radius_m, limit in ((50, 5), (500, 3), (2_000, 10), (10_000, 100)):
        got = await index.nearest(*SF, radius_m, limit)
        assert [(e.entity_id, round(d, 6)) for e, d in got.hits] == \
            [(i, round(d, 6)) for i, d in brute_force(points, *SF, radius_m, limit)]
        assert all(d <= radius_m for _, d in got.hits) and len(got.hits) <= limit
    nearest3 = [e.entity_id for e, _ in (await index.nearest(*SF, 10_000, 3)).hits]
    got = await index.nearest(*SF, 10_000, 3, exclude=nearest3[:2])
    assert got.hits[0][0].entity_id == nearest3[2]
    got = await index.nearest(*SF, 10_000, 50, predicate=lambda entry: entry.entity_id.endswith("7"))
    assert got.hits and all(e.entity_id.endswith("7") for e, _ in got.hits)
    with pytest.raises(ValueError):
        await index.nearest(*SF, 100, 0)


async def test_a_search_with_enough_hits_stops_early_and_an_empty_index_reads_nothing():
    index: GeoIndex[None] = GeoIndex()
    assert (await index.nearest(*SF, 50_000, 10)).cells_searched == 0
    for i in range(10):
        await index.upsert(f"d{i}", *offset(*SF, i, 0), None)
    near = await index.nearest(*SF, 50_000, 5)
    assert len(near.hits) == 5 and near.cells_searched <= 7  # the centre cell and, at most, its first ring
    far = await index.nearest(*SF, 3_000, 50)  # fewer than `limit`: walks out to the radius
    assert far.cells_searched > near.cells_searched


def shard_crossing_points() -> tuple[tuple[float, float], tuple[float, float]]:
    """Two points of San Francisco in different shards (parent cells at resolution 5)."""
    a = SF
    shard = h3.cell_to_parent(h3.latlng_to_cell(*a, 8), 5)
    for east_m in range(500, 30_000, 500):
        for north_m in (0, 5_000, -5_000):
            b = offset(*a, north_m, east_m)
            if h3.cell_to_parent(h3.latlng_to_cell(*b, 8), 5) != shard:
                return a, b
    raise AssertionError("no second shard nearby")


async def test_moves_across_cells_and_shards_keep_one_entry():
    a, b = shard_crossing_points()
    index: GeoIndex[str] = GeoIndex()
    assert await index.upsert("d1", *a, "first") is None
    first = index.get("d1")
    previous = await index.upsert("d1", *offset(*a, 0, 800), "moved a cell")
    assert previous is first and index.get("d1").cell != first.cell and index.get("d1").shard == first.shard
    await index.upsert("d1", *b, "moved a shard")
    assert index.get("d1").shard != first.shard and index.get("d1").payload == "moved a shard"
    check_consistent(index)
    assert len(index) == 1
    assert [e.entity_id for e, _ in (await index.nearest(*b, 100, 5)).hits] == ["d1"]
    assert (await index.nearest(*a, 100, 5)).hits == []
    assert (await index.remove("d1")).payload == "moved a shard"
    assert await index.remove("d1") is None
    assert len(index) == 0 and "d1" not in index
    check_consistent(index)


async def test_counts_by_cell_at_coarser_same_and_finer_resolution():
    rng = random.Random(9)
    points = {f"d{i}": offset(*SF, rng.uniform(-6_000, 6_000), rng.uniform(-6_000, 6_000)) for i in range(500)}
    index = await filled(points)
    even = lambda entry: entry.payload % 2 == 0  # noqa: E731
    for resolution in (5, 7, 8, 9, 11):
        expected: dict[str, int] = {}
        for n, (lat, lng) in enumerate(points.values()):
            if n % 2 == 0:
                cell = h3.latlng_to_cell(lat, lng, max(resolution, 8))
                if resolution < 8:  # H3 is not exactly nested: a coarser count is of the index cells' parents
                    cell = h3.cell_to_parent(cell, resolution)
                expected[cell] = expected.get(cell, 0) + 1
        assert await index.counts_by_cell(resolution, even) == expected
    assert sum((await index.counts_by_cell(7)).values()) == 500
    with pytest.raises(ValueError):
        await index.counts_by_cell(16)


async def test_concurrent_movers_and_searches_keep_every_entity_in_exactly_one_cell():
    a, b = shard_crossing_points()
    index: GeoIndex[int] = GeoIndex()
    rng = random.Random(3)
    for i in range(100):
        await index.upsert(f"d{i}", *(a if i % 2 else b), i)
    shard_a = index.get("d1").shard
    # Hold shard A's write lock so movers A→B and B→A queue on it (each taking both locks in key order) while
    # searches and other movers go on.
    await index._shards[shard_a].lock.writer_lock.acquire()

    async def mover(entity_id: str, n: int) -> None:
        for step in range(20):
            target = a if (n + step) % 2 else b
            await index.upsert(entity_id, *offset(*target, rng.uniform(-300, 300), rng.uniform(-300, 300)), step)

    async def searcher() -> None:
        for _ in range(20):
            found = await index.nearest(*a, 20_000, 100)
            assert len({e.entity_id for e, _ in found.hits}) == len(found.hits)
            await asyncio.sleep(0)

    tasks = [asyncio.create_task(mover(f"d{i}", i)) for i in range(100)] + \
            [asyncio.create_task(searcher()) for _ in range(5)]
    await asyncio.sleep(0.01)
    assert not all(task.done() for task in tasks[:100])
    index._shards[shard_a].lock.writer_lock.release()
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    check_consistent(index)
    assert len(index) == 100
    assert all(index.get(f"d{i}").payload == 19 for i in range(100))


async def test_remove_older_than_removes_only_the_stale_oldest_first():
    now = [0.0]
    index: GeoIndex[None] = GeoIndex(clock=lambda: now[0])
    for i in range(5):
        now[0] = float(i)
        await index.upsert(f"d{i}", *SF, None)
    now[0] = 10.0
    await index.upsert("d0", *SF, None)  # refreshed: now the newest
    removed = await index.remove_older_than(3.0)
    assert [e.entity_id for e in removed] == ["d1", "d2"]
    assert sorted(e for e in ("d0", "d3", "d4") if e in index) == ["d0", "d3", "d4"]
    assert await index.remove("d3", not_updated_since=3.0) is None and "d3" in index
    assert [e.entity_id for e in await index.remove_older_than(11.0)] == ["d3", "d4", "d0"]
    check_consistent(index)


def test_resolutions_are_checked():
    with pytest.raises(ValueError):
        GeoIndex(resolution=16)
    with pytest.raises(ValueError):
        GeoIndex(resolution=8, shard_resolution=8)
