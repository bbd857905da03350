"""The tweet log on disk: SQLite in WAL mode, one group commit per batch, fsynced before anyone is answered.

Seed 003 ("Write Path"): a tweet is stored, then published as a
``tweet-posted`` event that the fan-out service consumes. Here one SQLite
file (``DATA_DIR/social-tweets/tweets.sqlite3``) is both: the ``tweets`` table
in sequence order is the event log that WatchTweets streams. SQLite (the
standard library's ``sqlite3``) with ``journal_mode=WAL`` and
``synchronous=FULL`` fsyncs the write-ahead log at every commit, so a
committed tweet survives a crash of the process or the machine.

Commits are grouped: :class:`TweetJournal` is called with every tweet that
arrived while the previous commit ran, so at high post rates one fsync
covers many tweets (the group commit of databases' WALs). Blocking calls run
in a thread of their own (one connection, used by one thread at a time).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...runtime.sqlite_journal import open_durable

FILE_NAME = "tweets.sqlite3"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS tweets (sequence INTEGER PRIMARY KEY, tweet_id INTEGER NOT NULL UNIQUE, "
    "author_id TEXT NOT NULL, text TEXT NOT NULL, create_time_ns INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS likes (tweet_id INTEGER NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (tweet_id, user_id))",
)


@dataclass(frozen=True)
class LoggedTweet:
    """One row of the log: ``sequence`` from 1 without gaps, the Snowflake ``tweet_id``, author, text, create time (ns)."""

    sequence: int
    tweet_id: int
    author_id: str
    text: str
    create_time_ns: int


class TweetJournal:
    """The durable tweet log and likes of one TweetService (one process per data folder)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / FILE_NAME
        self._db = open_durable(self.path, _SCHEMA)

    def load(self) -> tuple[list[LoggedTweet], list[tuple[int, str]]]:
        """Every logged tweet in sequence order, and every (tweet_id, user_id) like. Blocking."""
        tweets = [LoggedTweet(*row) for row in self._db.execute(
            "SELECT sequence, tweet_id, author_id, text, create_time_ns FROM tweets ORDER BY sequence")]
        likes = list(self._db.execute("SELECT tweet_id, user_id FROM likes"))
        return tweets, likes

    def append(self, tweets: list[LoggedTweet], likes: list[tuple[int, str]]) -> None:
        """Commit ``tweets`` (consecutive sequences) and ``likes`` in one transaction, fsynced. Blocking."""
        with self._db:  # BEGIN ... COMMIT, or ROLLBACK on an exception
            self._db.execute("BEGIN")
            self._db.executemany("INSERT INTO tweets VALUES (?, ?, ?, ?, ?)",
                                 [(t.sequence, t.tweet_id, t.author_id, t.text, t.create_time_ns) for t in tweets])
            self._db.executemany("INSERT OR IGNORE INTO likes VALUES (?, ?)", likes)

    def close(self) -> None:
        self._db.close()
