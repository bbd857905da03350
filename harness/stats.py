"""What a run measured: HDR latency histograms per RPC and per journey, split by status code.

All latencies are integers in microseconds (µs), recorded into ``hdrhistogram``
histograms with 3 significant figures (0.1 % resolution) covering 1 µs to 1 h.
Histograms merge exactly (``HdrHistogram.add`` / ``encode`` +
``decode_and_add``), so percentiles stay exact when several recorders are
combined.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Collection, Iterable

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000
SIGNIFICANT_FIGURES = 3

#: Sampled journeys kept per journey name for the report's "slowest traces".
SLOWEST_TRACES = 5

#: Status code names as Python's ``grpc.StatusCode`` spells them (``OK``, ``NOT_FOUND``, ...).
OK = "OK"


def new_histogram() -> HdrHistogram:
    """An empty latency histogram in µs (1 µs .. 1 h, 3 significant figures)."""
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)


def clamp_us(latency_us: float) -> int:
    """Round a latency in µs to the histogram's trackable range."""
    return min(max(int(latency_us), LOWEST_US), HIGHEST_US)


def count_within(histogram: HdrHistogram, threshold_us: int) -> int:
    """Number of recorded values at or below ``threshold_us`` (to the histogram's 0.1 % resolution).

    Sums the counts array up to the bucket holding ``threshold_us`` (values
    equivalent to it count as within): one C-level slice and sum, not a
    Python iteration over recorded values, so SLOs can be evaluated while the
    load runs without stalling the driver.
    """
    if histogram.get_total_count() == 0 or threshold_us < LOWEST_US:
        return 0
    index = min(histogram._counts_index_for(min(threshold_us, HIGHEST_US)), histogram.counts_len - 1)
    return sum(histogram.counts[: index + 1])


class CallStats:
    """Outcomes of one RPC (or one journey): a latency histogram in µs per status code name."""

    __slots__ = ("by_code",)

    def __init__(self) -> None:
        self.by_code: dict[str, HdrHistogram] = {}

    def record(self, code: str, latency_us: float) -> None:
        """Record one completed call with gRPC status ``code`` (e.g. ``"OK"``) and its latency in µs."""
        histogram = self.by_code.get(code)
        if histogram is None:
            histogram = self.by_code[code] = new_histogram()
        histogram.record_value(clamp_us(latency_us))

    def _selected(self, codes: Collection[str] | None) -> Iterable[HdrHistogram]:
        return (h for c, h in self.by_code.items() if codes is None or c in codes)

    def count(self, codes: Collection[str] | None = None) -> int:
        """Calls recorded, all of them or only those whose status is in ``codes``."""
        return sum(h.get_total_count() for h in self._selected(codes))

    def count_within(self, threshold_us: int, codes: Collection[str] | None = None) -> int:
        """Calls (optionally only those with a status in ``codes``) that took at most ``threshold_us``."""
        return sum(count_within(h, threshold_us) for h in self._selected(codes))

    def merged(self, codes: Collection[str] | None = None) -> HdrHistogram:
        """One histogram of all calls, or of those whose status is in ``codes``."""
        out = new_histogram()
        for histogram in self._selected(codes):
            out.add(histogram)
        return out

    def errors(self) -> dict[str, int]:
        """Count of calls per non-OK status code name."""
        return {c: h.get_total_count() for c, h in sorted(self.by_code.items()) if c != OK}

    def add(self, other: CallStats) -> None:
        """Merge ``other`` into this one (exact: histogram counts add)."""
        for code, histogram in other.by_code.items():
            mine = self.by_code.get(code)
            if mine is None:
                mine = self.by_code[code] = new_histogram()
            mine.add(histogram)


class RunStats:
    """Everything the driver recorded after warm-up.

    ``rpcs`` is keyed by full method name without the leading slash
    (``casemesh.urlshortener.v1.UrlShortenerService/Resolve``), ``journeys``
    by journey name (and journey-defined measures). ``first_message`` holds,
    per server-streaming method, the time to its first message (µs).
    ``send_lag`` holds, per request, how late the driver sent it relative to
    its intended send time (µs). ``slowest_traces`` keeps, per journey, the
    :data:`SLOWEST_TRACES` slowest sampled journeys as ``(latency µs,
    trace id hex, status code)``, slowest first. ``timeline`` counts, per
    second of the whole run (warm-up included), arrivals intended, sent and
    completed (:class:`Timeline`).
    """

    def __init__(self) -> None:
        self.rpcs: dict[str, CallStats] = {}
        self.journeys: dict[str, CallStats] = {}
        self.first_message: dict[str, CallStats] = {}
        self.send_lag = new_histogram()
        self._slowest: dict[str, list[tuple[float, str, str]]] = {}
        self.timeline = Timeline()

    def first_message_of(self, method: str) -> CallStats:
        """Time-to-first-message stats of server-streaming ``method`` (created empty on first use)."""
        stats = self.first_message.get(method)
        if stats is None:
            stats = self.first_message[method] = CallStats()
        return stats

    def sampled_trace(self, journey: str, latency_us: float, trace_id: str, code: str) -> None:
        """Remember a sampled (traced) journey if it is among the slowest of its name."""
        kept = self._slowest.setdefault(journey, [])
        if len(kept) < SLOWEST_TRACES:
            heapq.heappush(kept, (latency_us, trace_id, code))
        elif latency_us > kept[0][0]:
            heapq.heapreplace(kept, (latency_us, trace_id, code))

    @property
    def slowest_traces(self) -> dict[str, list[tuple[float, str, str]]]:
        return {name: sorted(kept, reverse=True) for name, kept in self._slowest.items()}

    def rpc(self, method: str) -> CallStats:
        """The stats of ``method`` (created empty on first use)."""
        stats = self.rpcs.get(method)
        if stats is None:
            stats = self.rpcs[method] = CallStats()
        return stats

    def journey(self, name: str) -> CallStats:
        """The stats of journey ``name`` (created empty on first use)."""
        stats = self.journeys.get(name)
        if stats is None:
            stats = self.journeys[name] = CallStats()
        return stats


