"""ads-budget through real gRPC, with a real ads-campaigns it follows (both served by the runtime in this process):
a campaign created in ads-campaigns becomes chargeable once followed (NOT_FOUND and UNKNOWN before), a pause reaches
the budget, every status code of protos/casemesh/ads/v1/budget.proto, the callers allowed (ads-server for Charge and
CheckEligibility, anyone for GetSpend), and many concurrent charges as ads-server never exceed the daily budget.
"""

from __future__ import annotations

import asyncio
import sqlite3

import grpc
import pytest

from casemesh.ads.v1 import ads_pb2, budget_pb2, budget_pb2_grpc, campaigns_pb2, campaigns_pb2_grpc
from casemesh.services.ads.budget.service import DEFINITION, NAME
from casemesh.services.ads.budget.store import FILE_NAME
from casemesh.services.ads.campaigns.service import DEFINITION as CAMPAIGNS_DEFINITION
from casemesh.services.runtime.component import RuntimeContext

from ..caller_identity import TEST_SECRET
from ..integration.conftest import loopback_topology, start_mesh
from .test_ads_campaigns import campaign

WAIT_S = 10.0
CAMPAIGNS = "ads-campaigns"


async def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error.value.details()


async def _until(check, timeout_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def test_the_definition():
    assert DEFINITION.name == NAME == "ads-budget" and DEFINITION.dependencies == (CAMPAIGNS,)
    assert DEFINITION.grpc_services == ("casemesh.ads.v1.BudgetService",)
    assert DEFINITION.access.public == {"GetSpend"}
    assert dict(DEFINITION.access.internal) == {"CheckEligibility": ("ads-server",), "Charge": ("ads-server",)}


async def test_the_budget_through_the_runtime(tmp_path):
    topology = loopback_topology([CAMPAIGNS, NAME], data_dir=tmp_path, settings={
        NAME: {"sync_interval_ms": 20, "pacing": False, "day_length_s": 86_400}})
    running, stop, task = await start_mesh([CAMPAIGNS_DEFINITION, DEFINITION], topology)
    server = RuntimeContext(topology, secret=TEST_SECRET).for_service("ads-server")
    try:
        campaigns = campaigns_pb2_grpc.CampaignServiceStub(running.anonymous_channel(CAMPAIGNS))
        public = budget_pb2_grpc.BudgetServiceStub(running.anonymous_channel(NAME))
        budget = budget_pb2_grpc.BudgetServiceStub(server.channel(NAME))
        assert (tmp_path / NAME / FILE_NAME).exists()

        code, _ = await _code(budget.Charge(budget_pb2.ChargeRequest(impression_id="i0", campaign_id="c1",
                                                                     price_milli_minor=250), timeout=WAIT_S))
        assert code == grpc.StatusCode.NOT_FOUND
        unknown = await budget.CheckEligibility(budget_pb2.CheckEligibilityRequest(campaign_ids=["c1"]),
                                                timeout=WAIT_S)
        assert list(unknown.eligibility) == [budget_pb2.ELIGIBILITY_UNKNOWN]

        # 25,000 milli-minor of budget, 250 an impression: 100 impressions
        await campaigns.CreateCampaign(campaigns_pb2.CreateCampaignRequest(
            campaign=campaign(daily_budget__amount_minor=25)), timeout=WAIT_S)

        async def known() -> bool:
            answer = await budget.CheckEligibility(budget_pb2.CheckEligibilityRequest(campaign_ids=["c1"]),
                                                   timeout=WAIT_S)
            return list(answer.eligibility) == [budget_pb2.ELIGIBILITY_ELIGIBLE]

        await _until(known)
        first = (await budget.Charge(budget_pb2.ChargeRequest(impression_id="i0", campaign_id="c1",
                                                              price_milli_minor=250), timeout=WAIT_S)).spend
        assert (first.campaign_id, first.spent_milli_minor, first.impressions, first.day_length_s) == (
            "c1", 250, 1, 86_400)
        assert (first.daily_budget.currency_code, first.daily_budget.amount_minor) == ("USD", 25)
        again = await budget.Charge(budget_pb2.ChargeRequest(impression_id="i0", campaign_id="c1",
                                                             price_milli_minor=7), timeout=WAIT_S)
        assert again.spend == first

        outcomes = await asyncio.gather(*(budget.Charge(budget_pb2.ChargeRequest(
            impression_id=f"i{i % 150 + 1}", campaign_id="c1", price_milli_minor=250), timeout=WAIT_S)
            for i in range(300)), return_exceptions=True)
        refused = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
        assert all(o.code() == grpc.StatusCode.FAILED_PRECONDITION and o.details().startswith("budget_exhausted:")
                   for o in refused), refused[:3]
        charged = {o.spend.impressions for o in outcomes if not isinstance(o, Exception)}
        assert charged == set(range(2, 101))  # 99 more, each answer once per impression (and its retry)
        spend = (await public.GetSpend(budget_pb2.GetSpendRequest(campaign_id="c1"), timeout=WAIT_S)).spend
        assert (spend.spent_milli_minor, spend.impressions) == (25_000, 100) and spend.exhausted_at_unix_ms > 0
        exhausted = await budget.CheckEligibility(budget_pb2.CheckEligibilityRequest(campaign_ids=["c1", "zz"]),
                                                  timeout=WAIT_S)
        assert list(exhausted.eligibility) == [budget_pb2.ELIGIBILITY_BUDGET_EXHAUSTED,
                                               budget_pb2.ELIGIBILITY_UNKNOWN]

        await campaigns.CreateCampaign(campaigns_pb2.CreateCampaignRequest(campaign=campaign("c2")), timeout=WAIT_S)
        await campaigns.SetCampaignState(campaigns_pb2.SetCampaignStateRequest(
            campaign_id="c2", state=ads_pb2.CAMPAIGN_STATE_PAUSED), timeout=WAIT_S)

        async def paused() -> bool:
            answer = await budget.CheckEligibility(budget_pb2.CheckEligibilityRequest(campaign_ids=["c2"]),
                                                   timeout=WAIT_S)
            return list(answer.eligibility) == [budget_pb2.ELIGIBILITY_PAUSED]

        await _until(paused)
        code, details = await _code(budget.Charge(budget_pb2.ChargeRequest(
            impression_id="p1", campaign_id="c2", price_milli_minor=250), timeout=WAIT_S))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and details.startswith("paused:")

        for request, field in (
                (budget_pb2.ChargeRequest(campaign_id="c1", price_milli_minor=1), "impression_id"),
                (budget_pb2.ChargeRequest(impression_id="x", campaign_id="", price_milli_minor=1), "campaign_id"),
                (budget_pb2.ChargeRequest(impression_id="x", campaign_id="c1"), "price_milli_minor")):
            code, details = await _code(budget.Charge(request, timeout=WAIT_S))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith(f"{field}:"), details
        code, details = await _code(budget.CheckEligibility(budget_pb2.CheckEligibilityRequest(), timeout=WAIT_S))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("campaign_ids:")
        code, details = await _code(public.GetSpend(budget_pb2.GetSpendRequest(), timeout=WAIT_S))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("campaign_id:")
        code, _ = await _code(public.GetSpend(budget_pb2.GetSpendRequest(campaign_id="zz"), timeout=WAIT_S))
        assert code == grpc.StatusCode.NOT_FOUND
        for call in (public.Charge(budget_pb2.ChargeRequest(impression_id="a", campaign_id="c1",
                                                            price_milli_minor=1), timeout=WAIT_S),
                     public.CheckEligibility(budget_pb2.CheckEligibilityRequest(campaign_ids=["c1"]),
                                             timeout=WAIT_S)):
            code, _ = await _code(call)
            assert code == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await server.close()
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)
    with sqlite3.connect(tmp_path / NAME / FILE_NAME) as db:
        assert db.execute("SELECT count(*), sum(price_milli_minor) FROM charges").fetchone() == (100, 25_000)
