"""Waiting for a ``--target`` to be ready before any load is sent.

A server started a moment before ``casemesh run --target ...`` (a container,
a CI step, a process under a debugger) should not lose the race with the
harness's first seeding call. :func:`wait_ready` polls each target:

- ``grpc.health.v1.Health/Check`` for the whole server (service ``""``):
  ``SERVING`` is ready; ``NOT_SERVING``/``UNKNOWN`` keeps waiting;
- a server without the health service answers ``UNIMPLEMENTED``: it is
  listening and answering, which is as ready as the harness can tell;
- anything else (``UNAVAILABLE``: nothing listens yet, a TLS handshake that
  fails, a deadline) is retried with exponential backoff from 50 ms to 1 s,

until every target is ready or ``timeout_s`` has passed. It says once what it
waits for, and how long the wait took; on timeout it raises
:class:`~casemesh.harness.errors.HarnessError` naming each target that was not
ready and its last answer (``casemesh run`` exits 3).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .errors import HarnessError

#: Default of ``--connect-timeout`` (s).
DEFAULT_CONNECT_TIMEOUT_S = 30.0
#: Each health check's own deadline (s): a server that takes longer to answer is not ready.
CHECK_TIMEOUT_S = 1.0
FIRST_BACKOFF_S, MAX_BACKOFF_S = 0.05, 1.0


async def _wait_one(name: str, address: str, channel: grpc.aio.Channel, deadline: float,
                    last: dict[str, str], on_wait: Callable[[str], None]) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    backoff = FIRST_BACKOFF_S
    waited = False
    while True:
        try:
            response = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=CHECK_TIMEOUT_S,
                                        wait_for_ready=False)
            if response.status == health_pb2.HealthCheckResponse.SERVING:
                return
            last[name] = f"health {health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)}"
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.UNIMPLEMENTED:  # no health service: it answers, so it listens
                return
            last[name] = f"{error.code().name}: {error.details()}"
        if time.monotonic() + backoff > deadline:
            raise TimeoutError
        if not waited:
            waited = True
            on_wait(f"waiting for {name} at {address} ({last[name]})")
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, MAX_BACKOFF_S)


async def wait_ready(targets: Mapping[str, str], channels: Mapping[str, grpc.aio.Channel], timeout_s: float,
                     say: Callable[[str], None]) -> float:
    """Wait until every target (``{service: address}``, with its open channel) is ready; returns the seconds waited.

    Raises :class:`HarnessError` after ``timeout_s`` naming the targets not
    ready and their last answers.
    """
    started = time.monotonic()
    deadline = started + timeout_s
    last: dict[str, str] = {}
    tasks = {name: asyncio.create_task(_wait_one(name, address, channels[name], deadline, last, say))
             for name, address in targets.items()}
    done, pending = await asyncio.wait(tasks.values(), timeout=timeout_s + CHECK_TIMEOUT_S)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    failed = [name for name, task in tasks.items() if task in pending or task.exception() is not None]
    if failed:
        detail = "; ".join(f"{name} at {targets[name]}: {last.get(name, 'no answer')}" for name in failed)
        raise HarnessError(f"target not ready after {timeout_s:g} s (--connect-timeout): {detail}")
    waited = time.monotonic() - started
    if last:
        say(f"targets ready after {waited:.1f} s")
    return waited
