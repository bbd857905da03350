"""Confidence intervals for the difference of one latency percentile between two runs, from their HDR histograms.

The method, and why
===================

Each run gives, per RPC and per journey, the exact HDR histogram of its
calls' latencies (µs, 3 significant figures: ``result.json``'s
``histogram``) and, per second, the calls' count and p50/p90/p99/max
(``series``). We want, for a percentile ``p``, ``q_B(p) - q_A(p)`` with a
confidence interval.

**Not a bootstrap over the per-second series.** Resampling seconds and
recombining their per-second p99s does not give the run's p99: a
percentile of a merged distribution is not a function of the parts'
percentiles, and ``series`` keeps only four percentiles per second, not
their histograms. Averaging per-second p99s estimates another quantity
(the mean of per-second tails), biased low at 100 calls/s, where a
second's p99 is its slowest call or two.

**A bootstrap of the histogram itself, drawn exactly.** Resampling ``n``
calls with replacement from a run's histogram (the multinomial bootstrap
over its buckets) and reading the ``k``-th smallest, ``k = p n``, is the
nonparametric bootstrap of the quantile. It needs no ``n`` draws: ``n``
values drawn from the empirical distribution ``F̂`` are ``F̂⁻¹`` of ``n``
uniform values, and the ``k``-th smallest of ``n`` uniforms follows
``Beta(k, n + 1 - k)``. So one resample of the quantile is
``F̂⁻¹(U)``, ``U ~ Beta(k, n + 1 - k)``: exact, one vectorised numpy call
per percentile (:func:`quantile_draws`). The same Beta law gives the
classic exact distribution-free interval of a quantile from order
statistics (the binomial ranks around ``n p``), so each run's interval
agrees with that method. The difference's interval is the percentile
interval of ``q_B* - q_A*`` over independent resamples of A and B (the
runs are independent).

**Too few calls.** The bootstrap cannot draw a value above the slowest
call, so for a tail percentile of a small run it is overconfident. The
exact order-statistic interval says when: its upper bound exists only if
``(p/100)^n <= (1 - confidence) / 2`` (at 95 %, ``n >= 368`` for the p99,
``n >= 3,688`` for the p99.9). Below that (:func:`min_calls`) the
percentile is reported but not judged: never significant.

**Calls within a run are not independent.** Latencies are autocorrelated:
a GC pause, a stall of the machine, a queue that builds up slow down every
call of the same second or seconds. An i.i.d. bootstrap then understates
the variance. We correct for it with a design effect (Kish), estimated per
run, RPC or journey and percentile from ``series`` (:func:`design_effect`).
Each second stores order statistics of its own calls (its p50, p90, p99
and max: the ``k``-th of its ``n`` calls). Mapped through the run's CDF,
were calls independent, each would follow ``Beta(k, n + 1 - k)``, the same
from second to second; its normal score (``Φ⁻¹`` of that Beta CDF,
clamped to ±6) would be a standard normal. The variance of the scores
summed over blocks of 1, 2, 5 and 10 s, per second, is how much the
seconds disagree beyond chance: the design effect (1 when independent).
The variance of a quantile estimate is ``Var F̂(q) / f(q)²`` and
autocorrelation inflates only the numerator, so the bootstrap draws the
effective sample size ``n / deff`` (the m-out-of-n bootstrap): the
interval widens by ``sqrt(deff)``. The effect is taken from the stored
statistics bracketing ``p`` (p99 and max for the p99.9), the largest over
the block lengths with at least 10 blocks, and never below 1; on
independent synthetic calls it averages about 1.1, on runs with a few 3x
slower seconds 4 to 55. It errs wide, and what it cannot see stays out of
the interval: correlation longer than 10 s, runs shorter than 10 measured
seconds (calls then treated as independent, with a warning), and the
difference between two runs of the same build (one run per side cannot
measure it). That is why a difference also needs a minimum relative size
to count (``--min-effect``, 5 % by default) and why the comparison warns
when the two runs' machines, noise or rates differ.

**Why not the two exact intervals.** Each run's exact distribution-free
interval (the order statistics at binomial ranks around ``n p``) could be
combined into one for the difference (lower B minus upper A, upper B
minus lower A). That is valid but conservative, about ``sqrt(2)`` too
wide, so it misses real regressions of the size CI gates care about; the
joint bootstrap above uses the same Beta law and is not. The exact
interval is kept where it matters: to decide whether a percentile can be
judged at all.

Values are in µs here (the histograms' unit); callers convert to ms.
"""

