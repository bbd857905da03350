"""Likes as real-time signals (services/social/tweets/signals.py), the "For you" timeline's item IDs and hydration
(services/social/timeline/service.py), and the social-tweets settings of the signals."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

from casemesh.reco.v1 import recommendations_pb2, signals_pb2
from casemesh.services.runtime.errors import FailedPrecondition, InvalidArgument
from casemesh.services.social.limits import MAX_FOR_YOU_PAGE_SIZE
from casemesh.services.social.timeline.service import FOR_YOU_SLACK, TimelineServicer, tweet_ids_of
from casemesh.services.social.timeline.settings import TimelineSettings
from casemesh.services.social.tweets.settings import TweetSettings
from casemesh.services.social.tweets.signals import LikeSignals
from casemesh.social.v1 import timeline_pb2, tweet_pb2, tweets_pb2

LIKE = signals_pb2.INTERACTION_KIND_LIKE


def unavailable(details: str = "reco-signals is down") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)


class FakeSignals:
    """SignalService's RecordInteractions: records each request and its timeout; fails the first ``failures`` calls;
    ``gate`` holds calls in flight."""

    def __init__(self, failures: int = 0) -> None:
        self.requests: list[signals_pb2.RecordInteractionsRequest] = []
        self.timeouts: list[float | None] = []
        self.failures = failures
        self.calls = 0
        self.gate: asyncio.Event | None = None

    async def RecordInteractions(self, request, timeout=None):  # noqa: N802 - the stub's method name
        self.calls += 1
        self.timeouts.append(timeout)
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(0)
        if self.failures:
            self.failures -= 1
            raise unavailable()
        self.requests.append(request)
        return signals_pb2.RecordInteractionsResponse(recorded=len(request.interactions))

    @property
    def delivered(self) -> list[tuple[str, str, int]]:
        return [(i.user_id, i.item_id, i.kind) for r in self.requests for i in r.interactions]


async def until(predicate, timeout_s: float = 5.0) -> None:
    """Poll until predicate() holds; a generous cap so a loaded machine does not flake."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


def settings(**overrides) -> TweetSettings:
    return TweetSettings(record_signals=True, **overrides)


def counted(outcome: str) -> float:
    return REGISTRY.get_sample_value("casemesh_social_like_signals_total", {"outcome": outcome}) or 0.0


def delays_observed() -> float:
    return REGISTRY.get_sample_value("casemesh_social_like_signal_delay_seconds_count") or 0.0


# -- LikeSignals ------------------------------------------------------------------------------------------------------


async def test_likes_are_sent_in_batches_as_like_interactions_of_the_decimal_tweet_id():
    stub = FakeSignals()
    signals = LikeSignals(stub, settings(signal_batch_size=3, signal_flush_interval_ms=60_000), call_timeout_s=2.5)
    sent_before, delays_before = counted("sent"), delays_observed()
    await signals.start()
    likes = [(f"user-{n % 3}", 121578854669090862 + n) for n in range(6)] + [("user-x", 2**64 - 1)]
    for user, tweet_id in likes:
        assert signals.add(user, tweet_id) is None  # synchronous: nothing to await on the LikeTweet path
    await until(lambda: signals.buffer.sent == 7)  # full batches go at once, well before the 60 s interval
    assert [len(r.interactions) for r in stub.requests] == [3, 3, 1]
    assert stub.delivered == [(user, str(tweet_id), LIKE) for user, tweet_id in likes]  # in order, each once
    assert stub.delivered[-1][1] == "18446744073709551615"
    assert stub.timeouts == [2.5] * 3
    assert counted("sent") - sent_before == 7 and delays_observed() - delays_before == 7
    assert await signals.stop() == 0


async def test_a_partial_batch_goes_at_the_next_tick():
    stub = FakeSignals()
    signals = LikeSignals(stub, settings(signal_flush_interval_ms=20))
    await signals.start()
    signals.add("reader", 42)
    await until(lambda: stub.delivered == [("reader", "42", LIKE)])
    assert signals.buffer.pending == 0
    assert await signals.stop() == 0


