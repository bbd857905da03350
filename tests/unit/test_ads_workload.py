"""The ads workload without a mesh: seeding through a fake CampaignService (the plan, the requests, resends, a refusal,
an answer that is not what was asked), budgets sized from the profile's rate, the users, the page_view journey against
a fake AdService (served, no fill, clicks), the frequency referee (OK, CAP_EXCEEDED, answers out of order, delays that
must not make a false breach), the advertiser_check journey against a fake BudgetService (budget_respected,
budget_exhaustion and its day arithmetic, one sample per campaign-day) and the tally."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import grpc
import pytest

from casemesh.ads.v1 import ads_pb2, budget_pb2, campaigns_pb2, server_pb2
from casemesh.common.v1 import money_pb2
from casemesh.harness.workloads.ads import connect, disconnect
from casemesh.harness.workloads.ads.journeys import (
    BUDGET_EXHAUSTION,
    BUDGET_RESPECTED,
    EMPTY,
    FILL,
    FREQUENCY_RESPECTED,
    OUTSIDE_DAY,
    OVERSPENT,
    AdvertiserCheckParams,
    PageViewParams,
    advertiser_check,
    left_of_day,
    no_fill_code,
    page_view,
)
from casemesh.harness.workloads.ads.live import CAP_EXCEEDED, MARGIN_S, UNKNOWN_CAMPAIGN, Ads
from casemesh.harness.workloads.ads.seeding import (
    COUNTRY_SHARES,
    FREQUENCY_CAPS,
    INTERESTS,
    CampaignPlan,
    SeedParams,
    State,
    User,
    budget_minor,
    campaign_message,
    plan,
    seed,
)
from casemesh.services.ads.contract import is_country, is_id, is_interest, is_landing_url, matches


def rpc_error(code: grpc.StatusCode, details: str = "") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


class Clock:
    """A fake perf_counter that tests move by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeAds:
    """CampaignService.CreateCampaign, AdService.Decide / RecordClick and BudgetService.GetSpend in memory, as the protos
    say: CreateCampaign idempotent for the same fields (ALREADY_EXISTS otherwise); Decide serves the highest bid among
    the matching campaigns (or the ``no_fill`` reason set by a test, or ``serve`` forced); GetSpend answers
    ``spends[campaign]`` (a fresh zero day otherwise). ``fail`` holds codes raised by the next calls of a method;
    ``tamper`` changes the next CreateCampaign answer's budget."""

    def __init__(self) -> None:
        self.campaigns: dict[str, ads_pb2.Campaign] = {}
        self.calls: list[tuple[str, Any]] = []
        self.fail: dict[str, list[grpc.StatusCode]] = {}
        self.no_fill = server_pb2.NO_FILL_REASON_UNSPECIFIED
        self.serve: str | None = None
        self.spends: dict[str, budget_pb2.CampaignSpend] = {}
        self.tamper = False
        self.clicks: list[str] = []

    def methods(self) -> list[str]:
        return [m for m, _ in self.calls]

    async def handle(self, service: str, method: str, request: Any) -> Any:
        expected = {"CreateCampaign": "ads-campaigns", "Decide": "ads-server", "RecordClick": "ads-server",
                    "GetSpend": "ads-budget"}
        assert expected[method] == service, (service, method)
        self.calls.append((method, request))
        await asyncio.sleep(0)
        codes = self.fail.get(method)
        if codes:
            raise rpc_error(codes.pop(0), "injected")
        return getattr(self, f"_{method.lower()}")(request)

    def _createcampaign(self, request: campaigns_pb2.CreateCampaignRequest) -> campaigns_pb2.CreateCampaignResponse:
        campaign = request.campaign
        stored = self.campaigns.get(campaign.campaign_id)
        if stored is not None:
            mine = ads_pb2.Campaign()
            mine.CopyFrom(stored)
            mine.ClearField("state"), mine.ClearField("version"), mine.ClearField("created_at_unix_ms")
            if mine != campaign:
                raise rpc_error(grpc.StatusCode.ALREADY_EXISTS, "campaign.campaign_id")
            return campaigns_pb2.CreateCampaignResponse(campaign=stored)
        stored = ads_pb2.Campaign()
        stored.CopyFrom(campaign)
        stored.state, stored.version, stored.created_at_unix_ms = ads_pb2.CAMPAIGN_STATE_ACTIVE, len(self.campaigns) + 1, 1
        self.campaigns[campaign.campaign_id] = stored
        answer = ads_pb2.Campaign()
        answer.CopyFrom(stored)
        if self.tamper:
            answer.daily_budget.amount_minor += 1
        return campaigns_pb2.CreateCampaignResponse(campaign=answer)

    def _decide(self, request: server_pb2.DecideRequest) -> server_pb2.DecideResponse:
        if self.no_fill:
            return server_pb2.DecideResponse(no_fill_reason=self.no_fill)
        eligible = [c for c in self.campaigns.values()
                    if matches(c.targeting.countries, c.targeting.interests, c.targeting.devices,
                               country=request.country, request_interests=request.interests, device=request.device)]
        if self.serve is not None:
            eligible = [self.campaigns[self.serve]]
        if not eligible:
            return server_pb2.DecideResponse(no_fill_reason=server_pb2.NO_FILL_REASON_NO_CANDIDATES)
        winner = max(eligible, key=lambda c: c.cpm_bid.amount_minor)
        return server_pb2.DecideResponse(
            ad=server_pb2.ServedAd(impression_id=request.request_id, campaign_id=winner.campaign_id,
                                   creative=winner.creative, cpm_price=winner.cpm_bid),
            candidates=len(eligible), bidders=len(eligible))

    def _recordclick(self, request: server_pb2.RecordClickRequest) -> server_pb2.RecordClickResponse:
        self.clicks.append(request.impression_id)
        return server_pb2.RecordClickResponse(first=True)

    def _getspend(self, request: budget_pb2.GetSpendRequest) -> budget_pb2.GetSpendResponse:
        campaign = self.campaigns[request.campaign_id]
        spend = self.spends.get(request.campaign_id) or budget_pb2.CampaignSpend(
            campaign_id=request.campaign_id, day=20_000, daily_budget=campaign.daily_budget, day_length_s=120)
        return budget_pb2.GetSpendResponse(spend=spend)


