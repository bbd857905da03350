"""Chat moderation: a banned-words filter and a per-user rate limit (seed 001 #12, "chat moderation").

Seed 001 #12 (shared/seeds/001_58dfc580020147d2.txt), "Live Streaming |
LL-HLS/WebRTC, RTMP ingest, chat moderation, DVR | 1M concurrent viewers":
a popular stream's chat is written by thousands of viewers at once, so
moderation runs on every message before it is fanned out, and must cost the
same whatever the size of the word list.

- :class:`BannedWords`: whole-word, case-insensitive matches of a word list
  in one pass over the text, whatever the number of words: an Aho-Corasick
  automaton (``pyahocorasick``), the classic multi-pattern matcher of chat
  filters (Twitch's "Blocked Terms" are whole words or phrases, matched
  case-insensitively). A match counts only at word boundaries: the
  characters just before and after it are not alphanumeric (or are the
  text's ends), so ``badword!`` matches ``badword`` and ``notbadwords``
  does not.
- :class:`ChatRateLimit`: a moving window per (stream, user) with the
  ``limits`` package (``MovingWindowRateLimiter`` over ``MemoryStorage``).
  The default, 20 messages per 30 seconds, is Twitch's limit for a user who
  is not a moderator or broadcaster of the channel
  (https://dev.twitch.tv/docs/chat/#rate-limits: "20 messages per 30
  seconds" for regular users; 100 for moderators). A moving window, not a
  fixed one, so a burst across a window boundary cannot double it.

Plain classes, synchronous (no ``await``): one event loop calls them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import ahocorasick
from limits import parse, storage, strategies


class BannedWords:
    """A banned-word list (words or phrases; matched lower-cased, whole words only) and its automaton.

    An empty list matches nothing. ``ValueError`` for an empty or
    whitespace-only entry.
    """

    def __init__(self, words: Iterable[str]) -> None:
        self.words = tuple(dict.fromkeys(w.strip().lower() for w in words))
        if any(not w for w in self.words):
            raise ValueError("a banned word must not be empty")
        self._automaton: ahocorasick.Automaton | None = None
        if self.words:
            automaton = ahocorasick.Automaton()
            for word in self.words:
                automaton.add_word(word, (len(word), word))
            automaton.make_automaton()
            self._automaton = automaton

    def __len__(self) -> int:
        return len(self.words)

    def matches(self, text: str) -> list[str]:
        """The banned words ``text`` contains as whole words, lower-cased, each once, in order of first appearance."""
        if self._automaton is None or not text:
            return []
        lowered = text.lower()
        found: dict[str, None] = {}
        last = len(lowered) - 1
        for end, (length, word) in self._automaton.iter(lowered):
            start = end - length + 1
            if start > 0 and lowered[start - 1].isalnum():
                continue
            if end < last and lowered[end + 1].isalnum():
                continue
            found[word] = None
        return list(found)


class ChatRateLimit:
    """At most ``limit`` (a ``limits`` string: ``"20/30 seconds"``) messages per (stream, user) in any moving window.

    :meth:`hit` records a message and says whether it was allowed.
    ``ValueError`` for a limit string ``limits`` cannot parse.
    """

    def __init__(self, limit: str = "20/30 seconds") -> None:
        try:
            self.item = parse(limit)
        except ValueError as error:
            raise ValueError(f"not a rate limit: {limit!r} ({error})") from None
        self.limit = limit
        self._storage = storage.MemoryStorage()
        self._limiter = strategies.MovingWindowRateLimiter(self._storage)

    def hit(self, stream_id: str, user_id: str) -> float | None:
        """Count one message of ``user_id`` in ``stream_id``'s room: None when allowed, else the seconds until the
        user may post again (the message is not counted)."""
        if self._limiter.hit(self.item, stream_id, user_id):
            return None
        stats = self._limiter.get_window_stats(self.item, stream_id, user_id)
        return max(stats.reset_time - time.time(), 0.0)
