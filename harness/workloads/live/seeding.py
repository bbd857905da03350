"""Seeding the live workload through the public API: streams, their broadcasters, viewers and chatters.

``streams`` streams are created with LiveIngestService.CreateStream, each
with its broadcaster (``lv<run>-s<i>-b``) and its chat room's members: the
stream's ``chatters`` (``lv<run>-s<i>-c<k>``) and, on the first stream, the
spammer (``lv<run>-s0-spam``) when ``spammer`` is on. ``<run>`` is random per
seeding, so a data directory kept from an earlier run shares no user or
room with this one. Each stream has ``viewers`` viewers: the first
``round(viewers x llhls_fraction)`` poll as LL-HLS players, the others hold
a LiveEdgeService.StreamParts stream. Chatters connect to the chat case
study's gateways, alternating between them.
"""

from __future__ import annotations

import asyncio
import random
import re
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field, field_validator, model_validator

from casemesh.live.v1 import ingest_pb2
from casemesh.services.live.contract import MAX_CHUNK_BYTES, MAX_ROOM_MEMBERS

from ..base import Caller, Params
from .media import HEADER_BYTES, ChunkPlan

INGEST = "live-ingest"
EDGE = "live-edge"
LIVE_CHAT = "live-chat"
#: The chat case study's connection servers, where chatters receive their rooms' messages.
GATEWAYS = ("chat-gateway-1", "chat-gateway-2")
STREAMING = "streaming"
LLHLS = "llhls"

_WORD = re.compile(r"[a-z0-9]{1,40}")


class SeedParams(Params):
    """The streams, their media, their audience."""

    streams: int = Field(default=2, ge=1, le=64, description="live streams, one broadcaster each for the whole run")
    viewers: int = Field(default=40, ge=0, le=10_000, description="viewers per stream held for the whole run")
    llhls_fraction: float = Field(default=0.5, ge=0.0, le=1.0,
                                  description="share of viewers that poll as LL-HLS players; the others hold StreamParts")
    chatters: int = Field(default=10, ge=0, le=MAX_ROOM_MEMBERS - 1,
                          description="chat viewers per stream, each holding a chat gateway Connect stream")
    spammer: bool = Field(default=True, description="a spammer in the first stream's room (the spam journey posts as it)")
    frame_rate: int = Field(default=30, ge=1, le=120, description="chunks per second (one per video frame)")
    keyframe_interval_s: float = Field(default=2.0, gt=0, le=10.0,
                                       description="seconds between keyframes (segments close at keyframes)")
    bitrate_kbps: int = Field(default=500, ge=1, le=100_000, description="media bitrate: the chunks' sizes follow it")
    keyframe_size_factor: float = Field(default=4.0, ge=1.0, le=100.0, description="a keyframe's size over a delta frame's")
    llhls_reload: Literal["segment", "part"] = Field(
        default="segment",
        description="LL-HLS players: 'segment' reloads the playlist (blocking) once per segment and fetches every "
                    "part by its reference, one RPC a part; 'part' reloads before every part, as RFC 8216bis' "
                    "example player does (two RPCs and a playlist parse a part)")
    banned_words: list[str] = Field(
        default_factory=list, max_length=32,
        description="banned words the chat journey puts in messages (words of live-chat's banned list); no "
                    "chatter's stream may ever carry one")
    viewer_latency_sample: float = Field(default=0.1, ge=0.0, le=1.0,
                                         description="share of (viewer, part) receipts measured as viewer_latency")
    resend_buffer_s: float = Field(default=10.0, gt=0, le=120.0,
                                   description="seconds of chunks a broadcaster keeps to resend after a reconnect")
    concurrency: int = Field(default=8, ge=1, le=256, description="seeding calls in flight")
    connect_concurrency: int = Field(default=32, ge=1, le=10_000,
                                     description="viewers and chatters connecting at once when the run opens (per load process)")

    @field_validator("banned_words")
    @classmethod
    def _words(cls, words: list[str]) -> list[str]:
        for word in words:
            if not _WORD.fullmatch(word):
                raise ValueError(f"banned word {word!r} must be 1 to 40 lower-case letters or digits")
        return words

    @model_validator(mode="after")
    def _fits(self) -> SeedParams:
        plan = self.chunk_plan()
        if abs(self.frame_rate * self.keyframe_interval_s - plan.gop) > 1e-6:
            raise ValueError(f"keyframe_interval_s ({self.keyframe_interval_s:g}) x frame_rate ({self.frame_rate}) "
                             f"must be a whole number of chunks")
        if plan.keyframe_bytes > MAX_CHUNK_BYTES:
            raise ValueError(f"a keyframe of {plan.keyframe_bytes:,} bytes is over the contract's {MAX_CHUNK_BYTES:,}: "
                             f"lower bitrate_kbps or keyframe_size_factor")
        if plan.delta_bytes <= HEADER_BYTES:
            raise ValueError(f"bitrate_kbps ({self.bitrate_kbps}) leaves no room after a chunk's {HEADER_BYTES}-byte header")
        return self

    def chunk_plan(self) -> ChunkPlan:
        return ChunkPlan(frame_rate=self.frame_rate, keyframe_interval_s=self.keyframe_interval_s,
                         bitrate_kbps=self.bitrate_kbps, keyframe_size_factor=self.keyframe_size_factor)


