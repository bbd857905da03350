"""ads-campaigns through real gRPC: served by the runtime (DEFINITION, its settings and data folder), called
anonymously for the public RPCs and as ``ads-server`` / ``ads-budget`` for ListCampaigns; every status code of
protos/casemesh/ads/v1/campaigns.proto, and a restarted service that serves what it acknowledged.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest

from casemesh.ads.v1 import ads_pb2, campaigns_pb2, campaigns_pb2_grpc
from casemesh.services.ads.campaigns.service import DEFINITION, NAME
from casemesh.services.ads.campaigns.store import FILE_NAME
from casemesh.services.runtime.component import RuntimeContext

from ..caller_identity import TEST_SECRET
from ..integration.conftest import loopback_topology, start_mesh
from .test_ads_campaigns import campaign

WAIT_S = 10.0
ACTIVE, PAUSED = ads_pb2.CAMPAIGN_STATE_ACTIVE, ads_pb2.CAMPAIGN_STATE_PAUSED


async def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error.value.details()


def test_the_definition():
    assert DEFINITION.name == NAME == "ads-campaigns" and DEFINITION.dependencies == ()
    assert DEFINITION.grpc_services == ("casemesh.ads.v1.CampaignService",)
    assert DEFINITION.access.public == {"CreateCampaign", "GetCampaign", "SetCampaignState"}
    assert dict(DEFINITION.access.internal) == {"ListCampaigns": ("ads-server", "ads-budget")}


async def test_campaigns_through_the_runtime(tmp_path):
    topology = loopback_topology([NAME], data_dir=tmp_path)
    running, stop, task = await start_mesh([DEFINITION], topology)
    server = RuntimeContext(topology, secret=TEST_SECRET).for_service("ads-server")
    try:
        public = campaigns_pb2_grpc.CampaignServiceStub(running.anonymous_channel(NAME))
        internal = campaigns_pb2_grpc.CampaignServiceStub(server.channel(NAME))
        assert (tmp_path / NAME / FILE_NAME).exists()
        created = (await public.CreateCampaign(campaigns_pb2.CreateCampaignRequest(campaign=campaign()),
                                               timeout=WAIT_S)).campaign
        assert (created.campaign_id, created.state, created.version) == ("c1", ACTIVE, 1)
        assert created.created_at_unix_ms > 0
        again = await public.CreateCampaign(campaigns_pb2.CreateCampaignRequest(campaign=campaign()), timeout=WAIT_S)
        assert again.campaign == created
        code, _ = await _code(public.CreateCampaign(campaigns_pb2.CreateCampaignRequest(
            campaign=campaign(cpm_bid__amount_minor=300)), timeout=WAIT_S))
        assert code == grpc.StatusCode.ALREADY_EXISTS
        for request, field in (
                (campaigns_pb2.CreateCampaignRequest(), "campaign.campaign_id"),
                (campaigns_pb2.CreateCampaignRequest(campaign=campaign(targeting__countries=["US", "x", "y"])),
                 "campaign.targeting.countries[1]"),
                (campaigns_pb2.CreateCampaignRequest(campaign=campaign(daily_budget__currency_code="EUR")),
                 "campaign.daily_budget")):
            code, details = await _code(public.CreateCampaign(request, timeout=WAIT_S))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith(f"{field}:"), details

        got = await public.GetCampaign(campaigns_pb2.GetCampaignRequest(campaign_id="c1"), timeout=WAIT_S)
        assert got.campaign == created
        code, _ = await _code(public.GetCampaign(campaigns_pb2.GetCampaignRequest(campaign_id="c9"), timeout=WAIT_S))
        assert code == grpc.StatusCode.NOT_FOUND
        code, details = await _code(public.GetCampaign(campaigns_pb2.GetCampaignRequest(), timeout=WAIT_S))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("campaign_id:")

        same = await public.SetCampaignState(campaigns_pb2.SetCampaignStateRequest(campaign_id="c1", state=ACTIVE),
                                             timeout=WAIT_S)
        assert same.campaign == created
        paused = (await public.SetCampaignState(campaigns_pb2.SetCampaignStateRequest(
            campaign_id="c1", state=PAUSED), timeout=WAIT_S)).campaign
        assert (paused.state, paused.version) == (PAUSED, 2)
        for request, code_, field in (
                (campaigns_pb2.SetCampaignStateRequest(campaign_id="c1"), grpc.StatusCode.INVALID_ARGUMENT, "state"),
                (campaigns_pb2.SetCampaignStateRequest(campaign_id="", state=PAUSED),
                 grpc.StatusCode.INVALID_ARGUMENT, "campaign_id"),
                (campaigns_pb2.SetCampaignStateRequest(campaign_id="c9", state=PAUSED), grpc.StatusCode.NOT_FOUND,
                 "")):
            code, details = await _code(public.SetCampaignState(request, timeout=WAIT_S))
            assert code == code_ and details.startswith(field), details

        await asyncio.gather(*(public.CreateCampaign(campaigns_pb2.CreateCampaignRequest(
            campaign=campaign(f"k{i}")), timeout=WAIT_S) for i in range(20)))
        listed = await internal.ListCampaigns(campaigns_pb2.ListCampaignsRequest(page_size=5), timeout=WAIT_S)
        assert [c.campaign_id for c in listed.campaigns] == ["c1"] + [c.campaign_id for c in listed.campaigns[1:]]
        assert len(listed.campaigns) == 5 and listed.more and listed.version == 22
        rest = await internal.ListCampaigns(campaigns_pb2.ListCampaignsRequest(
            after_version=listed.campaigns[-1].version), timeout=WAIT_S)
        assert len(rest.campaigns) == 16 and not rest.more
        code, details = await _code(internal.ListCampaigns(campaigns_pb2.ListCampaignsRequest(after_version=-1),
                                                           timeout=WAIT_S))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("after_version:")
        code, _ = await _code(public.ListCampaigns(campaigns_pb2.ListCampaignsRequest(), timeout=WAIT_S))
        assert code == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await server.close()
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)

    # a new server on the same folder serves what the first acknowledged
    running, stop, task = await start_mesh([DEFINITION], topology)
    try:
        public = campaigns_pb2_grpc.CampaignServiceStub(running.anonymous_channel(NAME))
        got = await public.GetCampaign(campaigns_pb2.GetCampaignRequest(campaign_id="c1"), timeout=WAIT_S)
        assert got.campaign == paused
        created = await public.CreateCampaign(campaigns_pb2.CreateCampaignRequest(campaign=campaign("n")),
                                              timeout=WAIT_S)
        assert created.campaign.version == 23
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)
