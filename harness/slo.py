"""SLOs as OpenSLO v1 documents, and their verdicts against what a run measured.

A file holds one or more ``kind: SLO`` documents separated by ``---``
(docs/slos.md lists the supported subset). Each is a ratio SLO counted over
the measured run (``budgetingMethod: Occurrences``): the share of ``total``
calls that are ``good``, which must reach the objective's ``target``. Both
sides use the same metric source:

- ``casemesh``: the harness's own histograms
  (:class:`~casemesh.harness.stats.RunStats`), selected by RPC or journey and
  filtered by status code and, for ``good``, by latency. Evaluation only
  counts histogram buckets, so it is cheap enough to run every second for a
  live table.
- ``Prometheus``: a PromQL query per side (``spec.query``) with a
  ``$window`` placeholder, evaluated once after the load as an instant query
  at the end of the measured window, ``$window`` replaced by its length
  (:class:`~casemesh.harness.prometheus.QueryWindow`). Without a Prometheus
  server such an SLO is *not evaluated*: its verdict has ``passed=None`` and
  does not fail the run.

A ``casemesh`` latency SLO with ``spec.recovery`` (a casemesh extension) is
a *recovery* SLO: instead of the whole window, it asks that the objective
holds again within ``within_s`` seconds after an event ends (the profile's
load spike, or a time in the run), judged on the per-second series
(:mod:`casemesh.harness.recovery`).

An SLO may name the SLO it mirrors with the ``casemesh.dev/twin-of``
annotation (an SLO of the same file), typically a server-side Prometheus twin
of a client-side ``casemesh`` SLO; reports show twins side by side.

:func:`load_slos` parses a file into :class:`Slo` objects; :func:`evaluate`
gives a :class:`SloVerdict` per SLO; :func:`check_queries` asks a Prometheus
to parse every PromQL query before any load is sent.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import grpc
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, ValidationError
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails, PydanticCustomError

from .errors import ConfigError
from .prometheus import PrometheusApi, PrometheusError, QueryWindow
from .recovery import Recovery, RecoverySpec, judge
from .stats import CallStats, RunStats
from .yaml_lines import Document, Loc, Problem, load_documents, problems_from

API_VERSION = "openslo/v1"
#: Annotation holding the human reason for an SLO's numbers (shown in reports).
REASON_ANNOTATION = "casemesh.dev/reason"
#: Annotation naming the SLO (of the same file) that this one mirrors, e.g. a server-side twin of a client-side SLO.
TWIN_ANNOTATION = "casemesh.dev/twin-of"
#: ``metricSource.type`` values: the harness's own histograms, and PromQL against a Prometheus server.
CASEMESH_SOURCE, PROMETHEUS_SOURCE = "casemesh", "Prometheus"
#: Placeholder in a PromQL query, replaced by the measured window as a PromQL duration (``6234ms``).
WINDOW_PLACEHOLDER = "$window"
#: ``note`` of a Prometheus-sourced SLO when the run had no Prometheus server.
NOT_EVALUATED_NOTE = "not evaluated (no Prometheus)"
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


def _promql(value: str) -> str:
    """A PromQL expression that counts over the measured window: non-blank, with a ``$window`` placeholder."""
    query = value.strip()
    if not query:
        raise PydanticCustomError("promql", "must be a PromQL expression")
    if WINDOW_PLACEHOLDER not in query:
        raise PydanticCustomError(
            "promql",
            "must contain the placeholder $window where the range goes, e.g. sum(increase(grpc_server_handled_total[$window])): "
            "it is replaced by the measured window so the query counts that window only",
        )
    return query


def _fraction(value: float) -> float:
    """An objective's target: a fraction below 1 (0.99 for 99%), with a hint when it was written as a percentage."""
    if value >= 1:
        if 10 <= value < 100:
            hint = f" (did you mean {value / 100:g}?)"
        else:
            hint = ": 1 would leave no error budget" if value == 1 else ""
        raise PydanticCustomError("target", "must be less than 1: targets are fractions of good calls, 0.99 for 99%, not {value}" + hint,
                                  {"value": f"{value:g}"})
    return value


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


