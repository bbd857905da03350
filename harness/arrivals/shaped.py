"""Rate-shaped arrival processes: a time-varying arrival rate λ(t) (``ramp``, ``steps``, ``spike``, ``diurnal``, ``rate_curve``).

A shape gives the arrival rate λ(t) in arrivals per second at ``t`` seconds
from the start of the run (warm-up included), and its cumulative rate
Λ(t) = ∫₀ᵗ λ(s) ds, the expected number of arrivals in ``[0, t)``.

Arrival times come from inverting Λ (time rescaling), in one of two spacings:

- ``poisson``: a **non-homogeneous Poisson process** with rate λ(t). If
  E₁ < E₂ < … are the arrival times of a unit-rate Poisson process
  (cumulative sums of independent Exp(1) gaps), then tₖ = Λ⁻¹(Eₖ) are those
  of a Poisson process with rate λ(t): the time-change (time-rescaling)
  theorem, E. Çinlar, *Introduction to Stochastic Processes* (1975), ch. 4;
  generation by inversion of Λ as in L. Devroye, *Non-Uniform Random Variate
  Generation* (1986), ch. VI ("The Poisson process"). Counts in any window
  ``[a, b)`` are Poisson with mean Λ(b) − Λ(a); the rescaled gaps
  Λ(tₖ) − Λ(tₖ₋₁) are independent Exp(1) (what the tests check).
- ``uniform``: deterministic, Eₖ replaced by its mean ``k``: the k-th arrival
  (k = 1, 2, …) is at the moment Λ reaches ``k``, so the number of arrivals
  in any window ``[a, b)`` is Λ(b) − Λ(a) rounded up or down (never off by 1
  or more), and gaps are ``1 / λ`` where the rate is steady.

Λ⁻¹ is exact (closed form) for piecewise-linear rates
(:class:`PiecewiseLinearRate`: ramp, steps, spike, rate curves) and found by
safeguarded Newton iteration (bisection fallback) for the sinusoid
(:class:`SinusoidRate`: diurnal). Either way, each arrival costs O(1)
amortised: the inversion walks forward from the previous arrival.
"""

from __future__ import annotations

import itertools
import math
import random
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from typing import Literal, Protocol

#: Precision of the sinusoid's numerical inversion (s); far below the driver's 1 ms scheduling tick.
TIME_TOLERANCE_S = 1e-9
#: How arrivals are spaced along the rate: ``poisson`` (non-homogeneous Poisson) or ``uniform`` (deterministic).
Spacing = Literal["poisson", "uniform"]


class RateShape(Protocol):
    """An arrival rate over the run: ``rate(t)`` per s, ``cumulative(t)`` arrivals expected in ``[0, t)``."""

    def rate(self, t: float) -> float: ...

    def cumulative(self, t: float) -> float: ...

    def times(self, targets: Iterator[float]) -> Iterator[float]:
        """Λ⁻¹ of each of ``targets`` (increasing cumulative-rate values): the earliest ``t`` with Λ(t) = target.

        Ends when the rate stays 0 for ever after and a target is out of reach.
        """
        ...


class PiecewiseLinearRate:
    """λ(t) made of contiguous linear segments from t = 0, then a constant tail rate for ever.

    ``segments`` are ``(t_start_s, t_end_s, rate_start_per_s, rate_end_per_s)``,
    the first starting at 0, each starting where the previous one ends, with
    ``t_end_s > t_start_s``; rates are ≥ 0 arrivals/s. An empty list means the
    tail rate from t = 0. Steps are segments with equal start and end rates.
    """

    def __init__(self, segments: Sequence[tuple[float, float, float, float]], tail_rate_per_s: float):
        self.starts = [s[0] for s in segments]
        self.r0 = [s[2] for s in segments]
        self.slope = [(s[3] - s[2]) / (s[1] - s[0]) for s in segments]
        self.end_s = segments[-1][1] if segments else 0.0
        self.tail = tail_rate_per_s
        self.mass = [0.0]  # Λ at each segment's start, and at end_s
        for t0, t1, r0, r1 in segments:
            self.mass.append(self.mass[-1] + (r0 + r1) * (t1 - t0) / 2)

    @classmethod
    def through(cls, points: Sequence[tuple[float, float]], tail_rate_per_s: float) -> PiecewiseLinearRate:
        """Linear between consecutive ``points`` ``(t_s, rate_per_s)`` (the first at t = 0, times increasing), then the tail."""
        return cls([(t0, t1, r0, r1) for (t0, r0), (t1, r1) in itertools.pairwise(points)], tail_rate_per_s)

    def rate(self, t: float) -> float:
        """λ(t) in arrivals/s (``t`` ≥ 0, seconds from the run's start)."""
        if t >= self.end_s:
            return self.tail
        j = bisect_right(self.starts, t) - 1
        return self.r0[j] + self.slope[j] * (t - self.starts[j])

    def cumulative(self, t: float) -> float:
        """Λ(t): arrivals expected in ``[0, t)``."""
        if t >= self.end_s:
            return self.mass[-1] + self.tail * (t - self.end_s)
        j = bisect_right(self.starts, t) - 1
        u = t - self.starts[j]
        return self.mass[j] + self.r0[j] * u + self.slope[j] * u * u / 2

    def times(self, targets: Iterator[float]) -> Iterator[float]:
        """Λ⁻¹ of each target, in closed form per segment (solving a quadratic in the time since the segment's start)."""
        starts, r0, slope, mass = self.starts, self.r0, self.slope, self.mass
        last = len(starts)
        j = 0
        for m in targets:
            while j < last and m > mass[j + 1]:
                j += 1
            if j == last:  # past the last knot: constant tail rate
                if self.tail <= 0:
                    return
                yield self.end_s + (m - mass[last]) / self.tail
                continue
            delta = m - mass[j]
            if delta <= 0:
                yield starts[j]
                continue
            # Solve r0·u + slope·u²/2 = delta for the smallest u ≥ 0, in the form stable for slope → 0 and slope < 0.
            b = r0[j]
            root = math.sqrt(max(b * b + 2 * slope[j] * delta, 0.0))
            yield starts[j] + 2 * delta / (b + root)