class FakeCaller:
    """A journey's Caller over a :class:`FakeAds`: calls and measures recorded."""

    def __init__(self, fake: FakeAds) -> None:
        self.fake = fake
        self.observed: list[tuple[str, float, str]] = []

    async def __call__(self, service: str, method: str, request: Any) -> Any:
        return await self.fake.handle(service, method, request)

    def observe(self, name: str, latency_s: float, code: str = "OK") -> None:
        self.observed.append((name, latency_s, code))

    def codes(self, name: str) -> list[str]:
        return [c for n, _, c in self.observed if n == name]

    def values(self, name: str) -> list[float]:
        return [s for n, s, _ in self.observed if n == name]


SMALL = SeedParams(campaigns=30, users=200, budget_page_views_per_s=40, budget_day_length_s=120)


async def _ads(fake: FakeAds, params: SeedParams = SMALL, clock: Clock | None = None) -> Ads:
    state = await seed(fake.handle, params, random.Random(5))
    fake.calls.clear()
    return Ads(state, params, clock=clock or Clock())


def _campaign(cap: int = 3, window: int = 60, budget: int = 1_000) -> CampaignPlan:
    return CampaignPlan("c1", "a1", (), (), (), bid_minor=250, budget_minor=budget, cap_impressions=cap,
                        cap_window_s=window)


def _state(*campaigns: CampaignPlan) -> State:
    return State(run="0badcafe", currency="USD", campaigns=campaigns or (_campaign(),),
                 users=(User("u1", "US", ads_pb2.DEVICE_TYPE_MOBILE, ("news",)),))


# seeding --------------------------------------------------------------------------------------------------------------

