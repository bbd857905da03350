"""live-chat's own metrics (``casemesh_live_chat_*``).

- ``casemesh_live_chat_messages_total{outcome}``: PostMessage calls by
  outcome: ``delivered`` (sent to the room), ``blocked`` (a banned word),
  ``rate_limited`` (RESOURCE_EXHAUSTED), ``refused`` (any other error: a bad
  request, no room, not a member, chat-messages unreachable);
- ``casemesh_live_chat_banned_words_matched_total``: banned words found
  (each distinct word of a blocked message once);
- ``casemesh_live_chat_moderation_seconds`` (histogram): the banned-words
  scan and the rate-limit check of one message;
- ``casemesh_live_chat_rooms`` (gauge): rooms open (streams with a chat room).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

OUTCOMES = ("delivered", "blocked", "rate_limited", "refused")
MESSAGES = Counter("casemesh_live_chat_messages", "PostMessage calls by outcome (delivered, blocked, rate_limited, "
                   "refused).", ["outcome"])
BANNED_MATCHED = Counter("casemesh_live_chat_banned_words_matched", "Banned words found in chat messages.")
#: Seconds: one Aho-Corasick pass over at most 500 characters and a rate-limit check take microseconds.
MODERATION_BUCKETS = (0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05)
MODERATION_SECONDS = Histogram("casemesh_live_chat_moderation_seconds", "Moderation time of one chat message "
                               "(banned words and rate limit).", buckets=MODERATION_BUCKETS)
ROOMS = Gauge("casemesh_live_chat_rooms", "Chat rooms open (streams with a room).")

_OUTCOME = {outcome: MESSAGES.labels(outcome) for outcome in OUTCOMES}


def outcome(name: str) -> None:
    """Count one PostMessage under ``name`` (one of :data:`OUTCOMES`)."""
    _OUTCOME[name].inc()
