"""Sample one service of a ``casemesh run`` with py-spy while the load runs: folded stacks, an SVG flame graph, a summary.

Starts ``casemesh run PROFILE --out OUT`` (the embedded mesh, one process per
service), waits for the harness to print "driving", then samples the
service's process with ``py-spy record`` (``--rate`` samples/s, GIL holder or
idle) for ``--seconds``: once in py-spy's raw format (folded stacks,
``OUT/flame/SERVICE.folded``: one line per distinct stack with its sample
count, what flamegraph.pl, inferno and speedscope read) and, in a second run
of the same length, as an SVG flame graph (``OUT/flame/SERVICE.svg``, with
``--svg``). Prints the share of samples by the function on top of the stack
(self time) and by what the stack passes through (inclusive), grouped by
source file, so the findings read without opening the graph. Idle samples
(the loop waiting in epoll) are counted apart: the rest is CPU.

    .venv/bin/pip install -e '.[bench]'    # py-spy
    .venv/bin/python benchmarks/flame.py benchmarks/profiles/resolve.yaml --service urlshortener --seconds 8 \\
        --out out/flame-resolve --rate-scale 0.5     # options it does not know go to casemesh run

    # the bare echo server under the same load, for comparison
    .venv/bin/python benchmarks/echo_server.py --port 50555 &
    .venv/bin/python benchmarks/flame.py benchmarks/profiles/echo.yaml --pid $! --seconds 8 --out out/flame-echo \\
        --target echo=127.0.0.1:50555 --rate-scale 0.5
    kill %1

py-spy needs ptrace rights over the process (root, or
``kernel.yama.ptrace_scope=0``); the load targets 127.0.0.1 only and the run
ends by itself (its profile's warm-up + duration).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Functions on top of a stack that waits (epoll, futex, sleep): its samples are idle time, not CPU.
IDLE_LEAVES = ("epoll_wait", "epoll_pwait", "epoll_pwait2", "poll", "ppoll", "select", "pselect", "futex", "syscall_cp",
               "pthread_cond_wait", "pthread_cond_timedwait", "__futex_abstimed_wait_common", "nanosleep", "clock_nanosleep",
               "sem_wait", "sem_timedwait", "accept", "accept4", "wait (threading.py", "select (selectors.py")
FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^:()]+)(?::(?P<line>\d+))?\)$")


def find_service_pid(parent: int, service: str, timeout_s: float) -> int:
    """The pid of the ``casemesh serve SERVICE`` process started under ``parent`` (waits up to ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            words = [a.decode(errors="replace") for a in argv]
            if ppid == parent and "serve" in words and service in words[words.index("serve") + 1:]:
                return int(entry.name)
        time.sleep(0.2)
    raise SystemExit(f"no 'casemesh serve {service}' process under pid {parent} within {timeout_s:g} s")


def record(pid: int, seconds: float, rate: int, fmt: str, path: Path) -> None:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    command = [py_spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", str(rate), "--native",
               "--format", fmt, "--output", str(path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0 or not path.exists():
        raise SystemExit(f"py-spy failed ({done.returncode}): {done.stderr.strip()[-600:]}")


def frames(stack: str) -> list[str]:
    """A folded stack's frames, outermost first (py-spy raw: ``frame;frame;... count``, frames ``func (file:line)``)."""
    return stack.split(";")


def short_file(frame: str) -> str:
    match = FRAME.match(frame.strip())
    if match is None:
        return frame
    file = match.group("file")
    for marker in ("site-packages/", "lib/python3", "/casemesh/", "/work/main/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return file


def function_of(frame: str) -> str:
    match = FRAME.match(frame.strip())
    return f"{match.group('function')} ({short_file(frame)})" if match else frame


#: Who a CPU sample is spent for: the innermost frame of the stack that belongs to one of these (pattern in its file).
OWNERS = (
    ("the service's own code", ("services/urlshortener/", "services/video/", "services/analytics/", "services/idgen/")),
    ("casemesh runtime: interceptor, admission, authorization", ("runtime/interceptors/", "runtime/admission", "runtime/authorization",
                                                                 "runtime/identity", "runtime/deadlines", "runtime/decoding")),
    ("casemesh runtime: loop probe, flushers, health, other", ("services/runtime/", "runtime/")),
    ("prometheus_client", ("prometheus_client/",)),
    ("OpenTelemetry", ("opentelemetry/", "trace/__init__.py", "sdk/trace", "_decorator.py", "context/")),
    ("protobuf", ("_message.abi3", "google/protobuf", "upb")),
    ("grpc (grpc.aio, Cython bindings, grpc-core)", ("cygrpc", "grpc/", "libgrpc")),
)
#: Samples owned by none of OWNERS, by the leaf frame's file.
GENERIC = (
    ("system calls and libc", ("libc.so", "libpthread", "ld-linux")),
    ("event loop (uvloop, asyncio)", ("loop.c", "core.c", "uvloop", "asyncio/", "_asynciomodule", "selectors", "handles/")),
    ("CPython (interpreter, GC, objects)", ("libpython", "object.h", "ceval", "Objects/", "Python/", "<frozen", "abstract.h")),
)


def owner(stack_frames: list[str]) -> str:
    """The layer a CPU sample is spent for: the innermost OWNERS frame, else the leaf's GENERIC layer, else "other"."""
    for frame in reversed(stack_frames):
        file = short_file(frame)
        for name, patterns in OWNERS:
            if any(p in file for p in patterns):
                return name
    leaf = short_file(stack_frames[-1])
    for name, patterns in GENERIC:
        if any(p in leaf for p in patterns):
            return name
    return "other"


def summarize(folded: Path, top: int) -> str:
    """Shares of the CPU samples in ``folded``: by owning layer, by leaf file and function, and inclusive by function.

    Idle samples (a leaf in IDLE_LEAVES) are counted apart. The inclusive
    table leaves out the trunk every stack shares (frames on 90% or more of
    the samples: the interpreter's entry, the event loop's run).
    """
    total = idle = 0
    by_owner: collections.Counter[str] = collections.Counter()
    self_by_function: collections.Counter[str] = collections.Counter()
    inclusive_by_function: collections.Counter[str] = collections.Counter()
    self_by_file: collections.Counter[str] = collections.Counter()
    for line in folded.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        stack_frames = frames(stack)
        if stack_frames[-1].strip().startswith(IDLE_LEAVES):
            idle += count
            continue
        total += count
        by_owner[owner(stack_frames)] += count
        self_by_function[function_of(stack_frames[-1])] += count
        self_by_file[short_file(stack_frames[-1])] += count
        for function in {function_of(f) for f in stack_frames}:
            inclusive_by_function[function] += count
    if not total:
        return f"{folded.name}: no CPU samples ({idle} idle)"
    lines = [f"{folded.name}: {total:,} CPU samples, {idle:,} idle", "", "CPU by the layer it is spent for:"]
    lines += [f"  {count / total:6.1%}  {name}" for name, count in by_owner.most_common()]
    lines += ["", "self time, by file:"]
    lines += [f"  {count / total:6.1%}  {name}" for name, count in self_by_file.most_common(top)]
    lines += ["", "self time, by function:"]
    lines += [f"  {count / total:6.1%}  {name}" for name, count in self_by_function.most_common(top)]
    lines += ["", "inclusive (on the stack), by function, below the shared trunk:"]
    lines += [f"  {count / total:6.1%}  {name}" for name, count in inclusive_by_function.most_common()
              if count < 0.9 * total][:top]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", help="a shipped profile name or a profile file (its services run in the embedded mesh)")
    chosen = parser.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--service", help="the mesh service process to sample (urlshortener, video-edge, ...)")
    chosen.add_argument("--pid", type=int, help="sample this process instead (a server the run reaches with --target)")
    parser.add_argument("--out", type=Path, default=Path("out/flame"), help="the run's --out; the samples go to OUT/flame/")
    parser.add_argument("--seconds", type=float, default=8.0, help="sampling time, s (each recording)")
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    parser.add_argument("--svg", action="store_true", help="also record an SVG flame graph (a second recording, after the first)")
    parser.add_argument("--top", type=int, default=15, help="rows per summary table")
    args, run_args = parser.parse_known_args()  # the rest goes to `casemesh run` (e.g. --rate-scale 0.5)
    run_args = [a for a in run_args if a != "--"]
    flame_dir = args.out / "flame"
    flame_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "casemesh.harness.cli", "run", args.profile, "--out", str(args.out), "--no-progress",
               *run_args]
    print("$", " ".join(command[2:]), flush=True)
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    driving = threading.Event()
    output: list[str] = []

    def read() -> None:
        for text in run.stdout:  # type: ignore[union-attr]
            output.append(text)
            if text.startswith("driving"):
                driving.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        pid = args.pid or find_service_pid(run.pid, args.service, 120)
        if not driving.wait(300):
            raise SystemExit("the run never started driving load:\n" + "".join(output[-30:]))
        time.sleep(1.0)  # past the first second of the warm-up
        name = args.service or f"pid{pid}"
        folded = flame_dir / f"{name}.folded"
        record(pid, args.seconds, args.rate, "raw", folded)
        if args.svg:
            record(pid, args.seconds, args.rate, "flamegraph", flame_dir / f"{name}.svg")
    finally:
        code = run.wait(timeout=600)
        reader.join(timeout=5)
    print("".join(line for line in output if line.startswith(("send lag", "CPU during", "machine floor", "│ resolve",
                                                              "│ casemesh"))), end="")
    print(f"casemesh run exit {code}; samples of pid {pid}: {folded}" + (f", {folded.with_suffix('.svg')}" if args.svg else ""))
    print()
    print(summarize(folded, args.top))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
