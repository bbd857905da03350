"""Each campaign's spend per day, and the decision to take a charge (:class:`Budget`).

The rules (protos/casemesh/ads/v1/budget.proto): a day is ``day_length_s`` seconds from the Unix epoch, spend starts
at zero each day; a charge of ``price`` is taken only while ``spend + price <= budget`` (no overspend, the tolerance
is zero) and, with pacing on, ``spend + price <= budget * elapsed / day_length + budget * pacing_slack``
(:func:`refusal`; the pacing is argued in :mod:`.settings`).

Atomic: :meth:`Budget.charge` checks and reserves in one step of the event loop (no ``await`` between the check of
``spent + pending + price`` and ``pending += price``), so concurrent charges of one campaign are checked against each
other's reservations and can never together exceed the budget. Durable: the charge's row is written and fsynced
(:mod:`.store`, group-committed) before the answer; only once committed does ``apply`` move the price from ``pending``
to ``spent`` (a write that fails releases its reservation). Idempotent per impression: a committed charge's answer is
kept by impression ID (today's and yesterday's, rebuilt from the log at start), a charge in flight is awaited by its
retries, and the file's unique impression column catches a retry of an older charge (answered from the log); a
refusal is remembered (``recent_refusals``, in memory only: after a restart a retry is decided afresh).

A charge's answer is the campaign's day just after it (spent, impressions, when the bid stopped fitting in the budget);
replaying the log in commit order gives the same answers (:class:`.store.DaySpend`). ``exhausted_at_unix_ms`` is the
time of the charge after which the remaining budget is below the campaign's impression price.

Campaigns are followed from ads-campaigns (:meth:`Budget.follow`, fed by :mod:`.follower`); a campaign not seen yet
is NOT_FOUND to Charge and GetSpend and UNKNOWN to CheckEligibility.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from casemesh.ads.v1 import ads_pb2, budget_pb2

from ...runtime.errors import FailedPrecondition, NotFound
from .. import contract
from . import metrics
from .settings import BudgetSettings
from .store import ChargeRow, ChargeStore, DaySpend, KnownCharge

_PPM = 1_000_000
_ELIGIBILITY = {None: budget_pb2.ELIGIBILITY_ELIGIBLE, contract.PAUSED: budget_pb2.ELIGIBILITY_PAUSED,
                contract.BUDGET_EXHAUSTED: budget_pb2.ELIGIBILITY_BUDGET_EXHAUSTED,
                contract.PACED: budget_pb2.ELIGIBILITY_PACED}


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class KnownCampaign:
    """What the budget knows of a campaign (from ads-campaigns): whether it is ACTIVE, its impression price (its CPM
    bid, :func:`contract.impression_price_milli_minor`) and daily budget in thousandths of a minor unit."""

    campaign_id: str
    active: bool
    bid: int
    budget: int
    currency_code: str
    version: int

    @classmethod
    def of(cls, campaign: ads_pb2.Campaign) -> KnownCampaign:
        return cls(campaign.campaign_id, campaign.state == ads_pb2.CAMPAIGN_STATE_ACTIVE,
                   contract.impression_price_milli_minor(campaign.cpm_bid.amount_minor),
                   campaign.daily_budget.amount_minor * 1_000, campaign.daily_budget.currency_code, campaign.version)


@dataclass(frozen=True, slots=True)
class Spend:
    """A campaign's day as the API shows it (CampaignSpend); amounts in thousandths of a minor unit."""

    campaign_id: str
    day: int
    budget: int
    currency_code: str
    spent: int
    impressions: int
    exhausted_at_unix_ms: int


def refusal(*, active: bool, budget: int, spent: int, price: int, elapsed_ms: int, day_ms: int, pacing: bool,
            slack_ppm: int) -> str | None:
    """Why a charge of ``price`` is refused (a contract reason) or ``None`` (taken), for a campaign that has
    ``spent`` (committed and reserved) of ``budget`` ``elapsed_ms`` into a day of ``day_ms``; with ``pacing``, at most
    ``slack_ppm`` millionths of the budget ahead of an even spread. Exact integer arithmetic: the pacing rule
    ``spent + price <= budget * elapsed / day + budget * slack`` multiplied through by ``day * 10**6``."""
    if not active:
        return contract.PAUSED
    if spent + price > budget:
        return contract.BUDGET_EXHAUSTED
    if pacing and (spent + price) * day_ms * _PPM > budget * (elapsed_ms * _PPM + slack_ppm * day_ms):
        return contract.PACED
    return None


