"""The social feed's "For you" timeline through real gRPC: the recommendation engine's answer served as tweets.

The main mesh runs the social feed (social-graph, social-tweets,
social-timeline, idgen) and the recommendation engine (reco-signals,
reco-candidates, reco-ranker) in this process on 127.0.0.1, with
social-tweets' ``record_signals`` on. It is seeded with the synthetic dataset
of tests/integration/reco.py (40 users, 80 items in 4 genres), each item
posted as one tweet (TweetService.PostTweet) by a user of its genre who did
not interact with it (so that the engine would recommend some of their own
tweets to them), the interactions recorded with the tweet IDs in decimal as
item IDs, plus a few popular items that are not tweets (a name, "0", a
decimal above 2^64 - 1, a tweet ID that does not exist), then trained once.
The tests run in file order on it; what each records (interactions, likes)
goes into ``Seeded``, which is what no "For you" answer may hold.

Smaller meshes check the rest: the recommendation engine down and back (in a
second serve task on the same topology, so that it can be stopped and
restarted at its addresses) and before any training, the social feed without
any recommendation engine, and a topology that asks for like signals without
reco-signals.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc
import pytest
import pytest_asyncio

from casemesh.reco.v1 import recommendations_pb2, signals_pb2
from casemesh.services.catalog import definitions
from casemesh.services.runtime.topology import Topology, TopologyError
from casemesh.social.v1 import graph_pb2, timeline_pb2, tweets_pb2

from . import reco
from . import social_feed
from .conftest import RunningMesh, loopback_topology, start_mesh

pytestmark = pytest.mark.asyncio(loop_scope="module")

SOCIAL = social_feed.SERVICES
RECO = reco.SERVICES
ALL = [*SOCIAL, *RECO]
WITH_SIGNALS = {"social-tweets": {"record_signals": True}}
#: Deadline of each call: generous, the machine is small and loaded.
TIMEOUT_S = 30.0
#: How long a like may take to leave the liker's "For you" (the contract says about 100 ms; the machine is loaded).
LIKE_WAIT_S = 15.0
LIKE = signals_pb2.INTERACTION_KIND_LIKE
#: The logger of the like signals' buffer (services/runtime/batch_buffer.py): it warns of each failed send.
BATCH_BUFFER_LOG = "casemesh.services.runtime.batch_buffer"

#: Popular items that are not (existing) tweets: a name, zero, a decimal above 2^64 - 1, a tweet ID nobody posted,
#: a negative number. Viewed by the first 30 users, so the model ranks them high for the other ten.
NON_TWEETS = ["not-a-tweet", "0", "18446744073709551616", "999999999999999", "-7"]
NON_TWEET_VIEWERS = 30
USERS = 40


@contextlib.asynccontextmanager
async def serving(names: list[str], topology: Topology):
    """Serve ``names`` of ``topology`` (which may name more services) until the block ends."""
    running, stop, task = await start_mesh(definitions(names), topology)
    try:
        yield running
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


class Feed(social_feed.Client):
    """The social feed's stubs with the calls these tests make."""

    async def for_you(self, user: str, page_size: int = 0) -> timeline_pb2.GetForYouTimelineResponse:
        return await self.timeline.GetForYouTimeline(timeline_pb2.GetForYouTimelineRequest(
            user_id=user, page_size=page_size), timeout=TIMEOUT_S)

    async def like(self, tweet_id: int, user: str) -> tweets_pb2.LikeTweetResponse:
        return await self.tweets.LikeTweet(tweets_pb2.LikeTweetRequest(tweet_id=tweet_id, user_id=user), timeout=TIMEOUT_S)

    async def post(self, author: str, text: str) -> int:
        posted = await self.tweets.PostTweet(tweets_pb2.PostTweetRequest(author_id=author, text=text), timeout=TIMEOUT_S)
        return posted.tweet.tweet_id


def feed_of(mesh: RunningMesh) -> Feed:
    return Feed(mesh.channel("social-graph"), mesh.channel("social-tweets"), mesh.channel("social-timeline"))


def ids_of(response: timeline_pb2.GetForYouTimelineResponse) -> list[int]:
    return [r.tweet.tweet_id for r in response.tweets]


async def eventually(check: Callable[[], Awaitable[str | None]], within_s: float = LIKE_WAIT_S, what: str = "") -> None:
    """Call ``check`` every 0.1 s until it returns None (all good) or ``within_s`` passes; then fail with its last word."""
    deadline = time.monotonic() + within_s
    while True:
        problem = await check()
        if problem is None:
            return
        assert time.monotonic() < deadline, f"{what}: still {problem} after {within_s} s"
        await asyncio.sleep(0.1)


