"""``casemesh.social.v1.TimelineService`` (topology name ``social-timeline``): hybrid fan-out home timelines.

Seed 000 (shared/seeds/000_69ff90d97cf45f9b.txt), "Social Media Feed",
"Hybrid Fan-out Implementation", and seed 003
(shared/seeds/003_1dfe16d8ccfde9ed.txt), "Read Path (Loading Feed)":

1. the reader's followees and their follower counts (SocialGraphService.ListFollowing);
2. the cached IDs pushed by the fan-out (:mod:`.fanout`, :class:`.cache.TimelineCache`);
3. the newest tweets of the followees at or above the celebrity threshold,
   pulled on read (TweetService.ListRecentTweets);
4. merged without duplicates, newest first, tweets of users no longer
   followed left out, then hydrated (TweetService.GetTweets) and, for
   RANKING_ENGAGEMENT, ranked by :func:`.ranking.engagement_score`.

The "For you" timeline (GetForYouTimeline; Twitter's second tab) is the
recommendation engine's answer served as a feed (seed 001,
shared/seeds/001_58dfc580020147d2.txt line 31, #19: candidate generation,
ranking, real-time signals): RecommendationService.GetRecommendations
(``reco-ranker``) for the reader, its item IDs read as tweet IDs, hydrated
with TweetService.GetTweets, the reader's own tweets left out, in the
engine's order. The engine never recommends what the reader interacted
with, and social-tweets sends each like to it (``record_signals``), so a
liked tweet leaves the reader's "For you" within about a flush interval.

Status codes: INVALID_ARGUMENT naming the field; FAILED_PRECONDITION when
the recommendation engine has no model yet or the topology names no
``reco-ranker`` (GetForYouTimeline); UNAVAILABLE
or DEADLINE_EXCEEDED when social-graph, social-tweets or (for
GetForYouTimeline only) reco-ranker fail. Settings:
:class:`.settings.TimelineSettings`. Metrics beyond the gRPC ones:
``casemesh_social_fanout_width`` (histogram: followers a tweet was pushed to),
``casemesh_social_fanout_celebrity_tweets_total`` (tweets not pushed),
``casemesh_social_fanout_lag_seconds`` (histogram: create time → fan-out done),
``casemesh_social_fanout_applied_sequence`` (gauge),
``casemesh_social_home_pulled_authors`` (histogram: celebrities pulled per read).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import grpc
from prometheus_client import Counter, Gauge, Histogram

from casemesh.reco.v1 import recommendations_pb2, recommendations_pb2_grpc
from casemesh.social.v1 import graph_pb2, graph_pb2_grpc
from casemesh.social.v1 import timeline_pb2 as pb
from casemesh.social.v1 import timeline_pb2_grpc as pb_grpc
from casemesh.social.v1 import tweets_pb2, tweets_pb2_grpc

from ...runtime import page_tokens
from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from ...runtime.errors import FailedPrecondition, InvalidArgument, dependency_error
from ..limits import (DEFAULT_FOR_YOU_PAGE_SIZE, DEFAULT_HOME_PAGE_SIZE, MAX_FOR_YOU_PAGE_SIZE, MAX_HOME_PAGE_SIZE,
                      TIMELINE_CAPACITY)
from ..validation import page_size, validate_user_id
from .cache import TimelineCache
from .fanout import FanoutConsumer
from .ranking import engagement_score
from .settings import TimelineSettings

log = logging.getLogger("casemesh.social.timeline")

NAME = "social-timeline"
FULL_NAME = pb.DESCRIPTOR.services_by_name["TimelineService"].full_name

FANOUT_WIDTH = Histogram("casemesh_social_fanout_width", "Followers one tweet was pushed to (fan-out on write).",
                         buckets=(0, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000))
CELEBRITY_TWEETS = Counter("casemesh_social_fanout_celebrity_tweets", "Tweets not pushed because their author is a celebrity.")
FANOUT_LAG = Histogram("casemesh_social_fanout_lag_seconds", "Seconds from a tweet's create time to the end of its fan-out.",
                       buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0))
APPLIED = Gauge("casemesh_social_fanout_applied_sequence", "Last tweet-log sequence the fan-out has applied.")
PULLED = Histogram("casemesh_social_home_pulled_authors", "Celebrity followees whose tweets one home-timeline read pulled.",
                   buckets=(0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000))

#: Followees per ListFollowing page on the read path.
FOLLOWING_PAGE = 10_000
#: The recommendation engine's topology name (GetForYouTimeline's source).
RECO_RANKER = "reco-ranker"
#: Recommendations asked for beyond the page, to make up for the reader's own tweets and vanished ones.
FOR_YOU_SLACK = 10
#: Largest tweet ID (uint64): recommended item IDs above it, or not decimal, are not tweets.
MAX_TWEET_ID = 2**64 - 1


def tweet_id_of(item_id: str) -> int | None:
    """The tweet ID a recommended item ID names (ASCII decimal, 1 to 2^64 - 1), else ``None``."""
    if item_id.isascii() and item_id.isdigit():
        value = int(item_id)
        if 0 < value <= MAX_TWEET_ID:
            return value
    return None


def tweet_ids_of(item_ids: list[str]) -> list[int]:
    """The recommended item IDs that are tweet IDs (:func:`tweet_id_of`), as integers, in order, each once."""
    found = (tweet_id_of(item) for item in item_ids)
    return list(dict.fromkeys(i for i in found if i is not None))


def _observe_fanout(width: int | None, lag_s: float) -> None:
    if width is None:
        CELEBRITY_TWEETS.inc()
    else:
        FANOUT_WIDTH.observe(width)
    FANOUT_LAG.observe(max(lag_s, 0.0))


class TimelineServicer(pb_grpc.TimelineServiceServicer):
    """Reads home timelines from the cache, the graph and the tweet store."""

    def __init__(self, cache: TimelineCache, fanout: FanoutConsumer, graph: graph_pb2_grpc.SocialGraphServiceStub,
                 tweets: tweets_pb2_grpc.TweetServiceStub, settings: TimelineSettings,
                 reco: recommendations_pb2_grpc.RecommendationServiceStub | None) -> None:
        self._cache = cache
        self._fanout = fanout
        self._graph = graph
        self._tweets = tweets
        self._reco = reco
        self._settings = settings
        self._timeout_s = settings.call_timeout_ms / 1000

    async def _following(self, user: str) -> dict[str, int]:
        """Everyone ``user`` follows → their follower count."""
        out: dict[str, int] = {}
        token = ""
        while True:
            page = await self._graph.ListFollowing(graph_pb2.ListFollowingRequest(
                user_id=user, page_size=FOLLOWING_PAGE, page_token=token), timeout=self._timeout_s)
            out.update((f.user_id, f.follower_count) for f in page.followees)
            token = page.next_page_token
            if not token:
                return out

    async def GetHomeTimeline(self, request: pb.GetHomeTimelineRequest, context: grpc.aio.ServicerContext) -> pb.GetHomeTimelineResponse:
        user = validate_user_id("user_id", request.user_id)
        size = page_size(request.page_size, default=DEFAULT_HOME_PAGE_SIZE, most=MAX_HOME_PAGE_SIZE)
        if request.ranking not in pb.Ranking.values():
            raise InvalidArgument("ranking", f"unknown value {request.ranking}")
        ranked = request.ranking == pb.RANKING_ENGAGEMENT
        kind = "home-ranked" if ranked else "home"
        cursor = page_tokens.decode(request.page_token, kind, user, {"o" if ranked else "b": int}) if request.page_token else {}

        following = await self._following(user)
        threshold = self._settings.celebrity_threshold
        celebrities = [f for f, followers in following.items() if followers >= threshold]
        PULLED.observe(len(celebrities))
        # Candidates, newest first: the whole cache (at most 800) and each celebrity's newest 800 (seed 003: keep 800).
        candidates = self._cache.newest(user, TIMELINE_CAPACITY)
        if celebrities:
            pulled = await self._tweets.ListRecentTweets(tweets_pb2.ListRecentTweetsRequest(
                author_ids=celebrities, limit_per_author=TIMELINE_CAPACITY), timeout=self._timeout_s)
            candidates = sorted(set(candidates).union(pulled.tweet_ids), reverse=True)
        if not ranked and "b" in cursor:
            candidates = [i for i in candidates if i < cursor["b"]]
        response = pb.GetHomeTimelineResponse(pulled_authors=len(celebrities))
        if ranked:
            tweets = await self._hydrate(candidates[:TIMELINE_CAPACITY], following)
            now = time.time()
            tweets.sort(key=lambda t: (-engagement_score(t.like_count, now - t.create_time.ToNanoseconds() / 1e9), -t.tweet_id))
            start = cursor.get("o", 0)
            page = tweets[start:start + size]
            if start + size < len(tweets):
                response.next_page_token = page_tokens.encode(kind, user, {"o": start + size})
        else:
            page = []
            # Hydrate a little more than a page: some IDs may be of users no longer followed.
            while candidates and len(page) < size:
                chunk, candidates = candidates[:size + 8], candidates[size + 8:]
                page.extend(await self._hydrate(chunk, following))
            more = len(page) > size or bool(candidates)
            page = page[:size]
            if more and page:
                response.next_page_token = page_tokens.encode(kind, user, {"b": page[-1].tweet_id})
        response.tweets.extend(page)
        return response

    async def GetForYouTimeline(self, request: pb.GetForYouTimelineRequest, context: grpc.aio.ServicerContext) -> pb.GetForYouTimelineResponse:
        user = validate_user_id("user_id", request.user_id)
        size = page_size(request.page_size, default=DEFAULT_FOR_YOU_PAGE_SIZE, most=MAX_FOR_YOU_PAGE_SIZE)
        if self._reco is None:
            raise FailedPrecondition(f"this mesh has no recommendation engine: the topology names no {RECO_RANKER}")
        try:
            ranked = await self._reco.GetRecommendations(recommendations_pb2.GetRecommendationsRequest(
                user_id=user, limit=min(size + FOR_YOU_SLACK, MAX_FOR_YOU_PAGE_SIZE)), timeout=self._timeout_s)
        except grpc.aio.AioRpcError as error:
            raise dependency_error(error) from None
        score_of: dict[int, float] = {}  # tweet ID -> score, in the engine's order ("007" and "7" are one tweet)
        for r in ranked.recommendations:
            tweet_id = tweet_id_of(r.item_id)
            if tweet_id is not None:
                score_of.setdefault(tweet_id, r.score)
        found = (await self._tweets.GetTweets(tweets_pb2.GetTweetsRequest(tweet_ids=list(score_of)), timeout=self._timeout_s)
                 if score_of else None)
        response = pb.GetForYouTimelineResponse(model_version=ranked.model_version, recent_signals=ranked.recent_signals)
        for tweet in found.tweets if found is not None else ():
            if tweet.author_id == user:
                continue
            response.tweets.add(tweet=tweet, score=score_of[tweet.tweet_id])
            if len(response.tweets) == size:
                break
        return response

    async def _hydrate(self, ids: list[int], following: dict[str, int]) -> list:
        """The tweets of ``ids`` (in that order) whose author ``following`` still holds."""
        if not ids:
            return []
        found = await self._tweets.GetTweets(tweets_pb2.GetTweetsRequest(tweet_ids=ids), timeout=self._timeout_s)
        return [t for t in found.tweets if t.author_id in following]

    async def GetFanoutStatus(self, request: pb.GetFanoutStatusRequest, context: grpc.aio.ServicerContext) -> pb.GetFanoutStatusResponse:
        stats = self._fanout.stats
        return pb.GetFanoutStatusResponse(applied_sequence=stats.applied_sequence, pushed_entries=stats.pushed_entries,
                                          skipped_celebrity_tweets=stats.skipped_celebrity_tweets,
                                          cached_entries=self._cache.entries_held)


class TimelineComponent:
    """The servicer, the timeline cache and the fan-out consumer that fills it."""

    def __init__(self, context: RuntimeContext) -> None:
        self.settings = context.settings(NAME, TimelineSettings)
        graph = graph_pb2_grpc.SocialGraphServiceStub(context.channel("social-graph"))
        tweets = tweets_pb2_grpc.TweetServiceStub(context.channel("social-tweets"))
        self.cache = TimelineCache(self.settings.timeline_capacity)
        self.fanout = FanoutConsumer(tweets, graph, self.cache, lambda: self.settings.celebrity_threshold,
                                     call_timeout_s=self.settings.call_timeout_ms / 1000, on_tweet=self._observed)
        # Without reco-ranker in the topology the home timeline still works; GetForYouTimeline says what is missing.
        reco = (recommendations_pb2_grpc.RecommendationServiceStub(context.channel(RECO_RANKER))
                if RECO_RANKER in context.topology.services else None)
        self.servicer = TimelineServicer(self.cache, self.fanout, graph, tweets, self.settings, reco)
        self._consumer: asyncio.Task | None = None

    def _observed(self, width: int | None, lag_s: float) -> None:
        _observe_fanout(width, lag_s)
        APPLIED.set(self.fanout.stats.applied_sequence)

    def register(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_TimelineServiceServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        """Start consuming the tweet log (from sequence 1: a restarted service rebuilds its caches from the log).

        It serves at once: until the fan-out has caught up (GetFanoutStatus),
        home timelines may miss pushed tweets that the log already holds.
        """
        self._consumer = asyncio.create_task(self.fanout.run(), name="social-timeline-fanout")

    async def stop(self) -> None:
        if self._consumer is not None:
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer


async def build(context: RuntimeContext) -> TimelineComponent:
    return TimelineComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=("social-graph", "social-tweets", RECO_RANKER), build=build,
    settings_model=TimelineSettings,
    # Home timelines do not need the recommendation engine; only GetForYouTimeline fails while it is down.
    optional_dependencies=(RECO_RANKER,),
    access=Access(public={"GetHomeTimeline", "GetForYouTimeline", "GetFanoutStatus"}),
)
