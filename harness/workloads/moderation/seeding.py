"""The content moderation workload's parameters (the labelled items posted, the authors, the reviewers) and its seeding,
which makes no call.

Seed 001 #26 "Content Moderation" (shared/seeds/001_58dfc580020147d2.txt line 50: "| 26 | Content Moderation | AI
classifiers (BERT/ResNet), confidence routing, human review, CSAM detection | 100M items/day, Meta/YouTube |").

Nothing needs to exist before the first post: a moderation system starts with an empty queue, and every item the load
posts is new. So seeding calls nothing; it plans, from the run's generator, the run's prefix (8 hex digits, the first
draw, so that a data directory kept from an earlier run shares no item with this one) and names the two populations:

- **authors** (``mo<run>-a<i>``, ``authors``), who post; who posts is Zipf over them (``author_zipf_exponent``: a few
  accounts post much, most rarely), and an author appeals a removal of its own post (:mod:`.journeys`);
- **reviewers** (``mo<run>-r<i>``, ``reviewers``), the human review team that claims tasks from the review queue.

The items posted are the labelled corpus's held-out split (``corpus.split("held_out", held_out_items)``,
services/moderation/corpus.py, part of the contract): never trained on, so the classifier's mistakes on them are
real ones, and the label of each is the workload's ground truth for the auto-decisions and the reviewers' verdicts.
Each load process builds the split itself in ``connect`` (it is deterministic), so the state sent to worker
processes stays small.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pydantic import Field

from casemesh.services.moderation.contract import is_id

from ..base import Caller, Params

PIPELINE = "moderation-pipeline"
REVIEW = "moderation-review"


class SeedParams(Params):
    """The posted items, the authors and the reviewers."""

    held_out_items: int = Field(default=5_000, ge=1, le=100_000,
                                description="size of the corpus's held-out split the posts are drawn from "
                                            "(5,000: the split the classifier is evaluated on)")
    authors: int = Field(default=10_000, ge=1, le=1_000_000, description="authors who post")
    author_zipf_exponent: float = Field(default=1.0, ge=0, le=5,
                                        description="who posts: author r of the seeded order weighs 1 / r^exponent")
    reviewers: int = Field(default=40, ge=1, le=100_000, description="human reviewers claiming tasks")


@dataclass(frozen=True)
class State:
    """What the seeder planned (picklable: sent to worker processes)."""

    run: str
    held_out_items: int
    authors: tuple[str, ...]
    reviewers: tuple[str, ...]
    author_zipf_exponent: float = 1.0


def run_prefix(rng: random.Random) -> str:
    """The run's 8 hex digits, the first draw of the run's generator."""
    return f"{rng.getrandbits(32):08x}"


def plan(params: SeedParams, rng: random.Random) -> State:
    """The run's prefix and its populations (module docstring): no call."""
    run = run_prefix(rng)
    state = State(run=run, held_out_items=params.held_out_items,
                  authors=tuple(f"mo{run}-a{i}" for i in range(params.authors)),
                  reviewers=tuple(f"mo{run}-r{i}" for i in range(params.reviewers)),
                  author_zipf_exponent=params.author_zipf_exponent)
    assert all(map(is_id, state.authors)) and all(map(is_id, state.reviewers))
    return state


async def seed(call: Caller, params: SeedParams, rng: random.Random) -> State:
    """Plan the run (module docstring); ``call`` is not used: there is nothing to create before the first post."""
    return plan(params, rng)
