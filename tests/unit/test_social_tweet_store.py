"""social-tweets' TweetStore: group-committed log without gaps, durability through TweetJournal, reads, likes, watch."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from casemesh.services.runtime.errors import NotFound
from casemesh.services.social.tweets.journal import FILE_NAME, LoggedTweet, TweetJournal
from casemesh.services.social.tweets.store import TweetStore

WAIT_S = 5.0  # generous: only a hang would reach it
T0 = 1_700_000_000_000_000_000


class FailingJournal:
    """A journal whose disk refuses every commit while ``failing``."""

    def __init__(self) -> None:
        self.failing = True
        self.appended: list[list[LoggedTweet]] = []

    def load(self):
        return [], []

    def append(self, tweets, likes):
        if self.failing:
            raise OSError(28, "No space left on device")
        self.appended.append(list(tweets))


class FlakyJournal(TweetJournal):
    """A real journal that fails its next ``fail_next`` commits."""

    fail_next = 0

    def append(self, tweets, likes):
        if self.fail_next:
            self.fail_next -= 1
            raise OSError(5, "Input/output error")
        super().append(tweets, likes)


@contextlib.asynccontextmanager
async def running(journal=None, **kwargs):
    store = TweetStore(journal, **kwargs)
    await store.start()
    try:
        yield store
    finally:
        await stop(store)


async def stop(store: TweetStore) -> None:
    """``store.stop()`` called inline (no task in between), bounded so that a hang fails the test."""
    async with asyncio.timeout(WAIT_S):
        await store.stop()


async def post(store: TweetStore, tweet_id: int, author: str = "alice", text: str | None = None) -> LoggedTweet:
    return await asyncio.wait_for(
        store.post(tweet_id, author, text if text is not None else f"tweet {tweet_id}", T0 + tweet_id), WAIT_S)


async def log_entries(store: TweetStore) -> list[LoggedTweet]:
    """The whole log as watch() sends it from sequence 1."""
    watcher = store.watch(1, 100_000)
    try:
        return await asyncio.wait_for(anext(watcher), WAIT_S) if store.last_sequence else []
    finally:
        await watcher.aclose()


async def next_batch(watcher) -> list[LoggedTweet]:
    return await asyncio.wait_for(anext(watcher), WAIT_S)


# --- posting: sequences, the log --------------------------------------------------------------------


async def test_post_returns_the_log_entry_and_the_tweet_is_readable():
    async with running() as store:
        assert store.last_sequence == 0
        entry = await post(store, 1001, "alice", "hello world")
        assert entry == LoggedTweet(1, 1001, "alice", "hello world", T0 + 1001)
        assert store.last_sequence == 1
        [record] = store.get([1001])
        assert (record.tweet_id, record.author_id, record.text, record.create_time_ns) == (1001, "alice", "hello world", T0 + 1001)
        assert record.likers == set()
        assert (await post(store, 1002)).sequence == 2


@pytest.mark.parametrize("max_commit_batch", [512, 7, 1])
async def test_concurrent_posts_get_sequences_1_to_n_in_log_order(max_commit_batch):
    n = 200
    async with running(max_commit_batch=max_commit_batch) as store:
        ids = [10_000 + 3 * i for i in range(n)]
        entries = await asyncio.gather(*(post(store, tweet_id, f"user{tweet_id % 7}") for tweet_id in ids))
        assert sorted(e.sequence for e in entries) == list(range(1, n + 1))
        assert [e.tweet_id for e in entries] == ids  # each caller got its own tweet's entry
        assert store.last_sequence == n
        assert 1 <= store.commits <= n
        if max_commit_batch < n:
            assert store.commits >= -(-n // max_commit_batch)  # a commit never exceeds the batch limit
        log = await log_entries(store)
        assert [e.sequence for e in log] == list(range(1, n + 1))
        by_sequence = {e.sequence: e for e in entries}
        assert log == [by_sequence[s] for s in range(1, n + 1)]
        assert len(store.get(ids)) == n


async def test_concurrent_posts_with_a_journal_have_no_gaps(tmp_path):
    n = 200
    journal = TweetJournal(tmp_path)
    try:
        async with running(journal, max_commit_batch=16) as store:
            ids = list(range(1, n + 1))
            # Two waves, the second arriving while the first is being committed.
            first = [asyncio.create_task(post(store, i)) for i in ids[:n // 2]]
            await asyncio.sleep(0)
            second = [asyncio.create_task(post(store, i)) for i in ids[n // 2:]]
            entries = await asyncio.gather(*first, *second)
            assert sorted(e.sequence for e in entries) == list(range(1, n + 1))
            assert [e.tweet_id for e in entries] == ids
            assert store.commits <= n
            log = await log_entries(store)
            assert [e.sequence for e in log] == list(range(1, n + 1))
        on_disk, _ = journal.load()
        assert on_disk == log
    finally:
        journal.close()


# --- durability ------------------------------------------------------------------------------------


async def test_tweets_likes_and_sequences_survive_a_restart(tmp_path):
    journal = TweetJournal(tmp_path)
    async with running(journal, max_commit_batch=8) as store:
        entries = await asyncio.gather(*(post(store, 500 + i, f"author{i % 3}", f"text #{i} \U0001F600") for i in range(40)))
        assert await store.like(500, "bob") == 1
        assert await store.like(500, "carol") == 2
        assert await store.like(500, "bob") == 2
        assert await store.like(539, "dave") == 1
        # These likes may still be pending: stop() must commit them.
    journal.close()
    assert (tmp_path / FILE_NAME).exists()

    journal = TweetJournal(tmp_path)
    try:
        restarted = TweetStore(journal)
        assert await restarted.start() == 40
        try:
            assert restarted.last_sequence == 40
            assert await log_entries(restarted) == sorted(entries, key=lambda e: e.sequence)
            for e in entries:
                [record] = restarted.get([e.tweet_id])
                assert (record.author_id, record.text, record.create_time_ns) == (e.author_id, e.text, e.create_time_ns)
            likers = {r.tweet_id: r.likers for r in restarted.get([500 + i for i in range(40)])}
            assert likers[500] == {"bob", "carol"}
            assert likers[539] == {"dave"}
            assert all(not likers[500 + i] for i in range(1, 39))
            assert [r.tweet_id for r in restarted.user_tweets("author0", None, 3)] == [539, 536, 533]
            # Liking again after the restart still counts once; the log goes on from 41.
            assert await restarted.like(500, "bob") == 2
            assert (await post(restarted, 9999)).sequence == 41
        finally:
            await stop(restarted)
    finally:
        journal.close()

    journal = TweetJournal(tmp_path)
    try:
        tweets, likes = journal.load()
        assert [t.sequence for t in tweets] == list(range(1, 42))
        assert sorted(likes) == [(500, "bob"), (500, "carol"), (539, "dave")]
    finally:
        journal.close()


async def test_an_empty_journal_starts_empty(tmp_path):
    journal = TweetJournal(tmp_path)
    try:
        store = TweetStore(journal)
        assert await store.start() == 0
        assert store.last_sequence == 0
        await stop(store)
    finally:
        journal.close()


# --- commit failures -----------------------------------------------------------------------------------


async def test_a_failed_commit_fails_the_post_and_leaves_the_tweet_unlogged():
    journal = FailingJournal()
    async with running(journal) as store:
        with pytest.raises(OSError):
            await post(store, 77, "alice")
        results = await asyncio.gather(*(post(store, 100 + i) for i in range(5)), return_exceptions=True)
        assert all(isinstance(r, OSError) for r in results)
        assert store.last_sequence == 0
        assert store.get([77, 100, 104]) == []
        assert store.user_tweets("alice", None, 10) == []
        assert store.recent(["alice"], 10) == []
        with pytest.raises(NotFound):
            await store.like(77, "bob")
        assert await log_entries(store) == []
        assert journal.appended == []

        # Once the disk accepts commits again, the log goes on from 1: no gap where the failures were.
        journal.failing = False
        entry = await post(store, 78, "alice")
        assert entry.sequence == 1
        assert [e.tweet_id for e in await log_entries(store)] == [78]
        assert journal.appended == [[entry]]


async def test_a_failed_commit_is_not_on_disk_after_a_restart(tmp_path):
    journal = FlakyJournal(tmp_path)
    async with running(journal) as store:
        await post(store, 1)
        journal.fail_next = 1
        with pytest.raises(OSError):
            await post(store, 2)
        assert (await post(store, 3)).sequence == 2
    journal.close()

    journal = TweetJournal(tmp_path)
    try:
        async with running(journal) as store:
            assert [(e.sequence, e.tweet_id) for e in await log_entries(store)] == [(1, 1), (2, 3)]
            assert store.get([2]) == []
    finally:
        journal.close()


# --- reads -----------------------------------------------------------------------------------------------


async def test_get_keeps_the_order_asked_and_leaves_out_unknown_ids():
    async with running() as store:
        for tweet_id in (10, 20, 30):
            await post(store, tweet_id)
        assert [r.tweet_id for r in store.get([30, 999, 10, 20, 10])] == [30, 10, 20, 10]
        assert store.get([999]) == []
        assert store.get([]) == []


async def test_user_tweets_newest_first_and_paged_with_before_id():
    async with running() as store:
        # Posted out of ID order; newest = largest Snowflake ID.
        for tweet_id in (5, 1, 9, 3, 7, 2, 8, 4, 6):
            await post(store, tweet_id, "alice")
        for tweet_id in (100, 200):
            await post(store, tweet_id, "bob")
        assert [r.tweet_id for r in store.user_tweets("alice", None, 100)] == [9, 8, 7, 6, 5, 4, 3, 2, 1]
        pages, before = [], None
        while True:
            page = store.user_tweets("alice", before, 4)
            if not page:
                break
            pages.append([r.tweet_id for r in page])
            before = page[-1].tweet_id
        assert pages == [[9, 8, 7, 6], [5, 4, 3, 2], [1]]
        # before_id need not be an existing ID; it is exclusive.
        assert [r.tweet_id for r in store.user_tweets("alice", 6, 2)] == [5, 4]
        assert [r.tweet_id for r in store.user_tweets("alice", 50, 2)] == [9, 8]
        assert store.user_tweets("alice", 1, 10) == []
        assert store.user_tweets("alice", None, 0) == []
        assert store.user_tweets("carol", None, 10) == []
        assert [r.author_id for r in store.user_tweets("bob", None, 10)] == ["bob", "bob"]


async def test_recent_merges_authors_newest_first_with_a_limit_per_author():
    async with running() as store:
        for tweet_id, author in [(1, "a"), (2, "b"), (3, "a"), (4, "c"), (5, "b"), (6, "a"), (7, "b"), (8, "a")]:
            await post(store, tweet_id, author)
        assert store.recent(["a", "b"], 2) == [8, 7, 6, 5]
        assert store.recent(["a", "b", "c"], 10) == [8, 7, 6, 5, 4, 3, 2, 1]
        assert store.recent(["c", "a"], 1) == [8, 4]
        assert store.recent(["a", "a", "a"], 2) == [8, 6]  # a repeated author counts once
        assert store.recent(["nobody"], 5) == []
        assert store.recent([], 5) == []
        assert store.recent(["a", "b"], 0) == []


# --- likes -------------------------------------------------------------------------------------------------


async def test_like_counts_each_user_once():
    async with running() as store:
        await post(store, 42)
        assert await store.like(42, "bob") == 1
        assert await store.like(42, "bob") == 1
        assert await store.like(42, "carol") == 2
        assert store.get([42])[0].likers == {"bob", "carol"}


async def test_like_of_an_unknown_tweet_is_not_found():
    async with running() as store:
        await post(store, 42)
        with pytest.raises(NotFound):
            await store.like(43, "bob")
        assert store.get([42])[0].likers == set()


# --- watch -------------------------------------------------------------------------------------------------


async def test_watch_sends_an_empty_batch_first_then_new_entries():
    async with running() as store:
        watcher = store.watch(1, 10)
        try:
            assert await next_batch(watcher) == []
            waiting = asyncio.ensure_future(next_batch(watcher))
            entry = await post(store, 11, "alice")
            assert await waiting == [entry]
            waiting = asyncio.ensure_future(next_batch(watcher))
            more = await asyncio.gather(post(store, 12), post(store, 13))
            got = await waiting
            while len(got) < 2:  # the two may come in one batch or two
                got += await next_batch(watcher)
            assert got == sorted(more, key=lambda e: e.sequence)
            assert [e.sequence for e in got] == [2, 3]
        finally:
            await watcher.aclose()


async def test_watch_sends_the_log_from_a_sequence_in_batches():
    async with running() as store:
        entries = [await post(store, i) for i in range(1, 6)]
        watcher = store.watch(1, 2)
        try:
            assert await next_batch(watcher) == entries[0:2]
            assert await next_batch(watcher) == entries[2:4]
            assert await next_batch(watcher) == entries[4:5]
            # Caught up: the next batch is the next tweet (no empty batch in between).
            waiting = asyncio.ensure_future(next_batch(watcher))
            sixth = await post(store, 6)
            assert await waiting == [sixth]
        finally:
            await watcher.aclose()

        watcher = store.watch(4, 100)
        try:
            assert await next_batch(watcher) == entries[3:] + [sixth]
        finally:
            await watcher.aclose()


async def test_watch_past_the_end_waits_for_that_sequence():
    async with running() as store:
        await post(store, 1)
        watcher = store.watch(2, 10)  # the next one to come
        try:
            assert await next_batch(watcher) == []
            waiting = asyncio.ensure_future(next_batch(watcher))
            second = await post(store, 2)
            assert await waiting == [second]
        finally:
            await watcher.aclose()


async def test_watchers_see_only_committed_tweets():
    journal = FailingJournal()
    async with running(journal) as store:
        watcher = store.watch(1, 10)
        try:
            assert await next_batch(watcher) == []
            waiting = asyncio.ensure_future(next_batch(watcher))
            with pytest.raises(OSError):
                await post(store, 1)
            journal.failing = False
            ok = await post(store, 2)
            assert await waiting == [ok]
        finally:
            await watcher.aclose()


# --- stop ----------------------------------------------------------------------------------------------------


async def test_stop_commits_what_is_pending(tmp_path):
    journal = TweetJournal(tmp_path)
    try:
        store = TweetStore(journal)
        await store.start()
        await post(store, 1)  # committed; the committer is idle again
        posting = asyncio.ensure_future(store.post(2, "alice", "last words", T0))
        await asyncio.sleep(0)  # the post is queued, not yet committed
        assert await store.like(1, "bob") == 1  # queued too
        await stop(store)
        tweets, likes = journal.load()
        assert [(t.sequence, t.tweet_id) for t in tweets] == [(1, 1), (2, 2)]
        assert likes == [(1, "bob")]
        assert (await asyncio.wait_for(posting, WAIT_S)).sequence == 2
    finally:
        journal.close()
