"""``casemesh.social.v1.TweetService`` (topology name ``social-tweets``): tweets, the tweet log, user timelines.

Seed 003 (shared/seeds/003_1dfe16d8ccfde9ed.txt), "Twitter Feed System",
"Write Path (Posting a Tweet)": a Snowflake ID ("Snowflake ID for Tweet
IDs": leased in blocks from idgen, :class:`~casemesh.services.idgen.id_block.IdBlockLease`),
then the tweet store, then the ``tweet-posted`` event for the fan-out
service: here the durable tweet log (:mod:`.journal`), which
TimelineService consumes with WatchTweets.

Status codes: INVALID_ARGUMENT naming the field; NOT_FOUND for a like of an
unknown tweet; UNAVAILABLE (or DEADLINE_EXCEEDED) when no tweet ID can be had
from idgen; INTERNAL when the log cannot be written (the tweet is not
acknowledged). Settings: :class:`.settings.TweetSettings`; with
``record_signals`` on, every like is also sent to the recommendation engine's
``reco-signals`` as a real-time signal (:mod:`.signals`). Metrics beyond the
gRPC ones: ``casemesh_social_tweets_logged_total``,
``casemesh_social_tweet_log_commits_total`` (tweets per commit = their ratio),
and the like signals' (:mod:`.signals`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import grpc
from prometheus_client import Counter

from casemesh.idgen.v1 import idgen_pb2, idgen_pb2_grpc
from casemesh.reco.v1 import signals_pb2_grpc
from casemesh.social.v1 import tweet_pb2
from casemesh.social.v1 import tweets_pb2 as pb
from casemesh.social.v1 import tweets_pb2_grpc as pb_grpc

from ...idgen.id_block import IdBlockLease, NoIdsLeased, no_id_status
from ...runtime import page_tokens
from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from ...runtime.errors import InvalidArgument
from ...runtime.topology import TopologyError
from ..limits import TIMELINE_CAPACITY
from ..validation import page_size, validate_text, validate_tweet_ids, validate_user_id
from .journal import TweetJournal
from .settings import TweetSettings
from .signals import RECO_SIGNALS, LikeSignals
from .store import TweetRecord, TweetStore

log = logging.getLogger("casemesh.social.tweets")

NAME = "social-tweets"
FULL_NAME = pb.DESCRIPTOR.services_by_name["TweetService"].full_name

LOGGED = Counter("casemesh_social_tweets_logged", "Tweets committed to the tweet log.")
COMMITS = Counter("casemesh_social_tweet_log_commits", "Group commits (fsyncs) of the tweet log.")

#: ListRecentTweets: most authors in one call.
MAX_RECENT_AUTHORS = 5_000
#: WatchTweets batches: 0 means 500; at most 5,000.
DEFAULT_WATCH_BATCH = 500
MAX_WATCH_BATCH = 5_000
#: ListUserTweets page size default.
DEFAULT_USER_PAGE = 50


def tweet_message(record: TweetRecord) -> tweet_pb2.Tweet:
    """The contract's Tweet of a stored record."""
    tweet = tweet_pb2.Tweet(tweet_id=record.tweet_id, author_id=record.author_id, text=record.text,
                            like_count=len(record.likers))
    tweet.create_time.FromNanoseconds(record.create_time_ns)
    return tweet


