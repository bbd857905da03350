"""Viewers: streaming viewers on LiveEdgeService.StreamParts and LL-HLS players polling the edge, and what they measure.

Two kinds (``llhls_fraction`` of each stream's viewers poll):

- a **streaming** viewer holds one StreamParts stream from the live edge;
  when it ends with an error (UNAVAILABLE: the edge went away;
  RESOURCE_EXHAUSTED: it fell 64 parts behind; anything else alike) it opens
  another ``from`` the part after its last one, so the parts continue
  without a gap. NOT_FOUND for that part (it left the DVR window) restarts
  it at the live edge: a gap, counted.
- an **LL-HLS** player (:mod:`.player`) loads the playlist once without
  blocking, starts at its last independent part, then fetches each next
  part with GetPart on its reference, which the edge holds until the part
  is published, as it does for the playlist's EXT-X-PRELOAD-HINT. With
  ``llhls_reload: segment`` (the default) it reloads the playlist (blocking
  on the part it wants next) once per segment, before its part 0; with
  ``part`` before every part, as RFC 8216bis' example player does. Why the
  default: the harness shares two cores with the mesh; one RPC a part and
  no playlist parse keeps a player's cost near a streaming viewer's, and
  the edge's mechanism is the same (a blocked GetPart and a blocking reload
  of the same part coalesce into one origin request). An error leaves the
  part to fetch as it was (retried after a pause); NOT_FOUND (out of the DVR
  window) restarts at the live edge.

Every part received goes through :meth:`Audience.receive`, the hot path
(one call per part per viewer, no object kept): the viewer's
:class:`~.player.Continuity` (a gap or a duplicate is recorded at once as a
``continuity`` sample with status DATA_LOSS and logged), the glass-to-glass
ledger (``glass_to_glass``: a chunk's capture → its first receipt by any
viewer of this process, once per chunk) and, for ``viewer_latency_sample``
of receipts, ``viewer_latency`` (the part's first chunk's capture → this
viewer has the part). When a viewer leaves (the end of the run, the end of a
join) its whole watch is one ``continuity`` sample: OK when it saw every
chunk once, in order.

The population's calls are the population's own (unrecorded per RPC, as
:meth:`casemesh.harness.streams.Streams.call`); an LL-HLS player records
its playlist reloads as ``playlist_reload`` and its part fetches as
``part_fetch`` (each from the request, blocking wait for the part
included), and a join journey's calls are recorded per RPC as any
journey's are.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from casemesh.live.v1 import edge_pb2, live_pb2
from casemesh.services.live.contract import PlaylistError, parse_playlist

from .media import GlassToGlass, first_capture_ns
from .player import OK, Continuity, live_edge_start, listed_after, next_ref
from .seeding import EDGE, LLHLS, State, ViewerPlan

log = logging.getLogger("casemesh.workloads.live")

#: Measures: a chunk's capture → its first receipt by any viewer (per chunk); a part's first chunk's capture → a
#: viewer has it (sampled); a join's intended start → its first part; an LL-HLS player's blocking playlist reload and
#: part fetch; the no-gap invariant (a sample per viewer when it leaves, DATA_LOSS per gap or duplicate at once).
GLASS_TO_GLASS = "glass_to_glass"
VIEWER_LATENCY = "viewer_latency"
TIME_TO_FIRST_PART = "time_to_first_part"
PLAYLIST_RELOAD = "playlist_reload"
PART_FETCH = "part_fetch"
CONTINUITY = "continuity"
DATA_LOSS = "DATA_LOSS"
#: A viewer's pause after a failed call or stream, doubling per failure in a row up to the maximum.
RETRY_BASE_S = 0.1
RETRY_MAX_S = 2.0

Unary = Callable[[str, str, Any], Awaitable[Any]]


def open_parts_stream(streams: Any, request: edge_pb2.StreamPartsRequest) -> Any:
    """A StreamParts call without deadline for a held viewer (:meth:`~casemesh.harness.streams.Streams.server_stream`)."""
    return streams.server_stream(EDGE, "StreamParts", request)


@dataclass(eq=False)
class Viewer:
    """One viewer: which stream, which kind, its continuity, its counters."""

    plan: ViewerPlan
    stream_id: str
    continuity: Continuity = field(default_factory=Continuity)
    task: asyncio.Task | None = None
    call: Any = None
    sessions: int = 0
    restarts: int = 0
    errors: Counter = field(default_factory=Counter)
    first_part_at: float = 0.0


class Audience:
    """This process's viewers and what they measure (see the module docstring)."""

    def __init__(self, streams: Any, state: State, ledger: GlassToGlass, *, latency_sample: float, reload: str,
                 rng: random.Random | None = None, clock: Callable[[], float] = time.perf_counter):
        self.streams = streams
        self.state = state
        self.ledger = ledger
        self.latency_sample = latency_sample
        self.reload_every_part = reload == "part"
        self.rng = rng or random.Random()
        self.clock = clock
        index, count = streams.share
        self.local = [Viewer(plan, state.streams[plan.stream].stream_id) for plan in state.viewers[index::count]]
        self.closing = False
        self.bad_parts = 0

    # the hot path ----------------------------------------------------------------------------------------------

    def receive(self, viewer: Viewer, stream: int, part: live_pb2.Part) -> str:
        """One part received by ``viewer`` of stream ``stream``: continuity, glass to glass, sampled viewer latency."""
        now_ns = time.time_ns()
        ref = part.ref
        first, count = part.first_chunk_sequence, part.chunk_count
        outcome = viewer.continuity.check(ref.media_sequence, ref.part_index, first, count, part.ends_segment)
        streams = self.streams
        if outcome != OK:
            self.bad_parts += 1
            log.warning("%s viewer %d: %s at part %d-%d (chunks %d+%d; expected chunk %s)", viewer.stream_id,
                        viewer.plan.index, outcome, ref.media_sequence, ref.part_index, first, count,
                        viewer.continuity.next_chunk)
            streams.observe(CONTINUITY, 0.0, DATA_LOSS, sent_at=self.clock())
        for captured_ns in self.ledger.received(stream, first, count, lambda: part.data):
            streams.observe(GLASS_TO_GLASS, (now_ns - captured_ns) / 1e9, sent_at=streams.perf_at(captured_ns))
        if self.latency_sample and self.rng.random() < self.latency_sample:
            captured_ns = first_capture_ns(part.data, first)
            if captured_ns is not None:
                streams.observe(VIEWER_LATENCY, (now_ns - captured_ns) / 1e9, sent_at=streams.perf_at(captured_ns))
        return outcome

    def left(self, viewer: Viewer, observe: Callable[..., None] | None = None) -> str:
        """``viewer`` leaves: its watch as one ``continuity`` sample (OK: every chunk once, in order; DATA_LOSS after
        a gap or duplicate; UNAVAILABLE when it never got a part). Returns the code."""
        continuity = viewer.continuity
        code = OK if continuity.clean and continuity.parts else DATA_LOSS if continuity.parts else "UNAVAILABLE"
        if observe is None:
            self.streams.observe(CONTINUITY, 0.0, code, sent_at=self.clock())
        else:
            observe(CONTINUITY, 0.0, code)
        return code

    # watching --------------------------------------------------------------------------------------------------

    def _pause(self, failures: int) -> float:
        return min(RETRY_BASE_S * 2 ** min(failures - 1, 10), RETRY_MAX_S) * self.rng.uniform(0.5, 1.0)

    def _done(self, until: float | None) -> bool:
        return self.closing or (until is not None and self.clock() >= until)

    async def watch_streaming(self, viewer: Viewer, *, until: float | None = None,
                              first_part: Callable[[], None] | None = None) -> None:
        """Hold StreamParts for ``viewer`` until the run closes (or ``until``, perf_counter s), resuming after errors.
        ``first_part`` is called at the first part; an error before it is raised (a join that never started)."""
        stream = viewer.plan.stream
        failures = 0
        while not self._done(until):
            request = edge_pb2.StreamPartsRequest(stream_id=viewer.stream_id)
            resume = viewer.continuity.resume
            if resume is not None:
                getattr(request, "from").CopyFrom(live_pb2.PartRef(media_sequence=resume[0], part_index=resume[1]))
            call = viewer.call = open_parts_stream(self.streams, request)
            viewer.sessions += 1
            try:
                async for response in call:
                    self.receive(viewer, stream, response.part)
                    failures = 0
                    if first_part is not None:
                        first_part()
                        first_part = None
                    if until is not None and self.clock() >= until:
                        call.cancel()
                        return
                return  # ended OK: the stream ended
            except grpc.aio.AioRpcError as error:
                code = error.code()
                if first_part is not None and viewer.continuity.parts == 0:
                    raise
                if self.closing:
                    return
                viewer.errors[code.name] += 1
                failures += 1
                log.info("%s viewer %d: StreamParts ended %s; resuming from %s", viewer.stream_id, viewer.plan.index,
                         code.name, viewer.continuity.resume)
                if code == grpc.StatusCode.NOT_FOUND:  # the part is out of the DVR window: the live edge
                    viewer.continuity.next_part = None
                    viewer.restarts += 1
            except asyncio.CancelledError:
                call.cancel()
                raise
            finally:
                viewer.call = None
            await asyncio.sleep(self._pause(failures))

    async def _start_ref(self, viewer: Viewer, unary: Unary) -> tuple[int, int]:
        response = await unary(EDGE, "GetPlaylist", edge_pb2.GetPlaylistRequest(stream_id=viewer.stream_id))
        return live_edge_start(parse_playlist(response.playlist))

    async def watch_llhls(self, viewer: Viewer, unary: Unary | None = None, *, until: float | None = None,
                          first_part: Callable[[], None] | None = None) -> None:
        """Play ``viewer``'s stream as an LL-HLS player (module docstring) until the run closes or ``until``.

        ``unary`` makes the calls (a journey's caller: recorded per RPC);
        without it they are the population's own, recorded as
        ``playlist_reload`` and ``part_fetch``. An error before the first
        part is raised."""
        measure = unary is None
        call = unary or self._population_call
        stream = viewer.plan.stream
        ref = viewer.continuity.resume
        previous: tuple[int, int] | None = None
        failures = 0
        viewer.sessions += 1
        while not self._done(until):
            try:
                if ref is None:
                    ref = await self._start_ref(viewer, call)
                    previous = None
                if self.reload_every_part or ref[1] == 0:
                    made = self.clock()
                    response = await self._timed(call, measure, PLAYLIST_RELOAD, "GetPlaylist", edge_pb2.GetPlaylistRequest(
                        stream_id=viewer.stream_id, block=live_pb2.PartRef(media_sequence=ref[0], part_index=ref[1])), made)
                    last = (response.last_part.media_sequence, response.last_part.part_index)
                    if last < ref:
                        log.warning("%s viewer %d: a reload blocked on %s listed up to %s", viewer.stream_id,
                                    viewer.plan.index, ref, last)
                    if self.reload_every_part and previous is not None:
                        listed = listed_after(parse_playlist(response.playlist), previous)
                        if listed is not None and listed != ref:
                            log.warning("%s viewer %d: the playlist lists %s after %s, not %s", viewer.stream_id,
                                        viewer.plan.index, listed, previous, ref)
                made = self.clock()
                part = (await self._timed(call, measure, PART_FETCH, "GetPart", edge_pb2.GetPartRequest(
                    stream_id=viewer.stream_id, ref=live_pb2.PartRef(media_sequence=ref[0], part_index=ref[1])), made)).part
            except grpc.aio.AioRpcError as error:
                code = error.code()
                if first_part is not None and viewer.continuity.parts == 0:
                    raise
                if self.closing:
                    return
                viewer.errors[code.name] += 1
                failures += 1
                if code == grpc.StatusCode.NOT_FOUND:  # out of the DVR window (or never to be): the live edge
                    ref = None
                    viewer.restarts += 1
                await asyncio.sleep(self._pause(failures))
                continue
            except PlaylistError as error:
                log.warning("%s viewer %d: unreadable playlist: %s", viewer.stream_id, viewer.plan.index, error)
                viewer.errors["PLAYLIST"] += 1
                failures += 1
                await asyncio.sleep(self._pause(failures))
                continue
            failures = 0
            self.receive(viewer, stream, part)
            if first_part is not None:
                first_part()
                first_part = None
            previous = (part.ref.media_sequence, part.ref.part_index)
            ref = next_ref(previous[0], previous[1], part.ends_segment)

    async def _population_call(self, service: str, method: str, request: Any) -> Any:
        return await self.streams.call(service, method, request)

    async def _timed(self, call: Unary, measure: bool, name: str, method: str, request: Any, made: float) -> Any:
        if not measure:
            return await call(EDGE, method, request)
        code = OK
        try:
            return await call(EDGE, method, request)
        except grpc.aio.AioRpcError as error:
            code = error.code().name
            raise
        finally:
            self.streams.observe(name, self.clock() - made, code, sent_at=made)

    # the population --------------------------------------------------------------------------------------------

    def start(self, viewer: Viewer) -> None:
        watch = self.watch_llhls(viewer) if viewer.plan.kind == LLHLS else self.watch_streaming(viewer)
        viewer.task = asyncio.get_running_loop().create_task(self._guard(viewer, watch), name=f"live-viewer-{viewer.plan.index}")

    async def _guard(self, viewer: Viewer, watch: Awaitable[None]) -> None:
        try:
            await watch
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug must not end the run silently: logged, and the viewer counts as never watching
            log.exception("%s viewer %d stopped", viewer.stream_id, viewer.plan.index)

    async def start_all(self, concurrency: int, timeout_s: float) -> None:
        """Start every local viewer, ``concurrency`` at a time (each batch once it has its first part or after a
        second); raises UNAVAILABLE when a viewer has no part ``timeout_s`` after the last batch started."""
        for batch_start in range(0, len(self.local), concurrency):
            batch = self.local[batch_start:batch_start + concurrency]
            for viewer in batch:
                self.start(viewer)
            deadline = self.clock() + 1.0
            while any(v.continuity.parts == 0 for v in batch) and self.clock() < deadline:
                await asyncio.sleep(0.02)
        deadline = self.clock() + timeout_s
        while any(v.continuity.parts == 0 for v in self.local) and self.clock() < deadline:
            await asyncio.sleep(0.05)
        waiting = [v for v in self.local if v.continuity.parts == 0]
        if waiting:
            raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                       f"{len(waiting)} of {len(self.local)} viewers got no part within {timeout_s:g} s "
                                       f"(first: viewer {waiting[0].plan.index} of {waiting[0].stream_id}, "
                                       f"{waiting[0].plan.kind}, errors {dict(waiting[0].errors)})")

    async def close(self) -> dict[str, int]:
        """Stop every viewer, record each one's ``continuity`` sample; returns the codes counted."""
        self.closing = True
        tasks = [v.task for v in self.local if v.task is not None]
        for viewer in self.local:
            if viewer.call is not None:
                viewer.call.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        codes = Counter(self.left(viewer) for viewer in self.local)
        gaps = sum(v.continuity.gaps for v in self.local)
        duplicates = sum(v.continuity.duplicates for v in self.local)
        if gaps or duplicates:
            log.warning("live: %d gaps (%d chunks missed) and %d duplicates over %d viewers", gaps,
                        sum(v.continuity.missing_chunks for v in self.local), duplicates, len(self.local))
        return dict(codes)

