"""The drivers' locations: the H3 index, the drivers' connections, expiry and the trackers, without gRPC.

Seed 003 (shared/seeds/003_1dfe16d8ccfde9ed.txt), "Uber Ride Matching", Geospatial Indexing (line 662): each online
driver sends its position every 3 to 5 s (line 636) into a geospatial index of cells; a driver that "doesn't update
in 30s, considered offline" (line 674) is dropped. Seed 000 (shared/seeds/000_69ff90d97cf45f9b.txt line 432),
"Location Service": ``update_driver_location`` into the index, ``find_nearby_drivers`` filtered by availability,
nearest first. The index is :class:`services.geo.index.GeoIndex` (seed 001 #29, H3 cells, sharded, readers-writer
locks); its payload is the driver's last ``DriverPosition``.

Connections (:meth:`DriverLocations.serve`): one ReportLocations stream per driver. Its first valid frame names the
driver; an older stream of the same driver then ends ABORTED (:class:`StreamEnded`), once the frame it was applying
is applied, so two streams never write the same driver at once. A stream's task is cancelled only while it waits for
a frame. Frames are applied in order; an invalid frame ends the stream INVALID_ARGUMENT and every frame before it
stays applied. A half-close leaves the driver in the index until it expires (a reconnect loses nothing); an OFFLINE
frame removes it at once. :meth:`DriverLocations.stop` ends every stream UNAVAILABLE and every tracker likewise.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable

import grpc

from casemesh.rides.v1 import location_pb2, rides_pb2

from ...geo.index import Entry, GeoIndex, Nearby
from ...runtime.errors import NotFound, ResourceExhausted
from ..validation import latlng
from . import metrics
from . import validation as check
from .feeds import TrackerFeeds, TrackingStopped
from .settings import LocationSettings

AVAILABLE = rides_pb2.DRIVER_STATUS_AVAILABLE
OFFLINE = rides_pb2.DRIVER_STATUS_OFFLINE


def is_available(entry: Entry[rides_pb2.DriverPosition]) -> bool:
    """True for a driver whose last status is AVAILABLE (the search and supply predicate)."""
    return entry.payload.status == AVAILABLE


class StreamEnded(Exception):
    """A ReportLocations stream must end with ``code``: ABORTED (taken over) or UNAVAILABLE (shutdown)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        self.code = code
        super().__init__(message)


class Connection:
    """One ReportLocations stream: its driver (from the first frame), task, frames applied, and why it must end."""

    __slots__ = ("driver_id", "task", "reading", "stop", "done", "received")

    def __init__(self) -> None:
        self.driver_id: str | None = None
        self.task = asyncio.current_task()
        self.reading = False
        self.stop: StreamEnded | None = None
        self.done = asyncio.Event()
        self.received = 0

    def end(self, reason: StreamEnded) -> None:
        """Ask the stream to end with ``reason`` (the first reason wins); interrupts it only while it waits for a
        frame."""
        if self.stop is None:
            self.stop = reason
            if self.reading and self.task is not None:
                self.task.cancel()

    def check(self) -> None:
        if self.stop is not None:
            raise self.stop


