"""ads-budget's domain (services/ads/budget) without gRPC, with a clock of the test's own: the charge rule (budget,
pacing, pause) in exact arithmetic, settings and validation naming the field, atomic charges (many concurrent charges
never spend beyond the budget), idempotency per impression (charged, in flight, refused, across a restart and a day
change, older than memory), exhaustion time, the log rebuilt at start, a failed write that releases its reservation,
eligibility snapshots.

No test depends on the machine's speed: concurrent charges are all checked before the first group commit returns
because none awaits before its check.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import grpc
import pytest
from pydantic import ValidationError

from casemesh.ads.v1 import ads_pb2, budget_pb2, campaigns_pb2
from casemesh.common.v1 import money_pb2
from casemesh.services.ads import contract
from casemesh.services.ads.budget import validation
from casemesh.services.ads.budget.budget import Budget, refusal
from casemesh.services.ads.budget.follower import CampaignFollower
from casemesh.services.ads.budget.settings import BudgetSettings
from casemesh.services.ads.budget.store import FILE_NAME, ChargeStore, StoreUnavailable
from casemesh.services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound

DAY_S = 1_000
DAY_MS = DAY_S * 1_000
T0 = 1_800_000 * DAY_MS  # the start of a day


class Clock:
    """A clock the test moves (Unix ms)."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def campaign(campaign_id: str = "c1", *, bid: int = 100, budget: int = 10, state=ads_pb2.CAMPAIGN_STATE_ACTIVE,
             version: int = 1) -> ads_pb2.Campaign:
    """A campaign bidding ``bid`` minor units CPM (``bid`` milli-minor an impression) with a daily budget of
    ``budget`` minor units (``budget * 1,000`` milli-minor)."""
    return ads_pb2.Campaign(campaign_id=campaign_id, advertiser_id="acme", state=state, version=version,
                            cpm_bid=money_pb2.Money(currency_code="USD", amount_minor=bid),
                            daily_budget=money_pb2.Money(currency_code="USD", amount_minor=budget))


async def budget_on(path: Path, clock: Clock, **settings) -> Budget:
    settings.setdefault("day_length_s", DAY_S)
    budget = Budget(ChargeStore(path / FILE_NAME), BudgetSettings(**settings), clock=clock)
    await budget.start()
    return budget


async def reason_of(call) -> str:
    with pytest.raises(FailedPrecondition) as error:
        await call
    return str(error.value).partition(":")[0]


