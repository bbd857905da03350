"""The embedded default: the services a profile needs, as local processes on 127.0.0.1.

Each service runs in its own process (``casemesh serve SERVICE --topology
FILE``) on a free loopback port, so every mesh hop is a real gRPC call
between processes. The harness writes the topology file, waits until every
service answers the gRPC health check with SERVING, and on exit stops them
with SIGTERM, dependents first (so the URL shortener flushes its click buffer
to a still-running analytics service), escalating to SIGKILL after a grace
period. Each process's output goes to ``OUT/logs/<service>.log``, its
per-second event-loop lag and GC pauses to ``OUT/logs/<service>.loop.jsonl``.
Every mesh gets a random mesh secret (caller tokens, upload tokens), passed
to its processes through ``CASEMESH_SECRET`` in their environment, never on a
command line or in a file.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.metrics_core import CounterMetricFamily
from prometheus_client.registry import Collector

from casemesh.services.catalog import SERVICES
from casemesh.services.runtime.loop_probe import SERIES_ENV
from casemesh.services.runtime.parent_watch import parent_environment
from casemesh.services.runtime.secrets import PREVIOUS_SECRETS_FILE_ENV, SECRET_FILE_ENV, MeshSecret, secret_environment
from casemesh.services.runtime.server import shutdown_order
from casemesh.services.runtime.topology import Endpoint, TlsSettings, Topology

from .channels import open_mesh_channel
from .errors import HarnessError
from .implementations import check_impl, node_command
from .supervisor import CrashStreak, RestartPolicy, describe_exit

log = logging.getLogger("casemesh.harness.mesh")

LOOPBACK = "127.0.0.1"
#: How long every service of the mesh may take to report SERVING (s). Eight video services importing grpc on a
#: loaded 2-core machine took 33 s; a bound, not a wait: a mesh that is up sooner is used sooner.
STARTUP_TIMEOUT_S = 90.0
STOP_GRACE_S = 10.0
#: Channel options of the startup health wait: reconnect within a second of a failed attempt.
WAIT_CHANNEL_OPTIONS = (("grpc.initial_reconnect_backoff_ms", 200), ("grpc.min_reconnect_backoff_ms", 200),
                        ("grpc.max_reconnect_backoff_ms", 1000))


#: Ports handed to services: below Linux's default ephemeral range (32768-60999), so that between
#: choosing a port and the service binding it, no outgoing connection is given it by the kernel.
SERVICE_PORTS = range(20000, 32768)
_port_rng = random.Random()
#: Ports free_port has handed out in this process.
_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now, outside the ephemeral range when one can be found.

    A port from ``bind(0)`` is an ephemeral port: with a dozen services and
    many outgoing connections, another socket may take it before the service
    that was given it binds it (``Address already in use``). Falls back to
    ``bind(0)`` after 50 busy tries.

    A port is not handed out twice by one process (until half the range has
    been): the port is only checked free, not held, so two services of one
    topology given the same port would both bind it later, and the second
    fails (seen in CI: urlshortener could not bind, and the harness's calls
    reached idgen at its address, UNIMPLEMENTED).
    """
    if len(_handed_out) >= len(SERVICE_PORTS) // 2:
        _handed_out.clear()
    for _ in range(50):
        port = _port_rng.choice(SERVICE_PORTS)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                continue
            _handed_out.add(port)
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port = sock.getsockname()[1]
    _handed_out.add(port)
    return port


def embedded_topology(services: list[str], data_dir: Path, settings: dict[str, dict[str, Any]] | None = None,
                      tls: TlsSettings | None = None, reflection: bool = False,
                      impls: Mapping[str, str] | None = None) -> Topology:
    """One free loopback port (and metrics port) per service; persistent files under ``data_dir``; mTLS with ``tls``;
    each service's implementation from ``impls`` (default python)."""
    return Topology(
        tls=tls, reflection=reflection,
        services={
            name: Endpoint(address=f"{LOOPBACK}:{free_port()}", metrics_address=f"{LOOPBACK}:{free_port()}",
                           impl=(impls or {}).get(name, "python"))
            for name in services
        },
        data_dir=str(data_dir),
        settings=settings or {},
    )


