"""The campaigns' domain (services/ads/campaigns) without gRPC: validation naming every field of CreateCampaign as
campaigns.proto lists it, idempotent creation (the same fields return the stored campaign, other fields are
ALREADY_EXISTS, concurrent creations of one ID write once), state changes (no new version when unchanged), paging by
version, and the store reloaded from its file.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from pydantic import ValidationError

from casemesh.ads.v1 import ads_pb2, campaigns_pb2
from casemesh.common.v1 import money_pb2
from casemesh.services.ads.campaigns import validation
from casemesh.services.ads.campaigns.campaigns import Campaigns
from casemesh.services.ads.campaigns.settings import CampaignsSettings
from casemesh.services.ads.campaigns.store import FILE_NAME, CampaignStore
from casemesh.services.runtime.errors import AlreadyExists, InvalidArgument, NotFound

T0 = 1_800_000_000_000
ACTIVE, PAUSED = ads_pb2.CAMPAIGN_STATE_ACTIVE, ads_pb2.CAMPAIGN_STATE_PAUSED


def campaign(campaign_id: str = "c1", **changes) -> ads_pb2.Campaign:
    message = ads_pb2.Campaign(
        campaign_id=campaign_id, advertiser_id="acme",
        targeting=ads_pb2.Targeting(countries=["US", "DE"], interests=["running"], devices=[ads_pb2.DEVICE_TYPE_MOBILE]),
        cpm_bid=money_pb2.Money(currency_code="USD", amount_minor=250),
        daily_budget=money_pb2.Money(currency_code="USD", amount_minor=100_000),
        frequency_cap=ads_pb2.FrequencyCap(max_impressions=3, window_s=3_600),
        creative=ads_pb2.Creative(headline="Run faster", landing_url="https://acme.example/shoes"))
    for path, value in changes.items():
        target = message
        *parents, leaf = path.split("__")
        for parent in parents:
            target = getattr(target, parent)
        if isinstance(value, list):
            target.ClearField(leaf)
            getattr(target, leaf).extend(value)
        else:
            setattr(target, leaf, value)
    return message


def create(message: ads_pb2.Campaign) -> campaigns_pb2.CreateCampaignRequest:
    return campaigns_pb2.CreateCampaignRequest(campaign=message)


def refused(request, check=validation.campaign) -> str:
    with pytest.raises(InvalidArgument) as error:
        check(request)
    return error.value.field


@pytest.mark.parametrize(("changes", "field"), [
    ({"campaign_id": ""}, "campaign.campaign_id"),
    ({"campaign_id": "a b"}, "campaign.campaign_id"),
    ({"campaign_id": "x" * 65}, "campaign.campaign_id"),
    ({"advertiser_id": ""}, "campaign.advertiser_id"),
    ({"targeting__countries": ["US", "DE", "usa"]}, "campaign.targeting.countries[2]"),
    ({"targeting__countries": ["US"] * 51}, "campaign.targeting.countries[50]"),
    ({"targeting__interests": ["Running"]}, "campaign.targeting.interests[0]"),
    ({"targeting__interests": ["a" * 33]}, "campaign.targeting.interests[0]"),
    ({"targeting__interests": ["a"] * 21}, "campaign.targeting.interests[20]"),
    ({"targeting__devices": [1, 0]}, "campaign.targeting.devices[1]"),
    ({"targeting__devices": [1, 99]}, "campaign.targeting.devices[1]"),
    ({"targeting__devices": [1, 2, 3, 4, 1]}, "campaign.targeting.devices[4]"),
    ({"cpm_bid__currency_code": "usd"}, "campaign.cpm_bid"),
    ({"cpm_bid__amount_minor": 0}, "campaign.cpm_bid"),
    ({"cpm_bid__amount_minor": 100_001}, "campaign.cpm_bid"),
    ({"daily_budget__amount_minor": 0}, "campaign.daily_budget"),
    ({"daily_budget__amount_minor": 10_000_000_001}, "campaign.daily_budget"),
    ({"daily_budget__currency_code": "EUR"}, "campaign.daily_budget"),
    ({"frequency_cap__max_impressions": 0}, "campaign.frequency_cap.max_impressions"),
    ({"frequency_cap__max_impressions": 1_001}, "campaign.frequency_cap.max_impressions"),
    ({"frequency_cap__window_s": 0}, "campaign.frequency_cap.window_s"),
    ({"frequency_cap__window_s": 2_592_001}, "campaign.frequency_cap.window_s"),
    ({"creative__headline": ""}, "campaign.creative.headline"),
    ({"creative__headline": "h" * 91}, "campaign.creative.headline"),
    ({"creative__landing_url": "ftp://x.example"}, "campaign.creative.landing_url"),
    ({"creative__landing_url": "https://x.example/" + "a" * 2_048}, "campaign.creative.landing_url"),
])
def test_validation_names_the_field(changes, field):
    assert refused(create(campaign(**changes))) == field


def test_validation_accepts_the_limits_and_canonicalises():
    wide = campaign(targeting__countries=["US"] * 50, targeting__interests=["a" * 32] * 20,
                    targeting__devices=[1, 2, 3, 4], cpm_bid__amount_minor=100_000,
                    daily_budget__amount_minor=10_000_000_000, frequency_cap__window_s=2_592_000,
                    creative__headline="h" * 90)
    assert validation.campaign(create(wide)).campaign_id == "c1"
    bare = ads_pb2.Campaign()
    bare.CopyFrom(campaign())
    bare.ClearField("targeting")
    bare.state, bare.version, bare.created_at_unix_ms = PAUSED, 7, 5  # ignored
    with_empty = ads_pb2.Campaign()
    with_empty.CopyFrom(bare)
    with_empty.targeting.SetInParent()
    with_empty.ClearField("state")
    assert validation.campaign(create(bare)) == validation.campaign(create(with_empty))
    assert validation.campaign(create(bare)).version == 0
    assert refused(campaigns_pb2.CreateCampaignRequest()) == "campaign.campaign_id"


def test_other_requests_validation():
    assert refused("", validation.campaign_id) == "campaign_id"
    assert refused(0, validation.state) == "state"
    assert refused(9, validation.state) == "state"
    assert refused(campaigns_pb2.ListCampaignsRequest(after_version=-1), validation.list_campaigns) == "after_version"
    assert refused(campaigns_pb2.ListCampaignsRequest(page_size=1_001), validation.list_campaigns) == "page_size"
    assert refused(campaigns_pb2.ListCampaignsRequest(page_size=-1), validation.list_campaigns) == "page_size"
    assert validation.list_campaigns(campaigns_pb2.ListCampaignsRequest()) == (0, 500)
    assert validation.list_campaigns(campaigns_pb2.ListCampaignsRequest(after_version=3, page_size=7)) == (3, 7)


def test_settings():
    assert CampaignsSettings().max_commit_writes == 256
    with pytest.raises(ValidationError):
        CampaignsSettings(unknown=1)
    with pytest.raises(ValidationError):
        CampaignsSettings(max_commit_writes=0)


async def started(path: Path) -> Campaigns:
    campaigns = Campaigns(CampaignStore(path / FILE_NAME), clock=lambda: T0)
    await campaigns.start()
    return campaigns


def valid(message: ads_pb2.Campaign) -> ads_pb2.Campaign:
    return validation.campaign(create(message))


async def test_create_is_idempotent_and_refuses_other_fields(tmp_path: Path):
    campaigns = await started(tmp_path)
    stored = await campaigns.create(valid(campaign()))
    assert (stored.state, stored.version, stored.created_at_unix_ms) == (ACTIVE, 1, T0)
    assert await campaigns.create(valid(campaign())) == stored
    with pytest.raises(AlreadyExists):
        await campaigns.create(valid(campaign(creative__headline="Other")))
    assert campaigns.version == 1
    # concurrent creations of one ID: one write, one answer for all
    answers = await asyncio.gather(*(campaigns.create(valid(campaign("c2"))) for _ in range(10)))
    assert len({a.SerializeToString() for a in answers}) == 1 and answers[0].version == 2
    await campaigns.close()


async def test_state_changes_and_listing_by_version(tmp_path: Path):
    campaigns = await started(tmp_path)
    for i in range(5):
        await campaigns.create(valid(campaign(f"c{i}")))
    assert (await campaigns.set_state("c1", ACTIVE)).version == 2  # unchanged: no new version
    paused = await campaigns.set_state("c1", PAUSED)
    assert (paused.state, paused.version) == (PAUSED, 6)
    assert campaigns.get("c1") == paused
    with pytest.raises(NotFound):
        campaigns.get("nope")
    with pytest.raises(NotFound):
        await campaigns.set_state("nope", PAUSED)
    page, more = campaigns.changed_after(0, 2)
    assert [c.campaign_id for c in page] == ["c0", "c2"] and more
    page, more = campaigns.changed_after(page[-1].version, 2)
    assert [c.campaign_id for c in page] == ["c3", "c4"] and more
    page, more = campaigns.changed_after(page[-1].version, 2)
    assert [(c.campaign_id, c.version) for c in page] == [("c1", 6)] and not more
    assert campaigns.changed_after(6, 10) == ([], False)
    assert campaigns.version == 6
    await campaigns.close()


async def test_many_changes_keep_the_version_order(tmp_path: Path):
    campaigns = await started(tmp_path)
    await asyncio.gather(*(campaigns.create(valid(campaign(f"c{i}"))) for i in range(300)))
    for round_ in range(8):  # enough stale entries to compact the version index
        state = PAUSED if round_ % 2 == 0 else ACTIVE
        await asyncio.gather(*(campaigns.set_state(f"c{i}", state) for i in range(300)))
    seen, after, more = [], 0, True
    while more:
        page, more = campaigns.changed_after(after, 64)
        seen.extend(page)
        after = page[-1].version if page else after
    assert len(seen) == 300 and [c.version for c in seen] == sorted(c.version for c in seen)
    assert campaigns.version == 300 * 9 and seen[-1].version == campaigns.version
    await campaigns.close()


async def test_the_store_is_reloaded(tmp_path: Path):
    campaigns = await started(tmp_path)
    for i in range(3):
        await campaigns.create(valid(campaign(f"c{i}")))
    await campaigns.set_state("c0", PAUSED)
    before = [campaigns.get(f"c{i}") for i in range(3)]
    await campaigns.close()
    rows = sqlite3.connect(tmp_path / FILE_NAME).execute(
        "SELECT campaign_id, state, version FROM campaigns ORDER BY version").fetchall()
    assert rows == [("c1", ACTIVE, 2), ("c2", ACTIVE, 3), ("c0", PAUSED, 4)]
    again = await started(tmp_path)
    assert [again.get(f"c{i}") for i in range(3)] == before and again.version == 4
    assert (await again.create(valid(campaign("c3")))).version == 5
    assert await again.create(valid(campaign("c0"))) == before[0]  # idempotent across restarts
    await again.close()
