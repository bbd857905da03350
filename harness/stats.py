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
import time
from array import array
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

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


#: Version of :meth:`RunStats.to_wire`'s plain form.
WIRE_VERSION = 1


def encode(histogram: HdrHistogram) -> str:
    """``histogram`` as HdrHistogram's V2 compressed base64 text (``HISTFAAA...``): exact, compact, language-neutral."""
    encoded = histogram.encode()
    return encoded.decode("ascii") if isinstance(encoded, bytes) else encoded


def decode(encoded: str | bytes) -> HdrHistogram:
    """A :func:`new_histogram` holding the counts of an :func:`encode` d histogram.

    Raises ``TypeError`` (bad base64), ``hdrh`` ``HdrCookieException`` /
    ``HdrLengthException`` (not an HdrHistogram) or ``zlib.error`` (damaged payload), as
    ``HdrHistogram.decode_and_add`` does; ``IndexError`` when it holds values beyond 1 h.
    """
    histogram = new_histogram()
    histogram.decode_and_add(encoded)
    return histogram


class CallStats:
    """Outcomes of one RPC (or one journey): a latency histogram in µs per status code name.

    ``harness_side`` counts, per status code name, the calls among them whose
    failure the harness itself caused (its event loop delivered a deadline's
    expiry far past the deadline: see ``harness.driver.harness_caused``); their status
    code stays the one gRPC reported.
    """

    __slots__ = ("by_code", "harness_side")

    def __init__(self) -> None:
        self.by_code: dict[str, HdrHistogram] = {}
        self.harness_side: dict[str, int] = {}

    def blame_harness(self, code: str) -> None:
        """Count one call already recorded with ``code`` as failed by the harness, not by the server."""
        self.harness_side[code] = self.harness_side.get(code, 0) + 1

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
        for code, count in other.harness_side.items():
            self.harness_side[code] = self.harness_side.get(code, 0) + count

    def to_wire(self) -> dict[str, str]:
        """``{status code name: encoded histogram}`` (see :func:`encode`): the plain form of these stats."""
        return {code: encode(histogram) for code, histogram in self.by_code.items()}

    @classmethod
    def from_wire(cls, wire: Mapping[str, str]) -> CallStats:
        """Stats from their plain form (:meth:`to_wire`); errors as :func:`decode`."""
        stats = cls()
        stats.by_code = {code: decode(encoded) for code, encoded in wire.items()}
        return stats


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
    completed (:class:`Timeline`). ``series`` holds, per second of the whole
    run (warm-up included), compact latency histograms and error counts per
    RPC and per journey (:class:`RunSeries`).
    """

    def __init__(self) -> None:
        self.rpcs: dict[str, CallStats] = {}
        self.journeys: dict[str, CallStats] = {}
        self.first_message: dict[str, CallStats] = {}
        self.send_lag = new_histogram()
        self._slowest: dict[str, list[tuple[float, str, str]]] = {}
        self.timeline = Timeline()
        self.series = RunSeries()

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

    # -- wire format and merge: how worker processes ship their stats (harness/workers.py) ----------

    def to_wire(self, *, series: bool = True) -> dict[str, Any]:
        """Everything recorded, as a plain dict (strings, numbers, lists, dicts: picklable, JSON-ready).

        Shape (``wire_version`` :data:`WIRE_VERSION`)::

            {"wire_version": 1,
             "rpcs": {METHOD: CALLS}, "journeys": {NAME: CALLS}, "first_message": {METHOD: CALLS},
             "send_lag": HIST,
             "slowest_traces": {NAME: [[latency_us, trace_id_hex, code], ...]},   # up to SLOWEST_TRACES each
             "timeline": Timeline.to_wire(),
             "series": RunSeries.to_dict() | None,
             "harness_side": {"rpcs": {METHOD: {CODE: n}}, "journeys": {NAME: {CODE: n}}}}   # CallStats.harness_side
            CALLS = {CODE: HIST}   # per status code name ("OK", "NOT_FOUND", ...)
            HIST  = "HISTFAAA..."  # HdrHistogram V2 compressed base64 (µs, 1 µs..1 h, 3 significant figures)

        Histograms travel encoded, so :meth:`from_wire` + :meth:`merge` give
        exactly the counts, and so the percentiles, of one recorder that saw
        every call. ``series=False`` leaves the per-second series out
        (``"series": None``): their plain form grows with the run's length,
        so periodic snapshots skip them and only the final stats carry them.
        """
        return {
            "wire_version": WIRE_VERSION,
            "rpcs": {name: calls.to_wire() for name, calls in self.rpcs.items()},
            "journeys": {name: calls.to_wire() for name, calls in self.journeys.items()},
            "first_message": {name: calls.to_wire() for name, calls in self.first_message.items()},
            "send_lag": encode(self.send_lag),
            "slowest_traces": {name: [[latency_us, trace_id, code] for latency_us, trace_id, code in kept]
                               for name, kept in self._slowest.items()},
            "timeline": self.timeline.to_wire(),
            "series": self.series.to_dict() if series else None,
            "harness_side": {kind: {name: dict(calls.harness_side) for name, calls in table.items() if calls.harness_side}
                             for kind, table in (("rpcs", self.rpcs), ("journeys", self.journeys))},
        }

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> RunStats:
        """Stats from their plain form (:meth:`to_wire`).

        ``ValueError`` for another ``wire_version`` or series bucketed
        differently; the errors of :func:`decode` for a damaged histogram.
        A ``series`` of ``None`` gives empty series.
        """
        if wire.get("wire_version") != WIRE_VERSION:
            raise ValueError(f"stats in wire format {wire.get('wire_version')!r}, expected {WIRE_VERSION}")
        stats = cls()
        stats.rpcs = {name: CallStats.from_wire(calls) for name, calls in wire["rpcs"].items()}
        stats.journeys = {name: CallStats.from_wire(calls) for name, calls in wire["journeys"].items()}
        stats.first_message = {name: CallStats.from_wire(calls) for name, calls in wire["first_message"].items()}
        stats.send_lag = decode(wire["send_lag"])
        for name, kept in wire["slowest_traces"].items():
            for latency_us, trace_id, code in kept:
                stats.sampled_trace(name, latency_us, trace_id, code)
        stats.timeline = Timeline.from_wire(wire["timeline"])
        if wire.get("series") is not None:
            stats.series = RunSeries.from_dict(wire["series"])
        for kind, table in (("rpcs", stats.rpcs), ("journeys", stats.journeys)):
            for name, counts in (wire.get("harness_side") or {}).get(kind, {}).items():
                table.setdefault(name, CallStats()).harness_side.update(counts)
        return stats

    def merge(self, other: RunStats) -> None:
        """Add ``other`` (another worker's stats of the same run, counted from the same start) into these.

        Exact: histogram counts add per RPC, journey, status code and for the
        send lag; the slowest sampled journeys are the slowest of both;
        timeline and series counts add second by second.
        """
        for mine, theirs in ((self.rpcs, other.rpcs), (self.journeys, other.journeys), (self.first_message, other.first_message)):
            for name, calls in theirs.items():
                mine.setdefault(name, CallStats()).add(calls)
        self.send_lag.add(other.send_lag)
        for name, kept in other._slowest.items():
            for latency_us, trace_id, code in kept:
                self.sampled_trace(name, latency_us, trace_id, code)
        self.timeline.merge(other.timeline)
        self.series.merge(other.series)


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

    ``abandoned_at_s`` (``None`` when not) is when the driver gave up
    because it had fallen ``abandoned_behind_s`` seconds behind its
    schedule (``Driver.abandon_behind_s``): it sent nothing more, the run is
    invalid, and ``end_s`` is that moment.

    The driver writes the lists directly (O(1) integer work per arrival).
    """

    __slots__ = ("intended", "sent", "completed", "warmup_s", "planned_end_s", "end_s", "completed_after_end",
                 "abandoned_at_s", "abandoned_behind_s", "_completed_seen")

    def __init__(self) -> None:
        self.intended: list[int] = []
        self.sent: list[int] = []
        self.completed: list[int] = []
        self.warmup_s = 0.0
        self.planned_end_s = 0.0
        self.end_s = 0.0
        self.completed_after_end = 0
        self.abandoned_at_s: float | None = None
        self.abandoned_behind_s: float | None = None
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

    def abandon(self, at_s: float, behind_s: float) -> None:
        """The driver gave up at ``at_s`` (s from the start), ``behind_s`` seconds behind its schedule; sending ends there."""
        self.abandoned_at_s, self.abandoned_behind_s = at_s, behind_s
        self.end_s = min(self.end_s, at_s)

    def drained(self, completed_total: int) -> None:
        """The drain after ``end_s`` is over: ``completed_total`` journeys completed in the whole run."""
        self.completed_after_end = completed_total - self._completed_seen

    @property
    def ended_early(self) -> bool:
        """Whether the arrival schedule ran out before warm-up + duration (not: the driver abandoned the run)."""
        return self.abandoned_at_s is None and self.end_s < self.planned_end_s

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

    def to_wire(self) -> dict[str, Any]:
        """Plain form: ``{"intended", "sent", "completed": [count per second], "warmup_s", "planned_end_s", "end_s",
        "completed_after_end", "completed_seen", "abandoned_at_s", "abandoned_behind_s"}`` (seconds as floats or
        ``None``, counts as ints)."""
        return {"intended": list(self.intended), "sent": list(self.sent), "completed": list(self.completed),
                "warmup_s": self.warmup_s, "planned_end_s": self.planned_end_s, "end_s": self.end_s,
                "completed_after_end": self.completed_after_end, "completed_seen": self._completed_seen,
                "abandoned_at_s": self.abandoned_at_s, "abandoned_behind_s": self.abandoned_behind_s}

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any]) -> Timeline:
        """A timeline from its plain form (:meth:`to_wire`)."""
        timeline = cls()
        timeline.intended, timeline.sent, timeline.completed = list(wire["intended"]), list(wire["sent"]), list(wire["completed"])
        timeline.warmup_s, timeline.planned_end_s, timeline.end_s = wire["warmup_s"], wire["planned_end_s"], wire["end_s"]
        timeline.completed_after_end, timeline._completed_seen = wire["completed_after_end"], wire["completed_seen"]
        timeline.abandoned_at_s, timeline.abandoned_behind_s = wire.get("abandoned_at_s"), wire.get("abandoned_behind_s")
        return timeline

    def merge(self, other: Timeline) -> None:
        """Add ``other``'s counts second by second (another worker's part of the same run, counted from the same start).

        The lists grow to the longer of the two. Warm-up and planned end are
        the run's (the same in both); ``end_s`` is the later one. The run is
        abandoned when either part was (at the earlier time, the larger lag).
        """
        for mine, theirs in ((self.intended, other.intended), (self.sent, other.sent), (self.completed, other.completed)):
            if len(theirs) > len(mine):
                mine.extend([0] * (len(theirs) - len(mine)))
            for second, count in enumerate(theirs):
                mine[second] += count
        self.warmup_s = max(self.warmup_s, other.warmup_s)
        self.planned_end_s = max(self.planned_end_s, other.planned_end_s)
        self.end_s = max(self.end_s, other.end_s)
        self.completed_after_end += other.completed_after_end
        self._completed_seen += other._completed_seen
        if other.abandoned_at_s is not None:
            self.abandoned_at_s = min(other.abandoned_at_s, self.abandoned_at_s if self.abandoned_at_s is not None else math.inf)
            self.abandoned_behind_s = max(other.abandoned_behind_s or 0.0, self.abandoned_behind_s or 0.0)


