"""The live-streaming workload (Twitch; shared/seeds/001_58dfc580020147d2.txt #12 "Live Streaming": LL-HLS/WebRTC,
RTMP ingest, chat moderation, DVR; 1M concurrent viewers).

A population held for the whole run (casemesh.harness.streams): one
broadcaster per stream publishing chunks in real media time on a
LiveIngestService.Publish client stream (:mod:`.broadcaster`), viewers on
LiveEdgeService (StreamParts streams and LL-HLS players with blocking
reloads: :mod:`.viewers`), and chatters on the chat case study's gateway
streams (:mod:`.chat`). Open-loop arrivals add viewers who join and leave,
chat posts (some with a banned word) and a spammer's posts (:mod:`.journeys`).

Measures: ``glass_to_glass`` (a chunk's capture → its first receipt by any
viewer), ``viewer_latency`` (sampled per viewer and part), ``time_to_first_part``
(joins), ``playlist_reload`` and ``part_fetch`` (the held LL-HLS players'
calls), ``chat_delivery``; invariants ``continuity`` (no gap, no duplicate, across
reconnects), ``moderation`` (a banned word is blocked and reaches no one) and
``rate_limit``. The workload speaks only the contracts (protos/casemesh/live/v1,
casemesh.chat.v1) and casemesh.services.live.contract.
"""

from __future__ import annotations

import random

from casemesh.chat.v1 import gateway_pb2, gateway_pb2_grpc
from casemesh.live.v1 import chat_pb2, chat_pb2_grpc, edge_pb2, edge_pb2_grpc, ingest_pb2, ingest_pb2_grpc

from ...streams import Streams
from ..base import Journey, Workload, entrypoints
from .chat import CHAT_DELIVERY, MODERATION, RATE_LIMIT
from .clients import LiveClients
from .journeys import ChatParams, JoinParams, SpamParams, chat, join, spam
from .seeding import EDGE, GATEWAYS, INGEST, LIVE_CHAT, SeedParams, State, seed
from .viewers import CONTINUITY, GLASS_TO_GLASS, PART_FETCH, PLAYLIST_RELOAD, TIME_TO_FIRST_PART, VIEWER_LATENCY

_SERVICES = {
    INGEST: (ingest_pb2, "LiveIngestService", ingest_pb2_grpc.LiveIngestServiceStub),
    EDGE: (edge_pb2, "LiveEdgeService", edge_pb2_grpc.LiveEdgeServiceStub),
    LIVE_CHAT: (chat_pb2, "LiveChatService", chat_pb2_grpc.LiveChatServiceStub),
    **{gateway: (gateway_pb2, "ChatGatewayService", gateway_pb2_grpc.ChatGatewayServiceStub) for gateway in GATEWAYS},
}
_ENTRYPOINTS = entrypoints(_SERVICES)

MEASURES = (GLASS_TO_GLASS, VIEWER_LATENCY, TIME_TO_FIRST_PART, PLAYLIST_RELOAD, PART_FETCH, CHAT_DELIVERY,
            CONTINUITY, MODERATION, RATE_LIMIT)


async def connect(streams: Streams, state: State, params: SeedParams, rng: random.Random) -> LiveClients:
    """Start this process's broadcasters, wait for every stream's first part, start its viewers and connect its chatters."""
    clients = LiveClients(streams, state, params, rng)
    try:
        await clients.connect()
    except BaseException:
        await clients.close()
        raise
    return clients


async def disconnect(clients: LiveClients) -> None:
    """Each viewer's continuity sample, then close the chatters' streams and half-close the broadcasters'."""
    await clients.close()


WORKLOAD = Workload(
    name="live",
    description="Live streaming (shared/seeds/001 #12 'Twitch'): broadcasters publishing in real time, LL-HLS and "
                "streaming viewers with churn, moderated chat",
    services=_ENTRYPOINTS.services,
    stubs=_ENTRYPOINTS.stubs,
    service_names=_ENTRYPOINTS.service_names,
    rpcs=_ENTRYPOINTS.rpcs,
    journeys={
        j.name: j
        for j in (
            Journey("join", "A new viewer opens a stream at the live edge, watches watch_s and leaves "
                    "(time_to_first_part measured)", JoinParams, join),
            Journey("chat", "A chatter posts to its stream's room (PostMessage); some posts carry a banned word and "
                    "must come back BLOCKED", ChatParams, chat),
            Journey("spam", "The spammer posts over the rate limit: RESOURCE_EXHAUSTED is the expected answer",
                    SpamParams, spam),
        )
    },
    seed_model=SeedParams,
    seed=seed,
    measures=MEASURES,
    connect=connect,
    disconnect=disconnect,
)