class SinusoidRate:
    """λ(t) = mean + amplitude · sin(2π (t / period_s + phase)): a day compressed into ``period_s`` seconds.

    ``amplitude_per_s`` ≤ ``mean_rate_per_s`` keeps the rate ≥ 0; ``phase`` is
    the fraction of a period already elapsed at t = 0 (0: at the mean and
    rising, 0.25: at the peak, 0.75: at the trough).
    """

    def __init__(self, mean_rate_per_s: float, amplitude_per_s: float, period_s: float, phase: float):
        self.mean = mean_rate_per_s
        self.amplitude = amplitude_per_s
        self.omega = 2 * math.pi / period_s
        self.phi = 2 * math.pi * phase
        self._c = amplitude_per_s / self.omega
        self._cos_phi = math.cos(self.phi)

    def rate(self, t: float) -> float:
        return self.mean + self.amplitude * math.sin(self.omega * t + self.phi)

    def cumulative(self, t: float) -> float:
        return self.mean * t + self._c * (self._cos_phi - math.cos(self.omega * t + self.phi))

    def times(self, targets: Iterator[float]) -> Iterator[float]:
        """Λ⁻¹ of each target by Newton's method on Λ(t) − target, kept inside a bracket (bisection when a step leaves it).

        Bracket: Λ(t) ≥ Λ(lo) + mean·(t − lo) − 2·amplitude/ω, so the root lies
        in ``[lo, lo + (target − Λ(lo) + 2·amplitude/ω) / mean]``.
        """
        lo = lo_mass = 0.0
        slack = 2 * self._c
        cumulative, rate, mean = self.cumulative, self.rate, self.mean
        for m in targets:
            if m <= lo_mass:  # two targets closer than the last inversion's rounding
                yield lo
                continue
            hi = lo + (m - lo_mass + slack) / mean
            t = min(lo + (m - lo_mass) / mean, hi)
            for _ in range(200):  # Newton converges in a few steps; bisection halves the bracket otherwise
                f = cumulative(t) - m
                if f > 0:
                    hi = t
                else:
                    lo = t
                slope = rate(t)
                step = t - f / slope if slope > 0 else -math.inf
                if not lo <= step <= hi:
                    step = (lo + hi) / 2
                if abs(step - t) <= TIME_TOLERANCE_S:
                    t = step
                    break
                t = step
            yield t
            lo, lo_mass = t, cumulative(t)


def unit_targets(spacing: Spacing, rng: random.Random) -> Iterator[float]:
    """Arrival times of a unit-rate process: Poisson (cumulative Exp(1) gaps) or uniform (1, 2, 3, …)."""
    if spacing == "uniform":
        return itertools.count(1)

    def poisson() -> Iterator[float]:
        expovariate = rng.expovariate
        total = 0.0
        while True:
            total += expovariate(1.0)
            yield total

    return poisson()


def rate_shaped(shape: RateShape, spacing: Spacing, rng: random.Random) -> Iterator[float]:
    """Arrival offsets (s from the run's start, increasing) with rate ``shape``, spaced as ``spacing``, by time rescaling."""
    return shape.times(unit_targets(spacing, rng))


def ramp(start_rate_per_s: float, end_rate_per_s: float, run_s: float) -> PiecewiseLinearRate:
    """Linear from ``start_rate_per_s`` at t = 0 to ``end_rate_per_s`` at ``run_s`` (the run's end), held after."""
    return PiecewiseLinearRate([(0.0, run_s, start_rate_per_s, end_rate_per_s)], end_rate_per_s)


def steps(steps_: Sequence[tuple[float, float]]) -> PiecewiseLinearRate:
    """``(rate_per_s, duration_s)`` steps one after the other from t = 0; the last rate holds after the last step."""
    segments: list[tuple[float, float, float, float]] = []
    t = 0.0
    for rate_per_s, duration_s in steps_:
        segments.append((t, t + duration_s, rate_per_s, rate_per_s))
        t += duration_s
    return PiecewiseLinearRate(segments, steps_[-1][0])


def spike(baseline_rate_per_s: float, at_s: float, duration_s: float, rate_per_s: float) -> PiecewiseLinearRate:
    """``baseline_rate_per_s``, except ``rate_per_s`` in ``[at_s, at_s + duration_s)``."""
    segments = [(0.0, at_s, baseline_rate_per_s, baseline_rate_per_s)] if at_s > 0 else []
    segments.append((at_s, at_s + duration_s, rate_per_s, rate_per_s))
    return PiecewiseLinearRate(segments, baseline_rate_per_s)


def curve(points: Sequence[tuple[float, float]], interpolation: Literal["linear", "step"]) -> PiecewiseLinearRate:
    """A rate curve through ``points`` ``(t_s, rate_per_s)`` (first at t = 0, times increasing), the last rate held after.

    ``linear`` interpolates between points; ``step`` holds each point's rate until the next point.
    """
    if interpolation == "linear":
        return PiecewiseLinearRate.through(points, points[-1][1])
    return PiecewiseLinearRate([(t0, t1, r0, r0) for (t0, r0), (t1, _) in itertools.pairwise(points)], points[-1][1])
