"""The control stream: every run's noise floor, measured at the same moments as the load.

Beside the profile's load, ``casemesh run`` drives a low-rate open-loop stream
(:data:`CONTROL_RATE_PER_S` evenly spaced calls per second) of zero-work
``casemesh.bench.v1.EchoService/Echo`` calls to a bare echo server that the
harness starts in its own process and event loop
(``harness/calibration/echo_server.py``), through the same
:class:`~casemesh.harness.driver.Driver` code path as the load, for the
whole run. Its latency, measured from the intended send time like every
other, is what this machine and this harness add to *any* call at that
moment: the **noise floor**. A VM stall, another process hogging the CPU, a
garbage-collector pause in the harness all show up in the control as they do
in the load, second by second. :mod:`casemesh.harness.floor` reads it to
qualify the SLO verdicts.

Cost: 20 zero-work calls per second, client and server in this process: at
such a low rate each call costs about 1-2.5 CPU-ms here (every call wakes the
event loop and grpc's poller on its own), so about 2-5 % of one core
(benchmarks/control_cost.py, docs/benchmarks.md "The control stream").
``--no-control`` turns it off. 20/s gives 1,200 samples in a 60 s window, so
the run's p99 floor is well defined; per second, its p99 is its slowest call.

With ``--workers N`` the control runs in the coordinating process, which
drives no load itself: it sees the machine's stalls, not a worker's own loop.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import grpc

from .calibration.echo_server import start_in_process
from .call_policy import harness_channel_options
from .driver import Driver
from .result import latency_summary
from .stats import OK, RunStats, series_percentiles

#: Arrivals per second of the control stream (constant spacing: every second gets the same number of samples).
CONTROL_RATE_PER_S = 20.0
#: Payload of each control call, bytes (the echo workload's default).
CONTROL_PAYLOAD_BYTES = 100
#: Deadline of a control call (ms): a stall longer than this shows up as DEADLINE_EXCEEDED in the control too.
CONTROL_TIMEOUT_MS = 10_000.0


def control_profile(warmup_s: float, duration_s: float, rate_per_s: float = CONTROL_RATE_PER_S) -> Any:
    """A :class:`~casemesh.harness.profile.Profile` of the echo workload at ``rate_per_s`` (constant spacing).

    ``warmup_s`` and ``duration_s`` are the load's, so both measure the same window.
    """
    from .profile import ConstantArrival, Profile, ProfileJourney, ProfileMetadata
    from .workloads import get_workload

    workload = get_workload("echo")
    journey = workload.journeys["echo"]
    return Profile(
        path=Path("<control stream>"),
        metadata=ProfileMetadata(name="control", description="the run's noise floor: zero-work echo calls"),
        workload=workload,
        services=(),
        settings={},
        seed=workload.seed_model(),
        arrival=ConstantArrival(process="constant", rate_per_s=rate_per_s),
        warmup_s=warmup_s,
        duration_s=duration_s,
        request_timeout_ms=CONTROL_TIMEOUT_MS,
        journeys=(ProfileJourney(name="echo", weight=1.0, params=journey.params_model(payload_bytes=CONTROL_PAYLOAD_BYTES),
                                 journey=journey),),
        slos=(),
    )


class ControlStream:
    """The control of one run: start it, :meth:`run` it beside the load, read :attr:`stats`.

    Use inside the run's event loop::

        control = ControlStream(profile.warmup_s, profile.duration_s)
        await control.start()
        try:
            await asyncio.gather(driver.run(), control.run())
        finally:
            await control.stop()
    """

    def __init__(self, warmup_s: float, duration_s: float, rate_per_s: float = CONTROL_RATE_PER_S):
        self.profile = control_profile(warmup_s, duration_s, rate_per_s)
        self.rate_per_s = rate_per_s
        self._server: grpc.aio.Server | None = None
        self._channel: grpc.aio.Channel | None = None
        self._driver: Driver | None = None

    async def start(self) -> None:
        """Start the in-process echo server and connect to it (raises ``OSError`` when no loopback port can be bound)."""
        self._server, port = await start_in_process(0)
        self._channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=harness_channel_options(None))  # as the load's
        await self._channel.channel_ready()
        self._driver = Driver(self.profile, {"echo": self._channel})

    @property
    def stats(self) -> RunStats:
        """The control's recorded stats (journey ``echo``, its RPC, the per-second series)."""
        assert self._driver is not None, "start() first"
        return self._driver.stats

    async def run(self) -> RunStats:
        """Drive the control for the load's warm-up + duration; returns :attr:`stats`."""
        assert self._driver is not None, "start() first"
        return await self._driver.run()

    async def stop(self) -> None:
        if self._channel is not None:
            await self._channel.close()
        if self._server is not None:
            await self._server.stop(0.5)


def control_summary(stats: RunStats, warmup_s: float, rate_per_s: float) -> dict[str, Any]:
    """The ``environment.control`` object of result.json (docs/results.md).

    ``latency``: the control's percentiles over the measured window (ms, as
    every latency summary); ``errors``: its non-OK calls by code;
    ``per_second``: one entry per second of the run (warm-up included, second
    ``i`` = ``[i, i + 1)`` s from the start, calls counted in the second they
    ended), ``{"second", "count", "p50_ms", "p99_ms", "max_ms"}``.
    """
    journey = stats.journeys.get("echo")
    series = stats.series.journey("echo")
    per_second = []
    for second in range(series.seconds):
        buckets = series.histogram(second)
        p50, p99, top = series_percentiles(buckets, [50, 99, 100])
        per_second.append({"second": second, "count": sum(buckets.values()),
                           "p50_ms": None if p50 is None else round(p50 / 1000, 3),
                           "p99_ms": None if p99 is None else round(p99 / 1000, 3),
                           "max_ms": None if top is None else round(top / 1000, 3)})
    return {
        "rate_per_s": rate_per_s,
        "method": "casemesh.bench.v1.EchoService/Echo",
        "server": "in the harness's own process and event loop (zero work)",
        "latency": latency_summary(journey.merged() if journey else RunStats().journey("echo").merged()),
        "errors": journey.errors() if journey else {},
        "ok": journey.count([OK]) if journey else 0,
        "warmup_s": warmup_s,
        "per_second": per_second,
    }


async def run_beside(load: Any, control: ControlStream | None, on_tick: Any = None) -> RunStats:
    """Run ``load.run(on_tick=...)`` and, when given, the control for the same time; returns the load's stats.

    The control must not outlive the load by much: both share warm-up and duration.
    """
    if control is None:
        return await load.run(on_tick=on_tick)
    stats, _ = await asyncio.gather(load.run(on_tick=on_tick), control.run())
    return stats