@dataclass
class StreamPlan:
    """One stream: its place, broadcaster and chatters; after seeding its ID, key and chat room."""

    index: int
    broadcaster: str
    chatters: list[str]
    spammer: str | None = None
    stream_id: str = ""
    stream_key: str = ""
    conversation_id: str = ""


@dataclass(frozen=True)
class ViewerPlan:
    """One viewer held for the run: its index, stream and kind (``streaming`` or ``llhls``)."""

    index: int
    stream: int
    kind: str


@dataclass
class State:
    """What the seeder made (picklable: sent to worker processes)."""

    run: str
    streams: list[StreamPlan]
    viewers: list[ViewerPlan]
    #: Every chatter, in order (stream by stream), and the stream each chats in.
    chatters: list[str] = field(default_factory=list)
    chatter_stream: dict[str, int] = field(default_factory=dict)
    banned_words: tuple[str, ...] = ()
    llhls_fraction: float = 0.5


def plan(params: SeedParams, run: str) -> State:
    """Users, viewers and rooms (no call): see the module docstring."""
    streams: list[StreamPlan] = []
    viewers: list[ViewerPlan] = []
    llhls = round(params.viewers * params.llhls_fraction)
    for s in range(params.streams):
        prefix = f"lv{run}-s{s}"
        chatters = [f"{prefix}-c{k}" for k in range(params.chatters)]
        spammer = f"{prefix}-spam" if params.spammer and s == 0 else None
        streams.append(StreamPlan(index=s, broadcaster=f"{prefix}-b", chatters=chatters, spammer=spammer))
        viewers.extend(ViewerPlan(len(viewers), s, LLHLS if k < llhls else STREAMING) for k in range(params.viewers))
    state = State(run=run, streams=streams, viewers=viewers, banned_words=tuple(params.banned_words),
                  llhls_fraction=params.llhls_fraction)
    for stream in streams:
        for chatter in stream.chatters:
            state.chatters.append(chatter)
            state.chatter_stream[chatter] = stream.index
    return state


async def seed(call: Caller, params: SeedParams, rng: random.Random) -> State:
    """Create every stream (CreateStream, which opens its chat room); returns the :class:`State`."""
    state = plan(params, f"{random.Random().getrandbits(32):08x}")
    limit = asyncio.Semaphore(params.concurrency)

    async def create(stream: StreamPlan) -> None:
        members = stream.chatters + ([stream.spammer] if stream.spammer else [])
        async with limit:
            response = await call(INGEST, "CreateStream", ingest_pb2.CreateStreamRequest(
                broadcaster_id=stream.broadcaster, title=f"casemesh live {state.run} #{stream.index}",
                chat_member_ids=members))
        stream.stream_id = response.stream.stream_id
        stream.stream_key = response.stream_key
        stream.conversation_id = response.chat_conversation_id

    await asyncio.gather(*(create(s) for s in state.streams))
    return state
