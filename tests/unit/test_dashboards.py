"""The Grafana dashboards (dashboards/): generated JSON is current, references resolve, PromQL names real metrics.

- The committed JSON is exactly what ``dashboards/generate.py`` writes (``make dashboards``).
- Every datasource a dashboard names is provisioned (dashboards/provisioning/grafana/datasources)
  and exemplars link to the Jaeger one. The compose file (deploy/) mounts what Grafana and
  Prometheus read, and its harness is scraped where it listens (and docs/observability.md says so).
- Every PromQL expression parses, and every selector in it selects at least one series that
  really exists (metric name, label names, ``=`` and ``=~`` values, ``le`` bucket bounds): for
  the mesh, URL-shortener, video, social, photo, recommendations, chat, live, ride-sharing, proximity, food-delivery,
  payment-gateway, online-banking, stock-trading, e-commerce, hotel-reservation, web-crawler, search-engine
  and ad-serving dashboards in what the services expose after real calls through every path the panels show (for chat: Connect
  streams on both gateways, one-to-one and group messages, acks, an offline queue paged by a gap fill, a
  replaced session, a session dropped by the router, presence; for live streaming: a broadcast taken over and
  ended, StreamParts viewers, coalesced blocking requests, a DVR catch-up, moderated chat, with every live counter
  moved and every live gauge back where it was; for ride sharing: drivers streaming their positions and holding
  offer feeds, offers accepted, declined, expired, withdrawn and lost, a ride driven through every state under its
  rider's WatchRide (the driver tracked), one released for want of a driver, one cancelled by its rider while being
  matched, quotes and a surge recomputation, with every rides counter moved and every rides gauge back where it
  was; for the proximity service: places created, searched in pages and by category, read and deleted, fences created
  and deleted, a gateway's position batches through the geofence service into the tracker's index (fence events
  entered and left, a cell and a shard crossed, a stale resend), a watcher getting its events, one ended for falling
  behind and one resuming before the oldest event kept, a nearby lookup, a tracker retrying an unreachable geofence
  service until its forward failed, and entities expired, with every proximity counter moved but a failed commit and
  a shutdown, and every proximity gauge back where it was; its panels draw exactly the server-side SLO twins of
  harness/profiles/proximity.slo.yaml; for food delivery: restaurants created, couriers streaming their positions
  (stamped with sent_at) and holding assignment feeds, orders placed and prepared (one kitchen queueing the second
  order for its one slot, a PrepareOrder retry remembered), an order delivered on time under its customer's
  WatchOrder (every state and the courier's positions), one delivered after its promise, two batched on one courier
  (courier time saved), an AssignCourier race dispatch lost (ABORTED), one order cancelled by its customer and one
  released for want of a courier (NO_COURIER), and surge recomputed, with every food counter moved but the failure
  paths and every food gauge back where it was; its panels draw exactly the server-side SLO twins of
  harness/profiles/food.slo.yaml; for the payment gateway: cards of every brand tokenized, sales, holds captured and
  voided, refunds, replays, a key reused and a double click, an issuer's decline, a card-testing bot blocked by the
  fraud rules, a payment reviewed, tokens refused, one acquirer and the fraud service down (server faults): failover,
  the acquirer's breaker opened and closed by a probe, reversals retried and confirmed, a stranded capture finished by
  the sweep, a late authorization refused, and settlement reconciled clean and then with a line the gateway never
  recorded, with every payments counter moved but the failure paths and every payments gauge back where it was; its
  panels draw exactly the server-side SLO twins of harness/profiles/payments.slo.yaml; for online banking: accounts
  opened, a deposit and its replay, transfers completed and replayed, one declined by each fraud rule and one for
  insufficient funds, a key reused, a bad and an unknown request, the ledger's reads and a PostEntry replayed, a double
  tap while the ledger is slow (ABORTED), the ledger down (a server fault): a transfer left PENDING and finished by the
  recovery once it is back, and a balanced reconciliation, with every banking counter moved but the failure paths and
  the PENDING gauge back where it was; its panels draw exactly the server-side SLO twins of
  harness/profiles/banking.slo.yaml; for stock trading: a market data subscriber from its snapshot to the trades, limit
  and market orders of both sides resting and trading, a retry and a client_order_id reused, each risk check refusing,
  invalid orders, cancels and reads, both engine feeds renewed and caught up, with every trading counter moved but the
  failure paths and the books and subscribers back where they were; its panels draw exactly the server-side SLO twins
  of harness/profiles/trading.slo.yaml; for e-commerce: products created, restocked, read and searched with and
  without hits, cart lines set, extended, replaced and refused (out of stock, another currency, no such product),
  checkouts confirmed, replayed, with a key reused, of an empty cart, declined by the card and failed out of stock,
  one whose 2 s hold ran out while a server fault held its payment (a double click ABORTED meanwhile, another buyer
  taking the unit: reservation_expired, the authorisation voided), the gateway down (an order left PENDING and
  confirmed by the recovery), the inventory down for the cart (a release abandoned, one replaced), reservations expired
  by a request and by the sweeper, with every e-commerce counter moved but the failure paths and the carts, units held
  and PENDING orders back where they were; its panels draw exactly the server-side SLO twins of
  harness/profiles/ecommerce.slo.yaml; for hotel reservation, with a pessimistic and an optimistic inventory side by
  side: bookings confirmed, replayed, with a key reused, checked in and cancelled, refused for no availability and a
  declined card, an unknown room type and a bad stay, one whose hold ran out while a server fault held its payment (a
  double click ABORTED meanwhile: the authorisation voided), the gateway down (a booking left PENDING and confirmed by
  the recovery), holds racing for one night's version (ABORTED) and bookings retrying lost races and failing
  contention, with every hotel counter moved but the failure paths and the PENDING bookings and held room-nights back
  where they were; its panels draw exactly the server-side SLO twins of harness/profiles/hotel.slo.yaml; for the web
  crawler: a crawl of the whole synthetic web to DONE under GetCrawl, its pages sent to the indexer, robots.txt read
  and obeyed (disallowed URLs and closed hosts skipped), a flaky host's 503s retried, broken links' 404s, a slow
  host's delayed answers, exact and near copies skipped, the referee's Audit clean; a crawl cancelled; fetches of the
  test's own that the referee counts as robots.txt, politeness and duplicate violations; with every crawler counter
  moved but fetches without an answer and indexing failures, and the frontier, hosts waiting and crawls running back
  at zero; its panels draw exactly the server-side SLO twins of harness/profiles/crawler.slo.yaml; for the search
  engine: pages indexed, one replaced and one refused, a PageRank pass, searches of terms and phrases and a second page,
  a query refused, straggling and failing shards (server faults) until an answer is partial, the query log reaching
  autocomplete's suggestions, with every search counter moved but the failure paths and the query log's pending
  queries back at zero; its panels draw exactly the server-side SLO twins of harness/profiles/search.slo.yaml; for ad
  serving: campaigns created and one paused, decisions served, repeated, frequency-capped, without candidates and
  without budget, clicks first and repeated, a Reserve capped and a reservation released, charges taken, repeated,
  budget-exhausted, paced (in a short day) and paused, with every ads counter moved but the failure paths; its panels
  draw exactly the server-side SLO twins of harness/profiles/ads.slo.yaml; for content moderation: items of the
  held-out split auto-approved, auto-removed and sent to review, awaited, read and their audit logs listed, a bad
  submit refused, removals appealed and one appealed twice, a lease let lapse, first reviews approved and removed,
  appeals reversed and upheld, with every moderation counter moved but a failing classifier and a full backlog, and
  the stages, the queue and the outbox back at zero; its panels draw exactly the server-side SLO twins of
  harness/profiles/moderation.slo.yaml); for
  the harness dashboard in
  what the harness's collector exposes for a RunStats holding every RPC and journey the shipped
  SLOs name (and, for its Prometheus-sourced SLOs, in what the services expose).
- Latency graphs ask for exemplars exactly for the histograms that carry them.
- With a ``prometheus`` binary installed (``apt-get install -y prometheus``), every expression
  of every dashboard is evaluated by a real Prometheus that scraped every mesh above and the
  harness's collector, every shipped PromQL SLO query counts calls,
  and the services' ``trace_id`` exemplars are stored; skipped otherwise.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import difflib
import io
import itertools
import json
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import promql_parser
import pytest
import yaml
from PIL import Image
from prometheus_client import REGISTRY, generate_latest, start_http_server
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from casemesh.harness.mesh import free_port
from casemesh.harness.metrics import HarnessMetrics
from casemesh.harness.profile import PROFILES_DIR, SLO_FILE_SUFFIX
from casemesh.harness.slo import PromQuery, Selector, Slo, load_slos
from casemesh.harness.stats import RunStats
from casemesh.services.catalog import definitions
from casemesh.services.crawler import contract as crawler_contract
from casemesh.services.crawler.frontier import metrics as crawler_metrics
from casemesh.services.crawler.web.generator import WebPlan
from casemesh.services.crawler.web.robots import RobotsVariant
from casemesh.services.crawler.web.settings import WebSettings
from casemesh.services.moderation import corpus as moderation_corpus
from casemesh.services.moderation.pipeline import metrics as moderation_metrics
from casemesh.services.moderation.review import metrics as moderation_review_metrics
from casemesh.services.runtime.faults import FAULTS_ENV
from casemesh.services.runtime.topology import Endpoint, ServerPolicy, Topology
from casemesh.services.chat.contract import dm_conversation_id
from casemesh.services.live.contract import parse_playlist
from casemesh.services.video.playback import hls
from casemesh.ads.v1 import ads_pb2, budget_pb2, budget_pb2_grpc, campaigns_pb2, campaigns_pb2_grpc, frequency_pb2
from casemesh.ads.v1 import frequency_pb2_grpc, server_pb2, server_pb2_grpc
from casemesh.banking.v1 import banking_pb2, ledger_pb2, ledger_pb2_grpc, transfers_pb2, transfers_pb2_grpc
from casemesh.chat.v1 import messages_pb2, messages_pb2_grpc, router_pb2, router_pb2_grpc
from casemesh.collab.v1 import editor_pb2
from casemesh.crawler.v1 import crawler_pb2, crawler_pb2_grpc, web_pb2, web_pb2_grpc
from casemesh.common.v1 import money_pb2
from casemesh.ecommerce.v1 import cart_pb2 as shop_cart_pb2
from casemesh.ecommerce.v1 import cart_pb2_grpc as shop_cart_pb2_grpc
from casemesh.ecommerce.v1 import catalog_pb2 as shop_catalog_pb2
from casemesh.ecommerce.v1 import catalog_pb2_grpc as shop_catalog_pb2_grpc
from casemesh.ecommerce.v1 import ecommerce_pb2
from casemesh.ecommerce.v1 import inventory_pb2 as shop_inventory_pb2
from casemesh.ecommerce.v1 import inventory_pb2_grpc as shop_inventory_pb2_grpc
from casemesh.ecommerce.v1 import orders_pb2 as shop_orders_pb2
from casemesh.ecommerce.v1 import orders_pb2_grpc as shop_orders_pb2_grpc
from casemesh.food.v1 import food_pb2, orders_pb2, orders_pb2_grpc, restaurants_pb2, restaurants_pb2_grpc
from casemesh.hotel.v1 import booking_pb2, booking_pb2_grpc, hotel_pb2
from casemesh.hotel.v1 import inventory_pb2 as hotel_inventory_pb2
from casemesh.hotel.v1 import inventory_pb2_grpc as hotel_inventory_pb2_grpc
from casemesh.live.v1 import chat_pb2 as live_chat_pb2
from casemesh.live.v1 import chat_pb2_grpc as live_chat_pb2_grpc
from casemesh.live.v1 import edge_pb2 as live_edge_pb2
from casemesh.live.v1 import edge_pb2_grpc as live_edge_pb2_grpc
from casemesh.live.v1 import ingest_pb2 as live_ingest_pb2
from casemesh.live.v1 import ingest_pb2_grpc as live_ingest_pb2_grpc
from casemesh.live.v1 import live_pb2
from casemesh.moderation.v1 import classifier_pb2, classifier_pb2_grpc, moderation_pb2, pipeline_pb2
from casemesh.moderation.v1 import pipeline_pb2_grpc, review_pb2, review_pb2_grpc
from casemesh.payments.v1 import acquirer_pb2, acquirer_pb2_grpc, fraud_pb2, fraud_pb2_grpc, gateway_pb2
from casemesh.payments.v1 import gateway_pb2_grpc, payments_pb2, settlement_pb2, settlement_pb2_grpc, vault_pb2
from casemesh.payments.v1 import vault_pb2_grpc
from casemesh.photo.v1 import feed_pb2, feed_pb2_grpc, media_pb2, media_pb2_grpc, photo_pb2
from casemesh.proximity.v1 import geofence_pb2, geofence_pb2_grpc, places_pb2, places_pb2_grpc, tracker_pb2
from casemesh.proximity.v1 import tracker_pb2_grpc
from casemesh.reco.v1 import candidates_pb2, candidates_pb2_grpc, recommendations_pb2, recommendations_pb2_grpc
from casemesh.reco.v1 import signals_pb2, signals_pb2_grpc
from casemesh.rides.v1 import pricing_pb2 as rides_pricing_pb2
from casemesh.rides.v1 import pricing_pb2_grpc as rides_pricing_pb2_grpc
from casemesh.rides.v1 import location_pb2, location_pb2_grpc, rides_pb2, trips_pb2, trips_pb2_grpc
from casemesh.search.v1 import indexer_pb2 as search_indexer_pb2
from casemesh.search.v1 import indexer_pb2_grpc as search_indexer_pb2_grpc
from casemesh.search.v1 import query_pb2 as search_query_pb2
from casemesh.search.v1 import query_pb2_grpc as search_query_pb2_grpc
from casemesh.search.v1 import search_pb2 as search_engine_pb2
from casemesh.search.v1 import shard_pb2 as search_shard_pb2
from casemesh.search.v1 import shard_pb2_grpc as search_shard_pb2_grpc
from casemesh.services.banking.transfers import metrics as banking_transfers_metrics
from casemesh.services.ecommerce import contract as shop_contract
from casemesh.services.ecommerce.cart import metrics as shop_cart_metrics
from casemesh.services.ecommerce.inventory import metrics as shop_inventory_metrics
from casemesh.services.ecommerce.orders import metrics as shop_orders_metrics
from casemesh.services.food.dispatch import metrics as food_dispatch_metrics
from casemesh.services.food.dispatch.regions import new_batch_id
from casemesh.services.food.orders import metrics as food_orders_metrics
from casemesh.services.food.restaurants import metrics as kitchen_metrics
from casemesh.services.hotel import contract as hotel_contract
from casemesh.services.hotel.booking import metrics as hotel_booking_metrics
from casemesh.services.hotel.inventory import metrics as hotel_inventory_metrics
from casemesh.services.payments.contract import TEST_CARDS
from casemesh.services.payments.gateway import metrics as payments_gateway_metrics
from casemesh.services.proximity.geofence import metrics as fence_metrics
from casemesh.services.proximity.tracker import metrics as tracker_metrics
from casemesh.services.rides.dispatch import metrics as dispatch_metrics
from casemesh.services.rides.location import metrics as location_metrics
from casemesh.services.search.query import metrics as search_query_metrics
from casemesh.services.trading.engine import metrics as trading_engine_metrics
from casemesh.services.trading.gateway import metrics as trading_gateway_metrics
from casemesh.services.trading.gateway.settings import DEFAULT_INSTRUMENTS
from casemesh.services.trading.marketdata import metrics as trading_marketdata_metrics
from casemesh.social.v1 import graph_pb2, graph_pb2_grpc, timeline_pb2, timeline_pb2_grpc, tweets_pb2, tweets_pb2_grpc
from casemesh.urlshortener.v1 import urlshortener_pb2 as pb
from casemesh.urlshortener.v1 import urlshortener_pb2_grpc as pb_grpc
from casemesh.trading.v1 import engine_pb2, engine_pb2_grpc, marketdata_pb2, marketdata_pb2_grpc, trading_pb2
from casemesh.trading.v1 import orders_pb2 as trading_orders_pb2
from casemesh.trading.v1 import orders_pb2_grpc as trading_orders_pb2_grpc
from casemesh.video.v1 import catalog_pb2, catalog_pb2_grpc, edge_pb2, edge_pb2_grpc, playback_pb2, playback_pb2_grpc
from casemesh.video.v1 import search_pb2, search_pb2_grpc, storage_pb2, storage_pb2_grpc, upload_pb2, upload_pb2_grpc, video_pb2
from tests.integration.chat import DELIVERED, Device, eventually
from tests.integration.collab import Editor as CollabEditor
from tests.integration.collab import create_document, encode_awareness, get_document
from tests.integration.collab import eventually as collab_eventually
from tests.integration.food import Courier as FoodCourier
from tests.integration.food import Ledger as FoodLedger
from tests.integration.food import food_mesh as serve_food
from tests.integration.food import near as food_near
from tests.integration.food import place_order
from tests.integration.conftest import RunningMesh, loopback_topology, start_mesh
from tests.integration.live import KEYFRAME_EVERY, Broadcaster, StreamingViewer, chunk, create_stream
from tests.integration.payments import ACQUIRER_SERVICE, CVC, EXP_MONTH, EXP_YEAR, FRAUD_SERVICE, PSP_A, PSP_B
from tests.integration.payments import Faults, PaymentsMesh, abort, card_number
from tests.integration.payments import payments_mesh as serve_payments
from tests.integration.live import SERVICES as LIVE_SERVICES
from tests.integration.proximity import near as proximity_near
from tests.integration.proximity import position as proximity_position
from tests.integration.proximity import proximity_mesh as serve_proximity
from tests.integration.rides import Driver as RidesDriver
from tests.integration.rides import Ledger, always, near, online, quote_and_request
from tests.integration.rides import rides_mesh as serve_rides

ROOT = Path(__file__).resolve().parents[2]
async def _drive_social(running) -> None:
    """Real calls through every path the social dashboard shows: follows, a regular user's tweet (pushed) and a
    celebrity's (pulled), likes (sent on to reco-signals), home timelines after the fan-out applied both, and a
    "For you" timeline once a model is trained on the likes."""
    graph = graph_pb2_grpc.SocialGraphServiceStub(running.channel("social-graph"))
    tweets = tweets_pb2_grpc.TweetServiceStub(running.channel("social-tweets"))
    timeline = timeline_pb2_grpc.TimelineServiceStub(running.channel("social-timeline"))
    await graph.FollowMany(graph_pb2.FollowManyRequest(follower_id="reader", followee_ids=["regular", "star"]))
    await graph.FollowMany(graph_pb2.FollowManyRequest(follower_id="fan", followee_ids=["star"]))
    last = 0
    for author in ("regular", "star"):
        posted = await tweets.PostTweet(tweets_pb2.PostTweetRequest(author_id=author, text=f"hello from {author}"))
        await tweets.LikeTweet(tweets_pb2.LikeTweetRequest(tweet_id=posted.tweet.tweet_id, user_id="fan"))
        last = posted.sequence
    deadline = time.monotonic() + 15
    while (await timeline.GetFanoutStatus(timeline_pb2.GetFanoutStatusRequest())).applied_sequence < last:
        assert time.monotonic() < deadline, "the fan-out applied both tweets within 15 s"
        await asyncio.sleep(0.02)
    home = await timeline.GetHomeTimeline(timeline_pb2.GetHomeTimelineRequest(user_id="reader"))
    assert len(home.tweets) >= 2 and home.pulled_authors == 1
    # "For you": the likes reach reco-signals in the background; train on them once they have, then read.
    candidates = candidates_pb2_grpc.CandidateServiceStub(running.channel("reco-candidates"))
    while True:
        try:
            await candidates.TrainModel(candidates_pb2.TrainModelRequest())
            break
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and time.monotonic() < deadline, error
            await asyncio.sleep(0.05)
    await timeline.GetForYouTimeline(timeline_pb2.GetForYouTimelineRequest(user_id="reader"))


@pytest.fixture
async def social_mesh(monkeypatch, tmp_path):
    """The social feed's services in this process (data under ``tmp_path``), every call traced, after real traffic."""
    monkeypatch.setenv("CASEMESH_TRACE_RATIO", "1")
    running, stop, task = await start_mesh(definitions(list(SOCIAL_MESH)),
                                           loopback_topology(SOCIAL_MESH, data_dir=tmp_path / "social", settings=SOCIAL_SETTINGS))
    try:
        await _drive_social(running)
        yield running
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


async def _drive_photo(running) -> None:
    """Real calls through every path the photo dashboard shows: a follow, an upload processed by the queue (every
    size made on upload), the feed, a profile grid, and an edge miss then hit. (First-request renders share the
    series the queue's renders fill: their labels exist from the start.)"""
    graph = graph_pb2_grpc.SocialGraphServiceStub(running.channel("social-graph"))
    media = media_pb2_grpc.PhotoServiceStub(running.channel("photo-media"))
    storage = storage_pb2_grpc.ObjectStoreServiceStub(running.channel("video-storage"))
    edge = edge_pb2_grpc.EdgeServiceStub(running.channel("video-edge"))
    await graph.FollowMany(graph_pb2.FollowManyRequest(follower_id="reader", followee_ids=["author"]))
    image = io.BytesIO()
    Image.new("RGB", (320, 240), (200, 40, 40)).save(image, "JPEG")
    started = await media.InitiatePhotoUpload(media_pb2.InitiatePhotoUploadRequest(
        author_id="author", file_size_bytes=len(image.getvalue())))
    await storage.UploadObject(iter([storage_pb2.UploadObjectRequest(upload_token=started.upload_token,
                                                                     data=image.getvalue())]))
    await media.CompletePhotoUpload(media_pb2.CompletePhotoUploadRequest(photo_id=started.photo_id))
    deadline = time.monotonic() + 15
    while (await media.GetMediaStatus(media_pb2.GetMediaStatusRequest())).photos_processing:
        assert time.monotonic() < deadline, "the processing queue made the sizes within 15 s"
        await asyncio.sleep(0.02)
    page = await feed_pb2_grpc.PhotoFeedServiceStub(running.channel("photo-feed")).GetPhotoFeed(
        feed_pb2.GetPhotoFeedRequest(user_id="reader"))
    assert page.photos[0].photo_id == started.photo_id  # newest first (a second drive adds a second photo)
    got = await media.GetPhoto(media_pb2.GetPhotoRequest(photo_id=started.photo_id, size=photo_pb2.PHOTO_SIZE_MEDIUM))
    request = edge_pb2.StreamSegmentsRequest(video_id=got.ref.object_id, generation=got.ref.generation,
                                             rendition=got.ref.rendition, start_index=0, count=1)
    results = [[c.cache_result async for c in edge.StreamSegments(request)][-1] for _ in range(2)]
    assert results == [edge_pb2.CACHE_RESULT_MISS, edge_pb2.CACHE_RESULT_HIT]
    await media.ListUserPhotos(media_pb2.ListUserPhotosRequest(author_id="author"))


async def _drive_reco(running) -> None:
    """Real calls through every path the recommendations dashboard shows: views and likes recorded, a training,
    recommendations with recent signals."""
    signals = signals_pb2_grpc.SignalServiceStub(running.channel("reco-signals"))
    candidates = candidates_pb2_grpc.CandidateServiceStub(running.channel("reco-candidates"))
    ranker = recommendations_pb2_grpc.RecommendationServiceStub(running.channel("reco-ranker"))
    kinds = (signals_pb2.INTERACTION_KIND_VIEW, signals_pb2.INTERACTION_KIND_LIKE)
    await signals.RecordInteractions(signals_pb2.RecordInteractionsRequest(interactions=[
        signals_pb2.Interaction(user_id=f"u{u}", item_id=f"i{(u + k) % 12}", kind=kinds[k % 2])
        for u in range(12) for k in range(4)]))
    await candidates.TrainModel(candidates_pb2.TrainModelRequest(factors=4, iterations=2))
    await signals.RecordInteractions(signals_pb2.RecordInteractionsRequest(interactions=[
        signals_pb2.Interaction(user_id="u0", item_id="i9", kind=signals_pb2.INTERACTION_KIND_LIKE)]))
    got = await ranker.GetRecommendations(recommendations_pb2.GetRecommendationsRequest(user_id="u0", limit=5))
    assert got.recommendations and got.recent_signals >= 1


@pytest.fixture
async def reco_mesh(monkeypatch, tmp_path):
    """The recommendation services in this process, every call traced, after real traffic."""
    monkeypatch.setenv("CASEMESH_TRACE_RATIO", "1")
    running, stop, task = await start_mesh(definitions(list(RECO_MESH)), loopback_topology(RECO_MESH, data_dir=tmp_path / "reco"))
    try:
        await _drive_reco(running)
        yield running
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


@pytest.fixture
async def photo_mesh(monkeypatch, tmp_path):
    """The photo-sharing services in this process (data under ``tmp_path``), every call traced, after real traffic."""
    monkeypatch.setenv("CASEMESH_TRACE_RATIO", "1")
    running, stop, task = await start_mesh(definitions(list(PHOTO_MESH)),
                                           loopback_topology(PHOTO_MESH, data_dir=tmp_path / "photo", settings=PHOTO_SETTINGS))
    try:
        await _drive_photo(running)
        yield running
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


async def _drive_chat(running) -> None:
    """Real calls through every path the chat dashboard shows, with new users per drive.

    Two devices on different gateways: a one-to-one message (pushed live, acknowledged, its delivered receipt routed
    back) and group messages while the third member is offline (routed as offline); her device connects and gets
    them from the offline queue (SyncInbox hands out one, a gap fill pages the rest); one device connects again
    through the other gateway (its old session replaced); a session chat-router knows but no gateway holds is sent
    a message and dropped (Deliver finds it missing, or its gateway's refresh leaves it out); presence is read;
    every device closes its stream.
    """
    tag = secrets.token_hex(3)
    ann, bob, cat, ghost = (f"{name}-{tag}" for name in ("ann", "bob", "cat", "ghost"))
    messages = messages_pb2_grpc.MessageServiceStub(running.channel("chat-messages"))
    router = router_pb2_grpc.PresenceServiceStub(running.channel("chat-router"))
    presence = router_pb2_grpc.PresenceServiceStub(running.anonymous_channel("chat-router"))  # GetPresence is public

    async def online(user: str) -> bool:
        return (await presence.GetPresence(router_pb2.GetPresenceRequest(user_ids=[user]), timeout=10)).presences[0].online

    group = (await messages.CreateGroup(messages_pb2.CreateGroupRequest(creator_id=ann, member_ids=[bob, cat]),
                                        timeout=10)).conversation_id
    dm = dm_conversation_id(ann, bob)
    ann_phone = Device(running.anonymous_channel("chat-gateway-1"), ann)
    bob_phone = Device(running.anonymous_channel("chat-gateway-2"), bob)
    devices = [ann_phone, bob_phone]
    try:
        for device in devices:
            await device.connect()
        await ann_phone.send(dm, b"hello", "dm-1")
        await eventually(lambda: bob_phone.seqs(dm) == [1], "bob's message")
        await eventually(lambda: any(r.state == DELIVERED and r.user_id == bob for r in ann_phone.receipts),
                         "ann's delivered receipt")
        for i in range(3):
            await ann_phone.send(group, f"group {i}".encode(), f"g-{i}")
        await eventually(lambda: bob_phone.seqs(group) == [1, 2, 3], "bob's group messages")
        cat_laptop = Device(running.anonymous_channel("chat-gateway-2"), cat, "laptop")
        devices.append(cat_laptop)
        assert (await cat_laptop.connect()).pending_messages == 3
        await eventually(lambda: cat_laptop.seqs(group) == [1, 2, 3], "cat's offline queue")
        bob_again = Device(running.anonymous_channel("chat-gateway-1"), bob)
        devices.append(bob_again)
        await bob_again.connect()
        assert await bob_phone.ended() == grpc.StatusCode.ABORTED  # replaced
        await router.RegisterSession(router_pb2.RegisterSessionRequest(
            user_id=ghost, device_id="phone", session_id=f"ghost-{tag}", gateway="chat-gateway-2"), timeout=10)
        await ann_phone.send(dm_conversation_id(ann, ghost), b"anyone there?", "dm-ghost")
        deadline = time.monotonic() + 15
        while await online(ghost):
            assert time.monotonic() < deadline, "chat-router dropped the session no gateway holds within 15 s"
            await asyncio.sleep(0.05)
        assert await online(bob) and await online(cat)
        assert not any(device.violations or device.rejected for device in devices)
    finally:
        for device in devices:
            await device.close()


@pytest.fixture
async def chat_mesh(monkeypatch, tmp_path):
    """The chat services in this process (data under ``tmp_path``), every call traced, after real traffic."""
    monkeypatch.setenv("CASEMESH_TRACE_RATIO", "1")
    running, stop, task = await start_mesh(definitions(list(CHAT_MESH)),
                                           loopback_topology(CHAT_MESH, data_dir=tmp_path / "chat", settings=CHAT_SETTINGS))
    try:
        await _drive_chat(running)
        yield running
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


@pytest.fixture
async def collab_mesh(monkeypatch, tmp_path):
    """The collaborative-documents services in this process (data under ``tmp_path``), every call traced, after real traffic."""
    monkeypatch.setenv("CASEMESH_TRACE_RATIO", "1")
    running, stop, task = await start_mesh(definitions(list(COLLAB_MESH)),
                                           loopback_topology(COLLAB_MESH, data_dir=tmp_path / "collab"))
    try:
        await _drive_collab(running)
        yield running
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


async def _drive_collab(running) -> None:
    """Real calls through every path the collab dashboard and the collab profile's server-side SLO twins
    (harness/profiles/collab.slo.yaml) count: a document created, an editor on each editor server joined (Watch, Sync),
    an edit acknowledged (ApplyUpdate) and relayed to the other editor (the relay delay), an edit made twice (a
    duplicate), a bad update (rejected), a cursor (awareness relayed), both sessions closed, the document read back;
    new IDs per drive."""
    document = f"dash-{secrets.token_hex(3)}"
    await create_document(running.channel("collab-documents"), document, "hello")
    ann = CollabEditor(running.anonymous_channel("collab-editor-1"), document, "ann")
    bob = CollabEditor(running.anonymous_channel("collab-editor-2"), document, "bob")
    try:
        await ann.join()
        await bob.join()
        ann.insert(5, " world")
        await ann.wait_acked()
        await bob.wait_text("hello world")
        update, _ = next(iter(ann.acked.values()))
        await ann.send(editor_pb2.EditRequest(update=editor_pb2.LocalUpdate(client_update_id=ann.next_id, update=update)))
        await ann.send(editor_pb2.EditRequest(update=editor_pb2.LocalUpdate(client_update_id=ann.next_id + 1,
                                                                            update=b"not a yjs update")))
        cursor = encode_awareness(secrets.randbelow(1 << 30) + 1, 1, json.dumps({"cursor": {"anchor": 3}}))
        await ann.send(editor_pb2.EditRequest(awareness=editor_pb2.AwarenessUpdate(update=cursor)))
        await collab_eventually(lambda: cursor in bob.awareness and ann.rejected, "the cursor at bob, the bad update rejected")
        assert not ann.violations and not bob.violations
    finally:
        await ann.close()
        await bob.close()
    await get_document(running.channel("collab-documents"), document, include_state=True)


@pytest.fixture
async def live_mesh(monkeypatch, tmp_path):
    """The live-streaming services and the chat services their rooms use, in this process (data under ``tmp_path``),
    every call traced, after real traffic."""
    monkeypatch.setenv("CASEMESH_TRACE_RATIO", "1")
    running, stop, task = await start_mesh(definitions(list(LIVE_MESH)),
                                           loopback_topology(LIVE_MESH, data_dir=tmp_path / "live", settings=LIVE_SETTINGS))
    try:
        await _drive_live(running)
        yield running
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


async def _live_publish(channel, stream_id: str, key: str, sequences, *, end: bool = False):
    """One Publish connection sending chunks ``sequences`` at once (then ``end`` when asked)."""
    frames = [live_ingest_pb2.PublishRequest(start=live_ingest_pb2.PublishStart(stream_id=stream_id, stream_key=key))]
    frames += [chunk(sequence) for sequence in sequences]
    if end:
        frames.append(live_ingest_pb2.PublishRequest(end=live_ingest_pb2.PublishEnd()))
    return await live_ingest_pb2_grpc.LiveIngestServiceStub(channel).Publish(iter(frames), timeout=30)


