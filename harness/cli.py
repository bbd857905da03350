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
import sys
from datetime import datetime, timezone
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any, Optional

import grpc
import typer
import uvloop
from rich.console import Console
from rich.live import Live

from casemesh.services.runtime.topology import check_address

from .errors import ConfigError, HarnessError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="casemesh: benchmark system-design case studies as gRPC meshes, open-loop, against SLOs.")
console = Console()
if not console.is_terminal:  # logs and CI: wide enough that the tables are not squeezed into 80 columns
    console.width = max(console.width, 140)
errors = Console(stderr=True)


class Exit(IntEnum):
    """Exit codes of ``casemesh run``."""

    PASSED = 0
    SLO_FAILED = 1
    CONFIG_ERROR = 2
    HARNESS_ERROR = 3
    RUN_INVALID = 4


#: A run is invalid when the driver's own send lag p99 exceeds this (ms): the generator fell behind.
MAX_SEND_LAG_P99_MS = 10.0


def _parse_targets(values: list[str], workload: Any) -> dict[str, str]:
    """``--target [SERVICE=]HOST:PORT`` values → {service: address}; a bare address needs a one-service workload."""
    targets: dict[str, str] = {}
    for value in values:
        name, sep, address = value.rpartition("=")
        if not sep:
            if len(workload.services) != 1:
                raise ConfigError(f"workload {workload.name} calls {', '.join(workload.services)}: write SERVICE=HOST:PORT", field="--target")
            name = workload.services[0]
        if name not in workload.services:
            raise ConfigError(f"{name!r} is not a service the workload calls ({', '.join(workload.services)})", field="--target")
        try:
            targets[name] = check_address(address)
        except ValueError as error:
            raise ConfigError(str(error), field="--target") from None
    missing = [s for s in workload.services if s not in targets] if targets else []
    if missing:
        raise ConfigError(f"no address for {', '.join(missing)}", field="--target")
    return targets


