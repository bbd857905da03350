"""A ground-truth ``casemesh.bench.v1.EchoService``: known delays, a known stall pattern, its own clock.

The server the ground-truth tests (tests/integration/test_ground_truth.py) and
the overhead benchmark (benchmarks/overhead_k6.py) measure the harness
against. It imports nothing of casemesh's harness or services (only the
generated stubs of the contract, protos/casemesh/bench/v1/echo.proto), so a
bug there cannot hide in both the measurement and its reference.

Behaviour, set with a ``configure`` command (below):

- **Delay mixture.** Each call is answered after a delay drawn from a *deck*:
  e.g. ``{"20": 80, "60": 18, "200": 2}`` is a deck of 100 cards, 80 of 20 ms,
  18 of 60 ms and 2 of 200 ms, shuffled by the server's own
  ``random.Random(seed)`` and reshuffled each time it is used up. Every 100
  consecutive calls therefore hold exactly that mixture, so its quantiles
  (here p50 20 ms, p90 60 ms, p99 200 ms) are those of any whole number of
  decks, not a sampling estimate. An empty deck means no delay (zero work).
  The delay is held, not computed (no CPU): the handler waits until an
  absolute deadline on ``time.perf_counter``, so it never answers early.
- **Stall pattern.** With ``stall_ms`` S > 0 and ``stall_every_s`` P, the
  server stalls for S ms at the start of every P-second period, counted from
  the ``configure`` command: during ``[k*P, k*P + S)`` no call completes. A
  call that arrives during a stall starts its delay at the stall's end; a
  call whose delay would end during a stall is answered at the stall's end
  (what a process frozen by a GC pause or SIGSTOP does).
- **Records.** For each call since the last ``configure``: its arrival time
  (seconds after ``configure``, ``time.perf_counter``) and its handling time
  (ms, from entering the handler to returning the response).

Control protocol: one JSON object per line on stdin, one JSON reply per line on
stdout (after the ``listening on 127.0.0.1:PORT`` line):

- ``{"configure": {"deck_ms": {"20": 80, ...}, "seed": 1, "stall_ms": 0, "stall_every_s": 0}}``
  resets the records and the clock; replies ``{"ok": true}``.
- ``{"report": true}`` replies ``{"calls": N, "arrival_s": [...], "handling_ms": [...]}``.

Usage::

    python tests/ground_truth_server.py --port 0      # 0: any free port; listens on 127.0.0.1 only

:class:`GroundTruthServer` starts it as a child process and speaks that
protocol. It stops on SIGTERM, SIGINT or the end of stdin.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc

from casemesh.bench.v1 import echo_pb2 as pb
from casemesh.bench.v1 import echo_pb2_grpc as pb_grpc

LOOPBACK = "127.0.0.1"

#: The delay mixture of issue 9 and of the tests: 80% 20 ms, 18% 60 ms, 2% 200 ms (a deck of 100).
MIXTURE_DECK_MS = {20.0: 80, 60.0: 18, 200.0: 2}


class Behaviour:
    """The delays and the stall pattern of one configuration, and the records of the calls it answered."""

    def __init__(self, deck_ms: dict[float, int] | None = None, seed: int = 1, stall_ms: float = 0.0, stall_every_s: float = 0.0):
        if stall_ms < 0 or (stall_ms > 0 and stall_every_s * 1000 <= stall_ms):
            raise ValueError(f"stall_ms ({stall_ms:g}) must be >= 0 and shorter than stall_every_s ({stall_every_s:g} s)")
        if any(delay < 0 or count < 0 for delay, count in (deck_ms or {}).items()):
            raise ValueError(f"deck_ms must map delays >= 0 ms to counts >= 0, got {deck_ms}")
        self.deck_s = [delay / 1000.0 for delay, count in sorted((deck_ms or {}).items()) for _ in range(int(count))]
        self.rng = random.Random(seed)
        self.stall_s = stall_ms / 1000.0
        self.period_s = stall_every_s
        self.t0 = time.perf_counter()
        self._cards: list[float] = []
        self.arrival_s: list[float] = []
        self.handling_ms: list[float] = []

    def next_delay_s(self) -> float:
        """The next card of the deck (0 for an empty deck), reshuffling when it is used up."""
        if not self.deck_s:
            return 0.0
        if not self._cards:
            self._cards = self.deck_s[:]
            self.rng.shuffle(self._cards)
        return self._cards.pop()

    def unstalled(self, t: float) -> float:
        """``t`` (perf_counter seconds), or the end of the stall it falls in."""
        if self.stall_s <= 0:
            return t
        phase = (t - self.t0) % self.period_s
        return t - phase + self.stall_s if phase < self.stall_s else t


class GroundTruthEcho(pb_grpc.EchoServiceServicer):
    """Answers Echo after the configured delay and stall, recording arrival and handling times."""

    def __init__(self) -> None:
        self.behaviour = Behaviour()

    async def Echo(self, request: pb.EchoRequest, context: grpc.aio.ServicerContext) -> pb.EchoResponse:
        behaviour = self.behaviour
        arrived = time.perf_counter()
        done = behaviour.unstalled(behaviour.unstalled(arrived) + behaviour.next_delay_s())
        while (left := done - time.perf_counter()) > 0:  # sleeps may end early (timer granularity): never answer early
            await asyncio.sleep(left)
        finished = time.perf_counter()
        behaviour.arrival_s.append(arrived - behaviour.t0)
        behaviour.handling_ms.append((finished - arrived) * 1000.0)
        return pb.EchoResponse(payload=request.payload)


def _command(servicer: GroundTruthEcho, line: str) -> dict[str, Any]:
    try:
        message = json.loads(line)
        if "configure" in message:
            config = message["configure"]
            servicer.behaviour = Behaviour({float(k): int(v) for k, v in config.get("deck_ms", {}).items()},
                                           int(config.get("seed", 1)), float(config.get("stall_ms", 0.0)),
                                           float(config.get("stall_every_s", 0.0)))
            return {"ok": True}
        if "report" in message:
            behaviour = servicer.behaviour
            return {"calls": len(behaviour.handling_ms), "arrival_s": behaviour.arrival_s, "handling_ms": behaviour.handling_ms}
        return {"error": f"unknown command {line.strip()!r}: expected configure or report"}
    except (ValueError, TypeError, AttributeError) as error:
        return {"error": str(error)}


async def serve(port: int) -> None:
    """Serve on 127.0.0.1:``port`` and obey stdin commands until SIGTERM/SIGINT or the end of stdin."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    servicer = GroundTruthEcho()
    pb_grpc.add_EchoServiceServicer_to_server(servicer, server)
    bound = server.add_insecure_port(f"{LOOPBACK}:{port}")
    if bound == 0:
        raise SystemExit(f"cannot listen on {LOOPBACK}:{port}")
    await server.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(f"listening on {LOOPBACK}:{bound}", flush=True)

    async def commands() -> None:
        while line := await reader.readline():
            if line.strip():
                sys.stdout.write(json.dumps(_command(servicer, line.decode())) + "\n")
                sys.stdout.flush()
        stop.set()

    task = asyncio.create_task(commands())
    await stop.wait()
    task.cancel()
    await server.stop(1.0)