async def test_a_failing_engine_keeps_the_signals_and_gets_them_once_it_recovers():
    stub = FakeSignals(failures=3)
    signals = LikeSignals(stub, settings(signal_batch_size=2, signal_flush_interval_ms=10))
    sent_before = counted("sent")
    await signals.start()
    likes = [(f"user-{n}", 1000 + n) for n in range(5)]
    for user, tweet_id in likes:
        signals.add(user, tweet_id)
    await until(lambda: signals.buffer.sent == 5)
    assert signals.buffer.send_failures == 3 and signals.buffer.dropped == 0
    assert stub.delivered == [(u, str(t), LIKE) for u, t in likes]  # nothing lost, nothing twice, order kept
    assert counted("sent") - sent_before == 5  # only what was delivered
    assert await signals.stop() == 0


async def test_while_the_engine_is_down_signals_wait_and_the_like_path_never_blocks():
    stub = FakeSignals()
    stub.gate = asyncio.Event()  # a send that hangs (reco-signals slow)
    signals = LikeSignals(stub, settings(signal_batch_size=2, max_pending_signals=4, signal_flush_interval_ms=60_000))
    dropped_before = counted("dropped")
    await signals.start()
    signals.add("a", 1)
    signals.add("a", 2)  # a full batch: sent at once, and held in flight by the gate
    await until(lambda: stub.calls == 1)
    for n in range(3, 9):  # room for 2 more (the batch in flight counts), then 4 dropped, none awaited
        signals.add("a", n)
    assert (signals.buffer.pending, signals.buffer.dropped) == (4, 4)
    assert counted("dropped") - dropped_before == 4
    stub.gate.set()
    assert await signals.stop() == 0  # stop() sends what is left
    assert [item for _, item, _ in stub.delivered] == ["1", "2", "3", "4"]


async def test_a_full_buffer_drops_and_counts_new_signals():
    stub = FakeSignals()
    signals = LikeSignals(stub, settings(signal_batch_size=5, max_pending_signals=5, signal_flush_interval_ms=60_000))
    dropped_before = counted("dropped")
    for n in range(8):  # not started: nothing is sent meanwhile
        signals.add("fan", n + 1)
    assert (signals.buffer.pending, signals.buffer.dropped) == (5, 3)
    assert counted("dropped") - dropped_before == 3
    assert await signals.stop() == 0
    assert [item for _, item, _ in stub.delivered] == ["1", "2", "3", "4", "5"]  # the first five, in order


async def test_stop_flushes_everything_pending():
    stub = FakeSignals()
    signals = LikeSignals(stub, settings(signal_batch_size=500, signal_flush_interval_ms=60_000))
    await signals.start()
    await asyncio.sleep(0)
    likes = [(f"u{n % 17}", n + 1) for n in range(1234)]
    for user, tweet_id in likes:
        signals.add(user, tweet_id)
    assert await signals.stop() == 0
    assert [len(r.interactions) for r in stub.requests] == [500, 500, 234]
    assert stub.delivered == [(u, str(t), LIKE) for u, t in likes]


async def test_stop_reports_what_the_engine_never_took():
    stub = FakeSignals(failures=10**6)
    signals = LikeSignals(stub, settings(signal_batch_size=2, signal_flush_interval_ms=60_000))
    await signals.start()
    for n in range(3):
        signals.add("u", n + 1)
    assert await signals.stop() == 3
    assert signals.buffer.pending == 3 and signals.buffer.sent == 0 and stub.delivered == []