async def _drive_live(running) -> None:
    """Real calls through every path the live dashboard and the live profile's server-side SLO twins
    (harness/profiles/live.slo.yaml) count, with new streams and users per drive.

    A stream created (its chat room opened) with a chatter and a fan whose device is on a chat gateway; a broadcaster
    publishing at 3x real time; two StreamParts viewers on the edge sharing its one origin subscription (fan-out 2, the
    edge delay); an LL-HLS player's playlist, then two players blocked on the first part of a coming segment (GetPart,
    the preload hint) and two blocking playlist reloads for it: each pair shares one origin call (coalesced), each call
    blocks at the origin; that part again (a cache hit), the segment before it twice (a miss, then a hit); the
    broadcaster reconnects (the second Publish takes over, the first ends ABORTED; the viewers see no gap), half-closes
    (OK) and ends the stream (end: EndStream), so the viewers end OK; the ended stream's playlist twice (rendered, then
    the origin's cached rendering); a second stream published and ended at once, watched from its first part (the
    viewer catches up by FetchPart and asks DescribeStream whether it is done); a viewer of a stream that does not exist
    (dropped, not_found); chat posts delivered to the fan's device (the room's push delay), one blocked for a banned
    word, one over the rate limit, one from a stranger (refused).
    """
    tag = secrets.token_hex(3)
    caster, fan, chatter = (f"{name}-{tag}" for name in ("caster", "fan", "chatter"))
    ingest_channel = running.anonymous_channel("live-ingest")
    edge_channel = running.anonymous_channel("live-edge")
    edge = live_edge_pb2_grpc.LiveEdgeServiceStub(edge_channel)
    ingest = live_ingest_pb2_grpc.LiveIngestServiceStub(ingest_channel)
    chat = live_chat_pb2_grpc.LiveChatServiceStub(running.anonymous_channel("live-chat"))
    created = await create_stream(ingest_channel, caster, members=[fan, chatter])
    stream_id, key = created.stream.stream_id, created.stream_key
    fan_phone = Device(running.anonymous_channel("chat-gateway-1"), fan)
    first = Broadcaster(ingest_channel, stream_id, key, chunks_per_s=90, reconnect=False)
    # As after a lost connection: it asks GetStream where to resume (and again if the first appended a part since).
    second = Broadcaster(ingest_channel, stream_id, key, chunks_per_s=90)
    second.connections = 1
    viewers = [StreamingViewer(edge_channel, stream_id, resume=False) for _ in range(2)]
    tasks = [asyncio.create_task(first.run())]
    try:
        await fan_phone.connect()
        await eventually(lambda: first.next > KEYFRAME_EVERY + 6, "the first segment published")
        watching = [asyncio.create_task(viewer.run()) for viewer in viewers]
        tasks += watching
        await eventually(lambda: all(viewer.continuity.parts >= 3 for viewer in viewers), "both viewers' first parts")

        playlist = parse_playlist((await edge.GetPlaylist(live_edge_pb2.GetPlaylistRequest(stream_id=stream_id),
                                                          timeout=10)).playlist)
        msn, index = playlist.preload_hint
        # Part 0 of a coming segment, at least 4 parts (about 270 ms at 3x real time) away: both pairs block on it.
        ahead = live_pb2.PartRef(media_sequence=msn + (1 if index < 6 else 2), part_index=0)
        replies = await asyncio.gather(
            *(edge.GetPart(live_edge_pb2.GetPartRequest(stream_id=stream_id, ref=ahead), timeout=10) for _ in range(2)),
            *(edge.GetPlaylist(live_edge_pb2.GetPlaylistRequest(stream_id=stream_id, block=ahead), timeout=10)
              for _ in range(2)))
        assert all(reply.part.ref == ahead for reply in replies[:2])
        assert all((r.last_part.media_sequence, r.last_part.part_index) >= (ahead.media_sequence, 0) for r in replies[2:])
        await edge.GetPart(live_edge_pb2.GetPartRequest(stream_id=stream_id, ref=ahead), timeout=10)
        for _ in range(2):
            segment = await edge.GetSegment(live_edge_pb2.GetSegmentRequest(
                stream_id=stream_id, media_sequence=ahead.media_sequence - 1), timeout=10)
            assert segment.chunk_count == KEYFRAME_EVERY

        tasks.append(asyncio.create_task(second.run()))
        await asyncio.wait_for(tasks[0], 30)
        assert first.ends == [grpc.StatusCode.ABORTED]  # taken over
        await eventually(lambda: len(second.sent_at) >= 12, "the second connection under way")
        second.stop()
        await asyncio.wait_for(tasks[-1], 30)
        assert set(second.ends) <= {grpc.StatusCode.FAILED_PRECONDITION}  # then a half-close: OK, the stream stays live
        resume = (await ingest.GetStream(live_ingest_pb2.GetStreamRequest(stream_id=stream_id), timeout=10)).stream
        ended = await _live_publish(ingest_channel, stream_id, key,
                                    range(resume.next_chunk_sequence, resume.next_chunk_sequence + 6), end=True)
        assert ended.state == live_pb2.STREAM_STATE_ENDED
        await asyncio.wait_for(asyncio.gather(*watching), 30)  # OK after the ended stream's last part
        for viewer in viewers:
            assert not viewer.ends and not viewer.continuity.violations, (viewer.ends, viewer.continuity.violations)
        for _ in range(2):
            final = await edge.GetPlaylist(live_edge_pb2.GetPlaylistRequest(stream_id=stream_id), timeout=10)
            assert final.state == live_pb2.STREAM_STATE_ENDED

        recorded = await create_stream(ingest_channel, caster)
        await _live_publish(ingest_channel, recorded.stream.stream_id, recorded.stream_key, range(KEYFRAME_EVERY + 1),
                            end=True)
        dvr = StreamingViewer(edge_channel, recorded.stream.stream_id, live_pb2.PartRef(media_sequence=0, part_index=0),
                              resume=False)
        await asyncio.wait_for(dvr.run(), 30)
        assert not dvr.ends and sorted(dvr.received_at) == list(range(KEYFRAME_EVERY + 1))
        lost = StreamingViewer(edge_channel, f"no-such-stream-{tag}", resume=False)
        await asyncio.wait_for(lost.run(), 30)
        assert lost.ends == [grpc.StatusCode.NOT_FOUND]

        async def post(user: str, message_id: str, text: str) -> live_chat_pb2.PostMessageResponse:
            return await chat.PostMessage(live_chat_pb2.PostMessageRequest(
                stream_id=stream_id, user_id=user, client_message_id=message_id, text=text), timeout=10)

        delivered = live_chat_pb2.MODERATION_OUTCOME_DELIVERED
        assert (await post(chatter, "m1", f"hello {tag}")).outcome == delivered
        assert (await post(chatter, "m2", "buy scamcoin now")).outcome == live_chat_pb2.MODERATION_OUTCOME_BLOCKED
        for n in (3, 4):
            assert (await post(chatter, f"m{n}", f"message {n}")).outcome == delivered
        for user, message_id, code in ((chatter, "m5", grpc.StatusCode.RESOURCE_EXHAUSTED),  # LIVE_SETTINGS: 3 per 10 s
                                       (f"stranger-{tag}", "s1", grpc.StatusCode.PERMISSION_DENIED)):
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await post(user, message_id, "one more")
            assert error.value.code() == code
        await eventually(lambda: len(fan_phone.messages) >= 3, "the room's messages on the fan's device")
        assert not fan_phone.violations
    finally:
        first.stop()
        second.stop()
        for viewer in viewers:
            viewer.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        await fan_phone.close()


@pytest.fixture
async def rides_mesh(monkeypatch, tmp_path):
    """The ride-sharing services in this process (rides-trips' database under ``tmp_path``), every call traced, after
    real traffic."""
    monkeypatch.setenv("CASEMESH_TRACE_RATIO", "1")
    async with serve_rides(tmp_path / "rides", RIDES_SETTINGS) as running:
        await _drive_rides(running)
        yield running


class _RidesDriver(RidesDriver):
    """tests/integration/rides.py's driver app, each position stamped with ``sent_at_unix_ms`` as a real app's is (the
    location service's update delay: the SLO tracking-delay-location)."""

    async def _positions(self):
        async for frame in super()._positions():
            frame.sent_at_unix_ms = int(time.time() * 1000)
            yield frame


