"""The embedded mesh restarts a service that crashed, with backoff, and never one stopped on purpose."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from casemesh.harness.mesh import Mesh
from casemesh.harness.supervisor import RestartPolicy

POLICY = RestartPolicy(initial_backoff_s=0.5, max_backoff_s=4.0)


async def serving(mesh: Mesh, name: str) -> bool:
    return await serving_at(mesh.topology.endpoint(name).address)


async def serving_at(address: str) -> bool:
    async with grpc.aio.insecure_channel(address) as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        except grpc.aio.AioRpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING


async def wait_restarted(mesh: Mesh, name: str, count: int, old_pid: int, timeout_s: float = 60) -> None:
    """Until the supervisor has restarted ``name`` ``count`` times and the new process serves."""
    deadline = time.monotonic() + timeout_s
    while mesh.restarts[name] < count or mesh.pid(name) in (None, old_pid) or not await serving(mesh, name):
        assert time.monotonic() < deadline, f"{name} was not restarted:\n{mesh.log_tail(name)}"
        await asyncio.sleep(0.1)


async def test_sigkilled_service_is_restarted_with_backoff(tmp_path, caplog):
    async with Mesh(["analytics"], tmp_path, restart=POLICY) as mesh:
        for attempt in (1, 2):
            pid = mesh.pid("analytics")
            os.kill(pid, signal.SIGKILL)
            await wait_restarted(mesh, "analytics", attempt, pid)
            assert await serving(mesh, "analytics")
        # Two crashes in a row: the second waited twice as long as the first.
        assert [e["delay_s"] for e in mesh.restart_events] == [0.5, 1.0]
        assert all(e["exit"] == "killed by SIGKILL" and e["service"] == "analytics" for e in mesh.restart_events)
        assert "casemesh_mesh_restarts" in {m.name for m in mesh.collector().collect()}
        assert [s.value for m in mesh.collector().collect() for s in m.samples if s.name.endswith("_total")] == [2.0]

        mesh.kill("analytics")  # on purpose: stays down
        await asyncio.sleep(POLICY.initial_backoff_s * 2 + 1)
        assert mesh.pid("analytics") is None and mesh.restarts["analytics"] == 2
        await mesh.start_services(["analytics"])  # the API starts it again
        assert await serving(mesh, "analytics")
    assert "killed by SIGKILL unexpectedly: restarting it in 0.5 s" in caplog.text


async def test_crash_loop_gives_up_after_max_restarts(tmp_path):
    policy = RestartPolicy(initial_backoff_s=0.2, max_backoff_s=0.2, max_restarts=1)
    async with Mesh(["analytics"], tmp_path, restart=policy) as mesh:
        pid = mesh.pid("analytics")
        os.kill(pid, signal.SIGKILL)
        await wait_restarted(mesh, "analytics", 1, pid)
        pid = mesh.pid("analytics")
        os.kill(pid, signal.SIGKILL)  # second crash in a row: over the bound
        await asyncio.sleep(2)
        assert mesh.restarts["analytics"] == 1 and mesh.pid("analytics") == pid  # left down, not respawned


def test_casemesh_serve_restarts_its_crashed_child(tmp_path):
    """``casemesh serve`` (supervised by default): SIGKILL the serving child, a new one serves the same port."""
    import subprocess
    import sys

    import psutil

    from casemesh.harness.mesh import free_port

    port = free_port()
    topology = tmp_path / "topology.yaml"
    topology.write_text(f"services:\n  analytics: {{address: '127.0.0.1:{port}'}}\ndata_dir: {tmp_path / 'data'}\n")
    supervisor = subprocess.Popen([sys.executable, "-m", "casemesh.harness.cli", "serve", "--dev-secret", "--topology", str(topology)],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)

    def serving_child(not_pid: int | None = None) -> int:
        deadline = time.monotonic() + 60
        while True:
            assert supervisor.poll() is None, supervisor.stdout.read()
            children = psutil.Process(supervisor.pid).children()
            if children and children[0].pid != not_pid and asyncio.run(serving_at(f"127.0.0.1:{port}")):
                return children[0].pid
            assert time.monotonic() < deadline, "no serving child"
            time.sleep(0.2)

    try:
        first = serving_child()
        os.kill(first, signal.SIGKILL)
        assert serving_child(not_pid=first) != first
    finally:
        supervisor.terminate()
        output = supervisor.communicate(timeout=60)[0]
    assert supervisor.returncode == 0, output
    assert "killed by SIGKILL: restart 1 in 0.5 s" in output
