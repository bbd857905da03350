"""The places and their H3 indexes, and keyset-paginated radius search, without gRPC.

Seed 001 #29 (shared/seeds/001_58dfc580020147d2.txt line 51): "| 29 | Proximity Service | Geohash/H3, Redis Geo,
radius search, geofencing, real-time location updates | 100M places, 10M updates/sec, Yelp/Uber |". Every place is
in :class:`services.geo.index.GeoIndex` twice: in the index over every place (a search of any category) and in its
category's own index (so a search for a rare category in a dense district reads only that category's places, not
every place of every cell it walks through). Both are H3 cells at ``index_resolution`` (default 9, about 0.1 km²:
:mod:`.settings` says why), sharded by the parent cell at ``shard_resolution`` behind a readers-writer lock per
shard.

Writes (:meth:`Places.create`, :meth:`Places.delete`) are durable first (:class:`.store.PlaceStore`: a group commit,
fsync), then visible: the place map and the indexes change only after the write is on disk, so a place a search or
GetPlace returned survives a crash, and a failed write leaves nothing. The writes of one place id are serialised (a
write waits for any write in flight on an id it touches, then checks, then writes), so concurrent creates of one id
never both store it and an identical retry racing the original waits for it and then counts as not created. A write
whose caller is cancelled still completes and is applied.

Search (:meth:`Places.search`): the places within the radius, nearest first, ties by place id
(:meth:`GeoIndex.nearest` orders by (distance, id)), ``page_size`` at a time. A page asks the index for
``page_size + 1`` places after the previous page's last (distance, id): one more than it returns, to know whether
another page exists. The page token (services/runtime/page_tokens.py, kind ``places``) holds that last key, the
distance as ``repr`` of the float (exact: the next page recomputes the same distances for the same centre, so
nothing is lost or repeated), and is scoped to the centre, radius and category (:func:`search_scope`): a token of
another search is refused (INVALID_ARGUMENT naming ``page_token``). Pages are consistent while the places do not
change; a place created or deleted between two pages appears or disappears as its distance says (keyset pagination
never skips or repeats the places that stayed).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from ...geo.index import GeoIndex
from ...runtime import page_tokens
from ...runtime.errors import AlreadyExists, InvalidArgument, NotFound, ResourceExhausted
from ...runtime.identifiers import is_id
from . import metrics
from .settings import PlacesSettings
from .store import PlaceRecord, PlaceStore
from .validation import CATEGORIES, UNSPECIFIED, SearchQuery

#: The ``kind`` of SearchPlaces page tokens (services/runtime/page_tokens.py).
TOKEN_KIND = "places"
_CURSOR_FIELDS = {"d": str, "id": str}
#: Places indexed between two yields to the event loop while loading at start.
_LOAD_SLICE = 2_000


def search_scope(query: SearchQuery) -> str:
    """The page-token scope of a search: its centre, radius (``repr`` of the floats, exact) and category."""
    return f"{query.lat_deg!r},{query.lng_deg!r},{query.radius_m!r},{query.category}"


def encode_token(query: SearchQuery, distance_m: float, place_id: str) -> str:
    """The page token after the place ``place_id`` at ``distance_m`` metres, for the next page of ``query``."""
    return page_tokens.encode(TOKEN_KIND, search_scope(query), {"d": repr(distance_m), "id": place_id})


def decode_token(query: SearchQuery) -> tuple[float, str] | None:
    """The (distance in metres, place id) after which ``query``'s page starts; ``None`` for the first page.
    INVALID_ARGUMENT naming ``page_token`` when the token is malformed or from another search."""
    if not query.page_token:
        return None
    cursor = page_tokens.decode(query.page_token, TOKEN_KIND, search_scope(query), _CURSOR_FIELDS)
    try:
        distance_m = float(cursor["d"])
    except ValueError:
        distance_m = math.nan
    if not (math.isfinite(distance_m) and distance_m >= 0 and is_id(cursor["id"])):
        raise InvalidArgument("page_token", "is not a valid page token (bad cursor value)")
    return distance_m, cursor["id"]


class SearchPage(NamedTuple):
    """One page of a search: ``hits`` (place, distance in metres) nearest first, ties by id; ``next_page_token``
    (``""`` on the last page); ``cells_searched``, the index cells this page read."""

    hits: list[tuple[PlaceRecord, float]]
    next_page_token: str
    cells_searched: int


class Places:
    """Every place: by id, in the all-categories index and in its category's index, durable in ``store``.

    Errors are the runtime's domain errors (services/runtime/errors.py) and :class:`.store.StoreUnavailable`
    (UNAVAILABLE): see each method. Call :meth:`load` once before serving.
    """

    def __init__(self, settings: PlacesSettings, store: PlaceStore) -> None:
        self.settings = settings
        self.store = store
        self._places: dict[str, PlaceRecord] = {}
        self._all: GeoIndex[PlaceRecord] = GeoIndex(settings.index_resolution, settings.shard_resolution)
        self._by_category: dict[int, GeoIndex[PlaceRecord]] = {
            category: GeoIndex(settings.index_resolution, settings.shard_resolution) for category in sorted(CATEGORIES)}
        #: Place id → the write in flight on it (done once that write is applied or failed).
        self._busy: dict[str, asyncio.Future[None]] = {}
        self._creating = 0  # places being created (counted against max_places)

    def __len__(self) -> int:
        return len(self._places)

    def index(self, category: int) -> GeoIndex[PlaceRecord]:
        """The index searched for ``category`` (UNSPECIFIED: the index over every place)."""
        return self._all if category == UNSPECIFIED else self._by_category[category]

    async def load(self) -> int:
        """Read every place from the store and index it; returns how many. :class:`.store.StoreUnavailable` when the
        file cannot be read."""
        started = time.perf_counter()
        records = await self.store.load()
        await self._index(records, slice_size=_LOAD_SLICE)
        metrics.LOAD_SECONDS.set(time.perf_counter() - started)
        return len(records)

    async def _index(self, records: Iterable[PlaceRecord], slice_size: int = 0) -> None:
        """Make ``records`` (on disk) visible: in the place map and both their indexes."""
        places = self._places
        everything = self._all
        by_category = self._by_category
        for n, record in enumerate(records, 1):
            places[record.place_id] = record
            await everything.upsert(record.place_id, record.lat_deg, record.lng_deg, record)
            await by_category[record.category].upsert(record.place_id, record.lat_deg, record.lng_deg, record)
            if slice_size and n % slice_size == 0:
                await asyncio.sleep(0)  # a long load lets the rest of the process run
        self._count()

    def _count(self) -> None:
        for category, index in self._by_category.items():
            metrics.INDEXED_BY_CATEGORY[category].set(len(index))

    # -- reads ------------------------------------------------------------------------------------------------------

    def get(self, place_id: str) -> PlaceRecord:
        """The place; :class:`NotFound` when there is none."""
        record = self._places.get(place_id)
        if record is None:
            raise NotFound(f"no place {place_id}")
        return record

    async def search(self, query: SearchQuery) -> SearchPage:
        """One page of ``query`` (a valid request: services/proximity/places/validation.py): the next at most
        ``page_size`` places within ``radius_m`` of the centre after the token's key, of ``category`` (UNSPECIFIED:
        any), nearest first, ties by place id. :class:`InvalidArgument` naming ``page_token`` when the token is
        malformed or belongs to another search."""
        after = decode_token(query)
        started = time.perf_counter()
        found = await self.index(query.category).nearest(query.lat_deg, query.lng_deg, query.radius_m,
                                                         query.page_size + 1, after=after)
        elapsed = time.perf_counter() - started
        hits = [(entry.payload, distance_m) for entry, distance_m in found.hits[:query.page_size]]
        token = ""
        if len(found.hits) > query.page_size:
            last, last_m = hits[-1]
            token = encode_token(query, last_m, last.place_id)
        metrics.searched(query.category, found.cells_searched, len(hits), elapsed)
        return SearchPage(hits, token, found.cells_searched)

    # -- writes -----------------------------------------------------------------------------------------------------

    async def _settle(self, place_ids: Iterable[str]) -> None:
        """Wait until no write is in flight on any of ``place_ids``."""
        while True:
            pending = {self._busy[place_id] for place_id in place_ids if place_id in self._busy}
            if not pending:
                return
            await asyncio.wait(pending)

    def _claim(self, place_ids: Iterable[str]) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for place_id in place_ids:
            self._busy[place_id] = done
        return done

    def _release(self, place_ids: Iterable[str], done: asyncio.Future[None]) -> None:
        for place_id in place_ids:
            if self._busy.get(place_id) is done:
                del self._busy[place_id]
        done.set_result(None)

    async def create(self, places: Sequence[PlaceRecord]) -> int:
        """Store ``places`` (valid, each id once: validation.create) all or none, then index them; returns how many
        were new (a place whose id exists with exactly the same fields counts as created before).

        :class:`AlreadyExists` naming the first place id that exists with other fields, :class:`ResourceExhausted`
        when the new places would exceed ``max_places``, :class:`.store.StoreUnavailable` when they cannot be
        written: nothing stored in every case.
        """
        ids = [record.place_id for record in places]
        await self._settle(ids)
        new: list[PlaceRecord] = []
        for record in places:  # no await from here to the claim: the checks hold until the write
            existing = self._places.get(record.place_id)
            if existing is None:
                new.append(record)
            elif existing != record:
                raise AlreadyExists(f"place {record.place_id} exists with other fields")
        if not new:
            return 0
        if len(self._places) + self._creating + len(new) > self.settings.max_places:
            raise ResourceExhausted(f"storing {len(new):,} more places would exceed max_places "
                                    f"({self.settings.max_places:,}; {len(self._places):,} stored)")
        new_ids = [record.place_id for record in new]
        done = self._claim(new_ids)
        self._creating += len(new)
        await _finish(self._create(new, new_ids, done))
        return len(new)

    async def _create(self, new: list[PlaceRecord], new_ids: list[str], done: asyncio.Future[None]) -> None:
        try:
            await self.store.insert(new)
            metrics.CREATED.inc(len(new))
            await self._index(new)
        finally:
            self._creating -= len(new)
            self._release(new_ids, done)

    async def delete(self, place_id: str) -> PlaceRecord:
        """Remove the place from the store (fsync), then from the indexes; returns it. :class:`NotFound` when there
        is none; :class:`.store.StoreUnavailable` when it cannot be written (the place stays)."""
        await self._settle((place_id,))
        record = self.get(place_id)
        done = self._claim((place_id,))
        await _finish(self._delete(record, done))
        return record

    async def _delete(self, record: PlaceRecord, done: asyncio.Future[None]) -> None:
        try:
            await self.store.delete(record.place_id)
            metrics.DELETED.inc()
            del self._places[record.place_id]
            await self._all.remove(record.place_id)
            await self._by_category[record.category].remove(record.place_id)
            self._count()
        finally:
            self._release((record.place_id,), done)

    async def close(self) -> None:
        """Let the writes under way finish, then close the store."""
        if self._busy:
            await asyncio.wait(set(self._busy.values()))
        await self.store.close()


def _retrieve(task: asyncio.Task) -> None:
    if not task.cancelled():
        task.exception()  # a write whose caller was cancelled: its error was the caller's to see


async def _finish(work) -> None:
    """Run ``work`` (a write and its application) to its end even if the caller is cancelled meanwhile."""
    task = asyncio.ensure_future(work)
    task.add_done_callback(_retrieve)
    await asyncio.shield(task)
