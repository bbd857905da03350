"""``casemesh export k6``: a profile as a k6 script (``k6/net/grpc``) with the same journeys, rate and SLOs.

The script is one self-contained file, assembled from:

1. a generated head: what the profile says (journeys and weights with their
   validated parameters, seed parameters, request timeout), the services'
   addresses (``--target``, overridable with ``CASEMESH_TARGET`` /
   ``CASEMESH_TARGET_<SERVICE>`` at run time), where the protos are
   (``CASEMESH_PROTOS``), k6 ``options`` with the arrival process as
   scenarios and the SLOs as thresholds;
2. the workload's journey template, ``harness/export/k6/<workload>.js``
   (``url-shortener`` → ``url_shortener.js``), which defines ``seed(params)``
   and ``JOURNEYS``, the same RPCs with the same request shapes as
   ``harness/workloads/<workload>.py``;
3. ``harness/export/k6/runtime.js``: clients, call recording, journey choice,
   ``setup()`` and the iteration.

Arrival processes (:func:`scenarios`): ``constant`` → k6's
``constant-arrival-rate``. k6 has no Poisson executor, so ``poisson`` also
becomes ``constant-arrival-rate`` at the same mean rate (evenly spaced
arrivals; the script's header says so). The rate-shaped processes become
``ramping-arrival-rate`` stages that follow λ(t). ``trace`` (recorded
timestamps) raises :class:`~casemesh.harness.errors.ConfigError`.

SLOs (see :func:`translate_slos`): a latency SLO on one RPC (or on all RPCs)
becomes a percentile threshold on k6's ``grpc_req_duration``; a status-code
SLO becomes a ``Rate`` metric that the runtime feeds per call, with a
``rate>=target`` threshold; a latency SLO on a journey becomes a percentile
threshold on ``casemesh_journey_duration``. What cannot be expressed is left
as a comment in the thresholds. Every threshold is on the ``measured``
scenario only: warm-up and seeding are not judged, as in ``casemesh run``.
"""

from __future__ import annotations

import json
import itertools
import math
import re
import textwrap
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pool

from ...arrivals.shaped import PiecewiseLinearRate, SinusoidRate
from ...errors import ConfigError
from ...profile import Profile
from ...slo import Selector, Slo

TEMPLATES = Path(__file__).parent
RUNTIME = TEMPLATES / "runtime.js"
#: Scenario whose samples the thresholds judge (the warm-up scenario, if any, is called ``warmup``).
MEASURED = "measured"
#: Processes with one rate (k6: constant-arrival-rate) and with a rate that varies over the run (ramping-arrival-rate).
STEADY_PROCESSES = ("constant", "poisson")
SHAPED_PROCESSES = ("ramp", "steps", "spike", "rate_curve", "diurnal")
#: The diurnal sinusoid becomes this many straight pieces per period (every 30 minutes of the compressed day) ...
SINUSOID_PIECES_PER_PERIOD = 48
#: ... but a scenario gets at most this many stages.
MAX_STAGES = 2000
#: Fewest and most VUs a scenario gets. A VU costs about 0.2 MB with the protos loaded (k6 1.1 here), so all are
#: started up front: a VU started mid-run comes too late for the arrival that needed it, which k6 then drops.
MIN_VUS = 10
MAX_VUS = 1000
#: Address of services the shipped topology does not list (such as benchmarks/echo_server.py's echo).
DEFAULT_ADDRESS = "127.0.0.1:50051"
_K6_METRIC_NAME = re.compile(r"[^a-zA-Z0-9_]")


def template_path(workload: str) -> Path:
    """Where the k6 journey template of ``workload`` lives (``url-shortener`` → ``url_shortener.js``)."""
    return TEMPLATES / f"{workload.replace('-', '_')}.js"


@dataclass
class SloTranslation:
    """The k6 form of a profile's SLOs.

    ``thresholds``: k6 threshold key → (expressions, comment lines above it);
    ``rates``: the ``Rate`` metrics the runtime feeds per call (status SLOs);
    ``untranslated``: comment lines for SLOs k6 cannot express.
    """

    thresholds: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)
    rates: list[dict[str, Any]] = field(default_factory=list)
    untranslated: list[str] = field(default_factory=list)

    def add(self, key: str, expression: str, comment: str) -> None:
        expressions, comments = self.thresholds.setdefault(key, ([], []))
        expressions.append(expression)
        comments.append(comment)


