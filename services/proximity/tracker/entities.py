"""The entities' positions: an H3 index of moving entities with their last sequence and expiry, without gRPC.

Seed 001 #29 (shared/seeds/001_58dfc580020147d2.txt line 51), "Proximity Service | Geohash/H3, Redis Geo, radius
search, geofencing, real-time location updates | 100M places, 10M updates/sec". The index is
:class:`services.geo.index.GeoIndex` (H3 cells at ``index_resolution``, sharded by the parent cell at
``shard_resolution``, a readers-writer lock per shard, ring-walk nearest search); each entity's payload is its last
applied :class:`~.validation.Position` (a small tuple, not the request's message: an entry must not keep its whole
batch alive), whose ``sequence`` is the entity's last sequence.

Applying a batch (:meth:`EntityIndex.apply`): a position whose sequence is not above its entity's last is stale and
skipped; any other is upserted. The check and the upsert are one step as far as other batches can tell: when an
upsert had to wait for its shard's lock and meanwhile a newer position of the entity was applied (two streams of
one entity, a gateway reconnecting), the upsert finds the newer entry in place, puts it back, and counts its own
position stale. So an entity's position never goes back to an older sequence while it is indexed.

Expiry (:meth:`EntityIndex.expire`, the service's sweep every ``sweep_interval_s``): entities not updated for
``expiry_s`` leave the index, and their last sequence with them, which keeps the memory bounded by the entities
heard from within ``expiry_s``. A resend older than the expired entity's last sequence, arriving after the expiry,
is then applied again (the entity is back at that position until its next one): harmless, since the geofence keeps
every entity's sequence durably and skips it there, so it causes no fence event; and a gateway resends only batches
it sent moments before (the ones not acknowledged when a stream ended).

Metrics: :mod:`.metrics` (positions applied and stale, the index update cost per position, cell and shard changes,
entities, expiries, search time and cells).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import NamedTuple

from casemesh.proximity.v1 import proximity_pb2

from ...geo.index import Entry, GeoIndex, Nearby
from ...runtime.errors import NotFound
from . import metrics
from .settings import TrackerSettings
from .validation import NearbyQuery, Position


class Applied(NamedTuple):
    """What a batch did to the index: positions ``applied`` (newer than their entity's last) and ``stale``
    (skipped); ``cell_changes`` and ``shard_changes``: applied positions that moved their entity into another cell,
    another shard."""

    applied: int
    stale: int
    cell_changes: int
    shard_changes: int


class EntityIndex:
    """The tracker's state: every entity heard from within ``expiry_s``, at its last applied position.

    ``clock`` (seconds, monotonic) stamps index entries for expiry; injectable for tests.
    """

    def __init__(self, settings: TrackerSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.index: GeoIndex[Position] = GeoIndex(settings.index_resolution, settings.shard_resolution, clock)
        self._clock = clock

    def __len__(self) -> int:
        return len(self.index)

    def last_sequence(self, entity_id: str) -> int:
        """The entity's last applied sequence; 0 when it is not indexed (never reported, or expired)."""
        entry = self.index.get(entity_id)
        return 0 if entry is None else entry.payload.sequence

    async def apply(self, positions: Sequence[Position]) -> Applied:
        """Apply a valid batch (:func:`~.validation.batch`: at most one position per entity): upsert the positions
        newer than their entity's last, skip the others. Observes the update cost (:mod:`.metrics`)."""
        index = self.index
        applied = stale = cell_changes = shard_changes = 0
        started = time.perf_counter()
        for position in positions:
            current = index.get(position.entity_id)
            if current is not None and current.payload.sequence >= position.sequence:
                stale += 1
                continue
            replaced = await index.upsert(position.entity_id, position.lat_deg, position.lng_deg, position)
            if replaced is not None:
                if replaced.payload.sequence >= position.sequence:  # a newer one got in while the upsert waited
                    await self._restore(replaced)
                    stale += 1
                    continue
                entry = index.get(position.entity_id)  # the upsert's own (no await since it returned)
                if entry is not None and entry.cell != replaced.cell:
                    cell_changes += 1
                    if entry.shard != replaced.shard:
                        shard_changes += 1
            applied += 1
        metrics.INDEX_UPDATE_SECONDS.observe((time.perf_counter() - started) / len(positions) if positions else 0.0)
        if applied:
            metrics.APPLIED.inc(applied)
        if stale:
            metrics.STALE.inc(stale)
        if cell_changes:
            metrics.CELL_CHANGES.inc(cell_changes)
        if shard_changes:
            metrics.SHARD_CHANGES.inc(shard_changes)
        metrics.ENTITIES.set(len(index))
        return Applied(applied, stale, cell_changes, shard_changes)

    async def _restore(self, newer: Entry[Position]) -> None:
        """Put back ``newer``, an entry an upsert of an older position of its entity replaced; and again the entry
        that replaces, should that be newer still (each round's sequence is higher: it ends)."""
        while True:
            replaced = await self.index.upsert(newer.entity_id, newer.lat_deg, newer.lng_deg, newer.payload)
            if replaced is None or replaced.payload.sequence <= newer.payload.sequence:
                return
            newer = replaced

    async def expire(self) -> list[str]:
        """Remove the entities not updated for ``expiry_s``; returns their ids."""
        removed = await self.index.remove_older_than(self._clock() - self.settings.expiry_s)
        if removed:
            metrics.EXPIRED.inc(len(removed))
        metrics.ENTITIES.set(len(self.index))
        return [entry.entity_id for entry in removed]

    def position(self, entity_id: str) -> proximity_pb2.EntityPosition:
        """The entity's last applied position, as its device sent it; :class:`NotFound` when it is not indexed."""
        entry = self.index.get(entity_id)
        if entry is None:
            raise NotFound(f"entity {entity_id} is not in the index (never reported, or expired after "
                           f"{self.settings.expiry_s:g} s without a position)")
        return entry.payload.to_proto()

    async def nearby(self, query: NearbyQuery) -> Nearby[Position]:
        """The entities within the query's radius (metres), nearest first (great-circle), at most its limit, and the
        cells read."""
        started = time.perf_counter()
        found = await self.index.nearest(query.lat_deg, query.lng_deg, query.radius_m, query.limit)
        metrics.SEARCH_SECONDS.observe(time.perf_counter() - started)
        metrics.SEARCH_CELLS.observe(found.cells_searched)
        return found
