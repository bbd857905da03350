"""The ``casemesh`` command line: run a benchmark, serve the services, validate or list profiles.

Exit codes of ``casemesh run`` (docs/cli.md):

== =====================================================================
0  every SLO passed
1  at least one SLO failed
2  configuration error: bad profile, SLO document, topology or option (no load sent)
3  harness error: services did not start, a target is unreachable, seeding failed
4  run invalid: the load generator fell behind (send lag), results not trustworthy
== =====================================================================
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import re
import sys
import time
from datetime import datetime, timezone
from enum import IntEnum
from pathlib import Path
from collections.abc import Sequence
from typing import Annotated, Any, Optional

import grpc
import typer
import uvloop
from rich.console import Console
from rich.live import Live
from rich.markup import escape

from casemesh.services.runtime.topology import check_address

from .call_policy import harness_channel_options
from .channels import open_mesh_channel
from .errors import ConfigError, HarnessError
from .readiness import DEFAULT_CONNECT_TIMEOUT_S, wait_ready
from .prometheus import find_binary as find_prometheus
from .prometheus import loopback_url

app = typer.Typer(add_completion=False, no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]},
                  help="casemesh: benchmark system-design case studies as gRPC meshes, open-loop, against SLOs.")
console = Console()
if not console.is_terminal:  # logs and CI: wide enough that the tables are not squeezed into 80 columns
    console.width = max(console.width, 140)
errors = Console(stderr=True)


def _print_error(label: str, error: object, *, style: str = "bold red") -> None:
    """Print ``LABEL: MESSAGE`` on stderr (``config error: ...``), one line per line of ``str(error)``.

    A :class:`ConfigError` with several problems prints one line each. The
    message holds user text (paths, YAML values, CSV cells, recorded method
    names), so it is escaped: Rich prints it as written, never as markup.
    """
    for line in str(error).splitlines() or [""]:
        errors.print(f"[{style}]{label}:[/] {escape(line)}", highlight=False, soft_wrap=True)


class Exit(IntEnum):
    """Exit codes of ``casemesh run``."""

    PASSED = 0
    SLO_FAILED = 1
    CONFIG_ERROR = 2
    HARNESS_ERROR = 3
    RUN_INVALID = 4


#: A run is invalid when the driver's own send lag p99 exceeds this (ms): the generator fell behind.
MAX_SEND_LAG_P99_MS = 10.0


def _parse_targets(values: list[str], workload: Any, started: Sequence[str] = ()) -> dict[str, str]:
    """``--target [SERVICE=]HOST:PORT`` values → {service: address}; a bare address needs a one-service workload.

    ``started`` are the profile's ``services:`` (what the embedded mesh
    starts): naming one that the workload does not call is explained (the
    harness only talks to the services its journeys call; the others sit
    behind them).
    """
    targets: dict[str, str] = {}
    for value in values:
        name, sep, address = value.rpartition("=")
        if not sep:
            if len(workload.services) != 1:
                raise ConfigError(f"workload {workload.name} calls {', '.join(workload.services)}: write SERVICE=HOST:PORT", field="--target")
            name = workload.services[0]
        if name not in workload.services:
            behind = (f": the embedded mesh starts {name} for the services the journeys call, but the harness never calls it; with "
                      f"--target, your {', '.join(workload.services)} call{'s' if len(workload.services) == 1 else ''} your {name} itself "
                      "(docs/bring-your-own-service.md)") if name in started else ""
            raise ConfigError(f"{name!r} is not a service the workload calls ({', '.join(workload.services)}){behind}", field="--target")
        try:
            targets[name] = check_address(address)
        except ValueError as error:
            raise ConfigError(str(error), field="--target") from None
    missing = [s for s in workload.services if s not in targets] if targets else []
    if missing:
        raise ConfigError(f"no address for {', '.join(missing)}", field="--target")
    return targets


def _show_version(value: bool) -> None:
    if value:
        console.print(f"casemesh {_casemesh_version()}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[bool, typer.Option("--version", callback=_show_version, is_eager=True, help="Print casemesh's version and exit.")] = False,
) -> None:
    """casemesh: benchmark system-design case studies as gRPC meshes, open-loop, against SLOs."""


@app.command()
def calibrate(
    force: Annotated[bool, typer.Option("--force", help="Measure again even when this machine's calibration is cached.")] = False,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the calibration document to this file.")] = None,
) -> None:
    """Measure this machine with the harness's own client: the instrument floor at a range of rates and one load process's ceiling.

    Cached per machine (CPU model, cores, Python, grpcio and casemesh versions); `casemesh run` plans --workers auto and rate_scale auto with it.
    """
    from rich.table import Table

    from .calibration.cache import cache_path, describe_age, load_calibration, save_calibration
    from .calibration.measure import ON_SCHEDULE_LAG_P99_MS, calibrate as measure

    say = lambda line: console.print(line, highlight=False, soft_wrap=True, markup=False)  # noqa: E731
    found = None if force else load_calibration()
    if found is None:
        say("calibrating: a bare echo server on 127.0.0.1 (its own process), driven open-loop by one harness process at rising rates")
        try:
            found = uvloop.run(measure(say=say))
        except HarnessError as error:
            errors.print(f"harness error: {error}", style="bold red", highlight=False, soft_wrap=True, markup=False)
            raise typer.Exit(Exit.HARNESS_ERROR) from None
        stored = save_calibration(found)
        say(f"cached in {stored}" if stored else f"could not write the cache {cache_path()}")
    else:
        say(f"cached calibration from {found['measured_at']} ({describe_age(found['age_s'])} ago; --force measures again)")
    machine = found["fingerprint"]
    say(f"machine: {machine['cpu_model']}, {machine['cpus']} CPUs, Python {machine['python']}, grpcio {machine['grpcio']}")
    table = Table(title="Instrument floor: zero-work Echo from the intended send time", title_justify="left")
    for column in ("rate/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "send lag p99 ms", "on schedule"):
        table.add_column(column, justify="right")
    for step in found["steps"]:
        latency = step["latency_ms"]
        table.add_row(f"{step['rate_per_s']:,g}", *("-" if latency.get(k) is None else f"{latency[k]:,.2f}"
                                                     for k in ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms")),
                      f"{step.get('send_lag_p99_ms') or 0:,.2f}", "yes" if step.get("on_schedule") else "NO")
    console.print(table)
    ceiling = found["ceiling_per_s"]
    say(f"one load process stays on schedule (send-lag p99 <= {found.get('lag_bound_ms') or ON_SCHEDULE_LAG_P99_MS:g} ms) up to "
        + (f"{ceiling:,.0f}/s ({found['ceiling_bound']})" if ceiling else f"no rate tried ({found['ceiling_bound']})"))
    floor = found["floor"]
    say(f"floor at {floor['rate_per_s']:g}/s: p50 {floor['p50_ms']:.2f} ms, p99 {floor['p99_ms']:.2f} ms: "
        f"a latency SLO within 3x of the floor at its rate cannot be judged on this machine")
    if found.get("noisy"):
        for warning in (found.get("cpu") or {}).get("warnings", []):
            errors.print(f"warning: {warning}", style="bold yellow", highlight=False, markup=False)
    if json_out is not None:
        json_out.write_text(json.dumps(found, indent=2) + "\n")
        say(f"written: {json_out}")


@app.command()
def run(
    profile: Annotated[str, typer.Argument(help="Shipped profile name (see `casemesh profiles`) or path to a profile YAML.")],
    duration: Annotated[Optional[float], typer.Option("--duration", help="Measured window in seconds (overrides the profile's duration_s).")] = None,
    warmup: Annotated[Optional[float], typer.Option("--warmup", help="Warm-up in seconds before the measured window (overrides warmup_s).")] = None,
    rate_scale: Annotated[Optional[str], typer.Option("--rate-scale", help="Multiply the profile's arrival rate by X, or `auto`: the highest of the profile's documented scales that this machine keeps valid (piloted first).", show_default="the profile's rate_scale")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Directory for result.json, logs and traces.", show_default="out/PROFILE")] = None,
    target: Annotated[Optional[list[str]], typer.Option("--target", help="Drive running services instead of starting them: [SERVICE=]HOST:PORT, repeatable.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of arrivals and journey choices.")] = 1,
    trace_ratio: Annotated[float, typer.Option("--trace-ratio", min=0.0, max=1.0, help="Share of journeys traced (parent-based sampling downstream).")] = 0.01,
    progress: Annotated[Optional[bool], typer.Option("--progress/--no-progress", help="Live table.", show_default="on a terminal")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a service setting: SERVICE.KEY=VALUE (e.g. video-edge.cache_bytes=0), repeatable.")] = None,
    prometheus: Annotated[bool, typer.Option("--prometheus", help="Start a Prometheus (the `prometheus` binary) on 127.0.0.1 that scrapes the services and the harness every second; evaluates Prometheus SLOs; data kept in OUT/prometheus.")] = False,
    prometheus_url: Annotated[Optional[str], typer.Option("--prometheus-url", help="Evaluate Prometheus SLOs against this running Prometheus instead (loopback only), e.g. http://127.0.0.1:9090.")] = None,
    metrics_port: Annotated[int, typer.Option("--metrics-port", min=0, max=65535, help="Port of the harness's own /metrics on 127.0.0.1.", show_default="a free port")] = 0,
    workers: Annotated[str, typer.Option("--workers", help="Load-generating processes: N (the arrival schedule split across N processes whose results merge exactly) or `auto`: as many as this machine's calibration says the rate needs, one when one suffices.")] = "auto",
    control: Annotated[bool, typer.Option("--control/--no-control", help="Drive the control stream beside the load: 20 zero-work calls/s to an echo server in the harness's process, the run's noise floor.")] = True,
    strict: Annotated[bool, typer.Option("--strict", help="Count an inconclusive SLO (missed where the machine's own floor or stalls explain it) as failed: exit 1.")] = False,
    report: Annotated[str, typer.Option("--report", help="OUT/report.html: `wait` (render it before exiting), `background` (exit with the verdict at once; a detached process renders the page a few seconds later) or `off`.")] = "wait",
    fault: Annotated[Optional[list[str]], typer.Option("--fault", metavar="SPEC", help="Inject a fault, repeatable (docs/cli.md): TARGET:ACTION[,OPTION...], e.g. 'idgen/LeaseIds:abort=UNAVAILABLE@20%,at=10s,for=5s', 'urlshortener/Resolve:delay=50ms,at=5s,for=10s', 'idgen:kill,at=10s,restart_after=5s', 'idgen:pause,at=10s,for=3s'. Times from the measured window's start; added to the profile's faults:.")] = None,
    tls: Annotated[Optional[str], typer.Option("--tls", metavar="DIR|auto", help=TLS_HELP + " `auto`: a fresh set in OUT/certs.")] = None,
    connect_timeout: Annotated[float, typer.Option("--connect-timeout", min=0.0, help="With --target: how long to wait for the targets to be ready (grpc.health.v1 SERVING, or answering at all without a health service), seconds.")] = DEFAULT_CONNECT_TIMEOUT_S,
    coordinator_listen: Annotated[Optional[str], typer.Option("--coordinator-listen", metavar="HOST:PORT", help="Distributed run (docs/scale-out.md): serve the coordinator here and split the load across --expect-workers `casemesh worker` processes that join it, instead of local --workers. A non-loopback address needs CASEMESH_COORDINATOR_TOKEN.")] = None,
    expect_workers: Annotated[Optional[int], typer.Option("--expect-workers", min=1, max=64, help="With --coordinator-listen: how many workers share the run.")] = None,
    join_timeout: Annotated[float, typer.Option("--join-timeout", min=1.0, help="With --coordinator-listen: how long to wait for every worker to join and be ready, seconds.")] = 300.0,
) -> None:
    """Benchmark a profile open-loop and judge its SLOs; writes OUT/result.json and OUT/report.html.

    Exit codes: 0 every SLO met (or inconclusive on this machine, unless --strict); 1 an SLO missed; 2 configuration error (nothing sent); 3 harness error; 4 run invalid (the load generator fell behind).
    """
    from .profile import load_profile, with_overrides, with_settings

    try:
        auto_rate = rate_scale is not None and rate_scale.strip().lower() == "auto"
        scale = None if rate_scale is None or auto_rate else _number_option(rate_scale, "--rate-scale")
        workers_n = _workers_option(workers)
        if report not in REPORT_MODES:
            raise ConfigError(f"expected one of {', '.join(REPORT_MODES)}, not {report!r}", field="--report")
        loaded = with_overrides(load_profile(profile), duration_s=duration, warmup_s=warmup, rate_scale=scale)
        if auto_rate and loaded.rate_scales is None:
            from dataclasses import replace as _replace

            from .planning import DEFAULT_RATE_SCALES

            loaded = _replace(loaded, rate_scales=DEFAULT_RATE_SCALES)
        loaded = with_settings(loaded, set_ or [])
        targets = _parse_targets(target or [], loaded.workload, loaded.services)
        if not targets and not loaded.services:
            raise ConfigError("the profile starts no services (services: []): pass --target", file=str(loaded.path), field="services")
        from .faults.plan import plan_faults

        faults = plan_faults(loaded, fault or [], external=bool(targets))
        if not targets:  # delay/abort faults need the Python runtime (harness/implementations.py)
            from .implementations import check_faults

            check_faults(faults, dict(loaded.impls))
        if prometheus and prometheus_url:
            raise ConfigError("give --prometheus (start one) or --prometheus-url (use a running one), not both", field="--prometheus-url")
        prometheus_binary = find_prometheus() if prometheus else None
        prometheus_url = loopback_url(prometheus_url) if prometheus_url else None
        coordinator = _coordinator_options(coordinator_listen, expect_workers, join_timeout, workers_n, loaded)
    except ConfigError as error:
        _print_error("config error", error)
        raise typer.Exit(Exit.CONFIG_ERROR) from None
    out_dir = out or Path("out") / loaded.name
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        tls_settings = _tls_option(tls, services=[] if targets else list(loaded.services), auto_dir=None if targets else out_dir / "certs")
    except ConfigError as error:
        _print_error("config error", error)
        raise typer.Exit(Exit.CONFIG_ERROR) from None
    traces = out_dir / "traces"
    os.environ.setdefault("CASEMESH_TRACES_DIR", str(traces))
    show_live = console.is_terminal if progress is None else progress
    try:
        code = uvloop.run(_run(loaded, targets, out_dir, show_live, seed, trace_ratio,
                               prometheus_binary=prometheus_binary, prometheus_url=prometheus_url, metrics_port=metrics_port,
                               workers=workers_n, control=control, strict=strict, report=report, tls=tls_settings,
                               faults=faults, connect_timeout_s=connect_timeout, coordinator=coordinator))
    except ConfigError as error:  # found once Prometheus runs (a query it cannot parse): still before any load
        _print_error("config error", error)
        code = Exit.CONFIG_ERROR
    except HarnessError as error:
        _print_error("harness error", error)
        code = Exit.HARNESS_ERROR
    raise typer.Exit(int(code))


#: ``--report`` values of ``casemesh run``.
REPORT_MODES = ("wait", "background", "off")


def _report(mode: str, out_dir: Path, result: dict[str, Any], slos: Any) -> None:
    """Write OUT/report.html as ``--report`` says; the verdict stands whatever happens to the page (``casemesh report`` renders it again)."""
    import subprocess

    path = out_dir / "report.html"
    if mode == "off":
        return
    if mode == "background":
        # The page: rendered by a process of its own, after the verdict, not waited for (its start-up costs more than the page).
        process = subprocess.Popen([sys.executable, "-m", "casemesh.harness.cli", "report", str(out_dir / "result.json"), "--out", str(path)],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        console.print(f"report: {path} (rendering in the background, pid {process.pid}; ready in a few seconds)",
                      highlight=False, soft_wrap=True, markup=False)
        return
    try:
        from .report_html import write_run_report
        console.print(f"report: {write_run_report(result, path, slos=slos)}", markup=False)
    except Exception as error:  # noqa: BLE001
        _print_error("report.html not written", f"{type(error).__name__}: {error}", style="bold yellow")


def _cut_note(profile: Any) -> str:
    """For a trace that the run's warm-up + duration cuts short: how many of its arrivals the run will send."""
    if profile.arrival.process != "trace":
        return ""
    run_s = profile.warmup_s + profile.duration_s
    sending = profile.arrival.trace.count_between(profile.arrival.speed, 0.0, run_s)
    total = len(profile.arrival.trace)
    return f" (the run sends {sending:,} of the trace's {total:,} arrivals: --duration ends it first)" if sending < total else ""