class DriverLocations:
    """The location service's state: the index of online drivers, the open streams, the trackers.

    ``clock`` (seconds, monotonic) stamps index entries for expiry; ``wall_clock`` (seconds since the Unix epoch)
    gives ``received_at_unix_ms``. Both are injectable for tests.
    """

    def __init__(self, settings: LocationSettings, clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.index: GeoIndex[rides_pb2.DriverPosition] = GeoIndex(
            settings.index_resolution, settings.shard_resolution, clock)
        self.feeds = TrackerFeeds(settings.max_watchers)
        self.connections: dict[str, Connection] = {}
        self.open: set[Connection] = set()
        self.stopping = False
        self._clock = clock
        self._wall_clock = wall_clock
        self._by_status: Counter[int] = Counter()

    # -- positions ---------------------------------------------------------------------------------------------------

    async def report(self, report: check.Report) -> rides_pb2.DriverPosition:
        """Apply one valid position: upsert the driver (or remove it when OFFLINE) and tell its trackers."""
        now_s = self._wall_clock()
        position = rides_pb2.DriverPosition(
            driver_id=report.driver_id, point=latlng(report.lat_deg, report.lng_deg), status=report.status,
            heading_deg=report.heading_deg, sent_at_unix_ms=report.sent_at_unix_ms,
            received_at_unix_ms=int(now_s * 1000))
        if report.status == OFFLINE:
            previous = await self.index.remove(report.driver_id)
            self.feeds.end(report.driver_id, final=position)
        else:
            previous = await self.index.upsert(report.driver_id, report.lat_deg, report.lng_deg, position)
            self.feeds.publish(report.driver_id, position)
            self._by_status[report.status] += 1
        if previous is not None:
            self._by_status[previous.payload.status] -= 1
        self._show_statuses()
        metrics.UPDATES.inc()
        if report.sent_at_unix_ms > 0:
            metrics.UPDATE_DELAY.observe(max(0.0, now_s - report.sent_at_unix_ms / 1000))
        return position

    def _show_statuses(self) -> None:
        for status, gauge in metrics.DRIVERS_BY_STATUS.items():
            gauge.set(self._by_status[status])

    async def expire(self) -> list[str]:
        """Remove the drivers not heard from for ``expiry_s``; their trackers end OK. Returns their ids."""
        removed = await self.index.remove_older_than(self._clock() - self.settings.expiry_s)
        for entry in removed:
            self._by_status[entry.payload.status] -= 1
            if entry.entity_id not in self.index:  # not back already (a report while the sweep awaited a lock)
                self.feeds.end(entry.entity_id)
        if removed:
            self._show_statuses()
            metrics.EXPIRED.inc(len(removed))
        return [entry.entity_id for entry in removed]

    def position(self, driver_id: str) -> rides_pb2.DriverPosition:
        """The driver's last position; :class:`NotFound` when it is not online."""
        entry = self.index.get(driver_id)
        if entry is None:
            raise NotFound(f"driver {driver_id} is not online (never reported, expired or went OFFLINE)")
        return entry.payload

    async def nearby(self, query: check.NearbyQuery) -> Nearby[rides_pb2.DriverPosition]:
        """AVAILABLE drivers within the query's radius, nearest first, at most its limit, minus the excluded."""
        started = time.perf_counter()
        found = await self.index.nearest(query.lat_deg, query.lng_deg, query.radius_m, query.limit,
                                         predicate=is_available, exclude=query.exclude)
        metrics.SEARCH_SECONDS.observe(time.perf_counter() - started)
        metrics.SEARCH_CELLS.observe(found.cells_searched)
        return found

    async def available_counts(self, resolution: int) -> dict[str, int]:
        """{H3 cell at ``resolution`` → AVAILABLE drivers} (cells without any left out)."""
        return await self.index.counts_by_cell(resolution, is_available)

    async def track(self, driver_id: str) -> AsyncIterator[rides_pb2.DriverPosition]:
        """The driver's last position, then each newer one (latest-value); ends when it goes OFFLINE (after that
        position) or expires. :class:`NotFound` when it is not online, :class:`ResourceExhausted` when
        ``max_watchers`` watch already, :class:`~.feeds.TrackingStopped` on shutdown."""
        if self.stopping:
            raise TrackingStopped("rides-location is shutting down; track the driver again")
        current = self.position(driver_id)
        async with contextlib.aclosing(self.feeds.track(driver_id, current)) as positions:
            async for position in positions:  # no await between the read of `current` and the join
                yield position

    # -- connections -------------------------------------------------------------------------------------------------

    async def serve(self, frames: AsyncIterator[location_pb2.ReportLocationsRequest]) -> int:
        """Run one ReportLocations stream to its half-close; returns the positions received.

        Raises :class:`ResourceExhausted` when ``max_connections`` are open, :class:`StreamEnded` when taken over
        (ABORTED) or on shutdown (UNAVAILABLE), ``InvalidArgument`` for an invalid frame (those before it applied).
        """
        if self.stopping:
            raise StreamEnded(grpc.StatusCode.UNAVAILABLE, "rides-location is shutting down; reconnect")
        if len(self.open) >= self.settings.max_connections:
            raise ResourceExhausted(f"rides-location holds {self.settings.max_connections:,} driver connections "
                                    f"already")
        connection = Connection()
        self.open.add(connection)
        metrics.STREAMS.inc()
        try:
            return await self._run(connection, frames)
        except asyncio.CancelledError:
            if connection.stop is None:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # our own cancel (taken over, or shutdown, while waiting for a frame): consumed here
            raise connection.stop from None
        finally:
            self.open.discard(connection)
            if connection.driver_id is not None and self.connections.get(connection.driver_id) is connection:
                del self.connections[connection.driver_id]
            metrics.STREAMS.dec()
            connection.done.set()

    async def _run(self, connection: Connection, frames: AsyncIterator[location_pb2.ReportLocationsRequest]) -> int:
        while True:
            connection.check()
            connection.reading = True
            try:
                frame = await anext(frames, None)
            finally:
                connection.reading = False
            connection.check()
            if frame is None:
                return connection.received
            report = check.report(frame, connection.driver_id)
            if connection.driver_id is None:
                await self._take_over(connection, report.driver_id)
                connection.check()
            await self.report(report)
            connection.received += 1

    async def _take_over(self, connection: Connection, driver_id: str) -> None:
        """Make ``connection`` the driver's: an older one ends ABORTED, and is waited for."""
        connection.driver_id = driver_id
        while (older := self.connections.get(driver_id)) is not None and older is not connection:
            older.end(StreamEnded(grpc.StatusCode.ABORTED,
                                  f"another ReportLocations stream of driver {driver_id} took over"))
            await older.done.wait()
        self.connections[driver_id] = connection

    async def stop(self, timeout_s: float = 5.0) -> None:
        """End every stream UNAVAILABLE and every tracker (:class:`~.feeds.TrackingStopped`); wait for the streams
        (at most ``timeout_s``)."""
        self.stopping = True
        open_now = list(self.open)
        for connection in open_now:
            connection.end(StreamEnded(grpc.StatusCode.UNAVAILABLE, "rides-location is shutting down; reconnect"))
        self.feeds.stop()
        if open_now:
            await asyncio.wait([asyncio.ensure_future(c.done.wait()) for c in open_now], timeout=timeout_s)