def refused(raised: pytest.ExceptionInfo, codes: set[grpc.StatusCode], field: str | None = None) -> str:
    """The raised AioRpcError has one of ``codes`` and, given ``field``, details that begin ``FIELD: ``; its details."""
    error = raised.value
    assert error.code() in codes, (error.code(), error.details())
    details = error.details() or ""
    if field is not None:
        assert details.startswith(f"{field}: "), (field, details)
    return details


# -- the main mesh ----------------------------------------------------------------------------------------------------


@dataclass
class Seeded:
    """What was posted and recorded, and the model trained on it."""

    trained_version: int
    #: Tweet ID → (author, text), as PostTweet acknowledged them.
    posted: dict[int, tuple[str, str]]
    #: Dataset item → its tweet's ID.
    tweet_of: dict[str, int]
    #: Each user's item IDs at reco-signals (tweet IDs in decimal and NON_TWEETS), as acknowledged.
    history: dict[str, set[str]]
    #: Tweet ID → the users whose LikeTweet was acknowledged.
    likes: dict[int, set[str]] = field(default_factory=dict)

    @property
    def users(self) -> list[str]:
        return sorted(self.history)

    async def like(self, feed: Feed, tweet_id: int, user: str) -> None:
        await feed.like(tweet_id, user)
        self.likes.setdefault(tweet_id, set()).add(user)
        self.history.setdefault(user, set()).add(str(tweet_id))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh(tmp_path_factory):
    topology = loopback_topology(ALL, tmp_path_factory.mktemp("for-you-data"), settings=WITH_SIGNALS)
    async with serving(ALL, topology) as running:
        yield running


@pytest.fixture(scope="module")
def feed(mesh: RunningMesh) -> Feed:
    return feed_of(mesh)


@pytest.fixture(scope="module")
def engine(mesh: RunningMesh) -> reco.Client:
    return reco.Client(mesh.channel)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def seeded(feed: Feed, engine: reco.Client) -> Seeded:
    dataset = reco.make_dataset(seed=14, users=USERS)
    # Each item's author: a user of its genre who did not interact with it (rotating), so a reader's own tweets are
    # among what the engine ranks best for them.
    plan = []
    for n, item in enumerate(reco.CATALOGUE):
        g = reco.genre_of_item(item)
        free = [u for u in dataset.users if dataset.genre[u] == g and item not in dataset.items[u]]
        plan.append((item, free[n % len(free)], f"{item}: post {n} #{random.Random(n).getrandbits(32):08x}"))
    posted: dict[int, tuple[str, str]] = {}
    tweet_of: dict[str, int] = {}
    gate = asyncio.Semaphore(8)

    async def post(item: str, author: str, text: str) -> None:
        async with gate:
            tweet_id = await feed.post(author, text)
        posted[tweet_id] = (author, text)
        tweet_of[item] = tweet_id

    await asyncio.gather(*(post(*p) for p in plan))
    assert len(posted) == len(reco.CATALOGUE)

    triples = [(u, str(tweet_of[i]), k) for u, i, k in dataset.interactions]
    triples += [(u, item, reco.VIEW) for u in dataset.users[:NON_TWEET_VIEWERS] for item in NON_TWEETS]
    await reco.record_all(engine, triples)
    trained = await reco.train(engine)
    assert trained.items == len(reco.CATALOGUE) + len(NON_TWEETS), trained
    history: dict[str, set[str]] = {}
    for u, item, _ in triples:
        history.setdefault(u, set()).add(item)
    return Seeded(trained.model_version, posted, tweet_of, history)


