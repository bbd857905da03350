"""Traffic profiles: which workload to drive, against which services, how hard, for how long, judged by which SLOs.

A profile is one YAML file (format: docs/profiles.md). :func:`load_profile`
reads a path or the name of a shipped profile (``harness/profiles/NAME.yaml``),
validates it against :class:`ProfileDocument`, resolves the workload, seed
and journey parameters and loads the SLO files it lists, and returns a
:class:`Profile`. Every problem is a :class:`~casemesh.harness.errors.ConfigError`
naming the file, line and field. :func:`with_overrides` applies the
command-line overrides (``--duration``, ``--warmup``, ``--rate-scale``).
"""

from __future__ import annotations

import os
import random
from collections.abc import Collection
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from . import arrivals
from .arrivals import FieldError, RateCurve, RateShape, Schedule, SinusoidRate, Spacing, TimestampFormat, Trace, shaped
from .errors import ConfigError
from .faults.model import Fault, FaultEntry, check_plan
from .faults.model import relocate as _fault_relocated
from .faults.plan import faults_from_profile
from .implementations import IMPL_KEY, check_impl
from .call_policy import HarnessRetry, ProfileTopology
from .recovery import resolve as resolve_recovery
from .slo import Slo, load_slos
from casemesh.services.catalog import SERVICES

from .workloads import get_workload
from .workloads.base import Journey, Params, Workload, scale_rate_fields
from .yaml_lines import Document, Problem, dotted, load_document, problems_from

#: Where shipped profiles live; ``NAME.yaml`` is profile ``NAME``, ``*.slo.yaml`` are their SLO files.
PROFILES_DIR = Path(__file__).parent / "profiles"
SLO_FILE_SUFFIX = ".slo.yaml"
#: Topology names of the services the harness can start (the runtime's catalog).
KNOWN_SERVICES: frozenset[str] = frozenset(SERVICES)

#: Highest arrival rate a profile may ask for, arrivals/s (at any moment, for rates that vary).
MAX_RATE_PER_S = 100_000
RatePerS = Annotated[float, Field(gt=0, le=MAX_RATE_PER_S, allow_inf_nan=False)]
#: A rate that may be 0 (a pause, a ramp's start).
RateOrZero = Annotated[float, Field(ge=0, le=MAX_RATE_PER_S, allow_inf_nan=False)]
WarmupS = Annotated[float, Field(ge=0, allow_inf_nan=False)]
DurationS = Annotated[float, Field(gt=0, le=86_400, allow_inf_nan=False)]
TimeoutMs = Annotated[float, Field(gt=0, allow_inf_nan=False)]
RateScale = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class _Strict(BaseModel):
    """Profile sections: unknown keys are errors (a typo must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ProfileMetadata(_Strict):
    """``metadata``: ``name`` identifies the profile in results; the rest is prose for readers."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9-]+$")]
    description: str | None = None
    source: str | None = None
    scaling: str | None = None


class _ArrivalBase(_Strict):
    """What every arrival model offers the loader, the driver and the report.

    Times are seconds from the start of the run (warm-up included); rates are
    arrivals per second.
    """

    #: Fields multiplied by ``--rate-scale`` (top-level rate fields; processes with nested rates override :meth:`_scale`).
    _rate_fields: ClassVar[tuple[str, ...]] = ()

    def problems(self, run_s: float | None = None) -> list[Problem]:
        """Rules that involve several fields (locations relative to ``arrival``); ``run_s`` (warm-up + duration) when known."""
        return []

    def with_files(self, directory: Path, shown_directory: Path) -> Self:
        """This model with the files it names read (relative to ``directory``, shown relative to ``shown_directory``).

        Processes without files return themselves. Raises
        ``FileNotFoundError``, :class:`~casemesh.harness.arrivals.FieldError` or
        ``ConfigError`` (naming the CSV file and line).
        """
        return self

    def _scale(self, data: dict[str, Any], factor: float) -> None:
        for name in self._rate_fields:
            data[name] *= factor

    def scaled(self, factor: float) -> Self:
        """A copy with every rate multiplied by ``factor`` (``--rate-scale``); ``ValidationError`` when a value leaves its range."""
        data = self.model_dump()
        self._scale(data, factor)
        scaled = self.model_validate(data)
        for name in self.__private_attributes__:
            setattr(scaled, name, getattr(self, name))
        return scaled

    def schedule(self, rng: random.Random, run_s: float) -> Schedule:
        """The arrivals of a run of ``run_s`` seconds (warm-up + duration), drawn with ``rng``."""
        raise NotImplementedError

    def offered_rate_per_s(self, run_s: float, start_s: float, end_s: float) -> float:
        """The mean intended arrival rate over ``[start_s, end_s)`` of a run of ``run_s`` seconds (expected value for random spacings)."""
        raise NotImplementedError

    def describe(self) -> str:
        """One line for the terminal: the process and its rates."""
        raise NotImplementedError


