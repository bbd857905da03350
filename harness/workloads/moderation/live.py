"""What the moderation journeys share in one load process: the labelled items to post and their labels, who posts and
who reviews, the items this process posted (for the audit checks), and the tally logged at the end of the run.

Seed 001 #26 "Content Moderation" (shared/seeds/001_58dfc580020147d2.txt line 50: "AI classifiers (BERT/ResNet),
confidence routing, human review, CSAM detection | 100M items/day, Meta/YouTube"). The workload's ``connect`` makes a
:class:`Moderation` for the process (no call): it builds the corpus's held-out split (services/moderation/corpus.py,
part of the contract) and looks labels up by text (:class:`~casemesh.services.moderation.corpus.Labels`), so a
reviewer of this process knows the truth of an item another process posted.
"""

from __future__ import annotations

import bisect
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from casemesh.services.moderation.corpus import LabelledItem, Labels, split

from ..population import Population
from .seeding import State

OK = "OK"
#: Items this process remembers for its audit checks (the oldest forgotten beyond it).
MAX_REMEMBERED = 50_000


@dataclass(frozen=True, slots=True)
class Posted:
    """An item this process posted and the pipeline acknowledged: who, what, and when the answer came (clock s)."""

    item_id: str
    author_id: str
    text: str
    at: float


@dataclass
class Tally:
    """Counts over the process's journeys (the warm-up's included)."""

    posts: int = 0
    routes: Counter[str] = field(default_factory=Counter)
    wrong: Counter[str] = field(default_factory=Counter)
    appeals: int = 0
    claims: int = 0
    empty_claims: int = 0
    reclaims: int = 0
    overdue: int = 0
    verdicts: int = 0
    verdicts_wrong: int = 0
    walked_away: int = 0
    audits: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        """One line for the log."""
        auto = self.routes[OK]
        routes = ", ".join(f"{k} {v}" for k, v in sorted(self.routes.items()) if k != OK) or "none"
        wrong = sum(self.wrong.values())
        audits = ", ".join(f"{k} {v}" for k, v in sorted(self.audits.items())) or "none"
        return (f"{self.posts} posts answered, {auto} auto-decided ({wrong} wrong: "
                f"{', '.join(f'{k} {v}' for k, v in sorted(self.wrong.items())) or 'none'}; other routes: {routes}), "
                f"{self.appeals} appeals; {self.claims} review claims ({self.empty_claims} found the queue empty, "
                f"{self.reclaims} re-claims after a lapsed lease, {self.overdue} claimed past their SLA), "
                f"{self.verdicts} verdicts ({self.verdicts_wrong} against the label), {self.walked_away} walked away; "
                f"audit checks: {audits}")


class Moderation:
    """A load process's share of the workload (module docstring); ``clock`` (seconds, monotonic) and ``wall_ms``
    (Unix milliseconds, the services' clock) are injectable for tests, and so are the labelled ``items``."""

    def __init__(self, state: State, *, items: list[LabelledItem] | None = None, clock: Any = time.perf_counter,
                 wall_ms: Any = None) -> None:
        if not state.authors or not state.reviewers:
            raise ValueError("the moderation workload needs at least one author and one reviewer")
        self.state = state
        self.items = items if items is not None else split("held_out", state.held_out_items)
        if not self.items:
            raise ValueError("the moderation workload needs at least one labelled item to post")
        self.labels = Labels(self.items)
        self.clock = clock
        self.wall_ms = wall_ms or (lambda: time.time_ns() // 1_000_000)
        exponent = state.author_zipf_exponent
        self.authors: Population[None] = Population(
            state.authors, [1 / (rank + 1) ** exponent for rank in range(len(state.authors))], lambda _id: None)
        self.posted: list[Posted] = []
        self.tally = Tally()

    def author(self, rng: Any) -> str:
        """An author drawn by activity (Zipf)."""
        return self.authors.pick(rng)

    def reviewer(self, rng: Any) -> str:
        """A reviewer drawn uniformly (whoever is free picks the next task)."""
        return rng.choice(self.state.reviewers)

    def item(self, rng: Any) -> LabelledItem:
        """A held-out item drawn uniformly (the same text may be posted again, under another ID)."""
        return rng.choice(self.items)

    def item_id(self) -> str:
        """A fresh item ID: ``mo<run>-<uuid4 hex>`` (43 characters; unique across processes and runs)."""
        return f"mo{self.state.run}-{uuid.uuid4().hex}"

    def remember(self, item_id: str, author_id: str, text: str) -> Posted:
        """Remember an item the pipeline acknowledged, now (for the audit checks)."""
        posted = Posted(item_id, author_id, text, self.clock())
        self.posted.append(posted)
        if len(self.posted) > MAX_REMEMBERED * 5 // 4:
            del self.posted[:len(self.posted) - MAX_REMEMBERED]
        return posted

    def auditable(self, rng: Any, min_age_s: float) -> Posted | None:
        """One of the remembered items acknowledged at least ``min_age_s`` ago, uniformly; ``None`` when none is."""
        # Appended as their answers came: in clock order.
        eligible = bisect.bisect_right(self.posted, self.clock() - min_age_s, key=lambda p: p.at)
        return self.posted[rng.randrange(eligible)] if eligible else None