# -- per-second series -----------------------------------------------------------------------------

#: Buckets per doubling of latency in the per-second series: bucket ``b`` holds latencies in
#: ``[2 ** (b / 32), 2 ** ((b + 1) / 32))`` µs, 2.2 % wide, and is read back at its geometric middle,
#: so a per-second percentile is within ±1.1 % of the recorded value (about what a 2-significant-figure
#: HdrHistogram gives, at a few hundred bytes per second instead of tens of kB).
SERIES_BUCKETS_PER_OCTAVE = 32
#: Largest bucket index: latencies at or above :data:`HIGHEST_US` (1 h) land there.
SERIES_TOP_BUCKET = int(math.log2(HIGHEST_US) * SERIES_BUCKETS_PER_OCTAVE)


def series_bucket(latency_us: float) -> int:
    """The per-second series bucket of a latency in µs (values below 1 µs go to bucket 0, from 1 h to the top bucket)."""
    if latency_us <= LOWEST_US:
        return 0
    if latency_us >= HIGHEST_US:
        return SERIES_TOP_BUCKET
    return int(math.log2(latency_us) * SERIES_BUCKETS_PER_OCTAVE)


def series_bucket_us(bucket: int) -> float:
    """The value a series bucket stands for, in µs: its geometric middle (within ±1.1 % of every value in it)."""
    return 2.0 ** ((bucket + 0.5) / SERIES_BUCKETS_PER_OCTAVE)