def for_you_problems(seeded: Seeded, user: str, response: timeline_pb2.GetForYouTimelineResponse, size: int) -> list[str]:
    """What is wrong with one "For you" answer, whatever the ranking: more than ``size`` tweets, a repeat, a tweet not
    as posted, the reader's own tweet, a tweet the reader interacted with, scores increasing, another model."""
    wrong = []
    ids = ids_of(response)
    scores = [r.score for r in response.tweets]
    if len(ids) > size:
        wrong.append(f"{user}: {len(ids)} tweets for page_size {size}")
    if len(ids) != len(set(ids)):
        wrong.append(f"{user}: a tweet twice: {ids}")
    for r in response.tweets:
        t = r.tweet
        if seeded.posted.get(t.tweet_id) != (t.author_id, t.text):
            wrong.append(f"{user}: tweet {t.tweet_id} is ({t.author_id!r}, {t.text!r}), "
                         f"posted as {seeded.posted.get(t.tweet_id)}")
        if t.author_id == user:
            wrong.append(f"{user}: their own tweet {t.tweet_id}")
        if str(t.tweet_id) in seeded.history.get(user, ()):
            wrong.append(f"{user}: tweet {t.tweet_id}, which they interacted with")
        if t.like_count != len(seeded.likes.get(t.tweet_id, ())):
            wrong.append(f"{user}: tweet {t.tweet_id} has {t.like_count} likes, "
                         f"{len(seeded.likes.get(t.tweet_id, ()))} acknowledged")
    if any(b > a for a, b in zip(scores, scores[1:])):
        wrong.append(f"{user}: scores increase: {scores}")
    if response.model_version != seeded.trained_version:
        wrong.append(f"{user}: model {response.model_version}, trained {seeded.trained_version}")
    return wrong


async def test_for_you_is_the_engines_ranking_of_tweets_for_every_reader(feed, engine, seeded):
    """Every reader, several page sizes: the answer is the engine's ranking (GetRecommendations asked for the page and
    ten more) with the non-tweets, the vanished tweets and the reader's own tweets left out, hydrated as posted, cut to
    the page; never a tweet they interacted with. Some raw rankings did hold own tweets and non-tweets (the rule ran)."""
    gate = asyncio.Semaphore(8)
    witnessed = {"own": 0, "non-tweet": 0}

    async def one(user: str, size: int) -> list[str]:
        async with gate:
            response = await feed.for_you(user, size)
            raw = await engine.ranker.GetRecommendations(recommendations_pb2.GetRecommendationsRequest(
                user_id=user, limit=min((size or 20) + 10, 100)), timeout=TIMEOUT_S)
        wanted = size or 20
        wrong = for_you_problems(seeded, user, response, wanted)
        expected = []
        for r in raw.recommendations:
            tweet_id = int(r.item_id) if r.item_id.isdigit() else None
            if tweet_id not in seeded.posted:
                witnessed["non-tweet"] += 1
            elif seeded.posted[tweet_id][0] == user:
                witnessed["own"] += 1
            else:
                expected.append((tweet_id, r.score))
        got = [(r.tweet.tweet_id, r.score) for r in response.tweets]
        if got != expected[:wanted]:
            wrong.append(f"{user}/{size}: got {got}, the engine ranks {expected[:wanted]}")
        if response.recent_signals != len(seeded.history[user]):
            wrong.append(f"{user}: recent_signals {response.recent_signals}, {len(seeded.history[user])} items recorded")
        return wrong

    work = [(u, 0) for u in seeded.users] + [(u, s) for u in seeded.users[::7] for s in (1, 7, 20, 64, 100)]
    problems = [p for found in await asyncio.gather(*(one(u, s) for u, s in work)) for p in found]
    assert not problems, "\n".join(problems[:20])
    assert witnessed["own"] > 0 and witnessed["non-tweet"] > 0, witnessed
    # Page size 0 is 20, and there are tweets enough for a full page.
    assert len((await feed.for_you(seeded.users[-1])).tweets) == 20


async def test_a_like_leaves_the_likers_for_you_and_no_one_elses(feed, engine, seeded):
    reader = seeded.users[-2]  # no non-tweet in their history: the non-tweets compete for their page too
    before = await feed.for_you(reader)
    liked = before.tweets[0].tweet.tweet_id
    others = {u: await feed.for_you(u) for u in seeded.users if u != reader}
    other = next(u for u, r in others.items() if liked in ids_of(r))

    await seeded.like(feed, liked, reader)

    async def left() -> str | None:
        after = await feed.for_you(reader)
        if liked in ids_of(after) or after.recent_signals != before.recent_signals + 1:
            return f"{ids_of(after)} (recent_signals {after.recent_signals}, before {before.recent_signals})"
        assert not for_you_problems(seeded, reader, after, 20)
        return None

    await eventually(left, what=f"{reader}'s like of {liked}")
    recent = await engine.recent(reader)
    assert recent[0].item_id == str(liked) and recent[0].kind == LIKE, recent[:3]
    # Another reader who had the tweet keeps it: the like is the liker's signal only.
    again = await feed.for_you(other)
    assert liked in ids_of(again) and again.recent_signals == others[other].recent_signals
    assert not for_you_problems(seeded, other, again, 20)


