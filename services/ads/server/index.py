"""The targeting index: the ACTIVE campaigns, found by an ad request's country, interests and device.

Seed 001 #15 (shared/seeds/001_58dfc580020147d2.txt line 40: "<100ms decisioning", "1M RPS"): retrieval must not scan
every campaign. :class:`TargetingIndex` keeps an inverted index per targeting dimension: value → the campaigns that
list it, and an "any" bucket of the campaigns that leave the dimension empty (which match every request). A request
matches a campaign when it matches in every dimension (``services.ads.contract.matches``), so the candidates are the
intersection over the three dimensions of (the request's values' postings ∪ the "any" bucket); an unknown country
(empty) or device (0) has no postings and matches the "any" bucket only. The intersection starts from the smallest of
the three sets and probes the other two, then keeps the ``limit`` highest bids (ties: the campaign ID).

Kept current by :mod:`.sync` (one :meth:`TargetingIndex.upsert` per changed campaign: a campaign that is not ACTIVE
leaves the index).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass

from casemesh.ads.v1 import ads_pb2


@dataclass(frozen=True, slots=True)
class CampaignEntry:
    """What a decision needs of one ACTIVE campaign."""

    campaign_id: str
    countries: frozenset[str]
    interests: frozenset[str]
    devices: frozenset[int]
    cpm_minor: int
    currency_code: str
    max_impressions: int
    window_s: int
    headline: str
    landing_url: str
    version: int

    @classmethod
    def of(cls, campaign: ads_pb2.Campaign) -> CampaignEntry:
        targeting, cap = campaign.targeting, campaign.frequency_cap
        return cls(campaign.campaign_id, frozenset(targeting.countries), frozenset(targeting.interests),
                   frozenset(targeting.devices), campaign.cpm_bid.amount_minor, campaign.cpm_bid.currency_code,
                   cap.max_impressions, cap.window_s, campaign.creative.headline, campaign.creative.landing_url,
                   campaign.version)


class _Dimension:
    """One targeting dimension: value → campaign IDs, and the campaigns that target every value."""

    __slots__ = ("any", "postings")

    def __init__(self) -> None:
        self.postings: dict[object, set[str]] = {}
        self.any: set[str] = set()

    def add(self, campaign_id: str, values: frozenset) -> None:
        if not values:
            self.any.add(campaign_id)
        for value in values:
            self.postings.setdefault(value, set()).add(campaign_id)

    def remove(self, campaign_id: str, values: frozenset) -> None:
        if not values:
            self.any.discard(campaign_id)
        for value in values:
            posting = self.postings.get(value)
            if posting is not None:
                posting.discard(campaign_id)
                if not posting:
                    del self.postings[value]

    def matching(self, values: Iterable[object]) -> list[set[str]]:
        """The sets whose union is the campaigns matching a request of ``values`` in this dimension."""
        sets = [self.any]
        for value in values:
            posting = self.postings.get(value)
            if posting:
                sets.append(posting)
        return sets


class TargetingIndex:
    """The ACTIVE campaigns by targeting (see the module docstring)."""

    def __init__(self) -> None:
        self._campaigns: dict[str, CampaignEntry] = {}
        self._countries = _Dimension()
        self._interests = _Dimension()
        self._devices = _Dimension()

    def __len__(self) -> int:
        return len(self._campaigns)

    def get(self, campaign_id: str) -> CampaignEntry | None:
        return self._campaigns.get(campaign_id)

    def upsert(self, campaign: ads_pb2.Campaign) -> None:
        """Take in a campaign as stored now: indexed when ACTIVE, removed otherwise."""
        self.remove(campaign.campaign_id)
        if campaign.state != ads_pb2.CAMPAIGN_STATE_ACTIVE:
            return
        entry = self._campaigns[campaign.campaign_id] = CampaignEntry.of(campaign)
        self._countries.add(entry.campaign_id, entry.countries)
        self._interests.add(entry.campaign_id, entry.interests)
        self._devices.add(entry.campaign_id, entry.devices)

    def remove(self, campaign_id: str) -> None:
        entry = self._campaigns.pop(campaign_id, None)
        if entry is not None:
            self._countries.remove(campaign_id, entry.countries)
            self._interests.remove(campaign_id, entry.interests)
            self._devices.remove(campaign_id, entry.devices)

    def candidates(self, country: str, interests: Iterable[str], device: int, limit: int) -> list[CampaignEntry]:
        """The campaigns matching the request, at most ``limit``, highest bids first (then by campaign ID)."""
        dimensions = [self._countries.matching([country] if country else []),
                      self._interests.matching(set(interests)),
                      self._devices.matching([device] if device else [])]
        dimensions.sort(key=lambda sets: sum(len(s) for s in sets))
        smallest, *others = dimensions
        matched = [campaign_id for posting in smallest for campaign_id in posting
                   if all(any(campaign_id in s for s in sets) for sets in others)]
        if len(smallest) > 1:  # a campaign may be in several of the smallest dimension's postings
            matched = list(set(matched))
        campaigns = self._campaigns
        return heapq.nsmallest(limit, (campaigns[c] for c in matched), key=lambda e: (-e.cpm_minor, e.campaign_id))
