"""ads-server's targeting index (services/ads/server/index.py) against brute force with ``contract.matches``
(hypothesis), its sync by version (services/ads/server/sync.py), and the first-price auction
(services/ads/server/auction.py): highest bid first, ties by a hash of the request and the campaign."""

from __future__ import annotations

import asyncio
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from casemesh.ads.v1 import ads_pb2, campaigns_pb2
from casemesh.common.v1 import money_pb2
from casemesh.services.ads import contract
from casemesh.services.ads.server import auction
from casemesh.services.ads.server.index import CampaignEntry, TargetingIndex
from casemesh.services.ads.server.sync import CampaignSync

COUNTRIES = ["US", "DE", "FR", "JP"]
INTERESTS = ["sports", "news", "cars", "food", "travel"]
DEVICES = [1, 2, 3, 4]


def _campaign(campaign_id: str, countries=(), interests=(), devices=(), bid: int = 100,
              state: int = ads_pb2.CAMPAIGN_STATE_ACTIVE, version: int = 1) -> ads_pb2.Campaign:
    return ads_pb2.Campaign(
        campaign_id=campaign_id, advertiser_id="adv",
        targeting=ads_pb2.Targeting(countries=countries, interests=interests, devices=devices),
        cpm_bid=money_pb2.Money(currency_code="USD", amount_minor=bid),
        daily_budget=money_pb2.Money(currency_code="USD", amount_minor=10_000),
        frequency_cap=ads_pb2.FrequencyCap(max_impressions=3, window_s=60),
        creative=ads_pb2.Creative(headline="h", landing_url="https://example.com/"), state=state, version=version)


_campaigns = st.lists(st.tuples(
    st.lists(st.sampled_from(COUNTRIES), max_size=2, unique=True),
    st.lists(st.sampled_from(INTERESTS), max_size=3, unique=True),
    st.lists(st.sampled_from(DEVICES), max_size=2, unique=True),
    st.integers(1, 5), st.booleans()), max_size=25)
_requests = st.tuples(st.sampled_from(["", *COUNTRIES, "GB"]),
                      st.lists(st.sampled_from([*INTERESTS, "other"]), max_size=4),
                      st.sampled_from([0, *DEVICES]), st.integers(1, 30))


@settings(max_examples=300, deadline=None)
@given(_campaigns, st.lists(st.integers(0, 24), max_size=10), st.lists(_requests, min_size=1, max_size=5))
def test_the_index_finds_what_brute_force_finds(specs, updates, requests):
    index = TargetingIndex()
    stored: dict[str, ads_pb2.Campaign] = {}
    for n, (countries, interests, devices, bid, active) in enumerate(specs):
        campaign = _campaign(f"c{n}", countries, interests, devices, bid,
                             ads_pb2.CAMPAIGN_STATE_ACTIVE if active else ads_pb2.CAMPAIGN_STATE_PAUSED)
        index.upsert(campaign)
        stored[campaign.campaign_id] = campaign
    for n in updates:  # pause or resume some: the postings follow
        campaign = stored.get(f"c{n}")
        if campaign is not None:
            flipped = ads_pb2.Campaign()
            flipped.CopyFrom(campaign)
            flipped.state = (ads_pb2.CAMPAIGN_STATE_PAUSED if campaign.state == ads_pb2.CAMPAIGN_STATE_ACTIVE
                             else ads_pb2.CAMPAIGN_STATE_ACTIVE)
            index.upsert(flipped)
            stored[flipped.campaign_id] = flipped
    active = [c for c in stored.values() if c.state == ads_pb2.CAMPAIGN_STATE_ACTIVE]
    assert len(index) == len(active)
    for country, interests, device, limit in requests:
        expected = [c for c in active if contract.matches(
            c.targeting.countries, c.targeting.interests, c.targeting.devices, country=country,
            request_interests=interests, device=device)]
        expected.sort(key=lambda c: (-c.cpm_bid.amount_minor, c.campaign_id))
        found = index.candidates(country, interests, device, limit)
        assert [e.campaign_id for e in found] == [c.campaign_id for c in expected[:limit]]