class GroundTruthServer:
    """This module run as a child process on a free 127.0.0.1 port, for a ``with`` block.

    ``address`` is ``127.0.0.1:PORT``; :meth:`configure` sets delays and
    stalls (and resets the records), :meth:`report` returns them. Stopped by
    closing its stdin (SIGKILL by PID after 10 s).
    """

    def __init__(self, python: str = sys.executable):
        self._python = python
        self.proc: subprocess.Popen | None = None
        self.address = ""

    def __enter__(self) -> GroundTruthServer:
        self.proc = subprocess.Popen([self._python, str(Path(__file__).resolve()), "--port", "0"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent)
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            self.__exit__()
            raise RuntimeError(f"ground-truth server did not start: {line!r}")
        self.address = line.split()[-1]
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _ask(self, message: dict[str, Any]) -> dict[str, Any]:
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        if "error" in reply:
            raise ValueError(reply["error"])
        return reply

    def configure(self, deck_ms: dict[float, int] | None = None, *, seed: int = 1, stall_ms: float = 0.0,
                  stall_every_s: float = 0.0) -> None:
        """Delays from ``deck_ms`` ({delay ms: cards}; none: zero work), stalls of ``stall_ms`` every ``stall_every_s``; records reset."""
        self._ask({"configure": {"deck_ms": {str(k): v for k, v in (deck_ms or {}).items()}, "seed": seed,
                                 "stall_ms": stall_ms, "stall_every_s": stall_every_s}})

    def report(self) -> dict[str, Any]:
        """``{"calls": N, "arrival_s": [s after configure], "handling_ms": [ms]}`` of every call since :meth:`configure`."""
        return self._ask({"report": True})

    def __exit__(self, *exc: object) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: pick a free one)")
    opts = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(opts.port))
    else:
        uvloop.run(serve(opts.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
