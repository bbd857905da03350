"""ads-budget's invariant through real processes (ads-campaigns and ads-budget, each its own process), with
ads-budget SIGKILLed mid-run and restarted: no campaign ever spends more than its daily budget, every charge
acknowledged is counted exactly once, and a retry of an impression gets its first answer, before and after the kill.

CASE-STUDY.md point 5 for ad serving (seed 001 #15, shared/seeds/001_58dfc580020147d2.txt line 40: "Ad Serving ...
pacing"; budget.proto: "no overspend: the tolerance is zero"). 64 clients in flight, calling as ads-server (Charge is
internal to it), charge 3,000 impressions spread over 4 campaigns whose budgets hold 500 impressions each, and send a
fifth of the impressions again once answered (a retry: the same ID, another price); UNAVAILABLE, DEADLINE_EXCEEDED and
NOT_FOUND (the restarted budget has not followed the campaigns yet) are retried with the same impression ID until a
final answer. Afterwards, through GetSpend and the SQLite file itself: each campaign's spend is within its budget and
is exactly the sum of the charges acknowledged to the clients (none lost, none counted twice); the file holds one row
per acknowledged impression and nothing else; with pacing off, every budget is spent to the last impression; a retry
of every acknowledged impression returns the answer first given.
"""

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
from collections import Counter

import grpc
import pytest

from casemesh.ads.v1 import budget_pb2, budget_pb2_grpc, campaigns_pb2, campaigns_pb2_grpc
from casemesh.harness.mesh import Mesh
from casemesh.services.ads.budget.store import FILE_NAME
from casemesh.services.runtime.identity import service_identity

from ..caller_identity import identified_channel
from ..unit.test_ads_campaigns import campaign
from .waiting import eventually

