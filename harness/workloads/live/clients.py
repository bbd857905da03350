"""Everything one load process holds for the run: broadcasters, viewers, chatters (what the journeys get).

With ``--workers N`` each process holds its share (``streams.share``):
the broadcasters of ``streams[index::count]``, the viewers of
``viewers[index::count]``, the chatters of ``chatters[index::count]``;
glass-to-glass is then measured per process (a chunk's first receipt by a
viewer of this process), from the capture time its bytes carry. The
spammer is one account that every process posts as, and each process's
``rate_limit`` check sees only its own share of the posts, so with N
processes a limit up to N times too lenient can pass unseen (a warning says
so at the start of such a run).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

import grpc

from casemesh.live.v1 import ingest_pb2

from .broadcaster import Broadcaster
from .chat import Chatters, RateLimitCheck
from .media import GlassToGlass
from .seeding import INGEST, SeedParams, State
from .viewers import Audience

log = logging.getLogger("casemesh.workloads.live")

#: Seconds ``connect`` waits for every stream's first part, and then for every viewer's.
FIRST_PART_TIMEOUT_S = 15.0


class LiveClients:
    """This process's share of the population; built by ``connect``, closed by ``disconnect``."""

    def __init__(self, streams: Any, state: State, params: SeedParams, rng: random.Random):
        self.streams = streams
        self.state = state
        self.params = params
        self.rng = rng
        index, count = streams.share
        self.chunks = params.chunk_plan()
        self.ledger = GlassToGlass(len(state.streams))
        buffer_chunks = round(params.resend_buffer_s * params.frame_rate)
        self.broadcasters = [Broadcaster(s, self.chunks, self.ledger, streams, buffer_chunks=buffer_chunks)
                             for s in state.streams[index::count]]
        self.audience = Audience(streams, state, self.ledger, latency_sample=params.viewer_latency_sample,
                                 reload=params.llhls_reload, rng=random.Random(f"live-viewers-{index}"))
        self.chatters = Chatters(streams, state) if state.chatters else None
        self.local_chatters = self.chatters.local if self.chatters else []
        #: The spammer's rate-limit check, built by the first spam journey (its limits are the journey's params).
        self.rate_limit: RateLimitCheck | None = None
        if count > 1 and index == 0 and any(s.spammer for s in state.streams):
            log.warning("live: with %d load processes each checks the spammer's rate limit on its own share of the "
                        "spammer's posts: a limit up to %d times too lenient would pass the rate-limit check", count, count)
        self.joins = 0

    async def connect(self) -> None:
        for broadcaster in self.broadcasters:
            broadcaster.start()
        await self._first_parts()
        await self.audience.start_all(self.params.connect_concurrency, FIRST_PART_TIMEOUT_S)
        if self.chatters is not None:
            await self.chatters.connect_all(self.params.connect_concurrency)

    async def _first_parts(self) -> None:
        """Wait until every stream (this process's broadcasters' and the others') has published a part."""
        deadline = time.perf_counter() + FIRST_PART_TIMEOUT_S
        pending = list(self.state.streams)
        while pending:
            still = []
            for stream in pending:
                try:
                    response = await self.streams.call(INGEST, "GetStream", ingest_pb2.GetStreamRequest(stream_id=stream.stream_id))
                except grpc.aio.AioRpcError as error:
                    if time.perf_counter() >= deadline:
                        raise
                    log.info("%s: GetStream failed %s while waiting for its first part", stream.stream_id, error.code().name)
                    still.append(stream)
                    continue
                if not response.stream.HasField("last_part"):
                    still.append(stream)
            pending = still
            if pending:
                if time.perf_counter() >= deadline:
                    errors = {b.stream.stream_id: b.last_error for b in self.broadcasters}
                    raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                               f"{len(pending)} streams published no part within {FIRST_PART_TIMEOUT_S:g} s "
                                               f"(first: {pending[0].stream_id}; broadcasters' last errors {errors})")
                await asyncio.sleep(0.1)

    async def close(self) -> None:
        """Viewers first (each one's continuity sample), then chatters, then the broadcasters' half-close."""
        try:
            codes = await self.audience.close()
            log.info("live: viewers left %s", codes)
        finally:
            try:
                if self.chatters is not None:
                    await self.chatters.close()
            finally:
                await asyncio.gather(*(b.stop() for b in self.broadcasters), return_exceptions=True)
        for b in self.broadcasters:
            if b.reconnects or b.resend_misses:
                log.info("live: %s reconnected %d times, resent %d chunks (%d not in the buffer)", b.stream.stream_id,
                         b.reconnects, b.resent, b.resend_misses)
        if self.chatters is not None and self.chatters.leaks:
            log.warning("live: %d chat messages with a banned word reached a chatter", self.chatters.leaks)