async def test_concurrent_likes_all_reach_the_engine(mesh, seeded):
    """50 likes from 10 clients at once (each its own connection): every liked tweet leaves its liker's "For you" and
    each like is at reco-signals as a LIKE of the tweet ID; the like counts add up (no signal lost)."""
    likers = seeded.users[:10]
    feeds = {u: feed_of(mesh) for u in likers}
    chosen = {u: ids_of(await feeds[u].for_you(u))[:5] for u in likers}
    assert all(len(c) == 5 for c in chosen.values()), chosen

    async def client(user: str) -> None:
        for tweet_id in chosen[user]:
            await seeded.like(feeds[user], tweet_id, user)

    await asyncio.gather(*(client(u) for u in likers))
    engine = reco.Client(mesh.channel)

    async def delivered() -> str | None:
        missing = []
        for user in likers:
            likes = {i.item_id for i in await engine.recent(user) if i.kind == LIKE}
            shown = set(ids_of(await feeds[user].for_you(user)))
            missing += [f"{user}/{t}" for t in chosen[user] if str(t) not in likes or t in shown]
        return f"not delivered or still shown: {missing}" if missing else None

    await eventually(delivered, what="50 concurrent likes")
    counts = await feeds[likers[0]].tweets.GetTweets(tweets_pb2.GetTweetsRequest(
        tweet_ids=sorted({t for c in chosen.values() for t in c})), timeout=TIMEOUT_S)
    assert len(counts.tweets) == len({t for c in chosen.values() for t in c})
    assert {t.tweet_id: t.like_count for t in counts.tweets} == {t.tweet_id: len(seeded.likes[t.tweet_id])
                                                                 for t in counts.tweets}
    for user in likers:
        response = await feeds[user].for_you(user)
        assert not for_you_problems(seeded, user, response, 20)
        assert response.recent_signals == len(seeded.history[user])


@pytest.mark.parametrize("user, size, field", [
    ("", 0, "user_id"),
    ("bad id!", 0, "user_id"),
    ("ü" * 3, 0, "user_id"),
    ("a" * 65, 0, "user_id"),
    ("u001", -1, "page_size"),
    ("u001", 101, "page_size"),
])
async def test_bad_input_is_invalid_argument_naming_the_field_and_changes_nothing(feed, engine, seeded, user, size, field):
    reader = "u001"
    before = await feed.for_you(reader)
    recent = await engine.recent(reader)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await feed.for_you(user, size)
    refused(raised, {grpc.StatusCode.INVALID_ARGUMENT}, field)
    after = await feed.for_you(reader)
    assert [(r.tweet.tweet_id, r.score) for r in after.tweets] == [(r.tweet.tweet_id, r.score) for r in before.tweets]
    assert after.recent_signals == before.recent_signals and await engine.recent(reader) == recent


async def test_the_largest_user_id_and_page_are_accepted(feed, seeded):
    response = await feed.for_you("a" * 64, 100)  # a user the model does not know: trending tweets
    assert 0 < len(response.tweets) <= 100 and response.recent_signals == 0
    assert not for_you_problems(seeded, "a" * 64, response, 100)


async def test_a_refused_like_sends_no_signal(feed, engine, seeded):
    """A like refused (unknown tweet, bad user, tweet 0) reaches nothing; a later good like does (signals go in order,
    so once it is at reco-signals, anything the refused ones had queued would be too)."""
    tweet_id = next(iter(seeded.posted))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await feed.like(424242, "refused-liker")
    refused(raised, {grpc.StatusCode.NOT_FOUND})
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await feed.like(tweet_id, "refused liker!")
    refused(raised, {grpc.StatusCode.INVALID_ARGUMENT}, "user_id")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await feed.like(0, "refused-liker")
    refused(raised, {grpc.StatusCode.INVALID_ARGUMENT}, "tweet_id")

    witness = "u007"
    good = next(t for t in seeded.posted if str(t) not in seeded.history[witness])
    await seeded.like(feed, good, witness)

    async def arrived() -> str | None:
        return None if str(good) in {i.item_id for i in await engine.recent(witness)} else "not at reco-signals"

    await eventually(arrived, what="the witness like")
    assert await engine.recent("refused-liker") == []
    tweets = await feed.tweets.GetTweets(tweets_pb2.GetTweetsRequest(tweet_ids=[tweet_id]), timeout=TIMEOUT_S)
    assert tweets.tweets[0].like_count == len(seeded.likes.get(tweet_id, ()))