def _percentile(target: float) -> str:
    """``0.99`` → ``99``, ``0.999`` → ``99.9`` (k6's ``p(N)``)."""
    return f"{target * 100:.6f}".rstrip("0").rstrip(".")


def translate_slos(slos: tuple[Slo, ...] | list[Slo]) -> SloTranslation:
    """k6 thresholds (and the rate metrics behind them) equivalent to ``slos``.

    - latency ("``target`` of calls within ``latency_le_ms``") on one RPC or on
      all RPCs, without status filters: ``p(100·target)<=latency_le_ms`` on
      ``grpc_req_duration`` tagged with the RPC (k6 measures from the actual
      send, the harness from the intended send time);
    - the same on a journey: on ``casemesh_journey_duration{journey:NAME}``
      (measured with ``Date.now()``, 1 ms resolution);
    - status codes only ("``target`` of calls end with one of ``codes``"), on
      one RPC or all: a ``Rate`` metric ``casemesh_slo_<name>`` that counts
      every call of the total selection as good or not, with ``rate>=target``:
      the harness's own good/total ratio;
    - anything else (latency with status filters, statuses of a journey):
      a comment saying why not.
    """
    out = SloTranslation()
    for slo in slos:
        total, good = slo.total, slo.good
        if not isinstance(total, Selector) or not isinstance(good, Selector):
            out.untranslated.append(f"{slo.name}: {slo.display_name}: not translated, a PromQL (Prometheus) SLO that only "
                                    "`casemesh run` evaluates")
            continue
        label = f"{slo.name}: {slo.display_name} ({slo.objective_text})"
        if good.latency_le_ms is not None:
            if total.codes is not None or good.codes is not None:
                out.untranslated.append(f"{label}: not translated, a latency SLO restricted to status codes (the k6 "
                                        "percentiles here count calls of every status)")
                continue
            if total.journey is not None:
                key = f"casemesh_journey_duration{{journey:{total.journey},scenario:{MEASURED}}}"
            elif total.rpc is not None:
                key = f"grpc_req_duration{{rpc:{total.rpc},scenario:{MEASURED}}}"
            else:
                key = f"grpc_req_duration{{scenario:{MEASURED}}}"
            out.add(key, f"p({_percentile(slo.target)})<={good.latency_le_ms:g}", label)
            continue
        if total.journey is not None:
            out.untranslated.append(f"{label}: not translated, the k6 script records statuses per call, not per journey")
            continue
        metric = "casemesh_slo_" + _K6_METRIC_NAME.sub("_", slo.name)
        out.rates.append({"metric": metric, "rpc": total.rpc, "totalCodes": _codes(total.codes), "goodCodes": _codes(good.codes)})
        out.add(f"{metric}{{scenario:{MEASURED}}}", f"rate>={slo.target:g}", label)
    return out


def _codes(codes: tuple[str, ...] | None) -> list[str] | None:
    return list(codes) if codes is not None else None


def _time_unit(rates: list[float]) -> int:
    """Seconds per k6 ``timeUnit`` that makes every rate a whole number of arrivals (k6 takes integers): 1, 10, 100 or 1000.

    800/s → 1 (800 per 1 s), 0.5/s → 10 (5 per 10 s), 80.25/s → 100; rates finer than 0.001/s are rounded to it.
    """
    for unit_s in (1, 10, 100, 1000):
        if all(abs(r * unit_s - round(r * unit_s)) < 1e-6 * max(1.0, r * unit_s) for r in rates):
            return unit_s
    return 1000


def _seconds(value: float) -> str:
    """Seconds as a k6 duration (milliseconds when not whole)."""
    return f"{value:g}s" if float(value).is_integer() else f"{round(value * 1000)}ms"


@dataclass(frozen=True)
class _Piece:
    """Over ``[start_s, end_s)`` the rate goes linearly from ``rate_start`` to ``rate_end`` (arrivals/s)."""

    start_s: float
    end_s: float
    rate_start: float
    rate_end: float