class Timeline:
    """Per second of a run, warm-up included: arrivals intended by the schedule, sent by the driver, and completed.

    Entry ``i`` of ``intended``, ``sent`` and ``completed`` covers
    ``[i, i + 1)`` seconds from the start of the run. ``intended[i]`` counts
    arrivals whose intended send time falls in second ``i``; ``sent[i]``
    those the driver dispatched (created the journey's task) during second
    ``i``, whatever their intended time; ``completed[i]`` journeys that
    finished in second ``i``, sampled at the driver's 1 s ticks (so to within
    a scheduler tick, later when the event loop was blocked). Seconds before
    ``warmup_s`` are warm-up. A faithful open-loop driver has ``sent`` equal
    to ``intended`` second by second; ``sent`` running behind means the
    generator itself could not keep up.

    ``planned_end_s`` is warm-up + duration; ``end_s`` when sending stopped:
    ``planned_end_s``, or earlier when the arrival schedule ended first (a
    trace shorter than the run): then ``ended_early`` is true and the
    measured window is :attr:`measured_s` long. ``completed_after_end``
    counts journeys that finished while the driver drained in-flight work
    after ``end_s``.

    The driver writes the lists directly (O(1) integer work per arrival).
    """

    __slots__ = ("intended", "sent", "completed", "warmup_s", "planned_end_s", "end_s", "completed_after_end",
                 "_completed_seen")

    def __init__(self) -> None:
        self.intended: list[int] = []
        self.sent: list[int] = []
        self.completed: list[int] = []
        self.warmup_s = 0.0
        self.planned_end_s = 0.0
        self.end_s = 0.0
        self.completed_after_end = 0
        self._completed_seen = 0

    def begin(self, warmup_s: float, planned_end_s: float, end_s: float) -> None:
        """Start counting a run of ``planned_end_s`` seconds whose sending stops at ``end_s`` (≤ ``planned_end_s``).

        Arrivals are due at offsets ``<= end_s`` (a trace's last arrival may be due exactly at ``end_s``).
        """
        seconds = int(end_s) + 1
        self.intended = [0] * seconds
        self.sent = [0] * seconds
        self.completed = []
        self.warmup_s, self.planned_end_s, self.end_s = warmup_s, planned_end_s, end_s
        self.completed_after_end = self._completed_seen = 0

    def add_sent(self, second: int, count: int) -> None:
        """``count`` arrivals dispatched during ``second`` (a late driver may dispatch after ``end_s``)."""
        sent = self.sent
        if second >= len(sent):
            sent.extend([0] * (second + 1 - len(sent)))
        sent[second] += count

    def tick(self, completed_total: int) -> None:
        """A 1 s tick: ``completed_total`` journeys completed so far in the run; the difference closes the next second."""
        self.completed.append(completed_total - self._completed_seen)
        self._completed_seen = completed_total

    def finish(self, elapsed_s: float, completed_total: int) -> None:
        """Sending stopped ``elapsed_s`` after the start with ``completed_total`` journeys completed.

        Completions since the last tick go to the second in progress (the
        run's last second when sending stopped right at its end); the series
        are made equally long: the run's seconds (``ceil(end_s)``), or more
        when the driver sent later than that.
        """
        rest = completed_total - self._completed_seen
        self._completed_seen = completed_total
        series = (self.intended, self.sent, self.completed)
        used = max((i + 1 for values in series for i in range(len(values) - 1, -1, -1) if values[i]), default=0)
        seconds = max(math.ceil(self.end_s), used, 1)
        for values in series:
            del values[seconds:]
            values.extend([0] * (seconds - len(values)))
        self.completed[min(int(elapsed_s), seconds - 1)] += rest

    def drained(self, completed_total: int) -> None:
        """The drain after ``end_s`` is over: ``completed_total`` journeys completed in the whole run."""
        self.completed_after_end = completed_total - self._completed_seen

    @property
    def ended_early(self) -> bool:
        """Whether the arrival schedule ran out before warm-up + duration."""
        return self.end_s < self.planned_end_s

    @property
    def measured_s(self) -> float:
        """Seconds of the measured window actually driven: ``end_s - warmup_s``, at least 0."""
        return max(self.end_s - self.warmup_s, 0.0)

    def max_shortfall(self) -> tuple[int, int]:
        """``(shortfall, second)``: the largest ``intended - sent`` of any second (0 and the first second when none fell short)."""
        worst, at = 0, 0
        for second, (planned, done) in enumerate(zip(self.intended, self.sent)):
            if planned - done > worst:
                worst, at = planned - done, second
        return worst, at
