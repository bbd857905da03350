"""ads-server's decider (services/ads/server/decider.py) with small fakes of the budget and frequency services and
its real event log: a served ad and its repetition, each no-fill reason, the next bidder after a refused reservation
or charge (the reservation released), ``max_attempts``, UNAVAILABLE from a dependency (nothing served, the reservation
released), the deadline budget, and clicks."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from casemesh.ads.v1 import ads_pb2, budget_pb2, server_pb2
from casemesh.common.v1 import money_pb2
from casemesh.services.ads.server.clients import DependencyUnavailable, Refused
from casemesh.services.ads.server.decider import AdDecider, charge_id
from casemesh.services.ads.server.index import TargetingIndex
from casemesh.services.ads.server.settings import ServerSettings
from casemesh.services.ads.server.store import FILE_NAME, EventLog
from casemesh.services.ads.server.validation import AdRequest
from casemesh.services.runtime.errors import NotFound, Unavailable

ELIGIBLE = budget_pb2.ELIGIBILITY_ELIGIBLE


def _campaign(campaign_id: str, bid: int, cap: int = 2, countries=()) -> ads_pb2.Campaign:
    return ads_pb2.Campaign(
        campaign_id=campaign_id, advertiser_id="adv", targeting=ads_pb2.Targeting(countries=countries),
        cpm_bid=money_pb2.Money(currency_code="USD", amount_minor=bid),
        daily_budget=money_pb2.Money(currency_code="USD", amount_minor=10_000),
        frequency_cap=ads_pb2.FrequencyCap(max_impressions=cap, window_s=3600),
        creative=ads_pb2.Creative(headline=f"{campaign_id}!", landing_url="https://example.com/"),
        state=ads_pb2.CAMPAIGN_STATE_ACTIVE, version=1)


class FakeBudget:
    def __init__(self) -> None:
        self.eligibility_of: dict[str, int] = {}
        self.refuse: set[str] = set()
        self.charges: dict[str, tuple[str, int]] = {}
        self.fail: Exception | None = None
        self.delay_s = 0.0

    async def eligibility(self, campaign_ids, timeout_s):
        return [self.eligibility_of.get(c, ELIGIBLE) for c in campaign_ids]

    async def charge(self, charge, campaign_id, price, timeout_s):
        if self.delay_s > timeout_s:  # as a gRPC call with that timeout
            await asyncio.sleep(timeout_s)
            raise DependencyUnavailable("Charge was not answered (DEADLINE_EXCEEDED)")
        await asyncio.sleep(self.delay_s)
        if self.fail is not None:
            raise self.fail
        if campaign_id in self.refuse:
            raise Refused("Charge", grpc.StatusCode.FAILED_PRECONDITION, "budget_exhausted: spent")
        self.charges.setdefault(charge, (campaign_id, price))


class FakeFrequency:
    def __init__(self) -> None:
        self.reserved: dict[str, tuple[str, str]] = {}
        self.released: list[str] = []
        self.capped: set[str] = set()  # campaigns whose Reserve is refused although GetCounts said below the cap
        self.release_failures = 0

    def _count(self, user_key, campaign_id):
        return sum(1 for key in self.reserved.values() if key == (user_key, campaign_id))

    async def counts(self, user_key, caps, timeout_s):
        return [self._count(user_key, c) for c, _, _ in caps]

    async def reserve(self, reservation, user_key, campaign_id, most, window_s, timeout_s):
        if campaign_id in self.capped or self._count(user_key, campaign_id) >= most:
            raise Refused("Reserve", grpc.StatusCode.FAILED_PRECONDITION, "frequency_capped: capped")
        self.reserved[reservation] = (user_key, campaign_id)
        return self._count(user_key, campaign_id)

    async def release(self, reservation, timeout_s):
        if self.release_failures:
            self.release_failures -= 1
            raise DependencyUnavailable("Release was not answered")
        self.released.append(reservation)
        self.reserved.pop(reservation, None)


@pytest.fixture
async def parts(tmp_path):
    index = TargetingIndex()
    for campaign in (_campaign("gold", 500), _campaign("silver", 300), _campaign("bronze", 100, countries=["US"])):
        index.upsert(campaign)
    budget, frequency = FakeBudget(), FakeFrequency()
    events = EventLog(tmp_path / FILE_NAME)
    decider = AdDecider(ServerSettings(decide_deadline_ms=5_000, filter_timeout_ms=2_000, reserve_timeout_ms=2_000,
                                       charge_timeout_ms=2_000, max_attempts=2), index, budget, frequency, events)
    yield decider, budget, frequency, events
    await decider.close()
    await events.close()


def _ask(request_id: str, user_key: str = "u1", country: str = "US") -> AdRequest:
    return AdRequest(request_id, user_key, country, (), 0)


async def test_served_then_the_same_ad_again(parts):
    decider, budget, frequency, events = parts
    response = await decider.decide(_ask("r1"))
    assert response.ad.campaign_id == "gold" and response.ad.impression_id == "r1"
    assert response.ad.cpm_price == money_pb2.Money(currency_code="USD", amount_minor=500)
    assert response.ad.creative.headline == "gold!"
    assert (response.candidates, response.bidders, response.no_fill_reason) == (3, 3, 0)
    assert budget.charges == {charge_id("r1", "gold"): ("gold", 500)}
    assert await decider.decide(_ask("r1")) == response  # neither charged nor counted again
    assert len(budget.charges) == 1 and len(frequency.reserved) == 1
    stored = await events.impression("r1")
    assert stored.campaign_id == "gold" and stored.reservation_id in frequency.reserved
    # concurrent repeats of a new request: decided once
    answers = await asyncio.gather(*(decider.decide(_ask("r2", user_key="u2")) for _ in range(5)))
    assert len({a.SerializeToString() for a in answers}) == 1 and len(budget.charges) == 2


async def test_no_fill_reasons(parts):
    decider, budget, _, _ = parts
    assert (await decider.decide(_ask("r1", country="JP"))).candidates == 2  # bronze targets the US only
    assert (await decider.decide(AdRequest("r0", "u", "", ("x",), 0))).ad.campaign_id == "gold"
    budget.eligibility_of = {c: budget_pb2.ELIGIBILITY_BUDGET_EXHAUSTED for c in ("gold", "silver", "bronze")}
    response = await decider.decide(_ask("r2"))
    assert (response.no_fill_reason, response.candidates, response.bidders) == (
        server_pb2.NO_FILL_REASON_BUDGET, 3, 0)
    budget.eligibility_of = {"gold": budget_pb2.ELIGIBILITY_PACED}
    for n in range(4):  # silver and bronze twice each (cap 2)
        assert (await decider.decide(_ask(f"s{n}", user_key="capped"))).ad.campaign_id in ("silver", "bronze")
    response = await decider.decide(_ask("r3", user_key="capped"))
    assert response.no_fill_reason == server_pb2.NO_FILL_REASON_FREQUENCY_CAPPED and response.candidates == 3


async def test_no_candidates(tmp_path):
    events = EventLog(tmp_path / FILE_NAME)
    try:
        decider = AdDecider(ServerSettings(), TargetingIndex(), FakeBudget(), FakeFrequency(), events)
        response = await decider.decide(_ask("r1"))
        assert response.no_fill_reason == server_pb2.NO_FILL_REASON_NO_CANDIDATES and response.candidates == 0
    finally:
        await events.close()


async def test_the_next_bidder_after_a_refusal(parts):
    decider, budget, frequency, _ = parts
    budget.refuse = {"gold"}
    response = await decider.decide(_ask("r1"))
    assert response.ad.campaign_id == "silver"
    await asyncio.sleep(0.05)  # the refused charge's reservation is released in the background
    assert len(frequency.released) == 1 and list(frequency.reserved.values()) == [("u1", "silver")]
    frequency.capped = {"silver"}
    budget.refuse = set()
    response = await decider.decide(_ask("r2", user_key="u9"))
    assert response.ad.campaign_id == "gold"
    budget.refuse = {"gold"}
    response = await decider.decide(_ask("r3", user_key="u8"))  # gold refused, silver capped: max_attempts 2
    assert response.no_fill_reason == server_pb2.NO_FILL_REASON_FREQUENCY_CAPPED and response.bidders == 3
    budget.refuse = {"gold", "silver", "bronze"}
    frequency.capped = set()
    response = await decider.decide(_ask("r4", user_key="u7"))
    assert response.no_fill_reason == server_pb2.NO_FILL_REASON_BUDGET


async def test_a_dependency_that_does_not_answer(parts):
    decider, budget, frequency, events = parts
    budget.fail = DependencyUnavailable("Charge was not answered")
    with pytest.raises(Unavailable):
        await decider.decide(_ask("r1"))
    await asyncio.sleep(0.05)
    assert frequency.reserved == {} and len(frequency.released) == 1 and await events.impression("r1") is None
    budget.fail = None
    assert (await decider.decide(_ask("r1"))).ad.campaign_id == "gold"  # the retry decides afresh
    frequency.release_failures = 1  # a release that fails is tried again (0.5 s later)
    budget.fail = DependencyUnavailable("Charge was not answered")
    with pytest.raises(Unavailable):
        await decider.decide(_ask("r9", user_key="u9"))
    for _ in range(100):
        if len(frequency.released) == 2:
            break
        await asyncio.sleep(0.02)
    assert len(frequency.released) == 2 and ("u9", "gold") not in frequency.reserved.values()
    budget.fail = None
    budget.delay_s = 0.3  # beyond the deadline budget
    decider._settings = ServerSettings(decide_deadline_ms=100, charge_timeout_ms=1000)
    started = asyncio.get_running_loop().time()
    with pytest.raises(Unavailable):
        await decider.decide(_ask("r2", user_key="u2"))
    # Unavailable at all says the 100 ms budget cut the 0.3 s charge short (its own 1 s timeout would have let it
    # answer); the bound only rules out the charge's 1 s timeout, with room for a loaded machine's late timers
    assert asyncio.get_running_loop().time() - started < 0.9


async def test_clicks(parts):
    decider, _, _, _ = parts
    await decider.decide(_ask("r1"))
    assert await decider.record_click("r1") is True
    assert await decider.record_click("r1") is False
    with pytest.raises(NotFound):
        await decider.record_click("nope")