@app.command()
def run(
    profile: Annotated[str, typer.Argument(help="Shipped profile name (see `casemesh profiles`) or path to a profile YAML.")],
    duration: Annotated[Optional[float], typer.Option("--duration", help="Measured window in seconds (overrides the profile's duration_s).")] = None,
    warmup: Annotated[Optional[float], typer.Option("--warmup", help="Warm-up in seconds before the measured window (overrides warmup_s).")] = None,
    rate_scale: Annotated[Optional[float], typer.Option("--rate-scale", help="Multiply the profile's arrival rate by X.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Directory for result.json, logs and traces [default: out/PROFILE].")] = None,
    target: Annotated[Optional[list[str]], typer.Option("--target", help="Drive running services instead of starting them: [SERVICE=]HOST:PORT, repeatable.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed of arrivals and journey choices.")] = 1,
    trace_ratio: Annotated[float, typer.Option("--trace-ratio", min=0.0, max=1.0, help="Share of journeys traced (parent-based sampling downstream).")] = 0.01,
    progress: Annotated[Optional[bool], typer.Option("--progress/--no-progress", help="Live table [default: on a terminal].")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a service setting: SERVICE.KEY=VALUE (e.g. video-edge.cache_bytes=0), repeatable.")] = None,
) -> None:
    """Benchmark a profile open-loop and judge its SLOs; writes OUT/result.json."""
    from .profile import load_profile, with_overrides, with_settings

    try:
        loaded = with_overrides(load_profile(profile), duration_s=duration, warmup_s=warmup, rate_scale=rate_scale)
        loaded = with_settings(loaded, set_ or [])
        targets = _parse_targets(target or [], loaded.workload)
        if not targets and not loaded.services:
            raise ConfigError("the profile starts no services (services: []): pass --target", file=str(loaded.path), field="services")
    except ConfigError as error:
        errors.print(f"[bold red]config error:[/] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(Exit.CONFIG_ERROR) from None
    out_dir = out or Path("out") / loaded.name
    out_dir.mkdir(parents=True, exist_ok=True)
    traces = out_dir / "traces"
    os.environ.setdefault("CASEMESH_TRACES_DIR", str(traces))
    show_live = console.is_terminal if progress is None else progress
    try:
        code = uvloop.run(_run(loaded, targets, out_dir, show_live, seed, trace_ratio))
    except HarnessError as error:
        errors.print(f"[bold red]harness error:[/] {error}", highlight=False, soft_wrap=True)
        code = Exit.HARNESS_ERROR
    raise typer.Exit(int(code))


async def _run(profile: Any, targets: dict[str, str], out_dir: Path, show_live: bool, seed: int, trace_ratio: float) -> Exit:
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON

    from casemesh.services.runtime.tracing import RATIO_ENV, configure_tracing

    from .driver import Driver
    from .mesh import Mesh
    from .report import live_view, progress_line, summary_view
    from .result import build_result
    from .slo import evaluate

    provider = configure_tracing("casemesh-harness", sampler=ALWAYS_ON)  # the driver samples journeys itself
    mesh = None
    if not targets:
        # The services start no traces of their own: every trace starts at a sampled journey.
        mesh = Mesh(list(profile.services), out_dir, env={RATIO_ENV: "0"}, settings=profile.settings)
        console.print(f"starting {', '.join(profile.services)} on 127.0.0.1 (logs in {out_dir / 'logs'})")
        await mesh.start()
        targets = {s: mesh.topology.endpoint(s).address for s in profile.workload.services}
    channels = {service: grpc.aio.insecure_channel(address) for service, address in targets.items()}
    started_at = datetime.now(timezone.utc)
    try:
        driver = Driver(profile, channels, rng_seed=seed, tracer=provider.get_tracer("casemesh.harness"), trace_ratio=trace_ratio)
        try:
            console.print(f"seeding {profile.workload.name} data")
            await driver.seed()
        except grpc.aio.AioRpcError as error:
            raise HarnessError(f"seeding failed: {error.code().name}: {error.details()}") from None
        total_s = profile.warmup_s + profile.duration_s
        # Everything allocated so far (modules, profile, seed data) lives for the whole run: keep it out
        # of the garbage collector's scans, which otherwise grow with it while the load is driven.
        gc.freeze()
        console.print(f"driving {profile.arrival.process} arrivals at {profile.arrival.rate_per_s:,.0f}/s for "
                      f"{profile.warmup_s:g} s warm-up + {profile.duration_s:g} s measured")
        if show_live:
            with Live(console=console, refresh_per_second=2, transient=False) as live:
                def tick() -> None:
                    verdicts = [v.to_dict() for v in evaluate(profile.slos, driver.stats)]
                    live.update(live_view(driver.progress, driver.stats, verdicts, profile.warmup_s, total_s))
                stats = await driver.run(on_tick=tick)
        else:
            ticks = 0

            def tick() -> None:
                nonlocal ticks
                ticks += 1
                if ticks % 5 == 0 or driver.progress.phase == "done":
                    console.print(progress_line(driver.progress, total_s), highlight=False, soft_wrap=True, markup=False)
            stats = await driver.run(on_tick=tick)
    finally:
        for channel in channels.values():
            await channel.close()
        if mesh:
            mesh.stop()
        provider.shutdown()

    verdicts = evaluate(profile.slos, stats)
    lag_p99_ms = stats.send_lag.get_value_at_percentile(99) / 1000 if stats.send_lag.get_total_count() else 0.0
    invalid = []
    if lag_p99_ms > MAX_SEND_LAG_P99_MS:
        invalid.append(f"send lag p99 {lag_p99_ms:.1f} ms > {MAX_SEND_LAG_P99_MS:g} ms: the load generator fell behind its schedule")
    target_info = {"mode": "external" if mesh is None else "embedded", "services": targets}
    result = build_result(profile=profile, stats=stats, verdicts=verdicts, target=target_info,
                          started_at=started_at, valid=not invalid, invalid_reasons=invalid)
    (out_dir / "result.json").write_text(json.dumps(result, indent=2) + "\n")
    console.print(summary_view(result))
    console.print(f"result: {out_dir / 'result.json'}")
    if invalid:
        return Exit.RUN_INVALID
    return Exit.PASSED if result["passed"] else Exit.SLO_FAILED


@app.command()
def serve(
    services: Annotated[Optional[list[str]], typer.Argument(help="Services to serve [default: all].")] = None,
    topology: Annotated[Optional[Path], typer.Option("--topology", help="Topology YAML [default: $CASEMESH_TOPOLOGY or the shipped one].")] = None,
    use_uvloop: Annotated[bool, typer.Option("--uvloop/--no-uvloop", help="Run on uvloop.")] = True,
) -> None:
    """Serve case-study services on their topology addresses until SIGTERM/SIGINT."""
    from casemesh.services.catalog import definitions
    from casemesh.services.runtime.server import serve as serve_services
    from casemesh.services.runtime.topology import TopologyError, load_topology

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        chosen = definitions(services)
        loaded = load_topology(topology)
        for d in chosen:
            loaded.endpoint(d.name)
    except (KeyError, TopologyError) as error:
        errors.print(f"[bold red]config error:[/] {error.args[0]}", highlight=False, soft_wrap=True)
        raise typer.Exit(Exit.CONFIG_ERROR) from None
    (uvloop.run if use_uvloop else asyncio.run)(serve_services(chosen, loaded))


@app.command()
def validate(profile: Annotated[str, typer.Argument(help="Shipped profile name or path.")]) -> None:
    """Check a profile and its SLO documents without sending any load."""
    from .profile import load_profile

    try:
        loaded = load_profile(profile)
    except ConfigError as error:
        errors.print(f"[bold red]config error:[/] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(Exit.CONFIG_ERROR) from None
    console.print(f"{loaded.path}: ok ({len(loaded.journeys)} journeys, {len(loaded.slos)} SLOs)")


@app.command("profiles")
def list_profiles() -> None:
    """List the shipped profiles."""
    from .profile import load_profile, shipped_profiles

    for name in shipped_profiles():
        console.print(f"{name}: {load_profile(name).metadata.description}")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    sys.exit(main())