from __future__ import annotations

import hashlib
import math
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

#: Block lengths (seconds) the design effect is estimated over; each needs at least :data:`MIN_BLOCKS` blocks.
BLOCK_SECONDS = (1, 2, 5, 10)
MIN_BLOCKS = 10
#: Per-second percentiles in ``series`` and the fraction of calls at or below each.
_SERIES_KNOTS = (("p50_ms", 0.5), ("p90_ms", 0.9), ("p99_ms", 0.99), ("max_ms", 1.0))


@dataclass(frozen=True)
class Distribution:
    """A histogram's recorded values as a step CDF: ascending ``values_us`` with ``cumulative`` counts.

    Each value is its HDR bucket's highest equivalent value, as
    ``HdrHistogram.get_value_at_percentile`` reports, so :meth:`quantile_us`
    equals that method and ``result.json``'s ``pNN_ms`` figures.
    """

    values_us: tuple[int, ...]
    cumulative: tuple[int, ...]

    @classmethod
    def from_histogram(cls, histogram: HdrHistogram) -> Distribution:
        counts = np.ctypeslib.as_array(histogram.counts)[:histogram.counts_len]
        occupied = np.flatnonzero(counts)
        values = tuple(histogram.get_highest_equivalent_value(histogram.get_value_from_index(int(i))) for i in occupied)
        return cls(values, tuple(int(c) for c in np.cumsum(counts[occupied])))

    @property
    def count(self) -> int:
        return self.cumulative[-1] if self.cumulative else 0

    def quantile_us(self, percentile: float) -> int:
        """The value at ``percentile`` (0-100): rank ``max(1, round(p n / 100))``, HdrHistogram's rule."""
        rank = max(int(percentile * self.count / 100 + 0.5), 1)
        return self.values_us[bisect_left(self.cumulative, rank)]


def min_calls(percentile: float, confidence: float) -> float:
    """Fewest (effective) calls for which the exact order-statistic interval of ``percentile`` is bounded on both sides.

    Bounded above when ``(p/100)^n <= (1 - confidence)/2``, below when
    ``(1 - p/100)^n <= (1 - confidence)/2``: at 95 %, 368 calls for the p99 (367.04, rounded up).
    """
    alpha_half = (1 - confidence) / 2
    p = percentile / 100
    return max(math.log(alpha_half) / math.log(p), math.log(alpha_half) / math.log(1 - p))


