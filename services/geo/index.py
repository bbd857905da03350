"""A sharded H3 cell index of entities (moving or not): entity id → (lat, lng, payload), radius and k-nearest search,
keyset-paginated.

Seed 001 #29 (shared/seeds/001_58dfc580020147d2.txt line 51), "Proximity Service | Geohash/H3, Redis Geo, radius
search, geofencing, real-time location updates | 100M places, 10M updates/sec"; seed 003
(shared/seeds/003_1dfe16d8ccfde9ed.txt), "Uber Ride Matching", Geospatial Indexing (line 662): drivers indexed by
cell so that nearby drivers are found by looking at nearby cells only. Used by rides-location for drivers and by
proximity-places for places (one index over every place and one per category, paged with ``after``); generic (the
payload is the owner's) so the other proximity services and the food-delivery case study can reuse it.

Layout:

- every entity is in exactly one H3 cell at ``resolution`` (default 8: hexagons of about 0.74 km², edge about
  0.53 km, close to seed 003's geohash precision 6, "~1km precision");
- cells are grouped into shards by their parent cell at ``shard_resolution`` (default 5: about 250 km², so a
  city is a few shards); each shard has its own ``aiorwlock.RWLock``: an upsert or removal write-locks the one
  shard it touches (two when the entity moves across a shard boundary, taken in key order so two movers never
  deadlock), a search or count read-locks each shard it reads, one at a time. Shards are never dropped once made
  (a waiter on a dropped shard's lock would write into a shard nobody reads); their empty cells are.

Search (:meth:`GeoIndex.nearest`) walks rings of cells around the point's cell (``h3.grid_ring`` k = 0, 1, 2, ...),
keeping the ``limit`` first matches found in the order (great-circle distance, entity id): nearest first, and
entities at exactly the same distance by id (``str`` order), never by insertion order, so the answer is a function of
what is indexed only. Before reading ring k it bounds the distance from the point to any point of ring k or beyond:
a straight path out of the centre cell crosses every ring in between, and on a hexagonal grid of edge e that costs
at least (1.5 k − 2) e (the worst direction runs along the edges between cells). e is the shortest edge of the
centre cell, times :data:`EDGE_SAFETY` (0.8) because H3 cells vary in size and shape across a search (a global
sample found the true distance at least 0.98 of the bound out to 24 rings). The walk stops when that bound is beyond
``radius_m``, or when ``limit`` matches are found and the bound is beyond the farthest of them (strictly: an unread
entity exactly as far as the farthest kept could still come first by id): nothing unread can come earlier.

Keyset pagination: ``nearest(..., after=(distance_m, entity_id))`` returns only the entities strictly after that key
in the same order, so a caller pages through a search by passing the last hit of a page as the next page's
``after`` (the distance exactly as returned: distances are recomputed identically for the same point, so no entity
is lost or repeated across pages, even among ties, as long as the entities do not change). Rings nearer than the
cursor are still read (the index has no upper bound of a ring's distances), their entries filtered out; so a deep
page costs the cells up to its own distance, reported in ``cells_searched``.

Expiry is the owner's: :meth:`GeoIndex.remove_older_than` removes the entities not upserted since a time, oldest
first, without scanning the others (the index keeps entities in the order of their last upsert).

No metrics here: they are the owning service's.
"""

from __future__ import annotations

import functools
import heapq
import time
from collections.abc import Callable, Collection, Hashable
from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar

import aiorwlock
import h3

P = TypeVar("P")

#: Share of the centre cell's shortest edge used as the grid step of the ring bound (cells are distorted).
EDGE_SAFETY = 0.8
MIN_RESOLUTION = 0
MAX_RESOLUTION = 15


@dataclass(frozen=True, slots=True)
class Entry(Generic[P]):
    """One entity as indexed: where (degrees), its owner's ``payload``, its cell and shard (H3 index strings) and
    ``updated_at`` (the index clock's seconds at its last upsert). Immutable: an upsert replaces it."""

    entity_id: str
    lat_deg: float
    lng_deg: float
    payload: P
    cell: str
    shard: str
    updated_at: float


class Nearby(NamedTuple, Generic[P]):
    """A search's answer: ``hits``, (entry, distance in metres) nearest first, and the number of cells read."""

    hits: list[tuple[Entry[P], float]]
    cells_searched: int


class _Shard:
    """The cells under one parent cell: cell → {entity id → entry}, behind a readers-writer lock."""

    __slots__ = ("cells", "lock")

    def __init__(self) -> None:
        self.cells: dict[str, dict[str, Entry]] = {}
        # fast=True: an uncontended acquire does not yield to the event loop (no sleep(0) per update).
        self.lock = aiorwlock.RWLock(fast=True)


@functools.lru_cache(maxsize=16_384)
def ring_step_m(cell: str) -> float:
    """The ring bound's grid step around ``cell``, in metres: its shortest edge times :data:`EDGE_SAFETY`."""
    return EDGE_SAFETY * min(h3.edge_length(edge, unit="m") for edge in h3.origin_to_directed_edges(cell))