class _LateRidesDriver(_RidesDriver):
    """A driver whose every accept comes late: the trip service gives the offered ride to ``rival`` first (AssignDriver,
    as a second dispatcher would), then the driver accepts, and the trip service answers ABORTED (dispatch: ``lost``).
    ``trips`` is a TripService stub with the tests' identity (AssignDriver is internal)."""

    def __init__(self, *args, trips: trips_pb2_grpc.TripServiceStub, rival: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.internal_trips = trips
        self.rival = rival

    async def _answer(self, offer) -> None:
        await self.internal_trips.AssignDriver(
            trips_pb2.AssignDriverRequest(ride_id=offer.ride_id, driver_id=self.rival), timeout=10)
        await super()._answer(offer)


#: Spots of the city for the rides drives, metres north and east of tests/integration/rides.py's centre: 2 km apart
#: (more than RIDES_SETTINGS' max_radius_m, so no spot's drivers are offered another spot's rides), 6 rows x 7 columns
#: inside the service area (lat 37.70-37.82, lng -122.52 to -122.36), pickups at the spots, dropoffs 1 km north.
RIDES_SPOTS = [(north, east) for north in range(-9_000, 1_001, 2_000) for east in range(-9_000, 3_001, 2_000)]
#: Spots a drive uses (one per scenario), and the drives of this process: each drive takes the next five spots (eight
#: drives before they come round again; a mesh is driven at most twice).
RIDES_SCENARIOS = 5
_RIDES_DRIVES = itertools.count()


def _gauge(metric) -> float:
    """The value of a gauge of this process, summed over its labels."""
    return sum(sample.value for family in metric.collect() for sample in family.samples)


async def _drive_rides(running) -> None:
    """Real calls through every path the rides dashboard and the rides profile's server-side SLO twins
    (harness/profiles/rides.slo.yaml) count, with new drivers, riders and spots of the city per drive.

    Eight drivers come online (positions stamped with sent_at every 0.1 to 0.5 s, an offer feed each) around five spots
    2 km apart, and a rider at each spot quotes and requests a ride (RequestRide OK), all at once:

    - a trip: the nearest driver accepts, the other one there ignores the offer (withdrawn: another driver won); the
      winner drives the ride through MATCHED, EN_ROUTE, IN_PROGRESS and COMPLETED while its rider's WatchRide gets
      every state and the driver's positions (the trip service's TrackDriver);
    - a race: two drivers accept the ride at once; one wins and drives it to the end, the other is ABORTED (its offer
      lost at the trip service, or withdrawn when the win came first);
    - a late accept: the trip service gives the ride to another driver first (AssignDriver, as a second dispatcher
      would); the offered driver's accept is ABORTED there (lost); its rider cancels the matched ride;
    - no driver: one driver declines, the other ignores the offer (expired); nobody else is near, and after max_match_s
      dispatch releases the ride (CANCELLED, NO_DRIVER: no_driver);
    - a cancel while being matched: the only driver there ignores the offer; its rider cancels meanwhile (cancelled).

    Then a surge recomputation after the quotes, and dispatch done matching every ride. Every driver goes OFFLINE and
    closes its streams; the drive returns once dispatch and rides-location have seen the feeds and trackers close.
    """
    tag = secrets.token_hex(3)
    drive = next(_RIDES_DRIVES) % (len(RIDES_SPOTS) // RIDES_SCENARIOS)
    spots = RIDES_SPOTS[drive * RIDES_SCENARIOS:(drive + 1) * RIDES_SCENARIOS]
    ledger = Ledger()
    channels = {name: running.anonymous_channel(name) for name in ("rides-location", "rides-dispatch", "rides-trips",
                                                                   "rides-pricing")}
    trips = trips_pb2_grpc.TripServiceStub(channels["rides-trips"])
    pricing = rides_pricing_pb2_grpc.PricingServiceStub(channels["rides-pricing"])

    def driver(spot: int, name: str, metres_north: float, kind: type[_RidesDriver] = _RidesDriver,
               **kwargs) -> _RidesDriver:
        north, east = spots[spot]
        return kind(running, f"{tag}-{name}", near(north + metres_north, east), ledger, channels=channels, **kwargs)

    trip = [driver(0, "trip", 10, trip_s=0.3, ping_s=0.1), driver(0, "bystander", 20, policy=always("ignore"))]
    race = [driver(1, f"racer-{i}", 10 + 10 * i, trip_s=0.05) for i in range(2)]
    late = driver(2, "late", 10, _LateRidesDriver, trips=trips_pb2_grpc.TripServiceStub(running.channel("rides-trips")),
                  rival=f"{tag}-rival")
    choosy = [driver(3, "decliner", 10, policy=always("decline")), driver(3, "ignorer", 20, policy=always("ignore"))]
    idle = driver(4, "idle", 10, policy=always("ignore"))
    drivers = [*trip, *race, late, *choosy, idle]
    feeds, trackers = _gauge(dispatch_metrics.FEEDS), _gauge(location_metrics.TRACKERS)
    matching = _gauge(dispatch_metrics.RIDES_MATCHING)
    quoted: list[float] = []

    async def request(spot: int, rider: str) -> rides_pb2.Ride:
        north, east = spots[spot]
        ride = await quote_and_request(running, f"{tag}-{rider}", near(north, east), near(north + 1_000, east),
                                       channels=channels)
        quoted.append(time.time())
        assert ride.state == rides_pb2.RIDE_STATE_REQUESTED, ride
        return ride

    async def watch(ride: rides_pb2.Ride) -> list[trips_pb2.WatchRideResponse]:
        """The rider's WatchRide, to its end (OK once the ride is over)."""
        return [update async for update in trips.WatchRide(trips_pb2.WatchRideRequest(
            ride_id=ride.ride_id, rider_id=ride.rider_id), timeout=30)]

    async def cancel(ride: rides_pb2.Ride) -> None:
        cancelled = (await trips.CancelRide(trips_pb2.CancelRideRequest(ride_id=ride.ride_id, rider_id=ride.rider_id),
                                            timeout=10)).ride
        assert (cancelled.state, cancelled.cancel_reason) == (rides_pb2.RIDE_STATE_CANCELLED,
                                                              rides_pb2.CANCEL_REASON_RIDER), cancelled

    async def driven() -> None:
        updates = await watch(await request(0, "rider-trip"))
        states = [u.ride.state for u in updates if u.HasField("ride")]
        every = [rides_pb2.RIDE_STATE_REQUESTED, rides_pb2.RIDE_STATE_MATCHED, rides_pb2.RIDE_STATE_EN_ROUTE,
                 rides_pb2.RIDE_STATE_IN_PROGRESS, rides_pb2.RIDE_STATE_COMPLETED]
        assert states[0] in every and states == every[every.index(states[0]):], states  # every change from the first
        assert {u.driver_position.driver_id for u in updates if u.HasField("driver_position")} == {trip[0].driver_id}

    async def raced() -> None:
        updates = await watch(await request(1, "rider-race"))
        assert updates[-1].ride.state == rides_pb2.RIDE_STATE_COMPLETED, updates[-1]
        await eventually(lambda: sum(sum(d.outcomes.values()) for d in race) == 2, "both racers' answers")
        assert sorted(code for d in race for code in d.outcomes) == ["ABORTED", "OK"], [d.outcomes for d in race]

    async def lost() -> None:
        ride = await request(2, "rider-late")
        await eventually(lambda: late.outcomes, "the late driver's answer")
        assert late.outcomes == {"ABORTED": 1}, late.outcomes
        await cancel(ride)  # matched with the rival

    async def released() -> None:
        final = (await watch(await request(3, "rider-unlucky")))[-1].ride
        assert (final.state, final.cancel_reason) == (rides_pb2.RIDE_STATE_CANCELLED,
                                                      rides_pb2.CANCEL_REASON_NO_DRIVER), final
        assert all(len(d.offers) == 1 for d in choosy), [d.offers for d in choosy]

    async def cancelled() -> None:
        ride = await request(4, "rider-impatient")
        await eventually(lambda: idle.offers, "the offer of the ride being matched")
        await cancel(ride)

    try:
        for d in drivers:
            d.start()
        await online(running, drivers)
        await eventually(lambda: _gauge(dispatch_metrics.FEEDS) >= feeds + len(drivers), "every offer feed at dispatch")
        await asyncio.gather(driven(), raced(), lost(), released(), cancelled())
        last_quote_ms = max(quoted) * 1000
        deadline = time.monotonic() + 15
        surge = rides_pricing_pb2.ListSurgeRequest()
        while (await pricing.ListSurge(surge, timeout=10)).computed_at_unix_ms <= last_quote_ms:
            assert time.monotonic() < deadline, "a surge recomputation after the quotes within 15 s"
            await asyncio.sleep(0.05)
        await eventually(lambda: _gauge(dispatch_metrics.RIDES_MATCHING) <= matching, "dispatch done with every ride")
        assert not ledger.violations, ledger.violations
    finally:
        await asyncio.gather(*(d.stop() for d in drivers))
    await eventually(lambda: _gauge(dispatch_metrics.FEEDS) <= feeds and _gauge(location_metrics.TRACKERS) <= trackers,
                     "the offer feeds and trackers closed")


@pytest.fixture
async def proximity_mesh(monkeypatch, tmp_path):
    """The proximity services in this process (their SQLite files under ``tmp_path``), every call traced, after real
    traffic."""
    monkeypatch.setenv("CASEMESH_TRACE_RATIO", "1")
    async with serve_proximity(tmp_path / "proximity", PROXIMITY_SETTINGS) as running:
        await _drive_proximity(running)
        yield running


def _counted(sample: str, label: str | None = None, value: str = "") -> float:
    """A counter's (or histogram sample's) value in this process, summed over its labels (or those with ``label``)."""
    return summed(sample_values(), sample, label, value)


async def _forward_to_a_dead_geofence(tag: str) -> None:
    """A proximity-tracker whose proximity-geofence address has nothing listening: a batch's forward is retried on
    UNAVAILABLE for its 1 s budget, then fails, and the stream ends UNAVAILABLE (resend). It never sweeps (its entity
    gauge is the process's, the mesh tracker's), and applies nothing."""
    topology = Topology(services={"proximity-tracker": Endpoint(address=f"127.0.0.1:{free_port()}"),
                                  "proximity-geofence": Endpoint(address=f"127.0.0.1:{free_port()}")},
                        data_dir=tempfile.mkdtemp(prefix="casemesh-proximity-"), server=ServerPolicy(grace_s=1),
                        settings={"proximity-tracker": {"geofence_retry_budget_ms": 1_000, "sweep_interval_s": 60}})
    running, stop, task = await start_mesh(definitions(["proximity-tracker"]), topology)
    try:
        call = tracker_pb2_grpc.TrackerServiceStub(running.anonymous_channel("proximity-tracker")).StreamPositions(
            timeout=30)
        await call.write(tracker_pb2.StreamPositionsRequest(batch_id=1, positions=[
            proximity_position(f"{tag}-unheard", 1, proximity_near(0, 0))]))
        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await call.read()
        assert ended.value.code() == grpc.StatusCode.UNAVAILABLE and "send it again" in ended.value.details(), ended.value
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


async def _drive_proximity(running) -> None:
    """Real calls through every path the proximity dashboard and the proximity profile's server-side SLO twins
    (harness/profiles/proximity.slo.yaml) count, with new places, fences and entities per drive.

    - Places: three created (two restaurants and a cafe by Union Square, one durable group commit), a search of every
      category read in two pages (the second by its page token), a search of the restaurants, GetPlace of a hit.
    - Fences: ``a`` (100 m) by Union Square and ``b1``-``b3`` (100 to 200 m) around one point 2 km north, GetFence.
    - Watchers (from now): one of ``a``, which gets its ENTER and EXIT; one of ``b1``-``b3``, ended RESOURCE_EXHAUSTED
      (overflow: PROXIMITY_SETTINGS' watcher_queue of 2, the three ENTERs of one commit); once retention has trimmed
      this drive's events (event_retention 1), one resuming after sequence 1, ended OUT_OF_RANGE (trimmed).
    - A gateway's StreamPositions, its positions stamped with sent_at (the event delay, fence-notify-server): entity 1
      enters ``a`` and entity 2 the three ``b`` fences; then entity 1 leaves ``a`` 1 km north and entity 2 moves 8 km
      west, into another H3 cell and another shard (resolution 5, the default), leaving the ``b`` fences; then entity 1's
      first position again (stale, at the tracker and the geofence service). Every batch is evaluated by the geofence
      service (EvaluatePositions, a group commit) before it is applied and acknowledged; the gateway half-closes.
    - FindNearbyEntities around entity 1, GetPosition of it.
    - A second tracker whose geofence service is unreachable: a batch's forward retried, then failed.

    Then the fences and the places are deleted, the watchers closed, and the drive returns once the tracker has expired
    its entities (PROXIMITY_SETTINGS' expiry_s).
    """
    tag = secrets.token_hex(3)
    places = places_pb2_grpc.PlacesServiceStub(running.anonymous_channel("proximity-places"))
    tracker = tracker_pb2_grpc.TrackerServiceStub(running.anonymous_channel("proximity-tracker"))
    fences = geofence_pb2_grpc.GeofenceServiceStub(running.anonymous_channel("proximity-geofence"))
    entities, watchers = _gauge(tracker_metrics.ENTITIES), _gauge(fence_metrics.WATCHERS)
    trimmed = _counted("casemesh_proximity_geofence_trimmed_events_total")

    def place(name: str, category: int, metres_north: float) -> places_pb2.Place:
        return places_pb2.Place(place_id=f"{tag}-{name}", name=name, category=category,
                                point=proximity_near(metres_north, 0), rating_tenths=42)

    created = [place("diner", places_pb2.PLACE_CATEGORY_RESTAURANT, 10),
               place("bistro", places_pb2.PLACE_CATEGORY_RESTAURANT, 30),
               place("espresso", places_pb2.PLACE_CATEGORY_CAFE, 20)]
    assert (await places.CreatePlaces(places_pb2.CreatePlacesRequest(places=created), timeout=10)).created == 3
    search = places_pb2.SearchPlacesRequest(center=proximity_near(0, 0), radius_m=500, page_size=2)
    first = await places.SearchPlaces(search, timeout=10)
    assert len(first.places) == 2 and first.next_page_token and first.cells_searched >= 1, first
    search.page_token = first.next_page_token
    second = await places.SearchPlaces(search, timeout=10)
    assert {hit.place.place_id for hit in [*first.places, *second.places]} >= {p.place_id for p in created}
    restaurants = await places.SearchPlaces(places_pb2.SearchPlacesRequest(
        center=proximity_near(0, 0), radius_m=500, category=places_pb2.PLACE_CATEGORY_RESTAURANT), timeout=10)
    assert restaurants.places[0].place.place_id == f"{tag}-diner", restaurants
    got = await places.GetPlace(places_pb2.GetPlaceRequest(place_id=restaurants.places[0].place.place_id), timeout=10)
    assert got.place == created[0]

    def fence(name: str, metres_north: float, radius_m: float) -> geofence_pb2.Fence:
        return geofence_pb2.Fence(fence_id=f"{tag}-{name}", name=name, center=proximity_near(metres_north, 0),
                                  radius_m=radius_m)

    union_square = fence("a", 0, 100)
    north = [fence(f"b{i}", 2_000, 50 + 50 * i) for i in (1, 2, 3)]
    for each in (union_square, *north):
        assert (await fences.CreateFence(geofence_pb2.CreateFenceRequest(fence=each), timeout=10)).created
    assert (await fences.GetFence(geofence_pb2.GetFenceRequest(fence_id=union_square.fence_id), timeout=10)).fence \
        == union_square

    live = fences.WatchFenceEvents(geofence_pb2.WatchFenceEventsRequest(fence_ids=[union_square.fence_id],
                                                                        from_now=True), timeout=60)
    overflowing = fences.WatchFenceEvents(geofence_pb2.WatchFenceEventsRequest(
        fence_ids=[f.fence_id for f in north], from_now=True), timeout=60)
    received: list[geofence_pb2.FenceEvent] = []

    async def watch() -> None:
        async for response in live:
            received.append(response.event)

    async def overflow() -> grpc.StatusCode:
        try:
            async for _ in overflowing:
                pass
        except grpc.aio.AioRpcError as error:
            return error.code()
        return grpc.StatusCode.OK

    watching = [asyncio.create_task(watch()), asyncio.create_task(overflow())]
    one, two = f"{tag}-walker", f"{tag}-driver"

    def at(entity_id: str, sequence: int, metres_north: float, metres_east: float = 0):
        sent = proximity_position(entity_id, sequence, proximity_near(metres_north, metres_east))
        sent.sent_at_unix_ms = int(time.time() * 1000)
        return sent

    gateway = tracker.StreamPositions(timeout=60)
    try:
        await eventually(lambda: _gauge(fence_metrics.WATCHERS) >= watchers + 2, "both watchers at the geofence")
        batches = [[at(one, 1, 0), at(two, 1, 2_000)], [at(one, 2, 1_000), at(two, 2, 2_000, -8_000)], [at(one, 1, 0)]]
        acks = []
        for number, positions in enumerate(batches, 1):
            await gateway.write(tracker_pb2.StreamPositionsRequest(batch_id=number, positions=positions))
            acks.append(await gateway.read())
        assert [(a.batch_id, a.applied, a.stale) for a in acks] == [(1, 2, 0), (2, 2, 0), (3, 0, 1)], acks
        await gateway.done_writing()
        assert await gateway.read() == grpc.aio.EOF and await gateway.code() == grpc.StatusCode.OK

        nearby = await tracker.FindNearbyEntities(tracker_pb2.FindNearbyEntitiesRequest(
            center=proximity_near(1_000, 0), radius_m=500, limit=10), timeout=10)
        assert nearby.cells_searched >= 1, nearby
        await tracker.GetPosition(tracker_pb2.GetPositionRequest(entity_id=one), timeout=10)

        assert await asyncio.wait_for(watching[1], 10) == grpc.StatusCode.RESOURCE_EXHAUSTED  # three ENTERs at once
        await eventually(lambda: len(received) >= 2, "the ENTER and EXIT of fence a")
        assert [(e.fence_id, e.position.entity_id, e.position.sequence, e.transition) for e in received] == [
            (union_square.fence_id, one, 1, geofence_pb2.FENCE_TRANSITION_ENTER),
            (union_square.fence_id, one, 2, geofence_pb2.FENCE_TRANSITION_EXIT)], received
        await eventually(lambda: _counted("casemesh_proximity_geofence_trimmed_events_total") > trimmed,
                         "retention trimming this drive's events")
        with pytest.raises(grpc.aio.AioRpcError) as error:
            async for _ in fences.WatchFenceEvents(geofence_pb2.WatchFenceEventsRequest(after_sequence=1), timeout=10):
                pass
        assert error.value.code() == grpc.StatusCode.OUT_OF_RANGE, error.value

        await _forward_to_a_dead_geofence(tag)
    finally:
        gateway.cancel()
        live.cancel()
        overflowing.cancel()
        await asyncio.gather(*watching, return_exceptions=True)
    for each in (union_square, *north):
        await fences.DeleteFence(geofence_pb2.DeleteFenceRequest(fence_id=each.fence_id), timeout=10)
    for each in created:
        await places.DeletePlace(places_pb2.DeletePlaceRequest(place_id=each.place_id), timeout=10)
    await eventually(lambda: _gauge(fence_metrics.WATCHERS) <= watchers and _gauge(tracker_metrics.ENTITIES) <= entities,
                     "the watchers closed and the entities expired", timeout_s=15)


@pytest.fixture
async def food_mesh(monkeypatch, tmp_path):
    """The food-delivery services and the rides-location they reuse in this process (their SQLite files under
    ``tmp_path``), every call traced, after real traffic."""
    monkeypatch.setenv("CASEMESH_TRACE_RATIO", "1")
    async with serve_food(tmp_path / "food", FOOD_SETTINGS) as running:
        await _drive_food(running)
        yield running


#: Longest a batching courier waits for the second order of its batch before picking up the first (s).
FOOD_BATCH_WAIT_S = 10.0


class _FoodCourier(FoodCourier):
    """tests/integration/food.py's courier app, each position stamped with ``sent_at_unix_ms`` as a real app's is (the
    location service's update delay: the SLO courier-tracking-delay-location), and three ways of working the food drive needs:
    ``late`` picks an order up only once its promised time has passed (GetOrder); ``batch_of`` picks up only once it
    holds that many orders (at most FOOD_BATCH_WAIT_S); ``gate`` (an event) opens the assignment feed only once set
    (the courier is online in the location service meanwhile, but dispatch does not give it orders)."""

    def __init__(self, *args, late: bool = False, batch_of: int = 1, gate: asyncio.Event | None = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.late = late
        self.batch_of = batch_of
        self.gate = gate

    async def _positions(self):
        async for frame in super()._positions():
            frame.sent_at_unix_ms = int(time.time() * 1000)
            yield frame

    async def _feed(self) -> None:
        if self.gate is not None:
            waits = [asyncio.create_task(self.gate.wait()), asyncio.create_task(self._stopping.wait())]
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for wait in waits:
                wait.cancel()
        await super()._feed()

    async def _deliver(self, order_id: str) -> None:
        try:
            deadline = time.monotonic() + FOOD_BATCH_WAIT_S
            while len(self._handled) < self.batch_of and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            if self.late:
                stub = orders_pb2_grpc.OrderServiceStub(self._channel_for("food-orders"))
                order = (await stub.GetOrder(orders_pb2.GetOrderRequest(order_id=order_id), timeout=10)).order
                await asyncio.sleep(max(0.0, order.promised_at_unix_ms / 1000 - time.time()) + 0.2)
        except BaseException:
            self.holding.discard(order_id)
            raise
        await super()._deliver(order_id)


#: Spots of the city for the food drives, metres north and east of tests/integration/food.py's centre: 3 km apart
#: (couriers stand within 1 km of their spot's restaurants and dispatch searches 1.5 km around a restaurant
#: (FOOD_SETTINGS), so no spot's couriers are given another spot's orders), 4 rows x 5 columns inside the service area
#: (lat 37.70-37.82, lng -122.52 to -122.36), with room for a door 2 km north of each.
FOOD_SPOTS = [(north, east) for north in range(-9_000, 1, 3_000) for east in range(-9_000, 3_001, 3_000)]
#: Spots a drive uses (one per scenario); each drive takes the next five (four drives before they come round again).
FOOD_SCENARIOS = 5
_FOOD_DRIVES = itertools.count()


def _sampled(metric, sample: str, **labels: str) -> float:
    """The value of sample ``sample`` (e.g. ``x_total``) of a metric of this process, over the series with ``labels``."""
    return sum(s.value for family in metric.collect() for s in family.samples
               if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()))


async def _drive_food(running) -> None:
    """Real calls through every path the food dashboard and the food profile's server-side SLO twins
    (harness/profiles/food.slo.yaml) count, with new restaurants, customers, couriers and spots of the city per drive.

    Six restaurants are created (CreateRestaurants, one group commit; ready in about a second) around five spots 3 km
    apart, and five couriers come online (positions stamped with sent_at, an assignment feed each but one), then, all
    at once:

    - on time: an order with its door 2 km away (the ETA model of FOOD_SETTINGS promises it in about 27 s) goes to
      the courier waiting at the restaurant, who picks it up and delivers it in about 2 s, while its customer's
      WatchOrder gets every state and the courier's positions (the order service's TrackDriver);
    - late: an order with its door at the restaurant (promised in about 1.5 s) whose courier picks it up only once
      the promise has passed (late);
    - a batch: an order goes to the courier 50 m from its restaurant; once it is ASSIGNED a second order from a
      restaurant 50 m away joins that courier's batch (a free courier 1 km away would cost more: courier time saved),
      and the courier delivers both;
    - a race lost: an order whose only courier near has no feed open yet is given to a rival courier (AssignCourier,
      as a second dispatcher would); then the courier opens its feed, dispatch gives it the order, and AssignCourier
      answers ABORTED (dispatch drops it); the rival picks it up and delivers it;
    - no courier: two orders from a kitchen of one slot (the second waits for it) with no courier within reach: one
      is cancelled by its customer, the other watched until dispatch releases it after max_dispatch_s (CANCELLED,
      NO_COURIER).

    Meanwhile GetRestaurant, GetSurge, GetOrder, and PrepareOrder again for a placed order (answered from the
    kitchen's memory: the same ready time). Then a surge recomputation, every courier goes OFFLINE and closes its
    streams, and the drive returns once the order service, dispatch, the kitchens, surge and rides-location are back
    where they were (dispatch forgets its couriers' holdings after FOOD_SETTINGS' holding_ttl_s).
    """
    tag = secrets.token_hex(3)
    drive = next(_FOOD_DRIVES) % (len(FOOD_SPOTS) // FOOD_SCENARIOS)
    spots = FOOD_SPOTS[drive * FOOD_SCENARIOS:(drive + 1) * FOOD_SCENARIOS]
    channels = {name: running.anonymous_channel(name) for name in ("rides-location", "food-restaurants",
                                                                   "food-orders", "food-dispatch")}
    orders = orders_pb2_grpc.OrderServiceStub(channels["food-orders"])
    restaurants = restaurants_pb2_grpc.RestaurantServiceStub(channels["food-restaurants"])
    location = location_pb2_grpc.LocationServiceStub(channels["rides-location"])
    # AssignCourier and PrepareOrder are internal (food-dispatch's, food-orders'): the tests' identity may call them.
    internal_orders = orders_pb2_grpc.OrderServiceStub(running.channel("food-orders"))
    kitchens = restaurants_pb2_grpc.RestaurantServiceStub(running.channel("food-restaurants"))
    gauges = {metric: _gauge(metric) for metric in FOOD_DRIVE_GAUGES}
    recomputations = _sampled(food_orders_metrics.RECOMPUTATIONS, "casemesh_food_orders_surge_recomputations_total")
    aborted = _sampled(food_orders_metrics.ASSIGN, "casemesh_food_orders_assign_total", outcome="aborted")

    def at(spot: int, metres_north: float = 0.0):
        north, east = spots[spot]
        return food_near(north + metres_north, east)

    def restaurant(name: str, spot: int, metres_north: float = 0.0, slots: int = 2) -> restaurants_pb2.Restaurant:
        return restaurants_pb2.Restaurant(restaurant_id=f"{tag}-{name}", name=name, point=at(spot, metres_north),
                                          prep_base_s=1.0, prep_per_item_s=0.1, kitchen_slots=slots)

    created = [restaurant("prompt", 0), restaurant("tardy", 1), restaurant("first", 2), restaurant("second", 2, 50),
               restaurant("raced", 3), restaurant("remote", 4, slots=1)]
    assert (await restaurants.CreateRestaurants(restaurants_pb2.CreateRestaurantsRequest(restaurants=created),
                                                timeout=10)).created == len(created)
    got = await restaurants.GetRestaurant(restaurants_pb2.GetRestaurantRequest(restaurant_id=f"{tag}-prompt"),
                                          timeout=10)
    assert got.restaurant == created[0]

    ledger = FoodLedger()

    def courier(name: str, spot: int, metres_north: float, **kwargs) -> _FoodCourier:
        return _FoodCourier(channels.__getitem__, f"{tag}-{name}", at(spot, metres_north), ledger, **kwargs)

    gate = asyncio.Event()
    prompt = courier("prompt", 0, 20, trip_s=1.0, ping_s=0.1)
    tardy = courier("tardy", 1, 20, late=True)
    batcher = courier("batcher", 2, -50, batch_of=2)
    spare = courier("spare", 2, 1_000)
    raced = courier("raced", 3, 20, gate=gate)
    couriers = [prompt, tardy, batcher, spare, raced]
    feeds = _gauge(food_dispatch_metrics.FEEDS)

    async def online() -> bool:
        for each in couriers:
            try:
                await location.GetDriverPosition(location_pb2.GetDriverPositionRequest(driver_id=each.courier_id),
                                                 timeout=5)
            except grpc.aio.AioRpcError:
                return False
        return _gauge(food_dispatch_metrics.FEEDS) >= feeds + len(couriers) - 1  # all but the gated one

    async def order(customer: str, restaurant_id: str, dropoff) -> food_pb2.Order:
        placed = await place_order(channels["food-orders"], f"{tag}-{customer}", f"{tag}-{restaurant_id}", dropoff)
        assert placed.state == food_pb2.ORDER_STATE_PLACED and placed.promised_at_unix_ms > placed.placed_at_unix_ms
        return placed

    async def watch(placed: food_pb2.Order) -> list[orders_pb2.WatchOrderResponse]:
        """The customer's WatchOrder, to its end (OK once the order is over)."""
        return [update async for update in orders.WatchOrder(orders_pb2.WatchOrderRequest(order_id=placed.order_id),
                                                            timeout=30)]

    async def final(placed: food_pb2.Order) -> food_pb2.Order:
        return (await orders.GetOrder(orders_pb2.GetOrderRequest(order_id=placed.order_id), timeout=10)).order

    async def until_delivered(placed: food_pb2.Order) -> food_pb2.Order:
        deadline = time.monotonic() + 30
        while (now := await final(placed)).state != food_pb2.ORDER_STATE_DELIVERED:
            assert time.monotonic() < deadline, f"order {placed.order_id} delivered within 30 s: {now}"
            await asyncio.sleep(0.05)
        return now

    async def on_time() -> None:
        placed = await order("hungry", "prompt", at(0, 2_000))
        again = await kitchens.PrepareOrder(restaurants_pb2.PrepareOrderRequest(
            restaurant_id=placed.restaurant_id, order_id=placed.order_id, items=placed.items), timeout=10)
        assert again.ready_at_unix_ms == placed.ready_at_unix_ms  # a retry: remembered, not queued twice
        updates = await watch(placed)
        states = [u.order.state for u in updates if u.HasField("order")]
        every = [food_pb2.ORDER_STATE_PLACED, food_pb2.ORDER_STATE_ASSIGNED, food_pb2.ORDER_STATE_PICKED_UP,
                 food_pb2.ORDER_STATE_DELIVERED]
        assert states[0] in every and states == every[every.index(states[0]):], states  # every change from the first
        assert {u.courier_position.driver_id for u in updates if u.HasField("courier_position")} == {prompt.courier_id}
        done = updates[-1].order
        assert done.courier_id == prompt.courier_id and 0 < done.delivered_at_unix_ms <= done.promised_at_unix_ms, done

    async def late() -> None:
        done = await until_delivered(await order("patient", "tardy", at(1, 10)))
        assert done.courier_id == tardy.courier_id and done.delivered_at_unix_ms > done.promised_at_unix_ms, done

    async def batched() -> None:
        first = await order("early", "first", at(2, 350))
        deadline = time.monotonic() + 15
        while (await final(first)).state == food_pb2.ORDER_STATE_PLACED:
            assert time.monotonic() < deadline, "the first order of the batch assigned within 15 s"
            await asyncio.sleep(0.02)
        second = await order("later", "second", at(2, 370))
        done = [await until_delivered(first), await until_delivered(second)]
        assert {o.courier_id for o in done} == {batcher.courier_id} and done[0].batch_id == done[1].batch_id, done

    async def race() -> None:
        placed = await order("raced", "raced", at(3, 500))
        rival = f"{tag}-rival"
        taken = await internal_orders.AssignCourier(orders_pb2.AssignCourierRequest(
            order_ids=[placed.order_id], courier_id=rival, batch_id=new_batch_id()), timeout=10)
        assert taken.orders[0].state == food_pb2.ORDER_STATE_ASSIGNED
        gate.set()  # the courier's feed opens: dispatch now gives it the order, and loses the race
        await eventually(lambda: _sampled(food_orders_metrics.ASSIGN, "casemesh_food_orders_assign_total",
                                          outcome="aborted") > aborted, "dispatch's AssignCourier answered ABORTED")
        for event in (orders_pb2.COURIER_EVENT_PICK_UP, orders_pb2.COURIER_EVENT_DELIVER):
            await orders.UpdateOrder(orders_pb2.UpdateOrderRequest(order_id=placed.order_id, courier_id=rival,
                                                                   event=event), timeout=10)
        assert not raced.batches, raced.batches  # never given to the courier that lost the race

    async def nobody() -> None:
        unlucky, fickle = await order("unlucky", "remote", at(4, 500)), await order("fickle", "remote", at(4, 520))
        cancelled = (await orders.CancelOrder(orders_pb2.CancelOrderRequest(
            order_id=fickle.order_id, customer_id=fickle.customer_id), timeout=10)).order
        assert (cancelled.state, cancelled.cancel_reason) == (food_pb2.ORDER_STATE_CANCELLED,
                                                              food_pb2.CANCEL_REASON_CUSTOMER), cancelled
        released = (await watch(unlucky))[-1].order
        assert (released.state, released.cancel_reason) == (food_pb2.ORDER_STATE_CANCELLED,
                                                            food_pb2.CANCEL_REASON_NO_COURIER), released

    try:
        for each in couriers:
            each.start()
        deadline = time.monotonic() + 30
        while not await online():
            assert time.monotonic() < deadline, "the couriers online and their feeds open within 30 s"
            await asyncio.sleep(0.05)
        await asyncio.gather(on_time(), late(), batched(), race(), nobody())
        surge = await orders.GetSurge(orders_pb2.GetSurgeRequest(point=at(0)), timeout=10)
        assert surge.surge_multiplier >= 1 and surge.region, surge
        await eventually(lambda: _sampled(food_orders_metrics.RECOMPUTATIONS,
                                          "casemesh_food_orders_surge_recomputations_total") > recomputations,
                         "a surge recomputation")
        assert not ledger.violations, ledger.violations
    finally:
        await asyncio.gather(*(each.stop() for each in couriers))

    def moved() -> dict[str, float]:
        return {metric._name: _gauge(metric) - value for metric, value in gauges.items() if _gauge(metric) != value}

    await eventually(lambda: not moved(), lambda: f"the food gauges back where they were: {moved()}", timeout_s=30)


@pytest.fixture
async def payments_mesh(monkeypatch, tmp_path):
    """The payment services in this process (payments-psp-a in a server of its own, so a fault can take it alone;
    their SQLite files and settlement files under ``tmp_path``), every call traced, after real traffic."""
    monkeypatch.setenv("CASEMESH_TRACE_RATIO", "1")
    async with serve_payments(tmp_path / "payments", PAYMENTS_SETTINGS) as mesh:
        await _drive_payments(mesh)
        yield mesh


async def _code(call) -> grpc.StatusCode:
    """The status code a call ends with (OK when it answers)."""
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def _drive_payments(mesh: PaymentsMesh) -> None:
    """Real calls through every path the payments dashboard and the payments profile's server-side SLO twins
    (harness/profiles/payments.slo.yaml) count, with new merchants, customers and cards per drive.

    - Cards of every brand tokenized (TokenizeCard), and one of the contract's test cards.
    - A sale (authorized and captured at payments-psp-a, the cheaper acquirer), its replay with the same key (the same
      payment), the key used for another request (FAILED_PRECONDITION), a double click (the same request twice at
      once: one ABORTED while the other is in flight), a refund of part of it and the refund's replay.
    - A hold captured in part, then refunded in part; a hold voided (released at the acquirer).
    - The test card declined by the issuer; a card-testing bot (one customer, a third card in the window: blocked by
      the fraud rules, no acquirer asked); a sixth payment on one card at ten times its mean (card_velocity and
      amount_spike: reviewed, then approved); a large first payment; a ScorePayment repeated for one payment id.
    - Tokens refused: one never issued (not_found), another merchant's (wrong_merchant), and a malformed one sent to
      DetokenizeCard (invalid).
    - payments-psp-a down (every AcquirerService call there aborted UNAVAILABLE by a server fault) and the fraud
      service down, at once: two sales fail over to payments-psp-b (their attempts at psp-a have an unknown outcome:
      reversed in the background, each Void retried until psp-a answers; the fraud rules fail open), which opens
      psp-a's breaker (PAYMENTS_SETTINGS: two in a row), so a third sale goes straight to psp-b; the capture of a hold
      approved at psp-a before the fault answers UNAVAILABLE. The faults end: the reversals are confirmed (tombstones
      at psp-a), the gateway's sweep finishes the stranded capture, a late authorization of a reversed attempt is
      refused by psp-a, a repeated one answered from its ledger, and sales go on until a probe closes psp-a's breaker.
    - Reconcile: every acquirer's batch closed and its file matched (no discrepancy); then a capture booked at psp-b
      that the gateway never asked for (an Authorize and Capture sent to the acquirer directly) and Reconcile again:
      one unknown_reference.

    The drive returns with the reversals done and both breakers closed (the gauges where they were).
    """
    running = mesh.running
    tag = secrets.token_hex(3)
    merchant, stranger = f"{tag}-shop", f"{tag}-other"
    vault = vault_pb2_grpc.CardVaultServiceStub(running.anonymous_channel("payments-vault"))
    gateway = gateway_pb2_grpc.PaymentGatewayServiceStub(running.anonymous_channel("payments-gateway"))
    settlement = settlement_pb2_grpc.SettlementServiceStub(running.anonymous_channel("payments-gateway"))
    # DetokenizeCard, ScorePayment and AcquirerService are internal (payments-gateway's): the tests' identity may call.
    vault_inside = vault_pb2_grpc.CardVaultServiceStub(running.channel("payments-vault"))
    fraud = fraud_pb2_grpc.FraudServiceStub(running.channel("payments-fraud"))
    acquirers = {name: acquirer_pb2_grpc.AcquirerServiceStub(running.channel(name)) for name in (PSP_A, PSP_B)}
    metrics = payments_gateway_metrics
    gauges = {metric: _gauge(metric) for metric in PAYMENTS_DRIVE_GAUGES}

    def counted(metric, sample: str, **labels: str) -> float:
        return _sampled(metric, sample, **labels)

    async def tokenize(number: str, merchant_id: str = merchant) -> vault_pb2.TokenizeCardResponse:
        return await vault.TokenizeCard(vault_pb2.TokenizeCardRequest(
            merchant_id=merchant_id, card_number=number, exp_month=EXP_MONTH, exp_year=EXP_YEAR, cvc=CVC), timeout=10)

    async def new_card(brand: str = "visa") -> str:
        return (await tokenize(card_number(brand))).card_token

    def authorize_request(key: str, token: str, amount_minor: int, *, capture: bool = False, customer: str = "",
                          merchant_id: str = merchant) -> gateway_pb2.AuthorizeRequest:
        return gateway_pb2.AuthorizeRequest(
            idempotency_key=f"{tag}-{key}", merchant_id=merchant_id, card_token=token,
            amount=money_pb2.Money(currency_code="USD", amount_minor=amount_minor), capture=capture,
            description=key, customer_id=customer)

    async def authorize(key: str, token: str, amount_minor: int, **kwargs) -> payments_pb2.Payment:
        return (await gateway.Authorize(authorize_request(key, token, amount_minor, **kwargs), timeout=10)).payment

    async def capture(key: str, payment_id: str, amount_minor: int = 0) -> payments_pb2.Payment:
        return (await gateway.Capture(gateway_pb2.CaptureRequest(
            idempotency_key=f"{tag}-{key}", merchant_id=merchant, payment_id=payment_id, amount_minor=amount_minor),
            timeout=10)).payment

    def refund_request(key: str, payment_id: str, amount_minor: int) -> gateway_pb2.RefundRequest:
        return gateway_pb2.RefundRequest(idempotency_key=f"{tag}-{key}", merchant_id=merchant, payment_id=payment_id,
                                         amount_minor=amount_minor)

    async def get(payment_id: str) -> payments_pb2.Payment:
        return (await gateway.GetPayment(gateway_pb2.GetPaymentRequest(merchant_id=merchant, payment_id=payment_id),
                                         timeout=10)).payment

    def breaker(acquirer: str) -> float:
        return counted(metrics.BREAKER_OPEN, "casemesh_payments_gateway_breaker_open", acquirer=acquirer)

    captured, authorized = payments_pb2.PAYMENT_STATUS_CAPTURED, payments_pb2.PAYMENT_STATUS_AUTHORIZED

    # Sales, holds, refunds and voids at the cheaper acquirer; replays, a key reused, a double click.
    sale_token, hold_token, void_token = await new_card("visa"), await new_card("mastercard"), await new_card("amex")
    sale = await authorize("sale", sale_token, 4_000, capture=True)
    assert (sale.status, sale.acquirer, sale.captured_minor) == (captured, PSP_A, 4_000), sale
    assert await authorize("sale", sale_token, 4_000, capture=True) == sale  # a retry: the same payment
    assert await _code(gateway.Authorize(authorize_request("sale", sale_token, 5_000), timeout=10)) \
        == grpc.StatusCode.FAILED_PRECONDITION  # the key of another request
    clicks = await new_card("visa")
    for attempt in range(5):  # the second send arrives while the first is in flight (all but certainly)
        request = authorize_request(f"click-{attempt}", clicks, 1_500, capture=True)
        codes = await asyncio.gather(*(_code(gateway.Authorize(request, timeout=10)) for _ in range(2)))
        if grpc.StatusCode.ABORTED in codes:
            break
    assert grpc.StatusCode.ABORTED in codes and grpc.StatusCode.OK in codes, codes
    refunded = await gateway.Refund(refund_request("sale-refund", sale.payment_id, 1_000), timeout=10)
    assert (refunded.payment.refunded_minor, refunded.refund_id.startswith("re_")) == (1_000, True), refunded
    assert await gateway.Refund(refund_request("sale-refund", sale.payment_id, 1_000), timeout=10) == refunded
    hold = await authorize("hold", hold_token, 25_000)
    assert (hold.status, hold.acquirer) == (authorized, PSP_A), hold
    assert (await capture("hold-capture", hold.payment_id, 20_000)).captured_minor == 20_000
    await gateway.Refund(refund_request("hold-refund", hold.payment_id, 5_000), timeout=10)
    held = await authorize("void", void_token, 10_000)
    voided = (await gateway.Void(gateway_pb2.VoidRequest(idempotency_key=f"{tag}-void-void", merchant_id=merchant,
                                                         payment_id=held.payment_id), timeout=10)).payment
    assert voided.status == payments_pb2.PAYMENT_STATUS_VOIDED, voided

    # Declines: the issuer's (a test card) and the fraud rules' (a card-testing bot's third card).
    [(test_card, decline_code)] = list(TEST_CARDS.items())[:1]
    declined = await authorize("declined", (await tokenize(test_card)).card_token, 1_000)
    assert (declined.status, declined.decline_reason, declined.decline_code) == (
        payments_pb2.PAYMENT_STATUS_DECLINED, payments_pb2.DECLINE_REASON_ISSUER, decline_code), declined
    bot = [await authorize(f"bot-{i}", await new_card(), 100 + i, customer=f"{tag}-bot") for i in range(3)]
    assert [p.status for p in bot[:2]] == [authorized, authorized], bot
    assert (bot[2].status, bot[2].decline_reason) == (payments_pb2.PAYMENT_STATUS_DECLINED,
                                                      payments_pb2.DECLINE_REASON_FRAUD), bot[2]
    regular = await new_card("mastercard")
    for i in range(5):
        await authorize(f"regular-{i}", regular, 1_000, customer=f"{tag}-regular")
    spike = await authorize("regular-spike", regular, 10_000, customer=f"{tag}-regular")
    assert spike.status == authorized and spike.fraud_score == 70, spike  # card_velocity + amount_spike: review
    large = await authorize("large", await new_card("amex"), 60_000)
    assert (large.status, large.fraud_score) == (authorized, 30), large  # large_first_payment alone: allowed
    fingerprint = (await tokenize(card_number())).card.fingerprint
    score = fraud_pb2.ScorePaymentRequest(payment_id="pay_" + secrets.token_hex(12), merchant_id=merchant,
                                          card_fingerprint=fingerprint,
                                          amount=money_pb2.Money(currency_code="USD", amount_minor=500))
    assert await fraud.ScorePayment(score, timeout=10) == await fraud.ScorePayment(score, timeout=10)  # a repeat

    # Tokens refused: never issued, another merchant's, malformed.
    assert await _code(gateway.Authorize(authorize_request("unknown", "tok_" + "0" * 24, 1_000), timeout=10)) \
        == grpc.StatusCode.NOT_FOUND
    assert await _code(gateway.Authorize(authorize_request("stranger", sale_token, 1_000, merchant_id=stranger),
                                         timeout=10)) == grpc.StatusCode.NOT_FOUND
    assert await _code(vault_inside.DetokenizeCard(vault_pb2.DetokenizeCardRequest(
        merchant_id=merchant, card_token="tok_bad"), timeout=10)) == grpc.StatusCode.INVALID_ARGUMENT

    # payments-psp-a and the fraud service down: failover, the breaker, reversals, a stranded capture.
    stranded = await authorize("stranded", await new_card("mastercard"), 12_000)
    assert stranded.acquirer == PSP_A, stranded
    retried = counted(metrics.REVERSALS, "casemesh_payments_gateway_reversals_total", acquirer=PSP_A,
                      outcome="retried")
    reversed_ = counted(metrics.REVERSALS, "casemesh_payments_gateway_reversals_total", acquirer=PSP_A,
                        outcome="reversed")
    finished = counted(metrics.RESUMED, "casemesh_payments_gateway_resumed_total", operation="capture",
                       outcome="finished")
    await mesh.faults.set(abort(f"{tag}-psp-a-down", ACQUIRER_SERVICE, PSP_A),
                          abort(f"{tag}-fraud-down", FRAUD_SERVICE, "payments-fraud"))
    try:
        failed_over = [await authorize(f"failover-{i}", await new_card(), 3_000, capture=True) for i in range(2)]
        for payment in failed_over:
            assert (payment.status, payment.acquirer, payment.fraud_score) == (captured, PSP_B, 0), payment
            assert [a.acquirer for a in payment.attempts] == [PSP_A, PSP_B], payment
        await eventually(lambda: breaker(PSP_A) == 1, "payments-psp-a's breaker open")
        skipped = await authorize("skipped", await new_card(), 3_000, capture=True)
        assert [a.acquirer for a in skipped.attempts] == [PSP_B], skipped  # psp-a skipped while its breaker is open
        assert await _code(gateway.Capture(gateway_pb2.CaptureRequest(
            idempotency_key=f"{tag}-stranded-capture", merchant_id=merchant, payment_id=stranded.payment_id),
            timeout=10)) == grpc.StatusCode.UNAVAILABLE
        await eventually(lambda: counted(metrics.REVERSALS, "casemesh_payments_gateway_reversals_total",
                                         acquirer=PSP_A, outcome="retried") > retried, "a reversal retried")
    finally:
        await mesh.faults.clear()
    await eventually(lambda: counted(metrics.REVERSALS, "casemesh_payments_gateway_reversals_total", acquirer=PSP_A,
                                     outcome="reversed") >= reversed_ + 2, "both attempts at psp-a reversed",
                     timeout_s=30)
    await eventually(lambda: counted(metrics.RESUMED, "casemesh_payments_gateway_resumed_total",
                                     operation="capture", outcome="finished") > finished,
                     "the stranded capture finished by the sweep", timeout_s=30)
    assert (await get(stranded.payment_id)).status == captured
    late = (await get(failed_over[0].payment_id)).attempts[0]
    assert late.state == payments_pb2.ATTEMPT_STATE_REVERSED, late
    card = await vault_inside.DetokenizeCard(vault_pb2.DetokenizeCardRequest(
        merchant_id=merchant, card_token=sale_token), timeout=10)

    def direct(reference: str, amount_minor: int = 3_000) -> acquirer_pb2.AcquirerServiceAuthorizeRequest:
        return acquirer_pb2.AcquirerServiceAuthorizeRequest(
            reference=reference, merchant_id=merchant, card_number=card.card_number, exp_month=EXP_MONTH,
            exp_year=EXP_YEAR, amount=money_pb2.Money(currency_code="USD", amount_minor=amount_minor))

    assert await _code(acquirers[PSP_A].Authorize(direct(late.reference), timeout=10)) \
        == grpc.StatusCode.FAILED_PRECONDITION  # the reversed attempt arriving late: refused, nothing held
    first = await acquirers[PSP_A].Authorize(direct(f"{tag}-direct"), timeout=10)
    assert await acquirers[PSP_A].Authorize(direct(f"{tag}-direct"), timeout=10) == first  # a repeat
    await acquirers[PSP_A].Void(acquirer_pb2.AcquirerServiceVoidRequest(reference=f"{tag}-direct"), timeout=10)
    probe, deadline = await new_card(), time.monotonic() + 30
    for n in itertools.count():  # after breaker_cooldown_s a payment is psp-a's probe; its answer closes the breaker
        if breaker(PSP_A) == 0:
            break
        assert time.monotonic() < deadline, "payments-psp-a's breaker closed by a probe within 30 s"
        await authorize(f"probe-{n}", probe, 500)
        await asyncio.sleep(0.1)

    # Settlement: reconciled; then a capture the gateway never asked for, found.
    reconciled = await settlement.Reconcile(settlement_pb2.ReconcileRequest(), timeout=30)
    assert not reconciled.discrepancies and {s.acquirer for s in reconciled.acquirers} == {PSP_A, PSP_B}, reconciled
    assert sum(s.matched for s in reconciled.acquirers) >= 8, reconciled
    rogue = f"{tag}-rogue"
    await acquirers[PSP_B].Authorize(direct(rogue, 777), timeout=10)
    await acquirers[PSP_B].Capture(acquirer_pb2.AcquirerServiceCaptureRequest(reference=rogue), timeout=10)
    found = await settlement.Reconcile(settlement_pb2.ReconcileRequest(), timeout=30)
    assert [(d.kind, d.acquirer, d.reference) for d in found.discrepancies] == [
        ("unknown_reference", PSP_B, rogue)], found

    def moved() -> dict[str, float]:
        return {metric._name: _gauge(metric) - value for metric, value in gauges.items() if _gauge(metric) != value}

    await eventually(lambda: not moved(), lambda: f"the payments gauges back where they were: {moved()}",
                     timeout_s=30)


@dataclass
class FaultedMesh:
    """Services served in this event loop that follow a fault schedule: ``faults`` (tests/integration/payments.py)
    makes their calls slow or fail, as ``casemesh run --fault`` does."""

    running: RunningMesh
    faults: Faults


@pytest.fixture
async def banking_mesh(monkeypatch, tmp_path):
    """The banking services in this process (their SQLite files under ``tmp_path``) following a fault schedule, every
    call traced, after real traffic."""
    monkeypatch.setenv("CASEMESH_TRACE_RATIO", "1")
    schedule = tmp_path / "banking-faults.json"
    with monkeypatch.context() as starting:
        starting.setenv(FAULTS_ENV, str(schedule))  # read once by the server as it starts
        running, stop, task = await start_mesh(definitions(list(BANKING_MESH)), loopback_topology(
            BANKING_MESH, data_dir=tmp_path / "banking", settings=BANKING_SETTINGS))
    try:
        mesh = FaultedMesh(running, Faults(schedule))
        await _drive_banking(mesh)
        yield mesh
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


def _ledger_fault(name: str, **fault) -> dict:
    """A fault schedule entry on banking-ledger's PostEntry (``abort`` a status code, or ``delay`` a distribution)."""
    return {**abort(name, BANKING_LEDGER_SERVICE, "banking-ledger"), "method": "PostEntry", "abort": None, **fault}


async def _drive_banking(mesh: FaultedMesh) -> None:
    """Real calls through every path the banking dashboard and the banking profile's server-side SLO twins
    (harness/profiles/banking.slo.yaml) count, with new accounts per drive (BANKING_SETTINGS: a daily limit of 100.00,
    three transfers a minute, new payees from 50.00; the recovery looks every 0.1 s, at rows of any age).

    - Three accounts opened (two initial deposits), a deposit and its replay.
    - Transfers completed, one replayed, one declined by each fraud rule (new_payee_amount, daily_limit, velocity) and
      one for insufficient funds (the ledger refuses the debit); a key reused for another transfer
      (FAILED_PRECONDITION), a transfer to its own account (INVALID_ARGUMENT), a transfer id nobody made (NOT_FOUND).
    - The ledger's public reads (GetAccount, ListEntries); a PostEntry sent twice (the ledger's replay).
    - A double tap: the ledger's PostEntry held 1 s by a server fault, the second send of a key in flight (ABORTED).
    - The ledger's PostEntry down (UNAVAILABLE): a transfer answered UNAVAILABLE stays PENDING, the recovery finds the
      ledger down, then finishes it once the ledger is back.
    - Reconcile: balanced.
    """
    running = mesh.running
    tag = secrets.token_hex(3)
    bank = transfers_pb2_grpc.TransferServiceStub(running.anonymous_channel("banking-transfers"))
    ledger = ledger_pb2_grpc.LedgerServiceStub(running.anonymous_channel("banking-ledger"))
    # PostEntry is internal (banking-transfers'): the tests' identity may call it.
    ledger_inside = ledger_pb2_grpc.LedgerServiceStub(running.channel("banking-ledger"))
    metrics = banking_transfers_metrics
    gauges = {metric: _gauge(metric) for metric in BANKING_DRIVE_GAUGES}
    alice, bob, carol = (f"{name}-{tag}" for name in ("alice", "bob", "carol"))
    completed = transfers_pb2.TRANSFER_STATUS_COMPLETED

    def usd(amount_minor: int) -> money_pb2.Money:
        return money_pb2.Money(currency_code="USD", amount_minor=amount_minor)

    def transfer_request(key: str, source: str, target: str, amount_minor: int) -> transfers_pb2.TransferRequest:
        return transfers_pb2.TransferRequest(idempotency_key=f"{tag}-{key}", from_account_id=source,
                                             to_account_id=target, amount=usd(amount_minor), memo=key)

    async def transfer(key: str, source: str, target: str, amount_minor: int) -> transfers_pb2.Transfer:
        return (await bank.Transfer(transfer_request(key, source, target, amount_minor), timeout=10)).transfer

    async def declined(key: str, source: str, target: str, amount_minor: int) -> int:
        decided = await transfer(key, source, target, amount_minor)
        assert decided.status == transfers_pb2.TRANSFER_STATUS_DECLINED, decided
        return decided.decline_reason

    def recoveries(outcome: str) -> float:
        return _sampled(metrics.RECOVERIES, "casemesh_banking_transfers_recoveries_total", kind="transfer",
                        outcome=outcome)

    for account, opening_minor in ((alice, 100_000), (bob, 0), (carol, 1_000)):
        await bank.OpenAccount(transfers_pb2.TransferServiceOpenAccountRequest(
            account_id=account, owner=account, initial_deposit=usd(opening_minor)), timeout=10)
    paycheck = transfers_pb2.DepositRequest(idempotency_key=f"{tag}-paycheck", account_id=bob, amount=usd(2_500))
    posted = (await bank.Deposit(paycheck, timeout=10)).entry
    assert (await bank.Deposit(paycheck, timeout=10)).entry == posted  # replayed

    rent = await transfer("rent", alice, bob, 1_000)
    assert rent.status == completed, rent
    assert await transfer("rent", alice, bob, 1_000) == rent  # replayed
    assert await declined("first-to-carol", alice, carol, 6_000) == transfers_pb2.DECLINE_REASON_NEW_PAYEE_AMOUNT
    assert (await transfer("deposit", alice, bob, 5_000)).status == completed  # bob was paid before
    assert await declined("over-the-limit", alice, bob, 5_000) == transfers_pb2.DECLINE_REASON_DAILY_LIMIT
    assert (await transfer("coffee", alice, bob, 100)).status == completed  # the third within the minute
    assert await declined("too-fast", alice, bob, 100) == transfers_pb2.DECLINE_REASON_VELOCITY
    assert await declined("overdraft", carol, bob, 2_000) == transfers_pb2.DECLINE_REASON_INSUFFICIENT_FUNDS
    assert await _code(bank.Transfer(transfer_request("rent", alice, bob, 999), timeout=10)) == (
        grpc.StatusCode.FAILED_PRECONDITION)
    assert await _code(bank.Transfer(transfer_request("to-self", alice, alice, 1), timeout=10)) == (
        grpc.StatusCode.INVALID_ARGUMENT)
    assert await _code(bank.GetTransfer(transfers_pb2.GetTransferRequest(transfer_id="tr_" + "a" * 24),
                                        timeout=10)) == grpc.StatusCode.NOT_FOUND
    assert (await bank.GetTransfer(transfers_pb2.GetTransferRequest(transfer_id=rent.transfer_id),
                                   timeout=10)).transfer == rent

    balance = (await ledger.GetAccount(ledger_pb2.GetAccountRequest(account_id=alice), timeout=10)).account.balance
    assert balance.amount_minor == 100_000 - 1_000 - 5_000 - 100, balance
    assert (await ledger.ListEntries(ledger_pb2.ListEntriesRequest(account_id=alice), timeout=10)).entries
    adjustment = ledger_pb2.PostEntryRequest(entry=banking_pb2.JournalEntry(
        entry_id=f"{tag}-adjustment", memo="fee", postings=[banking_pb2.Posting(account_id=alice, amount=usd(-1)),
                                                            banking_pb2.Posting(account_id=bob, amount=usd(1))]))
    entry = (await ledger_inside.PostEntry(adjustment, timeout=10)).entry
    assert (await ledger_inside.PostEntry(adjustment, timeout=10)).entry == entry  # replayed

    # A double tap while the ledger is slow: the second send of the key in flight is ABORTED.
    await mesh.faults.set(_ledger_fault(f"{tag}-slow-ledger", delay={"distribution": "fixed", "ms": 1_000}))
    pending = _gauge(metrics.PENDING)
    first_tap = asyncio.create_task(transfer("double-tap", bob, alice, 100))
    await eventually(lambda: _gauge(metrics.PENDING) > pending, "the first tap's PENDING row")
    assert await _code(bank.Transfer(transfer_request("double-tap", bob, alice, 100), timeout=10)) == (
        grpc.StatusCode.ABORTED)
    assert (await first_tap).status == completed

    # The ledger down: the transfer stays PENDING until the recovery finishes it.
    unavailable, finished = recoveries("unavailable"), recoveries("completed")
    await mesh.faults.set(_ledger_fault(f"{tag}-ledger-down", abort="UNAVAILABLE"))
    assert await _code(bank.Transfer(transfer_request("ledger-down", bob, alice, 100), timeout=10)) == (
        grpc.StatusCode.UNAVAILABLE)
    await eventually(lambda: recoveries("unavailable") > unavailable, "the recovery finding the ledger down")
    await mesh.faults.clear()
    await eventually(lambda: recoveries("completed") > finished, "the recovery finishing the transfer", timeout_s=30)

    reconciled = await ledger.Reconcile(ledger_pb2.ReconcileRequest(), timeout=30)
    assert reconciled.balanced and not reconciled.discrepancies, reconciled

    def moved() -> dict[str, float]:
        return {metric._name: _gauge(metric) - value for metric, value in gauges.items() if _gauge(metric) != value}

    await eventually(lambda: not moved(), lambda: f"the banking gauges back where they were: {moved()}")


@pytest.fixture
async def trading_mesh(monkeypatch, tmp_path):
    """The trading services in this process (the engine's log under ``tmp_path``), every call traced, after real
    traffic."""
    monkeypatch.setenv("CASEMESH_TRACE_RATIO", "1")
    running, stop, task = await start_mesh(definitions(list(TRADING_MESH)), loopback_topology(
        TRADING_MESH, data_dir=tmp_path / "trading", settings=TRADING_SETTINGS))
    try:
        await _drive_trading(running)
        yield running
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


def _engine_sequence() -> float:
    """The running engine's last durable sequence number, as its collector reports it."""
    return next(family.samples[0].value for family in trading_engine_metrics.ENGINE_STATE.collect()
                if family.name == "casemesh_trading_engine_sequence")


async def _drive_trading(running) -> None:
    """Real calls through every path the trading dashboard and the trading profile's server-side SLO twins
    (harness/profiles/trading.slo.yaml) count, with new accounts per drive, on TRADING_SYMBOL; the books are left as
    they were found (every resting order cancelled), the last trade at its reference price.

    - A market data subscriber (StreamMarketData) follows the symbol from its snapshot to the drive's trades and depth
      changes, and ends its stream.
    - Limit and market orders of both sides: a sell rests, a buy crosses it in part, a market buy takes more of it, a
      resting bid is hit by a market sell; a retry of the resting sell (replayed, once the gateway's drop copy has
      it) and its client_order_id reused for a different order (conflict).
    - The risk checks refuse an order outside the price band, one over the notional limit and an account's third
      resting order (TRADING_SETTINGS: two at most); a symbol not listed and a zero quantity are invalid.
    - GetOrder and CancelOrder through the gateway, ListInstruments, GetTopOfBook, the engine's GetBook.
    - Both engine feeds renewed (feed_renew_s 1 s) and caught up with the engine's log.
    """
    tag = secrets.token_hex(3)
    gateway = trading_orders_pb2_grpc.OrderEntryServiceStub(running.anonymous_channel("trading-gateway"))
    market = marketdata_pb2_grpc.MarketDataServiceStub(running.anonymous_channel("trading-marketdata"))
    engine = engine_pb2_grpc.MatchingEngineServiceStub(running.anonymous_channel("trading-engine"))
    gauges = {metric: _gauge(metric) for metric in TRADING_DRIVE_GAUGES}
    seller, buyer, hoarder = (f"{name}-{tag}" for name in ("seller", "buyer", "hoarder"))
    buy, sell = trading_pb2.SIDE_BUY, trading_pb2.SIDE_SELL
    limit, market_order = trading_pb2.ORDER_TYPE_LIMIT, trading_pb2.ORDER_TYPE_MARKET
    price = TRADING_REFERENCE_MINOR

    def order_request(account: str, key: str, side: int, quantity: int, price_minor: int = 0,
                      symbol: str = TRADING_SYMBOL) -> trading_orders_pb2.PlaceOrderRequest:
        return trading_orders_pb2.PlaceOrderRequest(
            client_order_id=key, account_id=account, symbol=symbol, side=side,
            type=limit if price_minor else market_order, price_minor=price_minor, quantity=quantity)

    async def place(*args, **kwargs) -> trading_orders_pb2.PlaceOrderResponse:
        return await gateway.PlaceOrder(order_request(*args, **kwargs), timeout=10)

    async def refused(*args, **kwargs) -> grpc.StatusCode:
        return await _code(gateway.PlaceOrder(order_request(*args, **kwargs), timeout=10))

    async def cancel(account: str, order_id: str) -> trading_pb2.Order:
        return (await gateway.CancelOrder(trading_orders_pb2.OrderEntryServiceCancelOrderRequest(
            account_id=account, order_id=order_id), timeout=10)).order

    def refusals(check: str) -> float:
        return _sampled(trading_gateway_metrics.RISK_REFUSALS, "casemesh_trading_gateway_risk_refusals_total",
                        check=check)

    renewed = {feed: _sampled(feed.reconnects, feed.reconnects._name + "_total", reason="renewed")
               for feed in (trading_gateway_metrics.FEED, trading_marketdata_metrics.FEED)}
    stream = market.StreamMarketData(marketdata_pb2.StreamMarketDataRequest(symbols=[TRADING_SYMBOL], depth=5),
                                     timeout=30)
    received: list[str] = []

    async def follow() -> None:
        async for message in stream:
            received.append(message.WhichOneof("update"))

    follower = asyncio.create_task(follow())
    try:
        await eventually(lambda: received[:1] == ["snapshot"], "the market data snapshot")
        resting = (await place(seller, "ask", sell, 100, price)).order
        assert resting.status == trading_pb2.ORDER_STATUS_NEW, resting
        crossed = await place(buyer, "cross", buy, 40, price)
        assert [t.quantity for t in crossed.trades] == [40], crossed
        assert [t.quantity for t in (await place(buyer, "take", buy, 10)).trades] == [10]
        bid = (await place(buyer, "bid", buy, 10, price - 50)).order
        assert [t.quantity for t in (await place(seller, "hit", sell, 10)).trades] == [10]
        assert (await gateway.GetOrder(trading_orders_pb2.OrderEntryServiceGetOrderRequest(
            account_id=buyer, order_id=bid.order_id), timeout=10)).order.status == trading_pb2.ORDER_STATUS_FILLED
        # Trades at the reference price last, so the next drive's price band is centred where this one's was.
        assert [t.quantity for t in (await place(buyer, "last", buy, 1, price)).trades] == [1]
        await eventually(lambda: _gauge(trading_gateway_metrics.FEED.sequence) >= resting.accepted_sequence,
                         "the gateway's drop copy of the resting sell")
        again = await place(seller, "ask", sell, 100, price)
        assert again.order.order_id == resting.order_id and not again.trades  # replayed
        assert await refused(seller, "ask", sell, 99, price) == grpc.StatusCode.FAILED_PRECONDITION  # conflict

        before = {check: refusals(check) for check in ("price_band", "max_notional", "max_open_orders")}
        assert await refused(buyer, "far", buy, 1, price * 2) == grpc.StatusCode.FAILED_PRECONDITION
        assert await refused(buyer, "huge", buy, 10_000, price - 500) == grpc.StatusCode.FAILED_PRECONDITION
        hoarded = [(await place(hoarder, f"low-{i}", buy, 1, price - 1_000 - i)).order for i in range(2)]
        assert await refused(hoarder, "low-2", buy, 1, price - 1_002) == grpc.StatusCode.FAILED_PRECONDITION
        assert all(refusals(check) == count + 1 for check, count in before.items()), before
        assert await refused(buyer, "unlisted", buy, 1, price, symbol="NOPE") == grpc.StatusCode.NOT_FOUND
        assert await refused(buyer, "nothing", buy, 0, price) == grpc.StatusCode.INVALID_ARGUMENT

        for account, order in ((seller, resting), *((hoarder, order) for order in hoarded)):
            assert (await cancel(account, order.order_id)).status == trading_pb2.ORDER_STATUS_CANCELLED
        assert (await gateway.ListInstruments(trading_orders_pb2.ListInstrumentsRequest(), timeout=10)).instruments
        book = await engine.GetBook(engine_pb2.GetBookRequest(symbol=TRADING_SYMBOL, include_orders=True), timeout=10)
        assert not any(o.account_id in (seller, buyer, hoarder) for o in (*book.bid_orders, *book.ask_orders)), book
        await eventually(lambda: {"trade", "depth"} <= set(received), "the trades and depth changes on the stream")
        await eventually(lambda: _gauge(trading_marketdata_metrics.FEED.sequence) >= _engine_sequence(),
                         "the market data's books caught up")
        top = await market.GetTopOfBook(marketdata_pb2.GetTopOfBookRequest(symbol=TRADING_SYMBOL), timeout=10)
        assert top.last_trade.price_minor == price, top
    finally:
        stream.cancel()
        with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
            await follower
    await eventually(lambda: all(_sampled(feed.reconnects, feed.reconnects._name + "_total", reason="renewed") > count
                                 for feed, count in renewed.items()), "both engine feeds renewed", timeout_s=30)
    await eventually(lambda: _gauge(trading_gateway_metrics.FEED.sequence) == _engine_sequence()
                     == _gauge(trading_marketdata_metrics.FEED.sequence), "both engine feeds caught up")

    def moved() -> dict[str, float]:
        return {metric._name: _gauge(metric) - value for metric, value in gauges.items() if _gauge(metric) != value}

    await eventually(lambda: not moved(), lambda: f"the trading gauges back where they were: {moved()}")


@pytest.fixture
async def ecommerce_mesh(monkeypatch, tmp_path):
    """The shop's services and the payment gateway's in this process (their SQLite files under ``tmp_path``),
    following a fault schedule, every call traced, after real traffic."""
    monkeypatch.setenv("CASEMESH_TRACE_RATIO", "1")
    schedule = tmp_path / "ecommerce-faults.json"
    with monkeypatch.context() as starting:
        starting.setenv(FAULTS_ENV, str(schedule))  # read once by the server as it starts
        running, stop, task = await start_mesh(definitions(list(ECOMMERCE_MESH)), loopback_topology(
            ECOMMERCE_MESH, data_dir=tmp_path / "ecommerce", settings=ECOMMERCE_SETTINGS))
    try:
        mesh = FaultedMesh(running, Faults(schedule))
        await _drive_ecommerce(mesh)
        yield mesh
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


def _method_fault(name: str, service: str, process: str, method: str | None, **fault) -> dict:
    """A fault schedule entry on ``method`` of ``service`` (every method: ``None``) at topology name ``process``:
    ``abort`` a status code, or ``delay`` a distribution."""
    return {**abort(name, service, process), "method": method, "abort": None, **fault}


async def _failed_precondition(call) -> str:
    """The contract reason of the FAILED_PRECONDITION a call ends with (the call must end with one)."""
    try:
        await call
    except grpc.aio.AioRpcError as error:
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error
        return error.details().partition(":")[0]
    raise AssertionError("the call answered OK")


async def _drive_ecommerce(mesh: FaultedMesh) -> None:
    """Real calls through every path the e-commerce dashboard and the e-commerce profile's server-side SLO twins
    (harness/profiles/ecommerce.slo.yaml) count, with new products and buyers per drive (ECOMMERCE_SETTINGS: the
    checkout holds every line for 2 s and holds it again before committing; the inventory sweeps every 2 s; the orders'
    recovery looks every 0.1 s at PENDING orders of any age held by no call).

    - Products created (one retried) and restocked (one restock retried), read, listed, searched with and without hits.
    - Carts: a line set, set again (extended), set to a new quantity (a new reservation, the old one released); a
      product in another currency (currency_mismatch), one that does not exist (NOT_FOUND), a bad quantity
      (INVALID_ARGUMENT), the last unit held by another buyer (out_of_stock).
    - Checkouts: confirmed (every saga step), replayed, its key reused with another card (FAILED_PRECONDITION), an
      empty cart (FAILED_PRECONDITION); one paid with a card every issuer declines (payment_declined: the reservation
      released); one whose reservation was released meanwhile (out_of_stock).
    - The TTL against a slow payment: the payment gateway's Authorize held 4 s by a server fault, the buyer's double
      click while it waits (ABORTED); the checkout's 2 s hold runs out and a request of the drive expires it, another
      buyer takes the unit, and the checkout fails reservation_expired (the authorisation voided).
    - The payment gateway down (Authorize aborted UNAVAILABLE): a checkout answered UNAVAILABLE stays PENDING, the
      recovery finds the gateway down, then confirms the order once it is back.
    - The inventory down for the cart: SetItem answered UNAVAILABLE, the new reservation's release failing too
      (abandoned); Release down alone: a line set to a new quantity whose old reservation's release fails (replaced),
      released by the drive once it is back.
    - Reservations held directly with a 1 s TTL: one expired by a request (GetStock), one by the sweeper.
    - Every cart emptied; an audit without violations.

    Paths it does not take, left at zero: a partial commit given back by Restock (the restock compensation), a
    recovery that fails or errs, expiries at start, cart_full and refused SetItems.
    """
    running = mesh.running
    tag = secrets.token_hex(3)
    catalog = shop_catalog_pb2_grpc.CatalogServiceStub(running.anonymous_channel("ecommerce-catalog"))
    inventory = shop_inventory_pb2_grpc.InventoryServiceStub(running.anonymous_channel("ecommerce-inventory"))
    # Reserve and Release are internal (the cart's and the orders'): the tests' identity may call them.
    inventory_inside = shop_inventory_pb2_grpc.InventoryServiceStub(running.channel("ecommerce-inventory"))
    cart = shop_cart_pb2_grpc.CartServiceStub(running.anonymous_channel("ecommerce-cart"))
    orders = shop_orders_pb2_grpc.CheckoutServiceStub(running.anonymous_channel("ecommerce-orders"))
    vault = vault_pb2_grpc.CardVaultServiceStub(running.anonymous_channel("payments-vault"))
    gauges = {metric: _gauge(metric) for metric in ECOMMERCE_DRIVE_GAUGES}
    confirmed, failed = ecommerce_pb2.ORDER_STATUS_CONFIRMED, ecommerce_pb2.ORDER_STATUS_FAILED
    mug, last, euro = (f"{name}-{tag}" for name in ("mug", "last", "euro"))

    def counted(metric, sample: str, **labels: str) -> float:
        return _sampled(metric, sample, **labels)

    def product(product_id: str, title: str, currency: str, amount_minor: int) -> ecommerce_pb2.Product:
        return ecommerce_pb2.Product(product_id=product_id, title=title, description=f"{title}, drive {tag}",
                                     category="kitchen", price=money_pb2.Money(currency_code=currency,
                                                                               amount_minor=amount_minor))

    async def set_item(user: str, product_id: str, quantity: int) -> ecommerce_pb2.Cart:
        return (await cart.SetItem(shop_cart_pb2.SetItemRequest(user_id=f"{user}-{tag}", product_id=product_id,
                                                                quantity=quantity), timeout=10)).cart

    async def get_cart(user: str) -> ecommerce_pb2.Cart:
        return (await cart.GetCart(shop_cart_pb2.GetCartRequest(user_id=f"{user}-{tag}"), timeout=10)).cart

    def checkout_request(user: str, key: str, token: str) -> shop_orders_pb2.CheckoutRequest:
        return shop_orders_pb2.CheckoutRequest(idempotency_key=f"{tag}-{key}", user_id=f"{user}-{tag}",
                                               card_token=token)

    async def checkout(user: str, key: str, token: str) -> ecommerce_pb2.Order:
        return (await orders.Checkout(checkout_request(user, key, token), timeout=20)).order

    async def available(product_id: str) -> int:
        return (await inventory.GetStock(shop_inventory_pb2.GetStockRequest(product_id=product_id),
                                         timeout=10)).stock.available

    async def tokenize(number: str) -> str:
        return (await vault.TokenizeCard(vault_pb2.TokenizeCardRequest(
            merchant_id=shop_contract.MERCHANT_ID, card_number=number, exp_month=EXP_MONTH, exp_year=EXP_YEAR,
            cvc=CVC), timeout=10)).card_token

    def expiries(trigger: str) -> float:
        return counted(shop_inventory_metrics.EXPIRIES, "casemesh_ecommerce_inventory_reservation_expiries_total",
                       trigger=trigger)

    def recovered(outcome: str) -> float:
        return counted(shop_orders_metrics.RECOVERED, "casemesh_ecommerce_orders_recovered_total", outcome=outcome)

    def release_failures(kind: str) -> float:
        return counted(shop_cart_metrics.RELEASE_FAILURES, "casemesh_ecommerce_cart_release_failures_total",
                       kind=kind)

    # The catalogue and the stock.
    created = product(mug, "Enamel camping mug", "USD", 1_250)
    for entry in (created, product(last, "Last copper kettle", "USD", 4_000),
                  product(euro, "Espresso cup", "EUR", 900)):
        await catalog.CreateProduct(shop_catalog_pb2.CreateProductRequest(product=entry), timeout=10)
    await catalog.CreateProduct(shop_catalog_pb2.CreateProductRequest(product=created), timeout=10)  # a retry
    for product_id, units in ((mug, 20), (last, 1), (euro, 5)):
        restock = shop_inventory_pb2.RestockRequest(restock_id=f"{tag}-{product_id}", product_id=product_id,
                                                    quantity=units)
        await inventory.Restock(restock, timeout=10)
    await inventory.Restock(restock, timeout=10)  # a retry: added once
    assert (await catalog.GetProduct(shop_catalog_pb2.GetProductRequest(product_id=mug), timeout=10)).product.title
    assert (await catalog.ListProducts(shop_catalog_pb2.ListProductsRequest(category="kitchen"), timeout=10)).products
    found = await catalog.SearchProducts(shop_catalog_pb2.SearchProductsRequest(query="camping mug"), timeout=10)
    assert mug in [hit.product.product_id for hit in found.hits], found
    assert not (await catalog.SearchProducts(shop_catalog_pb2.SearchProductsRequest(query=f"nothing{tag}"),
                                             timeout=10)).hits
    card, declined_card = await tokenize(card_number("visa")), await tokenize(next(iter(TEST_CARDS)))

    # Carts: set, extended, replaced; refusals.
    held = await set_item("alice", mug, 2)
    again = await set_item("alice", mug, 2)  # the same quantity: its own reservation extended
    assert again.lines[0].reservation_id == held.lines[0].reservation_id, again
    assert [line.quantity for line in (await set_item("alice", mug, 3)).lines] == [3]
    assert await _failed_precondition(cart.SetItem(shop_cart_pb2.SetItemRequest(
        user_id=f"alice-{tag}", product_id=euro, quantity=1), timeout=10)) == shop_contract.CURRENCY_MISMATCH
    assert await _code(cart.SetItem(shop_cart_pb2.SetItemRequest(user_id=f"alice-{tag}", product_id=f"none-{tag}",
                                                                 quantity=1), timeout=10)) == grpc.StatusCode.NOT_FOUND
    assert await _code(cart.SetItem(shop_cart_pb2.SetItemRequest(user_id=f"alice-{tag}", product_id=mug,
                                                                 quantity=-1), timeout=10)) \
        == grpc.StatusCode.INVALID_ARGUMENT
    assert len((await get_cart("alice")).lines) == 1

    # Checkouts: confirmed, replayed, a key reused, an empty cart, a declined card, a reservation released meanwhile.
    bought = await checkout("alice", "a", card)
    assert bought.status == confirmed and bought.payment_id, bought
    assert await checkout("alice", "a", card) == bought  # replayed
    assert await _failed_precondition(orders.Checkout(checkout_request("alice", "a", declined_card), timeout=20)) \
        == shop_contract.KEY_REUSED
    assert await _failed_precondition(orders.Checkout(checkout_request("alice", "b", card), timeout=20)) \
        == shop_contract.EMPTY_CART
    assert (await orders.GetOrder(shop_orders_pb2.GetOrderRequest(order_id=bought.order_id), timeout=10)).order \
        == bought
    assert (await orders.ListOrders(shop_orders_pb2.ListOrdersRequest(user_id=f"alice-{tag}"), timeout=10)).orders
    await set_item("bob", mug, 1)
    refused = await checkout("bob", "a", declined_card)
    assert (refused.status, refused.failure_reason) == (failed, ecommerce_pb2.ORDER_FAILURE_PAYMENT_DECLINED), refused
    [line] = (await set_item("carol", mug, 1)).lines
    await inventory_inside.Release(shop_inventory_pb2.ReleaseRequest(reservation_id=line.reservation_id), timeout=10)
    gone = await checkout("carol", "a", card)
    assert (gone.status, gone.failure_reason) == (failed, ecommerce_pb2.ORDER_FAILURE_OUT_OF_STOCK), gone

    # The last unit: out of stock for a second buyer; then the TTL against a slow payment.
    await set_item("dave", last, 1)
    assert await _failed_precondition(cart.SetItem(shop_cart_pb2.SetItemRequest(
        user_id=f"erin-{tag}", product_id=last, quantity=1), timeout=10)) == shop_contract.OUT_OF_STOCK
    await mesh.faults.set(_method_fault(f"{tag}-slow-authorize", GATEWAY_SERVICE, "payments-gateway", "Authorize",
                                        delay={"distribution": "fixed", "ms": 4_000}))
    try:
        pending = _gauge(shop_orders_metrics.PENDING)
        slow = asyncio.create_task(checkout("dave", "a", card))
        await eventually(lambda: _gauge(shop_orders_metrics.PENDING) > pending, "dave's order PENDING")
        assert await _code(orders.Checkout(checkout_request("dave", "a", card), timeout=20)) \
            == grpc.StatusCode.ABORTED  # a double click
        deadline = time.monotonic() + 30
        while await available(last) == 0:  # the checkout's 2 s hold runs out: this request expires it
            assert time.monotonic() < deadline, "the checkout's hold of the last unit never expired"
            await asyncio.sleep(0.05)
        await set_item("erin", last, 1)
        expired = await slow
    finally:
        await mesh.faults.clear()
    assert (expired.status, expired.failure_reason) == (failed, ecommerce_pb2.ORDER_FAILURE_RESERVATION_EXPIRED), \
        expired

    # The payment gateway down: the order stays PENDING until the recovery confirms it.
    await set_item("frank", mug, 1)
    unavailable, finished = recovered("unavailable"), recovered("confirmed")
    await mesh.faults.set(abort(f"{tag}-gateway-down", GATEWAY_SERVICE, "payments-gateway"))
    try:
        assert await _code(orders.Checkout(checkout_request("frank", "a", card), timeout=20)) \
            == grpc.StatusCode.UNAVAILABLE
        await eventually(lambda: recovered("unavailable") > unavailable, "the recovery finding the gateway down")
    finally:
        await mesh.faults.clear()
    await eventually(lambda: recovered("confirmed") > finished, "the recovery confirming the order", timeout_s=30)
    assert (await checkout("frank", "a", card)).status == confirmed  # the buyer's retry: the recovered order

    # The inventory down for the cart: SetItem UNAVAILABLE (abandoned); Release down: a replaced line's release fails.
    abandoned, replaced = release_failures("abandoned"), release_failures("replaced")
    await mesh.faults.set(abort(f"{tag}-inventory-down", SHOP_INVENTORY_SERVICE, "ecommerce-inventory"))
    try:
        assert await _code(cart.SetItem(shop_cart_pb2.SetItemRequest(user_id=f"gina-{tag}", product_id=mug,
                                                                     quantity=1), timeout=10)) \
            == grpc.StatusCode.UNAVAILABLE
        await eventually(lambda: release_failures("abandoned") > abandoned, "the abandoned reservation's release")
    finally:
        await mesh.faults.clear()
    [line] = (await set_item("gina", mug, 1)).lines
    await mesh.faults.set(_method_fault(f"{tag}-release-down", SHOP_INVENTORY_SERVICE, "ecommerce-inventory",
                                        "Release", abort="UNAVAILABLE"))
    try:
        await set_item("gina", mug, 2)
        await eventually(lambda: release_failures("replaced") > replaced, "the replaced reservation's release")
    finally:
        await mesh.faults.clear()
    await inventory_inside.Release(shop_inventory_pb2.ReleaseRequest(reservation_id=line.reservation_id), timeout=10)

    # Reservations of 1 s: one expired by a request, one by the sweeper.
    def reserve(ttl_ms: int) -> shop_inventory_pb2.ReserveRequest:
        return shop_inventory_pb2.ReserveRequest(reservation_id=shop_contract.new_reservation_id(), product_id=mug,
                                                 quantity=1, ttl_ms=ttl_ms)

    by_request = expiries("request")
    for _ in range(10):  # the sweeper (every 2 s) may come first
        await inventory_inside.Reserve(reserve(1_000), timeout=10)
        await asyncio.sleep(1.05)
        await available(mug)
        if expiries("request") > by_request:
            break
    assert expiries("request") > by_request, "no reservation expired by a request"
    by_sweep = expiries("sweep")
    await inventory_inside.Reserve(reserve(1_000), timeout=10)
    await eventually(lambda: expiries("sweep") > by_sweep, "a reservation expired by the sweeper", timeout_s=30)

    # Every cart emptied; the audit finds nothing wrong.
    await set_item("erin", last, 0)
    await set_item("gina", mug, 0)
    for user in ("alice", "bob", "carol", "dave", "erin", "frank", "gina"):
        assert not (await get_cart(user)).lines, user
    audit = await inventory.Audit(shop_inventory_pb2.AuditRequest(), timeout=30)
    assert not audit.violations, audit.violations

    def moved() -> dict[str, float]:
        return {metric._name: _gauge(metric) - value for metric, value in gauges.items() if _gauge(metric) != value}

    await eventually(lambda: not moved(), lambda: f"the e-commerce gauges back where they were: {moved()}")


@dataclass
class HotelMeshes:
    """The hotel services twice: ``main`` (with the payment services, following ``faults``) runs the inventory in the
    pessimistic lock mode; ``optimistic`` a second hotel-inventory and hotel-booking in a server of their own, the
    inventory in the optimistic lock mode, paying through ``main``'s gateway: both sides of the lock-mode A/B in one
    process. (The inventories' gauges are process-global: the lock mode shows the one started last, optimistic; the
    room-night gauges whichever inventory changed last.)"""

    main: FaultedMesh
    optimistic: RunningMesh


@pytest.fixture
async def hotel_mesh(monkeypatch, tmp_path):
    """The hotel services (twice: :class:`HotelMeshes`) and the payment services in this process (their SQLite files
    under ``tmp_path``), every call traced, after real traffic."""
    monkeypatch.setenv("CASEMESH_TRACE_RATIO", "1")
    schedule = tmp_path / "hotel-faults.json"
    started = []
    try:
        with monkeypatch.context() as starting:
            starting.setenv(FAULTS_ENV, str(schedule))  # read once by the server as it starts
            topology = loopback_topology(HOTEL_MESH, data_dir=tmp_path / "hotel", settings=HOTEL_SETTINGS)
            started.append(await start_mesh(definitions(list(HOTEL_MESH)), topology))
        second = Topology(services={**topology.services, **{name: Endpoint(address=f"127.0.0.1:{free_port()}")
                                                            for name in HOTEL_SERVICES}},
                          data_dir=str(tmp_path / "hotel-optimistic"), settings=HOTEL_OPTIMISTIC_SETTINGS)
        started.append(await start_mesh(definitions(list(HOTEL_SERVICES)), second))
        meshes = HotelMeshes(FaultedMesh(started[0][0], Faults(schedule)), started[1][0])
        await _drive_hotel(meshes)
        yield meshes
    finally:
        for running, stop, task in reversed(started):
            await running.close()
            stop.set()
            await asyncio.wait_for(task, 30)


def _hold_id() -> str:
    """A fresh hold ID (hotel contract: ``hold_`` and 24 characters of ``[a-z2-7]``)."""
    return "hold_" + base64.b32encode(secrets.token_bytes(15)).decode("ascii").lower()


async def _drive_hotel(meshes: HotelMeshes) -> None:
    """Real calls through every path the hotel dashboard and the hotel profile's server-side SLO twins
    (harness/profiles/hotel.slo.yaml) count, with a new hotel per drive on each inventory (HOTEL_SETTINGS: the
    recovery looking every 0.1 s at unfinished bookings of any age held by no call; HOTEL_OPTIMISTIC_SETTINGS: holds of
    3 s, one conflict retry per booking).

    - Room types added, availability read.
    - Pessimistic side: a booking confirmed, replayed, its key reused with another card (FAILED_PRECONDITION), read,
      checked in (captured) twice; one confirmed and cancelled twice, a cancellation of a failed booking refused
      (FAILED_PRECONDITION); the only room of a type booked, a second guest refused (no_availability); a card every
      issuer declines (payment_declined: the hold released); an unknown room type (NOT_FOUND), a bad stay
      (INVALID_ARGUMENT).
    - The hold's TTL against a slow payment (optimistic side): the payment gateway's Authorize held 4 s by a server
      fault, the guest's double click while it waits (ABORTED); the 3 s hold expires before its confirmation, the
      booking fails no_availability (the authorisation voided).
    - The payment gateway down (Authorize aborted UNAVAILABLE): a booking answered UNAVAILABLE stays PENDING, the
      recovery finds the gateway down, then confirms it once it is back.
    - Optimistic side: bursts of concurrent HoldRooms of one night until the version check refuses some (ABORTED,
      then released), and bursts of concurrent bookings of one night until one retried a lost race and one failed
      contention.
    - Holds read, both inventories audited without violations.

    Paths it does not take, left at zero: a recovery that finishes a cancellation or a check-in, or is refused.
    """
    running, optimistic = meshes.main.running, meshes.optimistic
    faults = meshes.main.faults
    tag = secrets.token_hex(3)
    hotel = f"grand-{tag}"
    inventory = hotel_inventory_pb2_grpc.RoomInventoryServiceStub(running.anonymous_channel("hotel-inventory"))
    bookings = booking_pb2_grpc.BookingServiceStub(running.anonymous_channel("hotel-booking"))
    vault = vault_pb2_grpc.CardVaultServiceStub(running.anonymous_channel("payments-vault"))
    # HoldRooms and ReleaseHold are internal (hotel-booking's): the tests' identity may call them.
    racing = hotel_inventory_pb2_grpc.RoomInventoryServiceStub(optimistic.channel("hotel-inventory"))
    racing_public = hotel_inventory_pb2_grpc.RoomInventoryServiceStub(optimistic.anonymous_channel("hotel-inventory"))
    racing_bookings = booking_pb2_grpc.BookingServiceStub(optimistic.anonymous_channel("hotel-booking"))
    gauges = {metric: _gauge(metric) for metric in HOTEL_DRIVE_GAUGES}
    confirmed, failed = hotel_pb2.BOOKING_STATUS_CONFIRMED, hotel_pb2.BOOKING_STATUS_FAILED
    night = "2031-06-01"

    def counted(metric, sample: str, **labels: str) -> float:
        return _sampled(metric, sample, **labels)

    def room_type(room_type_id: str, rooms: int) -> hotel_pb2.RoomType:
        return hotel_pb2.RoomType(hotel_id=hotel, room_type_id=room_type_id, name=room_type_id, rooms=rooms,
                                  nightly_rate=money_pb2.Money(currency_code="USD", amount_minor=9_000))

    def booking_request(guest: str, key: str, token: str, room_type_id: str = "double", nights: int = 2,
                        check_in: str = night) -> booking_pb2.CreateBookingRequest:
        return booking_pb2.CreateBookingRequest(idempotency_key=f"{tag}-{key}", guest_id=f"{guest}-{tag}",
                                                hotel_id=hotel, room_type_id=room_type_id, check_in=check_in,
                                                nights=nights, rooms=1, card_token=token)

    async def book(*args, service=bookings, **kwargs) -> hotel_pb2.Booking:
        return (await service.CreateBooking(booking_request(*args, **kwargs), timeout=20)).booking

    async def tokenize(number: str) -> str:
        return (await vault.TokenizeCard(vault_pb2.TokenizeCardRequest(
            merchant_id=hotel_contract.MERCHANT_ID, card_number=number, exp_month=EXP_MONTH, exp_year=EXP_YEAR,
            cvc=CVC), timeout=10)).card_token

    def recovered(outcome: str) -> float:
        return counted(hotel_booking_metrics.RECOVERED, "casemesh_hotel_booking_recovered_total", outcome=outcome)

    for stub, entry in ((inventory, room_type("double", 5)), (inventory, room_type("single", 1)),
                        (racing_public, room_type("suite", 500))):
        await stub.AddRoomType(hotel_inventory_pb2.AddRoomTypeRequest(room_type=entry), timeout=10)
    nights = (await inventory.GetAvailability(hotel_inventory_pb2.GetAvailabilityRequest(
        hotel_id=hotel, room_type_id="double", check_in=night, nights=2), timeout=10)).nights
    assert [n.available for n in nights] == [5, 5], nights
    card, declined_card = await tokenize(card_number("visa")), await tokenize(next(iter(TEST_CARDS)))

    # Confirmed, replayed, a key reused, read, checked in; confirmed and cancelled; refusals.
    stay = await book("ann", "a", card)
    assert stay.status == confirmed and stay.payment_id, stay
    assert await book("ann", "a", card) == stay  # replayed
    assert await _code(bookings.CreateBooking(booking_request("ann", "a", declined_card), timeout=20)) \
        == grpc.StatusCode.FAILED_PRECONDITION
    assert (await bookings.GetBooking(booking_pb2.GetBookingRequest(booking_id=stay.booking_id),
                                      timeout=10)).booking == stay
    for _ in range(2):
        checked_in = (await bookings.CheckIn(booking_pb2.CheckInRequest(booking_id=stay.booking_id),
                                             timeout=20)).booking
        assert checked_in.status == hotel_pb2.BOOKING_STATUS_CHECKED_IN, checked_in
    trip = await book("ben", "a", card)
    for _ in range(2):
        cancelled = (await bookings.CancelBooking(booking_pb2.CancelBookingRequest(booking_id=trip.booking_id),
                                                  timeout=20)).booking
        assert cancelled.status == hotel_pb2.BOOKING_STATUS_CANCELLED, cancelled
    assert (await book("cat", "a", card, "single", 1)).status == confirmed
    full = await book("dan", "a", card, "single", 1)
    assert (full.status, full.failure_reason) == (failed, hotel_pb2.BOOKING_FAILURE_NO_AVAILABILITY), full
    assert await _code(bookings.CancelBooking(booking_pb2.CancelBookingRequest(booking_id=full.booking_id),
                                              timeout=20)) == grpc.StatusCode.FAILED_PRECONDITION
    refused = await book("eve", "a", declined_card)
    assert (refused.status, refused.failure_reason) == (failed, hotel_pb2.BOOKING_FAILURE_PAYMENT_DECLINED), refused
    assert await _code(bookings.CreateBooking(booking_request("eve", "b", card, "penthouse"), timeout=20)) \
        == grpc.StatusCode.NOT_FOUND
    assert await _code(bookings.CreateBooking(booking_request("eve", "c", card, nights=0), timeout=20)) \
        == grpc.StatusCode.INVALID_ARGUMENT

    # A slow payment (on the optimistic side, whose holds last 3 s): a double click, and the hold expiring before its
    # confirmation.
    await faults.set(_method_fault(f"{tag}-slow-authorize", GATEWAY_SERVICE, "payments-gateway", "Authorize",
                                   delay={"distribution": "fixed", "ms": 4_000}))
    try:
        pending = _gauge(hotel_booking_metrics.PENDING)
        slow = asyncio.create_task(book("fay", "a", card, "suite", 1, service=racing_bookings))
        await eventually(lambda: _gauge(hotel_booking_metrics.PENDING) > pending, "fay's booking PENDING")
        assert await _code(racing_bookings.CreateBooking(booking_request("fay", "a", card, "suite", 1),
                                                         timeout=20)) == grpc.StatusCode.ABORTED  # a double click
        expired = await slow
    finally:
        await faults.clear()
    assert (expired.status, expired.failure_reason) == (failed, hotel_pb2.BOOKING_FAILURE_NO_AVAILABILITY), expired

    # The payment gateway down: the booking stays PENDING until the recovery confirms it.
    unavailable, finished = recovered("unavailable"), recovered("confirmed")
    await faults.set(abort(f"{tag}-gateway-down", GATEWAY_SERVICE, "payments-gateway"))
    try:
        assert await _code(bookings.CreateBooking(booking_request("gus", "a", card), timeout=20)) \
            == grpc.StatusCode.UNAVAILABLE
        await eventually(lambda: recovered("unavailable") > unavailable, "the recovery finding the gateway down")
    finally:
        await faults.clear()
    await eventually(lambda: recovered("confirmed") > finished, "the recovery confirming the booking", timeout_s=30)
    assert (await book("gus", "a", card)).status == confirmed  # the guest's retry: the recovered booking

    # The optimistic side: holds racing for one night's version, bookings retrying and giving up.
    conflicts = counted(hotel_inventory_metrics.VERSION_CONFLICTS, "casemesh_hotel_inventory_version_conflicts_total")
    for _ in range(20):
        holds = [hotel_inventory_pb2.HoldRoomsRequest(hold_id=_hold_id(), hotel_id=hotel, room_type_id="suite",
                                                      check_in=night, nights=1, rooms=1) for _ in range(8)]
        answers = await asyncio.gather(*(racing.HoldRooms(hold, timeout=10) for hold in holds),
                                       return_exceptions=True)
        for answer in answers:
            if isinstance(answer, grpc.aio.AioRpcError):
                assert answer.code() == grpc.StatusCode.ABORTED, answer
            else:
                released = (await racing.ReleaseHold(hotel_inventory_pb2.ReleaseHoldRequest(
                    hold_id=answer.hold.hold_id), timeout=10)).hold
        if counted(hotel_inventory_metrics.VERSION_CONFLICTS,
                   "casemesh_hotel_inventory_version_conflicts_total") > conflicts:
            break
    assert counted(hotel_inventory_metrics.VERSION_CONFLICTS,
                   "casemesh_hotel_inventory_version_conflicts_total") > conflicts, "no version conflict in 20 bursts"
    assert (await racing.GetHold(hotel_inventory_pb2.GetHoldRequest(hold_id=released.hold_id),
                                 timeout=10)).hold == released

    def retries() -> float:
        return counted(hotel_booking_metrics.CONFLICT_RETRIES, "casemesh_hotel_booking_conflict_retries_sum")

    def contention() -> float:
        return counted(hotel_booking_metrics.BOOKINGS, "casemesh_hotel_booking_bookings_total", outcome="failed",
                       reason="contention")

    retried, gave_up = retries(), contention()
    for burst in range(20):
        await asyncio.gather(*(book(f"guest{i}", f"burst-{burst}", card, "suite", 1, service=racing_bookings)
                               for i in range(8)))
        if retries() > retried and contention() > gave_up:
            break
    assert retries() > retried and contention() > gave_up, "no booking retried a version race and gave up in 20 bursts"

    for stub in (inventory, racing_public):
        audit = await stub.Audit(hotel_inventory_pb2.AuditRequest(), timeout=30)
        assert not audit.violations and not audit.overbooked_room_nights, audit

    def moved() -> dict[str, float]:
        return {metric._name: _gauge(metric) - value for metric, value in gauges.items() if _gauge(metric) != value}

    await eventually(lambda: not moved(), lambda: f"the hotel gauges back where they were: {moved()}")


@pytest.fixture
async def search_mesh(monkeypatch, tmp_path):
    """The search engine's four services in this process (the document store under ``tmp_path``), following a fault
    schedule, every call traced, after real traffic."""
    monkeypatch.setenv("CASEMESH_TRACE_RATIO", "1")
    schedule = tmp_path / "search-faults.json"
    with monkeypatch.context() as starting:
        starting.setenv(FAULTS_ENV, str(schedule))  # read once by the server as it starts
        running, stop, task = await start_mesh(definitions(list(SEARCH_MESH)), loopback_topology(
            SEARCH_MESH, data_dir=tmp_path / "search", settings=SEARCH_SETTINGS))
    try:
        mesh = FaultedMesh(running, Faults(schedule))
        await _drive_search(mesh)
        yield mesh
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


async def _drive_search(mesh: FaultedMesh) -> None:
    """Real calls through every path the search dashboard and the search profile's server-side SLO twins
    (harness/profiles/search.slo.yaml) count, with new pages and queries per drive (a word of their own).

    - The shards' rebuild at start waited for (GetShardInfo); 24 pages linking to each other indexed (new URLs), one
      indexed again (replaced), one refused (INVALID_ARGUMENT); a PageRank pass (ComputePageRank), its ranks pushed to
      the shards; the store's stats and a page read.
    - Searches: two terms, two phrases, a term only the replaced page holds, a second page; a query with too many terms
      (INVALID_ARGUMENT).
    - Straggling and failing shards (server faults on search-shards): a quarter of SearchShard calls held past the
      500 ms per-shard deadline, a tenth of GetTermStatistics calls aborted INTERNAL, until a Search answered partial
      and both a deadline and an error were counted (Search answered UNAVAILABLE while every shard failed or the
      circuit breaker to search-shards was open: retried).
    - The first pages' queries reach search-autocomplete through the query log; Suggest answers them once the prefix
      index is rebuilt.

    Paths it does not take, left at zero: a rebuild after the start (or one that failed), a page its shard refused, a
    rank push or a query log send that failed, queries dropped.
    """
    running, faults = mesh.running, mesh.faults
    indexer = search_indexer_pb2_grpc.IndexerServiceStub(running.anonymous_channel("search-indexer"))
    shards = search_shard_pb2_grpc.IndexShardServiceStub(running.anonymous_channel("search-shards"))
    search = search_query_pb2_grpc.SearchServiceStub(running.anonymous_channel("search-query"))
    suggest = search_query_pb2_grpc.AutocompleteServiceStub(running.anonymous_channel("search-autocomplete"))
    gauges = {metric: _gauge(metric) for metric in SEARCH_DRIVE_GAUGES}
    word = "zq" + "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(8))
    pages = 24

    def counted(sample: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(sample, labels) or 0.0

    async def rebuilt() -> bool:
        info = await shards.GetShardInfo(search_shard_pb2.GetShardInfoRequest(), timeout=10)
        return not any(shard.rebuilding for shard in info.shards)

    async def searched(text: str, **kwargs) -> search_query_pb2.SearchResponse:
        """A Search, retried while it answers UNAVAILABLE (the breaker to search-shards open after a fault)."""
        for _ in range(100):
            try:
                return await search.Search(search_query_pb2.SearchRequest(query=text, **kwargs), timeout=10)
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.UNAVAILABLE, error
                await asyncio.sleep(0.1)
        raise AssertionError(f"no answer to {text!r} in 100 tries")

    def page(n: int, version: int = 1) -> search_engine_pb2.WebPage:
        links = [f"http://{word}.web.test/page/{(n + step) % pages}" for step in (1, 2, 5)]
        return search_engine_pb2.WebPage(
            url=f"http://{word}.web.test/page/{n}", title=f"{word} page {n} v{version}",
            body=f"the {word} search engine indexes page {n} " + " ".join(["distributed systems"] * (1 + n % 3)),
            outlinks=links)

    for _ in range(100):
        if await rebuilt():
            break
        await asyncio.sleep(0.05)
    assert await rebuilt(), "the shards still rebuilding after 5 s"

    # Indexing and PageRank.
    answers = await asyncio.gather(*(indexer.IndexPage(search_indexer_pb2.IndexPageRequest(page=page(n)), timeout=10)
                                     for n in range(pages)))
    assert all(answer.created for answer in answers), answers
    again = await indexer.IndexPage(search_indexer_pb2.IndexPageRequest(page=page(0, version=2)), timeout=10)
    assert not again.created
    assert await _code(indexer.IndexPage(search_indexer_pb2.IndexPageRequest(
        page=search_engine_pb2.WebPage(url="not a url", title="x")), timeout=10)) == grpc.StatusCode.INVALID_ARGUMENT
    rank_pass = (await indexer.ComputePageRank(search_indexer_pb2.ComputePageRankRequest(), timeout=30)).rank_pass
    assert rank_pass.rank_version >= 1 and rank_pass.iterations >= 1, rank_pass
    stats = await indexer.GetIndexStats(search_indexer_pb2.GetIndexStatsRequest(), timeout=10)
    assert stats.page_count >= pages and stats.shard_count == SEARCH_SETTINGS["search-shards"]["shards"], stats
    read = await indexer.GetPage(search_indexer_pb2.GetPageRequest(url=page(0).url), timeout=10)
    assert read.page.title == page(0, version=2).title and read.pagerank > 0, read

    # Searches: terms, phrases, a term one page holds, a second page; a query refused.
    first = await searched(f"{word} engine", page_size=10)
    assert (first.total_matches, len(first.hits), first.partial) == (pages, 10, False), first
    second = await searched(f"{word} engine", page_size=10, page_token=first.next_page_token)
    assert len(second.hits) == 10 and not {h.url for h in first.hits} & {h.url for h in second.hits}
    phrase = await searched(f'"{word} search engine" "distributed systems"')
    assert phrase.total_matches == pages, phrase
    replaced = await searched(f"{word} v2")  # only the page indexed again holds v2
    assert [h.url for h in replaced.hits] == [page(0).url], replaced
    assert await _code(search.Search(search_query_pb2.SearchRequest(
        query=" ".join(f"w{i}" for i in range(17))), timeout=10)) == grpc.StatusCode.INVALID_ARGUMENT

    # Straggling and failing shards: partial answers.
    partial, deadline = counted("casemesh_search_query_partial_results_total"), counted(
        "casemesh_search_query_shard_calls_total", phase="search", outcome="deadline")
    error = counted("casemesh_search_query_shard_calls_total", phase="statistics", outcome="error")
    await faults.set(
        _method_fault(f"{word}-straggler", SEARCH_SHARD_SERVICE, "search-shards", "SearchShard", percent=25.0,
                      delay={"distribution": "fixed", "ms": 3_000}),
        _method_fault(f"{word}-failing", SEARCH_SHARD_SERVICE, "search-shards", "GetTermStatistics", percent=10.0,
                      abort="INTERNAL"))  # not UNAVAILABLE, which the channel retries
    try:
        for _ in range(60):
            await searched(f"{word} distributed")
            if (counted("casemesh_search_query_partial_results_total") > partial
                    and counted("casemesh_search_query_shard_calls_total", phase="search", outcome="deadline") > deadline
                    and counted("casemesh_search_query_shard_calls_total", phase="statistics", outcome="error") > error):
                break
    finally:
        await faults.clear()
    assert counted("casemesh_search_query_partial_results_total") > partial, "no partial answer in 60 searches"
    assert counted("casemesh_search_query_shard_calls_total", phase="search", outcome="deadline") > deadline
    assert counted("casemesh_search_query_shard_calls_total", phase="statistics", outcome="error") > error
    for _ in range(50):  # the faults over (and the breaker to search-shards closed again): every shard answers
        if not (await searched(f"{word} engine", page_size=10)).partial:
            break
    else:
        raise AssertionError("still partial answers 50 searches after the faults ended")

    # The query log reaches autocomplete: the drive's queries are suggested.
    async def suggested() -> list[str]:
        answer = await suggest.Suggest(search_query_pb2.SuggestRequest(prefix=word[:6].upper(), limit=10), timeout=10)
        return [s.query for s in answer.suggestions]

    for _ in range(200):
        if f"{word} engine" in await suggested():
            break
        await asyncio.sleep(0.05)
    assert f"{word} engine" in await suggested(), await suggested()

    def moved() -> dict[str, float]:
        return {metric._name: _gauge(metric) - value for metric, value in gauges.items() if _gauge(metric) != value}

    await eventually(lambda: not moved(), lambda: f"the search gauges back where they were: {moved()}")


@pytest.fixture
async def crawler_mesh(monkeypatch, tmp_path):
    """The web crawler's services (crawler-web, crawler) and the search engine's indexer and shards it feeds, in this
    process (the indexer's store under ``tmp_path``), every call traced, after real traffic."""
    monkeypatch.setenv("CASEMESH_TRACE_RATIO", "1")
    running, stop, task = await start_mesh(definitions(list(CRAWLER_MESH)), loopback_topology(
        CRAWLER_MESH, data_dir=tmp_path / "crawler", settings=CRAWLER_SETTINGS))
    try:
        await _drive_crawler(running)
        yield running
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


async def _drive_crawler(running) -> None:
    """Real calls through every path the crawler dashboard and the crawler profile's server-side SLO twins
    (harness/profiles/crawler.slo.yaml) count, on CRAWLER_WEB_SETTINGS' web of 12 hosts:

    - A crawl of the whole web from every home page, its pages sent to search-indexer, to DONE (GetCrawl until then):
      robots.txt read once per host (one host without it, one closed to casemesh-bot, one whose 1 s Crawl-delay the
      crawler does not wait: closed too), private pages disallowed, a flaky host's 503s retried, broken links' 404s,
      a slow host's delayed answers, exact and near copies skipped; the referee's Audit finds it polite and obedient.
    - A second crawl, cancelled at once.
    - Three fetches of the test's own on the Crawl-delay host, which the referee counts as a robots.txt violation (a
      /private/ path), politeness violations (within the host's 1 s) and a duplicate (its home page twice); then a
      wait of the Crawl-delay, so the next drive's crawl finds the host polite again.
    """
    crawler = crawler_pb2_grpc.CrawlerServiceStub(running.channel("crawler"))
    web = web_pb2_grpc.SyntheticWebServiceStub(running.channel("crawler-web"))
    home_pages = list((await web.GetWeb(web_pb2.GetWebRequest(), timeout=5)).home_pages)
    plan = WebPlan(WebSettings(**CRAWLER_WEB_SETTINGS))
    delayed = plan.variants.index(RobotsVariant.CRAWL_DELAY)
    crawl_id = f"dashboard-{secrets.token_hex(4)}"
    started = await crawler.StartCrawl(crawler_pb2.StartCrawlRequest(
        crawl_id=crawl_id, seed_urls=home_pages, max_pages=1_000, index_pages=True), timeout=5)
    assert started.crawl.state == crawler_pb2.CRAWL_STATE_RUNNING, started
    # Cancelled at once, from a host the web serves plainly (its fetches share the process's host clock).
    plain = plan.variants.index(RobotsVariant.STANDARD)
    cancelled = crawler_pb2.StartCrawlRequest(crawl_id=f"{crawl_id}-cancelled", seed_urls=[home_pages[plain]],
                                              max_pages=10)
    await crawler.StartCrawl(cancelled, timeout=5)
    stopped = await crawler.CancelCrawl(crawler_pb2.CancelCrawlRequest(crawl_id=cancelled.crawl_id), timeout=5)
    assert stopped.crawl.state == crawler_pb2.CRAWL_STATE_CANCELLED, stopped
    deadline = time.monotonic() + 60
    while (crawl := (await crawler.GetCrawl(crawler_pb2.GetCrawlRequest(crawl_id=crawl_id), timeout=5)).crawl).state \
            == crawler_pb2.CRAWL_STATE_RUNNING:
        assert time.monotonic() < deadline, f"the crawl still runs after 60 s: {crawl}"
        await asyncio.sleep(0.05)
    assert crawl.state == crawler_pb2.CRAWL_STATE_DONE, crawl
    assert crawl.pages_indexed and crawl.robots_blocked and crawl.exact_duplicates and crawl.near_duplicates, crawl
    audit = await web.Audit(web_pb2.AuditRequest(crawl_id=crawl_id), timeout=5)
    assert audit.pages_ok == crawl.pages_fetched and not (
        audit.robots_violations or audit.politeness_violations or audit.duplicate_fetches), audit

    # The referee's counters: fetches a polite crawler never makes, under a crawl ID of their own.
    host = f"http://{crawler_contract.host_name(delayed)}"

    async def fetch(path: str) -> int:
        request = web_pb2.FetchRequest(url=f"{host}{path}", crawl_id=f"{crawl_id}-impolite",
                                       user_agent=crawler_contract.USER_AGENT)
        return (await web.Fetch(request, timeout=5)).http_status

    await fetch("/private/1")
    while await fetch("/") != 200:  # a flaky host answers 503 now and then; the next fetch of a 200 is a duplicate
        pass
    await fetch("/")
    audit = await web.Audit(web_pb2.AuditRequest(crawl_id=f"{crawl_id}-impolite"), timeout=5)
    assert audit.robots_violations and audit.politeness_violations >= 2 and audit.duplicate_fetches, audit
    await asyncio.sleep(CRAWLER_WEB_SETTINGS["crawl_delay_s"] + 0.1)

    def moved() -> dict[str, float]:
        return {metric._name: _gauge(metric) for metric in CRAWLER_DRIVE_GAUGES if _gauge(metric)}

    await eventually(lambda: not moved(), lambda: f"the crawler gauges back at zero: {moved()}")


@pytest.fixture
async def ads_mesh(monkeypatch, tmp_path):
    """The ad services (ads-campaigns, ads-budget, ads-frequency, ads-server) in this process (their stores under
    ``tmp_path``), every call traced, after real traffic."""
    monkeypatch.setenv("CASEMESH_TRACE_RATIO", "1")
    running, stop, task = await start_mesh(definitions(list(ADS_MESH)), loopback_topology(
        ADS_MESH, data_dir=tmp_path / "ads", settings=ADS_SETTINGS))
    try:
        await _drive_ads(running)
        yield running
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


@pytest.fixture
async def moderation_mesh(monkeypatch, tmp_path):
    """The moderation services (classifier, review, pipeline) in this process (their stores under ``tmp_path``), every
    call traced, after real traffic."""
    monkeypatch.setenv("CASEMESH_TRACE_RATIO", "1")
    running, stop, task = await start_mesh(definitions(list(MODERATION_MESH)), loopback_topology(
        MODERATION_MESH, data_dir=tmp_path / "moderation", settings=MODERATION_SETTINGS))
    try:
        await _drive_moderation(running)
        yield running
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


async def _drive_moderation(running) -> None:
    """Real calls through every path the moderation dashboard and the moderation profile's server-side SLO twins
    (harness/profiles/moderation.slo.yaml) count, with items of this drive's own (fresh IDs):

    - texts of the corpus's held-out split picked by their score (ClassifierService.Classify) against the pipeline's
      default band (0.2, 0.8): two the classifier approves, three it removes, three for review;
    - each submitted (SubmitItem) and its routing awaited (AwaitDecision); GetItem and ListAuditLog of one; a
      SubmitItem refused (INVALID_ARGUMENT);
    - two removals appealed (AppealDecision), one appealed again (FAILED_PRECONDITION already_appealed);
    - a reviewer claims a task and lets its 1 s lease lapse (lease_expired), then claims and completes every task:
      first reviews approved and removed, one appeal reversed and one upheld; GetQueueStats;
    - until every verdict is applied: the drive's items decided, the queue, the outbox and the stages back where they
      were.
    """
    tag = secrets.token_hex(4)
    classifier = classifier_pb2_grpc.ClassifierServiceStub(running.channel("moderation-classifier"))
    pipeline = pipeline_pb2_grpc.ModerationServiceStub(running.channel("moderation-pipeline"))
    review = review_pb2_grpc.ReviewServiceStub(running.channel("moderation-review"))
    wanted = {"approve": 2, "remove": 3, "review": 3}
    picked: dict[str, list[str]] = {band: [] for band in wanted}
    for item in moderation_corpus.split("held_out", 1_000):
        p = (await classifier.Classify(classifier_pb2.ClassifyRequest(text=item.text), timeout=5)).violation_probability
        band = "approve" if p < 0.2 else "remove" if p >= 0.8 else "review"
        if len(picked[band]) < wanted[band]:
            picked[band].append(item.text)
        if all(len(picked[b]) == n for b, n in wanted.items()):
            break
    assert all(len(picked[b]) == n for b, n in wanted.items()), picked
    items: dict[str, str] = {}
    for band, texts in picked.items():
        for n, text in enumerate(texts):
            item_id = f"{tag}-{band}-{n}"
            await pipeline.SubmitItem(pipeline_pb2.SubmitItemRequest(item_id=item_id, author_id=f"{tag}-author",
                                                                     text=text), timeout=5)
            routed = (await pipeline.AwaitDecision(pipeline_pb2.AwaitDecisionRequest(item_id=item_id,
                                                                                     timeout_ms=5_000),
                                                   timeout=10)).item
            assert routed.state != moderation_pb2.ITEM_STATE_PENDING, routed
            items[item_id] = band
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await pipeline.SubmitItem(pipeline_pb2.SubmitItemRequest(item_id=f"{tag}-bad", author_id=f"{tag}-author"),
                                  timeout=5)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    first_id = next(iter(items))
    await pipeline.GetItem(pipeline_pb2.GetItemRequest(item_id=first_id), timeout=5)
    assert (await pipeline.ListAuditLog(pipeline_pb2.ListAuditLogRequest(item_id=first_id), timeout=5)).entries
    removed = [i for i, band in items.items() if band == "remove"][:2]
    for item_id in removed:
        await pipeline.AppealDecision(pipeline_pb2.AppealDecisionRequest(
            item_id=item_id, author_id=f"{tag}-author", reason="read it again"), timeout=5)
    assert await _refusal(pipeline.AppealDecision(pipeline_pb2.AppealDecisionRequest(
        item_id=removed[0], author_id=f"{tag}-author"), timeout=5)) == "already_appealed"
    ours = set(items)
    # Three first reviews and two appeals reach the queue (the pipeline sends each once routed or appealed).
    tasks: list[review_pb2.ReviewTask] = []
    lapsed = (await review.ClaimTask(review_pb2.ClaimTaskRequest(reviewer_id=f"{tag}-walks-away", lease_ms=1_000),
                                     timeout=5)).task
    assert lapsed.task_id
    deadline = time.monotonic() + 30
    done: set[tuple[str, int]] = set()
    while len(done) < 5:
        assert time.monotonic() < deadline, f"the drive's reviews: {done}"
        task = (await review.ClaimTask(review_pb2.ClaimTaskRequest(reviewer_id=f"{tag}-reviewer", lease_ms=60_000),
                                       timeout=5)).task
        if not task.task_id:
            await asyncio.sleep(0.05)  # the lapsed lease, or a task still on its way
            continue
        tasks.append(task)
        # First reviews: approve, remove, approve; appeals: reverse one, uphold the other (every verdict path).
        same_kind = sum(1 for item_id, kind in done if kind == task.kind)
        verdict = moderation_pb2.VERDICT_APPROVE if same_kind % 2 == 0 else moderation_pb2.VERDICT_REMOVE
        await review.CompleteTask(review_pb2.CompleteTaskRequest(
            task_id=task.task_id, lease_token=task.lease_token, reviewer_id=f"{tag}-reviewer", verdict=verdict),
            timeout=5)
        done.add((task.item_id, task.kind))
    assert {item_id for item_id, _ in done} <= ours, done
    assert any(t.task_id == lapsed.task_id and t.claims > 1 for t in tasks), "the lapsed task was not claimed again"
    await review.GetQueueStats(review_pb2.GetQueueStatsRequest(), timeout=5)
    undecided = {moderation_pb2.ITEM_STATE_PENDING, moderation_pb2.ITEM_STATE_IN_REVIEW,
                 moderation_pb2.ITEM_STATE_IN_APPEAL}
    while True:
        states = [(await pipeline.GetItem(pipeline_pb2.GetItemRequest(item_id=i), timeout=5)).item.state
                  for i in items]
        if not undecided & set(states):
            break
        assert time.monotonic() < deadline, f"the drive's items still undecided: {states}"
        await asyncio.sleep(0.05)

    def moved() -> dict[str, float]:
        return {metric._name: _gauge(metric) for metric in MODERATION_DRIVE_GAUGES if _gauge(metric)}

    await eventually(lambda: not moved(), lambda: f"the moderation gauges back at zero: {moved()}")


def _ad_campaign(campaign_id: str, interest: str, *, bid: int, budget: int, cap: int = 1) -> ads_pb2.Campaign:
    return ads_pb2.Campaign(
        campaign_id=campaign_id, advertiser_id="dashboard", targeting=ads_pb2.Targeting(interests=[interest]),
        cpm_bid=money_pb2.Money(currency_code="USD", amount_minor=bid),
        daily_budget=money_pb2.Money(currency_code="USD", amount_minor=budget),
        frequency_cap=ads_pb2.FrequencyCap(max_impressions=cap, window_s=3_600),
        creative=ads_pb2.Creative(headline=f"{campaign_id} ad", landing_url=f"https://example.com/{campaign_id}"))


async def _refusal(call) -> str:
    """The contract reason of a FAILED_PRECONDITION (the details' part before the colon), or ``""`` when answered."""
    try:
        await call
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.FAILED_PRECONDITION:
            raise
        return error.details().partition(":")[0]
    return ""


async def _drive_ads(running) -> None:
    """Real calls through every path the ads dashboard and the ads profile's server-side SLO twins
    (harness/profiles/ads.slo.yaml) count, with campaigns of this drive's own (targeting interests no earlier drive's
    campaign has) and users of its own, on ADS_SETTINGS' day of ADS_DAY_S seconds with pacing:

    - Four campaigns created; Decide until the first serves (no_candidates while the index catches up), the same
      request again (repeated), the same user again (frequency_capped: its cap of 1 reached), an interest no campaign
      targets (no_candidates); the ad served clicked twice (a first click and a repeat).
    - Reserve of the capped campaign for that user (capped), and a reservation of its own released.
    - Charges as ads-server sends them: one that leaves a campaign's budget below its bid (charged: the campaign
      exhausted; its Decide a budget no-fill), its repeat, one beyond the whole budget (budget_exhausted), one of a
      whole budget early in a day (paced), and one of a campaign once its pause reached ads-budget (paused); GetSpend.
    """
    tag = f"d{secrets.token_hex(4)}"
    campaigns = campaigns_pb2_grpc.CampaignServiceStub(running.channel("ads-campaigns"))
    budget = budget_pb2_grpc.BudgetServiceStub(running.channel("ads-budget"))
    frequency = frequency_pb2_grpc.FrequencyServiceStub(running.channel("ads-frequency"))
    ads = server_pb2_grpc.AdServiceStub(running.channel("ads-server"))
    capped, spent, paced, paused = (f"{tag}-{name}" for name in ("capped", "spent", "paced", "paused"))
    # Prices in thousandths of a minor unit: a CPM bid of N minor units is N a impression; a budget of 1 is 1,000.
    for campaign in (_ad_campaign(capped, f"{tag}-a", bid=100, budget=1_000),
                     _ad_campaign(spent, f"{tag}-b", bid=990, budget=1),
                     _ad_campaign(paced, f"{tag}-c", bid=1, budget=1),
                     _ad_campaign(paused, f"{tag}-d", bid=1, budget=1_000)):
        await campaigns.CreateCampaign(campaigns_pb2.CreateCampaignRequest(campaign=campaign), timeout=5)
    user = f"{tag}-u"

    def decide(request_id: str, interest: str, user_key: str = user) -> server_pb2.DecideRequest:
        return server_pb2.DecideRequest(request_id=request_id, user_key=user_key, country="US", interests=[interest],
                                        device=ads_pb2.DEVICE_TYPE_MOBILE)

    async def decided_until(interest: str, done, what: str) -> server_pb2.DecideResponse:
        deadline = time.monotonic() + 30
        for n in itertools.count():
            response = await ads.Decide(decide(f"{tag}-{interest}-{n}", interest), timeout=5)
            if done(response):
                return response
            assert time.monotonic() < deadline, f"{what}: still {response} after 30 s"
            await asyncio.sleep(0.05)

    served = await decided_until(f"{tag}-a", lambda r: r.HasField("ad"), "an ad served")
    assert served.ad.campaign_id == capped, served
    assert await ads.Decide(decide(served.ad.impression_id, f"{tag}-a"), timeout=5) == served  # repeated
    response = await ads.Decide(decide(f"{tag}-again", f"{tag}-a"), timeout=5)
    assert response.no_fill_reason == server_pb2.NO_FILL_REASON_FREQUENCY_CAPPED, response
    response = await ads.Decide(decide(f"{tag}-nobody", f"{tag}-none"), timeout=5)
    assert response.no_fill_reason == server_pb2.NO_FILL_REASON_NO_CANDIDATES, response
    click = server_pb2.RecordClickRequest(impression_id=served.ad.impression_id)
    assert (await ads.RecordClick(click, timeout=5)).first
    assert not (await ads.RecordClick(click, timeout=5)).first

    cap = ads_pb2.FrequencyCap(max_impressions=1, window_s=3_600)
    assert await _refusal(frequency.Reserve(frequency_pb2.ReserveRequest(
        impression_id=f"{tag}-reserve", user_key=user, campaign_id=capped, cap=cap), timeout=5)) == "frequency_capped"
    await frequency.Reserve(frequency_pb2.ReserveRequest(
        impression_id=f"{tag}-own", user_key=f"{tag}-v", campaign_id=capped, cap=cap), timeout=5)
    await frequency.Release(frequency_pb2.ReleaseRequest(impression_id=f"{tag}-own"), timeout=5)

    async def charged(impression: str, campaign_id: str, price: int) -> str:
        """Charge as ads-server does: the refusal's reason, ``""`` when taken; NOT_FOUND (a campaign ads-budget has not
        followed yet: it polls every 50 ms) retried."""
        request = budget_pb2.ChargeRequest(impression_id=f"{tag}-{impression}", campaign_id=campaign_id,
                                           price_milli_minor=price)
        for n in itertools.count():
            try:
                return await _refusal(budget.Charge(request, timeout=5))
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.NOT_FOUND and n < 200, error
                await asyncio.sleep(0.05)

    # 20 of 1,000 is within the pacing slack (2% of the budget) at any time of day; 980 left is below the bid of 990.
    assert await charged("spend", spent, 20) == ""
    assert await charged("spend", spent, 20) == ""  # repeated: its first answer
    await budget.GetSpend(budget_pb2.GetSpendRequest(campaign_id=spent), timeout=5)
    # Exhausted (or, should its day have ended meanwhile, paced at the next day's start): a budget no-fill.
    await decided_until(f"{tag}-b", lambda r: r.no_fill_reason == server_pb2.NO_FILL_REASON_BUDGET, "a budget no-fill")
    assert await charged("over", spent, 1_001) == "budget_exhausted"  # more than the whole budget
    # A whole budget at once is paced before 98% of its day: not in a day's last tenth (then the next day's start).
    day_ms = ADS_DAY_S * 1_000
    for n in range(4):
        if (into := time.time() * 1_000 % day_ms) > 0.9 * day_ms:
            await asyncio.sleep((day_ms - into) / 1_000 + 0.05)
        if await charged(f"paced{n}", paced, 1_000) == "paced":
            break
        await asyncio.sleep((day_ms - time.time() * 1_000 % day_ms) / 1_000 + 0.05)  # taken: the next day's budget
    else:
        raise AssertionError("a whole day's budget at once was never paced")
    await campaigns.SetCampaignState(campaigns_pb2.SetCampaignStateRequest(
        campaign_id=paused, state=ads_pb2.CAMPAIGN_STATE_PAUSED), timeout=5)
    for n in itertools.count():  # taken until the pause reaches ads-budget
        if await charged(f"paused{n}", paused, 1) == "paused":
            break
        assert n < 200, "the pause never reached ads-budget"
        await asyncio.sleep(0.05)


DASHBOARDS = ROOT / "dashboards"
JSON_DIR = DASHBOARDS / "json"
PROVISIONING = DASHBOARDS / "provisioning"
DEPLOY = ROOT / "deploy"

#: Dashboards whose every selector must select series the URL-shortener services expose after real calls.
URLSHORTENER_DASHBOARDS = ("mesh-overview.json", "url-shortener.json")
#: The video dashboard: series of the video services after real calls.
VIDEO_DASHBOARD = "video.json"
#: The harness's dashboard: its own families come from harness/metrics.py, its PromQL SLOs' from the services.
HARNESS_DASHBOARD = "harness-slos.json"
HARNESS_PREFIXES = ("casemesh_harness_", "casemesh_slo_")

#: The URL-shortener case study's services (topology names).
URLSHORTENER_MESH = ("urlshortener", "idgen", "analytics")
#: The video platform's services: upload plane, catalogue and search, playback and edge.
VIDEO_MESH = ("video-upload", "video-storage", "video-transcode", "video-transcoder",
              "video-catalog", "video-search", "video-playback", "video-edge")
#: The social feed's services and the recommendation engine its "For you" timeline reads; a celebrity threshold of 2
#: followers, so both fan-out paths run; likes sent on to reco-signals.
SOCIAL_MESH = ("social-graph", "social-tweets", "social-timeline", "idgen", "reco-signals", "reco-candidates", "reco-ranker")
SOCIAL_SETTINGS = {"social-timeline": {"celebrity_threshold": 2}, "social-tweets": {"record_signals": True}}
SOCIAL_DASHBOARD = "social-feed.json"
#: Photo sharing: its services and the reused graph, object store and edge (WAN off).
PHOTO_MESH = ("photo-media", "photo-resizer", "photo-feed", "social-graph", "video-storage", "video-edge", "idgen")
PHOTO_SETTINGS = {"video-edge": {"client_rtt_ms": 0, "client_bandwidth_kbps": 0, "origin_rtt_ms": 0,
                                 "origin_bandwidth_mbps": 0}}
PHOTO_DASHBOARD = "photo-sharing.json"
RECO_MESH = ("reco-signals", "reco-candidates", "reco-ranker")
RECO_DASHBOARD = "recommendations.json"
#: Chat: the message store, the router and two gateways; a connect-time SyncInbox of one message (the rest of an offline
#: queue is paged by a gap fill).
CHAT_MESH = ("chat-messages", "chat-router", "chat-gateway-1", "chat-gateway-2")
CHAT_SETTINGS = {gateway: {"sync_batch": 1} for gateway in ("chat-gateway-1", "chat-gateway-2")}
#: Collaborative documents: the documents service and both editor servers.
COLLAB_MESH = ("collab-documents", "collab-editor-1", "collab-editor-2")
COLLAB_DASHBOARD = "collab.json"
#: Live streaming: ingest, origin, edge, chat, and the chat services its rooms use. No WAN model at the edge (the delays
#: are the mesh's own); 3 chat posts per 10 s per user, so one drive shows the rate limit.
LIVE_MESH = tuple(LIVE_SERVICES)
LIVE_SETTINGS = {"live-edge": {"client_rtt_ms": 0, "client_bandwidth_kbps": 0}, "live-chat": {"rate_limit": "3/10 seconds"}}
LIVE_DASHBOARD = "live.json"
#: Ride sharing: the four services of tests/integration/rides.py. Offers stand 0.3 s, a ride nobody takes is released
#: 1.5 s after its request (searches again every 0.2 s meanwhile), the sweep runs every 0.5 s and the surge every second
#: (its minimum); drivers are searched within 300 m of a pickup, at most 600 m (RIDES_SPOTS are 2 km apart).
RIDES_SETTINGS = {
    "rides-dispatch": {"offer_timeout_s": 0.3, "max_match_s": 1.5, "sweep_interval_s": 0.5, "no_driver_retry_s": 0.2,
                       "search_radius_m": 300, "max_radius_m": 600},
    "rides-pricing": {"surge_interval_s": 1},
}
RIDES_DASHBOARD = "rides.json"
#: Proximity: the three services of tests/integration/proximity.py. Entities expire 6 s after their last position
#: (swept every 0.2 s), so a drive's leave the tracker's index before it returns; the geofence service keeps one event
#: (trimmed every 0.2 s) and lets a live watcher hold 2 events, so one drive shows both ways it ends a watcher.
PROXIMITY_SETTINGS = {
    "proximity-tracker": {"expiry_s": 6, "sweep_interval_s": 0.2},
    "proximity-geofence": {"event_retention": 1, "trim_interval_s": 0.2, "watcher_queue": 2},
}
PROXIMITY_DASHBOARD = "proximity.json"
PROXIMITY_SLOS = PROFILES_DIR / f"proximity{SLO_FILE_SUFFIX}"
#: Food delivery: the four services of tests/integration/food.py. Dispatch ticks every 0.1 s, sweeps every 0.5 s,
#: releases an order without a courier 8 s after it became due (room for a stalled machine in the race scenario) and forgets a courier's holding after 4 s (so a drive's
#: couriers leave its book), and searches couriers within 1.5 km of a restaurant (FOOD_SPOTS are 3 km apart). The
#: order service recomputes surge every 0.5 s, and its ETA model knows a city without waits or noise whose couriers
#: cover 100 road metres a second and are never more than 100 m from a restaurant: an order is promised its kitchen
#: time plus its trip (a door 2 km away: about 27 s; one at the restaurant: about 1.5 s). The kitchens' gauges are
#: refreshed every 0.2 s.
FOOD_SETTINGS = {
    "food-dispatch": {"tick_s": 0.1, "sweep_interval_s": 0.5, "max_dispatch_s": 8, "holding_ttl_s": 4,
                      "search_radius_m": 1_500, "max_radius_m": 1_500},
    "food-orders": {"surge_interval_s": 0.5, "courier_speed_mps": 100, "assign_delay_s": 0, "pickup_wait_s": 0,
                    "eta_noise_s": 0, "eta_approach_m": 100, "eta_approach_max_m": 100,
                    "eta_history_max_kitchen_s": 60, "eta_history_size": 1_000},
    "food-restaurants": {"sweep_interval_s": 0.2},
}
FOOD_DASHBOARD = "food.json"
FOOD_SLOS = PROFILES_DIR / f"food{SLO_FILE_SUFFIX}"
#: Gauges of what a food drive opens and closes (open orders, watchers, surge regions with demand or supply, queued
#: orders, feeds, couriers holding an assignment, busy kitchen slots and orders preparing, courier streams and
#: trackers): the drive returns once they are back where they were. (Restaurants and dispatch's regions only grow;
#: rides-location's drivers gauge is set by each location service in the process: checked by the food test alone.)
FOOD_DRIVE_GAUGES = (food_orders_metrics.OPEN_ORDERS, food_orders_metrics.WATCHERS, food_orders_metrics.SURGE_REGIONS,
                     food_dispatch_metrics.QUEUED, food_dispatch_metrics.FEEDS, food_dispatch_metrics.HOLDING,
                     kitchen_metrics.KITCHEN_SLOTS_BUSY, kitchen_metrics.ORDERS_PREPARING, location_metrics.STREAMS,
                     location_metrics.TRACKERS)
#: The payment gateway: the five services of tests/integration/payments.py. Issuers answering in a millisecond or two
#: and declining nothing but the contract's test cards; the gateway opens an acquirer's breaker after two unknown
#: outcomes in a row and lets a probe through a second later, retries a reversal's Void after 0.1 s (at most 0.5 s),
#: and sweeps every 0.2 s for keys left IN_FLIGHT more than a second by no call.
PAYMENTS_SETTINGS = {
    PSP_A: {"latency_median_ms": 1, "decline_rate": 0, "fee_bps": 150, "fee_fixed_minor": 20},
    PSP_B: {"latency_median_ms": 2, "decline_rate": 0, "fee_bps": 220, "fee_fixed_minor": 25},
    "payments-gateway": {"breaker_consecutive_failures": 2, "breaker_cooldown_s": 1, "reversal_initial_backoff_s": 0.1,
                         "reversal_max_backoff_s": 0.5, "resume_grace_s": 1, "resume_interval_s": 0.2},
}
PAYMENTS_DASHBOARD = "payments.json"
PAYMENTS_SLOS = PROFILES_DIR / f"payments{SLO_FILE_SUFFIX}"
#: Gauges a payments drive moves and puts back: attempts being reversed, the acquirers' breakers.
PAYMENTS_DRIVE_GAUGES = (payments_gateway_metrics.REVERSALS_PENDING, payments_gateway_metrics.BREAKER_OPEN)
#: Online banking: the ledger and the transfer service in one server. A daily limit of 100.00, three transfers a
#: minute and new payees from 50.00 (so a drive meets every fraud rule with a few transfers); the recovery looks every
#: 0.1 s at PENDING rows of any age held by no call (at most 0.4 s apart while the ledger fails); ledger calls may take
#: 5 s (the drive's double tap holds a PostEntry 1 s).
BANKING_MESH = ("banking-ledger", "banking-transfers")
BANKING_SETTINGS = {
    "banking-transfers": {"daily_limit_minor": 10_000, "velocity_max_transfers": 3, "new_payee_threshold_minor": 5_000,
                          "recovery_grace_s": 0, "recovery_interval_s": 0.1, "recovery_max_backoff_s": 0.4,
                          "ledger_timeout_s": 5},
}
BANKING_LEDGER_SERVICE = "casemesh.banking.v1.LedgerService"
BANKING_DASHBOARD = "banking.json"
BANKING_SLOS = PROFILES_DIR / f"banking{SLO_FILE_SUFFIX}"
#: Gauges a banking drive moves and puts back: transfers and deposits PENDING.
BANKING_DRIVE_GAUGES = (banking_transfers_metrics.PENDING,)
#: Stock trading: the engine, the order gateway and the market data in one server. The gateway refuses a notional
#: over 1,000,000.00 and an account's third resting order; both engine feeds renew their stream every second (the
#: least feed_renew_s), so a drive sees them reconnect.
TRADING_MESH = ("trading-engine", "trading-gateway", "trading-marketdata")
TRADING_SETTINGS = {
    "trading-gateway": {"max_notional_minor": 10**8, "max_open_orders": 2, "feed_renew_s": 1},
    "trading-marketdata": {"feed_renew_s": 1},
}
#: The symbol a trading drive trades, and its reference price (the gateway's default instruments).
TRADING_SYMBOL = "AAPL"
TRADING_REFERENCE_MINOR = next(i.reference_price_minor for i in DEFAULT_INSTRUMENTS if i.symbol == TRADING_SYMBOL)
TRADING_DASHBOARD = "trading.json"
TRADING_SLOS = PROFILES_DIR / f"trading{SLO_FILE_SUFFIX}"
#: Gauges a trading drive moves and puts back: market data subscribers.
TRADING_DRIVE_GAUGES = (trading_marketdata_metrics.SUBSCRIBERS,)
#: The payment gateway's gRPC service, which the e-commerce and hotel drives' server faults slow or take down.
GATEWAY_SERVICE = "casemesh.payments.v1.PaymentGatewayService"
#: Fast acquirers declining only the contract's test cards, and fraud rules that never block or review (one card pays
#: every order of a drive).
SHOP_PAYMENTS_SETTINGS = {
    PSP_A: {"latency_median_ms": 1, "decline_rate": 0},
    PSP_B: {"latency_median_ms": 1, "decline_rate": 0},
    "payments-fraud": {"review_threshold": 101, "block_threshold": 101},
}
#: E-commerce: the shop's four services and the payment gateway's five in one server. The checkout holds every line
#: 2 s (and, the hold ending within rehold_margin_s, holds it again before committing), so a payment held 4 s by a
#: fault outlives it; the inventory sweeps every 2 s; the orders' recovery looks every 0.1 s at PENDING orders of any
#: age held by no call (at most 0.4 s apart while the gateway fails); gateway calls may take 10 s.
ECOMMERCE_MESH = ("ecommerce-inventory", "ecommerce-catalog", "ecommerce-cart", "ecommerce-orders", "payments-gateway",
                  "payments-vault", "payments-fraud", PSP_A, PSP_B)
ECOMMERCE_SETTINGS = {
    **SHOP_PAYMENTS_SETTINGS,
    "ecommerce-inventory": {"sweep_interval_ms": 2_000},
    "ecommerce-orders": {"checkout_hold_ms": 2_000, "gateway_timeout_s": 10, "recovery_grace_s": 0,
                         "recovery_interval_s": 0.1, "recovery_max_backoff_s": 0.4},
}
SHOP_INVENTORY_SERVICE = "casemesh.ecommerce.v1.InventoryService"
ECOMMERCE_DASHBOARD = "ecommerce.json"
ECOMMERCE_SLOS = PROFILES_DIR / f"ecommerce{SLO_FILE_SUFFIX}"
#: Gauges an e-commerce drive moves and puts back: orders PENDING, carts and their lines, units and reservations held.
ECOMMERCE_DRIVE_GAUGES = (shop_orders_metrics.PENDING, shop_cart_metrics.CARTS, shop_cart_metrics.LINES,
                          shop_inventory_metrics.UNITS_HELD, shop_inventory_metrics.RESERVATIONS_HELD)
#: Hotel reservation: the hotel services and the payment gateway's five in one server, the inventory pessimistic (the
#: default); the booking's recovery looks every 0.1 s at unfinished bookings of any age held by no call (at most 0.4 s
#: apart while the gateway fails); gateway calls may take 10 s.
HOTEL_SERVICES = ("hotel-inventory", "hotel-booking")
HOTEL_MESH = (*HOTEL_SERVICES, "payments-gateway", "payments-vault", "payments-fraud", PSP_A, PSP_B)
HOTEL_SETTINGS = {
    **SHOP_PAYMENTS_SETTINGS,
    "hotel-booking": {"gateway_timeout_s": 10, "recovery_grace_s": 0, "recovery_interval_s": 0.1,
                      "recovery_max_backoff_s": 0.4},
}
#: The second hotel-inventory and hotel-booking (HotelMeshes.optimistic): the inventory optimistic; holds of 3 s (so a
#: payment held 4 s by a fault outlives its hold) and one retry of a lost version race before a booking fails
#: contention.
HOTEL_OPTIMISTIC_SETTINGS = {
    "hotel-inventory": {"lock_mode": "optimistic"},
    "hotel-booking": {"hold_ttl_ms": 3_000, "gateway_timeout_s": 10, "max_conflict_retries": 1},
}
HOTEL_DASHBOARD = "hotel.json"
HOTEL_SLOS = PROFILES_DIR / f"hotel{SLO_FILE_SUFFIX}"
#: Gauges a hotel drive moves and puts back: bookings PENDING, room-nights held.
HOTEL_DRIVE_GAUGES = (hotel_booking_metrics.PENDING, hotel_inventory_metrics.HELD_ROOM_NIGHTS)
#: The web crawler: crawler-web's web of 12 hosts of 8 pages (seed 42: one host closed to casemesh-bot, one with a 1 s
#: Crawl-delay, one without robots.txt, one slow by 20 ms, one flaky answering 60% of its page fetches 503; private
#: pages, 10 near and 3 exact copy pairs), its referee and the crawler at 50 ms a host; the crawler waits no Crawl-delay
#: (max_crawl_delay_ms 0: the Crawl-delay host is closed for its crawls, so a whole-web crawl takes about a second);
#: pages go to search-indexer (PageRank on ComputePageRank only) and its shards.
CRAWLER_INTERVAL_MS = 50
CRAWLER_WEB_SETTINGS = {"hosts": 12, "pages_per_host": 8, "min_interval_ms": CRAWLER_INTERVAL_MS, "crawl_delay_s": 1,
                        "slow_delay_ms": 20, "flaky_503_share": 0.6}
CRAWLER_MESH = ("search-shards", "search-indexer", "crawler-web", "crawler")
CRAWLER_SETTINGS = {
    "crawler-web": CRAWLER_WEB_SETTINGS,
    "crawler": {"politeness_interval_ms": CRAWLER_INTERVAL_MS, "max_crawl_delay_ms": 0, "fetchers": 4, "max_crawls": 2},
    "search-indexer": {"pagerank_interval_s": 0},
}
CRAWLER_DASHBOARD = "crawler.json"
CRAWLER_SLOS = PROFILES_DIR / f"crawler{SLO_FILE_SUFFIX}"
#: Gauges a crawler drive moves and puts back at zero: URLs queued, hosts waiting, crawls running.
CRAWLER_DRIVE_GAUGES = (crawler_metrics.FRONTIER_SIZE, crawler_metrics.HOSTS_WAITING, crawler_metrics.RUNNING_CRAWLS)
#: Ad serving: its four services in one server; the targeting index and the budgets follow the campaigns every 50 ms;
#: Decide's calls have seconds (a loaded machine's fsyncs must not make decisions UNAVAILABLE); the budgets' day lasts
#: ADS_DAY_S seconds (pacing on, 2% slack: a day's last tenth is a short wait for a drive that needs a paced charge).
ADS_MESH = ("ads-campaigns", "ads-budget", "ads-frequency", "ads-server")
ADS_DAY_S = 10
ADS_SETTINGS = {
    "ads-server": {"sync_interval_ms": 50, "decide_deadline_ms": 5_000, "filter_timeout_ms": 2_000,
                   "reserve_timeout_ms": 2_000, "charge_timeout_ms": 2_000},
    "ads-budget": {"sync_interval_ms": 50, "day_length_s": ADS_DAY_S},
}
ADS_DASHBOARD = "ads.json"
ADS_SLOS = PROFILES_DIR / f"ads{SLO_FILE_SUFFIX}"
#: Content moderation: its three services in one server; the classifier fitted on small splits (a quick start: the
#: dashboard does not judge its AUC); review SLAs of 1 s and 2 s and a sweeper every 0.1 s (a drive's tasks age, go
#: overdue and have their lapsed lease noticed quickly); the pipeline's verdict long poll and re-sends every 50-100 ms.
MODERATION_MESH = ("moderation-classifier", "moderation-review", "moderation-pipeline")
MODERATION_SETTINGS = {
    "moderation-classifier": {"training_items": 2_000, "held_out_items": 1_000},
    "moderation-review": {"first_review_sla_s": 1, "appeal_sla_s": 2, "sweep_interval_s": 0.1},
    "moderation-pipeline": {"verdict_wait_ms": 100, "resend_interval_ms": 50},
}
MODERATION_DASHBOARD = "moderation.json"
MODERATION_SLOS = PROFILES_DIR / f"moderation{SLO_FILE_SUFFIX}"
#: Gauges a moderation drive moves and puts back where they were: items waiting between stages, tasks in the queue.
MODERATION_DRIVE_GAUGES = (moderation_metrics.PENDING, moderation_metrics.UNENQUEUED,
                           moderation_review_metrics.VERDICTS_PENDING, moderation_review_metrics.QUEUE_DEPTH)
#: The search engine: its four services (shards, indexer, query, autocomplete) in one server, 4 shards. The shards retry
#: their rebuild at start every 0.05 s (at most 0.2 s); PageRank runs on ComputePageRank only; each shard call has 500 ms
#: (a shard held longer by a fault is left out: a partial answer); the query log is flushed every 50 ms and the prefix
#: index rebuilt every 50 ms, so a drive's queries are suggested within a fraction of a second.
SEARCH_MESH = ("search-shards", "search-indexer", "search-query", "search-autocomplete")
SEARCH_SETTINGS = {
    "search-shards": {"shards": 4, "rebuild_retry_s": 0.05, "rebuild_retry_max_s": 0.2},
    "search-indexer": {"pagerank_interval_s": 0},
    "search-query": {"shard_deadline_ms": 500, "query_log_flush_ms": 50},
    "search-autocomplete": {"rebuild_interval_ms": 50},
}
SEARCH_SHARD_SERVICE = "casemesh.search.v1.IndexShardService"
SEARCH_DASHBOARD = "search.json"
SEARCH_SLOS = PROFILES_DIR / f"search{SLO_FILE_SUFFIX}"
#: Gauges a search drive moves and puts back: queries waiting in the query log.
SEARCH_DRIVE_GAUGES = (search_query_metrics.LOG_PENDING,)
CHAT_DASHBOARD = "chat.json"
#: Fast everything: a 3 s video transcodes in 3 ms, no WAN pacing, view starts flushed and snapshotted every 0.1 s.
VIDEO_SETTINGS = {
    "video-transcoder": {"cost_ms_per_video_s": 1, "poll_wait_ms": 200},
    "video-edge": {"client_rtt_ms": 0, "client_bandwidth_kbps": 0, "origin_rtt_ms": 0, "origin_bandwidth_mbps": 0},
    "video-playback": {"view_flush_interval_s": 0.1},
    "video-catalog": {"view_snapshot_interval_s": 0.1},
}
#: Where the compose service ``harness`` writes its runs (deploy/compose.yaml; ``out/`` on the host).
HARNESS_OUTPUT = "/out"
#: The histograms whose observations carry a ``trace_id`` exemplar (the gRPC interceptors'); checked live below.
EXEMPLAR_HISTOGRAMS = {"grpc_server_handling_seconds", "grpc_client_handling_seconds"}
#: Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"job", "instance"}
#: Label values a short test run legitimately never produces (the buffer never fills).
ABSENT_VALUES = {("casemesh_urlshortener_clicks_total", "outcome", "dropped"),
                 ("casemesh_social_like_signals_total", "outcome", "dropped")}
#: Status codes of the calls the filled RunStats records (so the SLO rows' code matchers select something).
HARNESS_CODES = ("OK", "NOT_FOUND")
#: Grafana's built-in variables, as a Prometheus would receive them for a 1-minute view.
BUILTINS = {"$__rate_interval": "10s", "$__range": "1m", "$__interval": "1s"}
#: A ``__name__`` regex that lists metric names: ``a|b``.
NAME_LIST = r"[a-zA-Z_:][a-zA-Z0-9_:]*(\|[a-zA-Z_:][a-zA-Z0-9_:]*)*"
LABEL_VALUES = re.compile(r"label_values\((?P<selector>.+),\s*(?P<label>\w+)\)")


def load(name: str) -> dict:
    return json.loads((JSON_DIR / name).read_text())


def dashboard_files() -> list[str]:
    return sorted(p.name for p in JSON_DIR.glob("*.json"))


def panels(dashboard: dict) -> Iterator[dict]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])  # collapsed rows


def expressions(dashboard: dict) -> Iterator[tuple[str, dict, str]]:
    """(panel title, target, PromQL) of every Prometheus query, and variable queries as selectors."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield panel["title"], target, target["expr"]
    for variable in dashboard.get("templating", {}).get("list", []):
        match = LABEL_VALUES.fullmatch(variable["query"])
        assert match, f"variable {variable['name']}: expected label_values(SELECTOR, LABEL), got {variable['query']!r}"
        yield f"variable {variable['name']}", variable, match["selector"]


def as_prometheus_sees_it(expr: str) -> str:
    """``expr`` with Grafana's variables interpolated: built-ins as durations, template variables as "All" (``.*``)."""
    for name, value in BUILTINS.items():
        expr = expr.replace(name, value)
    return re.sub(r"\$\w+", ".*", expr)


def selectors(expr: str) -> list[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []
    promql_parser.walk(promql_parser.parse(as_prometheus_sees_it(expr)),
                       lambda node: found.append(node) if isinstance(node, promql_parser.VectorSelector) else None)
    return found


def provisioned_datasources() -> dict[str, dict]:
    document = yaml.safe_load((PROVISIONING / "grafana/datasources/casemesh.yaml").read_text())
    return {ds["uid"]: ds for ds in document["datasources"]}


# ---- generated JSON -------------------------------------------------------------------------------


def test_committed_dashboards_are_what_the_generator_writes(tmp_path):
    result = subprocess.run([sys.executable, str(DASHBOARDS / "generate.py"), "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    generated = sorted(p.name for p in tmp_path.glob("*.json"))
    assert generated == dashboard_files(), "dashboards/json/ differs from the generator's files: run `make dashboards`"
    for name in generated:
        fresh, committed = (tmp_path / name).read_text(), (JSON_DIR / name).read_text()
        if fresh != committed:
            diff = "".join(list(difflib.unified_diff(committed.splitlines(True), fresh.splitlines(True),
                                                     f"committed/{name}", f"generated/{name}"))[:40])
            pytest.fail(f"dashboards/json/{name} is stale: run `make dashboards`\n{diff}")


def test_dashboards_have_unique_uids_and_panel_ids_and_the_current_schema():
    uids = [load(name)["uid"] for name in dashboard_files()]
    assert len(uids) == len(set(uids)) == len(dashboard_files())
    for name in dashboard_files():
        dashboard = load(name)
        assert dashboard["schemaVersion"] >= 39, f"{name}: an old schema (pin grafana-foundation-sdk to the 11.x line)"
        ids = [panel["id"] for panel in panels(dashboard)]
        assert len(ids) == len(set(ids)) and 0 not in ids, f"{name}: panel ids {ids}"
        for panel in panels(dashboard):
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, f"{name}: {panel['title']} overflows the grid"
            refs = [t["refId"] for t in panel.get("targets", [])]
            assert len(refs) == len(set(refs)) and "" not in refs, f"{name}: {panel['title']} query ref ids {refs}"


# ---- references -----------------------------------------------------------------------------------


def test_every_datasource_reference_is_provisioned():
    provisioned = provisioned_datasources()
    for name in dashboard_files():
        dashboard = load(name)
        references = [(f"panel {p['title']}", p.get("datasource")) for p in panels(dashboard) if p["type"] not in ("row", "text")]
        references += [(f"panel {title} query {t['refId']}", t.get("datasource")) for title, t, _ in expressions(dashboard) if "refId" in t]
        references += [(f"variable {v['name']}", v.get("datasource")) for v in dashboard["templating"]["list"]]
        for where, ref in references:
            assert ref is not None, f"{name}: {where} names no datasource (the default would be guessed)"
            assert ref["uid"] in provisioned, f"{name}: {where} uses datasource uid {ref['uid']!r}, provisioned: {sorted(provisioned)}"
            assert ref["type"] == provisioned[ref["uid"]]["type"], f"{name}: {where}"


def test_exemplars_link_to_the_provisioned_jaeger_and_every_latency_graph_of_a_histogram_with_them_shows_them():
    provisioned = provisioned_datasources()
    prometheus = provisioned["prometheus"]
    destinations = prometheus["jsonData"]["exemplarTraceIdDestinations"]
    # The label the services put on their exemplars (services/runtime/metrics.py trace_exemplar).
    assert [d["name"] for d in destinations] == ["trace_id"]
    assert provisioned[destinations[0]["datasourceUid"]]["type"] == "jaeger"
    # Grafana draws a query's exemplars at their own latency: one query per histogram that has them must ask for them;
    # a histogram without them (EXEMPLAR_HISTOGRAMS, checked against the live expositions below) is not asked, and its
    # panel does not promise dots.
    for name in dashboard_files():
        for panel in panels(load(name)):
            if panel["type"] != "timeseries":
                continue
            histograms = {family(node.name): False for t in panel["targets"] if "histogram_quantile(" in t["expr"]
                          for node in selectors(t["expr"])}
            for target in panel["targets"]:
                if target.get("exemplar"):
                    asked = {family(node.name) for node in selectors(target["expr"])}
                    assert asked <= EXEMPLAR_HISTOGRAMS, (
                        f"{name}: {panel['title']} asks for exemplars of {asked - EXEMPLAR_HISTOGRAMS}, which have none")
                    histograms.update((h, True) for h in asked)
            without = [h for h, shown in histograms.items() if not shown and h in EXEMPLAR_HISTOGRAMS]
            assert not without, f"{name}: {panel['title']} shows no exemplars of {without}"
            if not any(histograms.get(h) for h in EXEMPLAR_HISTOGRAMS):
                assert "exemplar" not in panel.get("description", "").lower().replace("no exemplars", ""), (
                    f"{name}: {panel['title']} promises exemplars it cannot show")


def test_provider_and_compose_mount_the_generated_json_and_the_provisioning():
    provider = yaml.safe_load((PROVISIONING / "grafana/dashboards/casemesh.yaml").read_text())["providers"][0]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    mounts = {}
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source, target, *_ = volume.split(":")
            host_path = (DEPLOY / source).resolve()
            if (name, target) != ("harness", HARNESS_OUTPUT):  # the harness's output directory is made, not read
                assert host_path.exists(), f"compose mounts {source}, which does not exist"
            mounts[target] = host_path
    assert mounts[provider["options"]["path"]] == JSON_DIR
    assert mounts["/etc/grafana/provisioning/datasources"] == PROVISIONING / "grafana/datasources"
    assert mounts["/etc/grafana/provisioning/dashboards"] == PROVISIONING / "grafana/dashboards"
    prometheus_config = mounts["/etc/prometheus/prometheus.yml"]
    assert "--enable-feature=exemplar-storage" in services["prometheus"]["command"]
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (mounts[str(Path(home).parent)] / Path(home).name).exists()

    # Datasource URLs and scrape targets name compose services on the ports those services listen on.
    for datasource in provisioned_datasources().values():
        url = urllib.parse.urlsplit(datasource["url"])
        assert url.hostname in services, f"datasource {datasource['name']}: {url.hostname} is not a compose service"
    assert urllib.parse.urlsplit(provisioned_datasources()["jaeger"]["url"]).port == 16686
    scrape = yaml.safe_load(prometheus_config.read_text())
    from casemesh.services.runtime.topology import load_topology

    topology = load_topology(DEPLOY / "topology.yaml")
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in scrape["scrape_configs"]}
    for name, endpoint in topology.services.items():
        assert name in services, f"topology service {name} has no compose service"
        assert endpoint.address.split(":")[0] == name and endpoint.metrics_address.split(":")[0] == name
        assert services[name]["command"] == ["serve", name]
        assert services[name]["environment"]["OTEL_SERVICE_NAME"] == name
        assert services[name]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4317"
        assert targets[name] == [endpoint.metrics_address], f"Prometheus job {name} does not scrape {endpoint.metrics_address}"
    assert "--enable-feature=exemplar-storage" not in scrape  # a flag, not configuration
    build = services["urlshortener"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).exists()


def compose_harness_run() -> tuple[dict, list[str]]:
    """The compose service ``harness`` and the ``casemesh`` arguments it runs by default (entrypoint + command)."""
    harness = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]["harness"]
    entrypoint, command = harness["entrypoint"], harness["command"]
    assert entrypoint[:2] == ["casemesh", "run"]
    return harness, [*entrypoint[1:], *command]


def test_the_compose_harness_is_scraped_where_it_listens_and_the_docs_say_so():
    """The harness binds 127.0.0.1 only: Prometheus reaches it by sharing its network namespace, on its own localhost."""
    import typer.main

    from casemesh.harness.cli import app
    from casemesh.harness.prometheus import loopback_url
    from casemesh.services.runtime.topology import load_topology

    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    harness, args = compose_harness_run()
    assert harness["network_mode"] == "service:prometheus"
    assert harness["profiles"] == ["harness"]  # `up` does not start it; `run --rm harness` does
    assert (harness["image"], harness["build"]) == (services["urlshortener"]["image"], services["urlshortener"]["build"])
    assert "ports" not in harness and "networks" not in harness  # both belong to the namespace it joins
    [output] = [volume.split(":")[0] for volume in harness["volumes"] if volume.endswith(f":{HARNESS_OUTPUT}")]
    assert (DEPLOY / output).resolve() == ROOT / "out"  # the runs land in out/ on the host
    assert harness["user"] == "${CASEMESH_UID:-1000}:${CASEMESH_GID:-1000}"  # as you, not as the image's user
    assert "extra_hosts" not in services["prometheus"]  # nothing is scraped on the host

    # The default run parses as `casemesh run` options (typer/click, nothing sent).
    run = typer.main.get_command(app).commands["run"]
    with run.make_context("run", args[1:]) as context:
        options = context.params
    assert options["profile"] == "url-shortener"
    assert options["out"] is not None and str(options["out"]).startswith(HARNESS_OUTPUT + "/")
    port = options["metrics_port"]
    assert port > 0, "a fixed --metrics-port, so that Prometheus knows where to scrape"
    # It evaluates the server-side twins with the compose Prometheus, on the loopback of the namespace they share.
    assert loopback_url(options["prometheus_url"]) == f"http://127.0.0.1:{services['prometheus']['ports'][0].split(':')[-1]}"
    # It drives the mesh by compose names, at the addresses the topology gives.
    topology = load_topology(DEPLOY / "topology.yaml")
    for target in options["target"]:
        service, _, address = target.rpartition("=")
        assert address == topology.endpoint(service or "urlshortener").address and address.split(":")[0] in services
    jaeger = services["urlshortener"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert harness["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == jaeger

    # Prometheus scrapes the harness on its own localhost, at that port, as the job the harness's own Prometheus uses.
    scrape = yaml.safe_load((PROVISIONING / "prometheus/prometheus.yml").read_text())
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in scrape["scrape_configs"]}
    assert targets["casemesh-harness"] == [f"localhost:{port}"]

    # The docs give that workflow and the same facts.
    docs = (ROOT / "docs/observability.md").read_text()
    for fact in ("docker compose -f deploy/compose.yaml run --rm harness", "network_mode: \"service:prometheus\"",
                 f"--metrics-port {port}", f"localhost:{port}", "CASEMESH_UID", "out/compose/"):
        assert fact in docs, f"docs/observability.md does not say {fact!r}"
    assert "host.docker.internal" not in (DEPLOY / "compose.yaml").read_text() + json.dumps(scrape)
    assert f"casemesh {' '.join(args)}" in " ".join(docs.split()), "docs/observability.md does not show the harness's default run"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (apt-get install -y prometheus)")
def test_prometheus_config_passes_promtool():
    result = subprocess.run(["promtool", "check", "config", str(PROVISIONING / "prometheus/prometheus.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# ---- PromQL ---------------------------------------------------------------------------------------


def test_every_expression_parses():
    for name in dashboard_files():
        for title, _, expr in expressions(load(name)):
            try:
                promql_parser.parse(as_prometheus_sees_it(expr))
            except ValueError as error:
                pytest.fail(f"{name}: {title}: {error}\n{expr}")


async def _drive_urlshortener(running) -> None:
    """Real calls through every path the dashboards show: Shorten (lease hop), Resolve hit and miss, stats, click batches."""
    stub = pb_grpc.UrlShortenerServiceStub(running.channel("urlshortener"))
    created = await stub.Shorten(pb.ShortenRequest(long_url="https://example.com/dashboards"))
    for _ in range(3):
        await stub.Resolve(pb.ResolveRequest(code=created.code, country_code="DE"))
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.Resolve(pb.ResolveRequest(code="zzzzzzz"))  # a cache miss, then NotFound
    for _ in range(100):  # clicks reach analytics in batches every 100 ms
        stats = await stub.GetStats(pb.GetStatsRequest(code=created.code))
        if stats.total_clicks == 3:
            break
        await asyncio.sleep(0.05)
    assert stats.total_clicks == 3


@pytest.fixture
async def urlshortener_mesh(monkeypatch):
    """The URL-shortener mesh in this process, every call traced (so latencies carry exemplars), after real traffic."""
    monkeypatch.setenv("CASEMESH_TRACE_RATIO", "1")
    chosen = definitions(list(URLSHORTENER_MESH))
    running, stop, task = await start_mesh(chosen, loopback_topology([d.name for d in chosen]))
    try:
        await _drive_urlshortener(running)
        yield running
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)



async def _drive_video(running) -> None:
    """Real calls through every path the video dashboard shows.

    An upload (InitiateUpload → ObjectStoreService.UploadObject → CompleteUpload) that the transcoder
    leases, transcodes and publishes; the published video indexed and found by a search; a playback
    start (GetMasterPlaylist, GetVariantPlaylist, the first segment from the edge: a miss with its
    origin fetch, then a hit); its view start buffered, flushed and snapshotted into the view count.
    """
    upload = upload_pb2_grpc.UploadServiceStub(running.channel("video-upload"))
    storage = storage_pb2_grpc.ObjectStoreServiceStub(running.channel("video-storage"))
    catalog = catalog_pb2_grpc.CatalogServiceStub(running.channel("video-catalog"))
    search = search_pb2_grpc.SearchServiceStub(running.channel("video-search"))
    playback = playback_pb2_grpc.PlaybackServiceStub(running.channel("video-playback"))
    edge = edge_pb2_grpc.EdgeServiceStub(running.channel("video-edge"))
    word = f"dashboards{secrets.token_hex(4)}"  # a new video and search term per drive
    data = bytes(range(256)) * 1024
    started = await upload.InitiateUpload(upload_pb2.InitiateUploadRequest(
        channel_id="dashboards", title=f"Dashboard check {word}", tags=["dashboards"], duration_s=3.0, file_size_bytes=len(data)))
    await storage.UploadObject(iter([storage_pb2.UploadObjectRequest(upload_token=started.upload_token, offset_bytes=offset,
                                                                     data=data[offset:offset + 65_536])
                                     for offset in range(0, len(data), 65_536)]))
    await upload.CompleteUpload(upload_pb2.CompleteUploadRequest(video_id=started.video_id))

    async def until(condition, what: str):
        deadline = time.monotonic() + 15
        while not (found := await condition()):
            assert time.monotonic() < deadline, f"{what} within 15 s"
            await asyncio.sleep(0.02)
        return found

    async def video() -> video_pb2.Video:
        return (await catalog.GetVideo(catalog_pb2.GetVideoRequest(video_id=started.video_id))).video

    await until(lambda: _published(video()), "the upload published")
    await until(lambda: _hits(search.SearchVideos(search_pb2.SearchVideosRequest(query=word))), "the video searchable")

    master = await playback.GetMasterPlaylist(playback_pb2.GetMasterPlaylistRequest(video_id=started.video_id))
    rendition, generation = hls.parse_variant_uri(hls.parse_master(master.playlist).variants[0].uri)
    media = await playback.GetVariantPlaylist(playback_pb2.GetVariantPlaylistRequest(
        video_id=started.video_id, generation=generation, rendition=rendition))
    index, _ = hls.parse_segment_uri(hls.parse_media(media.playlist).segments[0].uri)
    for expected in (edge_pb2.CACHE_RESULT_MISS, edge_pb2.CACHE_RESULT_HIT):
        results = {message.cache_result async for message in edge.StreamSegments(edge_pb2.StreamSegmentsRequest(
            video_id=started.video_id, generation=generation, rendition=rendition, start_index=index, count=1))}
        assert results == {expected}
    await until(lambda: _viewed(video()), "the view start counted")


async def _published(call) -> bool:
    return (await call).status == video_pb2.VIDEO_STATUS_PUBLISHED


async def _hits(call) -> bool:
    return (await call).total_hits > 0


async def _viewed(call) -> bool:
    return (await call).view_count > 0


@pytest.fixture
async def video_mesh(monkeypatch, tmp_path):
    """The eight video services in this process (data under ``tmp_path``), every call traced, after real traffic."""
    monkeypatch.setenv("CASEMESH_TRACE_RATIO", "1")
    running, stop, task = await start_mesh(definitions(list(VIDEO_MESH)),
                                           loopback_topology(VIDEO_MESH, data_dir=tmp_path / "video", settings=VIDEO_SETTINGS))
    try:
        await _drive_video(running)
        yield running
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


def shipped_slos() -> list[Slo]:
    return [slo for path in sorted(PROFILES_DIR.glob(f"*{SLO_FILE_SUFFIX}")) for slo in load_slos(path)]


def record_harness_calls(stats: RunStats) -> None:
    """A 1 ms call per code of HARNESS_CODES and of the SLO's own ``codes`` of every RPC and journey a shipped SLO names,
    and a send lag. (An SLO over all RPCs names none: the others' RPCs are its calls.)
    """
    for slo in shipped_slos():
        for side in (slo.good, slo.total):
            if isinstance(side, Selector) and (side.journey or side.rpc):
                calls = stats.journey(side.journey) if side.journey else stats.rpc(side.rpc)
                for code in dict.fromkeys((*HARNESS_CODES, *(side.codes or ()))):
                    calls.record(code, 1_000)
    stats.send_lag.record_value(500)


@dataclass
class HarnessExposition:
    metrics: HarnessMetrics
    stats: RunStats  # record more while Prometheus scrapes


@pytest.fixture
def harness():
    """The harness's collector with every shipped SLO, reporting a RunStats that holds calls of each SLO's RPC or journey."""
    metrics = HarnessMetrics(shipped_slos())
    stats = RunStats()
    record_harness_calls(stats)
    metrics.collector.attach(stats)
    yield HarnessExposition(metrics, stats)
    metrics.stop()


Series = dict[str, list[dict[str, str]]]


def exposed(text: str) -> Series:
    """Sample name → the label sets of its series, from an exposition."""
    series: Series = {}
    for metric in text_string_to_metric_families(text):
        for sample in metric.samples:
            series.setdefault(sample.name, []).append(dict(sample.labels))
    return series


OPERATORS = {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~", "MatchOp.NotRe": "!~"}


def shown(matcher) -> str:
    return f"{matcher.name}{OPERATORS[str(matcher.op)]}{json.dumps(matcher.value)}"


def matches(matcher, value: str | None) -> bool:
    op, wanted = str(matcher.op), matcher.value
    if op == "MatchOp.Equal":
        return value == wanted
    if op == "MatchOp.Re":
        return value is not None and re.fullmatch(wanted, value) is not None
    return True  # != and !~ filter what the panel shows (failures): selecting nothing is legitimate


def assert_selects_exposed(name: str, series_of) -> None:
    """Every selector of dashboard ``name`` selects at least one series of ``series_of(sample_name)``.

    Label matchers on the labels Prometheus adds (job, instance) are skipped; a selector without a
    metric name (``{__name__=~"a|b", ...}``) must match at least one exposed name.
    """
    for title, _, expr in expressions(load(name)):
        for node in selectors(expr):
            name_matchers = [m for m in node.matchers.matchers if m.name == "__name__"]
            if node.name:
                names = [node.name]
            else:
                assert name_matchers, f"{name}: {title}: a selector without a metric name: {expr}"
                names = [n for n in series_of(None) if all(matches(m, n) for m in name_matchers)]
                for matcher in name_matchers:  # a list of names (a|b): each of them
                    if str(matcher.op) == "MatchOp.Re" and re.fullmatch(NAME_LIST, matcher.value):
                        missing = set(matcher.value.split("|")) - set(names)
                        assert not missing, f"{name}: {title}: {sorted(missing)} not exposed"
            where = f"{name}: {title}: {node.name or name_matchers[0].value}"
            candidates = [labels for n in names for labels in series_of(n)]
            assert candidates, f"{where} is not exposed"
            wanted = [m for m in node.matchers.matchers if m.name != "__name__" and m.name not in TARGET_LABELS
                      and (node.name, m.name, m.value) not in ABSENT_VALUES]
            for matcher in wanted:
                assert any(matcher.name in labels for labels in candidates), f"{where} has no label {matcher.name}"
            if not any(all(matches(m, labels.get(m.name)) for m in wanted) for labels in candidates):
                seen = {m.name: sorted({labels.get(m.name, "") for labels in candidates}) for m in wanted}
                pytest.fail(f"{where}: no series matches {{{', '.join(shown(m) for m in wanted)}}} (label values seen: {seen})")


def services_series() -> Series:
    return exposed(generate_latest(REGISTRY).decode())  # what each process serves on /metrics


def lookup(series: Series):
    return lambda sample: list(series) if sample is None else series.get(sample, [])


async def test_mesh_and_urlshortener_dashboards_select_series_the_services_expose(urlshortener_mesh):
    for name in URLSHORTENER_DASHBOARDS:
        assert_selects_exposed(name, lookup(services_series()))


#: The mesh overview's runtime panels and the loop probe's sample each reads (services/runtime/loop_probe.py).
LOOP_PANELS = {"Event-loop lag p99": "casemesh_event_loop_lag_seconds_bucket", "GC pause time": "casemesh_gc_pause_seconds_sum"}


async def test_mesh_overview_loop_lag_and_gc_panels_read_the_services_live_probe(urlshortener_mesh):
    """The event-loop lag and GC panels select series the running services' probe exposes, per job, with observations."""
    by_title = {panel["title"]: panel for panel in panels(load("mesh-overview.json"))}
    live = {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for metric in text_string_to_metric_families(generate_latest(REGISTRY).decode()) for sample in metric.samples}
    for title, sample in LOOP_PANELS.items():
        [target] = by_title[title]["targets"]
        [node] = selectors(target["expr"])
        assert node.name == sample and [m.name for m in node.matchers.matchers] == ["job"], target["expr"]
        assert "job" in target["legendFormat"], f"{title}: one line per job"
        assert any(name == sample for name, _ in live), f"{title}: {sample} is not exposed"
    assert live[("casemesh_event_loop_lag_seconds_count", ())] > 0  # the probe ticks while the services serve
    assert {dict(labels)["generation"] for name, labels in live if name == "casemesh_gc_pause_seconds_sum"} == {"0", "1", "2"}
    assert_selects_exposed("mesh-overview.json", lookup(services_series()))


@pytest.mark.slow  # drives a case study's mesh: run by .ci/run's slow step
async def test_video_dashboard_selects_series_the_video_services_expose(video_mesh):
    assert_selects_exposed(VIDEO_DASHBOARD, lookup(services_series()))


@pytest.mark.slow  # drives a case study's mesh: run by .ci/run's slow step
async def test_social_dashboard_selects_series_the_social_services_expose(social_mesh):
    assert_selects_exposed(SOCIAL_DASHBOARD, lookup(services_series()))


@pytest.mark.slow  # drives a case study's mesh: run by .ci/run's slow step
async def test_photo_dashboard_selects_series_the_photo_services_expose(photo_mesh):
    assert_selects_exposed(PHOTO_DASHBOARD, lookup(services_series()))


@pytest.mark.slow  # drives a case study's mesh: run by .ci/run's slow step
async def test_recommendations_dashboard_selects_series_the_reco_services_expose(reco_mesh):
    assert_selects_exposed(RECO_DASHBOARD, lookup(services_series()))


#: Label values of the chat series that only specific events make, and the drive makes them (the panels group by these
#: labels: each must have a series, and these are the ones the drive is meant to show).
CHAT_EVENTS = {
    "casemesh_chat_sessions_ended_total": ("reason", {"client_closed", "replaced"}),
    "casemesh_chat_pushes_total": ("kind", {"message", "receipt", "replaced"}),
    "casemesh_chat_gap_fills_total": ("outcome", {"ok"}),
    "casemesh_chat_route_recipients_total": ("outcome", {"routed", "offline"}),
    "casemesh_chat_messages_stored_total": ("kind", {"dm", "group"}),
    "casemesh_chat_deliver_calls_total": ("gateway", {"chat-gateway-1", "chat-gateway-2"}),
}


def assert_streams_left_out(dashboard: str, streams: set[str], excluded: tuple[str, str]) -> None:
    """No duration or error panel of ``dashboard`` counts the long-lived stream methods ``streams``: each such selector
    names one other method (``grpc_method="X"``) or leaves them out with the matcher ``excluded`` (operator, value)."""
    for title, _, expr in expressions(load(dashboard)):
        for node in selectors(expr):
            matchers = {m.name: (str(m.op), m.value) for m in node.matchers.matchers}
            durations = node.name == "grpc_server_handling_seconds_bucket"
            errors = node.name == "grpc_server_handled_total" and matchers.get("grpc_code", ("",))[0] in (
                "MatchOp.NotEqual", "MatchOp.NotRe")
            if durations or errors:
                op, method = matchers.get("grpc_method", ("", ""))
                assert (op, method) == excluded or (op == "MatchOp.Equal" and method not in streams), (
                    f"{dashboard}: {title} counts a stream ({', '.join(sorted(streams))}): {expr}")


@pytest.mark.slow  # drives a case study's mesh: run by .ci/run's slow step
async def test_chat_dashboard_selects_series_the_chat_services_expose(chat_mesh):
    series = services_series()
    assert_selects_exposed(CHAT_DASHBOARD, lookup(series))
    for sample, (label, values) in CHAT_EVENTS.items():
        seen = {labels.get(label) for labels in series.get(sample, [])}
        assert values <= seen, f"{sample}: {label} {sorted(values - seen)} not exposed after the drive (seen: {sorted(seen)})"
    assert series.get("casemesh_chat_presence_dropped_total"), "the session no gateway holds was not dropped"
    # Connect's handling time is a session's length and its status how the session ended: no duration or error panel
    # counts it (each names a unary method or leaves Connect out).
    assert_streams_left_out(CHAT_DASHBOARD, {"Connect"}, ("MatchOp.NotEqual", "Connect"))


#: Label values the collab drive must produce (the dashboard's by-label panels have something to show).
COLLAB_EVENTS = {
    "casemesh_collab_local_updates_total": ("outcome", {"acked", "duplicate", "rejected"}),
    "casemesh_collab_sessions_ended_total": ("reason", {"client_closed"}),
    "casemesh_collab_awareness_frames_total": ("direction", {"in", "out"}),
    "casemesh_collab_updates_total": ("duplicate", {"yes", "no"}),
}


@pytest.mark.slow  # drives a case study's mesh: run by .ci/run's slow step
async def test_collab_dashboard_selects_series_the_collab_services_expose(collab_mesh):
    series = services_series()
    assert_selects_exposed(COLLAB_DASHBOARD, lookup(series))
    for sample, (label, values) in COLLAB_EVENTS.items():
        seen = {labels.get(label) for labels in series.get(sample, [])}
        assert values <= seen, f"{sample}: {label} {sorted(values - seen)} not exposed after the drive (seen: {sorted(seen)})"
    # Edit and Watch are streams: their handling time is a session's length, their status how it ended; no duration or
    # error panel counts them.
    assert_streams_left_out(COLLAB_DASHBOARD, {"Edit", "Watch"}, ("MatchOp.NotRe", "Edit|Watch"))


#: Series the live drive must move, as (sample, label, values): each value's series grows during one drive (``None``: the
#: unlabelled sample). The services create every kind, reason, outcome and cache result at zero, so presence alone would
#: prove nothing. Paths a short in-process drive does not take, left at zero: viewers dropped slow (64 parts behind),
#: origin_lost or shutdown, edge resubscribes and origin watchers dropped (the origin failing or an edge falling 256 parts
#: behind), parts appended duplicate=yes (an AppendPart retry after a lost answer).
LIVE_EVENTS = (
    ("casemesh_live_edge_origin_requests_total", "kind", {"playlist", "part", "segment", "describe", "watch"}),
    ("casemesh_live_edge_coalesced_requests_total", "kind", {"playlist", "part"}),
    ("casemesh_live_edge_cache_lookups_total", "result", {"hit", "miss"}),
    ("casemesh_live_edge_viewers_dropped_total", "reason", {"not_found"}),
    ("casemesh_live_edge_parts_sent_total", None, None),
    ("casemesh_live_edge_fanout_viewers_count", None, None),
    ("casemesh_live_edge_delay_seconds_count", None, None),
    ("casemesh_live_origin_parts_appended_total", "duplicate", {"no"}),
    ("casemesh_live_origin_part_bytes_count", None, None),
    ("casemesh_live_origin_block_wait_seconds_count", "kind", {"playlist", "part"}),
    ("casemesh_live_origin_playlist_renders_total", "cache", {"hit", "miss"}),
    ("casemesh_live_ingest_chunks_received_total", None, None),
    ("casemesh_live_ingest_chunk_bytes_received_total", None, None),
    ("casemesh_live_ingest_parts_appended_total", "duplicate", {"no"}),
    ("casemesh_live_ingest_publishes_ended_total", "code", {"OK", "ABORTED"}),
    ("casemesh_live_ingest_streams_created_total", None, None),
    ("casemesh_live_ingest_packaging_delay_seconds_count", None, None),
    ("casemesh_live_ingest_append_seconds_count", None, None),
    ("casemesh_live_chat_messages_total", "outcome", {"delivered", "blocked", "rate_limited", "refused"}),
    ("casemesh_live_chat_banned_words_matched_total", None, None),
    ("casemesh_live_chat_moderation_seconds_count", None, None),
    ("casemesh_chat_push_delay_seconds_count", "kind", {"group"}),  # chat-delivery-server's series
    ("grpc_server_handled_total", "grpc_method", {"CreateStream", "GetStream", "Publish", "RegisterStream", "AppendPart",
                                                  "EndStream", "DescribeStream", "FetchPlaylist", "FetchPart",
                                                  "FetchSegment", "WatchParts", "GetPlaylist", "GetPart", "GetSegment",
                                                  "StreamParts", "OpenRoom", "PostMessage"}),
)
#: Gauges of things the drive opens and closes (viewers, subscriptions and their origin watchers, blocked requests,
#: publishers): back where they were once it is over and the edge's subscriptions stopped lingering.
LIVE_GAUGES = ("casemesh_live_edge_viewers_open", "casemesh_live_edge_subscriptions_open", "casemesh_live_origin_watchers",
               "casemesh_live_origin_blocked_requests", "casemesh_live_ingest_publishers")
#: live-edge's default subscription_grace_ms (services/live/edge/settings.py), and some slack.
LIVE_LINGER_S = 2.5


def sample_values() -> dict[tuple[str, frozenset], float]:
    """(sample name, its labels) → value, of what this process serves on /metrics."""
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for metric in text_string_to_metric_families(generate_latest(REGISTRY).decode()) for sample in metric.samples}


def summed(values: dict[tuple[str, frozenset], float], sample: str, label: str | None = None, value: str = "") -> float:
    return sum(v for (name, labels), v in values.items() if name == sample and (label is None or (label, value) in labels))


@pytest.mark.slow  # drives a case study's mesh: run by .ci/run's slow step
async def test_live_dashboard_selects_series_the_live_services_expose(live_mesh):
    series = services_series()
    assert_selects_exposed(LIVE_DASHBOARD, lookup(series))
    # Publish, StreamParts and WatchParts last as long as a broadcast, a viewer or a subscription; no duration or error
    # panel counts them.
    assert_streams_left_out(LIVE_DASHBOARD, {"Publish", "StreamParts", "WatchParts"},
                            ("MatchOp.NotRe", "Publish|StreamParts|WatchParts"))
    # A drive moves every series of LIVE_EVENTS, and leaves nothing open.
    await asyncio.sleep(LIVE_LINGER_S)  # the fixture's drive: its streams' subscriptions close
    before = sample_values()
    await _drive_live(live_mesh)
    after = sample_values()
    still = [f"{sample}{{{label}={value!r}}}" if label else sample
             for sample, label, values in LIVE_EVENTS for value in (values or [""])
             if summed(after, sample, label, value) <= summed(before, sample, label, value)]
    assert not still, f"the live drive did not move {still}"

    def opened() -> dict[str, float]:
        now = sample_values()
        return {gauge: summed(now, gauge) - summed(before, gauge) for gauge in LIVE_GAUGES
                if summed(now, gauge) != summed(before, gauge)}

    await eventually(lambda: not opened(), "the live gauges back where they were", timeout_s=LIVE_LINGER_S + 10)


#: Series the rides drive must move (as LIVE_EVENTS). Paths it does not take, left at zero: offers refused and
#: AssignDriver retried or refused (an accept of a cancelled ride, a busy driver, a retried accept), rides recovered by
#: the sweep, failed searches, sweeps, StartMatching calls and surge recomputations (a service down), and drivers expired
#: (30 s without a position). casemesh_rides_trips_tracking_errors_total is asserted neither way: rides-trips opens
#: TrackDriver without a timeout, so the mesh's 500 ms default ends it on every ride tracked longer than that.
RIDES_EVENTS = (
    ("casemesh_rides_dispatch_offers_sent_total", None, None),
    ("casemesh_rides_dispatch_offers_total", "outcome", {"accepted", "declined", "expired", "withdrawn", "lost"}),
    ("casemesh_rides_dispatch_phases_count", None, None),
    ("casemesh_rides_dispatch_matches_total", "outcome", {"matched", "no_driver", "cancelled"}),
    ("casemesh_rides_dispatch_search_seconds_count", None, None),
    ("casemesh_rides_trips_rides_total", "state", {"REQUESTED", "MATCHED", "EN_ROUTE", "IN_PROGRESS", "COMPLETED",
                                                   "CANCELLED"}),
    ("casemesh_rides_trips_assign_total", "outcome", {"won", "lost"}),
    ("casemesh_rides_trips_match_seconds_count", None, None),
    ("casemesh_rides_trips_write_seconds_count", None, None),
    ("casemesh_rides_location_updates_total", None, None),
    ("casemesh_rides_location_search_cells_count", None, None),
    ("casemesh_rides_location_search_seconds_count", None, None),
    ("casemesh_rides_location_update_delay_seconds_count", None, None),
    ("casemesh_rides_pricing_quotes_total", None, None),
    ("casemesh_rides_pricing_surge_multiplier_count", None, None),
    ("casemesh_rides_pricing_surge_recomputations_total", None, None),
    ("grpc_server_handled_total", "grpc_method", {"GetQuote", "RedeemQuote", "ListSurge", "CountAvailableDrivers",
                                                  "RequestRide", "WatchRide", "CancelRide", "UpdateTrip", "GetRide",
                                                  "AssignDriver", "ReleaseRide", "ListOpenRides", "StartMatching",
                                                  "ReceiveOffers", "AcceptOffer", "DeclineOffer", "ReportLocations",
                                                  "GetDriverPosition", "FindNearbyDrivers", "TrackDriver"}),
)
#: Gauges of what the drive opens and closes (driver streams and feeds, drivers in the index, trackers, rides being
#: matched, active rides, watchers): back where they were once it is over. (Quotes held stay until their TTL.)
RIDES_GAUGES = ("casemesh_rides_location_streams", "casemesh_rides_location_drivers",
                "casemesh_rides_location_trackers", "casemesh_rides_dispatch_feeds",
                "casemesh_rides_dispatch_rides_matching", "casemesh_rides_trips_active_rides",
                "casemesh_rides_trips_watchers")


@pytest.mark.slow  # drives a case study's mesh: run by .ci/run's slow step
async def test_rides_dashboard_selects_series_the_rides_services_expose(rides_mesh):
    series = services_series()
    assert_selects_exposed(RIDES_DASHBOARD, lookup(series))
    # Drivers' position streams and offer feeds, trackers and riders' watches last as long as a shift, a pickup or a
    # ride; no duration or error panel counts them.
    assert_streams_left_out(RIDES_DASHBOARD, {"ReportLocations", "TrackDriver", "ReceiveOffers", "WatchRide"},
                            ("MatchOp.NotRe", "ReportLocations|TrackDriver|ReceiveOffers|WatchRide"))
    # A drive moves every series of RIDES_EVENTS, and leaves nothing open.
    before = sample_values()
    await _drive_rides(rides_mesh)
    after = sample_values()
    still = [f"{sample}{{{label}={value!r}}}" if label else sample
             for sample, label, values in RIDES_EVENTS for value in (values or [""])
             if summed(after, sample, label, value) <= summed(before, sample, label, value)]
    assert not still, f"the rides drive did not move {still}"

    def opened() -> dict[str, float]:
        now = sample_values()
        return {gauge: summed(now, gauge) - summed(before, gauge) for gauge in RIDES_GAUGES
                if summed(now, gauge) != summed(before, gauge)}

    await eventually(lambda: not opened(), lambda: f"the rides gauges back where they were: {opened()}", timeout_s=10)


#: Series the proximity drive must move (as LIVE_EVENTS). Paths it does not take, left at zero: a failed group commit
#: of the geofence service (casemesh_proximity_geofence_commit_failures_total: a failing disk;
#: tests/unit/test_proximity_geofence.py makes one) and a watcher ended by the service's shutdown (the fixture's
#: teardown ends them). casemesh_proximity_places_load_seconds is set once, at start.
PROXIMITY_EVENTS = (
    ("casemesh_proximity_places_created_total", None, None),
    ("casemesh_proximity_places_deleted_total", None, None),
    ("casemesh_proximity_places_search_cells_count", "category", {"any", "restaurant"}),
    ("casemesh_proximity_places_search_hits_count", "category", {"any", "restaurant"}),
    ("casemesh_proximity_places_search_seconds_count", None, None),
    ("casemesh_proximity_places_commit_seconds_count", None, None),
    ("casemesh_proximity_tracker_positions_total", "result", {"applied", "stale"}),
    ("casemesh_proximity_tracker_batch_positions_count", None, None),
    ("casemesh_proximity_tracker_index_update_seconds_count", None, None),
    ("casemesh_proximity_tracker_cell_changes_total", None, None),
    ("casemesh_proximity_tracker_shard_changes_total", None, None),
    ("casemesh_proximity_tracker_expired_total", None, None),
    ("casemesh_proximity_tracker_geofence_seconds_count", None, None),
    ("casemesh_proximity_tracker_geofence_retries_total", None, None),
    ("casemesh_proximity_tracker_geofence_failures_total", None, None),
    ("casemesh_proximity_tracker_search_seconds_count", None, None),
    ("casemesh_proximity_tracker_search_cells_count", None, None),
    ("casemesh_proximity_geofence_events_total", "transition", {"ENTER", "EXIT"}),
    ("casemesh_proximity_geofence_event_delay_seconds_count", None, None),
    ("casemesh_proximity_geofence_positions_total", "result", {"applied", "stale"}),
    ("casemesh_proximity_geofence_candidates_count", None, None),
    ("casemesh_proximity_geofence_commit_seconds_count", None, None),
    ("casemesh_proximity_geofence_commit_batches_count", None, None),
    ("casemesh_proximity_geofence_last_sequence", None, None),
    ("casemesh_proximity_geofence_trimmed_events_total", None, None),
    ("casemesh_proximity_geofence_watchers_ended_total", "reason", {"overflow", "trimmed"}),
    ("grpc_server_handled_total", "grpc_method", {"CreatePlaces", "GetPlace", "DeletePlace", "SearchPlaces",
                                                  "StreamPositions", "GetPosition", "FindNearbyEntities",
                                                  "CreateFence", "GetFence", "DeleteFence", "WatchFenceEvents",
                                                  "EvaluatePositions"}),
)
#: Gauges of what the drive opens and closes (gateway streams, watchers, entities in the tracker's index until they
#: expire, fences and their index entries, places): back where they were once it is over. (The geofence service's
#: entities are every entity it ever evaluated; its last sequence only grows.)
PROXIMITY_GAUGES = ("casemesh_proximity_tracker_streams", "casemesh_proximity_tracker_entities",
                    "casemesh_proximity_geofence_watchers", "casemesh_proximity_geofence_fences",
                    "casemesh_proximity_geofence_index_cells", "casemesh_proximity_places_indexed")


def assert_draws_slo_twins(dashboard: str, slo_file: Path) -> None:
    """Every selector of the Prometheus-sourced SLOs of ``slo_file`` (the server-side twins) is drawn by ``dashboard``:
    one of its selectors names the same series with at least the same matchers (the same ``le`` bound, method, code)."""
    drawn = [(node.name, {(m.name, str(m.op), m.value) for m in node.matchers.matchers})
             for _, _, expr in expressions(load(dashboard)) for node in selectors(expr)]
    twins = [slo for slo in load_slos(slo_file) if isinstance(slo.total, PromQuery)]
    assert twins, f"{slo_file.name} has no Prometheus-sourced SLO"
    for slo in twins:
        for side in (slo.good, slo.total):
            for node in selectors(side.expression("1m")):
                wanted = {(m.name, str(m.op), m.value) for m in node.matchers.matchers}
                assert any(name == node.name and wanted <= matchers for name, matchers in drawn), (
                    f"{dashboard} does not draw {slo.name}'s {node.name}{{{', '.join(shown(m) for m in node.matchers.matchers)}}}")


@pytest.mark.slow  # drives a case study's mesh: run by .ci/run's slow step
async def test_proximity_dashboard_selects_series_the_proximity_services_expose(proximity_mesh):
    series = services_series()
    assert_selects_exposed(PROXIMITY_DASHBOARD, lookup(series))
    # A gateway's position stream and a watcher's event feed last as long as their client; no duration or error panel
    # counts them.
    assert_streams_left_out(PROXIMITY_DASHBOARD, {"StreamPositions", "WatchFenceEvents"},
                            ("MatchOp.NotRe", "StreamPositions|WatchFenceEvents"))
    # The panels draw the server-side twins of proximity.slo.yaml exactly (the same buckets, methods and codes).
    assert_draws_slo_twins(PROXIMITY_DASHBOARD, PROXIMITY_SLOS)
    # A drive moves every series of PROXIMITY_EVENTS, and leaves nothing open.
    before = sample_values()
    await _drive_proximity(proximity_mesh)
    after = sample_values()
    still = [f"{sample}{{{label}={value!r}}}" if label else sample
             for sample, label, values in PROXIMITY_EVENTS for value in (values or [""])
             if summed(after, sample, label, value) <= summed(before, sample, label, value)]
    assert not still, f"the proximity drive did not move {still}"
    moved = {gauge: summed(after, gauge) - summed(before, gauge) for gauge in PROXIMITY_GAUGES
             if summed(after, gauge) != summed(before, gauge)}
    assert not moved, f"the proximity gauges are not back where they were: {moved}"


#: Series the food drive must move (as LIVE_EVENTS). Paths it does not take, left at zero: dispatch decisions refused
#: (a courier holding a batch dispatch did not know of) and unavailable (the order service not answering), batch
#: evaluations no_saving and too_late, feed drops, failed searches and sweeps, orders recovered by the sweep (a dispatch
#: restart, or a lost DispatchOrder), AssignCourier retried or refused, failed surge recomputations and DispatchOrder
#: calls (a service down). casemesh_food_orders_tracking_errors_total is asserted neither way: a TrackDriver stream
#: ends when its courier goes OFFLINE, which may come before or after the order service stops following it.
FOOD_EVENTS = (
    ("casemesh_food_restaurants_created_total", None, None),
    ("casemesh_food_restaurants_orders_prepared_total", None, None),
    ("casemesh_food_restaurants_orders_repeated_total", None, None),
    ("casemesh_food_restaurants_kitchen_wait_seconds_count", None, None),
    ("casemesh_food_restaurants_prep_seconds_count", None, None),
    ("casemesh_food_restaurants_commit_seconds_count", None, None),
    ("casemesh_food_orders_orders_total", "state", {"PLACED", "ASSIGNED", "PICKED_UP", "DELIVERED", "CANCELLED"}),
    ("casemesh_food_orders_on_time_total", "outcome", {"on_time", "late"}),
    ("casemesh_food_orders_delivery_seconds_count", None, None),
    ("casemesh_food_orders_lateness_seconds_count", None, None),
    ("casemesh_food_orders_promise_seconds_count", None, None),
    ("casemesh_food_orders_assign_total", "outcome", {"assigned", "aborted"}),
    ("casemesh_food_orders_assign_wait_seconds_count", None, None),
    ("casemesh_food_orders_surge_multiplier_count", None, None),
    ("casemesh_food_orders_surge_recomputations_total", None, None),
    ("casemesh_food_orders_write_seconds_count", None, None),
    ("casemesh_food_dispatch_decisions_total", "outcome", {"assigned_new", "batched", "aborted", "released"}),
    ("casemesh_food_dispatch_decision_seconds_count", None, None),
    ("casemesh_food_dispatch_batch_evaluations_total", "result", {"batch"}),
    ("casemesh_food_dispatch_courier_seconds_saved_total", None, None),
    ("casemesh_food_dispatch_tick_seconds_count", None, None),
    ("casemesh_food_dispatch_search_seconds_count", None, None),
    ("casemesh_rides_location_updates_total", None, None),
    ("casemesh_rides_location_update_delay_seconds_count", None, None),
    ("grpc_server_handled_total", "grpc_method", {"CreateRestaurants", "GetRestaurant", "PrepareOrder", "PlaceOrder",
                                                  "GetOrder", "WatchOrder", "CancelOrder", "UpdateOrder", "GetSurge",
                                                  "AssignCourier", "ListOpenOrders", "ReleaseOrder", "DispatchOrder",
                                                  "ReceiveAssignments", "ReportLocations", "GetDriverPosition",
                                                  "FindNearbyDrivers", "CountAvailableDrivers", "TrackDriver"}),
)
#: FOOD_DRIVE_GAUGES and rides-location's couriers by status: back where they were once a drive is over.
FOOD_GAUGES = (*(metric._name for metric in FOOD_DRIVE_GAUGES), "casemesh_rides_location_drivers")


@pytest.mark.slow  # drives a case study's mesh: run by .ci/run's slow step
async def test_food_dashboard_selects_series_the_food_services_expose(food_mesh):
    series = services_series()
    assert_selects_exposed(FOOD_DASHBOARD, lookup(series))
    # A courier's assignment feed and a customer's WatchOrder last as long as a shift or an order; no duration or
    # error panel counts them.
    assert_streams_left_out(FOOD_DASHBOARD, {"ReceiveAssignments", "WatchOrder"},
                            ("MatchOp.NotRe", "ReceiveAssignments|WatchOrder"))
    # The panels draw the server-side twins of food.slo.yaml exactly (the same buckets, methods and codes).
    assert_draws_slo_twins(FOOD_DASHBOARD, FOOD_SLOS)
    # A drive moves every series of FOOD_EVENTS, and leaves nothing open.
    before = sample_values()
    await _drive_food(food_mesh)
    after = sample_values()
    still = [f"{sample}{{{label}={value!r}}}" if label else sample
             for sample, label, values in FOOD_EVENTS for value in (values or [""])
             if summed(after, sample, label, value) <= summed(before, sample, label, value)]
    assert not still, f"the food drive did not move {still}"
    moved = {gauge: summed(after, gauge) - summed(before, gauge) for gauge in FOOD_GAUGES
             if summed(after, gauge) != summed(before, gauge)}
    assert not moved, f"the food gauges are not back where they were: {moved}"


#: Series the payments drive must move (as LIVE_EVENTS). Paths it does not take, left at zero: an Authorize answered
#: UNAVAILABLE (no acquirer left: failover off, or both acquirers down), attempts refused by an acquirer or failed fast
#: by the mesh channel's own breaker (not_sent: it may open while psp-a is down, or not), reversals refused, keys
#: resumed for an Authorize (its call died after sending an attempt), the vault's undecryptable and unavailable, and
#: discrepancies other than unknown_reference.
PAYMENTS_EVENTS = (
    ("casemesh_payments_vault_cards_tokenized_total", "brand", {"visa", "mastercard", "amex"}),
    ("casemesh_payments_vault_detokenize_total", "outcome", {"ok", "not_found", "wrong_merchant", "invalid"}),
    ("casemesh_payments_vault_write_seconds_count", None, None),
    ("casemesh_payments_fraud_decisions_total", "decision", {"allow", "review", "block"}),
    ("casemesh_payments_fraud_rule_hits_total", "rule", {"card_velocity", "card_testing", "amount_spike",
                                                         "large_first_payment"}),
    ("casemesh_payments_fraud_score_count", None, None),
    ("casemesh_payments_fraud_repeats_total", None, None),
    ("casemesh_payments_acquirer_authorizations_total", "result", {"approved", "declined", "refused"}),
    ("casemesh_payments_acquirer_authorizations_total", "acquirer", {PSP_A, PSP_B}),
    ("casemesh_payments_acquirer_captures_total", "acquirer", {PSP_A, PSP_B}),
    ("casemesh_payments_acquirer_refunds_total", None, None),
    ("casemesh_payments_acquirer_voids_total", "kind", {"release", "tombstone"}),
    ("casemesh_payments_acquirer_repeats_total", "rpc", {"Authorize"}),
    ("casemesh_payments_acquirer_issuer_latency_seconds_count", "acquirer", {PSP_A, PSP_B}),
    ("casemesh_payments_acquirer_batches_closed_total", "acquirer", {PSP_A, PSP_B}),
    ("casemesh_payments_acquirer_write_seconds_count", None, None),
    ("casemesh_payments_gateway_payments_total", "operation", {"authorize", "capture", "void", "refund"}),
    ("casemesh_payments_gateway_payments_total", "outcome", {"approved", "declined_issuer", "declined_fraud", "ok",
                                                             "unavailable"}),
    ("casemesh_payments_gateway_authorize_seconds_count", None, None),
    ("casemesh_payments_gateway_attempts_total", "result", {"approved", "declined", "unknown"}),
    ("casemesh_payments_gateway_failovers_total", "from_acquirer", {PSP_A}),
    ("casemesh_payments_gateway_idempotent_replays_total", "operation", {"authorize", "refund"}),
    ("casemesh_payments_gateway_reversals_total", "outcome", {"reversed", "retried"}),
    ("casemesh_payments_gateway_fraud_fail_open_total", None, None),
    ("casemesh_payments_gateway_resumed_total", "outcome", {"finished"}),
    ("casemesh_payments_gateway_settlement_discrepancies_total", "kind", {"unknown_reference"}),
    ("casemesh_payments_gateway_reconciliations_total", "outcome", {"ok", "discrepancies"}),
    ("casemesh_payments_gateway_write_seconds_count", None, None),
    ("grpc_server_handled_total", "grpc_method", {"TokenizeCard", "DetokenizeCard", "ScorePayment", "Authorize",
                                                  "Capture", "Void", "Refund", "GetPayment", "Reconcile",
                                                  "CloseBatch", "GetSettlementFile"}),
    ("grpc_server_handled_total", "grpc_code", {"OK", "Aborted", "FailedPrecondition", "Unavailable", "NotFound",
                                                "InvalidArgument"}),
)
#: PAYMENTS_DRIVE_GAUGES: back where they were once a drive is over.
PAYMENTS_GAUGES = tuple(metric._name for metric in PAYMENTS_DRIVE_GAUGES)


@pytest.mark.slow  # drives a case study's mesh: run by .ci/run's slow step
async def test_payments_dashboard_selects_series_the_payment_services_expose(payments_mesh):
    series = services_series()
    assert_selects_exposed(PAYMENTS_DASHBOARD, lookup(series))
    # GetSettlementFile streams a batch's lines: no duration or error panel counts it (nor Reconcile, which settles
    # whole batches, but for its own panels).
    assert_streams_left_out(PAYMENTS_DASHBOARD, {"GetSettlementFile"}, ("MatchOp.NotRe", "GetSettlementFile|Reconcile"))
    # The panels draw the server-side twins of payments.slo.yaml exactly (the same bucket, method and codes).
    assert_draws_slo_twins(PAYMENTS_DASHBOARD, PAYMENTS_SLOS)
    # A drive moves every series of PAYMENTS_EVENTS, and leaves nothing open.
    before = sample_values()
    await _drive_payments(payments_mesh)
    after = sample_values()
    still = [f"{sample}{{{label}={value!r}}}" if label else sample
             for sample, label, values in PAYMENTS_EVENTS for value in (values or [""])
             if summed(after, sample, label, value) <= summed(before, sample, label, value)]
    assert not still, f"the payments drive did not move {still}"
    moved = {gauge: summed(after, gauge) - summed(before, gauge) for gauge in PAYMENTS_GAUGES
             if summed(after, gauge) != summed(before, gauge)}
    assert not moved, f"the payments gauges are not back where they were: {moved}"


#: Series the banking drive must move (as LIVE_EVENTS; the ledger's accounts and sequence only grow). Paths it does not
#: take, left at zero: recoveries declined (insufficient funds found by the recovery) or failed (refused), a
#: reconciliation with discrepancies (banking-ledger.locking=none).
BANKING_EVENTS = (
    ("casemesh_banking_transfers_transfers_total", "status", {"completed", "declined"}),
    ("casemesh_banking_transfers_transfers_total", "decline_reason", {"none", "insufficient_funds", "daily_limit",
                                                                      "velocity", "new_payee_amount"}),
    ("casemesh_banking_transfers_fraud_declines_total", "rule", {"daily_limit", "velocity", "new_payee_amount"}),
    ("casemesh_banking_transfers_deposits_total", None, None),
    ("casemesh_banking_transfers_idempotent_replays_total", "operation", {"transfer", "deposit"}),
    ("casemesh_banking_transfers_ledger_call_seconds_count", "method", {"OpenAccount", "PostEntry", "GetAccount"}),
    ("casemesh_banking_transfers_ledger_calls_total", "code", {"OK", "FAILED_PRECONDITION", "UNAVAILABLE"}),
    ("casemesh_banking_transfers_recoveries_total", "outcome", {"unavailable", "completed"}),
    ("casemesh_banking_transfers_write_seconds_count", None, None),
    ("casemesh_banking_ledger_entries_posted_total", None, None),
    ("casemesh_banking_ledger_idempotent_replays_total", None, None),
    ("casemesh_banking_ledger_insufficient_funds_total", None, None),
    ("casemesh_banking_ledger_lock_wait_seconds_count", "locking", {"account"}),
    ("casemesh_banking_ledger_commit_seconds_count", None, None),
    ("casemesh_banking_ledger_entries_per_commit_count", None, None),
    ("casemesh_banking_ledger_accounts", None, None),
    ("casemesh_banking_ledger_sequence", None, None),
    ("casemesh_banking_ledger_reconcile_runs_total", "outcome", {"balanced"}),
    ("grpc_server_handled_total", "grpc_method", {"OpenAccount", "Deposit", "Transfer", "GetTransfer", "PostEntry",
                                                  "GetAccount", "ListEntries", "Reconcile"}),
    ("grpc_server_handled_total", "grpc_code", {"OK", "Aborted", "FailedPrecondition", "Unavailable", "NotFound",
                                                "InvalidArgument"}),
)
#: BANKING_DRIVE_GAUGES: back where they were once a drive is over.
BANKING_GAUGES = tuple(metric._name for metric in BANKING_DRIVE_GAUGES)


@pytest.mark.slow  # drives a case study's mesh: run by .ci/run's slow step
async def test_banking_dashboard_selects_series_the_banking_services_expose(banking_mesh):
    series = services_series()
    assert_selects_exposed(BANKING_DASHBOARD, lookup(series))
    # The banking services have no streams; Reconcile reads the whole journal: every duration or error panel names one
    # method or leaves Reconcile out.
    assert_streams_left_out(BANKING_DASHBOARD, set(), ("MatchOp.NotEqual", "Reconcile"))
    # The panels draw the server-side twins of banking.slo.yaml exactly (the same buckets, methods and codes).
    assert_draws_slo_twins(BANKING_DASHBOARD, BANKING_SLOS)
    # A drive moves every series of BANKING_EVENTS, and leaves nothing open.
    before = sample_values()
    await _drive_banking(banking_mesh)
    after = sample_values()
    still = [f"{sample}{{{label}={value!r}}}" if label else sample
             for sample, label, values in BANKING_EVENTS for value in (values or [""])
             if summed(after, sample, label, value) <= summed(before, sample, label, value)]
    assert not still, f"the banking drive did not move {still}"
    moved = {gauge: summed(after, gauge) - summed(before, gauge) for gauge in BANKING_GAUGES
             if summed(after, gauge) != summed(before, gauge)}
    assert not moved, f"the banking gauges are not back where they were: {moved}"


#: Series the trading drive must move (as LIVE_EVENTS; the sequences only grow). Paths it does not take, left at zero:
#: orders answered unavailable (the engine down), subscribers dropped for falling behind (the engine's and the market
#: data's), reconnects for any reason but renewed.
TRADING_EVENTS = (
    ("casemesh_trading_gateway_orders_total", "outcome", {"placed", "replayed", "invalid", "refused", "conflict"}),
    ("casemesh_trading_gateway_risk_refusals_total", "check", {"price_band", "max_notional", "max_open_orders"}),
    ("casemesh_trading_gateway_engine_call_seconds_count", "method", {"SubmitOrder", "CancelOrder", "GetOrder"}),
    ("casemesh_trading_gateway_feed_sequence", None, None),
    ("casemesh_trading_engine_orders_accepted_total", "side", {"buy", "sell"}),
    ("casemesh_trading_engine_orders_accepted_total", "type", {"limit", "market"}),
    ("casemesh_trading_engine_trades_total", None, None),
    ("casemesh_trading_engine_traded_shares_total", None, None),
    ("casemesh_trading_engine_match_seconds_count", None, None),
    ("casemesh_trading_engine_commit_seconds_count", None, None),
    ("casemesh_trading_engine_commit_events_count", None, None),
    ("casemesh_trading_engine_ack_wait_seconds_count", None, None),
    ("casemesh_trading_engine_sequence", None, None),
    ("casemesh_trading_marketdata_messages_sent_total", "kind", {"snapshot", "trade", "depth"}),
    ("casemesh_trading_marketdata_publish_lag_seconds_count", None, None),
    ("casemesh_trading_marketdata_feed_sequence", None, None),
    ("casemesh_trading_gateway_feed_reconnects_total", "reason", {"renewed"}),
    ("casemesh_trading_marketdata_feed_reconnects_total", "reason", {"renewed"}),
    ("grpc_server_handled_total", "grpc_method", {"PlaceOrder", "CancelOrder", "GetOrder", "ListInstruments",
                                                  "SubmitOrder", "GetBook", "GetTopOfBook"}),
    ("grpc_server_handled_total", "grpc_code", {"OK", "FailedPrecondition", "NotFound", "InvalidArgument"}),
)
#: TRADING_DRIVE_GAUGES and the engine's resting orders: back where they were once a drive is over.
TRADING_GAUGES = (*(metric._name for metric in TRADING_DRIVE_GAUGES), "casemesh_trading_engine_resting_orders")


@pytest.mark.slow  # drives a case study's mesh: run by .ci/run's slow step
async def test_trading_dashboard_selects_series_the_trading_services_expose(trading_mesh):
    series = services_series()
    assert_selects_exposed(TRADING_DASHBOARD, lookup(series))
    # The engine's event stream (followed by the gateway and the market data) and a market data subscriber last as long
    # as their client: no duration or error panel counts them.
    assert_streams_left_out(TRADING_DASHBOARD, {"StreamEvents", "StreamMarketData"},
                            ("MatchOp.NotRe", "StreamEvents|StreamMarketData"))
    # The panels draw the server-side twins of trading.slo.yaml exactly (the same buckets, methods and codes).
    assert_draws_slo_twins(TRADING_DASHBOARD, TRADING_SLOS)
    # A drive moves every series of TRADING_EVENTS, and leaves nothing open.
    before = sample_values()
    await _drive_trading(trading_mesh)
    after = sample_values()
    still = [f"{sample}{{{label}={value!r}}}" if label else sample
             for sample, label, values in TRADING_EVENTS for value in (values or [""])
             if summed(after, sample, label, value) <= summed(before, sample, label, value)]
    assert not still, f"the trading drive did not move {still}"
    moved = {gauge: summed(after, gauge) - summed(before, gauge) for gauge in TRADING_GAUGES
             if summed(after, gauge) != summed(before, gauge)}
    assert not moved, f"the trading gauges are not back where they were: {moved}"


#: Series the e-commerce drive must move (as LIVE_EVENTS; the catalogue's products only grow). Paths it does not take,
#: left at zero: the restock compensation of a partial commit, recoveries failed or in error, expiries at start,
#: cart_full and refused SetItems.
ECOMMERCE_EVENTS = (
    ("casemesh_ecommerce_catalog_searches_total", "outcome", {"hits", "no_hits"}),
    ("casemesh_ecommerce_catalog_search_hits_count", None, None),
    ("casemesh_ecommerce_catalog_search_seconds_count", None, None),
    ("casemesh_ecommerce_catalog_created_total", None, None),
    ("casemesh_ecommerce_catalog_commit_seconds_count", None, None),
    ("casemesh_ecommerce_inventory_reservations_total", "outcome", {"held", "extended", "out_of_stock", "committed",
                                                                    "released", "expired"}),
    ("casemesh_ecommerce_inventory_reservation_expiries_total", "trigger", {"request", "sweep"}),
    ("casemesh_ecommerce_inventory_units_restocked_total", None, None),
    ("casemesh_ecommerce_inventory_commit_seconds_count", None, None),
    ("casemesh_ecommerce_inventory_writes_per_commit_count", None, None),
    ("casemesh_ecommerce_cart_set_item_total", "outcome", {"set", "removed", "out_of_stock", "not_found",
                                                          "currency_mismatch", "unavailable"}),
    ("casemesh_ecommerce_cart_release_failures_total", "kind", {"replaced", "abandoned"}),
    ("casemesh_ecommerce_orders_checkouts_total", "outcome", {"confirmed", "failed"}),
    ("casemesh_ecommerce_orders_checkouts_total", "reason", {"none", "out_of_stock", "reservation_expired",
                                                            "payment_declined"}),
    ("casemesh_ecommerce_orders_saga_step_seconds_count", "step", {"reserve", "pay", "commit", "capture",
                                                                   "compensate"}),
    ("casemesh_ecommerce_orders_compensations_total", "kind", {"release", "void"}),
    ("casemesh_ecommerce_orders_idempotent_replays_total", None, None),
    ("casemesh_ecommerce_orders_recovered_total", "outcome", {"unavailable", "confirmed"}),
    ("casemesh_ecommerce_orders_dependency_call_seconds_count", "method", {"GetCart", "Reserve", "Authorize", "Commit",
                                                                          "Capture", "Release", "Void", "ClearLines"}),
    ("casemesh_ecommerce_orders_dependency_calls_total", "code", {"OK", "FAILED_PRECONDITION", "UNAVAILABLE"}),
    ("casemesh_ecommerce_orders_write_seconds_count", None, None),
    ("grpc_server_handled_total", "grpc_method", {"CreateProduct", "GetProduct", "ListProducts", "SearchProducts",
                                                  "Restock", "GetStock", "Reserve", "Commit", "Release", "Audit",
                                                  "SetItem", "GetCart", "ClearLines", "Checkout", "GetOrder",
                                                  "ListOrders"}),
    ("grpc_server_handled_total", "grpc_code", {"OK", "FailedPrecondition", "Aborted", "NotFound", "InvalidArgument",
                                                "Unavailable"}),
)
#: ECOMMERCE_DRIVE_GAUGES: back where they were once a drive is over.
ECOMMERCE_GAUGES = tuple(metric._name for metric in ECOMMERCE_DRIVE_GAUGES)


@pytest.mark.slow  # drives a case study's mesh: run by .ci/run's slow step
async def test_ecommerce_dashboard_selects_series_the_ecommerce_services_expose(ecommerce_mesh):
    series = services_series()
    assert_selects_exposed(ECOMMERCE_DASHBOARD, lookup(series))
    # The shop has no streams; Audit reads every reservation: every duration or error panel names one method or
    # leaves Audit out.
    assert_streams_left_out(ECOMMERCE_DASHBOARD, set(), ("MatchOp.NotEqual", "Audit"))
    # The panels draw the server-side twins of ecommerce.slo.yaml exactly (the same buckets, methods and codes).
    assert_draws_slo_twins(ECOMMERCE_DASHBOARD, ECOMMERCE_SLOS)
    # A drive moves every series of ECOMMERCE_EVENTS, and leaves nothing open.
    before = sample_values()
    await _drive_ecommerce(ecommerce_mesh)
    after = sample_values()
    still = [f"{sample}{{{label}={value!r}}}" if label else sample
             for sample, label, values in ECOMMERCE_EVENTS for value in (values or [""])
             if summed(after, sample, label, value) <= summed(before, sample, label, value)]
    assert not still, f"the e-commerce drive did not move {still}"
    moved = {gauge: summed(after, gauge) - summed(before, gauge) for gauge in ECOMMERCE_GAUGES
             if summed(after, gauge) != summed(before, gauge)}
    assert not moved, f"the e-commerce gauges are not back where they were: {moved}"


#: Series the hotel drive must move (as LIVE_EVENTS). Paths it does not take, left at zero: recoveries that finish a
#: cancellation or a check-in, or are refused.
HOTEL_EVENTS = (
    ("casemesh_hotel_booking_bookings_total", "outcome", {"confirmed", "failed"}),
    ("casemesh_hotel_booking_bookings_total", "reason", {"none", "no_availability", "payment_declined",
                                                        "contention"}),
    ("casemesh_hotel_booking_conflict_retries_count", None, None),
    ("casemesh_hotel_booking_conflict_retries_sum", None, None),
    ("casemesh_hotel_booking_step_seconds_count", "step", {"availability", "hold", "authorize", "confirm",
                                                           "release_hold", "void", "capture"}),
    ("casemesh_hotel_booking_compensations_total", "kind", {"release_hold", "void_payment"}),
    ("casemesh_hotel_booking_cancellations_total", None, None),
    ("casemesh_hotel_booking_check_ins_total", None, None),
    ("casemesh_hotel_booking_recovered_total", "outcome", {"unavailable", "confirmed"}),
    ("casemesh_hotel_booking_idempotent_replays_total", None, None),
    ("casemesh_hotel_booking_dependency_calls_total", "code", {"OK", "ABORTED", "FAILED_PRECONDITION",
                                                              "UNAVAILABLE"}),
    ("casemesh_hotel_booking_write_seconds_count", None, None),
    ("casemesh_hotel_inventory_holds_total", "outcome", {"held", "no_availability", "conflict", "confirmed",
                                                         "released", "expired"}),
    ("casemesh_hotel_inventory_lock_wait_seconds_count", None, None),
    ("casemesh_hotel_inventory_version_conflicts_total", None, None),
    ("casemesh_hotel_inventory_write_seconds_count", None, None),
    ("casemesh_hotel_inventory_commit_seconds_count", None, None),
    ("casemesh_hotel_inventory_writes_per_commit_count", None, None),
    ("grpc_server_handled_total", "grpc_method", {"AddRoomType", "GetAvailability", "HoldRooms", "ConfirmHold",
                                                  "ReleaseHold", "GetHold", "Audit", "CreateBooking", "GetBooking",
                                                  "CancelBooking", "CheckIn"}),
    ("grpc_server_handled_total", "grpc_code", {"OK", "FailedPrecondition", "Aborted", "NotFound", "InvalidArgument",
                                                "Unavailable"}),
)
#: HOTEL_DRIVE_GAUGES: back where they were once a drive is over.
HOTEL_GAUGES = tuple(metric._name for metric in HOTEL_DRIVE_GAUGES)


@pytest.mark.slow  # drives a case study's mesh: run by .ci/run's slow step
async def test_hotel_dashboard_selects_series_the_hotel_services_expose(hotel_mesh):
    series = services_series()
    assert_selects_exposed(HOTEL_DASHBOARD, lookup(series))
    # The hotel services have no streams; Audit reads every room-night: every duration or error panel names one method
    # or leaves Audit out.
    assert_streams_left_out(HOTEL_DASHBOARD, set(), ("MatchOp.NotEqual", "Audit"))
    # The panels draw the server-side twins of hotel.slo.yaml exactly (the same buckets, methods and codes).
    assert_draws_slo_twins(HOTEL_DASHBOARD, HOTEL_SLOS)
    # Both lock modes have their gauge series (the one started last is 1).
    assert {labels["lock_mode"] for labels in series["casemesh_hotel_inventory_lock_mode"]} == {"pessimistic",
                                                                                               "optimistic"}
    # A drive moves every series of HOTEL_EVENTS, and leaves nothing open.
    before = sample_values()
    await _drive_hotel(hotel_mesh)
    after = sample_values()
    still = [f"{sample}{{{label}={value!r}}}" if label else sample
             for sample, label, values in HOTEL_EVENTS for value in (values or [""])
             if summed(after, sample, label, value) <= summed(before, sample, label, value)]
    assert not still, f"the hotel drive did not move {still}"
    moved = {gauge: summed(after, gauge) - summed(before, gauge) for gauge in HOTEL_GAUGES
             if summed(after, gauge) != summed(before, gauge)}
    assert not moved, f"the hotel gauges are not back where they were: {moved}"


#: Series the crawler drive must move (as LIVE_EVENTS). Paths it does not take, left at zero: fetches with no HTTP
#: answer (error), pages the indexer refused.
CRAWLER_EVENTS = (
    ("casemesh_crawler_fetches_total", "outcome", {"200", "404", "503", "robots_txt"}),
    ("casemesh_crawler_politeness_wait_seconds_count", None, None),
    ("casemesh_crawler_robots_blocked_total", None, None),
    ("casemesh_crawler_duplicates_total", "kind", {"exact", "near"}),
    ("casemesh_crawler_pages_indexed_total", None, None),
    ("casemesh_crawler_crawls_total", "state", {"running", "done", "cancelled"}),
    ("casemesh_crawler_web_fetches_total", "resource", {"page", "robots"}),
    ("casemesh_crawler_web_fetches_total", "status", {"200", "404", "503"}),
    ("casemesh_crawler_web_violations_total", "kind", {"robots", "politeness", "duplicate"}),
    ("casemesh_crawler_web_delayed_fetches_total", None, None),
    ("grpc_server_handled_total", "grpc_method", {"StartCrawl", "GetCrawl", "CancelCrawl", "Fetch", "GetWeb", "Audit"}),
    ("grpc_client_handled_total", "grpc_method", {"Fetch", "IndexPage"}),
)
#: CRAWLER_DRIVE_GAUGES: back at zero once a drive is over.
CRAWLER_GAUGES = tuple(metric._name for metric in CRAWLER_DRIVE_GAUGES)


@pytest.mark.slow  # drives a case study's mesh: run by .ci/run's slow step
async def test_crawler_dashboard_selects_series_the_crawler_services_expose(crawler_mesh):
    series = services_series()
    assert_selects_exposed(CRAWLER_DASHBOARD, lookup(series))
    # The panels draw the server-side twins of crawler.slo.yaml exactly (the same buckets, methods, codes and kinds).
    assert_draws_slo_twins(CRAWLER_DASHBOARD, CRAWLER_SLOS)
    # A drive moves every series of CRAWLER_EVENTS, and leaves nothing running.
    before = sample_values()
    await _drive_crawler(crawler_mesh)
    after = sample_values()
    still = [f"{sample}{{{label}={value!r}}}" if label else sample
             for sample, label, values in CRAWLER_EVENTS for value in (values or [""])
             if summed(after, sample, label, value) <= summed(before, sample, label, value)]
    assert not still, f"the crawler drive did not move {still}"
    moved = {gauge: summed(after, gauge) for gauge in CRAWLER_GAUGES if summed(after, gauge)}
    assert not moved, f"the crawler gauges are not back at zero: {moved}"


#: Series the ads drive must move (as LIVE_EVENTS). Paths it does not take, left at zero: decisions UNAVAILABLE, a
#: reservation key reused or unwritten, failed ListCampaigns polls.
ADS_EVENTS = (
    ("casemesh_ads_server_decisions_total", "outcome",
     {"served", "repeated", "no_candidates", "budget", "frequency_capped"}),
    ("casemesh_ads_server_candidates_count", None, None),
    ("casemesh_ads_server_bidders_count", None, None),
    ("casemesh_ads_server_auction_attempts_count", None, None),
    ("casemesh_ads_server_decide_phase_seconds_count", "phase", {"retrieve", "filter", "reserve", "charge", "log"}),
    ("casemesh_ads_server_decide_seconds_count", None, None),
    ("casemesh_ads_server_clicks_total", "first", {"true", "false"}),
    ("casemesh_ads_server_dependency_calls_total", "method", {"CheckEligibility", "GetCounts", "Reserve", "Charge"}),
    ("casemesh_ads_server_commit_seconds_count", None, None),
    ("casemesh_ads_campaigns_writes_total", "kind", {"create", "state"}),
    ("casemesh_ads_campaigns_commit_seconds_count", None, None),
    ("casemesh_ads_budget_charges_total", "outcome", {"charged", "repeated", "budget_exhausted", "paced", "paused"}),
    ("casemesh_ads_budget_spent_milli_minor_total", None, None),
    ("casemesh_ads_budget_pacing_throttles_total", None, None),
    ("casemesh_ads_budget_commit_seconds_count", None, None),
    ("casemesh_ads_frequency_reserves_total", "outcome", {"reserved", "capped"}),
    ("casemesh_ads_frequency_releases_total", None, None),
    ("casemesh_ads_frequency_commit_seconds_count", None, None),
    ("grpc_server_handled_total", "grpc_method", {"Decide", "RecordClick", "CreateCampaign", "SetCampaignState",
                                                  "ListCampaigns", "CheckEligibility", "Charge", "GetSpend",
                                                  "GetCounts", "Reserve", "Release"}),
)


@pytest.mark.slow  # drives a case study's mesh: run by .ci/run's slow step
async def test_ads_dashboard_selects_series_the_ads_services_expose(ads_mesh):
    series = services_series()
    assert_selects_exposed(ADS_DASHBOARD, lookup(series))
    # The panels draw the server-side twins of ads.slo.yaml exactly (the same bucket, method and code).
    assert_draws_slo_twins(ADS_DASHBOARD, ADS_SLOS)
    # A drive moves every series of ADS_EVENTS.
    before = sample_values()
    await _drive_ads(ads_mesh)
    after = sample_values()
    still = [f"{sample}{{{label}={value!r}}}" if label else sample
             for sample, label, values in ADS_EVENTS for value in (values or [""])
             if summed(after, sample, label, value) <= summed(before, sample, label, value)]
    assert not still, f"the ads drive did not move {still}"


#: Series the moderation drive must move (as LIVE_EVENTS). Paths it does not take, left at zero: Classify failing,
#: SubmitItem refused for a full backlog.
MODERATION_EVENTS = (
    ("casemesh_moderation_items_routed_total", "route", {"auto_approved", "auto_removed", "review"}),
    ("casemesh_moderation_time_to_decision_seconds_count", "route", {"auto_approved", "auto_removed", "review"}),
    ("casemesh_moderation_review_turnaround_seconds_count", "kind", {"first", "appeal"}),
    ("casemesh_moderation_verdicts_applied_total", "kind", {"first", "appeal"}),
    ("casemesh_moderation_verdicts_applied_total", "verdict", {"approve", "remove"}),
    ("casemesh_moderation_appeals_total", None, None),
    ("casemesh_moderation_pipeline_commit_seconds_count", None, None),
    ("casemesh_moderation_pipeline_writes_per_commit_count", None, None),
    ("casemesh_moderation_classifier_seconds_count", None, None),
    ("casemesh_moderation_classifier_probability_count", None, None),
    ("casemesh_moderation_review_queue_wait_seconds_count", "kind", {"first", "appeal"}),
    ("casemesh_moderation_review_tasks_total", "event", {"enqueued", "claimed", "completed", "lease_expired"}),
    ("casemesh_moderation_review_commit_seconds_count", None, None),
    ("casemesh_moderation_review_writes_per_commit_count", None, None),
    ("grpc_server_handled_total", "grpc_method", {"SubmitItem", "AwaitDecision", "GetItem", "AppealDecision",
                                                  "ListAuditLog", "Classify", "Enqueue", "PullVerdicts", "ClaimTask",
                                                  "CompleteTask", "GetQueueStats"}),
    ("grpc_server_handled_total", "grpc_code", {"OK", "InvalidArgument", "FailedPrecondition"}),
)


@pytest.mark.slow  # drives a case study's mesh: run by .ci/run's slow step
async def test_moderation_dashboard_selects_series_the_moderation_services_expose(moderation_mesh):
    series = services_series()
    assert_selects_exposed(MODERATION_DASHBOARD, lookup(series))
    # The panels draw the server-side twins of moderation.slo.yaml exactly (the same buckets, routes and kinds).
    assert_draws_slo_twins(MODERATION_DASHBOARD, MODERATION_SLOS)
    # The classifier's fit at start is exposed.
    assert series["casemesh_moderation_classifier_held_out_auc"]
    # A drive moves every series of MODERATION_EVENTS, and leaves nothing waiting between stages.
    before = sample_values()
    await _drive_moderation(moderation_mesh)
    after = sample_values()
    still = [f"{sample}{{{label}={value!r}}}" if label else sample
             for sample, label, values in MODERATION_EVENTS for value in (values or [""])
             if summed(after, sample, label, value) <= summed(before, sample, label, value)]
    assert not still, f"the moderation drive did not move {still}"


#: Series the search drive must move (as LIVE_EVENTS). Paths it does not take, left at zero: a rebuild after the start
#: or a failed one, a page its shard refused, a rank push or query log send that failed, queries dropped.
SEARCH_EVENTS = (
    ("casemesh_search_query_shard_calls_total", "phase", {"statistics", "search"}),
    ("casemesh_search_query_shard_calls_total", "outcome", {"ok", "deadline", "error"}),
    ("casemesh_search_query_partial_results_total", None, None),
    ("casemesh_search_query_shards_answered_count", None, None),
    ("casemesh_search_query_terms_count", None, None),
    ("casemesh_search_query_log_queries_total", "outcome", {"sent"}),
    ("casemesh_search_shard_postings_scanned_count", None, None),
    ("casemesh_search_shard_matched_pages_count", None, None),
    ("casemesh_search_indexer_pages_indexed_total", "created", {"true", "false"}),
    ("casemesh_search_indexer_pagerank_pass_seconds_count", None, None),
    ("casemesh_search_indexer_commit_seconds_count", None, None),
    ("casemesh_search_indexer_writes_per_commit_count", None, None),
    ("casemesh_search_autocomplete_rebuild_seconds_count", None, None),
    ("casemesh_search_autocomplete_queries_total", "outcome", {"counted"}),
    ("grpc_server_handled_total", "grpc_method", {"IndexPage", "GetPage", "ComputePageRank", "GetIndexStats", "PutPage",
                                                  "SetPageRanks", "GetTermStatistics", "SearchShard", "GetShardInfo",
                                                  "Search", "Suggest", "RecordQueries"}),
    ("grpc_server_handled_total", "grpc_code", {"OK", "InvalidArgument", "Internal"}),
)
#: SEARCH_DRIVE_GAUGES: back where they were once a drive is over.
SEARCH_GAUGES = tuple(metric._name for metric in SEARCH_DRIVE_GAUGES)


@pytest.mark.slow  # drives a case study's mesh: run by .ci/run's slow step
async def test_search_dashboard_selects_series_the_search_services_expose(search_mesh):
    series = services_series()
    assert_selects_exposed(SEARCH_DASHBOARD, lookup(series))
    # ScanShard streams a shard's rebuild: every duration or error panel names one method or leaves it out.
    assert_streams_left_out(SEARCH_DASHBOARD, {"ScanShard"}, ("MatchOp.NotEqual", "ScanShard"))
    # The panels draw the server-side twins of search.slo.yaml exactly (the same buckets, methods and codes).
    assert_draws_slo_twins(SEARCH_DASHBOARD, SEARCH_SLOS)
    # Every shard has its pages and terms series; the shards were rebuilt at start.
    shards = SEARCH_SETTINGS["search-shards"]["shards"]
    assert {labels["shard"] for labels in series["casemesh_search_shard_pages"]} == {str(s) for s in range(shards)}
    assert {labels["shard"] for labels in series["casemesh_search_shard_rebuild_seconds"]} == {
        str(s) for s in range(shards)}
    # A drive moves every series of SEARCH_EVENTS, and leaves nothing open.
    before = sample_values()
    await _drive_search(search_mesh)
    after = sample_values()
    still = [f"{sample}{{{label}={value!r}}}" if label else sample
             for sample, label, values in SEARCH_EVENTS for value in (values or [""])
             if summed(after, sample, label, value) <= summed(before, sample, label, value)]
    assert not still, f"the search drive did not move {still}"
    moved = {gauge: summed(after, gauge) - summed(before, gauge) for gauge in SEARCH_GAUGES
             if summed(after, gauge) != summed(before, gauge)}
    assert not moved, f"the search gauges are not back where they were: {moved}"


@pytest.mark.slow  # drives a case study's mesh: run by .ci/run's slow step
async def test_harness_dashboard_selects_series_the_harness_and_the_services_expose(harness, urlshortener_mesh, video_mesh, social_mesh,
                                                                                     photo_mesh, reco_mesh, chat_mesh, collab_mesh,
                                                                                     live_mesh, rides_mesh, proximity_mesh,
                                                                                     food_mesh, payments_mesh, banking_mesh,
                                                                                     trading_mesh, ecommerce_mesh,
                                                                                     hotel_mesh, crawler_mesh, search_mesh, ads_mesh,
                                                                                     moderation_mesh):
    collected = exposed(generate_latest(harness.metrics.registry).decode())
    services = services_series()

    def series_of(sample: str | None) -> list:
        if sample is None:
            return [*collected, *services]
        return (collected if sample.startswith(HARNESS_PREFIXES) else services).get(sample, [])

    assert_selects_exposed(HARNESS_DASHBOARD, series_of)
    # One collapsed row per shipped SLO, in file order.
    rows = [p["title"] for p in load(HARNESS_DASHBOARD)["panels"] if p["type"] == "row" and p["title"].startswith("SLO: ")]
    assert rows == [f"SLO: {slo.display_name} ({path.name})" for path in sorted(PROFILES_DIR.glob(f"*{SLO_FILE_SUFFIX}"))
                    for slo in load_slos(path)]


def family(sample: str) -> str:
    """A histogram sample name's family (``x_seconds_bucket`` → ``x_seconds``); other names unchanged."""
    return re.sub(r"_(bucket|count|sum)$", "", sample)


@pytest.mark.slow  # drives a case study's mesh: run by .ci/run's slow step
async def test_exactly_the_gRPC_histograms_carry_exemplars(harness, urlshortener_mesh, video_mesh, social_mesh, photo_mesh,
                                                           reco_mesh, chat_mesh, proximity_mesh, food_mesh,
                                                           payments_mesh, banking_mesh, trading_mesh, ecommerce_mesh,
                                                           hotel_mesh, crawler_mesh, search_mesh, ads_mesh,
                                                                                     moderation_mesh):
    # Every call was traced (CASEMESH_TRACE_RATIO=1): a histogram that can carry exemplars has some.
    used = {family(node.name) for name in dashboard_files() for _, _, expr in expressions(load(name))
            for node in selectors(expr) if node.name and node.name.endswith("_bucket")}
    with_exemplars: set[str] = set()
    for registry in (REGISTRY, harness.metrics.registry):
        for metric in parse_openmetrics(generate_openmetrics(registry).decode()):
            if any(sample.exemplar for sample in metric.samples):
                with_exemplars.add(metric.name)
    assert used & with_exemplars == EXEMPLAR_HISTOGRAMS
    assert used >= EXEMPLAR_HISTOGRAMS | {"casemesh_video_edge_origin_fetch_seconds", "casemesh_harness_rpc_latency_seconds",
                                          "casemesh_chat_push_delay_seconds", "casemesh_proximity_geofence_event_delay_seconds",
                                          "casemesh_food_dispatch_decision_seconds",
                                          "casemesh_payments_gateway_authorize_seconds",
                                          "casemesh_banking_ledger_lock_wait_seconds",
                                          "casemesh_trading_marketdata_publish_lag_seconds",
                                          "casemesh_ecommerce_orders_saga_step_seconds",
                                          "casemesh_hotel_inventory_lock_wait_seconds",
                                          "casemesh_crawler_politeness_wait_seconds",
                                          "casemesh_search_indexer_pagerank_pass_seconds",
                                          "casemesh_ads_server_decide_phase_seconds",
                                          "casemesh_moderation_review_queue_wait_seconds"}


# ---- a real Prometheus ----------------------------------------------------------------------------


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return json.loads(reply.read())


@pytest.mark.slow  # drives a case study's mesh: run by .ci/run's slow step
@pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus not installed (apt-get install -y prometheus)")
async def test_a_real_prometheus_evaluates_every_expression_and_keeps_exemplars(harness, urlshortener_mesh, video_mesh, social_mesh,
                                                                                photo_mesh, reco_mesh, chat_mesh, collab_mesh,
                                                                                live_mesh, rides_mesh, proximity_mesh,
                                                                                food_mesh, payments_mesh, banking_mesh,
                                                                                trading_mesh, ecommerce_mesh,
                                                                                hotel_mesh, crawler_mesh, search_mesh, ads_mesh,
                                                                                moderation_mesh, tmp_path):
    """A Prometheus scrapes this process (both meshes) and the harness's collector; every dashboard query answers."""
    services_server, _ = start_http_server(free_port(), addr="127.0.0.1")
    harness_address = harness.metrics.start(free_port())
    jobs = {"services": f"127.0.0.1:{services_server.server_port}", "casemesh-harness": harness_address}
    address = f"127.0.0.1:{free_port()}"
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
        # One exposition holds every mesh's series: on a busy 2-core machine it took up to 0.7 s to write, and a
        # scrape that times out marks the instant series stale (the gauges' panels then have no data).
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [target]}]} for job, target in jobs.items()],
    }))
    log = tmp_path / "prometheus.log"
    process = subprocess.Popen(
        ["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'data'}",
         f"--web.listen-address={address}", "--enable-feature=exemplar-storage"],
        stdout=subprocess.DEVNULL, stderr=log.open("wb"), stdin=subprocess.DEVNULL)
    api = f"http://{address}/api/v1"

    async def instant(query: str, at: float | None = None) -> dict:
        parameters = {"query": query} if at is None else {"query": query, "time": f"{at:.3f}"}
        return await asyncio.to_thread(_get, f"{api}/query?" + urllib.parse.urlencode(parameters))

    try:
        async def scrapes() -> float:
            """Scrapes of the job scraped least so far."""
            result = (await instant("count_over_time(up[1m])"))["data"]["result"]
            return min((float(r["value"][1]) for r in result), default=0.0) if len(result) == len(jobs) else 0.0

        deadline = time.monotonic() + 30

        async def wait_for_scrapes(count: float) -> float:
            while True:
                assert process.poll() is None, log.read_text()[-2000:]
                try:
                    seen = await scrapes()
                except OSError:  # not listening yet
                    seen = 0.0
                if seen >= count:
                    return seen
                assert time.monotonic() < deadline, f"Prometheus scraped {seen:g} times in 30 s:\n{log.read_text()[-2000:]}"
                await asyncio.sleep(0.2)

        seen = await wait_for_scrapes(2)
        # Traffic between scrapes: rates above zero.
        await _drive_urlshortener(urlshortener_mesh)
        await _drive_video(video_mesh)
        await _drive_social(social_mesh)
        await _drive_photo(photo_mesh)
        await _drive_reco(reco_mesh)
        await _drive_chat(chat_mesh)
        await _drive_collab(collab_mesh)
        await _drive_live(live_mesh)
        await _drive_rides(rides_mesh)
        await _drive_proximity(proximity_mesh)
        await _drive_food(food_mesh)
        await _drive_payments(payments_mesh)
        await _drive_banking(banking_mesh)
        await _drive_trading(trading_mesh)
        await _drive_ecommerce(ecommerce_mesh)
        await _drive_hotel(hotel_mesh)
        await _drive_crawler(crawler_mesh)
        await _drive_search(search_mesh)
        await _drive_ads(ads_mesh)
        await _drive_moderation(moderation_mesh)
        record_harness_calls(harness.stats)
        await wait_for_scrapes(seen + 2)

        for name in dashboard_files():
            for title, target, expr in expressions(load(name)):
                if "refId" not in target:
                    continue  # variable selectors: checked by the tests above
                query = as_prometheus_sees_it(expr)
                reply = await instant(query)
                assert reply["status"] == "success", f"{name}: {title}: {reply}"
                # Only panels of failures (a non-OK or non-answer code) may be empty after successful traffic.
                filters_failures = any(m.name == "grpc_code" and str(m.op) in ("MatchOp.NotEqual", "MatchOp.NotRe")
                                       for node in selectors(expr) for m in node.matchers.matchers)
                if not filters_failures:
                    assert reply["data"]["result"], f"{name}: {title}: no data for {query}"

        # Every shipped PromQL SLO (the server-side twins) counts calls of the traffic above.
        at = time.time()  # good and total of one moment: a scrape between the two queries would skew them
        for slo in shipped_slos():
            if isinstance(slo.total, PromQuery):
                values = []
                # increase() extrapolates each series to the window's edges, and limits that at the series' zero
                # point: two series of one histogram can be scaled differently when they started inside the window
                # (good 5.2 over total 4.3 was seen with a 1m window). A window far longer than the series' life
                # leaves only the half scrape interval at the start: a few percent of a run of many scrapes.
                for side in (slo.good, slo.total):
                    result = (await instant(side.expression("1h"), at))["data"]["result"]
                    values.append(float(result[0]["value"][1]) if result else 0.0)
                good, total = values
                assert total > 0 and 0 <= good <= total * 1.05, f"{slo.name}: good {good}, total {total}"

        now = time.time()
        for method in ("Shorten", "StreamSegments"):
            reply = await asyncio.to_thread(_get, f"{api}/query_exemplars?" + urllib.parse.urlencode(
                {"query": f'grpc_server_handling_seconds_bucket{{grpc_method="{method}"}}', "start": now - 120, "end": now}))
            trace_ids = {e["labels"].get("trace_id") for series in reply["data"] for e in series["exemplars"]}
            assert any(t and re.fullmatch(r"[0-9a-f]{32}", t) for t in trace_ids), (method, reply)
    finally:
        process.terminate()
        process.wait(15)
        services_server.shutdown()
        services_server.server_close()