class _SteadyArrival(_ArrivalBase):
    """An arrival process with one mean rate, ``rate_per_s`` requests per second."""

    rate_per_s: RatePerS
    _rate_fields: ClassVar[tuple[str, ...]] = ("rate_per_s",)

    def offered_rate_per_s(self, run_s: float, start_s: float, end_s: float) -> float:
        return self.rate_per_s

    def describe(self) -> str:
        return f"{self.process} arrivals at {self.rate_per_s:,g}/s"


class ConstantArrival(_SteadyArrival):
    """Evenly spaced arrivals: one request every ``1 / rate_per_s`` seconds."""

    process: Literal["constant"]

    def schedule(self, rng: random.Random, run_s: float) -> Schedule:
        return Schedule(arrivals.constant(self.rate_per_s))


class PoissonArrival(_SteadyArrival):
    """Independent arrivals: exponentially distributed gaps with mean ``1 / rate_per_s`` seconds."""

    process: Literal["poisson"]

    def schedule(self, rng: random.Random, run_s: float) -> Schedule:
        return Schedule(arrivals.poisson(self.rate_per_s, rng))


class _ShapedArrival(_ArrivalBase):
    """A rate that varies over the run, λ(t); ``spacing`` chooses non-homogeneous Poisson or deterministic arrivals.

    Both spacings invert the cumulative rate (time rescaling; method and
    sources in :mod:`casemesh.harness.arrivals.shaped`).
    """

    spacing: Spacing = "poisson"

    def shape(self, run_s: float) -> RateShape:
        """The rate λ(t) over a run of ``run_s`` seconds."""
        raise NotImplementedError

    def schedule(self, rng: random.Random, run_s: float) -> Schedule:
        return Schedule(arrivals.rate_shaped(self.shape(run_s), self.spacing, rng))

    def offered_rate_per_s(self, run_s: float, start_s: float, end_s: float) -> float:
        shape = self.shape(run_s)
        if end_s <= start_s:
            return shape.rate(start_s)
        return (shape.cumulative(end_s) - shape.cumulative(start_s)) / (end_s - start_s)

    def _spaced(self, text: str) -> str:
        return f"{self.process} arrivals: {text} ({self.spacing} spacing)"


class RampArrival(_ShapedArrival):
    """A rate rising (or falling) linearly from ``start_rate_per_s`` at the run's start to ``end_rate_per_s`` at its end.

    "The run" is warm-up + duration, so ``--duration`` changes the slope.
    """

    process: Literal["ramp"]
    start_rate_per_s: RateOrZero
    end_rate_per_s: RateOrZero
    _rate_fields: ClassVar[tuple[str, ...]] = ("start_rate_per_s", "end_rate_per_s")

    def problems(self, run_s: float | None = None) -> list[Problem]:
        if self.start_rate_per_s == self.end_rate_per_s == 0:
            return [Problem(("end_rate_per_s",), "start_rate_per_s and end_rate_per_s are both 0: the ramp would send nothing")]
        return []

    def shape(self, run_s: float) -> RateShape:
        return shaped.ramp(self.start_rate_per_s, self.end_rate_per_s, run_s)

    def describe(self) -> str:
        return self._spaced(f"{self.start_rate_per_s:,g}/s rising linearly to {self.end_rate_per_s:,g}/s at the run's end")


class Step(_Strict):
    """One step of ``steps``: ``rate_per_s`` (≥ 0; 0 is a pause) for ``duration_s`` seconds."""

    rate_per_s: RateOrZero
    duration_s: Annotated[float, Field(gt=0, le=86_400)]


class StepsArrival(_ShapedArrival):
    """Constant rates one after the other from the run's start; the last step's rate holds until the run ends."""

    process: Literal["steps"]
    steps: Annotated[list[Step], Field(min_length=1)]

    def _scale(self, data: dict[str, Any], factor: float) -> None:
        for step in data["steps"]:
            step["rate_per_s"] *= factor

    def problems(self, run_s: float | None = None) -> list[Problem]:
        if all(step.rate_per_s == 0 for step in self.steps):
            return [Problem(("steps",), "every step has rate_per_s 0: the steps would send nothing")]
        return []

    def shape(self, run_s: float) -> RateShape:
        return shaped.steps([(step.rate_per_s, step.duration_s) for step in self.steps])

    def describe(self) -> str:
        return self._spaced(", ".join(f"{s.rate_per_s:,g}/s for {s.duration_s:g} s" for s in self.steps) + ", then the last rate")


