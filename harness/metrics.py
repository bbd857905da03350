"""The harness's own Prometheus metrics: what the load generator measured, served on its ``/metrics``.

During ``casemesh run`` the harness serves these families, and only these,
at ``http://127.0.0.1:PORT/metrics`` (OpenMetrics when the scraper asks for
it, as Prometheus does; the classic text format otherwise):

==================================================  =========  ===============================================
family                                              type       labels
==================================================  =========  ===============================================
``casemesh_harness_rpc_latency_seconds``            histogram  ``grpc_service``, ``grpc_method``, ``grpc_code``
``casemesh_harness_journey_latency_seconds``        histogram  ``journey``, ``grpc_code``
``casemesh_harness_send_lag_seconds``               histogram  (none)
``casemesh_harness_arrivals_intended_total``        counter    (none)
``casemesh_harness_arrivals_sent_total``            counter    (none)
``casemesh_slo_target``                             gauge      ``slo``
``casemesh_slo_threshold_seconds``                  gauge      ``slo``
``casemesh_event_loop_lag_seconds``                 histogram  (none)
``casemesh_gc_pause_seconds``                       histogram  ``generation``
==================================================  =========  ===============================================

What they cover. Everything but the two SLO gauges comes from what the driver
recorded, and the driver records only the **measured window**: journeys whose
intended start falls in the warm-up are sent but counted nowhere here, exactly
as in ``result.json``. Before the warm-up ends the histograms have no series
and the counters are 0.

- ``rpc_latency_seconds``: one observation per RPC call, latency from the
  call's intended send time (for a journey's first RPC its arrival time, for a
  later RPC the moment the previous one finished), by full service name,
  method and final status, ``grpc_code`` in the go-grpc-prometheus spelling
  (``OK``, ``NotFound``, ``DeadlineExceeded``).
- ``journey_latency_seconds``: one observation per journey, from its intended
  start to its last response; ``grpc_code`` is the status that ended it
  (``OK``, or the first failing RPC's; ``Unknown`` for a journey that raised).
- ``send_lag_seconds``: per journey, how late its first RPC went out after its
  intended send time.
- ``arrivals_intended_total``: arrivals of the measured window whose intended
  send time has come, counted when the driver's scheduler dispatches them (it
  dispatches every due arrival at its next 1 ms tick and never drops one).
- ``arrivals_sent_total``: arrivals of the measured window whose first RPC
  has gone out. ``intended - sent`` is the driver's backlog: journeys due but
  not yet on the wire, a sign that the generator itself falls behind.
- ``casemesh_slo_target``: each SLO's objective as a fraction (``0.99``);
  ``casemesh_slo_threshold_seconds``: the latency threshold of each SLO that
  has one (``latency_le_ms`` of a ``casemesh`` source, in seconds).
- ``casemesh_event_loop_lag_seconds``, ``casemesh_gc_pause_seconds``: the
  harness process's own event-loop lag and GC pauses, the families every
  service exports too (:mod:`casemesh.services.runtime.loop_probe`), from the
  whole run, warm-up included; observed by the probe ``casemesh run`` starts
  (:attr:`HarnessMetrics.loop`), not by the collector.

Histogram buckets are the services' (:data:`LATENCY_BUCKETS_S`), so harness
and server histograms can be compared bucket by bucket.

**Design: converted from the HDR histograms at scrape time, nothing per
request.** The driver already records every call into HDR histograms
(:class:`~casemesh.harness.stats.RunStats`); observing a
``prometheus_client.Histogram`` as well would add a few microseconds of lock
and bucket search per call on top of the ≈ 260 µs of harness CPU a request
costs at 2,000/s. Instead :class:`HarnessCollector` is a custom collector
(``prometheus_client``'s ``Collector`` API) that, when scraped, takes one
snapshot of each HDR counts array and sums it into the cumulative bucket
counts: zero cost per request, and a cost per scrape that does not depend on
the request rate. Measured here for the url-shortener profile (about 15
histogram series, ≈ 335 samples): ≈ 7.5 ms of CPU per scrape when every histogram changed
since the last one, ≈ 4 ms when none did (the conversion is memoised per
histogram; the rest is ``prometheus_client``'s OpenMetrics exposition, which
per-request ``Histogram`` objects would pay as well). At a 1 s scrape
interval that is under 1 % of a core: ≈ 5-9 µs per request at 800/s,
≈ 2-4 µs at 2,000/s, against ≈ 3 observations × a few µs per request for
``Histogram.observe``. Cumulative counts
follow the SLO evaluation's rule (:func:`casemesh.harness.stats.count_within`):
bucket ``le`` counts the values whose HDR bucket starts at or below ``le``
(3 significant figures, 0.1 %), so ``le="0.01"`` here equals what a
``latency_le_ms: 10`` SLO counts. ``_count`` is the ``+Inf`` bucket; ``_sum``
adds each HDR bucket's midpoint times its count (within 0.05 % of the exact
sum). Counts only grow between scrapes, as Prometheus counters must.

The scrape runs on ``prometheus_client``'s HTTP thread while the event loop
keeps recording; it only reads (copies of dict items, one C-level slice of
each counts array), so it never blocks the loop beyond the GIL.

The arrival counters need one fact the driver does not keep: how many
arrivals it dispatched before the measured window began. :class:`WindowProgress`
is the driver's :class:`~casemesh.harness.driver.Progress` plus that number,
noted (from the run's timeline, exact to the arrival) when the phase turns
``measuring``; install it with :func:`watch_arrivals` before
:meth:`Driver.run`. ``arrivals_sent_total`` is the number of send-lag
records, one per measured journey whose first RPC went out.
"""

