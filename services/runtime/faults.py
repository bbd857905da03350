"""Server-side fault injection (Istio-style delay and abort), switched on by a schedule file the harness writes.

Off unless the process was started with ``CASEMESH_FAULTS`` naming a
schedule file (the embedded mesh of ``casemesh run`` sets it only for a run
with server-side faults: harness/faults/). Without it nothing here runs, and
the interceptor's per-call cost is one attribute check
(``ServerInterceptor.faults is not None``).

The schedule file is JSON written by the harness once the run's clock is
known (docs/services.md, "Fault injection")::

    {"version": 1, "faults": [
      {"name": "abort:idgen/LeaseIds", "service": "casemesh.idgen.v1.IdGeneratorService",
       "process": "idgen" | null,                # the topology name it targets: null, every process serving it
       "method": "LeaseIds" | null,              # null: every method of the service
       "start_unix_s": 1764640000.0, "end_unix_s": 1764640005.0 | null,
       "percent": 20.0,                          # share of the calls it hits, 0 < percent <= 100
       "abort": "UNAVAILABLE" | null,            # grpc.StatusCode name the call ends with
       "delay": null | {"distribution": "fixed", "ms": 50}
                     | {"distribution": "uniform", "min_ms": 10, "max_ms": 100}
                     | {"distribution": "exponential", "mean_ms": 50}
                     | {"distribution": "lognormal", "median_ms": 50, "sigma": 0.5}}]}

:class:`FaultWatch` looks at the file's modification time every
:data:`POLL_S` (so a process restarted mid-run picks the schedule up again),
and switches each fault of the gRPC services this process hosts on and off
at its wall-clock times (``loop.call_later``). Each switch is appended as a
JSON line to ``<schedule>.events.jsonl`` (``{"fault", "event": "start" |
"end", "at_unix_s", "pid", "service", "method"}``): the harness reads those
lines for each fault's actual active interval.

A call hit by a fault: a delay sleeps before the handler runs (the call holds
its admission slot meanwhile, as a slow server would; a deadline that expires
meanwhile ends it ``CANCELLED`` as any other); an abort ends it with the
fault's status code and the message ``fault injected by casemesh: NAME``
before the handler runs. When a delay and an abort are both active on a
method, the delay comes first. Both are counted in
``casemesh_fault_injected_total{grpc_service,grpc_method,fault}`` (``fault``
is ``delay`` or ``abort``), and the call in ``grpc_server_handled_total``
under the code it ended with.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import os
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from prometheus_client import REGISTRY, CollectorRegistry, Counter

log = logging.getLogger("casemesh.faults")

#: Names the schedule file; unset (the default, and in production): no fault injection at all.
FAULTS_ENV = "CASEMESH_FAULTS"
#: Seconds between two looks at the schedule file's modification time.
POLL_S = 0.2
SCHEDULE_VERSION = 1
#: Longest delay a fault may inject (s): a sample beyond it is cut to it.
MAX_DELAY_S = 60.0

DISTRIBUTIONS = ("fixed", "uniform", "exponential", "lognormal")
_DELAY_FIELDS = {"fixed": ("ms",), "uniform": ("min_ms", "max_ms"), "exponential": ("mean_ms",),
                 "lognormal": ("median_ms", "sigma")}


def events_path(schedule: str | Path) -> Path:
    """Where the runtime appends its fault switches: ``<schedule>.events.jsonl`` beside the schedule file."""
    schedule = Path(schedule)
    return schedule.with_name(schedule.name + ".events.jsonl")


@dataclass(frozen=True)
class Delay:
    """How long a delayed call waits: ``distribution`` and its parameters in ms (``sigma`` is unitless).

    ``fixed``: ``ms``; ``uniform``: between ``min_ms`` and ``max_ms``;
    ``exponential``: mean ``mean_ms``; ``lognormal``: median ``median_ms``,
    shape ``sigma`` (the standard deviation of the log). ``ValueError``
    naming the field for a missing or out-of-range parameter.
    """

    distribution: str
    params: tuple[tuple[str, float], ...]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Delay:
        distribution = data.get("distribution", "fixed")
        if distribution not in _DELAY_FIELDS:
            raise ValueError(f"distribution: unknown delay distribution {distribution!r}; known: {', '.join(DISTRIBUTIONS)}")
        fields = _DELAY_FIELDS[distribution]
        unknown = sorted(set(data) - {"distribution", *fields})
        if unknown:
            raise ValueError(f"{unknown[0]}: not a parameter of a {distribution} delay (it takes {', '.join(fields)})")
        params = []
        for name in fields:
            value = data.get(name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{name}: a {distribution} delay needs {name} as a number")
            if value < 0 or (name in ("mean_ms", "median_ms", "sigma") and value <= 0):
                raise ValueError(f"{name}: must be {'> 0' if name in ('mean_ms', 'median_ms', 'sigma') else '>= 0'}, not {value:g}")
            if name.endswith("ms") and value > MAX_DELAY_S * 1000:
                raise ValueError(f"{name}: at most {MAX_DELAY_S * 1000:g} ms, not {value:g}")
            params.append((name, float(value)))
        if distribution == "uniform" and params[0][1] > params[1][1]:
            raise ValueError(f"max_ms: must be at least min_ms ({params[0][1]:g}), not {params[1][1]:g}")
        return cls(distribution, tuple(params))

    def to_dict(self) -> dict[str, Any]:
        return {"distribution": self.distribution, **dict(self.params)}

    def sample_s(self, rng: random.Random) -> float:
        """One delay in seconds, at most :data:`MAX_DELAY_S`."""
        p = dict(self.params)
        if self.distribution == "fixed":
            ms = p["ms"]
        elif self.distribution == "uniform":
            ms = rng.uniform(p["min_ms"], p["max_ms"])
        elif self.distribution == "exponential":
            ms = rng.expovariate(1.0 / p["mean_ms"])
        else:
            ms = rng.lognormvariate(math.log(p["median_ms"]), p["sigma"])
        return min(ms / 1000.0, MAX_DELAY_S)

    def describe(self) -> str:
        """``50ms``, ``uniform(10ms,100ms)``, ``exponential(50ms)``, ``lognormal(50ms,0.5)``: the ``--fault`` spelling."""
        p = dict(self.params)
        if self.distribution == "fixed":
            return f"{p['ms']:g}ms"
        if self.distribution == "uniform":
            return f"uniform({p['min_ms']:g}ms,{p['max_ms']:g}ms)"
        if self.distribution == "exponential":
            return f"exponential({p['mean_ms']:g}ms)"
        return f"lognormal({p['median_ms']:g}ms,{p['sigma']:g})"


@dataclass(frozen=True)
class ServerFault:
    """One scheduled delay or abort on a gRPC service (all methods when ``method`` is ``None``); times in Unix seconds.

    ``process`` is the topology name the fault targets (``payments-psp-a``): of two processes serving the same gRPC
    service, only that one applies it. ``None`` (a schedule written without it): every process serving the service.
    """

    name: str
    service: str
    method: str | None
    start_unix_s: float
    end_unix_s: float | None
    percent: float
    abort: grpc.StatusCode | None = None
    delay: Delay | None = None
    process: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServerFault:
        """One entry of the schedule file; ``ValueError`` naming the field when it is malformed."""
        try:
            abort = data.get("abort")
            code = None
            if abort is not None:
                code = grpc.StatusCode[abort]
                if code is grpc.StatusCode.OK:
                    raise KeyError(abort)
            delay = Delay.from_dict(data["delay"]) if data.get("delay") is not None else None
            if (code is None) == (delay is None):
                raise ValueError("a fault has either abort or delay")
            percent = float(data.get("percent", 100.0))
            if not 0 < percent <= 100:
                raise ValueError(f"percent: must be in (0, 100], not {percent:g}")
            end = data.get("end_unix_s")
            return cls(name=str(data["name"]), service=str(data["service"]), method=data.get("method") or None,
                       start_unix_s=float(data["start_unix_s"]), end_unix_s=None if end is None else float(end),
                       percent=percent, abort=code, delay=delay, process=data.get("process") or None)
        except KeyError as missing:
            raise ValueError(f"missing or unknown value {missing}") from None

    @property
    def kind(self) -> str:
        return "abort" if self.abort is not None else "delay"


class FaultMetrics:
    """``casemesh_fault_injected_total{grpc_service,grpc_method,fault}``: calls a fault delayed or aborted."""

    def __init__(self, registry: CollectorRegistry = REGISTRY):
        self.injected = Counter("casemesh_fault_injected_total", "Calls that an injected fault delayed or aborted.",
                                ("grpc_service", "grpc_method", "fault"), registry=registry)


@functools.cache
def fault_metrics() -> FaultMetrics:
    """The process-wide fault counter, registered once."""
    return FaultMetrics()


class FaultInjector:
    """The faults active right now, by ``(service, method)`` (``method`` ``None``: the whole service).

    The interceptor calls :meth:`apply` only while the injector is set on it
    (``ServerInterceptor.faults``), i.e. while at least one fault is active.
    """

    def __init__(self, metrics: FaultMetrics | None = None, rng: random.Random | None = None):
        self.active: dict[tuple[str, str | None], list[ServerFault]] = {}
        self.metrics = metrics or fault_metrics()
        self.rng = rng or random.Random()

    def add(self, fault: ServerFault) -> None:
        self.active.setdefault((fault.service, fault.method), []).append(fault)

    def remove(self, fault: ServerFault) -> None:
        key = (fault.service, fault.method)
        faults = self.active.get(key, [])
        if fault in faults:
            faults.remove(fault)
        if not faults:
            self.active.pop(key, None)

    async def apply(self, service: str, method: str, context: grpc.aio.ServicerContext) -> None:
        """Delay and/or abort this call as the active faults on ``service``/``method`` say.

        An abort raises (``context.abort``) with the fault's code; returns otherwise.
        """
        faults = [*self.active.get((service, method), ()), *self.active.get((service, None), ())]
        aborting = None
        for fault in faults:  # delays first, each drawn on its own; then the first abort that hits
            if self.rng.random() * 100.0 >= fault.percent:
                continue
            if fault.delay is not None:
                self.metrics.injected.labels(service, method, "delay").inc()
                await asyncio.sleep(fault.delay.sample_s(self.rng))
            elif aborting is None:
                aborting = fault
        if aborting is not None:
            self.metrics.injected.labels(service, method, "abort").inc()
            await context.abort(aborting.abort, f"fault injected by casemesh: {aborting.name}")


def load_schedule(path: Path) -> list[ServerFault]:
    """The faults of a schedule file; ``ValueError`` naming the entry and field when it is malformed."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("version") != SCHEDULE_VERSION or not isinstance(data.get("faults"), list):
        raise ValueError(f"not a version {SCHEDULE_VERSION} fault schedule ({{\"version\": 1, \"faults\": [...]}})")
    faults = []
    for i, entry in enumerate(data["faults"]):
        if not isinstance(entry, dict):
            raise ValueError(f"faults[{i}]: not a mapping")
        try:
            faults.append(ServerFault.from_dict(entry))
        except ValueError as error:
            raise ValueError(f"faults[{i}]: {error}") from None
    return faults


