"""The first-price auction (seed 001 #15, shared/seeds/001_58dfc580020147d2.txt line 40: "first-price auction").

The bidders are ranked by CPM bid, highest first; the winner pays its own bid
(``contract.impression_price_milli_minor``). Bids of equal CPM are ordered by a hash of the request ID and the campaign
ID (BLAKE2b, 64 bits), so that ties fall differently from one request to the next and no campaign is always favoured
(the campaign ID alone would always favour the same one). The decider tries the bidders in this order when the
winner's reservation or charge is refused. Bids are compared in minor units whatever their currency (the case study's
campaigns share one currency; a multi-currency exchange would convert first).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Protocol, TypeVar


class Bidder(Protocol):
    campaign_id: str
    cpm_minor: int


def tie_break(request_id: str, campaign_id: str) -> int:
    """A 64-bit hash of the request and the campaign: the order of equal bids."""
    digest = hashlib.blake2b(f"{request_id}\x00{campaign_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


B = TypeVar("B", bound=Bidder)


def rank(bidders: Iterable[B], request_id: str) -> list[B]:
    """``bidders`` best first: by CPM bid descending, ties by :func:`tie_break`."""
    return sorted(bidders, key=lambda b: (-b.cpm_minor, tie_break(request_id, b.campaign_id)))
