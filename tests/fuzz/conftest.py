"""The fuzzers' mesh: every catalogued service, really served, once per session; and the per-RPC tally printed at the end.

One ``casemesh serve`` process (the bootstrap every casemesh server uses,
services/runtime/server.py) serves every service of ``services/catalog.py``,
each on its own 127.0.0.1 port, so mesh hops are real gRPC calls over
loopback. One process rather than one per service (harness/mesh.py) starts
in about a second instead of fifteen on a loaded 2-core machine; a crash of
any service kills it, which the tests see (``poll()``) and report with the
log's tail. The process holds the tests' mesh secret and lets the test
identity (tests/caller_identity.py) call every method, so fuzzed calls reach
the handlers of internal RPCs too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import grpc
import psutil
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from casemesh.harness.mesh import free_port
from casemesh.services.catalog import SERVICES

from casemesh.services.runtime.identity import TEST_IDENTITY, CallerToken
from casemesh.services.runtime.topology import Endpoint, Topology
from casemesh.services.runtime.secrets import PREVIOUS_SECRETS_FILE_ENV, SECRET_FILE_ENV, SERVICE_TOKEN

from ..caller_identity import TEST_SECRET, serve_environment
from .calls import RpcTally

STARTUP_TIMEOUT_S = 60.0


class PortTaken(Exception):
    """A port chosen for a service was taken by another process before the server bound it."""


class FuzzMesh:
    """Every catalogued service in one server process on 127.0.0.1; sync channels to each.

    The channels carry no identity of their own: a call made with
    :attr:`test_caller` as its metadata is the test identity's.
    """

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self.topology = self._topology()
        self.log_path = out_dir / "serve.log"
        self.process: subprocess.Popen | None = None
        self._channels: dict[str, grpc.Channel] = {}
        self.rss_at_start: int = 0
        self._token = CallerToken(TEST_IDENTITY, TEST_SECRET.keyring(SERVICE_TOKEN))

    @property
    def test_caller(self) -> tuple[tuple[str, str], ...]:
        """Call metadata carrying the test identity's caller token."""
        return self._token.metadata()

    def _topology(self) -> Topology:
        # No /metrics ports: fewer ports to race other tests for, and nothing here reads them.
        return Topology(services={name: Endpoint(address=f"127.0.0.1:{free_port()}") for name in SERVICES},
                        data_dir=str(self.out_dir / "data"))

    def start(self, attempts: int = 3) -> None:
        """Start the server and wait until every service is SERVING; fresh ports and another try when one was taken meanwhile."""
        for attempt in range(attempts):
            try:
                return self._start()
            except PortTaken:
                if attempt == attempts - 1:
                    raise
                self.topology = self._topology()

    def _start(self) -> None:
        topology_file = self.out_dir / "topology.yaml"
        topology_file.write_text(self.topology.dump())
        env = {k: v for k, v in os.environ.items() if k not in (SECRET_FILE_ENV, PREVIOUS_SECRETS_FILE_ENV)}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "casemesh.harness.cli", "serve", *SERVICES, "--topology", str(topology_file),
                 "--no-supervise"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                # The tests' mesh secret, and the test identity let in (B, issue 12): internal RPCs are fuzzed past authorization.
                env={**env, **serve_environment(TEST_SECRET), "OTEL_SERVICE_NAME": "fuzz-mesh"})
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        for name in SERVICES:
            while self.health(name) != health_pb2.HealthCheckResponse.SERVING:
                if not self.alive() and any(text in self.log_tail() for text in ("Address already in use", "cannot listen on")):
                    raise PortTaken(self.log_tail())
                assert self.alive(), f"the mesh exited with code {self.process.returncode} while starting:\n{self.log_tail()}"
                assert time.monotonic() < deadline, f"{name} not SERVING within {STARTUP_TIMEOUT_S:.0f} s:\n{self.log_tail()}"
                time.sleep(0.1)
        self.rss_at_start = self.rss()

    def channel(self, name: str) -> grpc.Channel:
        """The shared plaintext channel to service ``name`` (no identity unless a call's metadata brings one)."""
        if name not in self._channels:
            self._channels[name] = grpc.insecure_channel(self.topology.endpoint(name).address)
        return self._channels[name]

    def health(self, name: str, service: str = "") -> int | None:
        """Service ``name``'s health status for ``service`` (``""``: its whole server); ``None`` when it does not answer."""
        try:
            stub = health_pb2_grpc.HealthStub(self.channel(name))
            return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
        except grpc.RpcError:
            return None

    def health_of_all(self, names: Iterable[str]) -> dict[str, int | None]:
        """Each of services ``names``' whole-server health status (``None``: no answer), asked all at once."""
        futures = {name: health_pb2_grpc.HealthStub(self.channel(name)).Check.future(health_pb2.HealthCheckRequest(), timeout=5)
                   for name in dict.fromkeys(names)}
        statuses: dict[str, int | None] = {}
        for name, future in futures.items():
            try:
                statuses[name] = future.result().status
            except grpc.RpcError:
                statuses[name] = None
        return statuses

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def rss(self) -> int:
        """Resident memory of the server process (bytes)."""
        return psutil.Process(self.process.pid).memory_info().rss

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        for channel in self._channels.values():
            channel.close()
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="session")
def fuzz_mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzMesh]:
    mesh = FuzzMesh(tmp_path_factory.mktemp("fuzz-mesh"))
    try:
        mesh.start()
        yield mesh
    finally:
        mesh.stop()


#: Per RPC id (``Service/Method``): what the fuzzers did, printed at the end of the session.
TALLIES: dict[str, RpcTally] = {}
#: The server's resident memory (bytes) at the start and at the last check, printed at the end of the session.
RSS: dict[str, int] = {}


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if not TALLIES:
        return
    write = terminalreporter.write_line
    terminalreporter.section("RPC fuzzing")
    total_calls = total_bodies = 0
    for rpc_id, tally in TALLIES.items():
        codes = ", ".join(f"{code} {n}" for code, n in tally.codes.most_common())
        write(f"{rpc_id:48} {tally.examples:5} examples {tally.calls:5} calls {tally.bodies:6} bodies "
              f"{tally.seconds:6.1f} s  {codes}" + (f"  ({tally.cut} streams cut)" if tally.cut else ""))
        total_calls += tally.calls
        total_bodies += tally.bodies
    write(f"{len(TALLIES)} RPCs, {total_calls} calls, {total_bodies} request bodies, "
          f"{sum(t.seconds for t in TALLIES.values()):.1f} s fuzzing")
    if "end" in RSS:
        write(f"server RSS {RSS['start'] / 2**20:.0f} MiB after start, {RSS['end'] / 2**20:.0f} MiB after the fuzzing")
