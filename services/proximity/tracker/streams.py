"""StreamPositions connections: batches in, validated whole, forwarded to the geofence, applied, acknowledged.

Seed 001 #29 (shared/seeds/001_58dfc580020147d2.txt line 51): "geofencing, real-time location updates ... 10M
updates/sec": devices (or the gateways that aggregate them) send positions in batches on one long-lived stream.

One stream (:meth:`PositionStreams.serve`) handles its batches one at a time, in order, so acknowledgements come in
the order of the batches. Each batch:

1. is validated whole (:func:`~.validation.batch`): an invalid batch ends the stream INVALID_ARGUMENT naming the
   first bad field, and nothing of it is forwarded or applied (the batches acknowledged before stay applied);
2. is forwarded in full to GeofenceService.EvaluatePositions (:mod:`.forwarding`), which evaluates it against the
   fences and commits the entities' states and events durably before answering; if that fails (after retries on
   UNAVAILABLE within the budget), the stream ends UNAVAILABLE, the batch neither applied nor acknowledged: the
   gateway resends it on a new stream;
3. is applied to the index (:meth:`~.entities.EntityIndex.apply`: stale positions skipped);
4. is acknowledged: ``StreamPositionsResponse(batch_id, applied, stale)``.

So for an acknowledged position, the geofence has had it (evaluated it against the fences durably, or skipped it
as stale) and the index holds it or a newer position of its entity (until the entity expires); the index never shows
a position the geofence has not had. Batches of one stream are not pipelined: forwarding batch n + 1 before batch n
committed could let the geofence see an entity's newer position first and skip its older one as stale, losing its
fence events.

Why the whole batch is forwarded, stale positions included (the tracker could drop the positions not newer than its
own last sequence of their entity): the geofence, not the tracker, is the authority on what has been evaluated; the
tracker's memory is advisory (in memory, lost on restart, dropped on expiry). Since the tracker applies a batch only
after the geofence committed it, the tracker's last sequence of an entity is usually at most the geofence's: equal,
or behind after a forward that failed once the geofence had committed (a lost answer, a deadline that passed while
the commit went on), and then the gateway's resend is stale there and applied here, as it should be. But that
holds only while the geofence keeps exactly what it committed. The tracker's memory is ahead of the geofence when
the geofence's state is not the one its acknowledgements came from: its data directory replaced, reset or restored
from an older copy, or another instance answering under its name (a topology change, a failover to a replica that is
behind). A filter on the tracker's memory would then drop positions the geofence never evaluated, and their ENTER
and EXIT events would be lost for good, silently. Forwarding everything costs the geofence one sequence lookup per
resent position (resends are rare: only the batches in flight when a stream ended), keeps the forward independent of
state other streams change while it is under way, and makes a resent batch the same EvaluatePositions request as the
first, which keeps the idempotency argument simple.

Bounds: at most ``max_streams`` streams at once (one more: RESOURCE_EXHAUSTED), with admission slots of their own.
:meth:`PositionStreams.stop` (shutdown) ends each stream UNAVAILABLE once its current batch is done (a stream waiting
for a batch at once).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc

from casemesh.proximity.v1 import tracker_pb2

from ...runtime.errors import ResourceExhausted
from . import metrics, validation
from .entities import EntityIndex
from .forwarding import Evaluate, ForwardFailed
from .settings import TrackerSettings

NAME = "proximity-tracker"


class StreamEnded(Exception):
    """A StreamPositions stream must end with ``code``: UNAVAILABLE (the geofence failed, or shutdown: resend what
    was not acknowledged)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        self.code = code
        super().__init__(message)


class Connection:
    """One StreamPositions stream: its task, whether it waits for a batch, and why it must end."""

    __slots__ = ("task", "reading", "stop", "done", "batches")

    def __init__(self) -> None:
        self.task = asyncio.current_task()
        self.reading = False
        self.stop: StreamEnded | None = None
        self.done = asyncio.Event()
        self.batches = 0

    def end(self, reason: StreamEnded) -> None:
        """Ask the stream to end with ``reason`` (the first reason wins); interrupts it only while it waits for a
        batch, never in the middle of one."""
        if self.stop is None:
            self.stop = reason
            if self.reading and self.task is not None:
                self.task.cancel()

    def check(self) -> None:
        if self.stop is not None:
            raise self.stop