def ring_floor_m(k: int, step_m: float) -> float:
    """A lower bound, in metres, of the distance from a point of the centre cell to any point of ring ``k`` or
    beyond, for a grid step ``step_m`` (:func:`ring_step_m`)."""
    return max(0.0, 1.5 * k - 2.0) * step_m


class _Reversed:
    """A string that sorts in reverse (``a < b`` when ``a.value > b.value``): the id half of the max-heap key of
    :meth:`GeoIndex.nearest`, compared only between entries at exactly the same distance."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __lt__(self, other: _Reversed) -> bool:
        return self.value > other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and self.value == other.value

    __hash__ = None  # type: ignore[assignment]


class GeoIndex(Generic[P]):
    """Entities by H3 cell, sharded by parent cell, for radius/k-nearest search and per-cell counts (module docstring).

    ``resolution`` (0 to 15) is the cells' H3 resolution, ``shard_resolution`` (0 to ``resolution`` - 1) the
    shards'; ``clock`` gives the seconds stamped on each upsert (monotonic by default; expiry compares with it).
    ``ValueError`` for resolutions out of range. Coordinates are degrees and must be valid (the caller validates:
    H3 raises for NaN).
    """

    def __init__(self, resolution: int = 8, shard_resolution: int = 5,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
            raise ValueError(f"resolution {resolution} is not an H3 resolution (0 to 15)")
        if not MIN_RESOLUTION <= shard_resolution < resolution:
            raise ValueError(f"shard_resolution {shard_resolution} must be 0 to resolution - 1 ({resolution - 1})")
        self.resolution = resolution
        self.shard_resolution = shard_resolution
        self._clock = clock
        self._shards: dict[str, _Shard] = {}
        #: Every entity's entry, in the order of their last upsert (oldest first: expiry reads from the front).
        self._entries: dict[str, Entry[P]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, entity_id: object) -> bool:
        return entity_id in self._entries

    def get(self, entity_id: str) -> Entry[P] | None:
        """The entity's entry, or ``None`` when it is not indexed."""
        return self._entries.get(entity_id)

    def cell_of(self, lat_deg: float, lng_deg: float) -> str:
        """The index cell (H3 string at ``resolution``) of a point in degrees."""
        return h3.latlng_to_cell(lat_deg, lng_deg, self.resolution)

    def _shard(self, key: str) -> _Shard:
        shard = self._shards.get(key)
        if shard is None:
            shard = self._shards[key] = _Shard()
        return shard

    def _unlink(self, entry: Entry[P]) -> None:
        """Take ``entry`` out of its cell and of the entity map (its shard's write lock held)."""
        cells = self._shards[entry.shard].cells
        members = cells[entry.cell]
        del members[entry.entity_id]
        if not members:
            del cells[entry.cell]
        del self._entries[entry.entity_id]

    async def upsert(self, entity_id: str, lat_deg: float, lng_deg: float, payload: P) -> Entry[P] | None:
        """Put the entity at (``lat_deg``, ``lng_deg``) with ``payload``, moving it between cells and shards as needed,
        stamped with the clock's time. Returns its previous entry (``None`` when it was not indexed)."""
        cell = h3.latlng_to_cell(lat_deg, lng_deg, self.resolution)
        key = h3.cell_to_parent(cell, self.shard_resolution)
        shard = self._shard(key)
        while True:
            previous = self._entries.get(entity_id)
            if previous is None or previous.shard == key:
                locked = [shard]
            else:  # a move across shards: both write locks, in key order (no deadlock between two movers)
                pair = sorted((key, previous.shard))
                locked = [self._shards[pair[0]], self._shards[pair[1]]]
            for held in locked:
                await held.lock.writer_lock.acquire()
            try:
                current = self._entries.get(entity_id)
                if current is not None and current.shard not in (key, previous.shard if previous else key):
                    continue  # moved to another shard while this waited: lock that one instead
                if current is not None:
                    self._unlink(current)
                entry = Entry(entity_id, lat_deg, lng_deg, payload, cell, key, self._clock())
                shard.cells.setdefault(cell, {})[entity_id] = entry
                self._entries[entity_id] = entry  # (re)inserted last: the newest
                return current
            finally:
                for held in reversed(locked):
                    held.lock.writer_lock.release()

    async def remove(self, entity_id: str, *, not_updated_since: float | None = None) -> Entry[P] | None:
        """Remove the entity; returns its entry, or ``None`` when it was not indexed. With ``not_updated_since``
        (clock seconds), only when its last upsert was before that time (else ``None``, left in place)."""
        while True:
            current = self._entries.get(entity_id)
            if current is None:
                return None
            shard = self._shards[current.shard]
            async with shard.lock.writer_lock:
                entry = self._entries.get(entity_id)
                if entry is None:
                    return None
                if entry.shard != current.shard:
                    continue  # moved to another shard while this waited
                if not_updated_since is not None and entry.updated_at >= not_updated_since:
                    return None
                self._unlink(entry)
                return entry

    async def remove_older_than(self, t: float) -> list[Entry[P]]:
        """Remove every entity whose last upsert was before clock time ``t`` (seconds); returns their entries.
        Costs the number removed, not the number indexed."""
        stale: list[str] = []
        for entry in self._entries.values():  # oldest first; no await while iterating
            if entry.updated_at >= t:
                break
            stale.append(entry.entity_id)
        removed: list[Entry[P]] = []
        for entity_id in stale:
            entry = await self.remove(entity_id, not_updated_since=t)
            if entry is not None:
                removed.append(entry)
        return removed

    async def nearest(self, lat_deg: float, lng_deg: float, radius_m: float, limit: int,
                      predicate: Callable[[Entry[P]], bool] | None = None,
                      exclude: Collection[Hashable] = (),
                      after: tuple[float, str] | None = None) -> Nearby[P]:
        """The at most ``limit`` first entities within ``radius_m`` metres (great-circle) of the point (degrees) in the
        order (distance, entity id), among those ``predicate`` accepts, whose id is not in ``exclude`` and, with
        ``after`` = (distance in metres, entity id), that come strictly after that key (keyset pagination: pass the
        last hit of a page); and the cells read. ``ValueError`` when ``limit`` < 1, ``radius_m`` < 0 or ``after``'s
        distance is not a number >= 0."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        if not radius_m >= 0:
            raise ValueError(f"radius_m must be at least 0, not {radius_m}")
        after_m, after_id = (-1.0, "") if after is None else after
        if after is not None and not after_m >= 0:
            raise ValueError(f"after's distance must be at least 0, not {after_m}")
        origin = h3.latlng_to_cell(lat_deg, lng_deg, self.resolution)
        step_m = ring_step_m(origin)
        point = (lat_deg, lng_deg)
        excluded = exclude if isinstance(exclude, (set, frozenset, dict)) else frozenset(exclude)
        # A max-heap of the first found: (-distance, id in reverse order, entry); its top is the last kept.
        best: list[tuple[float, _Reversed, Entry[P]]] = []
        distance = h3.great_circle_distance
        shard_resolution = self.shard_resolution
        cells_searched = 0
        k = 0
        while self._entries:
            floor_m = ring_floor_m(k, step_m)
            if floor_m > radius_m or (len(best) == limit and floor_m > -best[0][0]):
                break
            ring = (origin,) if k == 0 else h3.grid_ring(origin, k)
            cells_searched += len(ring)
            by_shard: dict[str, list[str]] = {}
            for cell in ring:
                by_shard.setdefault(h3.cell_to_parent(cell, shard_resolution), []).append(cell)
            for key, cells in by_shard.items():
                shard = self._shards.get(key)
                if shard is None:
                    continue
                async with shard.lock.reader_lock:
                    for cell in cells:
                        members = shard.cells.get(cell)
                        if not members:
                            continue
                        for entity_id, entry in members.items():
                            if entity_id in excluded or (predicate is not None and not predicate(entry)):
                                continue
                            d = distance(point, (entry.lat_deg, entry.lng_deg), unit="m")
                            if d > radius_m or d < after_m or (d == after_m and entity_id <= after_id):
                                continue
                            if len(best) < limit:
                                heapq.heappush(best, (-d, _Reversed(entity_id), entry))
                                continue
                            last_m = -best[0][0]
                            if d < last_m or (d == last_m and entity_id < best[0][1].value):
                                heapq.heapreplace(best, (-d, _Reversed(entity_id), entry))
            k += 1
        hits = sorted(((entry, -negative) for negative, _, entry in best), key=lambda hit: (hit[1], hit[0].entity_id))
        return Nearby(hits, cells_searched)

    async def counts_by_cell(self, resolution: int,
                             predicate: Callable[[Entry[P]], bool] | None = None) -> dict[str, int]:
        """{H3 cell at ``resolution`` → entities in it} over the entities ``predicate`` accepts (cells without any are
        left out). Coarser than the index, an entity counts in the parent of its index cell (H3 is not exactly
        nested: near a coarse cell's edge that parent may differ from the coarse cell of the point itself); finer,
        in the cell of its point. ``ValueError`` for a resolution out of 0 to 15."""
        if not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
            raise ValueError(f"resolution {resolution} is not an H3 resolution (0 to 15)")
        counts: dict[str, int] = {}
        coarser = resolution <= self.resolution
        for shard in list(self._shards.values()):
            async with shard.lock.reader_lock:
                for cell, members in shard.cells.items():
                    if coarser:
                        n = len(members) if predicate is None else sum(1 for e in members.values() if predicate(e))
                        if n:
                            target = cell if resolution == self.resolution else h3.cell_to_parent(cell, resolution)
                            counts[target] = counts.get(target, 0) + n
                        continue
                    for entry in members.values():
                        if predicate is None or predicate(entry):
                            target = h3.latlng_to_cell(entry.lat_deg, entry.lng_deg, resolution)
                            counts[target] = counts.get(target, 0) + 1
        return counts