def quantile_draws(distribution: Distribution, percentile: float, n_eff: float, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """``resamples`` bootstrap replicates (µs) of ``percentile`` of ``n_eff`` calls drawn from ``distribution``.

    Each is ``F̂⁻¹(U)``, ``U ~ Beta(k, n_eff + 1 - k)``, ``k = max(1, p n_eff / 100)``: the ``k``-th smallest
    of ``n_eff`` values drawn with replacement, without drawing them (module docstring). Vectorised: one
    ``Generator.beta`` call and one ``searchsorted``.
    """
    k = max(1.0, percentile * n_eff / 100)
    u = rng.beta(k, max(n_eff + 1 - k, 1e-9), size=resamples)
    cumulative = np.asarray(distribution.cumulative, dtype=np.float64)
    index = np.minimum(np.searchsorted(cumulative, u * distribution.count, side="left"), len(cumulative) - 1)
    return np.asarray(distribution.values_us, dtype=np.float64)[index]


def generator(*key: object) -> np.random.Generator:
    """A numpy generator seeded from ``key`` (e.g. the seed, the RPC and the percentile): the same key, the same draws."""
    digest = hashlib.sha256(":".join(map(repr, key)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


def interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    """The percentile interval of ``values``: their ``(1 - c)/2`` and ``(1 + c)/2`` quantiles (nearest rank, no interpolation)."""
    low, high = np.quantile(values, [(1 - confidence) / 2, (1 + confidence) / 2], method="inverted_cdf")
    return float(low), float(high)


_NORMAL = NormalDist()
#: Normal scores are clamped to ±this many standard deviations (probabilities beyond ~1e-9 are not told apart).
MAX_SCORE = 6.0


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz), as in Numerical Recipes' ``betacf``."""
    tiny, eps = 1e-300, 1e-12
    qab, qap, qam = a + b, a + 1, a - 1
    c, d = 1.0, 1 - qab * x / qap
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 2000):
        m2 = 2 * m
        for numerator in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < eps:
            break
    return h


def regularized_beta(a: float, b: float, x: float) -> float:
    """``I_x(a, b)``: the CDF at ``x`` of ``Beta(a, b)`` (``a, b > 0``); for integers, ``P(Binomial(a + b - 1, x) >= a)``."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _betacf(a, b, x) / a
    return 1 - front * _betacf(b, a, 1 - x) / b


def _normal_score(k: int, n: int, u: float) -> float:
    """Where ``u`` falls in the law of the ``k``-th smallest of ``n`` uniforms, ``Beta(k, n + 1 - k)``, as a standard normal score."""
    probability = regularized_beta(k, n + 1 - k, u)
    bound = _NORMAL.cdf(-MAX_SCORE)
    return _NORMAL.inv_cdf(min(max(probability, bound), 1 - bound))


@dataclass(frozen=True)
class DesignEffect:
    """How much autocorrelation inflates the variance of a percentile: ``value`` (>= 1), the block length that showed it, or why none."""

    value: float
    block_s: int | None
    note: str | None = None


def _stored_statistics(percentile: float) -> list[tuple[str, float]]:
    """The per-second statistics of ``series`` that bracket ``percentile``: one when it is stored, else the two around it."""
    fraction = percentile / 100
    if fraction <= _SERIES_KNOTS[0][1]:
        return [_SERIES_KNOTS[0]]
    for low, high in zip(_SERIES_KNOTS, _SERIES_KNOTS[1:]):
        if fraction == high[1]:
            return [high]
        if low[1] < fraction < high[1]:
            return [low, high]
    return [_SERIES_KNOTS[-1]]


def design_effect(points: Mapping[str, Any] | None, warmup: Sequence[bool], percentile: float,
                  distribution: Distribution) -> DesignEffect:
    """The design effect of ``percentile`` of one RPC or journey over its run's measured seconds.

    ``points`` is ``series.rpcs[m]`` (or ``series.journeys[j]``): per second
    the calls' ``count`` and their p50/p90/p99/max; ``warmup[i]`` marks
    warm-up seconds (left out); ``distribution`` is the run's histogram.
    Each second's stored order statistic (the ``k``-th of its ``n`` calls,
    ``k = round(p n)`` as the series counts it, ``n`` for the max) is mapped
    through the run's CDF: ``u = F̂(value)``. Were the calls independent,
    ``u`` would follow ``Beta(k, n + 1 - k)`` (mean ``k/(n+1)``, known
    variance) independently from second to second. The observed variance of
    the residuals summed over blocks of ``b`` seconds, over the variance
    independence predicts, is the design effect at that block length: slow
    seconds, or runs of them, show up as residuals larger than chance. The
    largest over :data:`BLOCK_SECONDS` (blocks of at least :data:`MIN_BLOCKS`)
    and over the stored statistics bracketing ``percentile`` (p99 and max for
    the p99.9), at least 1. ``DesignEffect(1.0, None, why)`` when the series
    is missing or shorter than :data:`MIN_BLOCKS` measured seconds.
    """
    if not points or not points.get("count"):
        return DesignEffect(1.0, None, "no per-second series: calls treated as independent")
    counts = points["count"]
    seconds = [i for i in range(len(counts)) if not (i < len(warmup) and warmup[i])]
    if len(seconds) < MIN_BLOCKS:
        return DesignEffect(1.0, None, f"fewer than {MIN_BLOCKS} measured seconds, too few to see whether slow calls bunch "
                                        "(calls treated as independent)")
    count = distribution.count
    best = DesignEffect(1.0, None)
    for key, fraction in _stored_statistics(percentile):
        values = points.get(key) or []
        scores, present = [], []
        for i in seconds:
            n = counts[i] or 0
            value = values[i] if i < len(values) else None
            if not n or value is None:
                scores.append(0.0)
                present.append(0)
                continue
            k = n if fraction >= 1 else max(int(fraction * n + 0.5), 1)
            # F̂ at the second's value: the share of the run's calls at or below it (values are µs, the series' ms)
            at = bisect_right(distribution.values_us, value * 1000)
            u = distribution.cumulative[at - 1] / count if at else 0.0
            scores.append(_normal_score(k, n, u))
            present.append(1)
        for width in BLOCK_SECONDS:
            blocks = len(scores) // width
            if blocks < MIN_BLOCKS:
                break
            sums = [sum(scores[j * width:(j + 1) * width]) for j in range(blocks)]
            sizes = [sum(present[j * width:(j + 1) * width]) for j in range(blocks)]
            if sum(sizes) == 0:
                continue
            mean = sum(sums) / sum(sizes)
            observed = blocks / (blocks - 1) * sum((total - mean * size) ** 2 for total, size in zip(sums, sizes))
            if observed / sum(sizes) > best.value:
                best = DesignEffect(observed / sum(sizes), width)
    return best


@dataclass(frozen=True)
class QuantileComparison:
    """One percentile of one RPC or journey in runs A and B (µs), the difference's interval, and whether it is judged."""

    percentile: float
    a_us: int
    b_us: int
    a_n_eff: float
    b_n_eff: float
    a_interval_us: tuple[float, float] | None
    b_interval_us: tuple[float, float] | None
    diff_interval_us: tuple[float, float] | None
    ratio_interval: tuple[float, float] | None
    judged: bool
    why_not: str | None

    @property
    def diff_us(self) -> int:
        return self.b_us - self.a_us

    @property
    def ratio(self) -> float | None:
        """``b / a - 1`` (``None`` when a is 0)."""
        return self.b_us / self.a_us - 1 if self.a_us else None


