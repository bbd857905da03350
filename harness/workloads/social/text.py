"""Tweet texts: short sentences from a fixed vocabulary, within the contract's 280 characters."""

from __future__ import annotations

import random

from casemesh.services.social.limits import MAX_TWEET_CHARS

WORDS = (
    "shipping", "design", "latency", "coffee", "deploy", "weekend", "rust", "python", "grpc", "cache",
    "launch", "outage", "postmortem", "benchmark", "kubernetes", "music", "football", "travel", "photo", "news",
    "today", "finally", "great", "team", "thread", "hot", "take", "new", "release", "question",
)


def tweet_text(rng: random.Random, words: int = 12) -> str:
    """A text of about ``words`` words (at most 280 characters)."""
    return " ".join(rng.choice(WORDS) for _ in range(words))[:MAX_TWEET_CHARS]