class Mesh:
    """Processes of an embedded mesh; use ``async with`` to start and stop them.

    ``settings`` are the services' settings (``{service: {key: value}}``),
    written into the topology file; persistent files go to ``OUT/data``.
    ``tls`` (a topology ``tls:`` section with absolute paths) makes every
    service serve and call with mTLS; the health wait then uses the harness's certificate.
    ``reflection`` turns on gRPC server reflection (off by default, as in any topology).
    ``impls`` chooses a service's implementation (``{"idgen": "node"}``, harness/implementations.py):
    a Node one is built if needed and started as ``node .../server.js --topology FILE`` with the same
    environment; ``ConfigError`` for an implementation the service does not have.

    Supervision: after :meth:`start`, a service process that exits without
    being asked to (a crash, a SIGKILL from outside) is restarted on the same
    address with exponential backoff (``restart``, a
    :class:`~casemesh.harness.supervisor.RestartPolicy`; ``None`` turns it
    off), and logged. Processes stopped through :meth:`kill` or :meth:`stop`
    are never restarted; :meth:`start_services` starts them again. A process
    paused with :meth:`pause` (SIGSTOP) is alive to the supervisor, and
    :meth:`stop` resumes it before stopping it.
    :attr:`restarts` counts restarts per service (also exported as
    ``casemesh_mesh_restarts_total{service}`` by :meth:`collector`) and
    :attr:`restart_events` lists them (service, time, exit, delay).
    """

    def __init__(self, services: list[str], out_dir: Path, env: dict[str, str] | None = None,
                 settings: dict[str, dict[str, Any]] | None = None, restart: RestartPolicy | None = RestartPolicy(),
                 tls: TlsSettings | None = None, secret: MeshSecret | None = None, reflection: bool = False,
                 impls: Mapping[str, str] | None = None):
        self.services = services
        for name, impl in (impls or {}).items():
            check_impl(name, impl)
        self.topology = embedded_topology(services, out_dir / "data", settings, tls, reflection, impls)
        self.out_dir = out_dir
        #: This run's mesh secret (random), handed to the processes in their environment only (docs/security.md, "Secrets").
        self.secret = secret or MeshSecret.generate()
        self._env = {name: value for name, value in {**os.environ, **(env or {})}.items()
                     if name not in (SECRET_FILE_ENV, PREVIOUS_SECRETS_FILE_ENV)}
        self._env.update(secret_environment(self.secret))
        self._env.update(parent_environment())  # the services stop by themselves if this process dies (parent_watch.py)
        self._processes: dict[str, subprocess.Popen] = {}
        self.restart_policy = restart
        #: Restarts by the supervisor, per service.
        self.restarts: dict[str, int] = {name: 0 for name in services}
        #: One entry per restart: ``{"service", "at_unix_s", "exit", "delay_s"}`` (``exit`` as in ``killed by SIGKILL``).
        self.restart_events: list[dict[str, Any]] = []
        self._supervised: set[str] = set()  # services that should be running (not stopped or killed on purpose)
        self._streaks: dict[str, CrashStreak] = {}
        self._restarting: set[str] = set()
        self._paused: dict[str, subprocess.Popen] = {}  # SIGSTOPped by pause(), resumed by resume(), kill() or stop()
        self._supervisor: asyncio.Task | None = None
        self._closed = False

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
        if self.restart_policy is not None and (self._supervisor is None or self._supervisor.done()):
            self._closed = False
            self._supervisor = asyncio.get_running_loop().create_task(self._supervise(), name="mesh-supervisor")

    @property
    def _topology_file(self) -> Path:
        return self.out_dir / "topology.yaml"

    async def start_services(self, names: list[str]) -> None:
        """Start ``names`` (again, after :meth:`kill` or :meth:`stop`) and wait until each reports SERVING."""
        for name in names:
            self._supervised.add(name)
            self._streaks.setdefault(name, CrashStreak(self.restart_policy or RestartPolicy())).started()
        for name in names:
            log_file = (self.out_dir / "logs" / f"{name}.log").open("ab")
            command = [sys.executable, "-m", "casemesh.harness.cli", "serve", name, "--topology", str(self._topology_file),
                       "--no-supervise"]  # the mesh supervises its processes itself
            if self.topology.endpoint(name).impl == "node":  # same topology file and environment (harness/implementations.py)
                command = node_command(name, self._topology_file)
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

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> int | None:
        """Send ``sig`` to service ``name`` and reap it; it is not restarted (:meth:`start_services` starts it again).

        SIGKILL (the default) is a crash: nothing is flushed. SIGTERM is a
        graceful stop, escalated to SIGKILL after :data:`STOP_GRACE_S`
        (blocking: call it in a thread from a running loop). A paused
        process is resumed first. Returns its exit code (``-9`` for SIGKILL),
        ``None`` when it was not running.
        """
        self._supervised.discard(name)
        self._streaks.pop(name, None)
        process = self._processes.pop(name, None)
        self.resume(name)
        if process is None or process.poll() is not None:
            return None
        process.send_signal(sig)
        try:
            return process.wait(None if sig == signal.SIGKILL else STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()

    def pause(self, name: str) -> bool:
        """SIGSTOP service ``name`` (it neither answers nor dies; the supervisor leaves it be); ``False`` when it is not running.

        :meth:`resume` sends SIGCONT; :meth:`stop` and :meth:`kill` resume a paused process first.
        """
        process = self._processes.get(name)
        if process is None or process.poll() is not None:
            return False
        process.send_signal(signal.SIGSTOP)
        self._paused[name] = process
        return True

    def resume(self, name: str) -> bool:
        """SIGCONT service ``name`` if :meth:`pause` stopped it; ``True`` when it was paused."""
        paused = self._paused.pop(name, None)
        if paused is None:
            return False
        if paused.poll() is None:
            paused.send_signal(signal.SIGCONT)
        return True

    async def _wait_serving(self, name: str, deadline: float) -> None:
        address = self.topology.endpoint(name).address
        # A short reconnect backoff: grpc's default grows past 10 s, so a service slow to start (a loaded
        # machine) could be seen SERVING only after the startup deadline.
        async with open_mesh_channel(address, self.topology.tls, options=WAIT_CHANNEL_OPTIONS) as channel:
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
        if services is None:
            self._closed = True  # the supervisor task ends at its next poll
        order = [d.name for d in shutdown_order([SERVICES[n] for n in services or self.services])]
        self._supervised.difference_update(order)
        for name in order:  # a paused process would hold SIGTERM until the grace ran out
            self.resume(name)
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

    def pid(self, name: str) -> int | None:
        """The process ID of service ``name``, ``None`` when it is not running under the mesh."""
        process = self._processes.get(name)
        return None if process is None else process.pid

    #: Seconds between two looks at the processes.
    SUPERVISE_POLL_S = 0.2

    async def _supervise(self) -> None:
        while not self._closed:
            try:  # stop() may run in another thread (asyncio.to_thread) and change the set meanwhile
                names = list(self._supervised)
            except RuntimeError:
                names = []
            for name in names:
                process = self._processes.get(name)
                if process is None or name in self._restarting or process.poll() is None:
                    continue
                self._restarting.add(name)
                asyncio.get_running_loop().create_task(self._restart(name, process), name=f"mesh-restart-{name}")
            await asyncio.sleep(self.SUPERVISE_POLL_S)

    def _still_wanted(self, name: str, process: subprocess.Popen) -> bool:
        """``name`` should run and ``process`` is still its (dead) process: no stop, kill or start came in between."""
        return not self._closed and name in self._supervised and self._processes.get(name) is process

    async def _restart(self, name: str, process: subprocess.Popen) -> None:
        try:
            while self._still_wanted(name, process):
                how = describe_exit(process.returncode)
                streak = self._streaks.setdefault(name, CrashStreak(self.restart_policy or RestartPolicy()))
                delay = streak.crashed()
                if delay is None:
                    log.error("service %s (pid %d) %s: crashed %d times in a row, not restarting it again\n%s",
                              name, process.pid, how, streak.count, self.log_tail(name, 5))
                    self._supervised.discard(name)
                    return
                log.warning("service %s (pid %d) %s unexpectedly: restarting it in %.1f s", name, process.pid, how, delay)
                await asyncio.sleep(delay)
                if not self._still_wanted(name, process):
                    return
                self.restarts[name] = self.restarts.get(name, 0) + 1
                self.restart_events.append({"service": name, "at_unix_s": round(time.time(), 3), "exit": how,
                                            "delay_s": delay})
                try:
                    await self.start_services([name])
                except HarnessError as error:  # it died again while starting: back off further
                    log.warning("service %s did not come back: %s", name, str(error).splitlines()[0])
                    process = self._processes.get(name, process)
                    if process.poll() is None:  # alive but not SERVING yet: watched like any running process
                        return
                    continue
                log.warning("service %s restarted (restart %d)", name, self.restarts[name])
                return
        except Exception:  # noqa: BLE001 - a supervisor bug must not end the run; it is logged
            if name in self._supervised:  # else stopped or killed on purpose meanwhile: nothing to report
                log.exception("restarting service %s failed", name)
        finally:
            self._restarting.discard(name)

    def collector(self) -> MeshCollector:
        """A Prometheus collector of ``casemesh_mesh_restarts_total{service}`` for a registry (the harness's /metrics)."""
        return MeshCollector(self)


class MeshCollector(Collector):
    """``casemesh_mesh_restarts_total{service}``: restarts of each service by the mesh's supervisor."""

    def __init__(self, mesh: Mesh):
        self._mesh = mesh

    def collect(self):
        family = CounterMetricFamily("casemesh_mesh_restarts", "Restarts of a crashed service process by the embedded mesh.",
                                     labels=["service"])
        for name, count in sorted(self._mesh.restarts.items()):
            family.add_metric([name], count)
        yield family