def test_the_plan_is_valid_by_the_contract_and_drawn_from_the_tables():
    state = plan(SeedParams(campaigns=300, users=2_000), random.Random(7))
    assert len(state.campaigns) == 300 and len(state.users) == 2_000 and len(state.run) == 8
    assert len({c.campaign_id for c in state.campaigns}) == 300
    assert len({c.advertiser_id for c in state.campaigns}) == 75  # 4 campaigns an advertiser
    countries = dict(COUNTRY_SHARES)
    for c in state.campaigns:
        assert is_id(c.campaign_id) and is_id(c.advertiser_id)
        assert set(c.countries) <= set(countries) and all(map(is_country, c.countries)) and len(c.countries) <= 3
        assert set(c.interests) <= set(INTERESTS) and all(map(is_interest, c.interests)) and len(c.interests) <= 3
        assert set(c.devices) <= {1, 2, 3, 4} and len(c.devices) <= 2
        assert 10 <= c.bid_minor <= 5_000 and c.budget_minor >= 1
        assert (c.cap_impressions, c.cap_window_s) in FREQUENCY_CAPS
    # "any" shares: about 30% any country, 30% any interest, 50% any device.
    assert 0.2 < sum(not c.countries for c in state.campaigns) / 300 < 0.4
    assert 0.4 < sum(not c.devices for c in state.campaigns) / 300 < 0.6
    bids = sorted(c.bid_minor for c in state.campaigns)
    assert 180 < bids[150] < 350  # lognormal around 250
    users = state.users
    assert len({u.key for u in users}) == 2_000 and all(is_id(u.key) and len(u.key) == 24 for u in users)
    assert all(u.country in countries and u.device in (1, 2, 3, 4) and 1 <= len(u.interests) <= 4 for u in users)
    us = sum(u.country == "US" for u in users) / len(users)
    mobile = sum(u.device == ads_pb2.DEVICE_TYPE_MOBILE for u in users) / len(users)
    assert 0.19 < us < 0.29 and 0.52 < mobile < 0.64
    again = plan(SeedParams(campaigns=300, users=2_000), random.Random(7))
    assert again == state  # deterministic from the run's generator


def test_budgets_buy_their_share_of_the_day_s_page_views():
    params = SeedParams(campaigns=200, budget_page_views_per_s=40, budget_day_length_s=120, budget_share=0.3)
    # 0.3 x 40/s x 120 s / 200 campaigns = 7.2 impressions a day at the bid: 7.2 x 250 / 1,000 = 1.8 -> 2 minor units.
    assert budget_minor(params, 250, 1.0) == 2
    assert budget_minor(params, 5_000, 1.0) == 36
    assert budget_minor(params.model_copy(update={"budget_share": 3}), 5_000, 2.0) == 720
    assert budget_minor(params, 1, 0.001) == 1  # at least one minor unit
    state = plan(params, random.Random(3))
    share = 0.3 * 40 * 120  # impressions of the day the budgets buy together
    bought = sum(c.budget_minor * 1_000 / c.bid_minor for c in state.campaigns)
    assert share * 0.9 < bought < share * 1.6  # ceil to whole minor units adds a little


async def test_seed_creates_every_campaign_as_planned():
    fake = FakeAds()
    state = await seed(fake.handle, SMALL, random.Random(5))
    assert fake.methods() == ["CreateCampaign"] * 30 and set(fake.campaigns) == {c.campaign_id for c in state.campaigns}
    for c in state.campaigns:
        stored = fake.campaigns[c.campaign_id]
        assert (stored.cpm_bid.amount_minor, stored.daily_budget.amount_minor) == (c.bid_minor, c.budget_minor)
        assert stored.cpm_bid.currency_code == stored.daily_budget.currency_code == "USD"
        assert tuple(stored.targeting.countries) == c.countries and tuple(stored.targeting.devices) == c.devices
        assert (stored.frequency_cap.max_impressions, stored.frequency_cap.window_s) == (c.cap_impressions,
                                                                                         c.cap_window_s)
        assert 1 <= len(stored.creative.headline) <= 90 and is_landing_url(stored.creative.landing_url)
    # Seeding again with the same generator re-creates the same campaigns: answered as they are (idempotent).
    again = await seed(fake.handle, SMALL, random.Random(5))
    assert again == state and len(fake.campaigns) == 30


async def test_seed_resends_while_the_service_starts_and_fails_on_a_refusal():
    fake = FakeAds()
    fake.fail["CreateCampaign"] = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED]
    await seed(fake.handle, SMALL.model_copy(update={"create_concurrency": 1}), random.Random(5))
    assert fake.methods().count("CreateCampaign") == 32 and len(fake.campaigns) == 30
    fake = FakeAds()
    fake.fail["CreateCampaign"] = [grpc.StatusCode.INVALID_ARGUMENT]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await seed(fake.handle, SMALL, random.Random(5))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_seed_fails_when_the_answer_is_not_the_campaign_asked():
    fake = FakeAds()
    fake.tamper = True
    with pytest.raises(RuntimeError, match="answered bid, budget, cap"):
        await seed(fake.handle, SMALL, random.Random(5))


