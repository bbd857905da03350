"""ads-server's calls to ``ads-budget``, ``ads-frequency`` and ``ads-campaigns``, as the decider sees them.

Seed 001 #15 (shared/seeds/001_58dfc580020147d2.txt line 40: "<100ms decisioning"). Every call is sent with an
explicit ``timeout=`` (the decider's, shortened to its deadline budget), counted
(``casemesh_ads_server_dependency_calls_total{method,code}``) and its failures sorted in two:

- FAILED_PRECONDITION (and NOT_FOUND for a Charge of a campaign the budget does not know yet) → :class:`Refused`:
  the dependency did nothing (a capped user, a spent or paced budget); the decider tries the next bidder;
- anything else (UNAVAILABLE, DEADLINE_EXCEEDED, ... and an INVALID_ARGUMENT, which would be a bug here) →
  :class:`DependencyUnavailable`: it may or may not have done it; the decision answers UNAVAILABLE.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

import grpc
from casemesh.ads.v1 import (
    ads_pb2,
    budget_pb2,
    budget_pb2_grpc,
    campaigns_pb2,
    campaigns_pb2_grpc,
    frequency_pb2,
    frequency_pb2_grpc,
)

from ...runtime.errors import Unavailable
from . import metrics

ResponseT = TypeVar("ResponseT")
REFUSALS = frozenset({grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND})


class DependencyUnavailable(Unavailable):
    """A dependency did not answer (or answered something unexpected): it may or may not have done it."""


class Refused(Exception):
    """The dependency refused (``code``, ``details``): nothing was done."""

    def __init__(self, method: str, code: grpc.StatusCode, details: str) -> None:
        self.code = code
        self.details = details
        super().__init__(f"{method}: {code.name}: {details}")


async def call(method: str, rpc: Callable[..., Awaitable[ResponseT]], request, timeout_s: float) -> ResponseT:
    """``rpc(request, timeout=timeout_s)``: the response, :class:`Refused` or :class:`DependencyUnavailable`."""
    code = "OK"
    try:
        return await rpc(request, timeout=timeout_s)
    except grpc.aio.AioRpcError as error:
        code = error.code().name
        if error.code() in REFUSALS:
            raise Refused(method, error.code(), error.details() or "") from None
        raise DependencyUnavailable(f"{method} was not answered ({code}: {error.details()})") from None
    finally:
        metrics.DEPENDENCY_CALLS.labels(method, code).inc()


class Budget(Protocol):
    async def eligibility(self, campaign_ids: Sequence[str], timeout_s: float) -> list[int]: ...

    async def charge(self, charge_id: str, campaign_id: str, price_milli_minor: int, timeout_s: float) -> None: ...


class Frequency(Protocol):
    async def counts(self, user_key: str, caps: Sequence[tuple[str, int, int]], timeout_s: float) -> list[int]: ...

    async def reserve(self, reservation_id: str, user_key: str, campaign_id: str, max_impressions: int,
                      window_s: int, timeout_s: float) -> int: ...

    async def release(self, reservation_id: str, timeout_s: float) -> None: ...


class Campaigns(Protocol):
    async def changed_after(self, after_version: int, timeout_s: float) -> campaigns_pb2.ListCampaignsResponse: ...


def _unexpected(refusal: Refused) -> DependencyUnavailable:
    return DependencyUnavailable(f"unexpected answer: {refusal}")


class BudgetClient:
    """:class:`Budget` over ``BudgetServiceStub``: CheckEligibility answers Eligibility values in order; Charge raises
    :class:`Refused` (FAILED_PRECONDITION budget_exhausted, paced, paused; NOT_FOUND: an unknown campaign)."""

    def __init__(self, stub: budget_pb2_grpc.BudgetServiceStub) -> None:
        self._stub = stub

    async def eligibility(self, campaign_ids: Sequence[str], timeout_s: float) -> list[int]:
        try:
            response = await call("CheckEligibility", self._stub.CheckEligibility,
                                  budget_pb2.CheckEligibilityRequest(campaign_ids=campaign_ids), timeout_s)
        except Refused as refusal:
            raise _unexpected(refusal) from None
        if len(response.eligibility) != len(campaign_ids):
            raise DependencyUnavailable(f"CheckEligibility answered {len(response.eligibility)} of "
                                        f"{len(campaign_ids)} campaigns")
        return list(response.eligibility)

    async def charge(self, charge_id: str, campaign_id: str, price_milli_minor: int, timeout_s: float) -> None:
        await call("Charge", self._stub.Charge, budget_pb2.ChargeRequest(
            impression_id=charge_id, campaign_id=campaign_id, price_milli_minor=price_milli_minor), timeout_s)


class FrequencyClient:
    """:class:`Frequency` over ``FrequencyServiceStub``: Reserve raises :class:`Refused` (FAILED_PRECONDITION
    frequency_capped)."""

    def __init__(self, stub: frequency_pb2_grpc.FrequencyServiceStub) -> None:
        self._stub = stub

    async def counts(self, user_key: str, caps: Sequence[tuple[str, int, int]], timeout_s: float) -> list[int]:
        request = frequency_pb2.GetCountsRequest(user_key=user_key, caps=[frequency_pb2.CampaignCap(
            campaign_id=campaign_id, cap=ads_pb2.FrequencyCap(max_impressions=most, window_s=window_s))
            for campaign_id, most, window_s in caps])
        try:
            response = await call("GetCounts", self._stub.GetCounts, request, timeout_s)
        except Refused as refusal:
            raise _unexpected(refusal) from None
        if len(response.counts) != len(caps):
            raise DependencyUnavailable(f"GetCounts answered {len(response.counts)} of {len(caps)} campaigns")
        return list(response.counts)

    async def reserve(self, reservation_id: str, user_key: str, campaign_id: str, max_impressions: int,
                      window_s: int, timeout_s: float) -> int:
        return (await call("Reserve", self._stub.Reserve, frequency_pb2.ReserveRequest(
            impression_id=reservation_id, user_key=user_key, campaign_id=campaign_id,
            cap=ads_pb2.FrequencyCap(max_impressions=max_impressions, window_s=window_s)), timeout_s)).count

    async def release(self, reservation_id: str, timeout_s: float) -> None:
        try:
            await call("Release", self._stub.Release, frequency_pb2.ReleaseRequest(impression_id=reservation_id),
                       timeout_s)
        except Refused as refusal:
            raise _unexpected(refusal) from None


class CampaignsClient:
    """:class:`Campaigns` over ``CampaignServiceStub`` (ListCampaigns, pages of up to 1,000)."""

    def __init__(self, stub: campaigns_pb2_grpc.CampaignServiceStub) -> None:
        self._stub = stub

    async def changed_after(self, after_version: int, timeout_s: float) -> campaigns_pb2.ListCampaignsResponse:
        try:
            return await call("ListCampaigns", self._stub.ListCampaigns, campaigns_pb2.ListCampaignsRequest(
                after_version=after_version, page_size=1000), timeout_s)
        except Refused as refusal:
            raise _unexpected(refusal) from None