from __future__ import annotations

import operator
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import grpc
from hdrh.histogram import HdrHistogram
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from casemesh.services.runtime.loop_probe import loop_metrics
from casemesh.services.runtime.metrics import LATENCY_BUCKETS_S, code_label

from .driver import Progress
from .stats import RunStats, new_histogram

#: Family names (without the ``_bucket``/``_total`` sample suffixes), as dashboards use them.
RPC_LATENCY = "casemesh_harness_rpc_latency_seconds"
JOURNEY_LATENCY = "casemesh_harness_journey_latency_seconds"
SEND_LAG = "casemesh_harness_send_lag_seconds"
ARRIVALS_INTENDED = "casemesh_harness_arrivals_intended"
ARRIVALS_SENT = "casemesh_harness_arrivals_sent"
SLO_TARGET = "casemesh_slo_target"
SLO_THRESHOLD = "casemesh_slo_threshold_seconds"

#: ``le`` label values, formatted as ``prometheus_client`` formats the services' buckets (``0.01``, ``1.0``).
_LE = tuple(floatToGoString(b) for b in LATENCY_BUCKETS_S)
#: Bucket bounds in µs, the unit of the HDR histograms.
_BOUNDS_US = tuple(round(b * 1_000_000) for b in LATENCY_BUCKETS_S)