def test_seed_params_are_checked():
    with pytest.raises(ValueError, match="currency code"):
        SeedParams(currency="usd")
    with pytest.raises(ValueError, match="bid_min_minor"):
        SeedParams(bid_min_minor=300, bid_median_minor=250)
    with pytest.raises(ValueError):
        SeedParams(bogus=1)


# page_view ------------------------------------------------------------------------------------------------------------

async def test_a_page_view_asks_for_an_ad_in_the_user_s_context_and_is_served():
    fake = FakeAds()
    ads = await _ads(fake)
    caller = FakeCaller(fake)
    rng = random.Random(2)
    for _ in range(200):
        await page_view(caller, PageViewParams(click_p=0.0), ads, rng)
    decides = [r for m, r in fake.calls if m == "Decide"]
    assert len(decides) == 200 and len({r.request_id for r in decides}) == 200
    for request in decides:
        user = ads.users[request.user_key]
        assert (request.country, request.device) == (user.country, user.device)
        assert 1 <= len(request.interests) <= 2 and all(i in INTERESTS for i in request.interests)
        assert is_id(request.request_id) and request.request_id.startswith(f"r{ads.state.run}-")
    on_interest = sum(set(r.interests) <= set(ads.users[r.user_key].interests) for r in decides) / 200
    assert on_interest > 0.65  # 70% of pages about the user's own interests (and some others by chance)
    fills = caller.codes(FILL)
    assert len(fills) == 200 and set(fills) <= {"OK", "NO_CANDIDATES"} and fills.count("OK") > 100
    # Every ad served is judged against its cap (the fake ignores caps: heavy users see breaches).
    assert len(caller.codes(FREQUENCY_RESPECTED)) == fills.count("OK")
    assert ads.tally.page_views == 200 and ads.tally.fills["OK"] == fills.count("OK")
    # Zipf: the most active user browses most.
    keys = [r.user_key for r in decides]
    assert keys.count(ads.state.users[0].key) == max(keys.count(k) for k in set(keys))


async def test_clicks_follow_click_p_and_name_the_impression():
    fake = FakeAds()
    ads = await _ads(fake)
    fake.serve = ads.state.campaigns[0].campaign_id
    caller = FakeCaller(fake)
    await page_view(caller, PageViewParams(click_p=1.0), ads, random.Random(1))
    (decide, click) = [r for _, r in fake.calls]
    assert fake.methods() == ["Decide", "RecordClick"] and click.impression_id == decide.request_id
    assert ads.tally.clicks == 1
    await page_view(caller, PageViewParams(click_p=0.0), ads, random.Random(1))
    assert fake.methods()[-1] == "Decide"


@pytest.mark.parametrize(("reason", "code"), [(server_pb2.NO_FILL_REASON_NO_CANDIDATES, "NO_CANDIDATES"),
                                              (server_pb2.NO_FILL_REASON_BUDGET, "BUDGET"),
                                              (server_pb2.NO_FILL_REASON_FREQUENCY_CAPPED, "FREQUENCY_CAPPED")])
async def test_a_no_fill_is_recorded_by_its_reason_and_not_judged_for_frequency(reason: int, code: str):
    fake = FakeAds()
    ads = await _ads(fake)
    fake.no_fill = reason
    caller = FakeCaller(fake)
    await page_view(caller, PageViewParams(click_p=1.0), ads, random.Random(1))
    assert caller.codes(FILL) == [code] and caller.codes(FREQUENCY_RESPECTED) == []
    assert fake.methods() == ["Decide"] and no_fill_code(reason) == code and no_fill_code(0) == "OK"


class EmptyAnswers(FakeCaller):
    """Decide answered with neither an ad nor a reason."""

    async def __call__(self, service: str, method: str, request: Any) -> Any:
        return server_pb2.DecideResponse()


async def test_an_answer_with_neither_an_ad_nor_a_reason_is_empty():
    fake = FakeAds()
    ads = await _ads(fake)
    caller = EmptyAnswers(fake)
    await page_view(caller, PageViewParams(click_p=1.0), ads, random.Random(1))
    assert caller.codes(FILL) == [EMPTY] and caller.codes(FREQUENCY_RESPECTED) == []


async def test_a_failed_decide_raises_and_records_no_measure():
    fake = FakeAds()
    ads = await _ads(fake)
    fake.fail["Decide"] = [grpc.StatusCode.UNAVAILABLE]
    caller = FakeCaller(fake)
    with pytest.raises(grpc.aio.AioRpcError):
        await page_view(caller, PageViewParams(), ads, random.Random(1))
    assert caller.observed == []