def series_percentiles(buckets: Mapping[int, int], percentiles: Sequence[float]) -> list[float | None]:
    """Latencies in µs at ``percentiles`` (0..100, ascending) of one second's ``{bucket: count}`` (``None`` when empty).

    The rank of percentile ``p`` among ``n`` calls is ``round(p / 100 * n)``, at least 1, as HdrHistogram
    counts it; the value is that bucket's :func:`series_bucket_us`.
    """
    total = sum(buckets.values())
    if not total:
        return [None] * len(percentiles)
    ranks = [max(int(p * total / 100 + 0.5), 1) for p in percentiles]
    values: list[float | None] = []
    seen, i = 0, 0
    for bucket in sorted(buckets):
        seen += buckets[bucket]
        while i < len(ranks) and ranks[i] <= seen:
            values.append(series_bucket_us(bucket))
            i += 1
        if i == len(ranks):
            break
    return values


class LatencySeries:
    """One RPC's (or journey's) latencies and errors per second of a run: compact histograms, O(1) per call.

    Second ``i`` covers ``[i, i + 1)`` s from the start of the run (warm-up
    included) and holds the calls that *ended* in it, as HdrHistogram's
    interval logs and Prometheus count them: a latency histogram of
    :data:`SERIES_BUCKETS_PER_OCTAVE` log buckets per doubling (±1.1 %, see
    :func:`series_bucket`) and the count of each non-OK status code. Latencies
    are in µs from the same start as the run's histograms (the intended send
    time for a journey and its first RPC).

    Recording adds to a dict of the second in progress; when a call ends in a
    later second, that dict is packed into an ``array`` of ``bucket, count``
    pairs (16 bytes per occupied bucket). A call that ends in an earlier
    second than one already recorded (only possible when merging clocks) is
    counted in the second in progress.

    Plain form (:meth:`to_dict`): ``{"seconds": [[bucket, count, bucket,
    count, ...] per second], "errors": {CODE: [count per second]}}``, buckets
    ascending, empty seconds ``[]``, error lists as long as needed.
    """

    __slots__ = ("_seconds", "_errors", "_second", "_buckets", "_codes")

    def __init__(self) -> None:
        self._seconds: list[array[int] | None] = []
        self._errors: dict[str, list[int]] = {}
        self._second = 0
        self._buckets: dict[int, int] = {}
        self._codes: dict[str, int] = {}

    def record(self, code: str, latency_us: float, at_s: float) -> None:
        """One call with status ``code`` (``"OK"``, ``"NOT_FOUND"``, ...) that took ``latency_us`` µs and ended ``at_s`` s after the start."""
        second = int(at_s) if at_s > 0 else 0
        if second > self._second:
            self.flush()
            self._second = second
        bucket = series_bucket(latency_us)
        buckets = self._buckets
        buckets[bucket] = buckets.get(bucket, 0) + 1
        if code != OK:
            codes = self._codes
            codes[code] = codes.get(code, 0) + 1

    def record_ended(self, code: str, start_s: float, origin_s: float) -> None:
        """One call that started at ``start_s`` and ends now, in a run that started at ``origin_s`` (``time.perf_counter()`` values)."""
        now = time.perf_counter()
        self.record(code, (now - start_s) * 1e6, now - origin_s)

    def flush(self) -> None:
        """Pack the second in progress (idempotent; later calls of that second are added to it)."""
        if self._buckets:
            self._store(self._second, self._buckets, self._codes)
            self._buckets, self._codes = {}, {}

    def _store(self, second: int, buckets: Mapping[int, int], codes: Mapping[str, int]) -> None:
        seconds = self._seconds
        if second >= len(seconds):
            seconds.extend([None] * (second + 1 - len(seconds)))
        packed = seconds[second]
        if packed is not None:
            merged = dict(zip(packed[::2], packed[1::2]))
            for bucket, count in buckets.items():
                merged[bucket] = merged.get(bucket, 0) + count
            buckets = merged
        seconds[second] = array("q", [value for bucket in sorted(buckets) for value in (bucket, buckets[bucket])])
        for code, count in codes.items():
            _add_at(self._errors.setdefault(code, []), second, count)

    @property
    def seconds(self) -> int:
        """Seconds covered: one past the last second with a call."""
        return max(len(self._seconds), self._second + 1 if self._buckets else 0)

    def histogram(self, second: int) -> dict[int, int]:
        """``{bucket: count}`` of the calls that ended in ``second`` (empty when none did)."""
        self.flush()
        packed = self._seconds[second] if 0 <= second < len(self._seconds) else None
        return dict(zip(packed[::2], packed[1::2])) if packed is not None else {}

    def errors(self) -> dict[str, list[int]]:
        """Per non-OK status code name: calls that ended with it, per second (lists as long as that code needs)."""
        self.flush()
        return {code: list(counts) for code, counts in sorted(self._errors.items())}

    def merge(self, other: LatencySeries) -> None:
        """Add ``other``'s calls, second by second (exact: bucket counts add). Both must count from the same start."""
        self.flush()
        other.flush()
        for second, packed in enumerate(other._seconds):
            if packed is not None:
                self._store(second, dict(zip(packed[::2], packed[1::2])), {})
        for code, counts in other._errors.items():
            mine = self._errors.setdefault(code, [])
            for second, count in enumerate(counts):
                if count:
                    _add_at(mine, second, count)

    def to_dict(self) -> dict[str, Any]:
        """The plain form (ints and lists only; see the class docstring)."""
        self.flush()
        return {"seconds": [list(packed) if packed is not None else [] for packed in self._seconds],
                "errors": {code: list(counts) for code, counts in sorted(self._errors.items())}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LatencySeries:
        """A series from its plain form (:meth:`to_dict`)."""
        series = cls()
        for second, pairs in enumerate(data["seconds"]):
            if pairs:
                series._store(second, dict(zip(pairs[::2], pairs[1::2])), {})
        series._errors = {code: list(counts) for code, counts in data.get("errors", {}).items()}
        series._second = max(len(series._seconds) - 1, 0)
        return series


def _add_at(values: list[int], index: int, count: int) -> None:
    if index >= len(values):
        values.extend([0] * (index + 1 - len(values)))
    values[index] += count


class RunSeries:
    """Per-second :class:`LatencySeries` of every RPC and journey of a run, warm-up included.

    ``rpcs`` is keyed by full method name (as :attr:`RunStats.rpcs`),
    ``journeys`` by journey name (and journey-defined measures). The driver
    records every call here, warm-up or not; a second's calls are those that
    ended in it. Plain form (:meth:`to_dict`): ``{"buckets_per_octave": 32,
    "rpcs": {NAME: LatencySeries plain form}, "journeys": {...}}``.
    """

    __slots__ = ("rpcs", "journeys")

    def __init__(self) -> None:
        self.rpcs: dict[str, LatencySeries] = {}
        self.journeys: dict[str, LatencySeries] = {}

    def rpc(self, method: str) -> LatencySeries:
        """The series of ``method`` (created empty on first use)."""
        series = self.rpcs.get(method)
        if series is None:
            series = self.rpcs[method] = LatencySeries()
        return series

    def journey(self, name: str) -> LatencySeries:
        """The series of journey ``name`` (created empty on first use)."""
        series = self.journeys.get(name)
        if series is None:
            series = self.journeys[name] = LatencySeries()
        return series

    @property
    def seconds(self) -> int:
        """Seconds covered by any of the series (0 when nothing was recorded)."""
        return max((s.seconds for group in (self.rpcs, self.journeys) for s in group.values()), default=0)

    def merge(self, other: RunSeries) -> None:
        """Add ``other`` (e.g. another worker's, counted from the same start) into this one."""
        for mine, theirs in ((self.rpcs, other.rpcs), (self.journeys, other.journeys)):
            for name, series in theirs.items():
                mine.setdefault(name, LatencySeries()).merge(series)

    def to_dict(self) -> dict[str, Any]:
        """The plain form: ints, lists and dicts only (JSON-, msgpack- or pickle-ready)."""
        return {"buckets_per_octave": SERIES_BUCKETS_PER_OCTAVE,
                "rpcs": {name: s.to_dict() for name, s in sorted(self.rpcs.items())},
                "journeys": {name: s.to_dict() for name, s in sorted(self.journeys.items())}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunSeries:
        """A run's series from its plain form; ``ValueError`` when it was bucketed differently."""
        if data.get("buckets_per_octave") != SERIES_BUCKETS_PER_OCTAVE:
            raise ValueError(f"series bucketed with {data.get('buckets_per_octave')} buckets per octave, not {SERIES_BUCKETS_PER_OCTAVE}")
        series = cls()
        series.rpcs = {name: LatencySeries.from_dict(s) for name, s in data["rpcs"].items()}
        series.journeys = {name: LatencySeries.from_dict(s) for name, s in data["journeys"].items()}
        return series
