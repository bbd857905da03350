"""The quotes issued: a bounded store with expiry, redeemed once per ride.

Seed 003 (shared/seeds/003_1dfe16d8ccfde9ed.txt), "Uber Ride Matching", Surge Pricing (line 883): the rider sees an
upfront price with the surge of the moment; the ride is requested with that quote, so the fare it pays is the one
it saw. A quote holds ``ttl_s``; RedeemQuote marks it used by one ride (a retry for the same ride gets it again).

Storage: quotes in the order issued, which is also the order they expire (one TTL, a clock that does not go back):
unexpired ones in ``_live``, then, once expired, in ``_expired`` for another TTL (RedeemQuote answers
FAILED_PRECONDITION "expired" for them, NOT_FOUND once forgotten). Each quote moves and is forgotten once, at the
front of its dict, so upkeep costs O(1) per quote. At most ``max_quotes`` are held: when full, the oldest expired
quote is forgotten early; when every held quote is unexpired, GetQuote is RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from casemesh.rides.v1 import pricing_pb2

from ...runtime.errors import FailedPrecondition, NotFound, PermissionDenied, ResourceExhausted

QUOTE_ID_PREFIX = "quote-"


def new_quote_id() -> str:
    """``quote-`` and 26 characters: 128 random bits in lowercase base32 (within the ID rule [A-Za-z0-9_-])."""
    return QUOTE_ID_PREFIX + base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=").lower()


@dataclass(slots=True)
class _Held:
    """A quote held: the message, when it expires (clock seconds) and the ride it was redeemed for (None: not yet)."""

    quote: pricing_pb2.Quote
    expires_at: float
    ride_id: str | None = None


class QuoteBook:
    """Quotes by id (module docstring). ``clock`` gives seconds since the Unix epoch (injectable for tests)."""

    def __init__(self, ttl_s: float, max_quotes: int, clock: Callable[[], float] = time.time) -> None:
        self.ttl_s = ttl_s
        self.max_quotes = max_quotes
        self._clock = clock
        self._live: dict[str, _Held] = {}
        self._expired: dict[str, _Held] = {}

    def __len__(self) -> int:
        """Quotes held (unexpired, and expired less than a TTL ago)."""
        return len(self._live) + len(self._expired)

    def live(self) -> int:
        """Unexpired quotes."""
        self._advance(self._clock())
        return len(self._live)

    def _advance(self, now: float) -> None:
        live, expired = self._live, self._expired
        while live:
            quote_id, held = next(iter(live.items()))
            if held.expires_at > now:
                break
            del live[quote_id]
            expired[quote_id] = held
        forget_before = now - self.ttl_s
        while expired:
            quote_id, held = next(iter(expired.items()))
            if held.expires_at > forget_before:
                break
            del expired[quote_id]

    def expires_at(self) -> float:
        """When a quote issued now expires, in clock seconds."""
        return self._clock() + self.ttl_s

    def add(self, quote: pricing_pb2.Quote, expires_at: float) -> None:
        """Hold ``quote`` until ``expires_at`` (clock seconds; the ``expires_at_unix_ms`` it carries). Raises
        :class:`ResourceExhausted` when ``max_quotes`` unexpired quotes are held."""
        self._advance(self._clock())
        if len(self) >= self.max_quotes:
            if not self._expired:
                raise ResourceExhausted(f"rides-pricing holds {self.max_quotes:,} unexpired quotes; retry in a "
                                        f"moment")
            del self._expired[next(iter(self._expired))]  # full: the oldest expired quote is forgotten early
        self._live[quote.quote_id] = _Held(quote, expires_at)

    def redeem(self, quote_id: str, rider_id: str, ride_id: str) -> pricing_pb2.Quote:
        """Mark the quote used by ``ride_id`` and return it; again for the same ride returns it again.

        :class:`NotFound` for an unknown (or forgotten) quote, :class:`PermissionDenied` when it was quoted to
        another rider, :class:`FailedPrecondition` when it expired or was redeemed for another ride.
        """
        now = self._clock()
        self._advance(now)
        held = self._live.get(quote_id) or self._expired.get(quote_id)
        if held is None:
            raise NotFound(f"quote {quote_id} is unknown (never issued, or forgotten a TTL after it expired)")
        if held.quote.rider_id != rider_id:
            raise PermissionDenied(f"quote {quote_id} was quoted to another rider")
        if held.ride_id == ride_id:
            return held.quote
        if held.ride_id is not None:
            raise FailedPrecondition(f"quote {quote_id} was redeemed for another ride")
        if held.expires_at <= now:
            raise FailedPrecondition(f"quote {quote_id} expired; ask for a new quote")
        held.ride_id = ride_id
        return held.quote