class PrometheusQuery(BaseModel):
    """``metricSource.spec`` for ``type: Prometheus``: ``query``, a PromQL expression containing ``$window``.

    It must evaluate to one number (a scalar or an instant vector of one
    series, so aggregate with ``sum``): the count of good or of all events in
    the window, e.g. ``sum(increase(grpc_server_handling_seconds_count{...}[$window]))``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    query: Annotated[str, AfterValidator(_promql)]


def _check_source_type(value: str) -> str:
    if value not in (CASEMESH_SOURCE, PROMETHEUS_SOURCE):
        raise PydanticCustomError(
            "unsupported",
            "only 'casemesh' (the harness's own latency histograms) or 'Prometheus' (PromQL) is supported, not {value}",
            {"value": repr(value)},
        )
    return value


class CasemeshSource(_OpenSlo):
    """``metricSource`` of ``type: casemesh`` (and where an unknown ``type`` is reported)."""

    metric_source_ref: _MetricSourceRef = None
    type: Annotated[str, AfterValidator(_check_source_type)]
    spec: CasemeshQuery = CasemeshQuery()


class PrometheusSource(_OpenSlo):
    """``metricSource`` of ``type: Prometheus``."""

    metric_source_ref: _MetricSourceRef = None
    type: Literal["Prometheus"]
    spec: PrometheusQuery


def _source_tag(value: Any) -> str:
    """Which model validates a ``metricSource``: ``Prometheus`` for that type, ``casemesh`` for anything else."""
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return PROMETHEUS_SOURCE if kind == PROMETHEUS_SOURCE else CASEMESH_SOURCE


MetricSource = Annotated[
    Annotated[CasemeshSource, Tag(CASEMESH_SOURCE)] | Annotated[PrometheusSource, Tag(PROMETHEUS_SOURCE)],
    Discriminator(_source_tag),
]


def _relocated(error: ErrorDetails) -> Problem:
    """Pydantic's error without the union tag it puts after ``metricSource`` in the location."""
    loc = tuple(error["loc"])
    for i in range(len(loc) - 1):
        if loc[i] == "metricSource" and loc[i + 1] in (CASEMESH_SOURCE, PROMETHEUS_SOURCE):
            loc = loc[: i + 1] + loc[i + 2 :]
            break
    return Problem(loc, error["msg"])


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
    target: Annotated[float, Field(gt=0), AfterValidator(_fraction)]
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
    #: casemesh extension: a recovery SLO (harness/recovery.py); snake_case keys.
    recovery: RecoverySpec | None = None


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
class PromQuery:
    """One side of a Prometheus-sourced SLO: a PromQL ``query`` containing ``$window``.

    ``where`` locates it for error messages (``FILE:LINE: FIELD``).
    """

    query: str
    where: str = field(default="", compare=False)

    def expression(self, window: str) -> str:
        """The query with ``$window`` replaced by the PromQL duration ``window`` (``6234ms``)."""
        return self.query.replace(WINDOW_PLACEHOLDER, window)