def _shaped_pieces(arrival: Any, run_s: float, process: str, path: Path) -> tuple[list[_Piece], str]:
    """The rate λ(t) of a rate-shaped process over ``[0, run_s)`` as linear pieces, and how exact they are."""
    shape = arrival.shape(run_s)
    if isinstance(shape, PiecewiseLinearRate):
        knots = sorted({0.0, run_s, *(t for t in (*shape.starts, shape.end_s) if 0 < t < run_s)})
        pieces = []
        for u, v in itertools.pairwise(knots):
            # Linear inside (u, v): the rate just before v follows from the values at u and at the midpoint.
            r_u, r_mid = shape.rate(u), shape.rate((u + v) / 2)
            pieces.append(_Piece(u, v, r_u, max(0.0, r_u + 2 * (r_mid - r_u))))
        return pieces, "exact: k6 ramps linearly between stage targets, as the profile's rate does"
    if isinstance(shape, SinusoidRate):
        step_s = max(arrival.period_s / SINUSOID_PIECES_PER_PERIOD, run_s / MAX_STAGES)
        knots = [min(i * step_s, run_s) for i in range(math.ceil(run_s / step_s) + 1)]
        pieces = [_Piece(u, v, shape.rate(u), shape.rate(v)) for u, v in itertools.pairwise(knots) if v > u]
        return pieces, f"the sinusoid approximated by straight lines every {step_s:g} s"
    raise ConfigError(f"arrival process {process!r} has a rate shape k6 stages cannot express", file=str(path), field="arrival.process")


def _window(pieces: list[_Piece], start_s: float, end_s: float) -> list[_Piece]:
    """The pieces cut to ``[start_s, end_s)``."""
    cut = []
    for p in pieces:
        u, v = max(p.start_s, start_s), min(p.end_s, end_s)
        if v <= u:
            continue
        slope = (p.rate_end - p.rate_start) / (p.end_s - p.start_s)
        cut.append(_Piece(u, v, p.rate_start + slope * (u - p.start_s), p.rate_start + slope * (v - p.start_s)))
    return cut


def _stages(pieces: list[_Piece], unit_s: int) -> tuple[int, list[dict[str, Any]]]:
    """k6 ``startRate`` and ``stages`` of ramping-arrival-rate for ``pieces``: a 0 s stage for each jump, then a ramp."""
    start = round(pieces[0].rate_start * unit_s)
    current, stages = start, []
    for p in pieces:
        at_start, at_end = round(p.rate_start * unit_s), round(p.rate_end * unit_s)
        if at_start != current:
            stages.append({"target": at_start, "duration": "0s"})
        stages.append({"target": at_end, "duration": _seconds(p.end_s - p.start_s)})
        current = at_end
    return start, stages


def scenarios(profile: Profile) -> dict[str, dict[str, Any]]:
    """k6 scenarios for the profile's arrival process: ``warmup`` (when ``warmup_s`` > 0), then ``measured``.

    ``constant`` and ``poisson`` become ``constant-arrival-rate`` at the mean
    rate; the rate-shaped processes (``ramp``, ``steps``, ``spike``,
    ``rate_curve``, ``diurnal``) ``ramping-arrival-rate`` with stages that
    follow λ(t) (the sinusoid of ``diurnal`` in straight pieces). ``trace``
    replays individual timestamps, which no k6 executor can: ``ConfigError``.
    """
    arrival, process = profile.arrival, profile.arrival.process
    run_s = profile.warmup_s + profile.duration_s
    windows = ([("warmup", 0.0, profile.warmup_s)] if profile.warmup_s > 0 else []) + [(MEASURED, profile.warmup_s, run_s)]
    if process in STEADY_PROCESSES:
        peak = arrival.rate_per_s
        unit_s = _time_unit([peak])
        shapes = {name: {"executor": "constant-arrival-rate", "rate": round(peak * unit_s), "timeUnit": f"{unit_s}s",
                         "duration": _seconds(end - start)} for name, start, end in windows}
    elif process in SHAPED_PROCESSES:
        pieces, _ = _shaped_pieces(arrival, run_s, process, profile.path)
        peak = max(max(p.rate_start, p.rate_end) for p in pieces)
        if peak <= 0:
            raise ConfigError("the arrival rate is 0 for the whole run: nothing to send", file=str(profile.path), field="arrival")
        unit_s = _time_unit([r for p in pieces for r in (p.rate_start, p.rate_end)])
        shapes = {}
        for name, start, end in windows:
            start_rate, stages = _stages(_window(pieces, start, end), unit_s)
            shapes[name] = {"executor": "ramping-arrival-rate", "startRate": start_rate, "timeUnit": f"{unit_s}s", "stages": stages}
    else:
        raise ConfigError(
            f"arrival process {process!r} cannot be exported to k6: k6's executors run a rate, not recorded arrival times; "
            f"exportable processes: {', '.join((*STEADY_PROCESSES, *SHAPED_PROCESSES))}",
            file=str(profile.path), field="arrival.process",
        )
    # Little's law: a VU per journey in flight; enough for every call at the peak rate taking the whole timeout.
    vus = min(MAX_VUS, max(MIN_VUS, math.ceil(peak * profile.request_timeout_ms / 1000)))
    # In-flight journeys may finish after the scenario's end: give them up to three request timeouts.
    graceful_stop = _seconds(max(2.0, math.ceil(3 * profile.request_timeout_ms / 1000)))
    result: dict[str, dict[str, Any]] = {}
    for name, start, _ in windows:
        result[name] = {**shapes[name], "preAllocatedVUs": vus, "maxVUs": vus, "gracefulStop": graceful_stop}
        if start > 0:
            result[name]["startTime"] = _seconds(start)
    return result