def test_index_entries_and_removal():
    index = TargetingIndex()
    index.upsert(_campaign("a", countries=["US"], interests=["news"], devices=[2], bid=300))
    index.upsert(_campaign("b", bid=200))
    assert [e.campaign_id for e in index.candidates("US", ["news", "x"], 2, 10)] == ["a", "b"]
    assert [e.campaign_id for e in index.candidates("", [], 0, 10)] == ["b"]  # unknown: only "any" campaigns
    assert [e.campaign_id for e in index.candidates("US", ["news"], 2, 1)] == ["a"]
    index.upsert(_campaign("a", countries=["DE"], bid=300, version=2))  # retargeted
    assert [e.campaign_id for e in index.candidates("US", ["news"], 2, 10)] == ["b"]
    index.upsert(_campaign("b", state=ads_pb2.CAMPAIGN_STATE_PAUSED, version=3))
    assert index.candidates("US", [], 0, 10) == [] and len(index) == 1
    entry = index.get("a")
    assert entry == CampaignEntry("a", frozenset({"DE"}), frozenset(), frozenset(), 300, "USD", 3, 60, "h",
                                  "https://example.com/", 2)


def _bidder(campaign_id: str, bid: int) -> CampaignEntry:
    return CampaignEntry.of(_campaign(campaign_id, bid=bid))


def test_first_price_the_highest_bid_wins():
    bidders = [_bidder("low", 100), _bidder("high", 500), _bidder("mid", 300)]
    assert [b.campaign_id for b in auction.rank(bidders, "req1")] == ["high", "mid", "low"]
    assert contract.impression_price_milli_minor(500) == 500  # the winner pays its own bid


def test_ties_fall_by_a_hash_of_the_request_and_the_campaign():
    bidders = [_bidder(f"c{n}", 100) for n in range(4)]
    winners = Counter(auction.rank(bidders, f"req{n}")[0].campaign_id for n in range(400))
    assert set(winners) == {"c0", "c1", "c2", "c3"} and min(winners.values()) > 50  # no campaign always favoured
    assert auction.rank(bidders, "same") == auction.rank(list(reversed(bidders)), "same")  # deterministic
    assert auction.rank([*bidders, _bidder("top", 101)], "req")[0].campaign_id == "top"  # a bid beats any tie


class FakeCampaigns:
    """ListCampaigns over a list of campaign versions, in pages of ``page`` (``fail`` raises instead)."""

    def __init__(self, page: int = 2) -> None:
        self.changes: list[ads_pb2.Campaign] = []
        self.page = page
        self.fail = False

    async def changed_after(self, after_version, timeout_s):
        if self.fail:
            raise ConnectionError("ads-campaigns is down")
        after = [c for c in self.changes if c.version > after_version]
        return campaigns_pb2.ListCampaignsResponse(campaigns=after[:self.page], more=len(after) > self.page,
                                                   version=max((c.version for c in self.changes), default=0))


async def test_the_sync_follows_the_campaigns_by_version():
    campaigns, index = FakeCampaigns(), TargetingIndex()
    sync = CampaignSync(campaigns, index, interval_ms=10, timeout_ms=100)
    campaigns.changes = [_campaign(f"c{n}", bid=100 + n, version=n + 1) for n in range(5)]
    assert await sync.poll() == 5 and sync.version == 5 and len(index) == 5  # three pages
    campaigns.changes.append(_campaign("c1", state=ads_pb2.CAMPAIGN_STATE_PAUSED, version=6))
    assert await sync.poll() == 1 and len(index) == 4 and index.get("c1") is None
    assert await sync.poll() == 0
    campaigns.fail = True
    task = asyncio.create_task(sync.run())  # failing polls leave the index as it was
    await asyncio.sleep(0.05)
    assert len(index) == 4 and sync.version == 6
    campaigns.fail = False
    campaigns.changes.append(_campaign("c1", version=7))
    for _ in range(100):
        if len(index) == 5:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    assert len(index) == 5 and sync.version == 7