# -- tweet_ids_of -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("item", [
    "0", "18446744073709551616", "99999999999999999999999", "-1", "+1", " 1", "1 ", "1.0", "1e3", "0x1f", "abc",
    "not-a-tweet", "12_3", "", "١٢", "１２", "²", "1\n",
])
def test_items_that_are_not_tweet_ids_are_left_out(item):
    assert tweet_ids_of([item]) == []
    assert tweet_ids_of(["5", item, "6"]) == [5, 6]


def test_tweet_ids_keep_the_engines_order_each_once():
    top = str(2**64 - 1)
    assert tweet_ids_of(["30", "1", top, "30", "x", "1", "2"]) == [30, 1, 2**64 - 1, 2]
    assert tweet_ids_of([]) == []


# -- GetForYouTimeline's hydration, with fakes of reco-ranker and social-tweets ---------------------------------------


class FakeRanker:
    """RecommendationService: answers ``ranked`` (``[(item_id, score)]``, best first) or raises ``error``."""

    def __init__(self, ranked: list[tuple[str, float]], error: Exception | None = None, version: int = 3) -> None:
        self.ranked = ranked
        self.error = error
        self.version = version
        self.requests: list[recommendations_pb2.GetRecommendationsRequest] = []

    async def GetRecommendations(self, request, timeout=None):  # noqa: N802 - the stub's method name
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        return recommendations_pb2.GetRecommendationsResponse(
            recommendations=[recommendations_pb2.Recommendation(item_id=i, score=s) for i, s in self.ranked[:request.limit]],
            candidates=len(self.ranked), recent_signals=4, model_version=self.version)


class FakeTweets:
    """TweetService.GetTweets over ``tweets`` (ID → author): the ones that exist, in the order asked."""

    def __init__(self, tweets: dict[int, str]) -> None:
        self.tweets = tweets
        self.asked: list[list[int]] = []

    async def GetTweets(self, request, timeout=None):  # noqa: N802 - the stub's method name
        self.asked.append(list(request.tweet_ids))
        return tweets_pb2.GetTweetsResponse(tweets=[
            tweet_pb2.Tweet(tweet_id=i, author_id=self.tweets[i], text=f"text of {i}")
            for i in request.tweet_ids if i in self.tweets])


def servicer(ranker: FakeRanker | None, tweets: FakeTweets) -> TimelineServicer:
    return TimelineServicer(None, None, None, tweets, TimelineSettings(), ranker)


async def for_you(s: TimelineServicer, user: str = "reader", page_size: int = 0) -> timeline_pb2.GetForYouTimelineResponse:
    return await s.GetForYouTimeline(timeline_pb2.GetForYouTimelineRequest(user_id=user, page_size=page_size), None)


async def test_for_you_keeps_the_engines_order_and_scores_and_leaves_out_what_is_not_anothers_tweet():
    tweets = FakeTweets({11: "writer", 12: "reader", 13: "writer", 14: "other", 15: "writer"})
    ranker = FakeRanker([("13", 0.9), ("not-a-tweet", 0.8), ("12", 0.7), ("404", 0.6), ("0", 0.55), ("11", 0.5),
                         ("13", 0.45), ("15", 0.4), ("14", 0.3)])
    response = await for_you(servicer(ranker, tweets), page_size=3)
    assert [(r.tweet.tweet_id, r.score) for r in response.tweets] == [(13, 0.9), (11, 0.5), (15, 0.4)]
    assert response.tweets[0].tweet.text == "text of 13"
    assert (response.model_version, response.recent_signals) == (3, 4)
    assert ranker.requests[0].user_id == "reader" and ranker.requests[0].limit == 3 + FOR_YOU_SLACK
    assert tweets.asked == [[13, 12, 404, 11, 15, 14]]  # one hydration, tweet IDs only, each once


