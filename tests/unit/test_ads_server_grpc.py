"""ads-server through real gRPC with the real ads-campaigns, ads-budget and ads-frequency served in-process by the
runtime: campaigns created through CampaignService reach the index; Decide serves the highest bid, repeats a served
request without charging or counting again, tries the next bidder when the winner's budget is spent, answers each
no-fill reason and every INVALID_ARGUMENT of protos/casemesh/ads/v1/server.proto; RecordClick; and a frequency
service that does not answer makes Decide UNAVAILABLE with nothing served."""

from __future__ import annotations

import asyncio
import sqlite3

import grpc
import pytest

from casemesh.ads.v1 import (
    ads_pb2,
    budget_pb2,
    budget_pb2_grpc,
    campaigns_pb2,
    campaigns_pb2_grpc,
    server_pb2,
    server_pb2_grpc,
)
from casemesh.common.v1 import money_pb2
from casemesh.services.catalog import definitions
from casemesh.services.ads.server.service import DEFINITION, NAME
from casemesh.services.ads.server.store import FILE_NAME

from ..integration.conftest import loopback_topology, start_mesh

WAIT_S = 10.0
ADS = ["ads-campaigns", "ads-budget", "ads-frequency", NAME]
#: Generous deadlines: a loaded test machine's fsyncs must not turn decisions into UNAVAILABLE.
SLOW_DISK = {"decide_deadline_ms": 5_000, "filter_timeout_ms": 2_000, "reserve_timeout_ms": 2_000,
             "charge_timeout_ms": 2_000, "sync_interval_ms": 50}
SETTINGS = {NAME: SLOW_DISK, "ads-budget": {"pacing": False, "sync_interval_ms": 50}}


def _campaign(campaign_id: str, bid: int, budget: int = 100_000, cap: int = 2, countries=(),
              interests=()) -> campaigns_pb2.CreateCampaignRequest:
    return campaigns_pb2.CreateCampaignRequest(campaign=ads_pb2.Campaign(
        campaign_id=campaign_id, advertiser_id="adv",
        targeting=ads_pb2.Targeting(countries=countries, interests=interests),
        cpm_bid=money_pb2.Money(currency_code="USD", amount_minor=bid),
        daily_budget=money_pb2.Money(currency_code="USD", amount_minor=budget),
        frequency_cap=ads_pb2.FrequencyCap(max_impressions=cap, window_s=3600),
        creative=ads_pb2.Creative(headline=f"{campaign_id} ad", landing_url=f"https://example.com/{campaign_id}")))


def _decide(request_id: str, user_key: str = "u1", country: str = "US", interests=(),
            device: int = ads_pb2.DEVICE_TYPE_MOBILE) -> server_pb2.DecideRequest:
    return server_pb2.DecideRequest(request_id=request_id, user_key=user_key, country=country, interests=interests,
                                    device=device)


async def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error.value.details()


async def _until_served(ads, request: server_pb2.DecideRequest, campaign_id: str) -> server_pb2.DecideResponse:
    """Decide ``request`` until ``campaign_id`` wins (the index and the budget follow the campaigns every 50 ms)."""
    for _ in range(200):
        response = await ads.Decide(request, timeout=WAIT_S)
        if response.ad.campaign_id == campaign_id:
            return response
        request.request_id = f"{request.request_id.split('-')[0]}-{_}"
        await asyncio.sleep(0.05)
    raise AssertionError(f"{campaign_id} never served: {response}")


def test_the_definition():
    assert DEFINITION.name == NAME and DEFINITION.dependencies == ("ads-campaigns", "ads-budget", "ads-frequency")
    assert DEFINITION.grpc_services == ("casemesh.ads.v1.AdService",)
    assert DEFINITION.access.public == {"Decide", "RecordClick"} and not DEFINITION.access.internal


