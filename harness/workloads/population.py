"""A population of simulated users whose next action depends on their own state.

Workloads of systems with users (the social feed; later chat, ride-sharing)
need more than a random ID per arrival: who acts is weighted (heavy users act
more), and what they do depends on what they did before (whom they follow,
what they posted). :class:`Population` holds the users, draws one by weight
in O(log n) (cumulative weights and bisection, as ``random.choices`` does,
without rebuilding the table per draw), and keeps a per-user state object
that journeys read and change. Journeys run concurrently on one event loop;
state changes between awaits are atomic.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

S = TypeVar("S")


class Population(Generic[S]):
    """Users ``ids`` with activity ``weights`` (same length, >= 0, not all 0) and a state each from ``make_state(id)``."""

    def __init__(self, ids: Sequence[str], weights: Sequence[float], make_state: Callable[[str], S]) -> None:
        if len(ids) != len(weights) or not ids:
            raise ValueError(f"a population needs as many weights as users, at least one ({len(ids)} users, {len(weights)} weights)")
        if any(w < 0 for w in weights) or not any(weights):
            raise ValueError("activity weights must be >= 0 and not all 0")
        self.ids = list(ids)
        self._cumulative = list(itertools.accumulate(weights))
        self.state: dict[str, S] = {user: make_state(user) for user in self.ids}

    def __len__(self) -> int:
        return len(self.ids)

    def pick(self, rng: random.Random) -> str:
        """A user drawn with probability proportional to their activity weight."""
        total = self._cumulative[-1]
        return self.ids[min(bisect.bisect_right(self._cumulative, rng.random() * total), len(self.ids) - 1)]

    def pick_where(self, rng: random.Random, accept: Callable[[S], bool], tries: int = 64) -> str | None:
        """A weighted user whose state passes ``accept`` (``None`` after ``tries`` draws without one)."""
        for _ in range(tries):
            user = self.pick(rng)
            if accept(self.state[user]):
                return user
        return None