class SpikeArrival(_ShapedArrival):
    """``baseline_rate_per_s``, except ``rate_per_s`` (not added to the baseline) from ``at_s`` for ``duration_s`` seconds."""

    process: Literal["spike"]
    baseline_rate_per_s: RateOrZero
    at_s: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    duration_s: Annotated[float, Field(gt=0, le=86_400)]
    rate_per_s: RatePerS
    _rate_fields: ClassVar[tuple[str, ...]] = ("baseline_rate_per_s", "rate_per_s")

    def problems(self, run_s: float | None = None) -> list[Problem]:
        if run_s is not None and self.at_s >= run_s:
            return [Problem(("at_s",), f"the spike would start after the run ends at {run_s:g} s (warmup_s + duration_s)")]
        return []

    def shape(self, run_s: float) -> RateShape:
        return shaped.spike(self.baseline_rate_per_s, self.at_s, self.duration_s, self.rate_per_s)

    def describe(self) -> str:
        return self._spaced(f"{self.baseline_rate_per_s:,g}/s with a spike to {self.rate_per_s:,g}/s "
                            f"from {self.at_s:g} s to {self.at_s + self.duration_s:g} s")


class DiurnalArrival(_ShapedArrival):
    """A daily cycle compressed into ``period_s``: λ(t) = mean + amplitude · sin(2π (t / period_s + phase))."""

    process: Literal["diurnal"]
    mean_rate_per_s: RatePerS
    amplitude_per_s: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    period_s: Annotated[float, Field(gt=0, le=31_536_000, allow_inf_nan=False)]
    phase: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)] = 0.0
    _rate_fields: ClassVar[tuple[str, ...]] = ("mean_rate_per_s", "amplitude_per_s")

    def problems(self, run_s: float | None = None) -> list[Problem]:
        if self.amplitude_per_s > self.mean_rate_per_s:
            return [Problem(("amplitude_per_s",), f"must be at most mean_rate_per_s ({self.mean_rate_per_s:g}): the rate cannot go below 0")]
        if self.mean_rate_per_s + self.amplitude_per_s > MAX_RATE_PER_S:
            return [Problem(("amplitude_per_s",), f"the peak rate mean_rate_per_s + amplitude_per_s = "
                                                 f"{self.mean_rate_per_s + self.amplitude_per_s:g} must be at most {MAX_RATE_PER_S}")]
        return []

    def shape(self, run_s: float) -> RateShape:
        return SinusoidRate(self.mean_rate_per_s, self.amplitude_per_s, self.period_s, self.phase)

    def describe(self) -> str:
        return self._spaced(f"{self.mean_rate_per_s:,g} ± {self.amplitude_per_s:,g}/s over a {self.period_s:g} s period, "
                            f"starting at phase {self.phase:g}")


class RateCurveArrival(_ShapedArrival):
    """The rate read from a CSV of ``time_s,rate_per_s`` points (``file``, relative to the profile), times ``scale``.

    ``interpolation`` ``linear`` (default) joins the points with straight
    lines, ``step`` holds each point's rate until the next; the last rate
    holds until the run ends.
    """

    process: Literal["rate_curve"]
    file: Annotated[str, Field(min_length=1)]
    interpolation: Literal["linear", "step"] = "linear"
    scale: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 1.0
    _rate_fields: ClassVar[tuple[str, ...]] = ("scale",)
    _curve: RateCurve | None = PrivateAttr(default=None)
    _shown: str = PrivateAttr(default="")

    def with_files(self, directory: Path, shown_directory: Path) -> Self:
        loaded = self.model_copy()
        loaded._shown = str(shown_directory / self.file)
        loaded._curve = arrivals.read_rate_curve(directory / self.file, loaded._shown)
        return loaded

    def problems(self, run_s: float | None = None) -> list[Problem]:
        curve = self._curve
        if curve is not None and curve.peak_rate_per_s * self.scale > MAX_RATE_PER_S:
            return [Problem(("scale",), f"the curve's peak rate {curve.peak_rate_per_s:g}/s ({self._shown}:{curve.peak_line}) "
                                       f"times scale {self.scale:g} must be at most {MAX_RATE_PER_S}/s")]
        return []

    def shape(self, run_s: float) -> RateShape:
        if self._curve is None:
            raise RuntimeError("rate curve not read: load the profile with load_profile")
        return shaped.curve([(t, rate * self.scale) for t, rate in self._curve.points], self.interpolation)

    def describe(self) -> str:
        peak = f", peak {self._curve.peak_rate_per_s * self.scale:,g}/s" if self._curve else ""
        return self._spaced(f"{self.interpolation} curve of {self.file} times {self.scale:g}{peak}")


