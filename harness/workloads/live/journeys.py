"""The live workload's journeys: a viewer joining (churn), a chat post, the spammer's post.

The held population (broadcasters, viewers, chatters: :mod:`.clients`)
makes the steady load; arrivals add what comes and goes:

- ``join``: a new viewer opens the stream (an LL-HLS player for
  ``llhls_fraction`` of joins, else a StreamParts stream), measures
  ``time_to_first_part`` from the arrival's intended start, watches for
  ``watch_s`` (its parts count for glass to glass and continuity like the
  population's) and leaves with its ``continuity`` sample. The journey's own
  latency is its whole visit; its SLO is the first part's.
- ``chat``: a chatter of this process posts to its stream's room
  (LiveChatService.PostMessage); ``banned_fraction`` of posts carry a banned
  word and must come back BLOCKED (a ``moderation`` sample each; a clean post
  BLOCKED is a false positive, DATA_LOSS too); the room's other chatters
  measure ``chat_delivery``.
- ``spam``: the spammer posts; its rate is the profile's (share of arrivals),
  meant to be over the limit. RESOURCE_EXHAUSTED is the expected answer (the
  journey is OK); each post is a ``rate_limit`` sample.
"""

from __future__ import annotations

import random
import time

import grpc
from pydantic import Field

from casemesh.live.v1 import chat_pb2

from ..base import Caller, Params
from .chat import DATA_LOSS, MODERATION, RATE_LIMIT, WORDS, RateLimitCheck, compose
from .clients import LiveClients
from .seeding import LIVE_CHAT, LLHLS, STREAMING, ViewerPlan
from .viewers import TIME_TO_FIRST_PART, Viewer


def rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    """A client-side error as a journey raises it (its code becomes the journey's status)."""
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


class JoinParams(Params):
    """How long a new viewer watches, and how it plays."""

    watch_s: float = Field(default=10.0, gt=0, le=600, description="seconds the viewer watches before leaving")
    llhls_fraction: float | None = Field(default=None, ge=0.0, le=1.0,
                                         description="share of joins that poll as LL-HLS players (default: the seed's)")


class ChatParams(Params):
    """A chat post."""

    banned_fraction: float = Field(default=0.05, ge=0.0, le=1.0,
                                   description="share of posts carrying one of the seed's banned_words (must be BLOCKED)")
    min_words: int = Field(default=1, ge=1, le=50, description="fewest words after the post's id and time")
    max_words: int = Field(default=8, ge=1, le=50, description="most words (uniform in between)")


class SpamParams(Params):
    """The spammer and the limit it must be held to (live chat's defaults: Twitch's 20 messages per 30 s)."""

    limit_messages: int = Field(default=20, ge=1, le=10_000, description="messages a user may post per window")
    limit_window_s: float = Field(default=30.0, gt=1.0, le=3600, description="the moving window, seconds")


async def join(call: Caller, params: JoinParams, clients: LiveClients, rng: random.Random) -> None:
    """A new viewer joins a random stream, watches ``watch_s`` and leaves (module docstring)."""
    state = clients.state
    stream = rng.randrange(len(state.streams))
    fraction = state.llhls_fraction if params.llhls_fraction is None else params.llhls_fraction
    kind = LLHLS if rng.random() < fraction else STREAMING
    clients.joins += 1
    viewer = Viewer(ViewerPlan(-clients.joins, stream, kind), state.streams[stream].stream_id)
    audience = clients.audience
    intended = call.intended_at

    def first_part() -> None:
        call.observe(TIME_TO_FIRST_PART, time.perf_counter() - intended)

    until = time.perf_counter() + params.watch_s
    try:
        if kind == LLHLS:
            await audience.watch_llhls(viewer, call, until=until, first_part=first_part)
        else:
            call.begin()
            await audience.watch_streaming(viewer, until=until, first_part=first_part)
    except grpc.aio.AioRpcError as error:
        if viewer.continuity.parts == 0:
            call.observe(TIME_TO_FIRST_PART, time.perf_counter() - intended, error.code().name)
        raise
    if viewer.continuity.parts == 0:  # the run closed before its first part
        return
    audience.left(viewer, call.observe)


async def chat(call: Caller, params: ChatParams, clients: LiveClients, rng: random.Random) -> None:
    """A chatter posts to its stream's room (module docstring)."""
    chatters = clients.chatters
    if chatters is None or not clients.local_chatters:
        raise rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "no chatter in this load process (seed chatters: 0)")
    user = rng.choice(clients.local_chatters)
    stream = clients.state.streams[clients.state.chatter_stream[user]]
    banned_words = clients.state.banned_words
    banned = rng.choice(banned_words) if banned_words and rng.random() < params.banned_fraction else None
    words = rng.choices(WORDS, k=rng.randint(params.min_words, max(params.min_words, params.max_words)))
    message_id = chatters.next_message_id()
    text = compose(message_id, chatters.streams.wall_ns(call.intended_at), words, banned, rng)
    response = await call(LIVE_CHAT, "PostMessage", chat_pb2.PostMessageRequest(
        stream_id=stream.stream_id, user_id=user, client_message_id=message_id, text=text))
    blocked = response.outcome == chat_pb2.MODERATION_OUTCOME_BLOCKED
    if banned is not None:
        call.observe(MODERATION, time.perf_counter() - call.intended_at, "OK" if blocked else DATA_LOSS)
        if not blocked:
            raise rpc_error(grpc.StatusCode.DATA_LOSS, f"{message_id}: a post with {banned!r} was delivered")
    elif blocked:
        call.observe(MODERATION, time.perf_counter() - call.intended_at, DATA_LOSS)
        raise rpc_error(grpc.StatusCode.DATA_LOSS, f"{message_id}: a clean post was blocked ({list(response.matched_words)})")


async def spam(call: Caller, params: SpamParams, clients: LiveClients, rng: random.Random) -> None:
    """The spammer posts; RESOURCE_EXHAUSTED beyond the limit is the expected answer (module docstring)."""
    stream = clients.state.streams[0]
    if stream.spammer is None or clients.chatters is None:
        raise rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "no spammer (seed spammer: false, or no chatters)")
    if clients.rate_limit is None:
        clients.rate_limit = RateLimitCheck(params.limit_messages, params.limit_window_s)
    message_id = clients.chatters.next_message_id()
    text = compose(message_id, clients.chatters.streams.wall_ns(call.intended_at), rng.choices(("buy", "follow", "free"), k=3))
    sent_at = time.perf_counter()
    try:
        await call(LIVE_CHAT, "PostMessage", chat_pb2.PostMessageRequest(
            stream_id=stream.stream_id, user_id=stream.spammer, client_message_id=message_id, text=text))
        accepted = True
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
            raise
        accepted = False
    code = clients.rate_limit.outcome(sent_at, accepted)
    call.observe(RATE_LIMIT, time.perf_counter() - sent_at, code)
