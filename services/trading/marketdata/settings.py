"""Settings of ``trading-marketdata`` (topology ``settings.trading-marketdata``); unknown keys are refused.

Seed 001 #08 (shared/seeds/001_58dfc580020147d2.txt line 22: "| 08 | Stock Trading | Order matching engine, order
book, market data, low-latency | <10ms p99 latency, NASDAQ-scale |"). Times are seconds. Defaults:

- ``subscriber_queue_size`` 10,000: messages queued per StreamMarketData call (all its symbols together) before the
  subscriber counts as fallen behind and is ended RESOURCE_EXHAUSTED (at least 32: one snapshot per symbol fits);
- ``feed_initial_backoff_s`` 0.05, ``feed_max_backoff_s`` 2.0: the engine feed's reconnect backoff
  (services/trading/engine_feed.py); ``feed_renew_s`` 86,400: the feed stream's own deadline (reopened at once when
  it runs out).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..contract import MAX_STREAM_SYMBOLS

#: Admission slots of StreamMarketData calls (a subscriber stays for a trading session): not the unary slots.
STREAM_SLOTS = 10_000


class MarketDataSettings(BaseModel):
    """trading-marketdata's knobs; every field optional (defaults in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subscriber_queue_size: int = Field(default=10_000, ge=MAX_STREAM_SYMBOLS, le=10_000_000, description=(
        "Messages queued per subscriber before it is ended RESOURCE_EXHAUSTED as fallen behind."))
    feed_initial_backoff_s: float = Field(default=0.05, gt=0, le=60, description=(
        "First wait before the engine feed is reopened after a failure, in s (doubled per failure)."))
    feed_max_backoff_s: float = Field(default=2.0, gt=0, le=600, description=(
        "Longest wait before the engine feed is reopened, in s."))
    feed_renew_s: float = Field(default=86_400.0, ge=1, le=30 * 86_400, description=(
        "Deadline of one engine feed stream, in s (reopened at once when it runs out)."))

    @model_validator(mode="after")
    def _check(self) -> MarketDataSettings:
        if self.feed_max_backoff_s < self.feed_initial_backoff_s:
            raise ValueError("feed_max_backoff_s must be at least feed_initial_backoff_s")
        return self
