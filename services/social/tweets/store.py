"""Tweets in memory, made durable through :class:`~.journal.TweetJournal` before they are visible.

- ``post``: waits until the tweet is committed to the log (a group commit
  with every other tweet and like that arrived meanwhile), then the tweet is
  readable and the log's watchers are woken. Sequences are given at commit
  time, so the log has no gaps and its order is the commit order.
- ``get``/``user_tweets``/``recent``: tweet lookups for hydration, the user
  timeline (seed 003, "Partition Key: user_id, Clustering Key: created_at
  (descending)") and the celebrities' tweets pulled on read; per author, IDs
  are kept in a ``sortedcontainers.SortedList`` (newest = largest Snowflake ID).
- ``watch``: the log from a sequence on, waiting for new entries at the end.

Single event loop; the journal's blocking calls run in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from sortedcontainers import SortedList

from ...runtime.errors import NotFound
from .journal import LoggedTweet, TweetJournal

log = logging.getLogger("casemesh.social.tweets")


@dataclass
class TweetRecord:
    """A stored tweet and the users who liked it."""

    tweet_id: int
    author_id: str
    text: str
    create_time_ns: int
    likers: set[str] = field(default_factory=set)


@dataclass
class _Pending:
    tweet_id: int
    author_id: str
    text: str
    create_time_ns: int
    done: asyncio.Future


class TweetStore:
    """The tweets of one TweetService; ``journal`` ``None`` keeps them in memory only (unit tests)."""

    def __init__(self, journal: TweetJournal | None, max_commit_batch: int = 512,
                 on_commit: Callable[[int], None] | None = None) -> None:
        self._journal = journal
        self._on_commit = on_commit
        self._max_batch = max_commit_batch
        self._tweets: dict[int, TweetRecord] = {}
        self._by_author: dict[str, SortedList] = {}
        self._log: list[LoggedTweet] = []
        self._pending_tweets: list[_Pending] = []
        self._pending_likes: list[tuple[int, str]] = []
        self._wake_writer = asyncio.Event()
        self._appended = asyncio.Event()
        self._writer: asyncio.Task | None = None
        self._stopping = False
        #: Group commits so far (tweets per commit = last_sequence / commits).
        self.commits = 0

    @property
    def last_sequence(self) -> int:
        """The sequence of the newest logged tweet (0: none)."""
        return len(self._log)

    async def start(self) -> int:
        """Load the log from disk and start the committer; returns the number of tweets loaded."""
        if self._journal is not None:
            tweets, likes = await asyncio.to_thread(self._journal.load)
            for entry in tweets:
                self._apply(entry)
            for tweet_id, user_id in likes:
                record = self._tweets.get(tweet_id)
                if record is not None:
                    record.likers.add(user_id)
        self._writer = asyncio.create_task(self._commit_loop(), name="social-tweets-commit")
        return len(self._log)

    async def stop(self) -> None:
        """Commit what is pending, then stop the committer."""
        if self._writer is None:
            return
        self._stopping = True
        self._wake_writer.set()
        await self._writer
        self._writer = None

    def _apply(self, entry: LoggedTweet) -> TweetRecord:
        record = TweetRecord(entry.tweet_id, entry.author_id, entry.text, entry.create_time_ns)
        self._tweets[entry.tweet_id] = record
        self._by_author.setdefault(entry.author_id, SortedList()).add(entry.tweet_id)
        self._log.append(entry)
        return record

    async def post(self, tweet_id: int, author_id: str, text: str, create_time_ns: int) -> LoggedTweet:
        """Store a new tweet durably; returns its log entry once committed (or raises the commit's error)."""
        done = asyncio.get_running_loop().create_future()
        self._pending_tweets.append(_Pending(tweet_id, author_id, text, create_time_ns, done))
        self._wake_writer.set()
        return await asyncio.shield(done)

    async def like(self, tweet_id: int, user_id: str) -> int:
        """Add ``user_id``'s like (again counts once); returns the like count. ``NotFound`` for an unknown tweet."""
        record = self._tweets.get(tweet_id)
        if record is None:
            raise NotFound(f"tweet {tweet_id} does not exist")
        if user_id not in record.likers:
            record.likers.add(user_id)
            self._pending_likes.append((tweet_id, user_id))
            self._wake_writer.set()
        return len(record.likers)

    def get(self, tweet_ids: list[int]) -> list[TweetRecord]:
        """The tweets among ``tweet_ids`` that exist, in that order."""
        found = (self._tweets.get(i) for i in tweet_ids)
        return [t for t in found if t is not None]

    def user_tweets(self, author_id: str, before_id: int | None, limit: int) -> list[TweetRecord]:
        """``author_id``'s tweets with IDs below ``before_id`` (all when ``None``), newest first, at most ``limit``."""
        ids = self._by_author.get(author_id)
        if not ids:
            return []
        end = len(ids) if before_id is None else ids.bisect_left(before_id)
        return [self._tweets[i] for i in reversed(ids[max(0, end - limit):end])]

    def recent(self, author_ids: list[str], limit_per_author: int) -> list[int]:
        """The newest ``limit_per_author`` tweet IDs of each author, merged, newest first."""
        out: list[int] = []
        if limit_per_author < 1:  # ids[-0:] would be every ID
            return out
        for author in dict.fromkeys(author_ids):
            ids = self._by_author.get(author)
            if ids:
                out.extend(ids[-limit_per_author:])
        out.sort(reverse=True)
        return out

    async def watch(self, from_sequence: int, max_batch: int) -> AsyncIterator[list[LoggedTweet]]:
        """Batches of consecutive log entries from ``from_sequence`` (1-based) on; waits at the end. Never ends.

        When there is nothing to send at first, one empty batch comes at once,
        so a consumer learns that it has caught up (WatchTweetsResponse.log_end_sequence).
        """
        next_index = from_sequence - 1
        if next_index >= len(self._log):
            yield []
        while True:
            appended = self._appended
            if next_index < len(self._log):
                batch = self._log[next_index:next_index + max_batch]
                next_index += len(batch)
                yield batch
                continue
            await appended.wait()

    async def _commit_loop(self) -> None:
        while not self._stopping:
            await self._wake_writer.wait()
            self._wake_writer.clear()
            while self._pending_tweets or self._pending_likes:
                await self._commit_once()

    async def _commit_once(self) -> None:
        batch, self._pending_tweets = self._pending_tweets[:self._max_batch], self._pending_tweets[self._max_batch:]
        likes, self._pending_likes = self._pending_likes, []
        first = len(self._log) + 1
        entries = [LoggedTweet(first + i, p.tweet_id, p.author_id, p.text, p.create_time_ns) for i, p in enumerate(batch)]
        try:
            if self._journal is not None:
                await asyncio.to_thread(self._journal.append, entries, likes)
        except Exception as error:  # the disk refused: nobody in this batch is acknowledged
            log.error("committing %d tweets and %d likes failed: %s", len(entries), len(likes), error)
            for p in batch:
                if not p.done.done():
                    p.done.set_exception(error)
            return
        self.commits += 1
        if self._on_commit is not None:
            self._on_commit(len(entries))
        for entry, p in zip(entries, batch):
            self._apply(entry)
            if not p.done.done():
                p.done.set_result(entry)
        if entries:
            self._appended.set()
            self._appended = asyncio.Event()
