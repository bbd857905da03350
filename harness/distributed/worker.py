"""``casemesh worker --coordinator HOST:PORT``: join a coordinator, drive this worker's share of its run, report back.

The worker is the body of a local ``--workers`` process
(:func:`~casemesh.harness.workers.drive_share`: a
:class:`~casemesh.harness.workers.WorkerDriver` sending every N-th arrival of
the run's schedule) behind a gRPC stream instead of a pipe:

1. it calls ``CoordinatorService.Join`` with ``wait_for_ready``, so it may
   start before the coordinator listens (it retries the connection, at most
   :data:`RECONNECT_BACKOFF_MS` apart, for up to ``connect_timeout_s``);
2. from the assignment it loads the profile (harness/distributed/assignment.py),
   checks that it draws the coordinator's schedule (the plan digest), and
   reads the seeded state;
3. it connects to every target, says ``ready``, converts the start instant
   (Unix time) to its own monotonic clock, drives, and streams progress and
   its final statistics.

Exit codes (:func:`run_worker` raises, the command maps): 0 share done; 3
harness error (the coordinator unreachable, refused this worker or stopped
the run; a target unreachable; the schedule digest differs).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import traceback
from collections.abc import Callable
from typing import Any

import grpc

from casemesh.harness.v1 import coordinator_pb2 as pb
from casemesh.harness.v1 import coordinator_pb2_grpc as pb_grpc
from casemesh.services.runtime.topology import TlsSettings

from ..errors import HarnessError
from ..workers import WorkerSpec, drive_share
from .assignment import load_state, load_worker_profile, plan_digest
from .coordinator import CHANNEL_OPTIONS, TOKEN_METADATA, casemesh_version
from .wire import request_of

#: Longest pause between connection attempts to the coordinator (ms); gRPC's default grows to 120 s.
RECONNECT_BACKOFF_MS = 1000
#: Default bound on reaching the coordinator and receiving an assignment (s).
CONNECT_TIMEOUT_S = 300.0


async def run_worker(coordinator: str, *, tls: TlsSettings | None = None, token: str | None = None,
                     connect_timeout_s: float = CONNECT_TIMEOUT_S, say: Callable[[str], Any] = print) -> int:
    """Join ``coordinator`` (``host:port``), drive the share it assigns, send the results; returns the worker's index.

    ``tls`` is the mTLS of the *targets* (the harness's identity); ``token``
    the join token. Raises :class:`~casemesh.harness.errors.HarnessError`
    naming what failed.
    """
    options = (*CHANNEL_OPTIONS, ("grpc.max_reconnect_backoff_ms", RECONNECT_BACKOFF_MS),
               ("grpc.initial_reconnect_backoff_ms", min(100, RECONNECT_BACKOFF_MS)))
    async with grpc.aio.insecure_channel(coordinator, options=options) as channel:
        call = pb_grpc.CoordinatorServiceStub(channel).Join(
            metadata=((TOKEN_METADATA, token),) if token else None, wait_for_ready=True)
        try:
            return await _session(call, coordinator, tls, connect_timeout_s, say)
        except grpc.aio.AioRpcError as error:
            raise HarnessError(f"coordinator {coordinator}: {error.code().name}: {error.details()}") from None
        finally:
            call.cancel()  # no-op once the stream ended


async def _read(call: Any, coordinator: str, what: str) -> pb.JoinResponse:
    response = await call.read()
    if response is grpc.aio.EOF:
        status = await call.code()
        details = await call.details()
        raise HarnessError(f"coordinator {coordinator} ended the session before {what}"
                           + ("" if status == grpc.StatusCode.OK else f": {status.name}: {details}"))
    return response


async def _session(call: Any, coordinator: str, tls: TlsSettings | None, connect_timeout_s: float, say: Callable[[str], Any]) -> int:
    await call.write(pb.JoinRequest(hello=pb.WorkerHello(host=socket.gethostname(), pid=os.getpid(), casemesh_version=casemesh_version())))
    try:
        first = await asyncio.wait_for(_read(call, coordinator, "an assignment"), connect_timeout_s)
    except asyncio.TimeoutError:
        raise HarnessError(f"no assignment from the coordinator {coordinator} within {connect_timeout_s:g} s "
                           "(is it listening, and waiting for workers?)") from None
    if first.WhichOneof("event") != "assignment":
        raise HarnessError(f"coordinator {coordinator} sent {first.WhichOneof('event')} before an assignment")
    job = first.assignment
    profile = load_worker_profile(job.profile_yaml, dict(job.profile_files))
    if plan_digest(profile, job.seed) != job.plan_digest:
        raise HarnessError("this worker draws another arrival schedule than the coordinator from the same profile and seed "
                           "(another casemesh version or Python?): refusing to send a schedule that would not merge")
    spec = WorkerSpec(index=job.worker_index, count=job.worker_count, profile=profile, targets=dict(job.targets), seed=job.seed,
                      trace_ratio=job.trace_ratio, state=load_state(job.seeded_state), tls=tls)
    say(f"worker {spec.index} of {spec.count}: {profile.name}, seed {spec.seed}, arrivals i with i % {spec.count} == {spec.index}; "
        f"targets {', '.join(f'{s}={a}' for s, a in spec.targets.items())}")
    outgoing: asyncio.Queue[tuple[Any, ...] | None] = asyncio.Queue()
    share_done = False
    watcher: asyncio.Task[bool] | None = None

    def emit(message: tuple[Any, ...]) -> None:
        nonlocal share_done
        share_done = share_done or message[0] == "done"
        outgoing.put_nowait(message)

    async def write_all() -> None:
        while (message := await outgoing.get()) is not None:
            await call.write(request_of(message))

    async def wait_start() -> float:
        nonlocal watcher
        response = await _read(call, coordinator, "the start")
        if response.WhichOneof("event") != "start":
            raise HarnessError(f"coordinator {coordinator} sent {response.WhichOneof('event')} instead of the start")
        start_at = time.perf_counter() + (response.start.start_unix_nanos - time.time_ns()) / 1e9
        say(f"worker {spec.index}: starting in {max(start_at - time.perf_counter(), 0.0):.2f} s")
        # From here on only the end of the stream can come: if it comes before this worker is done
        # (the coordinator stopped the run, or is gone), stop sending load at once.
        watcher = asyncio.create_task(_read_end(call))
        watcher.add_done_callback(lambda _: None if share_done else drive.cancel())
        return start_at

    writer = asyncio.create_task(write_all())
    drive = asyncio.create_task(drive_share(spec, emit, wait_start))
    failure: BaseException | None = None
    try:
        await drive
    except asyncio.CancelledError:
        if watcher is None or not watcher.done():
            raise  # this worker itself is being cancelled
        failure = watcher.exception() or HarnessError("the coordinator closed the stream before this worker finished")
    except Exception as error:  # reported to the coordinator, then raised here too
        failure = error
        emit(("error", str(error) if isinstance(error, HarnessError) else "".join(traceback.format_exception(error)).strip()))
    outgoing.put_nowait(None)
    try:
        await writer
        await call.done_writing()
    except grpc.aio.AioRpcError:
        if failure is None:
            raise
    if failure is not None:
        raise failure
    if watcher is not None and await watcher:
        say(f"worker {spec.index}: results sent")
    return spec.index


async def _read_end(call: Any) -> bool:
    """Wait for the coordinator to close the stream; ``HarnessError`` when it closes it with an error."""
    while (await call.read()) is not grpc.aio.EOF:
        pass
    status = await call.code()
    if status != grpc.StatusCode.OK:
        raise HarnessError(f"the coordinator ended the run: {status.name}: {await call.details()}")
    return True