def arrival_note(profile: Profile) -> str:
    """How the script's arrivals relate to the profile's (for the script's header)."""
    arrival, process = profile.arrival, profile.arrival.process
    described = arrival.describe() if hasattr(arrival, "describe") else process
    if process == "poisson":
        return (f"{described} in the profile. k6 has no Poisson executor: this script sends evenly spaced arrivals "
                f"(constant-arrival-rate) at the same mean rate, without the bursts of independent random arrivals, so it is "
                f"gentler on queues than `casemesh run`.")
    if process == "constant":
        return f"{described} (constant-arrival-rate)."
    _, exactness = _shaped_pieces(arrival, profile.warmup_s + profile.duration_s, process, profile.path)
    spacing = ("; k6 spaces arrivals evenly along the rate, where the profile draws them as a non-homogeneous Poisson process"
               if getattr(arrival, "spacing", "uniform") == "poisson" else "")
    return f"{described}, as ramping-arrival-rate stages ({exactness}){spacing}."


def _proto_files(profile: Profile) -> list[str]:
    """The .proto files (relative to protos/) that define the services the workload calls."""
    pool = descriptor_pool.Default()
    files: list[str] = []
    for service in profile.workload.services:
        name = pool.FindServiceByName(profile.workload.service_names[service]).file.name
        if name not in files:
            files.append(name)
    return files


def _js(value: Any) -> str:
    return json.dumps(value, indent=2)


def _js_lines(value: dict[str, Any] | list[Any]) -> str:
    """A dict or list as JS, one entry per line (each entry's own value on that one line)."""
    if isinstance(value, list):
        return "[\n" + "".join(f"  {json.dumps(item)},\n" for item in value) + "]" if value else "[]"
    return "{\n" + "".join(f"  {json.dumps(key)}: {json.dumps(item)},\n" for key, item in value.items()) + "}"


def _env_name(service: str) -> str:
    return "CASEMESH_TARGET_" + _K6_METRIC_NAME.sub("_", service).upper()


def _options(profile: Profile, translation: SloTranslation) -> str:
    scenario_js = re.sub(r'\{\n\s*"target": (\d+),\n\s*"duration": ("\w+")\n\s*\}', r'{ "target": \1, "duration": \2 }', _js(scenarios(profile)))
    lines = ["export const options = {", f"  scenarios: {_indent(scenario_js, 2)},", "  thresholds: {"]
    for key, (expressions, comments) in translation.thresholds.items():
        lines += [f"    // {c}" for c in comments]
        lines.append(f"    {json.dumps(key)}: {json.dumps(expressions)},")
    lines += [f"    // {c}" for c in translation.untranslated]
    lines += [
        "    // The generator kept its schedule: an iteration dropped for want of a free VU means k6 fell behind",
        "    // (casemesh run calls such a run invalid, exit code 4).",
        "    dropped_iterations: ['count==0'],",
        "  },",
        "};",
    ]
    return "\n".join(lines)


def _comment(text: str, width: int = 112) -> str:
    """``text`` as ``//`` comment lines of at most ``width`` characters."""
    return "\n".join("// " + line for line in textwrap.wrap(text, width - 3))


def _indent(text: str, spaces: int) -> str:
    return text.replace("\n", "\n" + " " * spaces)


