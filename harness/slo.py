"""SLOs as OpenSLO v1 documents, and their verdicts against what a run measured.

A file holds one or more ``kind: SLO`` documents separated by ``---``
(docs/slos.md lists the supported subset). Each is a ratio SLO counted over
the measured run (``budgetingMethod: Occurrences``): the share of ``total``
calls that are ``good``, which must reach the objective's ``target``. Both
sides use the ``casemesh`` metric source: the harness's own histograms
(:class:`~casemesh.harness.stats.RunStats`), selected by RPC or journey and
filtered by status code and, for ``good``, by latency.

:func:`load_slos` parses a file into :class:`Slo` objects; :func:`evaluate`
gives a :class:`SloVerdict` per SLO. Evaluation only counts histogram buckets,
so it is cheap enough to run every second for a live table.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import grpc
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from .errors import ConfigError
from .stats import CallStats, RunStats
from .yaml_lines import Loc, Problem, load_documents, problems_from

API_VERSION = "openslo/v1"
#: Annotation holding the human reason for an SLO's numbers (shown in reports).
REASON_ANNOTATION = "casemesh.dev/reason"
#: gRPC status code names as ``grpc.StatusCode`` spells them (``OK``, ``NOT_FOUND``, ...).
STATUS_CODES = tuple(code.name for code in grpc.StatusCode)
#: Spellings of other gRPC implementations mapped to ``grpc.StatusCode`` names (Go: ``codes.Canceled``).
_CODE_ALIASES = {"CANCELED": "CANCELLED"}
_CAMEL_CASE = re.compile(r"(?:[A-Z][a-z]*)+")
_FULL_METHOD = re.compile(r"(?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*/[A-Za-z_]\w*")
_DNS_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")
#: Where the two sides of the ratio sit in a document (YAML keys).
_RATIO_LOC: Loc = ("spec", "indicator", "spec", "ratioMetric")


# -- field checks ----------------------------------------------------------------------------------


def _only(expected: str, hint: str = "") -> AfterValidator:
    """Accept exactly ``expected``; anything else is "only 'X' is supported, not 'Y'" plus ``hint``."""

    def check(value: str) -> str:
        if value != expected:
            raise PydanticCustomError("unsupported", "only {expected} is supported, not {value}" + hint, {"expected": repr(expected), "value": repr(value)})
        return value

    return AfterValidator(check)


def _rejected(reason: str) -> Any:
    """Type of an OpenSLO field casemesh does not support: absent is fine, present fails with ``reason``."""

    def reject(value: object) -> None:
        raise PydanticCustomError("not_supported", reason)

    return Annotated[None, BeforeValidator(reject)]


def _dns_label(value: str) -> str:
    if not _DNS_LABEL.fullmatch(value):
        raise PydanticCustomError("name", "must be lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63 characters")
    return value


def _full_method(value: str) -> str:
    """``package.Service/Method`` (a leading ``/`` is dropped)."""
    method = value.removeprefix("/")
    if not _FULL_METHOD.fullmatch(method):
        raise PydanticCustomError("rpc", "expected a full method name package.Service/Method, e.g. casemesh.urlshortener.v1.UrlShortenerService/Resolve")
    return method


def _status_code(value: str) -> str:
    """``NOT_FOUND`` or ``NotFound`` (and Go's ``Canceled``) as the ``grpc.StatusCode`` member name."""
    name = value
    if _CAMEL_CASE.fullmatch(value) and not value.isupper():
        name = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", value).upper()
    name = _CODE_ALIASES.get(name, name)
    if name not in STATUS_CODES:
        raise PydanticCustomError("status_code", "unknown gRPC status code {value}; known: {known}", {"value": repr(value), "known": ", ".join(STATUS_CODES)})
    return name


def _exactly_one(objectives: list[Objective]) -> list[Objective]:
    if len(objectives) != 1:
        raise PydanticCustomError("objectives", "exactly one objective per SLO is supported, found {count}", {"count": len(objectives)})
    return objectives


_IndicatorRef = _rejected("indicatorRef is not supported: define the indicator inline under spec.indicator")
_ThresholdMetric = _rejected("threshold indicators are not supported: use spec.indicator.spec.ratioMetric with good and total")
_RawRatio = _rejected("raw ratios are not supported: give good and total metric sources")
_BadRatio = _rejected("bad/total ratios are not supported: give good and total metric sources")
_MetricSourceRef = _rejected("metricSourceRef is not supported: give type and spec inline")
_AlertPolicies = _rejected("alert policies are not supported: the harness judges the run once it ends")
_ThresholdObjective = _rejected("op and value belong to threshold indicators, which are not supported: give target")
_TargetPercent = _rejected("targetPercent is not supported: give target as a fraction (0.99 for 99%)")
_Timeslices = _rejected("time-slice objectives are not supported: budgetingMethod Occurrences counts calls")
_Composite = _rejected("composite SLOs are not supported: one indicator per SLO, under spec.indicator")


# -- document model (YAML keys are camelCase, as OpenSLO spells them) ------------------------------


class _OpenSlo(BaseModel):
    """An OpenSLO object: camelCase keys, unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, allow_inf_nan=False)


class Metadata(_OpenSlo):
    """``metadata`` of an SLO or of its inline indicator."""

    name: Annotated[str, AfterValidator(_dns_label)]
    display_name: str | None = None
    annotations: dict[str, str] = {}


class CasemeshQuery(BaseModel):
    """``metricSource.spec`` for ``type: casemesh``: which recorded calls to count (snake_case keys).

    ``rpc`` (full method name) or ``journey`` (journey name) selects the calls,
    neither means every RPC of the run; ``codes`` keeps only calls that ended
    with one of these statuses; ``latency_le_ms`` (ms, good side only) keeps
    only calls that took at most that long.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    rpc: Annotated[str, AfterValidator(_full_method)] | None = None
    journey: Annotated[str, Field(min_length=1)] | None = None
    latency_le_ms: Annotated[float, Field(ge=0.001)] | None = None
    codes: Annotated[tuple[Annotated[str, AfterValidator(_status_code)], ...], Field(min_length=1)] | None = None


class MetricSource(_OpenSlo):
    metric_source_ref: _MetricSourceRef = None
    type: Annotated[str, _only("casemesh", " (the harness's own latency histograms); Prometheus sources will come later")]
    spec: CasemeshQuery = CasemeshQuery()


class RatioSide(_OpenSlo):
    metric_source: MetricSource


class RatioMetric(_OpenSlo):
    counter: Literal[True]
    raw_type: _RawRatio = None
    raw: _RawRatio = None
    bad: _BadRatio = None
    good: RatioSide
    total: RatioSide


class IndicatorSpec(_OpenSlo):
    description: str | None = None
    threshold_metric: _ThresholdMetric = None
    ratio_metric: RatioMetric


class Indicator(_OpenSlo):
    metadata: Metadata
    spec: IndicatorSpec


class Objective(_OpenSlo):
    """The one objective: ``target`` is the fraction of good calls required, strictly between 0 and 1."""

    display_name: str | None = None
    op: _ThresholdObjective = None
    value: _ThresholdObjective = None
    target_percent: _TargetPercent = None
    target: Annotated[float, Field(gt=0, lt=1)]
    time_slice_target: _Timeslices = None
    time_slice_window: _Timeslices = None
    indicator: _Composite = None
    indicator_ref: _Composite = None
    composite_weight: _Composite = None


class SloSpec(_OpenSlo):
    """``spec`` of an SLO. ``time_window`` is accepted and ignored: the window is the measured run."""

    description: str | None = None
    service: str
    indicator_ref: _IndicatorRef = None
    indicator: Indicator
    time_window: list[dict[str, Any]] = []
    budgeting_method: Annotated[str, _only("Occurrences", ": the SLO counts good calls over all calls of the run")]
    objectives: Annotated[list[Objective], AfterValidator(_exactly_one)]
    alert_policies: _AlertPolicies = None


class SloDocument(_OpenSlo):
    api_version: Annotated[str, _only(API_VERSION)]
    kind: Annotated[str, _only("SLO", "; define indicators inline under spec.indicator")]
    metadata: Metadata
    spec: SloSpec


# -- loaded SLOs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selector:
    """Which recorded calls one side of an SLO counts.

    ``rpc`` (``package.Service/Method``) or ``journey`` (a journey name), or
    neither for every RPC of the run; ``codes`` (``grpc.StatusCode`` names)
    keeps only calls that ended with one of them (``None``: any status);
    ``latency_le_ms`` keeps only calls that took at most that many ms, to the
    histograms' 0.1 % resolution (``None``: any latency).
    """

    rpc: str | None = None
    journey: str | None = None
    codes: tuple[str, ...] | None = None
    latency_le_ms: float | None = None

    @property
    def subject(self) -> str:
        """``package.Service/Method``, ``journey NAME`` or ``all RPCs``."""
        if self.rpc is not None:
            return self.rpc
        return f"journey {self.journey}" if self.journey is not None else "all RPCs"

    def calls(self, stats: RunStats) -> list[CallStats]:
        """The stats this selector reads: one RPC's, one journey's, or every RPC's (none when nothing was recorded)."""
        if self.rpc is not None:
            found = stats.rpcs.get(self.rpc)
        elif self.journey is not None:
            found = stats.journeys.get(self.journey)
        else:
            return list(stats.rpcs.values())
        return [found] if found is not None else []

    def count(self, stats: RunStats) -> int:
        """Number of recorded calls this selector matches."""
        calls = self.calls(stats)
        if self.latency_le_ms is None:
            return sum(c.count(self.codes) for c in calls)
        threshold_us = round(self.latency_le_ms * 1000)
        return sum(c.count_within(threshold_us, self.codes) for c in calls)


@dataclass(frozen=True)
class Slo:
    """One SLO: at least ``target`` (a fraction) of the ``total`` calls must be ``good``.

    ``good`` always selects the same RPC or journey as ``total`` and carries
    ``total``'s codes when it names none of its own, so it counts a subset of
    ``total``. ``display_name`` falls back to ``name``; ``reason`` is the
    ``casemesh.dev/reason`` annotation.
    """

    name: str
    display_name: str
    reason: str | None
    description: str | None
    service: str
    target: float
    good: Selector
    total: Selector

    @property
    def objective_text(self) -> str:
        """The objective in words: ``99% of pkg.Service/Resolve within 10 ms``."""
        text = f"{_percent_number(self.target)}% of {self.total.subject}"
        if self.total.codes is not None:
            text += f" (status in {', '.join(self.total.codes)})"
        if self.good.latency_le_ms is not None:
            text += f" within {self.good.latency_le_ms:g} ms"
        if self.good.codes != self.total.codes:
            text += f" with status in {', '.join(self.good.codes or ())}"
        return text


def load_slos(
    path: Path,
    display_path: str | None = None,
    *,
    rpcs: Collection[str] | None = None,
    journeys: Collection[str] | None = None,
) -> list[Slo]:
    """The SLOs of the OpenSLO file ``path``, in file order.

    ``display_path`` names the file in errors (default ``str(path)``). When
    ``rpcs`` / ``journeys`` are given, every ``rpc`` / ``journey`` an SLO
    selects must be among them. Problems raise ``ConfigError`` with the line
    and field (``spec.objectives[0].target``; prefixed with the 0-based
    document index, ``[2].spec...``, when the file holds several documents).
    """
    documents = load_documents(path, display_path)
    if not documents:
        raise ConfigError("no SLO documents in the file", file=display_path or str(path))
    slos: list[Slo] = []
    first_index: dict[str, int] = {}
    for index, document in enumerate(documents):
        prefix = f"[{index}]" if len(documents) > 1 else ""
        try:
            parsed = SloDocument.model_validate(document.data)
        except ValidationError as error:
            raise document.error(problems_from(error), field_prefix=prefix) from None
        problems = _cross_field_problems(parsed, rpcs, journeys)
        name = parsed.metadata.name
        if name in first_index:
            problems.insert(0, Problem(("metadata", "name"), f"duplicate SLO name {name!r} (also document [{first_index[name]}])"))
        if problems:
            raise document.error(problems, field_prefix=prefix)
        first_index[name] = index
        slos.append(_slo(parsed))
    return slos


def _query_loc(side: str) -> Loc:
    return (*_RATIO_LOC, side, "metricSource", "spec")


def _cross_field_problems(document: SloDocument, rpcs: Collection[str] | None, journeys: Collection[str] | None) -> list[Problem]:
    """Rules that span fields: exclusive selectors, known references, good being a subset of total."""
    ratio = document.spec.indicator.spec.ratio_metric
    good, total = ratio.good.metric_source.spec, ratio.total.metric_source.spec
    problems: list[Problem] = []
    for side, query in (("good", good), ("total", total)):
        loc = _query_loc(side)
        if query.rpc is not None and query.journey is not None:
            problems.append(Problem((*loc, "journey"), "rpc and journey are exclusive: give one, or neither for every RPC of the run"))
        if query.rpc is not None and rpcs is not None and query.rpc not in rpcs:
            problems.append(Problem((*loc, "rpc"), f"unknown RPC {query.rpc!r}; the workload's RPCs: {', '.join(rpcs)}"))
        if query.journey is not None and journeys is not None and query.journey not in journeys:
            problems.append(Problem((*loc, "journey"), f"journey {query.journey!r} is not in the profile; its journeys: {', '.join(journeys)}"))
    if total.latency_le_ms is not None:
        problems.append(Problem((*_query_loc("total"), "latency_le_ms"), "total counts calls of any latency: put latency_le_ms on good"))
    if (good.rpc, good.journey) != (total.rpc, total.journey):
        key = "rpc" if good.rpc is not None else "journey" if good.journey is not None else None
        problems.append(
            Problem(
                (*_query_loc("good"), *([key] if key else [])),
                f"good selects {_selector(good).subject} but total selects {_selector(total).subject}: good must count a subset of total's calls",
            )
        )
    if good.codes is not None and total.codes is not None:
        outside = [code for code in good.codes if code not in total.codes]
        if outside:
            problems.append(Problem((*_query_loc("good"), "codes"), f"{', '.join(outside)} not among total's codes ({', '.join(total.codes)}): good must count a subset of total's calls"))
    return problems


def _selector(query: CasemeshQuery, inherited_codes: tuple[str, ...] | None = None) -> Selector:
    codes = query.codes if query.codes is not None else inherited_codes
    return Selector(rpc=query.rpc, journey=query.journey, codes=codes, latency_le_ms=query.latency_le_ms)


def _slo(document: SloDocument) -> Slo:
    ratio = document.spec.indicator.spec.ratio_metric
    total = _selector(ratio.total.metric_source.spec)
    return Slo(
        name=document.metadata.name,
        display_name=document.metadata.display_name or document.metadata.name,
        reason=document.metadata.annotations.get(REASON_ANNOTATION),
        description=document.spec.description,
        service=document.spec.service,
        target=document.spec.objectives[0].target,
        good=_selector(ratio.good.metric_source.spec, total.codes),
        total=total,
    )


# -- verdicts --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SloVerdict:
    """How one SLO fared.

    ``measured`` = ``good / total`` (``None`` without calls); ``passed`` when
    there were calls and ``measured >= target``. ``error_budget`` = ``1 -
    target``, the share of calls allowed to be bad; ``budget_burnt`` = share
    of bad calls / ``error_budget`` (1.0 = exactly used up, above 1 = SLO
    missed; ``None`` without calls). ``note``: ``"no calls recorded"``, or for
    latency SLOs the latency of the total selection at the target quantile
    (``"p99 = 3.21 ms"``).
    """

    name: str
    display_name: str
    passed: bool
    objective: str
    target: float
    measured: float | None
    good: int
    total: int
    error_budget: float
    budget_burnt: float | None
    note: str | None

    def to_dict(self) -> dict[str, Any]:
        """The verdict as a JSON-ready dict (the fields above, in that order)."""
        return asdict(self)


def evaluate(slos: Sequence[Slo], stats: RunStats) -> list[SloVerdict]:
    """A verdict per SLO, in order, from the calls recorded in ``stats`` so far."""
    return [_verdict(slo, stats) for slo in slos]


def _verdict(slo: Slo, stats: RunStats) -> SloVerdict:
    total = slo.total.count(stats)
    good = slo.good.count(stats)
    # 1 - target in decimal, so 0.99 gives a budget of 0.01 rather than 0.010000000000000009.
    error_budget = float(Decimal(1) - Decimal(repr(slo.target)))
    measured = good / total if total else None
    note = "no calls recorded" if not total else _latency_note(slo, stats) if slo.good.latency_le_ms is not None else None
    return SloVerdict(
        name=slo.name,
        display_name=slo.display_name,
        passed=measured is not None and measured >= slo.target,
        objective=slo.objective_text,
        target=slo.target,
        measured=measured,
        good=good,
        total=total,
        error_budget=error_budget,
        budget_burnt=(total - good) / total / error_budget if total else None,
        note=note,
    )


def _latency_note(slo: Slo, stats: RunStats) -> str:
    """``pQ = X.XX ms``: latency of the total selection at the target quantile."""
    calls = slo.total.calls(stats)
    if len(calls) == 1:
        histogram = calls[0].merged(slo.total.codes)
    else:
        combined = CallStats()
        for each in calls:
            combined.add(each)
        histogram = combined.merged(slo.total.codes)
    value_us = histogram.get_value_at_percentile(slo.target * 100)
    return f"p{_percent_number(slo.target)} = {value_us / 1000:.2f} ms"


def _percent_number(fraction: float) -> str:
    """``0.999`` as ``99.9`` (at most 6 significant digits)."""
    return f"{fraction * 100:.6g}"
