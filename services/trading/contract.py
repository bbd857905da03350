"""The stock exchange contract's rules that clients and servers both apply (part of the contract:
protos/casemesh/trading/v1).

Seed 001 #08 (shared/seeds/001_58dfc580020147d2.txt line 22: "| 08 | Stock Trading | Order matching engine, order
book, market data, low-latency | <10ms p99 latency, NASDAQ-scale |"). Imported by the trading services and by the
trading workload alike; a client in another language applies the same rules, which the protos quote in their field
comments. Every pattern matches a whole string (``fullmatch``, or the ``is_*`` helpers): ``SYMBOL_RE`` is
``^[A-Z]{1,8}$`` and so on.

- Symbols: 1 to :data:`MAX_SYMBOL_CHARS` upper-case ASCII letters, ``[A-Z]{1,8}`` (:data:`SYMBOL_RE`,
  :func:`is_symbol`).
- Account and client order ids: 1 to 64 characters of ``[A-Za-z0-9_-]`` (:data:`ID_RE`, :func:`is_id`; the rule of
  services/runtime/identifiers.py).
- Order ids (the exchange's): :data:`ORDER_ID_PREFIX` ``ord_`` and :data:`ORDER_ID_CHARS` 24 characters of
  ``[a-z2-7]`` (lower-case RFC 4648 base32), :data:`ORDER_ID_RE`, :func:`is_order_id`; the gateway derives one per
  (account_id, client_order_id), so every retry of an order carries the same id.
- Prices are integer minor units per share, a limit price 1 to :data:`MAX_PRICE_MINOR` (10^12), a market order's 0;
  quantities are whole shares, 1 to :data:`MAX_QUANTITY` (10^9).
- Streams and books: MarketDataService.StreamMarketData takes 1 to :data:`MAX_STREAM_SYMBOLS` symbols and a depth of
  1 to :data:`MAX_STREAM_DEPTH` levels; MatchingEngineService.GetBook a depth of 0 (all) to :data:`MAX_BOOK_DEPTH`.
- Trade ids are ``"<symbol>-<sequence>"`` (:func:`trade_id`): the symbol and the engine sequence number of the trade
  event, unique per engine.
"""

from __future__ import annotations

import re

from ..runtime.identifiers import ID_PATTERN, is_id

__all__ = [
    "ID_RE",
    "MAX_BOOK_DEPTH",
    "MAX_PRICE_MINOR",
    "MAX_QUANTITY",
    "MAX_STREAM_DEPTH",
    "MAX_STREAM_SYMBOLS",
    "MAX_SYMBOL_CHARS",
    "ORDER_ID_ALPHABET",
    "ORDER_ID_CHARS",
    "ORDER_ID_PREFIX",
    "ORDER_ID_RE",
    "SYMBOL_RE",
    "is_id",
    "is_order_id",
    "is_symbol",
    "trade_id",
]

#: Characters of a symbol at most.
MAX_SYMBOL_CHARS = 8
#: A symbol: ``^[A-Z]{1,8}$``.
SYMBOL_RE = re.compile(r"[A-Z]{1,8}")
#: An account id or client order id: ``^[A-Za-z0-9_-]{1,64}$``.
ID_RE = ID_PATTERN
ORDER_ID_PREFIX = "ord_"
#: Characters after an order id's prefix.
ORDER_ID_CHARS = 24
#: The characters of an order id after its prefix: lower-case RFC 4648 base32.
ORDER_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
#: An exchange order id: ``^ord_[a-z2-7]{24}$``.
ORDER_ID_RE = re.compile(r"ord_[a-z2-7]{24}")
#: The highest limit price, minor units per share (10^12: ten billion dollars a share).
MAX_PRICE_MINOR = 10**12
#: The most shares one order may ask for (10^9).
MAX_QUANTITY = 10**9
#: Symbols one StreamMarketData call may follow at most.
MAX_STREAM_SYMBOLS = 32
#: Levels per side StreamMarketData sends at most.
MAX_STREAM_DEPTH = 50
#: Levels per side GetBook returns at most (0 asks for all).
MAX_BOOK_DEPTH = 1_000


def is_symbol(value: str) -> bool:
    """True for 1 to 8 characters of ``[A-Z]``."""
    return SYMBOL_RE.fullmatch(value) is not None


def is_order_id(value: str) -> bool:
    """True for ``ord_`` and 24 characters of ``[a-z2-7]``."""
    return ORDER_ID_RE.fullmatch(value) is not None


def trade_id(symbol: str, sequence: int) -> str:
    """The id of the trade that engine event ``sequence`` recorded in ``symbol``: ``"<symbol>-<sequence>"``."""
    return f"{symbol}-{sequence}"
