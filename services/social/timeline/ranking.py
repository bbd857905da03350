"""Order of a home timeline: chronological, or by engagement with time decay.

``engagement_score`` is the Hacker News ranking formula ("gravity"),
``(votes + 1) / (age_hours + 2) ** 1.8`` as published in the Arc source of
news.arc and widely described (e.g. Amir Salihefendic, "How Hacker News
ranking algorithm works", 2010), with likes as votes. Seed 003 lists likes
per tweet in the data model; the seeds ask for a ranked feed without giving a
formula, so this well-known one is used and named.
"""

from __future__ import annotations

#: Exponent of the age penalty (Hacker News uses 1.8).
GRAVITY = 1.8


def engagement_score(like_count: int, age_s: float) -> float:
    """(likes + 1) / (age in hours + 2)^1.8; ``age_s`` below 0 (clock skew) counts as 0."""
    return (like_count + 1) / ((max(age_s, 0.0) / 3600.0 + 2.0) ** GRAVITY)