def _number_option(value: str, flag: str) -> float:
    """A float option that also takes a word (``--rate-scale auto``); ``ConfigError`` naming ``flag`` otherwise."""
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"expected a number or auto, not {value!r}", field=flag) from None


#: Most load processes ``--workers`` accepts.
MAX_WORKERS_OPTION = 64


def _workers_option(value: str) -> int | None:
    """``--workers``: ``None`` for ``auto``, else N in 1..64; ``ConfigError`` otherwise."""
    if value.strip().lower() == "auto":
        return None
    try:
        count = int(value)
    except ValueError:
        raise ConfigError(f"expected a whole number of processes or auto, not {value!r}", field="--workers") from None
    if not 1 <= count <= MAX_WORKERS_OPTION:
        raise ConfigError(f"must be between 1 and {MAX_WORKERS_OPTION}, not {count}", field="--workers")
    return count


def _coordinator_options(listen: str | None, expect: int | None, join_timeout_s: float, workers: int | None, profile: Any) -> dict[str, Any] | None:
    """``--coordinator-listen``/``--expect-workers`` as ``{listen, workers, join_timeout_s, token}``; ``None`` for a local run.

    ``ConfigError`` naming the option: one without the other, with a number
    of ``--workers``, ``rate_scale: auto`` (it pilots on this machine, not the
    workers': give ``--rate-scale``), a malformed address, or a non-loopback
    one without ``CASEMESH_COORDINATOR_TOKEN`` (harness/distributed/coordinator.py).
    """
    if listen is None:
        if expect is not None:
            raise ConfigError("needs --coordinator-listen HOST:PORT", field="--expect-workers")
        return None
    from casemesh.services.runtime.bind_check import is_loopback

    from .distributed.coordinator import TOKEN_ENV

    if expect is None:
        raise ConfigError("say how many workers will join: --expect-workers N", field="--coordinator-listen")
    if workers is not None:
        raise ConfigError("the load is split across the workers that join --coordinator-listen: leave out --workers", field="--workers")
    if profile.rate_scales:
        raise ConfigError("rate_scale: auto pilots rates on this machine, not on the workers': give --rate-scale X", field="--rate-scale")
    try:
        check_address(listen)
    except ValueError as error:
        raise ConfigError(str(error), field="--coordinator-listen") from None
    token = os.environ.get(TOKEN_ENV) or None
    if token is None and not is_loopback(listen):
        raise ConfigError(f"{listen} is not a loopback address: set {TOKEN_ENV} (the same on every worker) so that only "
                          "your workers can join and receive the run", field="--coordinator-listen")
    return {"listen": listen, "workers": expect, "join_timeout_s": join_timeout_s, "token": token}


#: Help of ``--tls`` on the commands that start or reach the mesh.
TLS_HELP = ("mTLS: a `casemesh certs init` folder (DIR/ca.pem, DIR/SERVICE.pem and .key, DIR/harness.pem and .key). "
            "The embedded mesh serves and calls with it (plaintext refused) and the harness connects as spiffe://casemesh.local/harness; "
            "with --target only the harness's certificate is used.")


def _tls_option(value: str | None, *, services: Sequence[str] = (), auto_dir: Path | None = None) -> Any:
    """``--tls DIR`` as a topology ``tls:`` section with an absolute ``dir``; ``None`` without ``--tls``.

    ``auto`` (only where ``auto_dir`` is given: the embedded mesh) makes a
    fresh set there with ``casemesh certs init``. The harness's and
    ``services``' files are checked now: ``ConfigError`` naming ``--tls`` and
    the file otherwise.
    """
    from casemesh.services.runtime.tls import TlsError
    from casemesh.services.runtime.topology import TlsSettings

    from .channels import HARNESS_IDENTITY, check_tls

    if value is None:
        return None
    if value.strip().lower() == "auto":
        if auto_dir is None:
            raise ConfigError("auto makes certificates for the embedded mesh only; a --target needs the folder its CA issued from (casemesh certs init)", field="--tls")
        from .certs import init_certs

        try:
            init_certs(auto_dir, force=True)
        except OSError as error:
            raise ConfigError(f"cannot write certificates to {auto_dir}: {error.strerror or error}", field="--tls") from None
        directory = auto_dir
    else:
        directory = Path(value)
        if not directory.is_dir():
            raise ConfigError(f"{value} is not a folder (make one with: casemesh certs init {value})", field="--tls")
    tls = TlsSettings(dir=str(directory.resolve()))
    try:
        check_tls(tls, [HARNESS_IDENTITY, *services])
    except TlsError as error:
        # "tls.dir (harness key): cannot read ..." -> "harness key: cannot read ...": --tls is the field here.
        raise ConfigError(re.sub(r"^tls\.dir(?: \((.*?)\))?: ", lambda m: f"{m.group(1)}: " if m.group(1) else "", str(error)),
                          field="--tls") from None
    return tls


async def _seed(driver: Any, profile: Any) -> None:
    """Seed the workload's data through ``driver`` (a Driver or anything with its ``seed()``); ``HarnessError`` when a call fails.

    Shared by ``run`` and ``capacity``.
    """
    try:
        console.print(f"seeding {profile.workload.name} data")
        await driver.seed()
    except grpc.aio.AioRpcError as error:
        raise HarnessError(f"seeding failed: {error.code().name}: {error.details()}") from None