class TweetServicer(pb_grpc.TweetServiceServicer):
    """Validates, then posts to or reads the :class:`TweetStore`."""

    def __init__(self, store: TweetStore, ids: IdBlockLease, signals: LikeSignals | None = None) -> None:
        self._store = store
        self._ids = ids
        self._signals = signals

    async def PostTweet(self, request: pb.PostTweetRequest, context: grpc.aio.ServicerContext) -> pb.PostTweetResponse:
        author = validate_user_id("author_id", request.author_id)
        text = validate_text(request.text)
        try:
            tweet_id = await self._ids.next_id()
        except (grpc.aio.AioRpcError, NoIdsLeased) as error:
            code, why = no_id_status(error)
            await context.abort(code, f"no tweet ID: {why}")
        try:
            entry = await self._store.post(tweet_id, author, text, time.time_ns())
        except Exception as error:  # noqa: BLE001 - OSError, sqlite3.Error: not durable, so not acknowledged
            await context.abort(grpc.StatusCode.INTERNAL, f"the tweet log could not be written: {error}")
        LOGGED.inc()
        record = self._store.get([entry.tweet_id])[0]
        return pb.PostTweetResponse(tweet=tweet_message(record), sequence=entry.sequence)

    async def GetTweets(self, request: pb.GetTweetsRequest, context: grpc.aio.ServicerContext) -> pb.GetTweetsResponse:
        ids = validate_tweet_ids(request.tweet_ids, TIMELINE_CAPACITY)
        return pb.GetTweetsResponse(tweets=[tweet_message(r) for r in self._store.get(ids)])

    async def ListUserTweets(self, request: pb.ListUserTweetsRequest, context: grpc.aio.ServicerContext) -> pb.ListUserTweetsResponse:
        author = validate_user_id("author_id", request.author_id)
        size = page_size(request.page_size, default=DEFAULT_USER_PAGE, most=TIMELINE_CAPACITY)
        before = page_tokens.decode(request.page_token, "user-tweets", author, {"b": int})["b"] if request.page_token else None
        page = self._store.user_tweets(author, before, size + 1)
        more = len(page) > size
        page = page[:size]
        token = page_tokens.encode("user-tweets", author, {"b": page[-1].tweet_id}) if more else ""
        return pb.ListUserTweetsResponse(tweets=[tweet_message(r) for r in page], next_page_token=token)

    async def ListRecentTweets(self, request: pb.ListRecentTweetsRequest, context: grpc.aio.ServicerContext) -> pb.ListRecentTweetsResponse:
        if not request.author_ids:
            raise InvalidArgument("author_ids", "is required (at least one author)")
        if len(request.author_ids) > MAX_RECENT_AUTHORS:
            raise InvalidArgument("author_ids", f"has {len(request.author_ids):,} authors; at most {MAX_RECENT_AUTHORS:,}")
        for i, author in enumerate(request.author_ids):
            validate_user_id(f"author_ids[{i}]", author)
        if not 1 <= request.limit_per_author <= TIMELINE_CAPACITY:
            raise InvalidArgument("limit_per_author", f"must be 1 to {TIMELINE_CAPACITY}, not {request.limit_per_author}")
        return pb.ListRecentTweetsResponse(tweet_ids=self._store.recent(list(request.author_ids), request.limit_per_author))

    async def LikeTweet(self, request: pb.LikeTweetRequest, context: grpc.aio.ServicerContext) -> pb.LikeTweetResponse:
        if request.tweet_id == 0:
            raise InvalidArgument("tweet_id", "is required (not 0)")
        user = validate_user_id("user_id", request.user_id)
        count = await self._store.like(request.tweet_id, user)
        if self._signals is not None:
            self._signals.add(user, request.tweet_id)
        return pb.LikeTweetResponse(like_count=count)

    async def WatchTweets(self, request: pb.WatchTweetsRequest, context: grpc.aio.ServicerContext) -> AsyncIterator[pb.WatchTweetsResponse]:
        if request.from_sequence == 0:
            raise InvalidArgument("from_sequence", "must be at least 1 (1: the whole log)")
        batch = page_size(request.max_batch, default=DEFAULT_WATCH_BATCH, most=MAX_WATCH_BATCH)
        async for entries in self._store.watch(request.from_sequence, batch):
            response = pb.WatchTweetsResponse(log_end_sequence=self._store.last_sequence)
            for e in entries:
                logged = response.entries.add(sequence=e.sequence, tweet_id=e.tweet_id, author_id=e.author_id)
                logged.create_time.FromNanoseconds(e.create_time_ns)
            yield response


class TweetComponent:
    """The servicer, the store and its journal, and the Snowflake ID lease."""

    def __init__(self, context: RuntimeContext) -> None:
        settings = context.settings(NAME, TweetSettings)
        idgen = idgen_pb2_grpc.IdGeneratorServiceStub(context.channel("idgen"))

        async def lease(count: int) -> list[tuple[int, int]]:
            response = await idgen.LeaseIds(idgen_pb2.LeaseIdsRequest(count=count, layout=idgen_pb2.ID_LAYOUT_SNOWFLAKE))
            return [(r.start, r.count) for r in response.ranges]

        self.journal = TweetJournal(context.data_dir(NAME)) if settings.durable else None
        self.store = TweetStore(self.journal, settings.max_commit_batch, on_commit=self._committed)
        self.ids = IdBlockLease(lease, block_size=settings.id_block_size, low_water=max(1, settings.id_block_size // 4))
        self.signals = None
        if settings.record_signals:
            if RECO_SIGNALS not in context.topology.services:
                raise TopologyError(f"settings.{NAME}.record_signals: needs {RECO_SIGNALS} in the topology (the "
                                    f"recommendation engine the likes are sent to)")
            self.signals = LikeSignals(signals_pb2_grpc.SignalServiceStub(context.channel(RECO_SIGNALS)), settings)
        self.servicer = TweetServicer(self.store, self.ids, self.signals)

    @staticmethod
    def _committed(tweets: int) -> None:
        COMMITS.inc()

    def register(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_TweetServiceServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        await self.store.start()
        if self.signals is not None:
            await self.signals.start()

    async def stop(self) -> None:
        await self.ids.aclose()
        if self.signals is not None:
            unsent = await self.signals.stop()
            if unsent:
                log.error("%d like signals could not be delivered to %s at shutdown", unsent, RECO_SIGNALS)
        await self.store.stop()
        if self.journal is not None:
            self.journal.close()


async def build(context: RuntimeContext) -> TweetComponent:
    return TweetComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=("idgen", RECO_SIGNALS), build=build, settings_model=TweetSettings,
    # Likes are acknowledged while reco-signals is down (their signals wait in the buffer); it is called only with
    # the record_signals setting on.
    optional_dependencies=(RECO_SIGNALS,),
    access=Access(public={"PostTweet", "GetTweets", "ListUserTweets", "LikeTweet"},
                  # The fan-out (the log) and the celebrity pull are the timeline service's.
                  internal={"WatchTweets": ("social-timeline",), "ListRecentTweets": ("social-timeline",)}),
)