def compare_quantile(a: Distribution, b: Distribution, percentile: float, *, a_effect: float = 1.0, b_effect: float = 1.0,
                     confidence: float = 0.95, resamples: int = 2000, rng: np.random.Generator) -> QuantileComparison:
    """Compare ``percentile`` of ``a`` and ``b``: point values, bootstrap intervals (``resamples`` draws each) and the difference's.

    ``a_effect``/``b_effect`` are the runs' design effects (:func:`design_effect`): the bootstrap draws
    ``count / effect`` calls. With fewer effective calls than :func:`min_calls` on either side the
    percentile is not ``judged`` and has no intervals.
    """
    a_n, b_n = a.count / max(a_effect, 1.0), b.count / max(b_effect, 1.0)
    a_us, b_us = a.quantile_us(percentile), b.quantile_us(percentile)
    needed = min_calls(percentile, confidence)
    short = [f"{side} has {n:,.0f} effective calls" for side, n in (("A", a_n), ("B", b_n)) if n < needed]
    if short:
        why = f"too few calls for p{percentile:g} at {confidence:.0%}: {' and '.join(short)}, at least {math.ceil(needed):,} needed"
        return QuantileComparison(percentile, a_us, b_us, a_n, b_n, None, None, None, None, False, why)
    a_draws = quantile_draws(a, percentile, a_n, resamples, rng)
    b_draws = quantile_draws(b, percentile, b_n, resamples, rng)
    positive = a_draws > 0
    ratios = b_draws[positive] / a_draws[positive] - 1
    return QuantileComparison(percentile, a_us, b_us, a_n, b_n, interval(a_draws, confidence), interval(b_draws, confidence),
                              interval(b_draws - a_draws, confidence), interval(ratios, confidence) if ratios.size else None, True, None)