@dataclass(frozen=True)
class Slo:
    """One SLO: at least ``target`` (a fraction) of the ``total`` calls must be ``good``.

    With the ``casemesh`` source, ``good`` and ``total`` are :class:`Selector`
    objects; ``good`` always selects the same RPC or journey as ``total`` and
    carries ``total``'s codes when it names none of its own, so it counts a
    subset of ``total``. With the ``Prometheus`` source both are
    :class:`PromQuery` objects. ``display_name`` falls back to ``name``;
    ``reason`` is the ``casemesh.dev/reason`` annotation, ``twin_of`` the
    ``casemesh.dev/twin-of`` one (the name of the SLO this one mirrors).
    """

    name: str
    display_name: str
    reason: str | None
    description: str | None
    service: str
    target: float
    good: Selector | PromQuery
    total: Selector | PromQuery
    twin_of: str | None = None
    #: ``spec.recovery`` (:class:`~casemesh.harness.recovery.Recovery`), ``None`` for an SLO over the whole window.
    recovery: Recovery | None = None

    @property
    def source(self) -> str:
        """``"casemesh"`` or ``"prometheus"``: where the SLO's numbers come from."""
        return "prometheus" if isinstance(self.total, PromQuery) else "casemesh"

    @property
    def objective_text(self) -> str:
        """The objective in words: ``99% of pkg.Service/Resolve within 10 ms``, ``99% good by PromQL (twin of resolve-latency)``."""
        if not isinstance(self.total, Selector) or not isinstance(self.good, Selector):
            twin = f" (twin of {self.twin_of})" if self.twin_of else ""
            return f"{_percent_number(self.target)}% good by PromQL over the measured window{twin}"
        text = f"{_percent_number(self.target)}% of {self.total.subject}"
        if self.total.codes is not None:
            text += f" (status in {', '.join(self.total.codes)})"
        if self.good.latency_le_ms is not None:
            text += f" within {self.good.latency_le_ms:g} ms"
        if self.good.codes != self.total.codes:
            text += f" with status in {', '.join(self.good.codes or ())}"
        if self.recovery is not None:
            text += f", again within {self.recovery.within_s:g} s after {self.recovery.describe_event()} ends"
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
    selects must be among them. Problems raise one ``ConfigError`` listing
    every problem of every document (its ``more``), each with the line and
    field (``spec.objectives[0].target``; prefixed with the 0-based document
    index, ``[2].spec...``, when the file holds several documents); twins are
    checked once every document is valid.
    """
    documents = load_documents(path, display_path)
    if not documents:
        raise ConfigError("no SLO documents in the file", file=display_path or str(path))
    slos: list[Slo] = []
    failures: list[ConfigError] = []
    first_index: dict[str, int] = {}
    for index, document in enumerate(documents):
        prefix = f"[{index}]" if len(documents) > 1 else ""
        try:
            parsed = SloDocument.model_validate(document.data)
        except ValidationError as error:
            failures.append(document.error(problems_from(error, _relocated, model=SloDocument), field_prefix=prefix))
            continue
        problems = _cross_field_problems(parsed, rpcs, journeys)
        name = parsed.metadata.name
        if name in first_index:
            problems.insert(0, Problem(("metadata", "name"), f"duplicate SLO name {name!r} (also document [{first_index[name]}])"))
        else:
            first_index[name] = index
        if problems:
            failures.append(document.error(problems, field_prefix=prefix))
            continue
        slos.append(_slo(parsed, document, prefix))
    if not failures:
        for index, (document, slo) in enumerate(zip(documents, slos)):
            problem = _twin_problem(slo, slos)
            if problem:
                failures.append(document.error([problem], field_prefix=f"[{index}]" if len(documents) > 1 else ""))
    if failures:
        first, *others = failures
        raise ConfigError(first.message, file=first.file, line=first.line, field=first.field, more=[*first.more, *others])
    return slos


_TWIN_LOC: Loc = ("metadata", "annotations", TWIN_ANNOTATION)


def _twin_problem(slo: Slo, slos: Sequence[Slo]) -> Problem | None:
    """The ``casemesh.dev/twin-of`` annotation must name another SLO of the same file that is not a twin itself."""
    if slo.twin_of is None:
        return None
    named = next((s for s in slos if s.name == slo.twin_of), None)
    if slo.twin_of == slo.name:
        return Problem(_TWIN_LOC, "an SLO cannot be its own twin: name the SLO this one mirrors")
    if named is None:
        return Problem(_TWIN_LOC, f"no SLO named {slo.twin_of!r} in this file; its SLOs: {', '.join(s.name for s in slos)}")
    if named.twin_of is not None:
        return Problem(_TWIN_LOC, f"{named.name!r} is itself a twin of {named.twin_of!r}: name {named.twin_of!r}")
    return None


def _query_loc(side: str) -> Loc:
    return (*_RATIO_LOC, side, "metricSource", "spec")


def _cross_field_problems(document: SloDocument, rpcs: Collection[str] | None, journeys: Collection[str] | None) -> list[Problem]:
    """Rules that span fields: one source type, exclusive selectors, known references, good being a subset of total."""
    ratio = document.spec.indicator.spec.ratio_metric
    good_source, total_source = ratio.good.metric_source, ratio.total.metric_source
    if good_source.type != total_source.type:
        return [Problem((*_RATIO_LOC, "good", "metricSource", "type"),
                        f"good uses {good_source.type!r} but total uses {total_source.type!r}: both sides must use the same metric source type")]
    if not isinstance(good_source, CasemeshSource) or not isinstance(total_source, CasemeshSource):
        if document.spec.recovery is not None:
            return [Problem(("spec", "recovery"), "a recovery SLO reads the harness's per-second series: use metricSource type casemesh")]
        return []
    good, total = good_source.spec, total_source.spec
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
    if document.spec.recovery is not None:
        problems.extend(_recovery_problems(good, total))
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


def _recovery_problems(good: CasemeshQuery, total: CasemeshQuery) -> list[Problem]:
    """A recovery SLO reads one RPC's or journey's per-second series: it needs a latency threshold and no codes on total."""
    problems: list[Problem] = []
    if good.latency_le_ms is None:
        problems.append(Problem(("spec", "recovery"), "a recovery SLO is a latency SLO: give good.metricSource.spec.latency_le_ms"))
    if total.rpc is None and total.journey is None:
        problems.append(Problem((*_query_loc("total"), "rpc"), "a recovery SLO follows one RPC or journey: give rpc or journey"))
    if total.codes is not None:
        problems.append(Problem((*_query_loc("total"), "codes"), "a recovery SLO counts every call of the RPC or journey: "
                                                                 "put codes on good (other codes count as bad)"))
    return problems


def _selector(query: CasemeshQuery, inherited_codes: tuple[str, ...] | None = None) -> Selector:
    codes = query.codes if query.codes is not None else inherited_codes
    return Selector(rpc=query.rpc, journey=query.journey, codes=codes, latency_le_ms=query.latency_le_ms)


def _slo(document: SloDocument, source: Document, prefix: str) -> Slo:
    ratio = document.spec.indicator.spec.ratio_metric
    good_spec, total_spec = ratio.good.metric_source.spec, ratio.total.metric_source.spec
    good: Selector | PromQuery
    total: Selector | PromQuery
    if isinstance(good_spec, PrometheusQuery) and isinstance(total_spec, PrometheusQuery):
        good, total = (PromQuery(spec.query, _where(source, (*_RATIO_LOC, side, "metricSource", "spec", "query"), prefix))
                       for side, spec in (("good", good_spec), ("total", total_spec)))
    else:
        assert isinstance(good_spec, CasemeshQuery) and isinstance(total_spec, CasemeshQuery)
        total = _selector(total_spec)
        good = _selector(good_spec, total.codes)
    return Slo(
        name=document.metadata.name,
        display_name=document.metadata.display_name or document.metadata.name,
        reason=document.metadata.annotations.get(REASON_ANNOTATION),
        description=document.spec.description,
        service=document.spec.service,
        target=document.spec.objectives[0].target,
        good=good,
        total=total,
        twin_of=document.metadata.annotations.get(TWIN_ANNOTATION),
        recovery=None if (spec := document.spec.recovery) is None else Recovery(spec.after, spec.within_s, spec.window_s),
    )


def _where(document: Document, loc: Loc, prefix: str) -> str:
    """``FILE:LINE: FIELD`` of ``loc`` in ``document``, as config errors spell it."""
    error = document.error([Problem(loc, "")], field_prefix=prefix)
    return str(error).removesuffix(": ")


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
    (``"p99 = 3.21 ms"``), or for Prometheus SLOs what kept them from a
    number (``"no data: ..."``, ``"query failed: ..."``, :data:`NOT_EVALUATED_NOTE`).

    ``source`` is ``"casemesh"`` or ``"prometheus"``; ``twin_of`` the SLO this
    one mirrors (``None``). ``evaluated`` is ``False`` only for a Prometheus
    SLO of a run without Prometheus: then ``passed`` and ``measured`` are
    ``None`` and the verdict does not count towards the run's. ``good`` and
    ``total`` are call counts (ints) for ``casemesh``, the queries' values
    (floats, ``increase()`` extrapolates) for ``prometheus``.

    ``floor_ms``, ``machine_note`` and ``inconclusive`` judge the verdict
    against the machine (the run's control stream, harness/floor.py): the
    control's latency at the SLO's quantile, a caveat in words, and whether a
    miss is the machine's rather than the system's (an inconclusive verdict
    does not fail the run unless ``--strict``).
    """

    name: str
    display_name: str
    passed: bool | None
    objective: str
    target: float
    measured: float | None
    good: int | float
    total: int | float
    error_budget: float
    budget_burnt: float | None
    note: str | None
    source: str = "casemesh"
    twin_of: str | None = None
    evaluated: bool = True
    floor_ms: float | None = None
    machine_note: str | None = None
    inconclusive: bool = False
    #: A recovery SLO's findings (harness/recovery.py): event end, recovered_at_s, recovery_s, the windows; else ``None``.
    recovery: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The verdict as a JSON-ready dict (the fields above, in that order)."""
        return asdict(self)


def evaluate(slos: Sequence[Slo], stats: RunStats, prometheus: QueryWindow | None = None, *,
             not_evaluated_note: str = NOT_EVALUATED_NOTE) -> list[SloVerdict]:
    """A verdict per SLO, in order.

    ``casemesh`` SLOs count the calls recorded in ``stats`` so far.
    ``Prometheus`` SLOs run their queries over ``prometheus`` (the measured
    window and the server to ask, one HTTP request per query); without it they
    are not evaluated, with ``not_evaluated_note`` as their note. A failing
    query fails its SLO (``note`` says why) rather than raising.
    """
    return [_prometheus_verdict(slo, prometheus, not_evaluated_note) if slo.source == "prometheus" else _verdict(slo, stats)
            for slo in slos]


def _error_budget(target: float) -> float:
    # 1 - target in decimal, so 0.99 gives a budget of 0.01 rather than 0.010000000000000009.
    return float(Decimal(1) - Decimal(repr(target)))


def _verdict(slo: Slo, stats: RunStats) -> SloVerdict:
    assert isinstance(slo.good, Selector) and isinstance(slo.total, Selector)
    if slo.recovery is not None:
        return recovery_verdict(slo, stats)
    total = slo.total.count(stats)
    good = slo.good.count(stats)
    error_budget = _error_budget(slo.target)
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
        source=slo.source,
        twin_of=slo.twin_of,
    )


def recovery_verdict(slo: Slo, stats: RunStats, left_out: Collection[int] = ()) -> SloVerdict:
    """A recovery SLO's verdict (harness/recovery.py): ``good``/``total`` and ``measured`` count the seconds after the allowance.

    ``left_out``: seconds not judged (the machine's stalls, harness/floor.py).
    """
    assert isinstance(slo.good, Selector) and slo.recovery is not None and slo.good.latency_le_ms is not None
    series = stats.series.rpcs.get(slo.total.rpc) if slo.total.rpc is not None else stats.series.journeys.get(slo.total.journey or "")
    outcome = judge(slo.recovery, series, threshold_ms=slo.good.latency_le_ms, target=slo.target, good_codes=slo.good.codes,
                    stats=stats, left_out=left_out)
    error_budget = _error_budget(slo.target)
    total, good = outcome.total, outcome.good
    return SloVerdict(
        name=slo.name, display_name=slo.display_name, passed=outcome.passed, objective=slo.objective_text,
        target=slo.target, measured=good / total if total else None, good=good, total=total, error_budget=error_budget,
        budget_burnt=(total - good) / total / error_budget if total else None, note=outcome.note, source=slo.source,
        twin_of=slo.twin_of, recovery=outcome.details)


def _prometheus_verdict(slo: Slo, window: QueryWindow | None, not_evaluated_note: str) -> SloVerdict:
    assert isinstance(slo.good, PromQuery) and isinstance(slo.total, PromQuery)
    error_budget = _error_budget(slo.target)
    verdict = SloVerdict(name=slo.name, display_name=slo.display_name, passed=False, objective=slo.objective_text,
                         target=slo.target, measured=None, good=0, total=0, error_budget=error_budget, budget_burnt=None,
                         note=None, source=slo.source, twin_of=slo.twin_of)
    if window is None:
        return replace(verdict, passed=None, note=not_evaluated_note, evaluated=False)
    try:
        total = window.value(slo.total.expression(window.duration))
        good = window.value(slo.good.expression(window.duration)) if total else None
    except PrometheusError as error:
        return replace(verdict, note=f"query failed: {error}")
    if total is None:
        return replace(verdict, note="no data: the total query returned no series")
    if total <= 0:
        return replace(verdict, total=total, note="no calls in the window: the total query returned 0")
    note = None
    if good is None:
        good, note = 0.0, "the good query returned no series: counted as 0"
    elif good > total:
        note = "good > total: check that good counts a subset of total"
    measured = good / total
    return replace(verdict, passed=measured >= slo.target, measured=measured, good=round(good, 3), total=round(total, 3),
                   budget_burnt=(total - good) / total / error_budget, note=note)


def check_queries(slos: Sequence[Slo], api: PrometheusApi) -> None:
    """Ask ``api`` to evaluate every PromQL query of ``slos`` once (over ``1s``), so syntax errors stop the run before any load.

    ``ConfigError`` naming the query's file, line and field when Prometheus
    rejects it as ``bad_data`` (does not parse); other errors (unreachable,
    timeouts) propagate as ``PrometheusError``. Empty results are fine: the
    load has not run yet.
    """
    for slo in slos:
        for side in (slo.good, slo.total):
            if isinstance(side, PromQuery):
                try:
                    api.query(side.expression("1s"))
                except PrometheusError as error:
                    if error.error_type != "bad_data":
                        raise
                    raise ConfigError(f"{side.where}: Prometheus rejects the query: {error}") from None


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


def quantile_label(target: float) -> str:
    """The latency quantile an SLO's target names: ``0.99`` → ``p99``, ``0.999`` → ``p99.9``."""
    return f"p{_percent_number(target)}"


def _percent_number(fraction: float) -> str:
    """``0.999`` as ``99.9`` (at most 6 significant digits)."""
    return f"{fraction * 100:.6g}"