class TraceArrival(_ArrivalBase):
    """Recorded arrival timestamps replayed from a CSV (``file``, relative to the profile), windowed and sped up.

    Arrival ``i`` is sent ``(t_i - t_first) / speed`` seconds into the run,
    ``t_first`` being the first timestamp in the window ``[start_s, end_s)``
    (seconds after the file's earliest timestamp). ``size_column`` hands a
    size per arrival to journeys. Format and rules: :mod:`casemesh.harness.arrivals.trace`.
    """

    process: Literal["trace"]
    file: Annotated[str, Field(min_length=1)]
    column: Annotated[str, Field(min_length=1)] | None = None
    format: TimestampFormat
    start_s: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    end_s: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    speed: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 1.0
    size_column: Annotated[str, Field(min_length=1)] | None = None
    _rate_fields: ClassVar[tuple[str, ...]] = ("speed",)
    _trace: Trace | None = PrivateAttr(default=None)
    _shown: str = PrivateAttr(default="")

    def problems(self, run_s: float | None = None) -> list[Problem]:
        if self.end_s is not None and self.end_s <= self.start_s:
            return [Problem(("end_s",), f"must be greater than start_s ({self.start_s:g})")]
        return []

    def with_files(self, directory: Path, shown_directory: Path) -> Self:
        loaded = self.model_copy()
        loaded._shown = str(shown_directory / self.file)
        loaded._trace = arrivals.read_trace(directory / self.file, loaded._shown, fmt=self.format, column=self.column,
                                            size_column=self.size_column, start_s=self.start_s, end_s=self.end_s)
        return loaded

    @property
    def trace(self) -> Trace:
        """The window's arrivals at speed 1 (read by :func:`load_profile`)."""
        if self._trace is None:
            raise RuntimeError("trace not read: load the profile with load_profile")
        return self._trace

    def schedule(self, rng: random.Random, run_s: float) -> Schedule:
        return self.trace.schedule(self.speed)

    def offered_rate_per_s(self, run_s: float, start_s: float, end_s: float) -> float:
        if end_s <= start_s:
            return 0.0
        return self.trace.count_between(self.speed, start_s, end_s) / (end_s - start_s)

    def describe(self) -> str:
        trace = self.trace
        length_s = trace.span_s / self.speed
        mean = f", mean {len(trace) / length_s:,.0f}/s" if length_s > 0 else ""
        return (f"trace arrivals from {self.file} at speed {self.speed:g}: {len(trace):,} arrivals over {length_s:,.1f} s{mean}"
                + (f", sizes from {self.size_column}" if self.size_column else ""))


#: Every arrival model; ``process`` tells them apart. Add new processes here.
ArrivalModel = (ConstantArrival | PoissonArrival | RampArrival | StepsArrival | SpikeArrival | DiurnalArrival
                | RateCurveArrival | TraceArrival)
Arrival = Annotated[ArrivalModel, Field(discriminator="process")]
ARRIVAL_PROCESSES: tuple[str, ...] = tuple(get_args(m.model_fields["process"].annotation)[0] for m in get_args(ArrivalModel))


class JourneyEntry(_Strict):
    """One entry of ``journeys``: a journey of the workload, its relative weight and raw parameters."""

    name: str
    weight: Annotated[float, Field(gt=0)]
    params: dict[str, Any] = {}


class ProfileDocument(_Strict):
    """A profile file as written; ``seed`` and journey ``params`` are checked against the workload afterwards."""

    api_version: Literal["casemesh.dev/v1"] = Field(alias="apiVersion")
    kind: Literal["Profile"]
    metadata: ProfileMetadata
    workload: str
    services: list[str] = []
    settings: dict[str, dict[str, Any]] = {}
    seed: dict[str, Any] = {}
    arrival: Arrival
    warmup_s: WarmupS = 0.0
    duration_s: DurationS
    request_timeout_ms: TimeoutMs = 1000.0
    journeys: Annotated[list[JourneyEntry], Field(min_length=1)]
    slos: list[str] = []
    #: ``auto``: choose the rate on the machine at hand among ``rate_scales`` (harness/planning.py); absent: the rate as written.
    rate_scale: Literal["auto"] | None = None
    #: The scales of the arrival rate this profile documents for ``rate_scale: auto``, tried highest first.
    rate_scales: Annotated[list[RateScale], Field(min_length=1, max_length=16)] | None = None
    #: The ``calls:`` and ``server:`` topology sections of the mesh ``casemesh run`` starts (harness/call_policy.py).
    topology: ProfileTopology | None = None
    #: A gRPC retry policy on the harness's own channels (harness/call_policy.py); absent: the harness never retries.
    harness_retry: HarnessRetry | None = None
    #: Faults injected during the measured window (harness/faults/, docs/profiles.md).
    faults: list[FaultEntry] = []


