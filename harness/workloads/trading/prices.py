"""Where the trading workload's orders are priced: the top of each book as this load process knows it, and the passive
and marketable prices drawn from it (pure bookkeeping, no I/O).

Seed 001 #08 "Stock Trading" (shared/seeds/001_58dfc580020147d2.txt line 22: "Order matching engine, order book,
market data, low-latency | <10ms p99 latency, NASDAQ-scale"). Prices are integer minor units per share (cents for
USD), every limit price a multiple of the instrument's tick (trading.proto). What a load process knows of a book
(:class:`Top`) comes from its market data streams (the snapshot and depth updates: best bid, best ask and the shares
of the top levels on each side; trades: the last price) and from its own PlaceOrder answers (their trades), each
update applied only when its engine sequence number is not older than what the view holds.

- **The band** (:meth:`Top.band`): the gateway refuses a limit price more than ``price_band_pct`` % from the symbol's
  last trade, else its reference price (services/trading/gateway/settings.py, 10 %: the Limit Up-Limit Down band of
  Tier 2 NMS stocks; Tier 1's is 5 %). Every price drawn here is kept within ``price_band_pct - band_margin_pct`` % of the last trade
  this process has seen, rounded inwards to the tick: the margin covers the few milliseconds by which this view lags
  the gateway's.
- **Passive** (:func:`passive_price`, a market maker's quote): ``ticks_away`` ticks behind the best price on its own
  side (0: joining it), never at or through the best price on the other side; on an empty side, one tick inside the
  other side's best, or around the band's centre when both are empty.
- **Marketable** (:func:`marketable_price`, a taker's limit): the other side's best price plus ``slippage_ticks``
  ticks towards the taker (a buy pays up to that much more): it trades at once against what the book shows.
- **The thinner side** (:func:`thinner_side`): the side whose top levels hold fewer shares; market makers refill it
  more often, which keeps every book two-sided around its price instead of drifting away from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from casemesh.trading.v1 import trading_pb2

BUY = trading_pb2.SIDE_BUY
SELL = trading_pb2.SIDE_SELL


def other_side(side: int) -> int:
    """SIDE_SELL for SIDE_BUY and the other way round."""
    return SELL if side == BUY else BUY


@dataclass(frozen=True)
class Instrument:
    """A listed symbol as ListInstruments answered it: prices are multiples of ``tick_minor`` minor units of
    ``currency_code``; ``reference_price_minor`` centres the band until the first trade."""

    symbol: str
    tick_minor: int
    reference_price_minor: int
    currency_code: str = "USD"


@dataclass
class Top:
    """One book's top as this process knows it: best bid and ask (minor units; ``None`` for an empty side), the
    shares resting on each side's top levels, the last trade's price, and the engine sequence numbers they are from."""

    instrument: Instrument
    bid: int | None = None
    ask: int | None = None
    bid_shares: int = 0
    ask_shares: int = 0
    depth_sequence: int = 0
    last: int | None = None
    last_sequence: int = 0

    def depth(self, sequence: int, bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> None:
        """A snapshot or depth update at ``sequence``: ``bids`` and ``asks`` as (price, shares), best first. Ignored
        when older than the view."""
        if sequence < self.depth_sequence:
            return
        self.depth_sequence = sequence
        self.bid = bids[0][0] if bids else None
        self.ask = asks[0][0] if asks else None
        self.bid_shares = sum(q for _, q in bids)
        self.ask_shares = sum(q for _, q in asks)

    def trade(self, sequence: int, price_minor: int) -> None:
        """A trade at ``sequence`` (from the stream or from an answer); ignored when older than the last one known."""
        if sequence >= self.last_sequence:
            self.last_sequence = sequence
            self.last = price_minor

    @property
    def centre(self) -> int:
        """The band's centre as the gateway has it: the last trade, else the reference price (minor units)."""
        return self.last if self.last is not None else self.instrument.reference_price_minor

    def band(self, band_pct: float) -> tuple[int, int]:
        """The lowest and highest limit prices within ``band_pct`` % of :attr:`centre`, on the tick (minor units)."""
        tick = self.instrument.tick_minor
        centre = self.centre
        low = max(math.ceil(centre * (1 - band_pct / 100) / tick) * tick, tick)
        high = max(math.floor(centre * (1 + band_pct / 100) / tick) * tick, low)
        return low, high


def on_tick(price: int, tick: int) -> int:
    """``price`` rounded down to a multiple of ``tick`` (at least one tick)."""
    return max(price // tick * tick, tick)


def clamp(price: int, band: tuple[int, int]) -> int:
    """``price`` within ``band`` (both ends on the tick)."""
    return min(max(price, band[0]), band[1])


def passive_price(top: Top, side: int, ticks_away: int, band_pct: float) -> int:
    """A resting limit price for ``side``: ``ticks_away`` ticks behind its side's best, never crossing the other
    side's best, within the band (module docstring)."""
    tick = top.instrument.tick_minor
    centre = on_tick(top.centre, tick)
    if side == BUY:
        anchor = top.bid if top.bid is not None else (top.ask - tick if top.ask is not None else centre - tick)
        price = anchor - ticks_away * tick
        if top.ask is not None:
            price = min(price, top.ask - tick)
    else:
        anchor = top.ask if top.ask is not None else (top.bid + tick if top.bid is not None else centre + tick)
        price = anchor + ticks_away * tick
        if top.bid is not None:
            price = max(price, top.bid + tick)
    return clamp(on_tick(price, tick), top.band(band_pct))


def marketable_price(top: Top, side: int, slippage_ticks: int, band_pct: float) -> int:
    """A taker's limit price for ``side``: the other side's best (the band's centre when it is empty) and
    ``slippage_ticks`` ticks more in the taker's direction, within the band."""
    tick = top.instrument.tick_minor
    if side == BUY:
        price = (top.ask if top.ask is not None else on_tick(top.centre, tick)) + slippage_ticks * tick
    else:
        price = (top.bid if top.bid is not None else on_tick(top.centre, tick)) - slippage_ticks * tick
    return clamp(on_tick(price, tick), top.band(band_pct))


def thinner_side(top: Top) -> int:
    """The side whose top levels hold fewer shares (SIDE_BUY on a tie)."""
    return BUY if top.bid_shares <= top.ask_shares else SELL
