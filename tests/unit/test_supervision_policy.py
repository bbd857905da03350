"""The restart backoff policy and the dependency watch's state machine, without processes."""

import asyncio
import logging

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from casemesh.harness.mesh import free_port
from casemesh.harness.supervisor import CrashStreak, RestartPolicy, describe_exit
from casemesh.services.runtime.dependency_health import NOT_SERVING, SERVING, DependencyWatch, Upstream


def test_backoff_doubles_to_the_cap_and_gives_up_after_max_restarts():
    policy = RestartPolicy(initial_backoff_s=0.5, max_backoff_s=3.0, max_restarts=5)
    streak = CrashStreak(policy)
    assert [streak.crashed() for _ in range(6)] == [0.5, 1.0, 2.0, 3.0, 3.0, None]


def test_a_process_that_stayed_up_starts_a_new_streak(monkeypatch):
    now = [100.0]
    monkeypatch.setattr("casemesh.harness.supervisor.time.monotonic", lambda: now[0])
    streak = CrashStreak(RestartPolicy(initial_backoff_s=1, max_backoff_s=8, reset_after_s=30))
    assert [streak.crashed(), streak.crashed()] == [1, 2]
    streak.started()
    now[0] += 31
    assert streak.crashed() == 1


def test_policy_and_exit_descriptions():
    with pytest.raises(ValueError):
        RestartPolicy(initial_backoff_s=5, max_backoff_s=1)
    assert describe_exit(-9) == "killed by SIGKILL" and describe_exit(3) == "exit code 3"


async def test_watch_turns_not_serving_after_the_bound_and_back(caplog):
    caplog.set_level(logging.INFO, "casemesh.runtime.dependencies")
    upstream_health = health.aio.HealthServicer()
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(upstream_health, server)
    address = f"127.0.0.1:{free_port()}"
    server.add_insecure_port(address)
    await server.start()
    await upstream_health.set("up.Service", SERVING)
    await upstream_health.set("optional.Service", SERVING)
    statuses: list[tuple[str, int]] = []

    async def set_status(name, status):
        statuses.append((name, status))

    watch = DependencyWatch("front", ("front.Service",), [Upstream("up", address, "up.Service"),
                                                          Upstream("opt", address, "optional.Service", required=False)],
                            set_status, unhealthy_after_s=1.5, interval_s=0.3)
    watch.start()
    try:
        await asyncio.sleep(0.5)
        await upstream_health.set("optional.Service", NOT_SERVING)  # optional: logged, status unchanged
        await upstream_health.set("up.Service", NOT_SERVING)
        for _ in range(200):
            if statuses:
                break
            await asyncio.sleep(0.05)
        assert statuses == [("front.Service", NOT_SERVING)] and not watch.serving
        await upstream_health.set("up.Service", SERVING)
        for _ in range(200):
            if len(statuses) == 2:
                break
            await asyncio.sleep(0.05)
        assert statuses[1] == ("front.Service", SERVING) and watch.serving
    finally:
        await watch.stop()
        await server.stop(None)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("required upstream up" in m and "NOT_SERVING" in m for m in messages) == 1
    assert sum("upstream up" in m and "healthy again" in m for m in messages) == 1
    assert sum("optional upstream opt" in m for m in messages) == 1
