"""Request validation shared by the social feed's servicers, rule for rule as protos/casemesh/social/v1 says.

Validated in Python rather than with protovalidate annotations (shared/NOTES.md).
Every failure raises ``InvalidArgument(field, reason)`` with the proto field
name, so the server answers ``INVALID_ARGUMENT`` with ``"FIELD: REASON"``.
"""

from __future__ import annotations

from collections.abc import Sequence

from casemesh.services.runtime.errors import InvalidArgument

from .limits import MAX_TWEET_CHARS, USER_ID_PATTERN


def validate_user_id(field: str, value: str) -> str:
    """``value`` when it is a user ID (1 to 64 characters of [A-Za-z0-9_-]); else ``InvalidArgument(field)``."""
    if not value:
        raise InvalidArgument(field, "is required")
    if not USER_ID_PATTERN.fullmatch(value):
        raise InvalidArgument(field, "must be 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'")
    return value


def validate_text(text: str) -> str:
    """A tweet's text: 1 to 280 code points, not only whitespace; else ``InvalidArgument("text")``."""
    if not text.strip():
        raise InvalidArgument("text", "is required (and not only whitespace)")
    if len(text) > MAX_TWEET_CHARS:
        raise InvalidArgument("text", f"is {len(text)} characters; at most {MAX_TWEET_CHARS}")
    return text


def page_size(value: int, *, default: int, most: int) -> int:
    """A request's ``page_size``: ``default`` for 0, ``InvalidArgument("page_size")`` outside 0..``most``."""
    if value < 0 or value > most:
        raise InvalidArgument("page_size", f"must be 0 (default {default}) to {most}, not {value}")
    return value or default


def validate_tweet_ids(ids: Sequence[int], most: int) -> list[int]:
    """1 to ``most`` tweet IDs, none zero; else ``InvalidArgument("tweet_ids")``."""
    if not ids:
        raise InvalidArgument("tweet_ids", "is required (at least one ID)")
    if len(ids) > most:
        raise InvalidArgument("tweet_ids", f"has {len(ids)} IDs; at most {most}")
    for i, tweet_id in enumerate(ids):
        if tweet_id == 0:
            raise InvalidArgument(f"tweet_ids[{i}]", "must not be 0")
    return list(ids)