CAMPAIGNS, BUDGET = "ads-campaigns", "ads-budget"
FAST_RECONNECT = (("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                  ("grpc.max_reconnect_backoff_ms", 500))
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.NOT_FOUND}
CAMPAIGN_IDS = [f"camp-{i}" for i in range(4)]
PRICE = 100  # milli-minor: a CPM bid of 100 minor units
BUDGET_MINOR = 50  # 50,000 milli-minor: 500 impressions
IMPRESSIONS, IN_FLIGHT = 3_000, 64


async def _retried(call, request, rng: random.Random, retried: Counter[grpc.StatusCode]):
    for attempt in range(400):
        try:
            return await call(request, timeout=5)
        except grpc.aio.AioRpcError as error:
            if error.code() not in RETRYABLE:
                raise
            retried[error.code()] += 1
            await asyncio.sleep(rng.uniform(0, min(0.3, 0.01 * 2 ** min(attempt, 5))))
    raise AssertionError(f"no final answer for {request}")


@pytest.mark.slow  # a process-kill suite: run by .ci/run's crash-safety step, not by default (make test)
@pytest.mark.parametrize("pacing", [False, True])
async def test_no_campaign_overspends_across_a_budget_kill(tmp_path, pacing):
    settings = {BUDGET: {"sync_interval_ms": 50, "pacing": pacing, "pacing_slack": 0.3}}
    async with Mesh([CAMPAIGNS, BUDGET], tmp_path, restart=None, settings=settings) as mesh:
        channel = identified_channel(mesh.topology.endpoint(BUDGET).address, mesh.secret,
                                     identity=service_identity("ads-server"), options=FAST_RECONNECT)
        public = grpc.aio.insecure_channel(mesh.topology.endpoint(CAMPAIGNS).address)
        budget = budget_pb2_grpc.BudgetServiceStub(channel)
        campaigns = campaigns_pb2_grpc.CampaignServiceStub(public)
        acknowledged: dict[str, tuple[str, budget_pb2.CampaignSpend]] = {}
        refused: dict[str, str] = {}
        retried: Counter[grpc.StatusCode] = Counter()
        mismatches: list[str] = []
        try:
            for campaign_id in CAMPAIGN_IDS:
                await campaigns.CreateCampaign(campaigns_pb2.CreateCampaignRequest(campaign=campaign(
                    campaign_id, cpm_bid__amount_minor=PRICE, daily_budget__amount_minor=BUDGET_MINOR)), timeout=10)
            queue: asyncio.Queue[int] = asyncio.Queue()
            for n in range(IMPRESSIONS):
                queue.put_nowait(n)

            async def client(worker: int) -> None:
                rng = random.Random(worker)
                while not queue.empty():
                    n = queue.get_nowait()
                    impression_id, campaign_id = f"imp-{n}", CAMPAIGN_IDS[n % len(CAMPAIGN_IDS)]
                    request = budget_pb2.ChargeRequest(impression_id=impression_id, campaign_id=campaign_id,
                                                       price_milli_minor=PRICE)
                    try:
                        spend = (await _retried(budget.Charge, request, rng, retried)).spend
                    except grpc.aio.AioRpcError as error:
                        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error
                        reason = error.details().partition(":")[0]
                        assert reason in ("budget_exhausted", "paced"), error.details()
                        refused[impression_id] = reason
                        continue
                    assert spend.campaign_id == campaign_id and spend.spent_milli_minor <= BUDGET_MINOR * 1_000
                    acknowledged[impression_id] = (campaign_id, spend)
                    if rng.random() < 0.2:  # the same impression again, another price: the first answer
                        again = (await _retried(budget.Charge, budget_pb2.ChargeRequest(
                            impression_id=impression_id, campaign_id=campaign_id, price_milli_minor=PRICE + 1),
                            rng, retried)).spend
                        if again != spend:
                            mismatches.append(impression_id)

            clients = [asyncio.create_task(client(worker)) for worker in range(IN_FLIGHT)]
            await eventually(lambda: len(acknowledged) + len(refused) >= 800, "800 charges answered before the kill")
            assert mesh.kill(BUDGET, signal.SIGKILL) == -signal.SIGKILL
            before_kill = dict(acknowledged)
            await asyncio.sleep(0.2)
            await mesh.start_services([BUDGET])
            await asyncio.wait_for(asyncio.gather(*clients), 240)
            assert len(acknowledged) + len(refused) == IMPRESSIONS
            assert not mismatches, mismatches[:5]
            assert retried[grpc.StatusCode.UNAVAILABLE] + retried[grpc.StatusCode.NOT_FOUND] > 0, retried

            prices: Counter[str] = Counter()
            for campaign_id, _ in acknowledged.values():
                prices[campaign_id] += PRICE
            for campaign_id in CAMPAIGN_IDS:
                spend = (await budget.GetSpend(budget_pb2.GetSpendRequest(campaign_id=campaign_id), timeout=10)).spend
                assert spend.spent_milli_minor <= BUDGET_MINOR * 1_000, spend
                assert spend.spent_milli_minor == prices[campaign_id], (spend, prices[campaign_id])
                assert spend.impressions == prices[campaign_id] // PRICE
                if not pacing:
                    assert spend.spent_milli_minor == BUDGET_MINOR * 1_000 and spend.exhausted_at_unix_ms > 0
            # every acknowledged charge (before the kill too) answers its retry with its first answer
            for impression_id, (campaign_id, spend) in acknowledged.items():
                again = (await budget.Charge(budget_pb2.ChargeRequest(
                    impression_id=impression_id, campaign_id=campaign_id, price_milli_minor=1), timeout=10)).spend
                assert again == spend, (impression_id, again, spend)
            assert set(before_kill) <= set(acknowledged)

            with sqlite3.connect(tmp_path / "data" / BUDGET / FILE_NAME) as db:
                rows = db.execute("SELECT impression_id, campaign_id, price_milli_minor FROM charges").fetchall()
                per_campaign = dict(db.execute("SELECT campaign_id, sum(price_milli_minor) FROM charges "
                                               "GROUP BY campaign_id").fetchall())
            assert {impression for impression, _, _ in rows} == set(acknowledged) and len(rows) == len(acknowledged)
            assert per_campaign == dict(prices)
            assert all(total <= BUDGET_MINOR * 1_000 for total in per_campaign.values())
        finally:
            for task in locals().get("clients", []):
                task.cancel()
            await channel.close()
            await public.close()