def _send_lag_invalid(stats: Any) -> list[str]:
    """Why a run is invalid by its send lag: ``[]`` when the p99 is within :data:`MAX_SEND_LAG_P99_MS`, else the reasons.

    Also a reason: the driver abandoned the run, too far behind its schedule
    (harness/driver.py). Shared by ``run`` and ``capacity`` (every step of a
    capacity search is judged by the same bound).
    """
    reasons = []
    timeline = stats.timeline
    if timeline.abandoned_at_s is not None:
        reasons.append(f"the load generator was {timeline.abandoned_behind_s:.1f} s behind its schedule at {timeline.abandoned_at_s:.1f} s "
                       "and stopped sending there (its own event loop, not the server, was the limit)")
    lag_p99_ms = stats.send_lag.get_value_at_percentile(99) / 1000 if stats.send_lag.get_total_count() else 0.0
    if lag_p99_ms > MAX_SEND_LAG_P99_MS:
        reasons.append(f"send lag p99 {lag_p99_ms:.1f} ms > {MAX_SEND_LAG_P99_MS:g} ms: the load generator fell behind its schedule")
    return reasons


async def _run(profile: Any, targets: dict[str, str], out_dir: Path, show_live: bool, seed: int, trace_ratio: float, *,
               prometheus_binary: str | None = None, prometheus_url: str | None = None, metrics_port: int = 0,
               workers: int | None = 1, control: bool = True, strict: bool = False, report: str = "wait",
               tls: Any = None, faults: tuple[Any, ...] = (), connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
               coordinator: dict[str, Any] | None = None) -> Exit:
    """The body of ``casemesh run``: plan, start, seed, pilot, drive (beside the control stream), judge, report.

    ``faults`` run in the measured window against the embedded mesh (harness/faults/).

    ``workers`` is N, or ``None`` for ``--workers auto`` (harness/planning.py);
    ``tls`` the ``--tls`` settings (mTLS for the embedded mesh and every harness channel);
    ``coordinator`` the distributed run's options (:func:`_coordinator_options`), ``None`` for a local one.
    """
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON

    from casemesh.services.runtime.tracing import RATIO_ENV, configure_tracing

    from .calibration.machine import CpuWatch, fingerprint, listening_pids
    from .control import ControlStream, control_summary, run_beside
    from .driver import Driver
    from .floor import qualify
    from .loop_series import run_event_loop, start_harness_probe
    from .mesh import Mesh
    from .planning import ONE_PROCESS_ALWAYS_PER_S, auto_workers, choose_rate_scale, offered_rate, scaled_for
    from .report import live_view, progress_line, summary_view
    from .prometheus import RunMonitor
    from .result import build_result, worker_summary
    from .slo import check_queries, evaluate

    say = lambda line: console.print(line, highlight=False, soft_wrap=True, markup=False)  # noqa: E731
    if coordinator is not None:
        workers = coordinator["workers"]
    calibration = None
    if (workers is None and offered_rate(profile) > ONE_PROCESS_ALWAYS_PER_S) or profile.rate_scales:
        calibration = await _calibration(say)
    provider = configure_tracing("casemesh-harness", sampler=ALWAYS_ON)  # the driver samples journeys itself
    mesh = None
    fault_runner = None
    if faults:
        from .faults.runner import FaultRunner

        fault_runner = FaultRunner(faults, None, out_dir / "faults", say=say)
        fault_runner.prepare()
    if not targets:
        # The services start no traces of their own: every trace starts at a sampled journey.
        mesh = Mesh(list(profile.services), out_dir, env={RATIO_ENV: "0", **(fault_runner.env if fault_runner else {})},
                    settings=profile.settings, tls=tls, impls=dict(profile.impls))
        if fault_runner is not None:
            fault_runner.mesh = mesh
        if profile.topology is not None:  # the profile's calls: and server: sections (harness/call_policy.py)
            mesh.topology = profile.topology.applied(mesh.topology)
        say(f"starting {', '.join(profile.services)} on 127.0.0.1{' with mTLS' if tls else ''} (logs in {out_dir / 'logs'})")
        await mesh.start()
        targets = {s: mesh.topology.endpoint(s).address for s in profile.workload.services}
    channels = {service: open_mesh_channel(address, tls, options=harness_channel_options(profile.harness_retry))
                for service, address in targets.items()}
    started_at = datetime.now(timezone.utc)
    pool = None
    control_stream = None
    plan: dict[str, Any] = {}
    monitor = RunMonitor(profile.slos, out_dir, binary=prometheus_binary, url=prometheus_url, metrics_port=metrics_port, say=say)
    loop_probe = None
    external = [] if mesh is not None else list(targets.values())
    watch = CpuWatch(lambda: listening_pids(external))  # a local --target is the system under test, not noise
    cpu_use = None
    try:
        loop_probe = start_harness_probe(monitor.metrics.loop, out_dir / "logs")  # event-loop lag and GC pauses, per second
        scrape = {} if mesh is None else {name: e.metrics_address for name, e in mesh.topology.services.items() if e.metrics_address}
        if mesh is not None:  # casemesh_mesh_restarts_total{service}: services the mesh restarted after a crash
            monitor.metrics.registry.register(mesh.collector())
        await monitor.start(scrape, check=lambda api: check_queries(profile.slos, api))
        tracer = provider.get_tracer("casemesh.harness")
        if mesh is None:  # --target: a server still starting must not lose the race with seeding (harness/readiness.py)
            await wait_ready(targets, channels, connect_timeout_s, say)
        seeder = Driver(profile, channels, rng_seed=seed, tracer=tracer, trace_ratio=trace_ratio)
        await _seed(seeder, profile)
        if profile.rate_scales:
            say(f"rate_scale auto: piloting {', '.join(f'x{s:g}' for s in profile.rate_scales)} of {offered_rate(profile):,.0f}/s")
            choice = await choose_rate_scale(profile, channels, seeder.state, profile.rate_scales, calibration=calibration,
                                             one_process=workers in (None, 1), seed=seed, say=say)
            profile = scaled_for(profile, choice)
            plan["rate"] = choice.to_dict()
            say(f"rate chosen: {choice.rate_per_s:,.0f}/s (x{choice.scale:g}): {choice.reason}")
        if coordinator is not None:
            plan["workers"] = {"count": workers, "mode": "remote", "reason": f"--expect-workers, joined at --coordinator-listen {coordinator['listen']}"}
        elif workers is None:
            workers, why = auto_workers(offered_rate(profile), calibration, os.cpu_count() or 1)
            plan["workers"] = {"count": workers, "mode": "auto", "reason": why}
            if workers > 1:
                say(f"--workers auto: {workers} load processes ({why})")
        else:
            plan["workers"] = {"count": workers, "mode": "given", "reason": "--workers"}
        if coordinator is not None:  # the schedule split across workers that join over gRPC (harness/distributed/)
            from .distributed.coordinator import RemoteWorkerPool

            pool = driver = RemoteWorkerPool(profile, channels, targets, workers=workers, listen=coordinator["listen"],
                                             token=coordinator["token"], join_timeout_s=coordinator["join_timeout_s"], rng_seed=seed,
                                             trace_ratio=trace_ratio, say=say, on_snapshot=monitor.metrics.collector.attach, tls=tls)
            pool.state = seeder.state
            await pool.start()
            monitor.metrics.collector.attach(pool.stats, pool.progress)
        elif workers > 1:  # the schedule split across N processes (harness/workers.py)
            from .workers import WorkerPool

            pool = driver = WorkerPool(profile, channels, targets, workers=workers, rng_seed=seed, trace_ratio=trace_ratio,
                                       say=say, on_snapshot=monitor.metrics.collector.attach, tls=tls)
            pool.state = seeder.state
            await pool.start()  # workers connected and ready: their start-up is not part of the load
            monitor.metrics.collector.attach(pool.stats, pool.progress)
        else:
            driver = seeder if seeder.profile is profile else Driver(profile, channels, rng_seed=seed, tracer=tracer, trace_ratio=trace_ratio)
            driver.state = seeder.state
            monitor.attach(driver)
        if control:
            control_stream = ControlStream(profile.warmup_s, profile.duration_s)
            await control_stream.start()
        cpu_start = time.process_time()
        total_s = profile.warmup_s + profile.duration_s
        # Everything allocated so far (modules, profile, seed data) lives for the whole run: keep it out
        # of the garbage collector's scans, which otherwise grow with it while the load is driven.
        gc.freeze()
        say(f"driving {profile.arrival.describe()} for {profile.warmup_s:g} s warm-up + {profile.duration_s:g} s measured"
            + _cut_note(profile)
            + (f", beside the control stream ({control_stream.rate_per_s:g} zero-work calls/s)" if control_stream else ""))
        watch.start()
        if fault_runner is not None:  # switches each fault on and off at its time, from the driver's clock
            fault_runner.start(driver.progress, profile.warmup_s, profile.duration_s)
        if show_live:
            with Live(console=console, refresh_per_second=2, transient=False) as live:
                def tick() -> None:
                    verdicts = [v.to_dict() for v in evaluate(profile.slos, driver.stats, not_evaluated_note=monitor.pending_note)]
                    live.update(live_view(driver.progress, driver.stats, verdicts, profile.warmup_s, total_s))
                stats = await run_beside(driver, control_stream, tick)
        else:
            ticks = 0

            def tick() -> None:
                nonlocal ticks
                ticks += 1
                if ticks % 5 == 0 or driver.progress.phase == "done":
                    console.print(progress_line(driver.progress, total_s), highlight=False, soft_wrap=True, markup=False)
            stats = await run_beside(driver, control_stream, tick)
        cpu_use = watch.stop()
        cpu_s = time.process_time() - cpu_start
        # Prometheus SLOs need a scrape after the load, before the services stop.
        window = await monitor.window(driver.progress, profile.warmup_s)
        verdicts = await asyncio.to_thread(evaluate, profile.slos, stats, window)
    finally:
        if control_stream is not None:
            await control_stream.stop()
        if pool is not None:
            pool.close()
        for channel in channels.values():
            await channel.close()
        if fault_runner is not None:  # ends its task, resumes a paused service whatever happened
            fault_runner.stop()
        if mesh:
            mesh.stop()
        monitor.stop()
        provider.shutdown()
        if loop_probe is not None:
            loop_probe.stop()

    stalls: list[Any] = []
    if control_stream is not None:
        verdicts, stalls = qualify(verdicts, profile.slos, stats, control_stream.stats, profile.warmup_s, profile.warmup_s + profile.duration_s)
    invalid = _send_lag_invalid(stats)
    if pool is not None:
        worker_info = pool.worker_summaries()
        invalid += pool.behind_schedule(MAX_SEND_LAG_P99_MS)  # one worker behind is enough, even when the merged p99 hides it
    else:
        worker_info = [worker_summary(index=0, pid=os.getpid(), stats=stats, start_skew_s=0.0, cpu_s=cpu_s)]
    target_info = {"mode": "external" if mesh is None else "embedded", "services": targets, "tls": tls is not None}
    if mesh is not None:  # crashes during the run and the restarts that followed (harness/supervisor.py)
        target_info["restarts"] = {name: count for name, count in mesh.restarts.items() if count}
        target_info["restart_events"] = list(mesh.restart_events)
    environment = {
        "machine": fingerprint(),
        "calibration": _calibration_summary(calibration),
        "control": None if control_stream is None else control_summary(control_stream.stats, profile.warmup_s, control_stream.rate_per_s),
        "stalls": [s.to_dict() for s in stalls],
        "cpu": None if cpu_use is None else cpu_use.to_dict(),
        "noisy": bool(cpu_use and cpu_use.noisy),
    }
    result = build_result(profile=profile, stats=stats, verdicts=verdicts, target=target_info,
                          started_at=started_at, valid=not invalid, invalid_reasons=invalid,
                          prometheus=monitor.describe(window), workers=worker_info,
                          event_loop=run_event_loop(out_dir / "logs", stats=stats, profile=profile, driver_started_at=driver.progress.started_at,
                                                    not_before_unix=started_at.timestamp() - 1),
                          environment=environment, plan=plan, strict=strict,
                          tail_breakdown=_tail_breakdown(stats, out_dir, started_at, trace_ratio))
    if fault_runner is not None:
        from .faults.summary import fault_results

        fault_runner.read_service_events()
        result["faults"] = fault_results(fault_runner, result)
    (out_dir / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    console.print(summary_view(result))
    console.print(f"result: {out_dir / 'result.json'}", markup=False)
    _report(report, out_dir, result, profile.slos)
    for line in monitor.summary_lines():
        console.print(line, highlight=False, soft_wrap=True, markup=False)
    if invalid:
        return Exit.RUN_INVALID
    return Exit.PASSED if result["passed"] else Exit.SLO_FAILED


def _tail_breakdown(stats: Any, out_dir: Path, started_at: datetime, trace_ratio: float) -> dict[str, Any]:
    """Where the sampled tail journeys' time went, by hop (harness/tail_breakdown.py); ``{}`` when nothing was traced."""
    from casemesh.services.runtime.tracing import TRACES_DIR_ENV

    from .tail_breakdown import run_breakdown

    if trace_ratio <= 0:
        return {}
    return run_breakdown(Path(os.environ.get(TRACES_DIR_ENV) or out_dir / "traces"), stats.journeys, started_at.timestamp() - 1)


#: A calibration measured on a noisy machine is used for this long (s), then measured again by the next run that needs it.
NOISY_CALIBRATION_TRUSTED_S = 600


async def _calibration(say: Any) -> dict[str, Any] | None:
    """This machine's cached calibration, or a new one measured now (and cached); ``None`` when it cannot be had."""
    from .calibration.cache import cache_path, describe_age, load_calibration, save_calibration
    from .calibration.measure import calibrate

    found = load_calibration()
    if found is not None and found.get("noisy") and found["age_s"] > NOISY_CALIBRATION_TRUSTED_S:
        say(f"the cached calibration was measured on a noisy machine {describe_age(found['age_s'])} ago: measuring again")
        found = None
    if found is not None:
        held = f"one load process holds {found['ceiling_per_s']:,.0f}/s" if found["ceiling_per_s"] else "no rate held on schedule"
        say(f"calibration of this machine: {held}, floor p99 {found['floor']['p99_ms']:.2f} ms at {found['floor']['rate_per_s']:g}/s "
            f"(measured {describe_age(found['age_s'])} ago{', on a noisy machine' if found.get('noisy') else ''}; "
            f"`casemesh calibrate --force` measures again)")
        return found
    say(f"calibrating this machine once (about 30 s; cached in {cache_path()}):")
    try:
        found = await calibrate(say=lambda line: say(line))
    except HarnessError as error:
        say(f"calibration failed ({error}): planning without it")
        return None
    save_calibration(found)
    return {**found, "age_s": 0}


def _calibration_summary(calibration: dict[str, Any] | None) -> dict[str, Any] | None:
    """``environment.calibration`` of result.json: the ceiling, the floor, age and noise of the calibration used."""
    if calibration is None:
        return None
    return {key: calibration.get(key) for key in ("measured_at", "age_s", "ceiling_per_s", "ceiling_bound", "floor", "noisy")}


#: Pause between capacity steps (s): in-flight work has drained by then; servers finish what was cancelled.
CAPACITY_STEP_PAUSE_S = 1.0


@app.command()
def capacity(
    profile: Annotated[str, typer.Argument(help="Shipped profile name or path to a profile YAML (constant or poisson arrivals).")],
    start: Annotated[Optional[float], typer.Option("--start", help="Offered rate of the first step, requests/s (default: the profile's rate_per_s).")] = None,
    step: Annotated[Optional[str], typer.Option("--step", help="How each step raises the rate: a rate to add (500) or a factor (x2) (default: the --start rate, added).")] = None,
    resolution: Annotated[Optional[float], typer.Option("--resolution", help="Bisection stops when the highest passing and the lowest failing rate are at most this far apart, requests/s (default: 10% of --start).")] = None,
    max_rate: Annotated[Optional[float], typer.Option("--max-rate", help="No step above this rate, requests/s (default: 100,000, the profile format's limit).")] = None,
    step_duration: Annotated[float, typer.Option("--step-duration", help="Measured seconds per step.")] = 10.0,
    step_warmup: Annotated[float, typer.Option("--step-warmup", help="Warm-up seconds before each step's measured window (sent, not measured).")] = 2.0,
    max_steps: Annotated[int, typer.Option("--max-steps", help="Steps run at most, re-runs included.")] = 20,
    time_limit: Annotated[float, typer.Option("--time-limit", help="Seconds the whole search may take; a step expected to end later is not started.")] = 900.0,
    out: Annotated[Optional[Path], typer.Option("--out", help="Directory for capacity.json, capacity.html, steps/, logs (default: out/PROFILE-capacity).")] = None,
    target: Annotated[Optional[list[str]], typer.Option("--target", help="Drive running services instead of starting them: [SERVICE=]HOST:PORT, repeatable.")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a service setting: SERVICE.KEY=VALUE, repeatable.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of arrivals and journey choices (the same in every step).")] = 1,
    progress: Annotated[Optional[bool], typer.Option("--progress/--no-progress", help="Live table and progress line (default: on a terminal).")] = None,
    control: Annotated[bool, typer.Option("--control/--no-control", help="Drive the control stream beside each step: a step whose misses the machine's stalls or floor explain is re-run once, not believed.")] = True,
    tls: Annotated[Optional[str], typer.Option("--tls", metavar="DIR|auto", help=TLS_HELP + " `auto`: a fresh set in OUT/certs.")] = None,
    connect_timeout: Annotated[float, typer.Option("--connect-timeout", min=0.0, help="With --target: how long to wait for the targets to be ready, seconds.")] = DEFAULT_CONNECT_TIMEOUT_S,
) -> None:
    """Find the highest offered rate that meets every SLO: step the rate up until a step fails, then bisect; writes OUT/capacity.json.

    Exit codes: 0 a capacity was found, 1 even the first step failed, 2 configuration error, 3 harness error.
    """
    from .capacity import STEADY_PROCESSES, Plan, StepSize
    from .profile import MAX_RATE_PER_S, load_profile, with_overrides, with_settings

    try:
        loaded = with_settings(load_profile(profile), set_ or [])
        targets = _parse_targets(target or [], loaded.workload, loaded.services)
        if not targets and not loaded.services:
            raise ConfigError("the profile starts no services (services: []): pass --target", file=str(loaded.path), field="services")
        if loaded.arrival.process not in STEADY_PROCESSES:
            raise ConfigError(f"capacity offers one steady rate per step: the arrival process must be {' or '.join(STEADY_PROCESSES)}, "
                              f"not {loaded.arrival.process}", file=str(loaded.path), field="arrival.process")
        first = loaded.arrival.rate_per_s if start is None else start
        plan = Plan(start_per_s=first, step=StepSize.parse(step) if step is not None else StepSize(rate_per_s=first),
                    resolution_per_s=first * 0.1 if resolution is None else resolution,
                    max_rate_per_s=MAX_RATE_PER_S if max_rate is None else max_rate, max_steps=max_steps,
                    time_limit_s=time_limit, step_duration_s=step_duration, step_warmup_s=step_warmup)
        plan.check(MAX_RATE_PER_S)
        loaded = with_overrides(loaded, duration_s=step_duration, warmup_s=step_warmup)
    except ConfigError as error:
        _print_error("config error", error)
        raise typer.Exit(Exit.CONFIG_ERROR) from None
    out_dir = out or Path("out") / f"{loaded.name}-capacity"
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        tls_settings = _tls_option(tls, services=[] if targets else list(loaded.services), auto_dir=None if targets else out_dir / "certs")
    except ConfigError as error:
        _print_error("config error", error)
        raise typer.Exit(Exit.CONFIG_ERROR) from None
    os.environ.setdefault("CASEMESH_TRACES_DIR", str(out_dir / "traces"))
    show_live = console.is_terminal if progress is None else progress
    try:
        code = uvloop.run(_capacity(loaded, targets, out_dir, plan, show_live, seed, with_control=control, tls=tls_settings,
                                    connect_timeout_s=connect_timeout))
    except HarnessError as error:
        _print_error("harness error", error)
        code = Exit.HARNESS_ERROR
    raise typer.Exit(int(code))


async def _capacity(profile: Any, targets: dict[str, str], out_dir: Path, plan: Any, show_live: bool, seed: int,
                    with_control: bool = True, tls: Any = None, connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S) -> Exit:
    """The search of ``casemesh capacity`` (harness/capacity.py): one mesh, one seeding, one Driver per step.

    ``profile`` carries the step's warm-up and duration already; each step
    copies it with ``arrival.rate_per_s`` set to the step's rate. The embedded
    mesh (no ``targets``) is started once and kept for every step, the
    workload seeded once; what that means for the measurements is in
    docs/cli.md (``casemesh capacity``). Returns ``Exit.PASSED`` when a
    capacity was found, ``Exit.SLO_FAILED`` when no step passed.
    """
    from dataclasses import replace

    from rich.console import Group
    from rich.text import Text

    from casemesh.services.runtime.tracing import RATIO_ENV

    from .capacity import capacity_document, final_line, judge_step, search, slo_subjects, step_line, steps_table
    from .control import ControlStream, control_summary, run_beside
    from .driver import Driver
    from .floor import qualify
    from .mesh import Mesh
    from .report import progress_line
    from .result import build_result
    from .slo import evaluate
    from .workloads.base import scale_rate_fields

    started = time.monotonic()
    subjects = slo_subjects(profile.slos)
    total_s = profile.warmup_s + profile.duration_s
    steps_dir = out_dir / "steps"
    steps_dir.mkdir(exist_ok=True)
    say = lambda line: console.print(line, highlight=False, soft_wrap=True, markup=False)  # noqa: E731
    say(f"capacity of {profile.name}: {plan.describe()}")
    mesh = None
    if not targets:
        # Tracing is off for the search (no journey is sampled), so the services start no traces either.
        mesh = Mesh(list(profile.services), out_dir, env={RATIO_ENV: "0"}, settings=profile.settings, tls=tls,
                    impls=dict(profile.impls))
        if profile.topology is not None:  # the profile's calls: and server: sections (harness/call_policy.py)
            mesh.topology = profile.topology.applied(mesh.topology)
        say(f"starting {', '.join(profile.services)} on 127.0.0.1{' with mTLS' if tls else ''} once for the whole search (logs in {out_dir / 'logs'})")
        try:
            await mesh.start()
        except BaseException:
            mesh.stop()
            raise
        targets = {s: mesh.topology.endpoint(s).address for s in profile.workload.services}
    target_info = {"mode": "external" if mesh is None else "embedded", "services": targets, "tls": tls is not None}
    channels = {service: open_mesh_channel(address, tls, options=harness_channel_options(profile.harness_retry))
                for service, address in targets.items()}
    document_path = out_dir / "capacity.json"

    def at_rate(rate: float) -> Any:
        return replace(profile, arrival=profile.arrival.model_copy(update={"rate_per_s": rate}))

    # Seed data sized for a rate (Params.RATE_FIELDS: the ads budgets) is sized for the search's highest rate, scaled
    # from the profile's own: what a step measures is then never capped by data sized for a lower one.
    seed_profile = replace(at_rate(plan.start_per_s), seed=scale_rate_fields(
        profile.seed, plan.max_rate_per_s / profile.arrival.rate_per_s))

    def write_document(steps: list[Any], capacity_per_s: float | None, stopped_reason: str) -> dict[str, Any]:
        document = capacity_document(profile, steps, capacity_per_s, stopped_reason)
        document_path.write_text(json.dumps(document, indent=2) + "\n")
        return document

    live: Live | None = None
    done: list[Any] = []
    status = Text("")

    def refresh() -> None:
        if live is not None:
            live.update(Group(steps_table(done, subjects, title="Capacity steps (so far)"), status))

    try:
        if mesh is None:  # --target: wait until the targets are ready (harness/readiness.py)
            await wait_ready(targets, channels, connect_timeout_s, say)
        seeder = Driver(seed_profile, channels, rng_seed=seed)
        await _seed(seeder, profile)
        state = seeder.state
        # The seed data and everything before it live for the whole search: keep them out of the collector's scans.
        gc.freeze()
        if show_live:
            live = Live(console=console, refresh_per_second=2, transient=True)
            live.start()

        async def run_step(rate: float) -> Any:
            index = len(done) + 1
            step_profile = at_rate(rate)
            driver = Driver(step_profile, channels, rng_seed=seed)
            driver.state = state  # the search seeds once: every step drives the same data
            ticks = 0

            def tick() -> None:
                nonlocal ticks
                ticks += 1
                line = (f"step {index} at {rate:,.6g}/s {progress_line(driver.progress, total_s)}; "
                        f"search {time.monotonic() - started:,.0f} s of at most {plan.time_limit_s:,g} s")
                if live is not None:
                    status.plain = line
                    refresh()
                elif ticks % 5 == 0:
                    say(line)

            if live is None:
                say(f"step {index}: driving {step_profile.arrival.describe()} for {profile.warmup_s:g} s warm-up + {profile.duration_s:g} s measured")
            began = datetime.now(timezone.utc)
            control = ControlStream(step_profile.warmup_s, step_profile.duration_s) if with_control else None
            if control is not None:
                await control.start()
            try:
                stats = await run_beside(driver, control, tick)
            finally:
                if control is not None:
                    await control.stop()
            verdicts = await asyncio.to_thread(evaluate, step_profile.slos, stats)
            stalls: list[Any] = []
            if control is not None:  # a step whose misses the machine explains is re-run, not believed
                verdicts, stalls = qualify(verdicts, step_profile.slos, stats, control.stats, step_profile.warmup_s,
                                           step_profile.warmup_s + step_profile.duration_s)
            invalid = _send_lag_invalid(stats)
            environment = None if control is None else {
                "control": control_summary(control.stats, step_profile.warmup_s, control.rate_per_s),
                "stalls": [s.to_dict() for s in stalls]}
            result = build_result(profile=step_profile, stats=stats, verdicts=verdicts, target=target_info, started_at=began,
                                  valid=not invalid, invalid_reasons=invalid, environment=environment)
            step_dir = steps_dir / f"{index:02d}-{rate:g}"
            step_dir.mkdir(exist_ok=True)
            (step_dir / "result.json").write_text(json.dumps(result, indent=2) + "\n")
            outcome = judge_step(rate_per_s=rate, profile=step_profile, stats=stats, verdicts=verdicts, invalid_reasons=invalid,
                                 send_lag_bound_ms=MAX_SEND_LAG_P99_MS, result=result, stalls=[s.describe() for s in stalls])
            del driver, stats, result
            # Drained: let the services finish work whose callers gave up, and collect this step's garbage now,
            # not during the next step's load.
            await asyncio.sleep(CAPACITY_STEP_PAUSE_S)
            gc.collect()
            return outcome

        def on_step(outcome: Any, steps: list[Any]) -> None:
            done[:] = steps
            write_document(steps, None, "in progress")
            if live is not None:
                status.plain = f"step {len(steps)} at {outcome.rate_per_s:,.6g}/s: {'pass' if outcome.passed else outcome.kind}"
                refresh()
            else:
                say(step_line(len(steps), outcome, subjects))

        found = await search(plan, run_step, on_step=on_step, started_at=started)
    finally:
        if live is not None:
            live.stop()
        for channel in channels.values():
            await channel.close()
        if mesh:
            mesh.stop()

    document = write_document(found.steps, found.capacity_per_s, found.stopped_reason)
    console.print(steps_table(found.steps, subjects))
    say(f"stopped: {found.stopped_reason}")
    console.print(Text(final_line(found.capacity_per_s), style="bold green" if found.capacity_per_s is not None else "bold red"))
    say(f"capacity: {document_path} (each step's result.json in {steps_dir})")
    try:  # the answer stands whatever happens to the page; `casemesh report OUT/capacity.json` renders it again
        from .report_html import render_capacity_report

        html_path = out_dir / "capacity.html"
        html_path.write_text(render_capacity_report(document, slos=profile.slos), encoding="utf-8")
        say(f"report: {html_path}")
    except Exception as error:  # noqa: BLE001
        _print_error("capacity.html not written", f"{type(error).__name__}: {error}", style="bold yellow")
    return Exit.PASSED if found.capacity_per_s is not None else Exit.SLO_FAILED


@app.command()
def serve(
    services: Annotated[Optional[list[str]], typer.Argument(help="Services to serve.", show_default="every service the topology lists")] = None,
    topology: Annotated[Optional[Path], typer.Option("--topology", help="Topology YAML.", show_default="$CASEMESH_TOPOLOGY or the shipped one")] = None,
    use_uvloop: Annotated[bool, typer.Option("--uvloop/--no-uvloop", help="Run on uvloop.")] = True,
    supervise: Annotated[bool, typer.Option("--supervise/--no-supervise",
                                            help="Serve in a child process and restart it with backoff when it crashes.")] = True,
    tls: Annotated[Optional[Path], typer.Option("--tls", metavar="DIR", help="Serve and call with mTLS from this `casemesh certs init` folder (replaces the topology's tls:).")] = None,
    dev_secret: Annotated[bool, typer.Option("--dev-secret", help="Use a random mesh secret made for this command (local use: only services served by this command accept its calls and upload tokens).")] = False,
) -> None:
    """Serve case-study services on their topology addresses until SIGTERM/SIGINT.

    Needs the mesh secret, shared by every process of the mesh:
    ``CASEMESH_SECRET`` or ``CASEMESH_SECRET_FILE`` (docs/security.md,
    "Secrets"); exit 2 without one, with a weak one, or with the old public
    constant. ``--dev-secret`` makes a random one instead, for local use.

    With ``--supervise`` (the default) the services run in one child process;
    when it crashes (killed by a signal, or exits non-zero other than a
    configuration error) it is restarted with exponential backoff (0.5 s
    doubling to 10 s; left down after 10 crashes in a row), each restart
    logged. SIGTERM/SIGINT are passed to the child, which drains and stops.

    Refuses (exit 2) a plaintext non-loopback address unless the topology
    sets ``allow_insecure_public_bind: true``. The shipped topology turns
    server reflection on for local use (grpcurl), with a printed note.
    """
    from casemesh.services.catalog import definitions
    from casemesh.services.runtime.bind_check import check_binds
    from casemesh.services.runtime.server import serve as serve_services
    from casemesh.services.runtime.tls import load_identity
    from casemesh.services.runtime.topology import TlsSettings, TopologyError, load_topology

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        loaded = load_topology(topology)
        chosen = definitions(services or list(loaded.services))
        for d in chosen:
            loaded.endpoint(d.name)
        if tls is not None:
            if not tls.is_dir():
                raise TopologyError(f"--tls: {tls} is not a folder (make one with: casemesh certs init {tls})")
            loaded = loaded.model_copy(update={"tls": TlsSettings(dir=str(tls.resolve()))})
        check_binds(loaded, [d.name for d in chosen], warn=not supervise)  # the serving process warns
        for d in chosen if loaded.tls is not None else ():
            load_identity(loaded.tls, d.name)
    except (KeyError, TopologyError) as error:
        _print_error("config error", error.args[0])
        raise typer.Exit(Exit.CONFIG_ERROR) from None
    from casemesh.services.runtime.secrets import SECRET_ENV, SECRET_FILE_ENV, SecretError, generate_secret, load_mesh_secret

    try:
        if dev_secret:
            if os.environ.get(SECRET_ENV) or os.environ.get(SECRET_FILE_ENV):
                raise SecretError(f"--dev-secret and {SECRET_ENV}/{SECRET_FILE_ENV} are both given; use one")
            os.environ[SECRET_ENV] = generate_secret()  # the supervised child inherits it; never on a command line
            errors.print("note: --dev-secret: a random mesh secret for these services only; other processes cannot "
                         "call their internal methods or sign upload tokens for them. Set CASEMESH_SECRET or "
                         "CASEMESH_SECRET_FILE to share one (docs/security.md).", markup=False, highlight=False, soft_wrap=True)
        secret = load_mesh_secret()
    except SecretError as error:
        _print_error("config error", error)
        raise typer.Exit(Exit.CONFIG_ERROR) from None
    if supervise:
        from .supervisor import supervise as run_supervised

        child = [sys.executable, "-m", "casemesh.harness.cli", "serve", *(services or []), "--no-supervise",
                 "--uvloop" if use_uvloop else "--no-uvloop", *(["--topology", str(topology)] if topology else []),
                 *(["--tls", str(tls)] if tls else [])]
        code = run_supervised(child)
        raise typer.Exit(code if code >= 0 else 128 - code)
    node_served = [d.name for d in chosen if loaded.endpoint(d.name).impl == "node"]
    if node_served:  # another implementation (harness/implementations.py): this process becomes it
        _exec_node(node_served, [d.name for d in chosen], topology, tls)
    if loaded.reflection:
        errors.print("note: server reflection is on (topology reflection: true, as in the shipped topology for local use): "
                     "anyone who can reach the port can list every service, internal ones included. "
                     "Set reflection: false outside development (docs/security.md).", markup=False, highlight=False, soft_wrap=True)
    (uvloop.run if use_uvloop else asyncio.run)(serve_services(chosen, loaded, secret=secret, freeze_gc=True))


@app.command()
def worker(
    coordinator: Annotated[str, typer.Option("--coordinator", metavar="HOST:PORT", help="The coordinator to join (casemesh run ... --coordinator-listen HOST:PORT --expect-workers N).")],
    tls: Annotated[Optional[str], typer.Option("--tls", metavar="DIR", help="mTLS to the targets: a `casemesh certs init` folder with ca.pem and harness.pem/.key (the coordinator's own port is plaintext).")] = None,
    connect_timeout: Annotated[float, typer.Option("--connect-timeout", min=1.0, help="How long to keep trying to reach the coordinator and get an assignment, seconds (the coordinator may start later).")] = 300.0,
) -> None:
    """Join a distributed run's coordinator and drive this worker's share of its load (docs/scale-out.md).

    The coordinator hands over the profile, the seed, the targets and this worker's index; the worker sends
    every N-th arrival of the run's schedule from the agreed start and streams its histograms back. Sends
    CASEMESH_COORDINATOR_TOKEN as the join token when set. Exit codes: 0 share done; 2 configuration error;
    3 harness error (coordinator unreachable or refused us, a target unreachable, the run stopped).
    """
    from .distributed.coordinator import TOKEN_ENV
    from .distributed.worker import run_worker

    try:
        check_address(coordinator)
    except ValueError as error:
        _print_error("config error", ConfigError(str(error), field="--coordinator"))
        raise typer.Exit(Exit.CONFIG_ERROR) from None
    try:
        tls_settings = _tls_option(tls)
    except ConfigError as error:
        _print_error("config error", error)
        raise typer.Exit(Exit.CONFIG_ERROR) from None
    say = lambda line: console.print(line, highlight=False, soft_wrap=True, markup=False)  # noqa: E731
    say(f"joining the coordinator at {coordinator}")
    try:
        uvloop.run(run_worker(coordinator, tls=tls_settings, token=os.environ.get(TOKEN_ENV) or None,
                              connect_timeout_s=connect_timeout, say=say))
    except HarnessError as error:
        _print_error("harness error", error)
        raise typer.Exit(Exit.HARNESS_ERROR) from None


def _exec_node(node_served: list[str], chosen: list[str], topology: Path | None, tls_option: Path | None) -> None:
    """Replace this process with the Node implementation of the one service asked for (exit 2 when it cannot serve it)."""
    from casemesh.services.runtime.topology import DEFAULT_TOPOLOGY, ENV_VAR

    from .implementations import check_impl, node_command

    try:
        if len(chosen) != 1:
            raise ConfigError(f"{', '.join(node_served)} has impl: node in the topology and is served by its own "
                              f"process: serve it alone (casemesh serve {node_served[0]}), the others in another command")
        check_impl(node_served[0], "node")
        if tls_option is not None:
            raise ConfigError(f"--tls: {node_served[0]} impl: node reads tls: from the topology file only: "
                              f"write tls: {{dir: {tls_option}}} there instead")
        command = node_command(node_served[0], Path(topology or os.environ.get(ENV_VAR) or DEFAULT_TOPOLOGY).resolve())
    except (ConfigError, HarnessError) as error:
        _print_error("config error", str(error).removeprefix("--set: "))
        raise typer.Exit(Exit.CONFIG_ERROR) from None
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)


@app.command()
def validate(profile: Annotated[str, typer.Argument(help="Shipped profile name or path.")]) -> None:
    """Check a profile and its SLO documents without sending any load."""
    from .profile import load_profile

    try:
        loaded = load_profile(profile)
    except ConfigError as error:
        _print_error("config error", error)
        raise typer.Exit(Exit.CONFIG_ERROR) from None
    console.print(f"{loaded.path}: ok ({len(loaded.journeys)} journeys, {len(loaded.slos)} SLOs)", markup=False)


@app.command("profiles")
def list_profiles() -> None:
    """List the shipped profiles."""
    from .profile import load_profile, shipped_profiles

    for name in shipped_profiles():
        console.print(f"{name}: {load_profile(name).metadata.description}", markup=False)


certs_app = typer.Typer(no_args_is_help=True, help="Certificates for mTLS across the mesh (docs/security.md).")
app.add_typer(certs_app, name="certs")


@certs_app.command("init")
def certs_init(
    directory: Annotated[Path, typer.Argument(help="Folder to write ca.pem, ca.key and NAME.pem/NAME.key into (created 0700).")],
    days: Annotated[int, typer.Option("--days", help="Validity of the leaf certificates in days (1..825); the CA lives 30 days longer.")] = 365,
    force: Annotated[bool, typer.Option("--force", help="Replace a set already in the folder.")] = False,
) -> None:
    """Make a development CA and one key and certificate per service, plus `harness` and `test`, for topology `tls: {dir: DIRECTORY}`.

    Each certificate carries its identity as a URI SAN (spiffe://casemesh.local/svc/NAME, .../harness, .../test)
    and DNS localhost and NAME, IP 127.0.0.1 and ::1. Keys are ECDSA P-256, written 0600. Exit 2 when the folder
    already holds a set (without --force) or cannot be written.
    """
    from .certs import CertsError, init_certs, spiffe_id

    try:
        made = init_certs(directory, days=days, force=force)
    except CertsError as error:
        _print_error("config error", error)
        raise typer.Exit(Exit.CONFIG_ERROR) from None
    except OSError as error:
        _print_error("config error", f"cannot write {error.filename or directory}: {error.strerror or error}")
        raise typer.Exit(Exit.CONFIG_ERROR) from None
    say = lambda line: console.print(line, highlight=False, soft_wrap=True, markup=False)  # noqa: E731
    say(f"CA: {made.ca} (key {directory / 'ca.key'}, 0600: keep it private; it is only needed to issue more certificates)")
    for name, (cert, key) in made.leaves.items():
        say(f"{name}: {cert}, {key}  {spiffe_id(name)}")
    say(f"use it: topology `tls: {{dir: {directory.resolve()}}}`, or casemesh run PROFILE --tls {directory}")


deploy_app = typer.Typer(no_args_is_help=True, help="Deploy a mesh (and a distributed harness) beyond one machine (docs/scale-out.md).")
app.add_typer(deploy_app, name="deploy")


@deploy_app.command("k8s")
def deploy_k8s(
    topology: Annotated[Path, typer.Option("--topology", help="Topology YAML of the mesh: its services, ports, tls: and policies.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the Kustomize base (kustomization.yaml and the manifests).")],
    namespace: Annotated[str, typer.Option("--namespace", help="Namespace of every object; services are dialled as NAME.NAMESPACE.svc.")] = "casemesh",
    image: Annotated[str, typer.Option("--image", help="Image built from deploy/Dockerfile.")] = "casemesh:local",
    with_harness: Annotated[Optional[str], typer.Option("--with-harness", metavar="PROFILE", help="Also a distributed harness driving this profile: a coordinator Job and Service, and an Indexed Job of workers.")] = None,
    harness_workers: Annotated[int, typer.Option("--harness-workers", min=1, max=64, help="With --with-harness: load workers (pods of the Indexed Job).")] = 2,
    rate_scale: Annotated[float, typer.Option("--rate-scale", min=0.0, help="With --with-harness: the run's --rate-scale (rate_scale: auto pilots on one machine, so a scale is fixed here).")] = 1.0,
    seed: Annotated[int, typer.Option("--seed", help="With --with-harness: the run's --seed.")] = 1,
    duration: Annotated[Optional[float], typer.Option("--duration", help="With --with-harness: the run's --duration, seconds.", show_default="the profile's")] = None,
) -> None:
    """Write Kubernetes manifests for a topology's mesh as a Kustomize base: Deployments, Services, the topology ConfigMap, Secret placeholders.

    Fill the Secret placeholders before applying (`kubectl apply -k OUT`). Exit 2 for an unusable topology or profile.
    """
    from casemesh.services.runtime.topology import TopologyError, load_topology

    from .deploy.k8s import HarnessPlan, generate, write
    from .deploy.objects import ManifestError

    try:
        loaded = load_topology(topology)
        plan = None if with_harness is None else HarnessPlan(with_harness, harness_workers, rate_scale, seed, duration)
        written = write(generate(loaded, namespace=namespace, image=image, harness=plan), out)
    except (TopologyError, ManifestError, ConfigError, KeyError) as error:
        _print_error("config error", error.args[0] if isinstance(error, KeyError) else error)
        raise typer.Exit(Exit.CONFIG_ERROR) from None
    except OSError as error:
        _print_error("config error", f"cannot write {error.filename or out}: {error.strerror or error}")
        raise typer.Exit(Exit.CONFIG_ERROR) from None
    say = lambda line: console.print(line, highlight=False, soft_wrap=True, markup=False)  # noqa: E731
    say(f"wrote {len(written)} files to {out}: {', '.join(p.name for p in written)}")
    say(f"before kubectl apply -k {out}: fill the Secret placeholders (mesh-secret.yaml"
        + (", harness-token-secret.yaml" if plan else "") + ")"
        + ("; create the TLS Secret: kubectl -n " + namespace + " create secret generic casemesh-tls --from-file=CERTS_DIR" if loaded.tls else ""))


export_app = typer.Typer(no_args_is_help=True, help="Write a profile as a script of another load tool.")
app.add_typer(export_app, name="export")


@export_app.command("k6")
def export_k6(
    profile: Annotated[str, typer.Argument(help="Shipped profile name or path to a profile YAML.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the k6 script (a .js file).")],
    target: Annotated[Optional[list[str]], typer.Option("--target", help="Default address of the services: [SERVICE=]HOST:PORT, repeatable (default: the shipped topology's, 127.0.0.1:50051); CASEMESH_TARGET overrides it when k6 runs.")] = None,
    protos: Annotated[Optional[Path], typer.Option("--protos", help="Default import path of casemesh's protos (default: protos/ of this checkout); CASEMESH_PROTOS overrides it when k6 runs.")] = None,
    duration: Annotated[Optional[float], typer.Option("--duration", help="Measured window in seconds (overrides the profile's duration_s).")] = None,
    warmup: Annotated[Optional[float], typer.Option("--warmup", help="Warm-up in seconds (overrides warmup_s).")] = None,
    rate_scale: Annotated[Optional[float], typer.Option("--rate-scale", help="Multiply the profile's arrival rate by X.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of the script's journey choices and request contents.")] = 1,
) -> None:
    """Write a k6 script with PROFILE's journeys, arrival rate and SLOs (as thresholds); run it with `k6 run`."""
    from .export.k6 import default_protos_dir, default_targets, k6_script
    from .profile import load_profile, with_overrides

    try:
        loaded = with_overrides(load_profile(profile), duration_s=duration, warmup_s=warmup, rate_scale=rate_scale)
        targets = _parse_targets(target or [], loaded.workload) or default_targets(loaded)
        protos_dir = protos or default_protos_dir()
        if protos_dir is None:
            raise ConfigError("casemesh's protos/ is not beside this installation: give its path", field="--protos")
        if not (protos_dir / "casemesh").is_dir():
            raise ConfigError(f"{protos_dir} holds no casemesh/ contracts: give the protos/ directory of casemesh", field="--protos")
        script = k6_script(loaded, targets=targets, protos_dir=protos_dir, rng_seed=seed)
    except ConfigError as error:
        _print_error("config error", error)
        raise typer.Exit(Exit.CONFIG_ERROR) from None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(script)
    except OSError as error:
        _print_error("config error", f"--out: cannot write {out}: {error.strerror or error}")
        raise typer.Exit(Exit.CONFIG_ERROR) from None
    console.print(f"wrote {out}: run it with `k6 run {out}` (services at {', '.join(sorted(set(targets.values())))}, "
                  f"or set CASEMESH_TARGET)", highlight=False, soft_wrap=True, markup=False)


@app.command()
def record(
    listen: Annotated[str, typer.Option("--listen", help="Where to accept calls: 127.0.0.1:PORT or [::1]:PORT only (PORT 0: any free port).")],
    upstream: Annotated[str, typer.Option("--upstream", help="HOST:PORT of the server every call is forwarded to.")],
    out: Annotated[Path, typer.Option("--out", help="Recording file to write (format: docs/recording.md).")],
    duration: Annotated[Optional[float], typer.Option("--duration", min=0.001, help="Stop after S seconds (default: at SIGINT/SIGTERM).")] = None,
    max_calls: Annotated[Optional[int], typer.Option("--max-calls", min=1, help="Stop once N calls are recorded.")] = None,
    metadata: Annotated[Optional[list[str]], typer.Option("--metadata", help="Request metadata keys to record: fnmatch patterns, repeatable (default: x-*); credential-like keys (authorization, cookie, *token*, *api-key*, ...) only when named exactly.")] = None,
    record_responses: Annotated[bool, typer.Option("--record-responses/--no-record-responses", help="Also keep response bytes (sizes and times are always kept).")] = False,
    progress: Annotated[Optional[bool], typer.Option("--progress/--no-progress", help="Live count (default: on a terminal; else a line every 5 s).")] = None,
    tls: Annotated[Optional[Path], typer.Option("--tls", metavar="DIR", help="Call the upstream with mTLS as the harness (DIR/ca.pem, DIR/harness.pem and .key of `casemesh certs init`); the proxy itself listens plaintext on loopback.")] = None,
) -> None:
    """Record every gRPC call through a transparent proxy on LISTEN to UPSTREAM, until SIGINT/SIGTERM, --duration or --max-calls."""
    from .recording.proxy import DEFAULT_METADATA_ALLOW, check_loopback

    try:
        try:
            check_loopback(listen)
        except ValueError as error:
            raise ConfigError(str(error), field="--listen") from None
        try:
            check_address(upstream)
        except ValueError as error:
            raise ConfigError(str(error), field="--upstream") from None
        if out.is_dir():
            raise ConfigError(f"{out} is a directory: give a file name such as {out / 'calls.cmrec'}", field="--out")
        tls_settings = _tls_option(None if tls is None else str(tls))
        from .recording.format import MAX_TIME_US

        if duration is not None and duration > MAX_TIME_US / 1e6:
            raise ConfigError(f"at most {MAX_TIME_US / 1e6:,.0f} s (7 days, the longest recording casemesh reads), not {duration:g}",
                              field="--duration")
    except ConfigError as error:
        _print_error("config error", error)
        raise typer.Exit(Exit.CONFIG_ERROR) from None
    allow = list(metadata) if metadata else list(DEFAULT_METADATA_ALLOW)
    show_live = console.is_terminal if progress is None else progress
    raise typer.Exit(int(uvloop.run(_record(listen, upstream, out, duration, max_calls, allow, record_responses, show_live,
                                            tls_settings))))


async def _record(listen: str, upstream: str, out: Path, duration: float | None, max_calls: int | None,
                  allow: list[str], record_responses: bool, show_live: bool, tls: Any = None) -> Exit:
    import signal
    import time

    from rich.text import Text

    from .recording import format as fmt
    from .recording import proxy as px

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        writer = fmt.RecordingWriter(out, fmt.new_header(upstream=upstream, listen=listen, recorder=f"casemesh {_casemesh_version()}",
                                                         metadata_allow=allow, response_data=record_responses))
    except OSError as error:
        _print_error("config error", f"--out: cannot write {out}: {error.strerror or error}")
        return Exit.CONFIG_ERROR
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    started = time.perf_counter()
    live: Live | None = None
    running: list[px.RecordingProxy] = []
    ticks = 0

    def status(proxy: px.RecordingProxy) -> str:
        c = proxy.counters
        return f"{time.perf_counter() - started:6.1f} s: {c.recorded:,} calls recorded, {c.in_flight:,} in flight, {c.errors:,} non-OK"

    def ready(proxy: px.RecordingProxy) -> None:
        nonlocal live
        running.append(proxy)
        limits = ([f"for {duration:g} s"] if duration else []) + ([f"up to {max_calls:,} calls"] if max_calls else [])
        console.print(f"recording on {listen.rpartition(':')[0]}:{proxy.port} -> {upstream}, writing {out}"
                      f"{' (' + ', '.join(limits) + ')' if limits else ''}; Ctrl-C to stop", highlight=False, soft_wrap=True, markup=False)
        if show_live:
            live = Live(Text(status(proxy)), console=console, refresh_per_second=4, transient=False)
            live.start()

    def tick(proxy: px.RecordingProxy) -> None:
        nonlocal ticks
        ticks += 1
        if live is not None:
            live.update(Text(status(proxy)))
        elif ticks % 5 == 0:
            console.print(status(proxy), highlight=False, soft_wrap=True)

    try:
        reason = await px.record(listen=listen, upstream=upstream, writer=writer, stop=stop, duration_s=duration, max_calls=max_calls,
                                 metadata_allow=allow, record_responses=record_responses, on_ready=ready, on_tick=tick,
                                 tick_s=0.5 if show_live else 1.0, upstream_tls=tls)
    except OSError as error:
        out.unlink(missing_ok=True)  # only a header: nothing was recorded
        _print_error("harness error", error)
        return Exit.HARNESS_ERROR
    finally:
        if live is not None:
            live.stop()
            if not console.is_terminal:
                console.line()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    counters = running[0].counters
    dropped = f" ({counters.not_recorded:,} not recorded: unfinished at the stop or past --max-calls)" if counters.not_recorded else ""
    console.print(f"stopped ({reason}) after {time.perf_counter() - started:.1f} s: {counters.recorded:,} calls written to {out}{dropped}",
                  highlight=False, soft_wrap=True, markup=False)
    for method, count in sorted(counters.by_method.items(), key=lambda item: -item[1]):
        console.print(f"  {count:>8,}  {method}", highlight=False, soft_wrap=True, markup=False)
    return Exit.PASSED


def _casemesh_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("casemesh")
    except metadata.PackageNotFoundError:
        return "unknown"


@app.command()
def replay(
    recording: Annotated[Path, typer.Argument(help="Recording file written by `casemesh record`.")],
    target: Annotated[str, typer.Option("--target", help="HOST:PORT to send every recorded call to.")],
    speed: Annotated[float, typer.Option("--speed", help="Replay X times as fast: call offsets (and message offsets within calls) are divided by X.")] = 1.0,
    slo: Annotated[Optional[list[Path]], typer.Option("--slo", help="OpenSLO file to judge the replay by (RPC-selecting SLOs), repeatable.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Directory for result.json (default: out/replay-RECORDING).")] = None,
    timeout_ms: Annotated[float, typer.Option("--timeout-ms", help="Deadline (ms) of calls recorded without one.")] = 10_000.0,
    fail_on_divergence: Annotated[bool, typer.Option("--fail-on-divergence", help="Exit 1 when a call's status code differs from the recorded one.")] = False,
    progress: Annotated[Optional[bool], typer.Option("--progress/--no-progress", help="Live table (default: on a terminal).")] = None,
    tls: Annotated[Optional[Path], typer.Option("--tls", metavar="DIR", help="Call the target with mTLS as the harness (DIR/ca.pem, DIR/harness.pem and .key of `casemesh certs init`).")] = None,
    include_seed: Annotated[bool, typer.Option("--include-seed", help="Also replay the harness's seeding calls (recorded with casemesh-phase: seed), left out by default.")] = False,
    max_inflight: Annotated[int, typer.Option("--max-inflight", min=1, help="Calls in flight at most; a call due beyond it waits (its send lag shows it), so replaying many slow or expired calls cannot flood the target.")] = 4096,
) -> None:
    """Replay a recording open-loop against TARGET, compare status codes, judge SLOs; writes OUT/result.json."""
    from .recording.format import RecordingError, read_recording, without_seed
    from .recording.replay import check_slos
    from .slo import load_slos

    try:
        try:
            check_address(target)
        except ValueError as error:
            raise ConfigError(str(error), field="--target") from None
        if not 0 < speed <= 1000:
            raise ConfigError(f"must be > 0 and at most 1000, not {speed:g}", field="--speed")
        tls_settings = _tls_option(None if tls is None else str(tls))
        if not timeout_ms > 0:
            raise ConfigError(f"must be > 0, not {timeout_ms:g}", field="--timeout-ms")
        try:
            loaded = read_recording(recording)
        except RecordingError as error:
            raise ConfigError(str(error)) from None
        seeding = 0
        if not include_seed:
            loaded, seeding = without_seed(loaded)
        if not loaded.calls:
            raise ConfigError("the recording holds no calls" + (f" besides {seeding:,} seeding calls (--include-seed replays them)" if seeding else ""),
                              file=str(recording))
        if seeding:
            console.print(f"left out {seeding:,} seeding calls (casemesh-phase: seed; --include-seed replays them)",
                          highlight=False, soft_wrap=True, markup=False)
        slos = []
        for path in slo or []:
            if not path.is_file():
                raise ConfigError(f"SLO file not found: {path}", field="--slo")
            found = load_slos(path)
            check_slos(found, loaded, str(path))
            slos.extend(found)
        names = [s.name for s in slos]
        duplicate = next((n for n in names if names.count(n) > 1), None)
        if duplicate:
            raise ConfigError(f"SLO {duplicate!r} is defined twice", field="--slo")
    except ConfigError as error:
        _print_error("config error", error)
        raise typer.Exit(Exit.CONFIG_ERROR) from None
    out_dir = out or Path("out") / f"replay-{recording.stem}"
    out_dir.mkdir(parents=True, exist_ok=True)
    show_live = console.is_terminal if progress is None else progress
    try:
        code = uvloop.run(_replay(loaded, target, speed, slos, out_dir, timeout_ms / 1000, fail_on_divergence, show_live, tls_settings,
                                  max_inflight=max_inflight))
    except HarnessError as error:
        _print_error("harness error", error)
        code = Exit.HARNESS_ERROR
    raise typer.Exit(int(code))


#: How long replay waits for the target to accept a connection before giving up (s).
REPLAY_CONNECT_TIMEOUT_S = 5.0


async def _connected(channel: grpc.aio.Channel, target: str, timeout_s: float) -> None:
    """Return once ``channel`` is connected; ``HarnessError`` when the connection fails or takes over ``timeout_s`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    state = channel.get_state(try_to_connect=True)
    while state != grpc.ChannelConnectivity.READY:
        if state == grpc.ChannelConnectivity.TRANSIENT_FAILURE:
            raise HarnessError(f"target {target} is unreachable: the connection failed")
        try:
            await asyncio.wait_for(channel.wait_for_state_change(state), max(deadline - loop.time(), 0.001))
        except asyncio.TimeoutError:
            raise HarnessError(f"target {target} is unreachable: no connection within {timeout_s:g} s") from None
        state = channel.get_state(try_to_connect=True)


async def _replay(recording: Any, target: str, speed: float, slos: list[Any], out_dir: Path, default_timeout_s: float,
                  fail_on_divergence: bool, show_live: bool, tls: Any = None, max_inflight: int = 4096) -> Exit:
    from .report import live_view, progress_line
    from .recording.replay import CHANNEL_OPTIONS, Replayer, build_replay_result, replay_summary_view
    from .slo import evaluate

    started_at = datetime.now(timezone.utc)
    async with open_mesh_channel(target, tls, options=CHANNEL_OPTIONS) as channel:
        await _connected(channel, target, REPLAY_CONNECT_TIMEOUT_S)
        replayer = Replayer(recording, channel, speed=speed, default_timeout_s=default_timeout_s, max_inflight=max_inflight)
        total_s = max(replayer.outcome.scheduled_s, 0.001)
        console.print(f"replaying {len(recording.calls):,} calls of {recording.path} against {target} at speed {speed:g} "
                      f"({replayer.outcome.scheduled_s:,.1f} s)", highlight=False, soft_wrap=True, markup=False)
        gc.freeze()
        if show_live:
            with Live(console=console, refresh_per_second=2, transient=False) as live:
                def tick() -> None:
                    verdicts = [v.to_dict() for v in evaluate(slos, replayer.stats)]
                    live.update(live_view(replayer.progress, replayer.stats, verdicts, 0.0, total_s))
                outcome = await replayer.run(on_tick=tick)
        else:
            ticks = 0

            def tick() -> None:
                nonlocal ticks
                ticks += 1
                if ticks % 5 == 0 or replayer.progress.phase == "done":
                    console.print(progress_line(replayer.progress, total_s), highlight=False, soft_wrap=True, markup=False)
            outcome = await replayer.run(on_tick=tick)

    verdicts = evaluate(slos, outcome.stats)
    lag_p99_ms = outcome.stats.send_lag.get_value_at_percentile(99) / 1000 if outcome.stats.send_lag.get_total_count() else 0.0
    invalid = []
    if lag_p99_ms > MAX_SEND_LAG_P99_MS:
        invalid.append(f"send lag p99 {lag_p99_ms:.1f} ms > {MAX_SEND_LAG_P99_MS:g} ms: the replay fell behind its schedule")
    result = build_replay_result(recording=recording, outcome=outcome, verdicts=verdicts, target=target, started_at=started_at,
                                 speed=speed, default_timeout_s=default_timeout_s, valid=not invalid, invalid_reasons=invalid,
                                 fail_on_divergence=fail_on_divergence)
    (out_dir / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    console.print(replay_summary_view(result))
    console.print(f"result: {out_dir / 'result.json'}", markup=False)
    if invalid:
        return Exit.RUN_INVALID
    return Exit.PASSED if result["passed"] else Exit.SLO_FAILED


recording_app = typer.Typer(no_args_is_help=True, help="Look into recordings (casemesh record) and turn them into profiles.")
app.add_typer(recording_app, name="recording")


def _read_recording_or_exit(path: Path) -> Any:
    from .recording.format import RecordingError, read_recording

    try:
        return read_recording(path)
    except RecordingError as error:
        _print_error("config error", error)
        raise typer.Exit(Exit.CONFIG_ERROR) from None


@recording_app.command("info")
def recording_info(recording: Annotated[Path, typer.Argument(help="Recording file.")]) -> None:
    """Show a recording's header and its calls per method and status code."""
    from collections import Counter

    from rich.table import Table

    from .recording.format import status_name

    loaded = _read_recording_or_exit(recording)
    header = loaded.header
    console.print(f"{recording}: format {header.format_version}, recorded {loaded.created_at.isoformat(timespec='seconds')} by "
                  f"{header.recorder or '?'} on {header.listen_address or '?'} in front of {header.upstream_address or '?'}", highlight=False, soft_wrap=True,
                  markup=False)
    ending = (f"ended cleanly ({loaded.end.stop_reason or 'no reason'}) after {loaded.end.duration_us / 1e6:,.1f} s" if loaded.end
              else "cut short: no end entry (the recorder did not stop cleanly)")
    console.print(f"{len(loaded.calls):,} calls over {loaded.span_us / 1e6:,.1f} s; {ending}; metadata kept: "
                  f"{', '.join(header.metadata_allow) or 'none'}; response bytes {'kept' if header.response_data_recorded else 'not kept'}",
                  highlight=False, soft_wrap=True, markup=False)
    table = Table(title="Calls", title_justify="left")
    for column, justify in (("method", "left"), ("calls", "right"), ("status codes", "left"), ("requests", "right"), ("responses", "right")):
        table.add_column(column, justify=justify)
    by_method: dict[str, list[Any]] = {}
    for call in loaded.calls:
        by_method.setdefault(call.method, []).append(call)
    for method, calls in by_method.items():
        codes = Counter(status_name(c.status_code) for c in calls)
        table.add_row(escape(method), f"{len(calls):,}", ", ".join(f"{code} {n:,}" for code, n in codes.most_common()),
                      f"{sum(len(c.requests) for c in calls):,}", f"{sum(len(c.responses) for c in calls):,}")
    console.print(table)


@recording_app.command("to-profile")
def recording_to_profile(
    recording: Annotated[Path, typer.Argument(help="Recording file.")],
    workload: Annotated[str, typer.Option("--workload", help="Workload whose journeys the profile drives (e.g. url-shortener).")],
    out: Annotated[Path, typer.Option("--out", help="Profile YAML to write; the arrival CSV goes next to it (same name, .csv).")],
    name: Annotated[Optional[str], typer.Option("--name", help="Profile name (default: the --out file's stem).")] = None,
    include_seed: Annotated[bool, typer.Option("--include-seed", help="Count the harness's seeding calls (recorded with casemesh-phase: seed) as arrivals too; left out by default.")] = False,
) -> None:
    """Write a profile whose arrivals are the recording's call times (a `trace` arrival CSV beside it)."""
    from .recording.format import without_seed
    from .recording.to_profile import write_profile
    from .workloads import get_workload

    try:
        chosen = get_workload(workload)
    except KeyError as error:
        _print_error("config error", f"--workload: {error.args[0]}")
        raise typer.Exit(Exit.CONFIG_ERROR) from None
    if out.suffix not in (".yaml", ".yml"):
        _print_error("config error", f"--out: {out} must end in .yaml (the CSV is written beside it)")
        raise typer.Exit(Exit.CONFIG_ERROR)
    loaded = _read_recording_or_exit(recording)
    seeding = 0
    if not include_seed:
        loaded, seeding = without_seed(loaded)
    if seeding:
        console.print(f"left out {seeding:,} seeding calls (casemesh-phase: seed; --include-seed counts them)",
                      highlight=False, soft_wrap=True, markup=False)
    try:
        csv_path, draft = write_profile(loaded, chosen, out, name=name)
    except (ValueError, OSError) as error:  # no calls; --out cannot be written
        _print_error("config error", error)
        raise typer.Exit(Exit.CONFIG_ERROR) from None
    weights = ", ".join(f"{journey} {weight:g}" for journey, weight in draft.weights.items())
    console.print(f"wrote {out} and {csv_path} ({draft.arrivals:,} arrivals); journeys: {weights}"
                  + (" (equal: no method maps onto a journey)" if draft.equal_weights else ""), highlight=False, soft_wrap=True, markup=False)
    if draft.unmapped and not draft.equal_weights:
        left_out = ", ".join(f"{method} {count:,}" for method, count in draft.unmapped.most_common())
        console.print(f"left out (no journey): {left_out}", highlight=False, soft_wrap=True, markup=False)


@app.command()
def report(
    document: Annotated[Path, typer.Argument(help="A run's result.json (or a capacity search's capacity.json).")],
    out: Annotated[Optional[Path], typer.Option("--out", help="HTML file to write.", show_default="report.html beside a result.json, capacity.html beside a capacity document")] = None,
) -> None:
    """Render the HTML report of a result document (self-contained, works offline)."""
    from .report_html import render_report_file

    try:
        page, kind = render_report_file(document)
    except ConfigError as error:
        _print_error("config error", error)
        raise typer.Exit(Exit.CONFIG_ERROR) from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:  # JSON, but not shaped as casemesh writes it
        _print_error("config error", f"{document}: not a casemesh result document ({type(error).__name__}: {error})")
        raise typer.Exit(Exit.CONFIG_ERROR) from None
    path = out or document.parent / ("capacity.html" if kind == "capacity" else "report.html")
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as error:
        _print_error("config error", f"--out: cannot write {path}: {error.strerror or error}")
        raise typer.Exit(Exit.CONFIG_ERROR) from None
    console.print(f"report: {path}", highlight=False, soft_wrap=True, markup=False)


@app.command()
def compare(
    a: Annotated[Path, typer.Argument(help="The baseline run: its result.json or its run directory (OUT/).")],
    b: Annotated[Path, typer.Argument(help="The run compared with it: result.json or run directory.")],
    percentiles: Annotated[str, typer.Option("--percentiles", help="Percentiles compared, comma-separated.")] = "50,90,99,99.9",
    fail_on: Annotated[Optional[list[str]], typer.Option("--fail-on", help="Exit 1 when B is significantly slower beyond a threshold: [NAME:]PERCENTILE:+N% or +Nms, e.g. p99:+10% or resolve:p99:+2ms; repeatable.")] = None,
    min_effect: Annotated[str, typer.Option("--min-effect", help="A difference counts as significant only from this size, relative to A.")] = "5%",
    confidence: Annotated[float, typer.Option("--confidence", help="Confidence level of the intervals.")] = 0.95,
    resamples: Annotated[int, typer.Option("--resamples", min=100, max=100_000, help="Bootstrap resamples per percentile.")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap (same inputs and seed: same figures).")] = 1,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the comparison document (JSON) to this file.")] = None,
    html_out: Annotated[Optional[Path], typer.Option("--html", help="Write the comparison page (HTML, self-contained) to this file.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Directory for compare.json and compare.html.")] = None,
) -> None:
    """Compare two runs' latency percentiles with confidence intervals, per RPC and journey, and their SLO verdicts (docs/cli.md).

    Exit codes: 0 no regression beyond --fail-on (or no --fail-on); 1 a significant regression beyond it; 2 bad input.
    """
    from .compare.command import compare_command

    try:
        code = compare_command(a, b, percentiles=percentiles, confidence=confidence, min_effect=min_effect, fail_on=fail_on or [],
                               resamples=resamples, seed=seed, json_out=json_out, html_out=html_out, out=out, console=console)
    except ConfigError as error:
        _print_error("config error", error)
        raise typer.Exit(Exit.CONFIG_ERROR) from None
    raise typer.Exit(code)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    sys.exit(main())