async def test_page_views_beyond_a_cap_are_cap_exceeded():
    clock = Clock()
    fake = FakeAds()
    campaign = _campaign(cap=3, window=60)
    fake.campaigns["c1"] = campaign_message(campaign, "USD")
    fake.serve = "c1"
    ads = Ads(_state(campaign), clock=clock)  # one user
    caller = FakeCaller(fake)
    for _ in range(5):
        clock.now += 1
        await page_view(caller, PageViewParams(click_p=0.0), ads, random.Random(1))
    assert caller.codes(FREQUENCY_RESPECTED) == ["OK"] * 3 + [CAP_EXCEEDED] * 2
    assert ads.tally.cap_breaches == 2


# the frequency referee ------------------------------------------------------------------------------------------------

def test_the_referee_counts_within_the_window_and_forgets_after_it():
    ads = Ads(_state(_campaign(cap=3, window=60)))
    assert [ads.served("u1", "c1", t, t + 0.01) for t in (0, 1, 2)] == ["OK"] * 3
    assert ads.served("u1", "c1", 3, 3.01) == CAP_EXCEEDED  # a 4th within 60 s
    assert ads.served("u2", "c1", 3, 3.01) == "OK"  # another user
    # At 61.5 s the first two (sent at 0 and 1) are out of the window; the two at 2 and 3 are in: a 3rd is fine.
    assert ads.served("u1", "c1", 61.4, 61.5) == "OK"
    assert ads.served("u1", "c1", 61.6, 61.7) == CAP_EXCEEDED
    assert ads.served("u1", "nope", 70, 70.1) == UNKNOWN_CAMPAIGN


def test_delays_never_make_a_false_breach():
    ads = Ads(_state(_campaign(cap=1, window=10)))
    # The first impression's Decide was sent at 0 and answered at 5 (the server reserved it anywhere in between);
    # the second was sent at 9 and answered at 10.5: the server may have seen 10.5 - 0 > 10 s between them.
    assert ads.served("u1", "c1", 0.0, 5.0) == "OK"
    assert ads.served("u1", "c1", 9.0, 10.5) == "OK"
    # The third, answered at 10.6, is certainly within 10 s of the second's send (9): a breach.
    assert ads.served("u1", "c1", 10.0, 10.6) == CAP_EXCEEDED
    # Just under the window minus the clock margin is certainly within it; at the margin it is not.
    ads = Ads(_state(_campaign(cap=1, window=10)))
    assert ads.served("u1", "c1", 0.0, 0.0) == "OK"
    assert ads.served("u1", "c1", 0.0, 10 - MARGIN_S - 0.001) == CAP_EXCEEDED
    ads = Ads(_state(_campaign(cap=1, window=10)))
    assert ads.served("u1", "c1", 0.0, 0.0) == "OK"
    assert ads.served("u1", "c1", 0.0, 10 - MARGIN_S) == "OK"


def test_answers_out_of_send_order_are_counted_by_their_sends():
    ads = Ads(_state(_campaign(cap=2, window=10)))
    # A slow Decide sent at 0 answered after a fast one sent at 8: the first is out of the later windows, not the second.
    assert ads.served("u1", "c1", 8.0, 8.1) == "OK"
    assert ads.served("u1", "c1", 0.0, 8.2) == "OK"
    assert ads.served("u1", "c1", 11.0, 11.1) == "OK"  # within 10 s: only the one sent at 8
    assert ads.served("u1", "c1", 12.0, 12.1) == CAP_EXCEEDED  # the ones sent at 8 and 11


# advertiser_check -----------------------------------------------------------------------------------------------------

def _spend(campaign: CampaignPlan, **fields: Any) -> budget_pb2.CampaignSpend:
    return budget_pb2.CampaignSpend(
        campaign_id=campaign.campaign_id, daily_budget=money_pb2.Money(currency_code="USD",
                                                                       amount_minor=campaign.budget_minor), **fields)


