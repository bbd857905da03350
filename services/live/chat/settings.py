"""Settings of ``live-chat`` (topology ``settings.live-chat``).

- ``banned_words`` ``["badword", "spamlink", "scamcoin"]``: the demo list,
  harmless placeholder tokens that the live workload puts in some of its
  messages to exercise the filter (it names them itself: a workload imports
  nothing from a service). A real deployment loads its list here; an empty
  list turns the filter off.
- ``rate_limit`` ``"20/30 seconds"``: Twitch's chat limit for users who are
  not moderators (moderation.py), in the ``limits`` package's notation.
- ``chat_timeout_ms`` 5,000: deadline of each call to chat-messages
  (CreateGroup, SendMessage), which answer after an fsync.
"""

from __future__ import annotations

from limits import parse
from pydantic import BaseModel, ConfigDict, Field, field_validator


class LiveChatSettings(BaseModel):
    """``live-chat`` settings; every field optional (defaults above), unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    banned_words: tuple[str, ...] = Field(default=("badword", "spamlink", "scamcoin"), max_length=100_000, description=(
        "Words or phrases a message may not contain (whole words, case-insensitive); such a message is answered "
        "BLOCKED and sent to nobody. Empty: no filter."))
    rate_limit: str = Field(default="20/30 seconds", description=(
        "Most messages one user may post in one stream's room, in a moving window (`limits` notation, e.g. "
        "'20/30 seconds'); beyond it PostMessage is RESOURCE_EXHAUSTED."))
    chat_timeout_ms: float = Field(default=5_000.0, gt=0, le=60_000, description=(
        "Deadline of each chat-messages call (CreateGroup, SendMessage), in ms."))

    @field_validator("banned_words")
    @classmethod
    def _words(cls, words: tuple[str, ...]) -> tuple[str, ...]:
        if any(not w.strip() for w in words):
            raise ValueError("a banned word must not be empty")
        return words

    @field_validator("rate_limit")
    @classmethod
    def _limit(cls, limit: str) -> str:
        try:
            parse(limit)
        except ValueError as error:
            raise ValueError(f"not a rate limit in the `limits` notation ('20/30 seconds'): {error}") from None
        return limit
