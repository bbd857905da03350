"""The embedded default: the services a profile needs, as local processes on 127.0.0.1.

Each service runs in its own process (``casemesh serve SERVICE --topology
FILE``) on a free loopback port, so every mesh hop is a real gRPC call
between processes. The harness writes the topology file, waits until every
service answers the gRPC health check with SERVING, and on exit stops them
with SIGTERM, dependents first (so the URL shortener flushes its click buffer
to a still-running analytics service), escalating to SIGKILL after a grace
period. Each process's output goes to ``OUT/logs/<service>.log``, its
per-second event-loop lag and GC pauses to ``OUT/logs/<service>.loop.jsonl``.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from casemesh.services.catalog import SERVICES
from casemesh.services.runtime.loop_probe import SERIES_ENV
from casemesh.services.runtime.server import shutdown_order
from casemesh.services.runtime.topology import Endpoint, Topology

from .errors import HarnessError

LOOPBACK = "127.0.0.1"
STARTUP_TIMEOUT_S = 30.0
STOP_GRACE_S = 10.0


#: Ports handed to services: below Linux's default ephemeral range (32768-60999), so that between
#: choosing a port and the service binding it, no outgoing connection is given it by the kernel.
SERVICE_PORTS = range(20000, 32768)
_port_rng = random.Random()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now, outside the ephemeral range when one can be found.

    A port from ``bind(0)`` is an ephemeral port: with a dozen services and
    many outgoing connections, another socket may take it before the service
    that was given it binds it (``Address already in use``). Falls back to
    ``bind(0)`` after 50 busy tries.
    """
    for _ in range(50):
        port = _port_rng.choice(SERVICE_PORTS)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def embedded_topology(services: list[str], data_dir: Path, settings: dict[str, dict[str, Any]] | None = None) -> Topology:
    """One free loopback port (and metrics port) per service; persistent files under ``data_dir``."""
    return Topology(
        services={
            name: Endpoint(address=f"{LOOPBACK}:{free_port()}", metrics_address=f"{LOOPBACK}:{free_port()}")
            for name in services
        },
        data_dir=str(data_dir),
        settings=settings or {},
    )


class Mesh:
    """Processes of an embedded mesh; use ``async with`` to start and stop them.

    ``settings`` are the services' settings (``{service: {key: value}}``),
    written into the topology file; persistent files go to ``OUT/data``.
    """

    def __init__(self, services: list[str], out_dir: Path, env: dict[str, str] | None = None,
                 settings: dict[str, dict[str, Any]] | None = None):
        self.services = services
        self.topology = embedded_topology(services, out_dir / "data", settings)
        self.out_dir = out_dir
        self._env = {**os.environ, **(env or {})}
        self._processes: dict[str, subprocess.Popen] = {}

    async def __aenter__(self) -> Mesh:
        try:
            await self.start()
        except BaseException:
            self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop()

    async def start(self) -> None:
        """Start every service and wait until each reports SERVING (``HarnessError`` if one does not)."""
        (self.out_dir / "logs").mkdir(parents=True, exist_ok=True)
        self._topology_file.write_text(self.topology.dump())
        await self.start_services(self.services)

    @property
    def _topology_file(self) -> Path:
        return self.out_dir / "topology.yaml"

    async def start_services(self, names: list[str]) -> None:
        """Start ``names`` (again, after :meth:`kill` or :meth:`stop`) and wait until each reports SERVING."""
        for name in names:
            log_file = (self.out_dir / "logs" / f"{name}.log").open("ab")
            command = [sys.executable, "-m", "casemesh.harness.cli", "serve", name, "--topology", str(self._topology_file)]
            self._processes[name] = subprocess.Popen(
                command, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**self._env, "OTEL_SERVICE_NAME": name, SERIES_ENV: str(self.loop_series(name))},
            )
            log_file.close()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        await asyncio.gather(*(self._wait_serving(name, deadline) for name in names))

    def loop_series(self, name: str) -> Path:
        """Service ``name``'s per-second event-loop lag and GC series (``OUT/logs/<name>.loop.jsonl``, services/runtime/loop_probe.py)."""
        return self.out_dir / "logs" / f"{name}.loop.jsonl"

    def kill(self, name: str) -> None:
        """SIGKILL service ``name`` at once (a crash: nothing is flushed), and reap it."""
        process = self._processes.pop(name, None)
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    async def _wait_serving(self, name: str, deadline: float) -> None:
        address = self.topology.endpoint(name).address
        async with grpc.aio.insecure_channel(address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                process = self._processes[name]
                if process.poll() is not None:
                    raise HarnessError(f"service {name} exited with code {process.returncode} while starting:\n{self.log_tail(name)}")
                try:
                    reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=0.5)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.aio.AioRpcError:
                    pass
                if time.monotonic() > deadline:
                    raise HarnessError(f"service {name} did not report SERVING on {address} within {STARTUP_TIMEOUT_S:.0f} s:\n{self.log_tail(name)}")
                await asyncio.sleep(0.1)

    def log_tail(self, name: str, lines: int = 20) -> str:
        """The last ``lines`` lines of service ``name``'s log."""
        path = self.out_dir / "logs" / f"{name}.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, services: list[str] | None = None) -> None:
        """SIGTERM the services (all by default), dependents first, waiting for each; SIGKILL what outlives the grace."""
        order = [d.name for d in shutdown_order([SERVICES[n] for n in services or self.services])]
        for name in order:
            process = self._processes.pop(name, None)
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
