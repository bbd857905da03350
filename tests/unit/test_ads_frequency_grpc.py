"""ads-frequency through real gRPC, served by the runtime (DEFINITION, its settings and data folder) and called as
``ads-server``: every status code of protos/casemesh/ads/v1/frequency.proto, the file under DATA_DIR, and the counts
rebuilt by a restart."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from casemesh.ads.v1 import ads_pb2, frequency_pb2, frequency_pb2_grpc
from casemesh.services.ads.frequency.service import DEFINITION, NAME
from casemesh.services.ads.frequency.store import FILE_NAME
from casemesh.services.runtime.component import RuntimeContext

from ..caller_identity import TEST_SECRET
from ..integration.conftest import loopback_topology, start_mesh

WAIT_S = 10.0


def _cap(max_impressions: int = 2, window_s: int = 3600) -> ads_pb2.FrequencyCap:
    return ads_pb2.FrequencyCap(max_impressions=max_impressions, window_s=window_s)


def _reserve(impression_id: str, user_key: str = "u1", campaign_id: str = "c1", **cap) -> frequency_pb2.ReserveRequest:
    return frequency_pb2.ReserveRequest(impression_id=impression_id, user_key=user_key, campaign_id=campaign_id,
                                        cap=_cap(**cap))


async def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error.value.details()


def test_the_definition():
    assert DEFINITION.name == NAME == "ads-frequency" and DEFINITION.dependencies == ()
    assert DEFINITION.grpc_services == ("casemesh.ads.v1.FrequencyService",)
    assert not DEFINITION.access.public
    assert dict(DEFINITION.access.internal) == {m: ("ads-server",) for m in ("GetCounts", "Reserve", "Release")}


async def test_the_frequency_service_through_the_runtime(tmp_path):
    topology = loopback_topology([NAME], data_dir=tmp_path, settings={NAME: {"max_window_s": 86_400}})
    for round_ in range(2):
        running, stop, task = await start_mesh([DEFINITION], topology)
        server = RuntimeContext(topology, secret=TEST_SECRET).for_service("ads-server")
        try:
            stub = frequency_pb2_grpc.FrequencyServiceStub(server.channel(NAME))
            assert (tmp_path / NAME / FILE_NAME).exists()
            if round_ == 0:
                assert (await stub.Reserve(_reserve("i1"), timeout=WAIT_S)).count == 1
                assert (await stub.Reserve(_reserve("i1"), timeout=WAIT_S)).count == 1
                assert (await stub.Reserve(_reserve("i2"), timeout=WAIT_S)).count == 2
                code, details = await _code(stub.Reserve(_reserve("i3"), timeout=WAIT_S))
                assert code == grpc.StatusCode.FAILED_PRECONDITION and details.startswith("frequency_capped:")
                code, details = await _code(stub.Reserve(_reserve("i2", campaign_id="c2"), timeout=WAIT_S))
                assert code == grpc.StatusCode.FAILED_PRECONDITION and details.startswith("key_reused:")
                await stub.Release(frequency_pb2.ReleaseRequest(impression_id="i2"), timeout=WAIT_S)
                await stub.Release(frequency_pb2.ReleaseRequest(impression_id="i2"), timeout=WAIT_S)
                await stub.Release(frequency_pb2.ReleaseRequest(impression_id="unknown"), timeout=WAIT_S)
                results = await asyncio.gather(*(stub.Reserve(_reserve(f"r{n}", campaign_id="c3", max_impressions=5),
                                                              timeout=WAIT_S) for n in range(20)),
                                               return_exceptions=True)
                assert sorted(r.count for r in results if not isinstance(r, Exception)) == [1, 2, 3, 4, 5]
                for request, field in ((_reserve(""), "impression_id"), (_reserve("x", user_key="a b"), "user_key"),
                                       (_reserve("x", campaign_id=""), "campaign_id"),
                                       (_reserve("x", max_impressions=0), "cap"),
                                       (_reserve("x", window_s=86_401), "cap"),
                                       (frequency_pb2.ReserveRequest(), "impression_id")):
                    code, details = await _code(stub.Reserve(request, timeout=WAIT_S))
                    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith(f"{field}:"), details
                code, details = await _code(stub.Release(frequency_pb2.ReleaseRequest(), timeout=WAIT_S))
                assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("impression_id:")
                for request, field in (
                        (frequency_pb2.GetCountsRequest(caps=[frequency_pb2.CampaignCap(campaign_id="c1",
                                                                                        cap=_cap())]), "user_key"),
                        (frequency_pb2.GetCountsRequest(user_key="u1"), "caps"),
                        (frequency_pb2.GetCountsRequest(user_key="u1", caps=[frequency_pb2.CampaignCap(
                            campaign_id="c1")]), "caps[0]"),
                        (frequency_pb2.GetCountsRequest(user_key="u1", caps=[frequency_pb2.CampaignCap(
                            campaign_id="c1", cap=_cap())] * 1001), "caps")):
                    code, details = await _code(stub.GetCounts(request, timeout=WAIT_S))
                    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith(f"{field}:"), details
            counts = await stub.GetCounts(frequency_pb2.GetCountsRequest(user_key="u1", caps=[
                frequency_pb2.CampaignCap(campaign_id=c, cap=_cap(5)) for c in ("c1", "c2", "c3")]), timeout=WAIT_S)
            assert list(counts.counts) == [1, 0, 5]  # after the restart too: rebuilt from the file
            anonymous = frequency_pb2_grpc.FrequencyServiceStub(running.anonymous_channel(NAME))
            code, _ = await _code(anonymous.Reserve(_reserve("z"), timeout=WAIT_S))
            assert code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
        finally:
            await running.close()
            stop.set()
            await asyncio.wait_for(task, 30)
