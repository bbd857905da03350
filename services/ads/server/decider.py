"""The ad decision: retrieval, filtering, the first-price auction, the reservation, the charge and the log.

Seed 001 #15 (shared/seeds/001_58dfc580020147d2.txt line 40: "<100ms decisioning, frequency caps, first-price auction,
pacing, privacy-first"). :meth:`AdDecider.decide`, for one valid ad request:

1. **repeat**: a request ID served already (its impression in memory or in the log) answers the same ad, charging and
   counting nothing again; concurrent Decides of one request ID run one after the other (a per-ID lock), so only one
   of them decides;
2. **retrieve**: the candidates matching the targeting, from the in-memory inverted index (:mod:`.index`), at most
   ``max_candidates``, highest bids first; none → NO_CANDIDATES;
3. **filter**: BudgetService.CheckEligibility and FrequencyService.GetCounts for every candidate, sent in parallel;
   the bidders are the candidates ELIGIBLE whose user count is below their cap. No candidate eligible → BUDGET; every
   eligible one capped → FREQUENCY_CAPPED;
4. **auction** (:mod:`.auction`): highest CPM first, ties by a hash of the request and the campaign. The winner's
   impression is reserved against its cap (FrequencyService.Reserve), then charged (BudgetService.Charge, its bid as
   price: first price). A refused reservation (``frequency_capped``: another request of the user took the last slot
   since the snapshot) or a refused charge (budget spent, paced, paused; the reservation is released, in the
   background so as not to spend the deadline budget on it) moves on
   to the next bidder, at most ``max_attempts`` bidders; all refused → BUDGET or FREQUENCY_CAPPED (the last refusal);
5. **log**: the impression is written to the event log (fsynced) before the answer.

IDs sent to the dependencies: a reservation is ``r`` + a hash of (request ID, campaign ID, a random nonce of this
attempt), so a late Release of a failed attempt can never remove the reservation of a later, served one; a charge is
``c`` + a hash of (request ID, campaign ID), so a retried Decide that picks the same winner after a charge whose answer
was lost gets the first charge's answer (BudgetService's idempotency) instead of paying twice, and a retry that picks
another winner is not mistaken for the first one.

Failures: a dependency that does not answer (UNAVAILABLE, a timeout) fails the decision with UNAVAILABLE and nothing
served; the reservation made, if any, is released in the background (best effort, tried a few times over about 8 s
so that a frequency service that restarts still gets it: a reservation left behind only over-counts, never lets a
user see more than the cap). Every outgoing call's timeout is its own, shortened to what is
left of the decision's deadline budget (``decide_deadline_ms``); a call with nothing left is not sent. A failed log
write after a charge answers UNAVAILABLE too: the retry decides again (a repeated winner's charge is not paid twice).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import hashlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from casemesh.ads.v1 import ads_pb2, budget_pb2, server_pb2
from casemesh.common.v1 import money_pb2

from ...runtime.errors import Unavailable
from ...runtime.keyed_locks import KeyedLocks
from ..contract import FREQUENCY_CAPPED, impression_price_milli_minor
from . import auction, metrics
from .clients import Budget, DependencyUnavailable, Frequency, Refused
from .index import CampaignEntry, TargetingIndex
from .settings import ServerSettings
from .store import EventLog, Impression
from .validation import AdRequest

log = logging.getLogger("casemesh.ads.server.decider")

NO_CANDIDATES = server_pb2.NO_FILL_REASON_NO_CANDIDATES
BUDGET = server_pb2.NO_FILL_REASON_BUDGET
CAPPED = server_pb2.NO_FILL_REASON_FREQUENCY_CAPPED
_OUTCOMES = {NO_CANDIDATES: "no_candidates", BUDGET: "budget", CAPPED: "frequency_capped"}
#: Requests waiting for, or deciding, one request ID at once; beyond, UNAVAILABLE.
MAX_DECIDING = 100_000
#: Tries of a background Release (0.5, 1, 2, 4 s apart: about 8 s, beyond a restart of the frequency service).
RELEASE_TRIES = 5


def _hashed_id(prefix: str, *parts: str) -> str:
    digest = hashlib.blake2b("\x00".join(parts).encode(), digest_size=20).digest()
    return prefix + base64.b32encode(digest).decode().rstrip("=").lower()


def reservation_id(request_id: str, campaign_id: str, nonce: str) -> str:
    """The FrequencyService impression ID of one attempt to serve ``campaign_id`` for ``request_id``."""
    return _hashed_id("r", request_id, campaign_id, nonce)


def charge_id(request_id: str, campaign_id: str) -> str:
    """The BudgetService impression ID of ``campaign_id``'s charge for ``request_id``."""
    return _hashed_id("c", request_id, campaign_id)


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class _Deadline:
    """The decision's deadline budget: each call's timeout is its own, shortened to what is left."""

    def __init__(self, budget_ms: int) -> None:
        self._end = time.monotonic() + budget_ms / 1000

    def timeout(self, timeout_ms: int, what: str) -> float:
        left = self._end - time.monotonic()
        if left <= 0.000_5:
            raise DependencyUnavailable(f"the decision's deadline budget ran out before {what}")
        return min(timeout_ms / 1000, left)