async def test_for_you_page_size_default_and_bounds():
    tweets = FakeTweets({n: "writer" for n in range(1, 201)})
    ranker = FakeRanker([(str(n), 1.0 / n) for n in range(1, 201)])
    s = servicer(ranker, tweets)
    assert len((await for_you(s)).tweets) == 20
    assert ranker.requests[-1].limit == 20 + FOR_YOU_SLACK
    assert len((await for_you(s, page_size=MAX_FOR_YOU_PAGE_SIZE)).tweets) == 100
    assert ranker.requests[-1].limit == MAX_FOR_YOU_PAGE_SIZE  # the engine's most
    for bad in (-1, MAX_FOR_YOU_PAGE_SIZE + 1):
        with pytest.raises(InvalidArgument) as raised:
            await for_you(s, page_size=bad)
        assert raised.value.field == "page_size"
    with pytest.raises(InvalidArgument) as raised:
        await for_you(s, user="bad user")
    assert raised.value.field == "user_id"


async def test_for_you_without_tweets_to_show_asks_no_hydration():
    tweets = FakeTweets({1: "reader"})
    response = await for_you(servicer(FakeRanker([("x", 1.0), ("1", 0.5)]), tweets))
    assert list(response.tweets) == [] and response.model_version == 3
    empty = FakeTweets({})
    assert list((await for_you(servicer(FakeRanker([("x", 1.0)]), empty))).tweets) == [] and empty.asked == []


async def test_for_you_errors_of_the_engine():
    tweets = FakeTweets({1: "writer"})
    with pytest.raises(FailedPrecondition, match="reco-ranker"):
        await for_you(servicer(None, tweets))
    no_model = grpc.aio.AioRpcError(grpc.StatusCode.FAILED_PRECONDITION, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                    details="no model trained yet: call CandidateService.TrainModel")
    with pytest.raises(FailedPrecondition, match="no model"):
        await for_you(servicer(FakeRanker([], error=no_model), tweets))
    with pytest.raises(grpc.aio.AioRpcError) as raised:  # the server interceptor answers it UNAVAILABLE
        await for_you(servicer(FakeRanker([], error=unavailable("reco-ranker is down")), tweets))
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_a_zero_padded_item_id_is_its_tweet_once_with_the_engines_first_score():
    """Item IDs are free-form at reco-signals (anyone may record "007"): a zero-padded decimal names that tweet; with
    its plain form too, the tweet is shown once, at the better (first) score. It once failed the call (KeyError)."""
    tweets = FakeTweets({7: "writer", 8: "writer"})
    response = await for_you(servicer(FakeRanker([("007", 0.9), ("8", 0.5), ("7", 0.4)]), tweets))
    assert [(r.tweet.tweet_id, r.score) for r in response.tweets] == [(7, 0.9), (8, 0.5)]
    assert tweets.asked == [[7, 8]]


# -- TweetSettings ----------------------------------------------------------------------------------------------------


def test_signal_settings_defaults():
    s = TweetSettings()
    assert (s.record_signals, s.signal_flush_interval_ms) == (False, 100.0)
    assert (s.signal_batch_size, s.max_pending_signals) == (500, 100_000)


def test_max_pending_signals_below_the_batch_size_is_refused():
    with pytest.raises(ValidationError, match=r"max_pending_signals \(499\) must be at least signal_batch_size \(500\)"):
        TweetSettings(max_pending_signals=499)
    with pytest.raises(ValidationError, match="max_pending_signals"):
        TweetSettings(signal_batch_size=20, max_pending_signals=10)
    assert TweetSettings(signal_batch_size=20, max_pending_signals=20).max_pending_signals == 20  # equal is fine


@pytest.mark.parametrize("field, value", [
    ("signal_flush_interval_ms", 0), ("signal_flush_interval_ms", 60_001), ("signal_batch_size", 0),
    ("signal_batch_size", 10_001), ("max_pending_signals", 0), ("max_pending_signals", 10_000_001),
    ("record_signals", "sometimes"), ("record_signal", True),
])
def test_signal_settings_out_of_range_are_refused(field, value):
    with pytest.raises(ValidationError, match=field):
        TweetSettings(**{field: value})
