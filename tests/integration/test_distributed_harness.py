"""The distributed harness on one machine: ``casemesh worker`` processes started on their own, a coordinator, an echo server.

What can be "the same" between a distributed run and ``--workers 2``: the
latencies differ from run to run, but the schedule does not. With the same
profile and seed both split the one arrival schedule the same way (worker i
sends arrivals k with k % 2 == i), so per worker the arrivals sent, and per
RPC the number of calls in the merged histograms, are equal, and both equal
the single-process schedule computed here. The default suite checks the
distributed run against that schedule (tests/integration/test_workers.py
checks ``--workers 2`` against it); the slow test runs both and compares them
directly. That the merge of histograms across the wire is exact (bucket for
bucket) is tests/unit/test_distributed.py. Every process runs on 127.0.0.1;
the load is 40 calls/s for 2.5 s.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from casemesh.harness.distributed.assignment import plan_digest
from casemesh.harness.distributed.coordinator import TOKEN_METADATA, RemoteWorkerPool, casemesh_version
from casemesh.harness.driver import plan_rngs
from casemesh.harness.errors import HarnessError
from casemesh.harness.mesh import free_port
from casemesh.harness.profile import load_profile
from casemesh.harness.v1 import coordinator_pb2 as pb
from casemesh.harness.v1 import coordinator_pb2_grpc as pb_grpc
from casemesh.harness.workers import plan_arrivals

CLI = [sys.executable, "-m", "casemesh.harness.cli"]
ECHO_RPC = "casemesh.bench.v1.EchoService/Echo"
PROFILE = """apiVersion: casemesh.dev/v1
kind: Profile
metadata: {name: echo-split}
workload: echo
arrival: {process: poisson, rate_per_s: 40}
warmup_s: 0.5
duration_s: 2
journeys:
  - {name: echo, weight: 1}
"""


@pytest.fixture(scope="module")
def echo_server() -> Iterator[str]:
    """The bare reference echo server (harness/calibration/echo_server.py) on 127.0.0.1; its address."""
    server = subprocess.Popen([sys.executable, "-m", "casemesh.harness.calibration.echo_server", "--port", "0"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    try:
        line = server.stdout.readline()
        assert line.startswith("listening on 127.0.0.1:"), line
        yield line.split()[-1]
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture
def profile_path(tmp_path: Path) -> Path:
    path = tmp_path / "echo.yaml"
    path.write_text(PROFILE)
    return path


def _schedule(profile_path: Path, seed: int) -> tuple[list[float], int]:
    """The single-process schedule's intended offsets and how many fall in the measured window."""
    profile = load_profile(profile_path)
    arrivals, journeys = plan_rngs(seed)
    run_s = profile.warmup_s + profile.duration_s
    schedule = [offset for offset, _ in plan_arrivals((profile.arrival.schedule(arrivals, run_s), journeys.choices), profile)]
    return schedule, sum(1 for offset in schedule if offset >= profile.warmup_s)