class FaultWatch:
    """Follows a schedule file and switches its faults on ``interceptor`` (those of ``services``, full gRPC names,
    that target one of ``names``, the topology names this process hosts, or no process in particular).

    ``interceptor`` is anything with a ``faults`` attribute (the
    :class:`~.interceptors.server.ServerInterceptor`): it is set to the
    injector while a fault is active and back to ``None`` when none is.
    Use :meth:`start` and :meth:`stop` inside the running loop.
    """

    def __init__(self, interceptor: Any, services: Iterable[str], schedule: Path, *, poll_s: float = POLL_S,
                 injector: FaultInjector | None = None, names: Iterable[str] = ()):
        self.interceptor = interceptor
        self.services = frozenset(services)
        self.names = frozenset(names)
        self.schedule = Path(schedule)
        self.events = events_path(schedule)
        self.poll_s = poll_s
        self.injector = injector or FaultInjector()
        self._seen: tuple[int, int] | None = None
        self._handles: list[asyncio.TimerHandle] = []
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._load()
        self._task = asyncio.get_running_loop().create_task(self._follow(), name="casemesh-fault-watch")

    async def stop(self) -> None:
        """Stop following the file and switch every active fault off (logged as ``end`` events)."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._clear()

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            self._load()

    def _load(self) -> None:
        try:
            stat = self.schedule.stat()
        except OSError:
            return  # not written yet: no faults
        seen = (stat.st_mtime_ns, stat.st_size)
        if seen == self._seen:
            return
        self._seen = seen
        try:
            faults = load_schedule(self.schedule)
        except (OSError, ValueError) as error:  # the harness writes it atomically: a bad one is a bug, not a race
            log.warning("fault schedule %s ignored: %s", self.schedule, error)
            return
        self._clear()
        loop = asyncio.get_running_loop()
        now = time.time()
        mine = [f for f in faults if f.service in self.services and (f.process is None or f.process in self.names)]
        for fault in mine:
            if fault.end_unix_s is not None and fault.end_unix_s <= now:
                continue
            self._handles.append(loop.call_later(max(fault.start_unix_s - now, 0.0), self._switch, fault, True))
            if fault.end_unix_s is not None:
                self._handles.append(loop.call_later(fault.end_unix_s - now, self._switch, fault, False))
        if mine:
            log.info("fault schedule %s: %d fault(s) on %s", self.schedule, len(mine), ", ".join(sorted({f.service for f in mine})))

    def _clear(self) -> None:
        for handle in self._handles:
            handle.cancel()
        self._handles.clear()
        for faults in list(self.injector.active.values()):
            for fault in list(faults):
                self._switch(fault, False)

    def _switch(self, fault: ServerFault, on: bool) -> None:
        if on:
            self.injector.add(fault)
        else:
            before = self.injector.active.get((fault.service, fault.method), ())
            if fault not in before:
                return
            self.injector.remove(fault)
        self.interceptor.faults = self.injector if self.injector.active else None
        log.warning("fault %s %s on %s/%s", fault.name, "active" if on else "ended", fault.service, fault.method or "*")
        event = {"fault": fault.name, "event": "start" if on else "end", "at_unix_s": round(time.time(), 4),
                 "pid": os.getpid(), "service": fault.service, "method": fault.method}
        try:
            with self.events.open("a", encoding="utf-8") as out:  # one short line per write: appends do not interleave
                out.write(json.dumps(event) + "\n")
        except OSError as error:
            log.warning("fault event not written to %s: %s", self.events, error)


def watch_from_env(interceptor: Any, services: Iterable[str], names: Iterable[str] = ()) -> FaultWatch | None:
    """A started :class:`FaultWatch` of the file ``$CASEMESH_FAULTS`` names, or ``None`` (the default) when it is unset.

    ``services``: the full gRPC service names this process serves; ``names``: its topology names."""
    path = os.environ.get(FAULTS_ENV)
    if not path:
        return None
    watch = FaultWatch(interceptor, services, Path(path), names=names)
    watch.start()
    return watch
