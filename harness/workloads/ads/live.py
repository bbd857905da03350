"""What the ads journeys share in one load process: who browses, the impressions each user was served of each campaign
(the frequency referee), the budget exhaustions already sampled, and the tally logged at the end of the run.

Seed 001 #15 "Ad Serving" (shared/seeds/001_58dfc580020147d2.txt line 40: "<100ms decisioning, frequency caps,
first-price auction, pacing, privacy-first | 1M RPS, Google Ads"). The workload's ``connect`` makes an :class:`Ads`
for the process (no call).

The frequency referee (:meth:`Ads.served`): the server counts a user's impressions of a campaign in a sliding window
of the cap's ``window_s`` at the moment it reserves them; the workload sees each impression only between the Decide's
send and its answer. An earlier impression is *certainly* within the window of a new one when the new one's answer
came less than ``window_s`` (minus :data:`MARGIN_S` for the server's millisecond clock) after the earlier one's
send, whatever the delays; the new impression breaks the cap (``CAP_EXCEEDED``) when at least ``max_impressions``
earlier ones are certainly within its window. Network delays never make a false breach; the referee may miss a
breach by the width of the calls' round trips. With several load processes each sees only its own impressions: a
breach it reports is real, one spread over processes is missed.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..population import Population
from .seeding import CampaignPlan, SeedParams, State, User

log = logging.getLogger("casemesh.workloads.ads")

OK = "OK"
CAP_EXCEEDED = "CAP_EXCEEDED"
UNKNOWN_CAMPAIGN = "UNKNOWN_CAMPAIGN"
#: Slack for the server's clock (milliseconds) when judging whether an impression is certainly within a window.
MARGIN_S = 0.01


@dataclass
class Tally:
    """Counts over the process's journeys (the warm-up's included)."""

    page_views: int = 0
    fills: Counter[str] = field(default_factory=Counter)
    clicks: int = 0
    cap_breaches: int = 0
    spend_checks: int = 0
    overspent: int = 0
    exhaustions: list[float] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the log."""
        served = self.fills[OK]
        fills = ", ".join(f"{k} {v}" for k, v in sorted(self.fills.items()) if k != OK) or "none"
        late = sum(1 for e in self.exhaustions if e >= 0.8)
        ex = (f"{len(self.exhaustions)} budget exhaustions seen, {late} after 80% of their day"
              if self.exhaustions else "no budget exhaustion seen")
        return (f"{self.page_views} page views answered, {served} ads served "
                f"({served / self.page_views if self.page_views else 0:.0%}; no fill: {fills}), {self.clicks} "
                f"clicks, {self.cap_breaches} frequency-cap breaches; {self.spend_checks} spend checks, "
                f"{self.overspent} overspent; {ex}")


class Ads:
    """A load process's share of the workload (module docstring); ``clock`` is injectable for tests."""

    def __init__(self, state: State, params: SeedParams | None = None, *, clock: Any = time.perf_counter) -> None:
        if not state.campaigns or not state.users:
            raise ValueError("the ads workload needs at least one campaign and one user")
        self.state = state
        self.params = params or SeedParams()
        self.clock = clock
        self.campaigns: dict[str, CampaignPlan] = {c.campaign_id: c for c in state.campaigns}
        self.users: dict[str, User] = {u.key: u for u in state.users}
        exponent = self.params.user_zipf_exponent
        self.population: Population[None] = Population(
            [u.key for u in state.users], [1 / (rank + 1) ** exponent for rank in range(len(state.users))],
            lambda _key: None)
        self._seen: dict[tuple[str, str], list[float]] = {}
        self._exhaustions: set[tuple[str, int]] = set()
        self.tally = Tally()

    def user(self, rng: Any) -> User:
        """A user drawn by activity (Zipf)."""
        return self.users[self.population.pick(rng)]

    def campaign(self, rng: Any) -> CampaignPlan:
        """A campaign drawn uniformly (an advertiser looking at one of theirs)."""
        return rng.choice(self.state.campaigns)

    def request_id(self) -> str:
        """A fresh ad request ID: ``r<run>-<uuid4 hex>`` (41 characters; unique across processes and runs)."""
        return f"r{self.state.run}-{uuid.uuid4().hex}"

    def served(self, user_key: str, campaign_id: str, sent: float, answered: float) -> str:
        """An impression of ``campaign_id`` served to ``user_key`` by a Decide sent at ``sent`` and answered at
        ``answered`` (the clock's seconds): ``OK``, ``CAP_EXCEEDED`` (module docstring) or ``UNKNOWN_CAMPAIGN``."""
        campaign = self.campaigns.get(campaign_id)
        if campaign is None:
            return UNKNOWN_CAMPAIGN
        window = campaign.cap_window_s - MARGIN_S
        # Answers come in any order of sends: keep exactly the earlier impressions certainly within the window (the
        # others never will be again: later answers come later).
        seen = [s for s in self._seen.get((user_key, campaign_id), ()) if answered - s < window]
        code = CAP_EXCEEDED if len(seen) >= campaign.cap_impressions else OK
        seen.append(sent)
        self._seen[(user_key, campaign_id)] = seen
        if code != OK:
            self.tally.cap_breaches += 1
        return code

    def first_exhaustion(self, campaign_id: str, day: int) -> bool:
        """True the first time the process sees ``campaign_id`` exhausted on ``day`` (one sample per exhaustion)."""
        if (campaign_id, day) in self._exhaustions:
            return False
        self._exhaustions.add((campaign_id, day))
        return True