@dataclass(frozen=True)
class ProfileJourney:
    """A journey of the profile: picked with probability ``weight / sum of weights`` per arrival."""

    name: str
    weight: float
    params: Params
    journey: Journey


@dataclass(frozen=True)
class Profile:
    """A validated profile, ready for the driver.

    ``path`` is the file it came from; ``services`` the topology names to
    start; ``seed`` an instance of ``workload.seed_model``; ``arrival`` a
    :data:`ArrivalModel` (``.process`` names it; ``.schedule(rng, run_s)``
    gives the driver its arrivals, ``.offered_rate_per_s(...)`` the mean
    intended rate in arrivals/s, with any CSV it names already read);
    ``warmup_s`` and ``duration_s`` in seconds (warm-up is not measured,
    duration is the measured window after it); ``request_timeout_ms`` the
    deadline of each RPC in ms; ``slos`` from every listed SLO file, in order;
    ``settings`` the services' settings (``{service: {key: value}}``, checked
    against each service's settings model) for the topology of the services
    ``casemesh run`` starts.
    """

    path: Path
    metadata: ProfileMetadata
    workload: Workload
    services: tuple[str, ...]
    settings: dict[str, dict[str, Any]]
    seed: Params
    arrival: ArrivalModel
    warmup_s: float
    duration_s: float
    request_timeout_ms: float
    journeys: tuple[ProfileJourney, ...]
    slos: tuple[Slo, ...]
    #: ``rate_scale: auto``: the scales to choose among on this machine (highest first); ``None``: the rate as written.
    rate_scales: tuple[float, ...] | None = None
    #: ``topology:`` (calls and server sections for the embedded mesh), ``None``: the topology's defaults.
    topology: ProfileTopology | None = None
    #: ``harness_retry:``, ``None``: the harness does not retry.
    harness_retry: HarnessRetry | None = None
    #: ``faults:``, resolved against ``services`` (harness/faults/model.py); ``--fault`` adds to them at run time.
    faults: tuple[Fault, ...] = ()
    #: The implementation of each service the embedded mesh starts, when not Python (``{"idgen": "node"}``; ``--set idgen.impl=node``).
    impls: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        return self.metadata.name


def shipped_profiles() -> list[str]:
    """Names of the profiles shipped in ``harness/profiles/``, sorted."""
    return sorted(p.name.removesuffix(".yaml") for p in PROFILES_DIR.glob("*.yaml") if not p.name.endswith(SLO_FILE_SUFFIX))


def load_profile(name_or_path: str | Path, *, known_services: Collection[str] | None = None) -> Profile:
    """The profile at a path (a ``Path``, or a string ending in ``.yaml``/``.yml`` or containing ``/``) or shipped under a name.

    ``known_services`` (default :data:`KNOWN_SERVICES`) are the service names
    ``services`` may list. Raises ``ConfigError`` naming every problem of the
    first stage that finds any (the file's structure and values; then
    workload, services, settings, seed, journeys and arrival rules together;
    then the CSV and SLO files it names): the first in the error itself, the
    others in its ``more``.
    """
    path, shown = _locate(name_or_path)
    document = load_document(path, shown)
    if document.data is None:
        raise ConfigError("the profile is empty", file=shown)
    try:
        parsed = ProfileDocument.model_validate(document.data)
    except ValidationError as error:
        raise document.error(problems_from(error, _arrival_relocated, model=ProfileDocument)) from None
    problems: list[Problem] = []
    workload = _workload(parsed.workload, problems)
    services = _services(parsed, workload, KNOWN_SERVICES if known_services is None else known_services, problems)
    settings = _settings(parsed, problems)
    seed = _params(workload.seed_model, parsed.seed, ("seed",), problems) if workload else None
    journeys = _journeys(parsed, workload, problems)
    problems.extend(Problem(("arrival", *p.loc), p.message) for p in parsed.arrival.problems(parsed.warmup_s + parsed.duration_s))
    if parsed.topology is not None:
        problems.extend(Problem(("topology", *p.loc), p.message) for p in parsed.topology.problems(services))
    faults = faults_from_profile(parsed.faults, services, document, problems)
    if problems or workload is None or seed is None:
        raise document.error(problems)
    timing = check_plan(faults, parsed.duration_s)
    if timing:
        raise ConfigError(timing[0].message, file=timing[0].file, line=timing[0].line, field=timing[0].field, more=timing[1:])
    arrival = _arrival_files(parsed.arrival, document, path, shown)
    return Profile(
        path=path,
        metadata=parsed.metadata,
        workload=workload,
        services=services,
        settings=settings,
        seed=seed,
        arrival=arrival,
        warmup_s=parsed.warmup_s,
        duration_s=parsed.duration_s,
        request_timeout_ms=parsed.request_timeout_ms,
        journeys=journeys,
        slos=_recovery_events(_slos(parsed, document, path, shown, workload, [*(j.name for j in journeys), *workload.measures]),
                              parsed, document, faults),
        rate_scales=_rate_scales(parsed),
        topology=parsed.topology,
        harness_retry=parsed.harness_retry,
        faults=faults,
    )