def k6_script(profile: Profile, *, targets: dict[str, str], protos_dir: Path, rng_seed: int = 1) -> str:
    """The k6 script of ``profile``.

    ``targets`` maps each service the workload calls to its default
    ``HOST:PORT``; ``protos_dir`` is the import path of casemesh's protos
    (made absolute: k6 resolves relative paths against the script's own
    directory). ``ConfigError`` when the arrival process or the workload has
    no k6 form.
    """
    template = template_path(profile.workload.name)
    if not template.is_file():
        raise ConfigError(f"workload {profile.workload.name} has no k6 journey template ({template.name} in harness/export/k6/)",
                          file=str(profile.path), field="workload")
    protos_dir = protos_dir.resolve()
    translation = translate_slos(profile.slos)
    options_js = _options(profile, translation)  # raises ConfigError for processes k6 cannot run
    services = {
        service: {
            "fullName": profile.workload.service_names[service],
            "target": f"__ENV.{_env_name(service)} || __ENV.CASEMESH_TARGET || {json.dumps(targets[service])}",
        }
        for service in profile.workload.services
    }
    services_js = "{\n" + "".join(
        f"  {json.dumps(name)}: {{ fullName: {json.dumps(spec['fullName'])}, target: {spec['target']} }},\n"
        for name, spec in services.items()
    ) + "}"
    profile_js = {
        "name": profile.name,
        "workload": profile.workload.name,
        "requestTimeoutMs": profile.request_timeout_ms,
        "rngSeed": rng_seed,
        "seed": profile.seed.model_dump(mode="json"),
    }
    journeys = [{"name": j.name, "weight": j.weight, "params": j.params.model_dump(mode="json")} for j in profile.journeys]
    # One journey per line: the profile's journeys list, with every parameter's value (defaults filled in).
    profile_text = _js_lines(profile_js)[:-1] + '  "journeys": ' + _indent(_js_lines(journeys), 2) + ",\n}"
    env_lines = "\n".join(f"//   {_env_name(s):<34}address of {s} (default {targets[s]})" for s in profile.workload.services)
    header = f"""\
// k6 script of the casemesh profile {profile.name!r}, written by `casemesh export k6` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC
// from {profile.path}. Regenerate it rather than editing it.
//
// Run:  k6 run --no-usage-report THIS_FILE   (exit code 0: every threshold held; 99: a threshold was crossed)
// Environment:
//   CASEMESH_TARGET                   address of every service (one server for all, as `casemesh serve`); the
//                                     per-service variables below win over it
{env_lines}
//   CASEMESH_PROTOS                   import path of casemesh's protos (default {protos_dir})
//
{_comment("Arrivals: " + arrival_note(profile))}
{_comment(f"Phases: setup() seeds the workload's data; then {profile.warmup_s:g} s warm-up (scenario 'warmup', not judged) "
          f"and {profile.duration_s:g} s measured (scenario '{MEASURED}', which every threshold is on).")}
{_comment("Latency: k6 measures each call from the moment it is sent; `casemesh run` measures from the intended send time "
          "(free of coordinated omission). k6 starts more VUs when calls are slow, so at a steady rate the two agree "
          "until the VUs run out; then k6 drops iterations, which the dropped_iterations threshold catches.")}
{_comment(f"SLOs ({len(profile.slos)} in the profile): thresholds in `options` below, or a comment where k6 cannot express one "
          "(docs/cli.md, casemesh export k6).")}
"""
    parts = [
        header,
        "import grpc from 'k6/net/grpc';",
        "import encoding from 'k6/encoding';",
        "import { check, randomSeed } from 'k6';",
        "import { Rate, Trend } from 'k6/metrics';",
        "",
        "// ---- the profile (generated) ------------------------------------------------------------------------------",
        f"const PROFILE = {profile_text};",
        "",
        "// Services the journeys call: full gRPC service name and address.",
        f"const SERVICES = {services_js};",
        "",
        f"const PROTOS = {{ importPath: __ENV.CASEMESH_PROTOS || {json.dumps(str(protos_dir))}, files: {json.dumps(_proto_files(profile))} }};",
        "",
        "// Status-code SLOs: the runtime adds each call of an SLO's total selection to its rate as good or not.",
        f"const SLO_RATES = {_js_lines(translation.rates)};",
        "",
        options_js,
        "",
        template.read_text().rstrip(),
        "",
        RUNTIME.read_text().rstrip(),
        "",
    ]
    return "\n".join(parts)


def default_protos_dir() -> Path | None:
    """casemesh's ``protos/`` beside the harness package (a source checkout or editable install), if it is there."""
    candidate = Path(__file__).resolve().parents[3] / "protos"
    return candidate if (candidate / "casemesh").is_dir() else None


def default_targets(profile: Profile) -> dict[str, str]:
    """Each service's address in the shipped topology, where a plain ``casemesh serve`` listens (127.0.0.1:50051 for all)."""
    from casemesh.services.runtime.topology import DEFAULT_TOPOLOGY, load_topology

    shipped = load_topology(DEFAULT_TOPOLOGY).services
    return {s: shipped[s].address if s in shipped else DEFAULT_ADDRESS for s in profile.workload.services}