class PositionStreams:
    """The StreamPositions streams over ``entities``, forwarding each batch through ``evaluate`` first."""

    def __init__(self, settings: TrackerSettings, entities: EntityIndex, evaluate: Evaluate) -> None:
        self.settings = settings
        self.entities = entities
        self._evaluate = evaluate
        self.open: set[Connection] = set()
        self.stopping = False

    async def process(self, request: tracker_pb2.StreamPositionsRequest) -> tracker_pb2.StreamPositionsResponse:
        """One batch: validate, forward, apply; its acknowledgement. ``InvalidArgument`` for an invalid batch
        (nothing of it forwarded or applied), :class:`StreamEnded` (UNAVAILABLE) when the forward failed (nothing of
        it applied)."""
        positions = validation.batch(request)
        metrics.BATCH_POSITIONS.observe(len(positions))
        started = time.perf_counter()
        try:
            await self._evaluate(request.positions)
        except ForwardFailed as failed:
            metrics.GEOFENCE_FAILURES.inc()
            raise StreamEnded(grpc.StatusCode.UNAVAILABLE,
                              f"batch {request.batch_id} was not acknowledged: {failed}; send it again, with every "
                              f"batch not acknowledged after it, on a new stream") from None
        finally:
            metrics.GEOFENCE_SECONDS.observe(time.perf_counter() - started)
        result = await self.entities.apply(positions)
        return tracker_pb2.StreamPositionsResponse(batch_id=request.batch_id, applied=result.applied,
                                                   stale=result.stale)

    async def serve(self, requests: AsyncIterator[tracker_pb2.StreamPositionsRequest]
                    ) -> AsyncIterator[tracker_pb2.StreamPositionsResponse]:
        """Run one StreamPositions stream to its half-close: an acknowledgement per batch, in order.

        Raises :class:`ResourceExhausted` when ``max_streams`` are open, ``InvalidArgument`` for an invalid batch,
        :class:`StreamEnded` (UNAVAILABLE) when a batch could not be forwarded, or on shutdown.
        """
        if self.stopping:
            raise StreamEnded(grpc.StatusCode.UNAVAILABLE, f"{NAME} is shutting down; reconnect")
        if len(self.open) >= self.settings.max_streams:
            raise ResourceExhausted(f"{NAME} holds {self.settings.max_streams:,} StreamPositions streams already")
        connection = Connection()
        self.open.add(connection)
        metrics.STREAMS.inc()
        try:
            while True:
                connection.check()
                connection.reading = True
                try:
                    request = await anext(requests, None)
                except asyncio.CancelledError:
                    if connection.stop is None:
                        raise
                    task = asyncio.current_task()
                    if task is not None:
                        task.uncancel()  # our own cancel (shutdown while waiting for a batch): consumed here
                    raise connection.stop from None
                finally:
                    connection.reading = False
                if request is None:
                    return
                response = await self.process(request)
                connection.batches += 1
                yield response
        finally:
            self.open.discard(connection)
            metrics.STREAMS.dec()
            connection.done.set()

    async def stop(self, timeout_s: float = 5.0) -> None:
        """End every stream UNAVAILABLE (each once its current batch is acknowledged); wait for them (at most
        ``timeout_s``)."""
        self.stopping = True
        open_now = list(self.open)
        for connection in open_now:
            connection.end(StreamEnded(grpc.StatusCode.UNAVAILABLE, f"{NAME} is shutting down; reconnect and send "
                                                                    f"the batches not acknowledged again"))
        if open_now:
            await asyncio.wait([asyncio.ensure_future(c.done.wait()) for c in open_now], timeout=timeout_s)