async def test_an_advertiser_check_judges_the_spend_against_the_budget():
    fake = FakeAds()
    ads = await _ads(fake)
    caller = FakeCaller(fake)
    first, second = ads.state.campaigns[:2]
    fake.spends[first.campaign_id] = _spend(first, day=7, day_length_s=120, spent_milli_minor=first.budget_minor * 1_000)
    fake.spends[second.campaign_id] = _spend(second, day=7, day_length_s=120,
                                             spent_milli_minor=second.budget_minor * 1_000 + 1)
    ads.state = State(run=ads.state.run, currency="USD", campaigns=(first,), users=ads.state.users)
    await advertiser_check(caller, AdvertiserCheckParams(), ads, random.Random(1))
    ads.state = State(run=ads.state.run, currency="USD", campaigns=(second,), users=ads.state.users)
    await advertiser_check(caller, AdvertiserCheckParams(), ads, random.Random(1))
    assert fake.methods() == ["GetSpend", "GetSpend"]
    assert caller.codes(BUDGET_RESPECTED) == ["OK", OVERSPENT] and caller.codes(BUDGET_EXHAUSTION) == []
    assert ads.tally.spend_checks == 2 and ads.tally.overspent == 1


def test_the_day_left_at_exhaustion_from_the_epoch_aligned_day():
    day, length = 19_000, 90
    start_ms = day * length * 1_000
    spend = budget_pb2.CampaignSpend(day=day, day_length_s=length, exhausted_at_unix_ms=start_ms + 72_000)
    assert left_of_day(spend) == pytest.approx(0.2)  # 72 s of a 90 s day: 80% elapsed
    spend.exhausted_at_unix_ms = start_ms + 9_000
    assert left_of_day(spend) == pytest.approx(0.9)
    spend.exhausted_at_unix_ms = start_ms - 1
    assert left_of_day(spend) is None
    spend.exhausted_at_unix_ms = start_ms + 90_001
    assert left_of_day(spend) is None
    spend.day_length_s = 0
    assert left_of_day(spend) is None


async def test_each_exhaustion_is_one_sample_of_the_day_left():
    fake = FakeAds()
    ads = await _ads(fake)
    caller = FakeCaller(fake)
    campaign = ads.state.campaigns[0]
    ads.state = State(run=ads.state.run, currency="USD", campaigns=(campaign,), users=ads.state.users)
    start_ms = 20_000 * 120_000
    fake.spends[campaign.campaign_id] = _spend(campaign, day=20_000, day_length_s=120,
                                               exhausted_at_unix_ms=start_ms + 30_000)
    for _ in range(3):  # looked at three times the same day: one sample
        await advertiser_check(caller, AdvertiserCheckParams(), ads, random.Random(1))
    fake.spends[campaign.campaign_id] = _spend(campaign, day=20_001, day_length_s=120,
                                               exhausted_at_unix_ms=start_ms + 120_000 + 114_000)
    await advertiser_check(caller, AdvertiserCheckParams(), ads, random.Random(1))
    fake.spends[campaign.campaign_id] = _spend(campaign, day=20_002, day_length_s=120, exhausted_at_unix_ms=1)
    await advertiser_check(caller, AdvertiserCheckParams(), ads, random.Random(1))
    assert caller.codes(BUDGET_EXHAUSTION) == ["OK", "OK", OUTSIDE_DAY]
    # 30 s of 120 s: 75% of the day left (750 ms); 114 s: 5% left (50 ms); as latencies where 1 s is a day.
    assert caller.values(BUDGET_EXHAUSTION) == pytest.approx([0.75, 0.05, 0.0])
    assert ads.tally.exhaustions == pytest.approx([0.25, 0.95])
    assert caller.codes(BUDGET_RESPECTED) == ["OK"] * 5


# connect, disconnect and the tally ------------------------------------------------------------------------------------

async def test_connect_makes_the_process_s_ads_and_disconnect_logs_the_tally(caplog):
    state = _state()
    ads = await connect(None, state, SeedParams(), random.Random(1))
    assert isinstance(ads, Ads) and ads.state is state
    assert ads.tally.summary().startswith("0 page views answered")
    ads.tally.page_views, ads.tally.fills["OK"], ads.tally.fills["BUDGET"] = 10, 7, 3
    ads.tally.exhaustions = [0.3, 0.95]
    caplog.set_level("INFO", logger="casemesh.workloads.ads")
    await disconnect(ads)
    assert "7 ads served (70%; no fill: BUDGET 3)" in caplog.text and "2 budget exhaustions seen, 1 after 80%" in caplog.text
    with pytest.raises(ValueError, match="at least one campaign"):
        Ads(State(run="x", currency="USD", campaigns=(), users=state.users))