def _distributed_run(tmp_path: Path, common: list[str]) -> tuple[dict, list[str]]:
    """``casemesh run`` as coordinator plus two ``casemesh worker`` processes started before it; (result.json, worker logs)."""
    port = free_port()
    # The workers start first, on their own: they keep trying until the coordinator listens.
    workers = [subprocess.Popen([*CLI, "worker", "--coordinator", f"127.0.0.1:{port}", "--connect-timeout", "120"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
               for _ in range(2)]
    try:
        remote = subprocess.run([*CLI, "run", *common, "--coordinator-listen", f"127.0.0.1:{port}", "--expect-workers", "2",
                                 "--out", str(tmp_path / "remote")], capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
        logs = [w.communicate(timeout=60)[0] for w in workers]
    finally:
        for w in workers:
            w.kill()
    # 4 only if this machine was so loaded that a worker fell behind by > 10 ms at p99: the result is written either way.
    assert remote.returncode in (0, 4), remote.stdout + remote.stderr
    assert [w.returncode for w in workers] == [0, 0], logs
    return json.loads((tmp_path / "remote" / "result.json").read_text()), logs


def _check_split(result: dict, schedule: list[float], measured: int) -> None:
    """The result's per-worker arrivals and per-RPC counts are the single-process schedule's, split by index."""
    assert result["timeline"]["intended_total"] == result["timeline"]["sent_total"] == len(schedule)
    assert [w["sent"] for w in result["workers"]] == [len(schedule[0::2]), len(schedule[1::2])]
    assert result["rpcs"][ECHO_RPC]["count"] == result["send_lag"]["count"] == measured


def test_two_workers_started_by_hand_send_the_split_schedule_and_merge_every_call(tmp_path: Path, profile_path: Path, echo_server: str):
    """The distributed run sends what ``--workers 2`` sends: tests/integration/test_workers.py checks ``--workers 2``
    against the same split of the single-process schedule, so this run is checked against that split too (the direct
    comparison of the two runs is the slow test below)."""
    common = [str(profile_path), "--target", echo_server, "--seed", "5", "--no-control", "--report", "off", "--no-progress"]
    result, logs = _distributed_run(tmp_path, common)
    schedule, measured = _schedule(profile_path, 5)
    _check_split(result, schedule, measured)
    assert result["plan"]["workers"]["mode"] == "remote"
    assert all(w["host"] and w["pid"] for w in result["workers"])
    assert sorted(re.search(r"worker (\d) of 2:", log).group(1) for log in logs) == ["0", "1"], logs


@pytest.mark.slow
def test_a_distributed_run_and_workers_2_give_the_same_counts(tmp_path: Path, profile_path: Path, echo_server: str):
    common = [str(profile_path), "--target", echo_server, "--seed", "6", "--no-control", "--report", "off", "--no-progress"]
    remote, _ = _distributed_run(tmp_path, common)
    local = subprocess.run([*CLI, "run", *common, "--workers", "2", "--out", str(tmp_path / "local")],
                           capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert local.returncode in (0, 4), local.stdout + local.stderr
    local_result = json.loads((tmp_path / "local" / "result.json").read_text())
    schedule, measured = _schedule(profile_path, 6)
    for result in (remote, local_result):
        _check_split(result, schedule, measured)
    assert remote["timeline"]["intended"] == local_result["timeline"]["intended"]
    assert [w["send_lag"]["count"] for w in remote["workers"]] == [w["send_lag"]["count"] for w in local_result["workers"]]
    assert {k: v["count"] for k, v in remote["journeys"].items()} == {k: v["count"] for k, v in local_result["journeys"].items()}


async def test_the_coordinator_refuses_a_wrong_token_another_version_and_a_worker_too_many(profile_path: Path):
    profile = load_profile(profile_path)
    pool = RemoteWorkerPool(profile, {}, {"echo": "127.0.0.1:1"}, workers=1, listen="127.0.0.1:0", token="the-join-token",
                            join_timeout_s=60, rng_seed=9, say=lambda line: None)
    starting = asyncio.create_task(pool.start())
    try:
        while pool.address is None:
            await asyncio.sleep(0.05)
        async with grpc.aio.insecure_channel(pool.address) as channel:
            stub = pb_grpc.CoordinatorServiceStub(channel)
            hello = pb.JoinRequest(hello=pb.WorkerHello(host="test", pid=1, casemesh_version=casemesh_version()))

            async def first_answer(request: pb.JoinRequest, token: str | None) -> pb.JoinResponse | grpc.StatusCode:
                call = stub.Join(metadata=((TOKEN_METADATA, token),) if token else None)
                try:
                    await call.write(request)
                    response = await call.read()
                except grpc.aio.AioRpcError as error:  # refused before (or while) the request was written
                    return error.code()
                return await call.code() if response is grpc.aio.EOF else (call, response)

            assert await first_answer(hello, None) == grpc.StatusCode.UNAUTHENTICATED
            assert await first_answer(hello, "wrong") == grpc.StatusCode.UNAUTHENTICATED
            other = pb.JoinRequest(hello=pb.WorkerHello(host="test", pid=1, casemesh_version="0.0.0-other"))
            assert await first_answer(other, "the-join-token") == grpc.StatusCode.FAILED_PRECONDITION
            call, response = await first_answer(hello, "the-join-token")
            job = response.assignment
            assert (job.worker_index, job.worker_count, job.seed, dict(job.targets)) == (0, 1, 9, {"echo": "127.0.0.1:1"})
            assert job.plan_digest == plan_digest(profile, 9)
            assert await first_answer(hello, "the-join-token") == grpc.StatusCode.RESOURCE_EXHAUSTED
            # A worker that fails before it is ready stops the run with its message.
            await call.write(pb.JoinRequest(failure=pb.WorkerFailure(message="cannot connect to echo")))
            with pytest.raises(HarnessError, match="load worker 0 .*failed: cannot connect to echo"):
                await asyncio.wait_for(starting, 30)
    finally:
        starting.cancel()
        pool.close()
