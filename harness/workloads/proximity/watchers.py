"""The fence-event consumers: GeofenceService.WatchFenceEvents streams held for the whole run.

Each load process watches every seeded fence, at most 100 per stream (the contract's limit,
:data:`casemesh.services.proximity.contract.MAX_WATCHED_FENCES`): ``ceil(fences / 100)`` streams, each over its own
slice of the fence ids. A watcher opens ``from_now`` (a kept data directory may hold a million older events), so
it does not know when the service starts sending it events; connect therefore proves each watcher live before any
entity moves: a probe entity of its own goes in and out of the first fence of the watcher's slice until the
watcher receives one of the probe's events (:attr:`Watcher.primed`). Every event written after that one has a
higher sequence number, and the stream delivers every later event of its fences in sequence order, so every event
of the moving entities (which start after) reaches it.

A watcher whose stream ends (UNAVAILABLE when the geofence service restarts, RESOURCE_EXHAUSTED when it fell
behind) opens again after 100 ms doubling up to 2 s, with ``after_sequence`` = the last sequence it received, so
nothing is skipped or repeated; before it is primed it opens ``from_now`` again. OUT_OF_RANGE (the events after its
last one are no longer kept) resumes from the oldest kept event (``after_sequence`` 0) with a warning: the events in
between are lost, as the invariant will report. INVALID_ARGUMENT, PERMISSION_DENIED, UNAUTHENTICATED and
UNIMPLEMENTED end it for good (logged).

What it records, for the events of this process's own entities (:class:`~.invariants.FenceLedger`):

- ``fence_notify``: the event's arrival on the watcher's stream − its position's ``sent_at_unix_ms`` (the
  device's clock, the same machine's), code OK: the whole way of a position through the gateway's stream, the
  tracker, the geofence service's durable write and the watch stream, as a user waiting for "you have arrived"
  sees it (clamped at 0);
- each event into the ledger, for ``fence_events_exactly_once`` at the end of the run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from casemesh.proximity.v1 import geofence_pb2

from .invariants import FenceLedger
from .seeding import GEOFENCE

log = logging.getLogger("casemesh.workloads.proximity")

FENCE_NOTIFY = "fence_notify"
RECONNECT_BASE_S = 0.1
RECONNECT_MAX_S = 2.0
#: Codes that end a stream for good: retrying cannot change them.
FATAL = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED,
                   grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNIMPLEMENTED})


def backoff_s(failures: int) -> float:
    """Pause before the next attempt after ``failures`` failures in a row: 100 ms doubling up to 2 s."""
    return min(RECONNECT_BASE_S * 2 ** min(max(failures, 1) - 1, 10), RECONNECT_MAX_S)


class Watcher:
    """One WatchFenceEvents stream over ``fence_ids`` (at most 100), held and resumed until :meth:`stop`.

    ``probes`` are the ids of the probe entities whose events prime it; ``clock`` the perf_counter clock.
    """

    def __init__(self, streams: Any, name: str, fence_ids: Sequence[str], ledger: FenceLedger, probes: frozenset[str],
                 *, clock: Callable[[], float] = time.perf_counter):
        self.streams = streams
        self.name = name
        self.fence_ids = list(fence_ids)
        self.ledger = ledger
        self.probes = probes
        self.clock = clock
        #: The last event sequence received (0: none yet).
        self.last_sequence = 0
        #: Set once a probe's event was received: every later event of these fences will be.
        self.primed = asyncio.Event()
        self.stopping = False
        self.call: Any = None
        self.task: asyncio.Task | None = None
        self.sessions = 0
        self.received = 0
        self.own = 0
        self.out_of_order = 0
        self.errors: Counter[str] = Counter()

    def request(self) -> geofence_pb2.WatchFenceEventsRequest:
        """The next stream's request: from now until primed, then after the last sequence received."""
        if not self.primed.is_set():
            return geofence_pb2.WatchFenceEventsRequest(fence_ids=self.fence_ids, from_now=True)
        return geofence_pb2.WatchFenceEventsRequest(fence_ids=self.fence_ids, after_sequence=self.last_sequence)

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.run(), name=f"proximity-{self.name}")

    def event(self, event: geofence_pb2.FenceEvent) -> None:
        """One received event: its sequence remembered, a probe's primes the watcher, an own entity's is counted and
        timed (``fence_notify``)."""
        self.received += 1
        if event.sequence <= self.last_sequence:
            self.out_of_order += 1
        self.last_sequence = max(self.last_sequence, event.sequence)
        position = event.position
        if position.entity_id in self.probes:
            self.primed.set()
            return
        if not self.ledger.saw(event):
            return
        self.own += 1
        sent_ms = position.sent_at_unix_ms
        if sent_ms > 0:
            now_ns = self.streams.wall_ns(self.clock())
            self.streams.observe(FENCE_NOTIFY, max(now_ns - sent_ms * 1_000_000, 0) / 1e9,
                                 sent_at=self.streams.perf_at(sent_ms * 1_000_000))

    async def run(self) -> None:
        """Hold the stream until stopped (module docstring)."""
        failures = 0
        while not self.stopping:
            request = self.request()
            call = self.call = self.streams.server_stream(GEOFENCE, "WatchFenceEvents", request)
            self.sessions += 1
            code: grpc.StatusCode | None = None
            try:
                async for response in call:
                    failures = 0
                    self.event(response.event)
                self.errors["WatchFenceEvents OK"] += 1  # the service ended it (it never does by itself): again
            except grpc.aio.AioRpcError as error:
                if self.stopping:
                    return
                code = error.code()
                self.errors[f"WatchFenceEvents {code.name}"] += 1
                log.info("%s: WatchFenceEvents ended %s: %s", self.name, code.name, error.details())
            except asyncio.CancelledError:
                call.cancel()
                if self.stopping:
                    return
                raise
            finally:
                self.call = None
            if code in FATAL:
                log.warning("%s: WatchFenceEvents refused %s: this watcher stops", self.name, code.name)
                return
            if code == grpc.StatusCode.OUT_OF_RANGE:
                log.warning("%s: the events after sequence %d are no longer kept: resuming from the oldest kept",
                            self.name, self.last_sequence)
                self.last_sequence = 0
            failures += 1
            await asyncio.sleep(backoff_s(failures))

    async def stop(self) -> None:
        """End the stream and its task."""
        self.stopping = True
        if self.call is not None:
            self.call.cancel()
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