class _Geometry:
    """Index arithmetic shared by every histogram of :func:`~casemesh.harness.stats.new_histogram` (same range, same precision)."""

    def __init__(self) -> None:
        probe = new_histogram()
        #: counts-array index of the HDR bucket holding each bound; bucket ``le`` sums indexes ``0..index``.
        self.bound_index = tuple(probe.get_counts_array_index(b) for b in _BOUNDS_US)
        self._probe = probe
        self._midpoints: list[int] = []
        self._lock = threading.Lock()

    def midpoints(self, length: int) -> list[int]:
        """The midpoint value (µs) of each of the first ``length`` counts-array indexes (grown on demand, kept)."""
        with self._lock:
            probe, known = self._probe, self._midpoints
            for index in range(len(known), length):
                lowest = probe.get_value_from_index(index)
                known.append((lowest + probe.get_highest_equivalent_value(lowest) + 1) // 2)
            return known


_GEOMETRY = _Geometry()


def cumulative_buckets(histogram: HdrHistogram) -> tuple[list[int], float]:
    """Prometheus buckets of a µs HDR histogram: cumulative counts per :data:`LATENCY_BUCKETS_S` bound, and the sum in seconds.

    Returns ``(counts, sum_s)``: ``counts`` has one entry per bound plus the
    ``+Inf`` total last, non-decreasing; entry *i* equals
    ``stats.count_within(histogram, bound_i_us)``. Reads the counts array once,
    so the result is consistent even while another thread records.
    """
    end = histogram.get_counts_array_index(max(histogram.max_value, 1)) + 1
    snapshot = histogram.counts[:end]
    counts: list[int] = []
    running, start = 0, 0
    for index in _GEOMETRY.bound_index:
        stop = min(index + 1, end)
        if stop > start:
            running += sum(snapshot[start:stop])
            start = stop
        counts.append(running)
    counts.append(running + sum(snapshot[start:]))
    sum_us = sum(map(operator.mul, snapshot, _GEOMETRY.midpoints(end)))
    return counts, sum_us / 1_000_000


class WindowProgress(Progress):
    """The driver's :class:`Progress` that also notes ``warmup_sent``: arrivals dispatched before the measured window.

    The driver sets ``phase`` to ``"measuring"`` just before it dispatches the
    first arrival of the measured window. ``timeline`` (the run's
    :class:`~casemesh.harness.stats.Timeline`) counts every arrival as it is
    dispatched, while ``sent`` is updated once per dispatched batch, so the
    count at that moment is taken from the timeline when there is one: then
    :attr:`measured_sent` counts the measured window's dispatched arrivals
    exactly. Only ``phase`` is a property; ``sent`` stays a plain attribute
    (no cost per arrival).
    """

    warmup_sent: int | None = None
    timeline: Any = None

    @property  # type: ignore[override]
    def phase(self) -> str:
        return self.__dict__["_phase"]

    @phase.setter
    def phase(self, value: str) -> None:
        if value == "measuring" and self.warmup_sent is None:
            self.warmup_sent = self.dispatched
        self.__dict__["_phase"] = value

    @property
    def dispatched(self) -> int:
        """Arrivals dispatched so far in the whole run, warm-up included."""
        intended = getattr(self.timeline, "intended", None)
        return max(self.sent, sum(intended)) if intended is not None else self.sent

    @property
    def measured_sent(self) -> int:
        """Arrivals dispatched in the measured window so far (0 during the warm-up)."""
        return 0 if self.warmup_sent is None else self.dispatched - self.warmup_sent


def watch_arrivals(driver: Any) -> WindowProgress:
    """Give ``driver`` a :class:`WindowProgress` reading its stats' timeline (call before ``driver.run``); returns it."""
    progress = WindowProgress()
    progress.timeline = getattr(driver.stats, "timeline", None)
    driver.progress = progress
    return progress


class HarnessCollector(Collector):
    """A ``prometheus_client`` collector of the harness families (see the module docstring).

    ``slos`` (:class:`~casemesh.harness.slo.Slo` objects) give the SLO gauges
    from the start. The run's figures appear once :meth:`attach` hands over the
    driver's ``RunStats`` and its progress (a :class:`WindowProgress` for the
    arrival counters; without one they stay 0).
    """

    def __init__(self, slos: Sequence[Any] = ()):
        # The bucket midpoints for ``_sum`` (≈ 20 ms to compute), here rather than in the first scrape during the load.
        _GEOMETRY.midpoints(new_histogram().counts_len)
        self._slos = tuple(slos)
        self._stats: RunStats | None = None
        self._progress: WindowProgress | None = None
        self._memo: dict[int, tuple[int, list[int], float]] = {}
        self._lock = threading.Lock()

    def attach(self, stats: RunStats, progress: WindowProgress | None = None) -> None:
        """Report ``stats`` (read, never written) and ``progress``'s arrival counts from now on."""
        with self._lock:
            self._stats, self._progress = stats, progress
            self._memo.clear()

    def describe(self) -> list[Metric]:
        """No families up front: the registry does not call :meth:`collect` on registration."""
        return []

    def collect(self) -> Iterator[Metric]:
        """The families as they stand now (called by each scrape)."""
        with self._lock:  # concurrent scrapes share the memo
            yield from self._slo_gauges()
            stats = self._stats
            rpc = HistogramMetricFamily(RPC_LATENCY, "Latency of each RPC call made by the harness, from its intended send time (measured window).",
                                        labels=("grpc_service", "grpc_method", "grpc_code"), unit="seconds")
            journey = HistogramMetricFamily(JOURNEY_LATENCY, "Latency of each journey, from its intended start to its last response (measured window).",
                                            labels=("journey", "grpc_code"), unit="seconds")
            lag = HistogramMetricFamily(SEND_LAG, "How late the harness sent each journey's first RPC after its intended send time (measured window).",
                                        labels=(), unit="seconds")
            if stats is not None:
                for method, calls in list(stats.rpcs.items()):
                    service, _, name = method.rpartition("/")
                    for code, histogram in list(calls.by_code.items()):
                        self._add(rpc, (service, name, _code(code)), histogram)
                for name, calls in list(stats.journeys.items()):
                    for code, histogram in list(calls.by_code.items()):
                        self._add(journey, (name, _code(code)), histogram)
                if stats.send_lag.total_count:
                    self._add(lag, (), stats.send_lag)
            yield from (rpc, journey, lag)
            progress = self._progress
            sent = stats.send_lag.total_count if stats is not None else 0
            intended = progress.measured_sent if progress is not None else 0
            # The scrape reads the two counts a moment apart: never report more sent than intended.
            yield CounterMetricFamily(ARRIVALS_INTENDED, "Arrivals of the measured window whose intended send time has come (dispatched by the driver).",
                                      value=max(intended, sent))
            yield CounterMetricFamily(ARRIVALS_SENT, "Arrivals of the measured window whose first RPC has been sent.", value=sent)

    def _add(self, family: HistogramMetricFamily, labels: Sequence[str], histogram: HdrHistogram) -> None:
        key = id(histogram)
        total = histogram.total_count
        memo = self._memo.get(key)
        if memo is None or memo[0] != total:
            counts, sum_s = cumulative_buckets(histogram)
            memo = self._memo[key] = (total, counts, sum_s)
        _, counts, sum_s = memo
        buckets = [(le, count) for le, count in zip(_LE, counts)]
        buckets.append(("+Inf", counts[-1]))
        family.add_metric(labels, buckets, sum_s)

    def _slo_gauges(self) -> Iterator[Metric]:
        target = GaugeMetricFamily(SLO_TARGET, "Objective of each SLO of the profile: the fraction of good calls required.", labels=("slo",))
        threshold = GaugeMetricFamily(SLO_THRESHOLD, "Latency threshold of each SLO of the profile that has one.", labels=("slo",), unit="seconds")
        for slo in self._slos:
            target.add_metric((slo.name,), slo.target)
            threshold_ms = getattr(slo.good, "latency_le_ms", None)
            if threshold_ms is not None:
                threshold.add_metric((slo.name,), threshold_ms / 1000)
        yield target
        yield threshold


def _code(name: str) -> str:
    """``NOT_FOUND`` → ``NotFound`` (names the driver records are ``grpc.StatusCode`` member names)."""
    try:
        return code_label(grpc.StatusCode[name])
    except KeyError:
        return name


class HarnessMetrics:
    """The harness's ``/metrics`` endpoint: its own registry holding one :class:`HarnessCollector`.

    :meth:`start` serves it on ``127.0.0.1:port`` (0: a free port) on a daemon
    thread; :attr:`address` is then ``127.0.0.1:PORT``. :meth:`stop` shuts the
    server down. ``OSError`` from :meth:`start` when the port is taken.
    """

    def __init__(self, slos: Sequence[Any] = ()):
        self.collector = HarnessCollector(slos)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)
        #: The event-loop lag and GC pause families in this registry, for the harness's loop probe.
        self.loop = loop_metrics(self.registry)
        self.address: str | None = None
        self._server: Any = None

    def start(self, port: int = 0, host: str = "127.0.0.1") -> str:
        """Serve ``/metrics``; returns ``host:port``."""
        self._server, _ = start_http_server(port, addr=host, registry=self.registry)
        self.address = f"{host}:{self._server.server_port}"
        return self.address

    @property
    def url(self) -> str | None:
        """``http://127.0.0.1:PORT/metrics`` once started."""
        return f"http://{self.address}/metrics" if self.address else None

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