# -- the recommendation engine down, and before any training --------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def split(tmp_path_factory):
    """A mesh whose social feed and recommendation engine are served apart: ``(topology, social mesh)``; the engine is
    served by the tests (``serving(RECO, topology)``) when they need it."""
    topology = loopback_topology(ALL, tmp_path_factory.mktemp("for-you-split"), settings=WITH_SIGNALS)
    async with serving(SOCIAL, topology) as running:
        yield topology, running


async def test_before_any_training_for_you_is_failed_precondition(split):
    topology, social = split
    feed = feed_of(social)
    async with serving(RECO, topology):
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await reco.retrying(lambda: feed.for_you("u001"))
        details = refused(raised, {grpc.StatusCode.FAILED_PRECONDITION})
        assert "no model" in details, details


async def test_engine_down_for_you_fails_home_and_likes_keep_working_and_signals_wait(split, caplog):
    """reco-signals and reco-ranker stopped: GetForYouTimeline is UNAVAILABLE (or DEADLINE_EXCEEDED), GetHomeTimeline
    and LikeTweet answer OK; the signals' sends fail meanwhile, and once the engine is back at its addresses every like
    made while it was down reaches reco-signals, once."""
    caplog.set_level(logging.WARNING, logger=BATCH_BUFFER_LOG)
    topology, social = split
    feed = feed_of(social)
    await feed.graph.Follow(graph_pb2.FollowRequest(follower_id="reader", followee_id="writer"), timeout=TIMEOUT_S)
    written = [await feed.post("writer", f"while the engine is down {n}") for n in range(5)]
    await feed.settle()

    for _ in range(3):  # more than once: the circuit breaker to reco-ranker may open; the answer stays "retry later"
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await feed.for_you("reader")
        refused(raised, {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
    assert [t.tweet_id for t in await feed.home("reader")] == written[::-1]
    likers = [f"liker-{n}" for n in range(4)]
    for user in likers:
        for tweet_id in written:
            assert (await feed.like(tweet_id, user)).like_count >= 1
    assert [t.like_count for t in await feed.home("reader")] == [len(likers)] * len(written)

    async def a_send_failed() -> str | None:
        failed = [r for r in caplog.records if r.name == BATCH_BUFFER_LOG and "like signals failed" in r.getMessage()]
        return None if failed else "no failed send of like signals logged"

    await eventually(a_send_failed, what="reco-signals down")  # the outage is seen before the engine comes back

    async with serving(RECO, topology) as engine_mesh:
        engine = reco.Client(engine_mesh.channel)

        async def delivered() -> str | None:
            missing = []
            for user in likers:
                liked = {i.item_id for i in await engine.recent(user) if i.kind == LIKE}
                missing += [f"{user}/{t}" for t in written if str(t) not in liked]
            return f"missing {missing}" if missing else None

        # The social-tweets channel to reco-signals is in reconnect backoff (grpc's: 1 s growing by 1.6): be generous.
        await eventually(delivered, within_s=60, what="likes made while reco-signals was down")
        assert len(await engine.export()) == len(likers) * len(written)  # each once


# -- no recommendation engine in the mesh ---------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def social_only(tmp_path_factory):
    topology = loopback_topology(SOCIAL, tmp_path_factory.mktemp("for-you-none"))
    async with serving(SOCIAL, topology) as running:
        yield running


async def test_without_an_engine_for_you_is_failed_precondition_and_the_rest_works(social_only):
    feed = feed_of(social_only)
    await feed.graph.Follow(graph_pb2.FollowRequest(follower_id="reader", followee_id="writer"), timeout=TIMEOUT_S)
    tweet_id = await feed.post("writer", "no engine here")
    await feed.settle()
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await feed.for_you("reader")
    details = refused(raised, {grpc.StatusCode.FAILED_PRECONDITION})
    assert "reco-ranker" in details, details
    with pytest.raises(grpc.aio.AioRpcError) as raised:  # the input is still checked first
        await feed.for_you("reader", 101)
    refused(raised, {grpc.StatusCode.INVALID_ARGUMENT}, "page_size")
    assert (await feed.like(tweet_id, "reader")).like_count == 1
    assert [(t.tweet_id, t.like_count) for t in await feed.home("reader")] == [(tweet_id, 1)]


async def test_record_signals_without_reco_signals_in_the_topology_fails_at_start():
    topology = loopback_topology(["social-tweets", "idgen"], settings=WITH_SIGNALS)
    with pytest.raises(TopologyError, match=r"settings\.social-tweets\.record_signals: .*reco-signals"):
        await start_mesh(definitions(["social-tweets"]), topology)