def _recovery_events(slos: tuple[Slo, ...], parsed: ProfileDocument, document: Document,
                     faults: tuple[Fault, ...]) -> tuple[Slo, ...]:
    """The SLOs with each recovery SLO's event resolved (the end of the profile's spike or of one of its faults) and its timing checked."""
    resolved: list[Slo] = []
    for slo in slos:
        if slo.recovery is not None:
            recovery, problem = resolve_recovery(slo.recovery, parsed.arrival, parsed.warmup_s, parsed.duration_s, faults)
            if problem is not None:
                raise document.error([Problem(("slos",), f"SLO {slo.name}: {problem}")])
            slo = replace(slo, recovery=recovery)
        resolved.append(slo)
    return tuple(resolved)


def _rate_scales(parsed: ProfileDocument) -> tuple[float, ...] | None:
    """The candidates of ``rate_scale: auto`` (highest first), ``None`` without it."""
    from .planning import DEFAULT_RATE_SCALES

    if parsed.rate_scale != "auto":
        return None
    return tuple(sorted(set(parsed.rate_scales or DEFAULT_RATE_SCALES), reverse=True))


def with_overrides(
    profile: Profile,
    *,
    duration_s: float | None = None,
    warmup_s: float | None = None,
    rate_scale: float | None = None,
) -> Profile:
    """``profile`` with command-line overrides applied; ``None`` keeps the profile's value.

    ``rate_scale`` multiplies every arrival rate (2 doubles it): ``rate_per_s``
    of ``constant`` and ``poisson``; both ends of a ``ramp``; every step's
    rate; a ``spike``'s baseline and spike rates; a ``diurnal`` cycle's mean
    and amplitude (its shape and period stay); a ``rate_curve``'s ``scale``;
    a ``trace``'s ``speed`` (its arrivals come ``rate_scale`` times as fast, so
    its window is also that much shorter); and the seed's rate-sized fields
    (the seed model's ``RATE_FIELDS``: the ads budgets' page views a second). Times (``duration_s`` of steps,
    ``at_s``, ``period_s``) do not change. Invalid values raise
    ``ConfigError`` with ``file=None`` and the flag as field (``--duration``,
    ``--warmup``, ``--rate-scale``).
    """
    changes: dict[str, Any] = {}
    if duration_s is not None:
        changes["duration_s"] = _flag_value(DurationS, duration_s, "--duration")
    if warmup_s is not None:
        changes["warmup_s"] = _flag_value(WarmupS, warmup_s, "--warmup")
    if rate_scale is not None:
        factor = _flag_value(RateScale, rate_scale, "--rate-scale")
        try:
            arrival = profile.arrival.scaled(factor)
        except ValidationError as error:
            problem = problems_from(error)[0]
            raise ConfigError(f"arrival.{dotted(problem.loc)} scaled by {factor:g}: {problem.message}", field="--rate-scale") from None
        for problem in arrival.problems()[:1]:
            raise ConfigError(f"arrival.{dotted(problem.loc)} scaled by {factor:g}: {problem.message}", field="--rate-scale")
        changes["arrival"] = arrival
        changes["seed"] = scale_rate_fields(profile.seed, factor)  # data sized for the rate (Params.RATE_FIELDS)
        changes["rate_scales"] = None  # an explicit scale wins over the profile's ``rate_scale: auto``
    return replace(profile, **changes)


def _flag_value(kind: Any, value: float, flag: str) -> float:
    try:
        return TypeAdapter(kind).validate_python(value)
    except ValidationError as error:
        raise ConfigError(problems_from(error)[0].message, field=flag) from None