async def test_decisions_through_the_four_services(tmp_path):
    topology = loopback_topology(ADS, data_dir=tmp_path, settings=SETTINGS)
    running, stop, task = await start_mesh(definitions(ADS), topology)
    try:
        campaigns = campaigns_pb2_grpc.CampaignServiceStub(running.anonymous_channel("ads-campaigns"))
        ads = server_pb2_grpc.AdServiceStub(running.anonymous_channel(NAME))
        budget = budget_pb2_grpc.BudgetServiceStub(running.anonymous_channel("ads-budget"))
        await campaigns.CreateCampaign(_campaign("gold", 900, budget=1, countries=["US"]), timeout=WAIT_S)
        await campaigns.CreateCampaign(_campaign("silver", 500, interests=["news"]), timeout=WAIT_S)
        await campaigns.CreateCampaign(_campaign("bronze", 100), timeout=WAIT_S)
        assert (tmp_path / NAME / FILE_NAME).exists()

        first = await _until_served(ads, _decide("first"), "gold")  # 900 milli-minor of a 1,000 budget
        assert first.ad.cpm_price == money_pb2.Money(currency_code="USD", amount_minor=900)
        assert first.ad.creative.landing_url == "https://example.com/gold" and first.candidates == 2
        again = await ads.Decide(_decide(first.ad.impression_id), timeout=WAIT_S)
        assert again == first  # the same ad, not charged again
        spend = (await budget.GetSpend(budget_pb2.GetSpendRequest(campaign_id="gold"), timeout=WAIT_S)).spend
        assert (spend.spent_milli_minor, spend.impressions) == (900, 1)

        # gold's budget cannot pay another 900: it drops out (CheckEligibility) and silver or bronze serve
        second = await ads.Decide(_decide("second", interests=["news"]), timeout=WAIT_S)
        assert second.ad.campaign_id == "silver" and second.candidates == 3 and second.bidders == 2
        third = await ads.Decide(_decide("third", interests=["news"]), timeout=WAIT_S)
        assert third.ad.campaign_id == "silver"
        capped = await ads.Decide(_decide("fourth", interests=["news"]), timeout=WAIT_S)
        assert capped.ad.campaign_id == "bronze"  # silver's cap of 2 reached for u1
        await ads.Decide(_decide("fifth"), timeout=WAIT_S)
        response = await ads.Decide(_decide("sixth", interests=["news"]), timeout=WAIT_S)
        assert response.no_fill_reason == server_pb2.NO_FILL_REASON_FREQUENCY_CAPPED and not response.HasField("ad")
        assert (response.candidates, response.bidders) == (3, 0)
        response = await ads.Decide(_decide("seventh", user_key="u2", country="JP"), timeout=WAIT_S)
        assert response.ad.campaign_id == "bronze"
        await campaigns.SetCampaignState(campaigns_pb2.SetCampaignStateRequest(
            campaign_id="bronze", state=ads_pb2.CAMPAIGN_STATE_PAUSED), timeout=WAIT_S)
        for n in range(200):
            response = await ads.Decide(_decide(f"eighth{n}", user_key="u3", country="JP"), timeout=WAIT_S)
            if response.no_fill_reason == server_pb2.NO_FILL_REASON_NO_CANDIDATES:
                break
            await asyncio.sleep(0.05)
        assert response.no_fill_reason == server_pb2.NO_FILL_REASON_NO_CANDIDATES
        response = await ads.Decide(_decide("ninth", user_key="u4"), timeout=WAIT_S)
        assert response.no_fill_reason == server_pb2.NO_FILL_REASON_BUDGET and response.candidates == 1

        assert (await ads.RecordClick(server_pb2.RecordClickRequest(impression_id="second"), timeout=WAIT_S)).first
        assert not (await ads.RecordClick(server_pb2.RecordClickRequest(impression_id="second"),
                                          timeout=WAIT_S)).first
        code, _ = await _code(ads.RecordClick(server_pb2.RecordClickRequest(impression_id="sixth"), timeout=WAIT_S))
        assert code == grpc.StatusCode.NOT_FOUND
        code, details = await _code(ads.RecordClick(server_pb2.RecordClickRequest(), timeout=WAIT_S))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("impression_id:")
        for request, field in ((_decide(""), "request_id"), (_decide("x", user_key="a b"), "user_key"),
                               (_decide("x", country="usa"), "country"),
                               (_decide("x", interests=["a"] * 21), "interests"),
                               (_decide("x", interests=["ok", "Bad"]), "interests[1]")):
            code, details = await _code(ads.Decide(request, timeout=WAIT_S))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith(f"{field}:"), details
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)
    with sqlite3.connect(tmp_path / NAME / FILE_NAME) as db:
        served = dict(db.execute("SELECT impression_id, campaign_id FROM impressions"))
        assert {k: v for k, v in served.items() if not k.startswith(("first", "eighth"))} == {
            "second": "silver", "third": "silver", "fourth": "bronze", "fifth": "bronze", "seventh": "bronze"}
        assert db.execute("SELECT impression_id FROM clicks").fetchall() == [("second",)]


async def test_unavailable_when_the_frequency_service_does_not_answer(tmp_path):
    topology = loopback_topology(ADS, data_dir=tmp_path, settings={
        **SETTINGS, NAME: {**SLOW_DISK, "filter_timeout_ms": 200}})
    running, stop, task = await start_mesh(definitions(["ads-campaigns", "ads-budget", NAME]), topology)
    try:
        campaigns = campaigns_pb2_grpc.CampaignServiceStub(running.anonymous_channel("ads-campaigns"))
        ads = server_pb2_grpc.AdServiceStub(running.anonymous_channel(NAME))
        await campaigns.CreateCampaign(_campaign("gold", 900), timeout=WAIT_S)
        for n in range(200):
            try:
                response = await ads.Decide(_decide(f"r{n}"), timeout=WAIT_S)
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.UNAVAILABLE, error
                break
            assert response.no_fill_reason == server_pb2.NO_FILL_REASON_NO_CANDIDATES  # not synced yet
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("Decide never answered UNAVAILABLE")
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)
    with sqlite3.connect(tmp_path / NAME / FILE_NAME) as db:
        assert db.execute("SELECT COUNT(*) FROM impressions").fetchone() == (0,)