class Budget:
    """The campaigns' days over ``store`` (see the module docstring); ``clock`` gives Unix milliseconds."""

    def __init__(self, store: ChargeStore, settings: BudgetSettings, clock: Callable[[], int] = _now_ms) -> None:
        self._store = store
        self.settings = settings
        self._clock = clock
        self._day_ms = settings.day_length_s * 1_000
        self._slack_ppm = round(settings.pacing_slack * _PPM)
        self._campaigns: dict[str, KnownCampaign] = {}
        self.campaigns_version = 0
        self._days: dict[tuple[str, int], DaySpend] = {}
        self._charged: dict[str, Spend] = {}  # impression → its answer (days kept: today and yesterday)
        self._charged_day: dict[str, int] = {}
        self._in_flight: dict[str, asyncio.Task[Spend]] = {}
        self._refused: OrderedDict[str, str] = OrderedDict()
        self._exhausted: set[tuple[str, int]] = set()
        self._kept_from = 0  # the oldest day in memory

    def day_of(self, unix_ms: int) -> int:
        """The day number of ``unix_ms``: floor(Unix seconds / day_length_s)."""
        return unix_ms // self._day_ms

    # -- lifecycle -----------------------------------------------------------------------------------------------------

    async def start(self) -> int:
        """Rebuild today's and yesterday's days and answers from the log; returns how many charges."""
        self._kept_from = self.day_of(self._clock()) - 1
        rows = await self._store.load(self._kept_from)
        for row in rows:
            self._applied(row, self._day(row.campaign_id, row.day), count=False)
        self._set_exhausted()
        return len(rows)

    async def close(self) -> None:
        await self._store.close()

    # -- campaigns -----------------------------------------------------------------------------------------------------

    def follow(self, campaigns: Iterable[ads_pb2.Campaign]) -> None:
        """Take in campaigns changed in ads-campaigns (ListCampaigns), in version order."""
        for campaign in campaigns:
            self._campaigns[campaign.campaign_id] = KnownCampaign.of(campaign)
            self.campaigns_version = max(self.campaigns_version, campaign.version)
        metrics.CAMPAIGNS.set(len(self._campaigns))

    def _campaign(self, campaign_id: str) -> KnownCampaign:
        campaign = self._campaigns.get(campaign_id)
        if campaign is None:
            raise NotFound(f"campaign {campaign_id} is not known to the budget service (yet)")
        return campaign

    # -- days ----------------------------------------------------------------------------------------------------------

    def _day(self, campaign_id: str, day: int) -> DaySpend:
        spend = self._days.get((campaign_id, day))
        if spend is None:
            spend = self._days[(campaign_id, day)] = DaySpend()
        return spend

    def _forget_before(self, today: int) -> None:
        """Drop the days (and their answers) before yesterday, once a day."""
        if today - 1 <= self._kept_from:
            return
        self._kept_from = today - 1
        self._days = {key: spend for key, spend in self._days.items()
                      if key[1] >= self._kept_from or spend.pending}
        old = [impression for impression, day in self._charged_day.items() if day < self._kept_from]
        for impression in old:
            del self._charged[impression]
            del self._charged_day[impression]
        self._exhausted = {key for key in self._exhausted if key[1] >= self._kept_from}
        self._set_exhausted()

    def _set_exhausted(self) -> None:
        today = self.day_of(self._clock())
        metrics.EXHAUSTED.set(sum(1 for _, day in self._exhausted if day == today))

    def _applied(self, row: ChargeRow, spend: DaySpend, count: bool = True) -> Spend:
        """Count the committed ``row`` in its day; its answer."""
        spend.fold(row)
        answer = Spend(row.campaign_id, row.day, row.budget, row.currency_code, spend.spent, spend.impressions,
                       spend.exhausted_at_unix_ms)
        self._charged[row.impression_id] = answer
        self._charged_day[row.impression_id] = row.day
        if spend.exhausted_at_unix_ms and (row.campaign_id, row.day) not in self._exhausted:
            self._exhausted.add((row.campaign_id, row.day))
            if count:
                self._set_exhausted()
        if count:
            metrics.SPENT.inc(row.price)
        return answer

    def _decide(self, campaign: KnownCampaign, spend: DaySpend, price: int, now_ms: int) -> str | None:
        return refusal(active=campaign.active, budget=campaign.budget, spent=spend.spent + spend.pending,
                       price=price, elapsed_ms=now_ms % self._day_ms, day_ms=self._day_ms,
                       pacing=self.settings.pacing, slack_ppm=self._slack_ppm)

    # -- the API -------------------------------------------------------------------------------------------------------

    async def charge(self, impression_id: str, campaign_id: str, price: int) -> Spend:
        """Take ``price`` from the campaign's day for ``impression_id`` (validated), durable when this returns; the
        first answer again for an impression charged or refused already. Raises ``NotFound`` (campaign unknown),
        ``FailedPrecondition`` ``budget_exhausted`` / ``paced`` / ``paused``, ``StoreUnavailable`` (nothing charged)."""
        answer = self._charged.get(impression_id)
        if answer is not None:
            metrics.CHARGES.labels("repeated").inc()
            return answer
        in_flight = self._in_flight.get(impression_id)
        if in_flight is not None:
            metrics.CHARGES.labels("repeated").inc()
            return await asyncio.shield(in_flight)
        refused = self._refused.get(impression_id)
        if refused is not None:
            self._refused.move_to_end(impression_id)
            metrics.CHARGES.labels("repeated").inc()
            raise FailedPrecondition(refused)
        campaign = self._campaign(campaign_id)
        now = self._clock()
        today = self.day_of(now)
        self._forget_before(today)
        spend = self._day(campaign_id, today)
        reason = self._decide(campaign, spend, price, now)
        if reason is not None:
            self._refuse(impression_id, reason, campaign, spend, price)
        # no await from the check to here: the price is reserved before any other charge is checked
        spend.pending += price
        row = ChargeRow(impression_id, campaign_id, today, price, campaign.budget, campaign.bid,
                        campaign.currency_code, now)
        task = asyncio.create_task(self._commit(row, spend), name=f"ads-budget-charge-{impression_id}")
        self._in_flight[impression_id] = task
        task.add_done_callback(lambda _: self._in_flight.pop(impression_id, None))
        return await asyncio.shield(task)

    def _refuse(self, impression_id: str, reason: str, campaign: KnownCampaign, spend: DaySpend, price: int):
        committed = spend.spent + spend.pending
        if reason == contract.PAUSED:
            details = f"{contract.PAUSED}: campaign {campaign.campaign_id} is paused"
        elif reason == contract.BUDGET_EXHAUSTED:
            details = (f"{contract.BUDGET_EXHAUSTED}: campaign {campaign.campaign_id} has spent {committed} of "
                       f"{campaign.budget} milli-minor today; {price} does not fit")
        else:
            metrics.PACING_THROTTLES.inc()
            details = (f"{contract.PACED}: campaign {campaign.campaign_id} has spent {committed} of {campaign.budget} "
                       "milli-minor today, ahead of an even spread over the day")
        metrics.CHARGES.labels(reason).inc()
        if self.settings.recent_refusals:
            self._refused[impression_id] = details
            while len(self._refused) > self.settings.recent_refusals:
                self._refused.popitem(last=False)
        raise FailedPrecondition(details)

    async def _commit(self, row: ChargeRow, spend: DaySpend) -> Spend:
        answers: list[Spend] = []
        reserved = True

        def apply(_: object) -> None:
            nonlocal reserved
            spend.pending -= row.price
            reserved = False
            answers.append(self._applied(row, spend))

        try:
            await self._store.insert(row, apply)
        except KnownCharge as known:  # charged on a day older than memory holds: its first answer, from the log
            stored, day = known.row, known.day
            metrics.CHARGES.labels("repeated").inc()
            return Spend(stored.campaign_id, stored.day, stored.budget, stored.currency_code, day.spent,
                         day.impressions, day.exhausted_at_unix_ms)
        finally:
            if reserved:  # not committed (or committed but apply failed before it ran): release the reservation
                spend.pending -= row.price
        metrics.CHARGES.labels("charged").inc()
        return answers[0]

    def eligibility(self, campaign_ids: Iterable[str]) -> list[int]:
        """For each campaign, whether a charge of its bid would be taken now (Eligibility values)."""
        now = self._clock()
        today = self.day_of(now)
        answers = []
        for campaign_id in campaign_ids:
            campaign = self._campaigns.get(campaign_id)
            if campaign is None:
                answers.append(budget_pb2.ELIGIBILITY_UNKNOWN)
                continue
            spend = self._days.get((campaign_id, today)) or DaySpend()
            answers.append(_ELIGIBILITY[self._decide(campaign, spend, campaign.bid, now)])
        return answers

    def spend(self, campaign_id: str) -> Spend:
        """The campaign's current day (committed charges). Raises ``NotFound``."""
        campaign = self._campaign(campaign_id)
        today = self.day_of(self._clock())
        spend = self._days.get((campaign_id, today)) or DaySpend()
        return Spend(campaign_id, today, campaign.budget, campaign.currency_code, spend.spent, spend.impressions,
                     spend.exhausted_at_unix_ms)
