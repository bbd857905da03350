"""Fan-out on write, as a consumer of the tweet log (seed 003, "Fan-out service consumes event").

The consumer follows TweetService.WatchTweets from the sequence after the
last one it applied. For each logged tweet it asks SocialGraphService for
the author's followers (ListFollowers, every page):

- fewer followers than ``celebrity_threshold``: the tweet ID is pushed into
  every follower's :class:`~.cache.TimelineCache` (seed 000, "Regular users:
  Fan-out on write"; seed 003: ``fanOutToFollowers``);
- ``celebrity_threshold`` followers or more: nothing is pushed; readers pull
  the author's tweets (seed 000, "Celebrities (>10K followers): Fan-out on
  read"; seed 003: ``markUserAsHighProfile``).

Delivery is at least once and the cache makes it exactly once: a failed
ListFollowers is retried for the same tweet (with backoff) and never skipped,
a broken stream is reopened from the first unapplied sequence, and a
timeline ignores an ID it already holds. A restarted TimelineService starts
from sequence 1 and so rebuilds every timeline from the durable log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from casemesh.social.v1 import graph_pb2, graph_pb2_grpc, tweets_pb2, tweets_pb2_grpc

from .cache import TimelineCache

log = logging.getLogger("casemesh.social.timeline.fanout")

#: Followers per ListFollowers page while fanning out.
FOLLOWER_PAGE = 10_000
#: Deadline of one WatchTweets stream, seconds: the stream is renewed (from the next unapplied sequence) this often.
STREAM_RENEW_S = 600.0


@dataclass
class FanoutStats:
    """Progress of the consumer: last applied sequence, cache entries pushed, celebrities' tweets not pushed."""

    applied_sequence: int = 0
    pushed_entries: int = 0
    skipped_celebrity_tweets: int = 0


class FanoutConsumer:
    """Applies the tweet log to the timeline cache; ``run`` until cancelled.

    ``threshold()`` is read per tweet (the celebrity threshold in followers).
    ``on_tweet(width, lag_s)`` is told the followers pushed to (``None`` for a
    celebrity's tweet) and the seconds from the tweet's create time to the end
    of its fan-out.
    """

    def __init__(self, tweets: tweets_pb2_grpc.TweetServiceStub, graph: graph_pb2_grpc.SocialGraphServiceStub,
                 cache: TimelineCache, threshold: Callable[[], int], *, call_timeout_s: float = 2.0,
                 max_backoff_s: float = 2.0, on_tweet: Callable[[int | None, float], None] | None = None) -> None:
        self._tweets = tweets
        self._graph = graph
        self._cache = cache
        self._threshold = threshold
        self._timeout_s = call_timeout_s
        self._max_backoff_s = max_backoff_s
        self._on_tweet = on_tweet
        self.stats = FanoutStats()
        self._caught_up = False

    async def run(self) -> None:
        """Consume the log forever, reopening the stream after errors."""
        backoff = 0.05
        while True:
            opened = time.monotonic()
            try:
                stream = self._tweets.WatchTweets(tweets_pb2.WatchTweetsRequest(from_sequence=self.stats.applied_sequence + 1),
                                                  timeout=STREAM_RENEW_S)
                async for response in stream:
                    backoff = 0.05
                    for entry in response.entries:
                        await self._apply(entry)
                    if self.stats.applied_sequence >= response.log_end_sequence and not self._caught_up:
                        log.info("fan-out caught up with the tweet log at sequence %d", self.stats.applied_sequence)
                        self._caught_up = True
                log.warning("the tweet log stream ended; reopening from sequence %d", self.stats.applied_sequence + 1)
            except grpc.aio.AioRpcError as error:
                if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED and time.monotonic() - opened >= STREAM_RENEW_S * 0.9:
                    continue  # the stream's own deadline: renew it at once
                log.warning("the tweet log stream failed (%s: %s); reopening from sequence %d in %.2f s",
                            error.code().name, error.details(), self.stats.applied_sequence + 1, backoff)
            except Exception:  # a bug or a broken log must not end the fan-out for good: log it, reopen, go on
                log.exception("the fan-out failed; reopening the tweet log from sequence %d in %.2f s",
                              self.stats.applied_sequence + 1, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff_s)

    async def _apply(self, entry: tweets_pb2.LoggedTweet) -> None:
        if entry.sequence != self.stats.applied_sequence + 1:  # a stream must not skip or repeat; resume in order
            if entry.sequence <= self.stats.applied_sequence:
                return
            raise RuntimeError(f"tweet log gap: sequence {entry.sequence} after {self.stats.applied_sequence}")
        backoff = 0.05
        while True:
            try:
                followers = await self._followers(entry.author_id, self._threshold())
                break
            except grpc.aio.AioRpcError as error:
                log.warning("fan-out of tweet %d: ListFollowers(%s) failed (%s); retrying in %.2f s",
                            entry.tweet_id, entry.author_id, error.code().name, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff_s)
        if followers is None:
            self.stats.skipped_celebrity_tweets += 1
        else:
            self.stats.pushed_entries += self._cache.push(entry.tweet_id, followers)
        self.stats.applied_sequence = entry.sequence
        if self._on_tweet is not None:
            self._on_tweet(None if followers is None else len(followers), time.time() - entry.create_time.ToNanoseconds() / 1e9)

    async def _followers(self, author: str, threshold: int) -> list[str] | None:
        """Every follower of ``author``, or ``None`` when they have ``threshold`` or more (a celebrity)."""
        followers: list[str] = []
        token = ""
        while True:
            page = await self._graph.ListFollowers(graph_pb2.ListFollowersRequest(
                user_id=author, page_size=FOLLOWER_PAGE, page_token=token), timeout=self._timeout_s)
            if page.follower_count >= threshold:
                return None
            followers.extend(page.follower_ids)
            token = page.next_page_token
            if not token:
                return followers