@dataclass(slots=True)
class _Auction:
    """An auction's progress: the time spent reserving and charging, the last reservation ID, the last refusal."""

    reserve_s: float = 0.0
    charge_s: float = 0.0
    reservation: str = ""
    refusal: int = CAPPED


def served_ad(impression: Impression) -> server_pb2.DecideResponse:
    """The answer of a decision that served ``impression`` (a repeated one too)."""
    return server_pb2.DecideResponse(
        ad=server_pb2.ServedAd(
            impression_id=impression.impression_id, campaign_id=impression.campaign_id,
            creative=ads_pb2.Creative(headline=impression.headline, landing_url=impression.landing_url),
            cpm_price=money_pb2.Money(currency_code=impression.currency_code, amount_minor=impression.cpm_minor)),
        candidates=impression.candidates, bidders=impression.bidders)


class AdDecider:
    """Decides ad requests (see the module docstring) with ``index``, ``budget``, ``frequency`` and ``events``."""

    def __init__(self, settings: ServerSettings, index: TargetingIndex, budget: Budget, frequency: Frequency,
                 events: EventLog, clock: Callable[[], int] = wall_clock_ms) -> None:
        self._settings = settings
        self._index = index
        self._budget = budget
        self._frequency = frequency
        self._events = events
        self._clock = clock
        self._locks = KeyedLocks(MAX_DECIDING, lambda count: Unavailable(f"{count} decisions in flight; retry"))
        self._recent: collections.OrderedDict[str, Impression] = collections.OrderedDict()
        self._releases: set[asyncio.Task[None]] = set()

    # -- served impressions --------------------------------------------------------------------------------------------

    def _remember(self, impression: Impression) -> None:
        if self._settings.recent_impressions == 0:
            return
        self._recent[impression.impression_id] = impression
        self._recent.move_to_end(impression.impression_id)
        while len(self._recent) > self._settings.recent_impressions:
            self._recent.popitem(last=False)

    async def _served(self, request_id: str) -> Impression | None:
        impression = self._recent.get(request_id)
        if impression is None:
            impression = await self._events.impression(request_id)
            if impression is not None:
                self._remember(impression)
        return impression

    # -- Decide --------------------------------------------------------------------------------------------------------

    async def decide(self, ask: AdRequest) -> server_pb2.DecideResponse:
        async with self._locks.hold(ask.request_id):
            served = await self._served(ask.request_id)
            if served is not None:
                metrics.DECISIONS.labels("repeated").inc()
                return served_ad(served)
            started = time.perf_counter()
            try:
                response = await self._decide(ask)
            except Unavailable:
                metrics.DECISIONS.labels("unavailable").inc()
                raise
            metrics.DECIDE_SECONDS.observe(time.perf_counter() - started)
            metrics.DECISIONS.labels(_OUTCOMES.get(response.no_fill_reason, "served")).inc()
            return response

    async def _decide(self, ask: AdRequest) -> server_pb2.DecideResponse:
        settings = self._settings
        deadline = _Deadline(settings.decide_deadline_ms)
        started = time.perf_counter()
        candidates = self._index.candidates(ask.country, ask.interests, ask.device, settings.max_candidates)
        metrics.CANDIDATES.observe(len(candidates))
        now = time.perf_counter()
        metrics.PHASE_SECONDS.labels("retrieve").observe(now - started)
        if not candidates:
            return server_pb2.DecideResponse(no_fill_reason=NO_CANDIDATES)

        started = now
        timeout = deadline.timeout(settings.filter_timeout_ms, "the budget and frequency checks")
        eligibility, counts = await self._both(
            self._budget.eligibility([c.campaign_id for c in candidates], timeout),
            self._frequency.counts(ask.user_key, [(c.campaign_id, c.max_impressions, c.window_s)
                                                  for c in candidates], timeout))
        eligible = [(c, n) for c, e, n in zip(candidates, eligibility, counts, strict=True)
                    if e == budget_pb2.ELIGIBILITY_ELIGIBLE]
        bidders = [c for c, n in eligible if n < c.max_impressions]
        metrics.BIDDERS.observe(len(bidders))
        metrics.PHASE_SECONDS.labels("filter").observe(time.perf_counter() - started)
        if not eligible:
            return server_pb2.DecideResponse(no_fill_reason=BUDGET, candidates=len(candidates))
        if not bidders:
            return server_pb2.DecideResponse(no_fill_reason=CAPPED, candidates=len(candidates))

        progress = _Auction()
        attempts = 0
        try:
            for winner in auction.rank(bidders, ask.request_id)[:settings.max_attempts]:
                attempts += 1
                if await self._reserve_and_charge(ask, winner, deadline, progress):
                    started = time.perf_counter()
                    impression = await self._events.record_impression(Impression(
                        ask.request_id, ask.user_key, winner.campaign_id, progress.reservation,
                        charge_id(ask.request_id, winner.campaign_id), winner.headline, winner.landing_url,
                        winner.currency_code, winner.cpm_minor, len(candidates), len(bidders), self._clock()))
                    metrics.PHASE_SECONDS.labels("log").observe(time.perf_counter() - started)
                    self._remember(impression)
                    return served_ad(impression)
        finally:
            metrics.AUCTION_ATTEMPTS.observe(attempts)
            metrics.PHASE_SECONDS.labels("reserve").observe(progress.reserve_s)
            metrics.PHASE_SECONDS.labels("charge").observe(progress.charge_s)
        return server_pb2.DecideResponse(no_fill_reason=progress.refusal, candidates=len(candidates),
                                         bidders=len(bidders))

    @staticmethod
    async def _both(first, second) -> tuple:
        """Await two calls sent together; the first failure (after both finished) is raised."""
        results = await asyncio.gather(first, second, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                if isinstance(result, Unavailable | asyncio.CancelledError):
                    raise result
                raise DependencyUnavailable(f"the budget or frequency check failed: {result!r}") from result
        return tuple(results)

    async def _reserve_and_charge(self, ask: AdRequest, winner: CampaignEntry, deadline: _Deadline,
                                  progress: _Auction) -> bool:
        """Reserve the winner's impression and charge it: True when both were taken; False when either refused
        (nothing left reserved); raises ``Unavailable`` when a dependency did not answer."""
        reservation = progress.reservation = reservation_id(ask.request_id, winner.campaign_id, os.urandom(8).hex())
        timeout = deadline.timeout(self._settings.reserve_timeout_ms, "Reserve")
        started = time.perf_counter()
        try:
            await self._frequency.reserve(reservation, ask.user_key, winner.campaign_id, winner.max_impressions,
                                          winner.window_s, timeout)
        except Refused as refusal:
            if not refusal.details.startswith(f"{FREQUENCY_CAPPED}:"):
                log.warning("ads-server: Reserve refused %s: %s", winner.campaign_id, refusal)
            progress.refusal = CAPPED
            return False
        except BaseException:
            self._release_later(reservation)  # it may have been taken
            raise
        finally:
            progress.reserve_s += time.perf_counter() - started

        try:
            timeout = deadline.timeout(self._settings.charge_timeout_ms, "Charge")
        except Unavailable:
            self._release_later(reservation)
            raise
        started = time.perf_counter()
        try:
            await self._budget.charge(charge_id(ask.request_id, winner.campaign_id), winner.campaign_id,
                                      impression_price_milli_minor(winner.cpm_minor), timeout)
        except Refused:
            progress.charge_s += time.perf_counter() - started
            self._release_later(reservation)  # its ID is this attempt's only: releasing it later is safe
            progress.refusal = BUDGET
            return False
        except BaseException:
            progress.charge_s += time.perf_counter() - started
            self._release_later(reservation)
            raise
        progress.charge_s += time.perf_counter() - started
        return True

    def _release_later(self, reservation: str) -> None:
        """Release ``reservation`` in the background, best effort: tried :data:`RELEASE_TRIES` times, a second apart
        and more (a frequency service that restarts meanwhile still gets it); left behind, it only over-counts."""
        async def release() -> None:
            for attempt in range(RELEASE_TRIES):
                try:
                    await self._frequency.release(reservation, self._settings.release_timeout_ms / 1000)
                    return
                except Exception as error:  # noqa: BLE001 - best effort
                    if attempt == RELEASE_TRIES - 1:
                        log.info("ads-server: releasing %s failed (%s); it stays counted", reservation, error)
                        return
                await asyncio.sleep(0.5 * 2 ** attempt)

        task = asyncio.get_running_loop().create_task(release())
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    # -- RecordClick ---------------------------------------------------------------------------------------------------

    async def record_click(self, impression_id: str) -> bool:
        first = await self._events.record_click(impression_id, self._clock())
        metrics.CLICKS.labels("true" if first else "false").inc()
        return first

    async def close(self) -> None:
        """Give the background releases a second to finish, then drop them (left behind, they only over-count)."""
        if self._releases:
            _, waiting = await asyncio.wait(set(self._releases), timeout=1.0)
            for task in waiting:
                task.cancel()
            await asyncio.gather(*waiting, return_exceptions=True)

