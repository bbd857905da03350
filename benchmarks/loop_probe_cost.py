"""The event-loop probe's own cost (services/runtime/loop_probe.py), side by side with it off, for docs/benchmarks.md.

Usage::

    .venv/bin/python benchmarks/loop_probe_cost.py [--seconds 10] [--repeat 3] [--rate 1000]

(1) tick cost: a uvloop process idles for ``--seconds`` three ways: nothing
scheduled, a bare 5 ms timer (a ``call_later`` chain doing nothing: what any
5 ms timer costs in wake-ups), and the probe every casemesh process runs (5 ms
tick, Prometheus counts, the per-second series file on); CPU seconds (user +
system, ``time.process_time``) per second of each, the differences per second
and per tick.

(2) echo: the bare echo server (``casemesh.harness.calibration.echo_server``,
no casemesh interceptors) driven by benchmarks/bare_client.py at ``--rate``
requests/s (constant arrivals), in one process whose probe is turned off and
on (SIGUSR2, SIGUSR1) in alternating phases of ``--seconds``, ``--repeat``
of each: the server's CPU per request of each phase (``/proc/PID/stat``,
requests = rate x phase). One process under one load, so the two states
differ in nothing else; alternating spreads the machine's drift over both.

(1) alternates off/on ``--repeat`` times; the tables give medians and every
run. Everything listens on and connects to 127.0.0.1 only; each child has a
time limit and is stopped by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from run import PYTHON, ROOT, proc_cpu_s  # noqa: E402  (benchmarks/run.py)

SELF = str(Path(__file__).resolve())
IDLE_MODES = ("off", "timer", "probe")


# -- children ---------------------------------------------------------------------------------------


def idle_child(seconds: float, mode: str) -> None:
    """Idle on uvloop for ``seconds``: ``off``, ``timer`` (a bare 5 ms ``call_later`` chain) or ``probe``; print {"cpu_s_per_s", "ticks_per_s"}."""
    import uvloop

    from casemesh.services.runtime.loop_probe import LoopProbe

    async def main() -> dict:
        instance = None
        with tempfile.TemporaryDirectory() as directory:
            if mode == "probe":
                instance = LoopProbe(series=Path(directory) / "idle.loop.jsonl", process="idle")
                instance.start()
            elif mode == "timer":
                loop = asyncio.get_running_loop()

                def tick() -> None:
                    loop.call_later(0.005, tick)
                loop.call_later(0.005, tick)
            await asyncio.sleep(0.5)  # start-up out of the figure
            cpu, wall = time.process_time(), time.perf_counter()
            await asyncio.sleep(seconds)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            ticks = instance.ticks if instance else 0
            if instance:
                instance.stop()
        return {"cpu_s_per_s": cpu / wall, "ticks_per_s": ticks / (wall + 0.5)}

    print(json.dumps(uvloop.run(main())), flush=True)


def echo_child() -> None:
    """The bare echo server on a free port; SIGUSR1 starts the probe on its loop, SIGUSR2 stops it; stops on SIGTERM."""
    import uvloop

    from casemesh.harness.calibration.echo_server import start_in_process
    from casemesh.services.runtime.loop_probe import LoopProbe

    async def main() -> None:
        server, port = await start_in_process(0)
        loop = asyncio.get_running_loop()
        with tempfile.TemporaryDirectory() as directory:
            probe = LoopProbe(series=Path(directory) / "echo.loop.jsonl", process="echo")

            def off() -> None:
                probe.stop()
                print("off", flush=True)

            def on() -> None:
                probe.start()
                print("on", flush=True)

            stop = asyncio.Event()
            loop.add_signal_handler(signal.SIGTERM, stop.set)
            loop.add_signal_handler(signal.SIGUSR1, on)
            loop.add_signal_handler(signal.SIGUSR2, off)
            print(f"listening on 127.0.0.1:{port}", flush=True)
            await stop.wait()
            probe.stop()
        await server.stop(1.0)

    uvloop.run(main())


# -- the measurements -------------------------------------------------------------------------------


def idle_run(seconds: float, mode: str) -> dict:
    done = subprocess.run([PYTHON, SELF, "--child-idle", str(seconds), "--mode", mode],
                          capture_output=True, text=True, timeout=seconds + 60, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"idle child failed: {done.stderr}")
    return json.loads(done.stdout)


def echo_phases(phase_s: float, pairs: int, rate: float) -> dict[bool, list[float]]:
    """One echo server under one constant load; the probe off and on in alternating phases of ``phase_s``.

    Returns the server's CPU ms per request of each phase, by probe state
    (requests per phase: ``rate * phase_s``, the client's constant schedule).
    """
    server = subprocess.Popen([PYTHON, SELF, "--child-echo"], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, cwd=ROOT)
    per_phase: dict[bool, list[float]] = {False: [], True: []}
    try:
        line = server.stdout.readline()
        if not line.startswith("listening on "):
            raise SystemExit(f"echo server did not start: {line!r}")
        address = line.split()[-1]
        total_s = 2 * pairs * phase_s + 2
        client = subprocess.Popen([PYTHON, str(BENCH / "bare_client.py"), "--target", address, "--rate", str(rate),
                                   "--duration", str(total_s)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
        time.sleep(1.5)  # the client's start-up and first second
        for index in range(2 * pairs):
            probe = index % 2 == 1
            server.send_signal(signal.SIGUSR1 if probe else signal.SIGUSR2)
            server.stdout.readline()  # "on" / "off": switched
            start = proc_cpu_s(server.pid)
            time.sleep(phase_s)
            per_phase[probe].append(1000 * (proc_cpu_s(server.pid) - start) / (rate * phase_s))
        client.communicate(timeout=total_s + 60)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return per_phase


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per run [10]")
    parser.add_argument("--repeat", type=int, default=3, help="off/on pairs of each measurement [3]")
    parser.add_argument("--rate", type=float, default=1000.0, help="echo requests per second [1000]")
    parser.add_argument("--child-idle", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--child-echo", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=IDLE_MODES, default="off", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child_idle is not None:
        idle_child(opts.child_idle, opts.mode)
        return 0
    if opts.child_echo:
        echo_child()
        return 0
    if not (0 < opts.seconds <= 600 and 1 <= opts.repeat <= 20 and 0 < opts.rate <= 5000):
        parser.error("--seconds in (0, 600], --repeat in [1, 20], --rate in (0, 5000]")

    idle: dict[str, list[dict]] = {mode: [] for mode in IDLE_MODES}
    for i in range(opts.repeat):
        for mode in IDLE_MODES:
            print(f"idle run {i + 1}/{opts.repeat}: {mode}", file=sys.stderr)
            idle[mode].append(idle_run(opts.seconds, mode))
    print(f"echo at {opts.rate:g}/s: {opts.repeat} x (off, on) phases of {opts.seconds:g} s", file=sys.stderr)
    echo = echo_phases(opts.seconds, opts.repeat, opts.rate)

    def med(runs: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    off_cpu, timer_cpu, on_cpu = (med(idle[mode], "cpu_s_per_s") for mode in IDLE_MODES)
    ticks = med(idle["probe"], "ticks_per_s")
    print(f"(1) idle uvloop process, {opts.seconds:g} s x {opts.repeat}: CPU ms per second")
    print("| loop | CPU ms/s (median) | runs |\n|---|---|---|")
    names = {"off": "nothing scheduled", "timer": "a bare 5 ms timer (call_later chain)", "probe": "the probe (5 ms tick, series file)"}
    for mode in IDLE_MODES:
        runs = ", ".join(f"{r['cpu_s_per_s'] * 1000:.2f}" for r in idle[mode])
        print(f"| {names[mode]} | {med(idle[mode], 'cpu_s_per_s') * 1000:.2f} | {runs} |")
    print(f"\nprobe: {(on_cpu - off_cpu) * 1000:.2f} CPU ms per second ({on_cpu - off_cpu:.2%} of a core), "
          f"{(on_cpu - off_cpu) / ticks * 1e6:.1f} µs per tick ({ticks:.0f} ticks/s), of which the wake-ups of a bare "
          f"5 ms timer {(timer_cpu - off_cpu) * 1000:.2f} ms/s and the probe's own work {(on_cpu - timer_cpu) * 1000:.2f} ms/s")
    print(f"\n(2) bare echo server at {opts.rate:g} req/s, one process, the probe off and on in alternating "
          f"{opts.seconds:g} s phases ({opts.repeat} of each): server CPU per request")
    print("| probe | server CPU ms/request (median) | phases |\n|---|---|---|")
    for probe, name in ((False, "off"), (True, "on (5 ms tick)")):
        print(f"| {name} | {statistics.median(echo[probe]):.3f} | {', '.join(f'{v:.3f}' for v in echo[probe])} |")
    off, on = statistics.median(echo[False]), statistics.median(echo[True])
    print(f"\ndifference: {(on - off) * 1000:+.1f} µs per request ({(on - off) / off:+.1%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
