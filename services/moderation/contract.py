"""The content moderation contract's rules that clients and servers both apply (part of the contract:
protos/casemesh/moderation/v1/{moderation,classifier,pipeline,review}.proto).

Seed 001 #26 (shared/seeds/001_58dfc580020147d2.txt line 50: "| 26 | Content Moderation | AI classifiers (BERT/ResNet),
confidence routing, human review, CSAM detection | 100M items/day, Meta/YouTube |"). Imported by the moderation
services and by the moderation workload alike; a client in another language applies the same rules, which the protos
quote in their field comments.

- IDs (items, authors, reviewers): 1 to 64 characters of ``[A-Za-z0-9_-]`` (:func:`is_id`).
- Content: 1 to :data:`MAX_TEXT_CHARS` characters (:func:`is_text`); appeal reasons and reviewer notes at most
  :data:`MAX_NOTE_CHARS`.
- AwaitDecision waits 1 to :data:`MAX_AWAIT_MS`; a review lease lasts :data:`MIN_LEASE_MS` to :data:`MAX_LEASE_MS`;
  PullVerdicts returns 1 to :data:`MAX_PULL_VERDICTS` and waits 0 to :data:`MAX_PULL_WAIT_MS`.
- FAILED_PRECONDITION and PERMISSION_DENIED details start with a reason and a colon: :data:`NOT_REMOVED`,
  :data:`ALREADY_APPEALED`, :data:`NOT_AUTHOR` (AppealDecision), :data:`LEASE_LOST`, :data:`ALREADY_COMPLETED`
  (CompleteTask).
- The audit log of an item holds at most :data:`MAX_AUDIT_ENTRIES` entries (submitted, routed, reviewed, appealed,
  appeal decided).
"""

from __future__ import annotations

from ..runtime.identifiers import is_id

__all__ = [
    "ALREADY_APPEALED", "ALREADY_COMPLETED", "LEASE_LOST", "MAX_AUDIT_ENTRIES", "MAX_AWAIT_MS", "MAX_LEASE_MS",
    "MAX_NOTE_CHARS", "MAX_PULL_VERDICTS", "MAX_PULL_WAIT_MS", "MAX_TEXT_CHARS", "MIN_LEASE_MS", "NOT_AUTHOR",
    "NOT_REMOVED", "is_id", "is_text",
]

#: Longest content, characters (a long post or comment; the seed's items are posts, comments and messages).
MAX_TEXT_CHARS = 5_000
#: Longest appeal reason or reviewer note, characters.
MAX_NOTE_CHARS = 500
#: Longest AwaitDecision, milliseconds.
MAX_AWAIT_MS = 10_000
#: Shortest and longest review lease, milliseconds (1 s to 1 h).
MIN_LEASE_MS = 1_000
MAX_LEASE_MS = 3_600_000
#: Most verdicts one PullVerdicts returns, and its longest wait (milliseconds).
MAX_PULL_VERDICTS = 1_000
MAX_PULL_WAIT_MS = 30_000
#: Most audit entries of one item: submitted, routed, reviewed, appealed, appeal decided (8 leaves room).
MAX_AUDIT_ENTRIES = 8

NOT_REMOVED = "not_removed"
ALREADY_APPEALED = "already_appealed"
NOT_AUTHOR = "not_author"
LEASE_LOST = "lease_lost"
ALREADY_COMPLETED = "already_completed"


def is_text(text: str) -> bool:
    """True when ``text`` is content the services accept: 1 to :data:`MAX_TEXT_CHARS` characters."""
    return 1 <= len(text) <= MAX_TEXT_CHARS