def _locate(name_or_path: str | Path) -> tuple[Path, str]:
    """The file to read and how to show it in errors."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith((".yaml", ".yml")) or "/" in text or os.sep in text:
        return Path(name_or_path), text
    shipped = shipped_profiles()
    if text not in shipped:
        raise ConfigError(f"unknown profile {text!r} (neither a shipped profile nor a .yaml path); shipped: {', '.join(shipped)}")
    path = PROFILES_DIR / f"{text}.yaml"
    return path, str(path)


def _arrival_relocated(error: ErrorDetails) -> Problem:
    """A pydantic error as a problem at its YAML path, with the arrival union's tag taken out.

    Pydantic reports a field of a tagged union member under the tag
    (``arrival.poisson.rate_per_s``); the YAML path is ``arrival.rate_per_s``.
    """
    fault = _fault_relocated(error)
    if fault is not None:
        return Problem(tuple(fault["loc"]), fault["msg"])
    loc, message = tuple(error["loc"]), error["msg"]
    if loc[:1] == ("arrival",):
        if error["type"] == "union_tag_not_found":
            loc, message = ("arrival", "process"), f"Field required (one of: {', '.join(ARRIVAL_PROCESSES)})"
        elif error["type"] == "union_tag_invalid":
            loc, message = ("arrival", "process"), f"unknown arrival process {error['ctx']['tag']!r}; known: {', '.join(ARRIVAL_PROCESSES)}"
        elif len(loc) > 1 and loc[1] in ARRIVAL_PROCESSES:
            loc = ("arrival", *loc[2:])
    return Problem(loc, message)


def _arrival_files(arrival: ArrivalModel, document: Document, path: Path, shown: str) -> ArrivalModel:
    """``arrival`` with the CSV file it names read (``rate_curve``, ``trace``; relative to the profile's directory).

    A missing file or a problem that belongs to a field (unknown column, empty
    window, a rate above the limit) is reported at that field of the profile;
    malformed content names the CSV file and line.
    """
    try:
        loaded = arrival.with_files(path.parent, Path(shown).parent)
    except FileNotFoundError:
        raise document.error([Problem(("arrival", "file"), f"file not found: {Path(shown).parent / arrival.file}")]) from None
    except FieldError as error:
        raise document.error([Problem(("arrival", error.field), error.message)]) from None
    problems = loaded.problems()
    if problems:
        raise document.error([Problem(("arrival", *p.loc), p.message) for p in problems])
    return loaded


def _workload(name: str, problems: list[Problem]) -> Workload | None:
    try:
        return get_workload(name)
    except KeyError as error:
        problems.append(Problem(("workload",), error.args[0]))
        return None


def _params(model: type[Params], data: dict[str, Any], loc: tuple[str | int, ...], problems: list[Problem]) -> Params | None:
    """``data`` validated by ``model``, or ``None`` after adding its errors (under ``loc``) to ``problems``."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems.extend(Problem((*loc, *p.loc), p.message) for p in problems_from(error, model=model))
        return None


def _services(parsed: ProfileDocument, workload: Workload | None, known: Collection[str], problems: list[Problem]) -> tuple[str, ...]:
    """``services``, checked: known, unique, and covering every service the workload calls.

    An empty list makes an external-only profile: ``casemesh run`` then needs ``--target``.
    """
    for i, name in enumerate(parsed.services):
        if name in parsed.services[:i]:
            problems.append(Problem(("services", i), f"duplicate service {name!r}"))
        elif name not in known:
            problems.append(Problem(("services", i), f"unknown service {name!r}; known: {', '.join(sorted(known))}"))
    missing = [s for s in workload.services if s not in parsed.services] if workload and parsed.services else []
    if missing:
        problems.append(Problem(("services",), f"must include {', '.join(missing)}: workload {workload.name} calls {'it' if len(missing) == 1 else 'them'}"))
    return tuple(parsed.services)


def _settings(parsed: ProfileDocument, problems: list[Problem]) -> dict[str, dict[str, Any]]:
    """``settings``, each checked against its service's settings model (so a bad value fails before anything starts).

    Keys must be services the profile starts; the values stay plain mappings
    (written into the topology file), with the model's checks applied.
    """
    checked: dict[str, dict[str, Any]] = {}
    for name, values in parsed.settings.items():
        definition = SERVICES.get(name)
        if name not in parsed.services or definition is None:
            problems.append(Problem(("settings", name), f"{name!r} is not a service this profile starts ({', '.join(parsed.services) or 'none'})"))
            continue
        if definition.settings_model is None:
            problems.append(Problem(("settings", name), f"service {name} has no settings"))
            continue
        try:
            definition.settings_model.model_validate(values)
        except ValidationError as error:
            problems.extend(Problem(("settings", name, *p.loc), p.message) for p in problems_from(error, model=definition.settings_model))
            continue
        checked[name] = dict(values)
    return checked


def _journeys(parsed: ProfileDocument, workload: Workload | None, problems: list[Problem]) -> tuple[ProfileJourney, ...]:
    """The journeys with their workload journey and validated params; problems (unknown, duplicate, bad params) go to ``problems``."""
    journeys: list[ProfileJourney] = []
    first: dict[str, int] = {}
    for i, entry in enumerate(parsed.journeys):
        if entry.name in first:
            problems.append(Problem(("journeys", i, "name"), f"duplicate journey {entry.name!r} (also journeys[{first[entry.name]}])"))
            continue
        first[entry.name] = i
        if workload is None:
            continue
        journey = workload.journeys.get(entry.name)
        if journey is None:
            problems.append(Problem(("journeys", i, "name"), f"unknown journey {entry.name!r} of workload {workload.name}; known: {', '.join(workload.journeys)}"))
            continue
        params = _params(journey.params_model, entry.params, ("journeys", i, "params"), problems)
        if params is not None:
            journeys.append(ProfileJourney(entry.name, entry.weight, params, journey))
    return tuple(journeys)


def _slos(parsed: ProfileDocument, document: Document, path: Path, shown: str, workload: Workload, journeys: list[str]) -> tuple[Slo, ...]:
    """Every SLO of every file in ``slos`` (paths relative to the profile's directory), names unique across files."""
    slos: list[Slo] = []
    defined_in: dict[str, str] = {}
    for i, entry in enumerate(parsed.slos):
        slo_path, slo_shown = path.parent / entry, str(Path(shown).parent / entry)
        if not slo_path.is_file():
            raise document.error([Problem(("slos", i), f"SLO file not found: {slo_shown}")])
        for slo in load_slos(slo_path, slo_shown, rpcs=workload.rpcs, journeys=journeys):
            if slo.name in defined_in:
                raise document.error([Problem(("slos", i), f"SLO {slo.name!r} of {slo_shown} is also defined in {defined_in[slo.name]}")])
            defined_in[slo.name] = slo_shown
            slos.append(slo)
    return tuple(slos)


def with_settings(profile: Profile, assignments: list[str]) -> Profile:
    """``profile`` with ``--set SERVICE.KEY=VALUE`` assignments applied to its services' settings.

    ``VALUE`` is read as YAML (``0``, ``true``, ``1.5``, ``text``). The result
    is checked against the service's settings model; a malformed assignment,
    a service the profile does not start or an invalid value raises
    ``ConfigError`` with the field ``--set``.

    The key ``impl`` is not a setting: ``SERVICE.impl=node`` chooses the
    implementation the embedded mesh starts (``Profile.impls``, the topology
    endpoint's ``impl``), checked against those the service has
    (harness/implementations.py).
    """
    settings = {name: dict(values) for name, values in profile.settings.items()}
    impls = dict(profile.impls)
    touched: dict[str, type] = {}
    for assignment in assignments:
        target, sep, raw = assignment.partition("=")
        service, dot, key = target.rpartition(".")
        if not sep or not dot or not service or not key:
            raise ConfigError(f"{assignment!r} is not SERVICE.KEY=VALUE (e.g. video-edge.cache_bytes=0)", field="--set")
        if key == IMPL_KEY:
            if service not in profile.services:
                raise ConfigError(f"{service!r} is not a service this profile starts ({', '.join(profile.services)})", field="--set")
            impl = check_impl(service, raw.strip())
            impls.pop(service, None)
            if impl != "python":
                impls[service] = impl
            continue
        definition = SERVICES.get(service)
        if service not in profile.services or definition is None or definition.settings_model is None:
            raise ConfigError(f"{service!r} is not a service with settings that this profile starts ({', '.join(profile.services)})", field="--set")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        settings.setdefault(service, {})[key] = value
        touched[service] = definition.settings_model
    for service, model in touched.items():  # after every assignment: a check across two keys sees both new values
        try:
            model.model_validate(settings[service])
        except ValidationError as error:
            problem = problems_from(error, model=model)[0]
            where = f"{service}.{dotted(problem.loc)}" if problem.loc else service
            raise ConfigError(f"{where}: {problem.message}", field="--set") from None
    return replace(profile, settings=settings, impls=tuple(sorted(impls.items())))
