"""Settings of ``trading-gateway`` (topology ``settings.trading-gateway``); unknown keys are refused.

Seed 001 #08 (shared/seeds/001_58dfc580020147d2.txt line 22: "| 08 | Stock Trading | Order matching engine, order
book, market data, low-latency | <10ms p99 latency, NASDAQ-scale |"). Prices are minor units (cents for USD) per
share, quantities whole shares, times seconds. Defaults:

- ``instruments``: the listed symbols (:class:`InstrumentSettings`: ``symbol``, ``currency_code``, ``tick_minor``,
  ``reference_price_minor``); by default eight NASDAQ-listed names at about their late-2024 prices, in USD cents
  with a one-cent tick (Reg NMS Rule 612: quotes of $1.00 or more in one-cent increments);
- ``price_band_pct`` 10: a limit price more than 10 % away from the reference (the symbol's last trade seen on the
  engine's log, else the instrument's ``reference_price_minor``) is refused (``price_band``); market orders are not
  price-checked. 10 % is the Limit Up-Limit Down band of Tier 2 NMS stocks (Tier 1: 5 %);
- ``max_order_quantity`` 100,000 shares: a larger ``quantity`` is INVALID_ARGUMENT (a fat-finger limit);
- ``max_notional_minor`` 10^10 ($100M): price x quantity above it is refused (``max_notional``; a market order is
  valued at the reference price);
- ``max_open_orders`` 1,000: resting orders per account (as the engine's log shows them, plus this gateway's
  orders not yet on it and those in flight); one more is refused (``max_open_orders``);
- ``remembered_order_ids`` 200,000: order ids from the log the risk state remembers (the newest), so a retry of one
  skips the risk checks; an older retry is checked again, and if a check refuses it the engine is asked whether it
  holds the order (:mod:`.orders`);
- ``engine_timeout_s`` 1.0: deadline of each SubmitOrder, CancelOrder and GetOrder (bounded by the caller's own);
- ``feed_initial_backoff_s`` 0.05, ``feed_max_backoff_s`` 2.0: the drop copy's reconnect backoff
  (services/trading/engine_feed.py); ``feed_renew_s`` 86,400: the drop copy stream's own deadline (reopened at once
  when it runs out).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .. import contract


class InstrumentSettings(BaseModel):
    """One listed symbol: prices of its orders are multiples of ``tick_minor`` minor units of ``currency_code``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    symbol: str = Field(description="1 to 8 characters of A-Z.")
    currency_code: str = Field(default="USD", pattern=r"^[A-Z]{3}$", description="ISO 4217 code of its prices.")
    tick_minor: int = Field(default=1, ge=1, le=contract.MAX_PRICE_MINOR, description=(
        "Price step in minor units: every limit price is a multiple of it."))
    reference_price_minor: int = Field(ge=1, le=contract.MAX_PRICE_MINOR, description=(
        "The price the band is centred on until the first trade, in minor units (a multiple of tick_minor)."))

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, value: str) -> str:
        if not contract.is_symbol(value):
            raise ValueError(f"{value!r} is not 1 to 8 characters of A-Z")
        return value

    @model_validator(mode="after")
    def _on_tick(self) -> InstrumentSettings:
        if self.reference_price_minor % self.tick_minor:
            raise ValueError(f"reference_price_minor {self.reference_price_minor} is not a multiple of tick_minor "
                             f"{self.tick_minor}")
        return self


def _usd(symbol: str, reference_price_minor: int) -> InstrumentSettings:
    return InstrumentSettings(symbol=symbol, reference_price_minor=reference_price_minor)


#: Eight NASDAQ-listed names at about their late-2024 prices, USD cents, one-cent tick.
DEFAULT_INSTRUMENTS: tuple[InstrumentSettings, ...] = (
    _usd("AAPL", 22_950), _usd("AMZN", 19_800), _usd("AVGO", 16_500), _usd("GOOGL", 17_200),
    _usd("META", 57_500), _usd("MSFT", 41_500), _usd("NVDA", 13_800), _usd("TSLA", 25_000),
)


class GatewaySettings(BaseModel):
    """trading-gateway's knobs; every field optional (defaults in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instruments: tuple[InstrumentSettings, ...] = Field(default=DEFAULT_INSTRUMENTS, min_length=1, max_length=10_000,
                                                        description="The listed symbols.")
    price_band_pct: float = Field(default=10.0, gt=0, le=100, description=(
        "Largest distance of a limit price from the reference (last trade, else reference_price_minor), in %."))
    max_order_quantity: int = Field(default=100_000, ge=1, le=contract.MAX_QUANTITY, description=(
        "Most shares one order may carry (INVALID_ARGUMENT `quantity` above it)."))
    max_notional_minor: int = Field(default=10**10, ge=1, description=(
        "Largest price x quantity of one order, in minor units (market orders at the reference price)."))
    max_open_orders: int = Field(default=1_000, ge=1, le=10_000_000, description=(
        "Most resting orders per account."))
    remembered_order_ids: int = Field(default=200_000, ge=1, le=100_000_000, description=(
        "Order ids from the engine's log remembered, so their retries skip the risk checks."))
    engine_timeout_s: float = Field(default=1.0, gt=0, le=60, description=(
        "Deadline of each SubmitOrder, CancelOrder and GetOrder, in s."))
    feed_initial_backoff_s: float = Field(default=0.05, gt=0, le=60, description=(
        "First wait before the drop copy stream is reopened after a failure, in s (doubled per failure)."))
    feed_max_backoff_s: float = Field(default=2.0, gt=0, le=600, description=(
        "Longest wait before the drop copy stream is reopened, in s."))
    feed_renew_s: float = Field(default=86_400.0, ge=1, le=30 * 86_400, description=(
        "Deadline of one drop copy stream, in s (reopened at once when it runs out)."))

    @model_validator(mode="after")
    def _check(self) -> GatewaySettings:
        symbols = [i.symbol for i in self.instruments]
        if len(set(symbols)) != len(symbols):
            raise ValueError("instruments: each symbol at most once")
        if self.feed_max_backoff_s < self.feed_initial_backoff_s:
            raise ValueError("feed_max_backoff_s must be at least feed_initial_backoff_s")
        return self