def test_the_rule_in_exact_arithmetic():
    rule = {"active": True, "budget": 1_000_000, "day_ms": DAY_MS, "pacing": True, "slack_ppm": 20_000}
    assert refusal(spent=0, price=20_000, elapsed_ms=0, **rule) is None  # the slack: 2% at midnight
    assert refusal(spent=0, price=20_001, elapsed_ms=0, **rule) == contract.PACED
    assert refusal(spent=500_000, price=20_000, elapsed_ms=DAY_MS // 2, **rule) is None  # 50% + 2%
    assert refusal(spent=500_001, price=20_000, elapsed_ms=DAY_MS // 2, **rule) == contract.PACED
    assert refusal(spent=999_999, price=1, elapsed_ms=DAY_MS - 1, **rule) is None
    assert refusal(spent=1_000_000, price=1, elapsed_ms=DAY_MS - 1, **rule) == contract.BUDGET_EXHAUSTED
    unpaced = {**rule, "pacing": False}
    assert refusal(spent=0, price=1_000_000, elapsed_ms=0, **unpaced) is None
    assert refusal(spent=1, price=1_000_000, elapsed_ms=0, **unpaced) == contract.BUDGET_EXHAUSTED
    assert refusal(spent=0, price=1, elapsed_ms=0, **{**rule, "active": False}) == contract.PAUSED
    assert refusal(spent=0, price=1, elapsed_ms=0, **{**rule, "slack_ppm": 0}) == contract.PACED


def test_settings():
    settings = BudgetSettings()
    assert (settings.pacing, settings.pacing_slack, settings.day_length_s, settings.sync_interval_ms) == (
        True, 0.02, 86_400, 200)
    assert BudgetSettings(day_length_s=10).day_length_s == 10
    for bad in ({"day_length_s": 9}, {"day_length_s": 86_401}, {"pacing_slack": -0.1}, {"unknown": 1},
                {"sync_interval_ms": 0}):
        with pytest.raises(ValidationError):
            BudgetSettings(**bad)


def test_validation_names_the_field():
    def field(check, request) -> str:
        with pytest.raises(InvalidArgument) as error:
            check(request)
        return error.value.field

    ok = {"impression_id": "imp-1", "campaign_id": "c1", "price_milli_minor": 100}
    assert validation.charge(budget_pb2.ChargeRequest(**ok)) == ("imp-1", "c1", 100)
    assert field(validation.charge, budget_pb2.ChargeRequest(**{**ok, "impression_id": ""})) == "impression_id"
    assert field(validation.charge, budget_pb2.ChargeRequest(**{**ok, "impression_id": "x" * 65})) == "impression_id"
    assert field(validation.charge, budget_pb2.ChargeRequest(**{**ok, "campaign_id": "a/b"})) == "campaign_id"
    assert field(validation.charge, budget_pb2.ChargeRequest(**{**ok, "price_milli_minor": 0})) == "price_milli_minor"
    assert field(validation.charge, budget_pb2.ChargeRequest(
        **{**ok, "price_milli_minor": contract.MAX_PRICE_MILLI_MINOR + 1})) == "price_milli_minor"
    assert field(validation.check_eligibility, budget_pb2.CheckEligibilityRequest()) == "campaign_ids"
    assert field(validation.check_eligibility, budget_pb2.CheckEligibilityRequest(
        campaign_ids=["a"] * 1_001)) == "campaign_ids"
    assert field(validation.check_eligibility, budget_pb2.CheckEligibilityRequest(
        campaign_ids=["a", "b", ""])) == "campaign_ids[2]"
    with pytest.raises(InvalidArgument):
        validation.campaign_id("")


async def test_charges_are_idempotent_per_impression(tmp_path: Path):
    clock = Clock(T0 + DAY_MS // 2)
    budget = await budget_on(tmp_path, clock)
    with pytest.raises(NotFound):
        await budget.charge("i1", "c1", 100)
    with pytest.raises(NotFound):
        budget.spend("c1")
    budget.follow([campaign()])
    first = await budget.charge("i1", "c1", 100)
    assert (first.day, first.spent, first.impressions, first.budget) == (T0 // DAY_MS, 100, 1, 10_000)
    assert await budget.charge("i1", "c1", 999) == first  # whatever the price sent
    await budget.charge("i2", "c1", 100)
    assert await budget.charge("i1", "c1", 100) == first
    assert budget.spend("c1").spent == 200
    # concurrent retries of one impression in flight: one charge, one answer
    answers = await asyncio.gather(*(budget.charge("i3", "c1", 100) for _ in range(10)))
    assert len(set(answers)) == 1 and budget.spend("c1").spent == 300
    # a refusal is remembered: its retry is refused the same way even once the campaign could pay
    budget.follow([campaign(state=ads_pb2.CAMPAIGN_STATE_PAUSED, version=2)])
    assert await reason_of(budget.charge("i4", "c1", 100)) == contract.PAUSED
    budget.follow([campaign(version=3)])
    assert await reason_of(budget.charge("i4", "c1", 100)) == contract.PAUSED
    assert (await budget.charge("i5", "c1", 100)).spent == 400
    await budget.close()


async def test_concurrent_charges_never_exceed_the_budget(tmp_path: Path):
    budget = await budget_on(tmp_path, Clock(), pacing=False)
    budget.follow([campaign(bid=70, budget=10)])  # 10,000 milli-minor: 142 impressions of 70
    outcomes = await asyncio.gather(*(budget.charge(f"i{i}", "c1", 70) for i in range(300)), return_exceptions=True)
    charged = [o for o in outcomes if not isinstance(o, Exception)]
    refused = [o for o in outcomes if isinstance(o, FailedPrecondition)]
    assert len(charged) == 142 and len(refused) == 158
    assert all(str(r).startswith(f"{contract.BUDGET_EXHAUSTED}:") for r in refused)
    assert max(c.spent for c in charged) == budget.spend("c1").spent == 9_940
    assert sorted(c.impressions for c in charged) == list(range(1, 143))
    assert budget.spend("c1").exhausted_at_unix_ms == T0
    await budget.close()
    with sqlite3.connect(tmp_path / FILE_NAME) as db:
        assert db.execute("SELECT count(*), sum(price_milli_minor) FROM charges").fetchone() == (142, 9_940)


async def test_pacing_follows_an_even_spread(tmp_path: Path):
    clock = Clock()
    budget = await budget_on(tmp_path, clock, pacing_slack=0.02)
    budget.follow([campaign(bid=100, budget=100)])  # 100,000 milli-minor; slack 2,000 = 20 impressions
    outcomes = await asyncio.gather(*(budget.charge(f"a{i}", "c1", 100) for i in range(30)), return_exceptions=True)
    assert sum(not isinstance(o, Exception) for o in outcomes) == 20
    assert all(str(o).startswith("paced:") for o in outcomes if isinstance(o, Exception))
    assert budget.eligibility(["c1", "zz"]) == [budget_pb2.ELIGIBILITY_PACED, budget_pb2.ELIGIBILITY_UNKNOWN]
    clock.now = T0 + DAY_MS // 10  # 10% of the day: 10,000 + 2,000 milli-minor allowed
    assert budget.eligibility(["c1"]) == [budget_pb2.ELIGIBILITY_ELIGIBLE]
    outcomes = await asyncio.gather(*(budget.charge(f"b{i}", "c1", 100) for i in range(200)), return_exceptions=True)
    assert sum(not isinstance(o, Exception) for o in outcomes) == 100
    assert budget.spend("c1").spent == 12_000
    await budget.close()


async def test_pacing_off_spends_as_fast_as_it_can(tmp_path: Path):
    budget = await budget_on(tmp_path, Clock(), pacing=False)
    budget.follow([campaign(bid=100, budget=100)])
    outcomes = await asyncio.gather(*(budget.charge(f"a{i}", "c1", 100) for i in range(1_010)),
                                    return_exceptions=True)
    assert sum(not isinstance(o, Exception) for o in outcomes) == 1_000
    assert budget.eligibility(["c1"]) == [budget_pb2.ELIGIBILITY_BUDGET_EXHAUSTED]
    budget.follow([campaign(bid=100, budget=100, state=ads_pb2.CAMPAIGN_STATE_PAUSED, version=2)])
    assert budget.eligibility(["c1"]) == [budget_pb2.ELIGIBILITY_PAUSED]
    await budget.close()


async def test_exhaustion_is_when_the_bid_no_longer_fits(tmp_path: Path):
    clock = Clock()
    budget = await budget_on(tmp_path, clock, pacing=False)
    budget.follow([campaign(bid=300, budget=1)])  # 1,000 milli-minor: 3 impressions of 300, then 100 left
    await budget.charge("i1", "c1", 300)
    clock.now += 5
    assert (await budget.charge("i2", "c1", 300)).exhausted_at_unix_ms == 0
    clock.now += 5
    third = await budget.charge("i3", "c1", 300)
    assert (third.spent, third.exhausted_at_unix_ms) == (900, T0 + 10)
    # a cheaper charge still fits; the exhaustion time stays the first one
    clock.now += 5
    assert (await budget.charge("i4", "c1", 100)).exhausted_at_unix_ms == T0 + 10
    assert await reason_of(budget.charge("i5", "c1", 1)) == contract.BUDGET_EXHAUSTED
    await budget.close()


async def test_the_log_rebuilds_spend_and_answers(tmp_path: Path):
    clock = Clock(T0 + DAY_MS // 2)
    budget = await budget_on(tmp_path, clock, pacing=False)
    budget.follow([campaign(bid=300, budget=1), campaign("c2", bid=50, budget=5)])
    answers = {}
    for i in range(5):
        for cid, price in (("c1", 300), ("c2", 50)):
            clock.now += 1
            try:
                answers[f"{cid}-{i}"] = await budget.charge(f"{cid}-{i}", cid, price)
            except FailedPrecondition:
                pass
    before = budget.spend("c1"), budget.spend("c2")
    await budget.close()

    again = await budget_on(tmp_path, clock, pacing=False)
    again.follow([campaign(bid=300, budget=1), campaign("c2", bid=50, budget=5)])
    assert (again.spend("c1"), again.spend("c2")) == before
    for impression, answer in answers.items():
        assert await again.charge(impression, impression[:2], 1) == answer
    assert before[0].spent == 900 and before[0].exhausted_at_unix_ms > 0
    # the next day starts from zero; yesterday's impressions still get their answers
    clock.now += DAY_MS
    assert again.spend("c1").spent == 0 and again.spend("c1").day == before[0].day + 1
    assert await again.charge("c1-0", "c1", 300) == answers["c1-0"]
    assert (await again.charge("new", "c1", 300)).spent == 300
    await again.close()

    # two days on, an old impression is beyond memory: the file's unique key finds it, and its first answer
    clock.now += 2 * DAY_MS
    later = await budget_on(tmp_path, clock, pacing=False)
    later.follow([campaign(bid=300, budget=1), campaign("c2", bid=50, budget=5)])
    assert await later.charge("c2-3", "c2", 50) == answers["c2-3"]
    assert later.spend("c2").spent == 0
    await later.close()


async def test_a_failed_write_releases_its_reservation(tmp_path: Path):
    budget = await budget_on(tmp_path, Clock(), pacing=False)
    budget.follow([campaign(bid=500, budget=1)])  # two impressions fit
    store = budget._store
    original = store.insert

    async def failing(row, apply):
        raise StoreUnavailable("disk full")

    store.insert = failing
    with pytest.raises(StoreUnavailable):
        await budget.charge("i1", "c1", 500)
    store.insert = original
    assert budget.spend("c1").spent == 0
    assert (await budget.charge("i1", "c1", 500)).spent == 500  # the retry is decided afresh, and taken
    assert (await budget.charge("i2", "c1", 500)).spent == 1_000
    await budget.close()


async def test_a_cancelled_caller_does_not_undo_its_charge(tmp_path: Path):
    budget = await budget_on(tmp_path, Clock(), pacing=False)
    budget.follow([campaign(bid=500, budget=1)])
    task = asyncio.create_task(budget.charge("i1", "c1", 500))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    answer = await budget.charge("i1", "c1", 500)  # the retry waits for the charge in flight
    assert answer.spent == 500 and budget.spend("c1").spent == 500
    await budget.close()


class FakeCampaigns:
    """A CampaignService stub over a list of campaigns (by version), pages of ``page`` at most; ``fail`` makes the
    next call raise UNAVAILABLE."""

    def __init__(self, campaigns: list[ads_pb2.Campaign]) -> None:
        self.campaigns = campaigns
        self.fail = False
        self.calls: list[tuple[int, float]] = []

    async def ListCampaigns(self, request, timeout: float):
        self.calls.append((request.after_version, timeout))
        if self.fail:
            self.fail = False
            raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "down")
        changed = [c for c in self.campaigns if c.version > request.after_version][:2]
        version = max((c.version for c in self.campaigns), default=0)
        more = bool(changed) and changed[-1].version < version
        return campaigns_pb2.ListCampaignsResponse(campaigns=changed, more=more, version=version)


async def test_the_follower_pages_retries_and_starts_over_on_a_new_store(tmp_path: Path):
    budget = await budget_on(tmp_path, Clock())
    stub = FakeCampaigns([campaign(f"c{i}", version=i + 1) for i in range(5)])
    follower = CampaignFollower(stub, budget, interval_ms=10, timeout_s=1.5)
    assert await follower.poll_once() == 5
    assert budget.campaigns_version == 5 and [after for after, _ in stub.calls] == [0, 2, 4]
    assert all(timeout == 1.5 for _, timeout in stub.calls)
    stub.fail = True
    assert not await follower.try_poll()
    stub.campaigns.append(campaign("c1", state=ads_pb2.CAMPAIGN_STATE_PAUSED, version=6))
    assert await follower.try_poll()
    assert budget.eligibility(["c1", "c2"]) == [budget_pb2.ELIGIBILITY_PAUSED, budget_pb2.ELIGIBILITY_ELIGIBLE]
    stub.campaigns = [campaign("n1", version=1)]  # ads-campaigns on a new file: versions from 1 again
    assert await follower.try_poll()
    assert budget.campaigns_version == 1 and budget.eligibility(["n1"]) == [budget_pb2.ELIGIBILITY_ELIGIBLE]
    runner = asyncio.create_task(follower.run())
    stub.campaigns.append(campaign("n2", version=2))
    for _ in range(500):
        if budget.campaigns_version == 2:
            break
        await asyncio.sleep(0.01)
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    assert budget.eligibility(["n2"]) == [budget_pb2.ELIGIBILITY_ELIGIBLE]
    await budget.close()
