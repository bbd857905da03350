"""The coordinator of a distributed run: ``casemesh run ... --coordinator-listen HOST:PORT --expect-workers N``.

:class:`RemoteWorkerPool` is :class:`~casemesh.harness.workers.WorkerPool`
(the coordinator of ``--workers N``) with its workers somewhere else: instead
of spawning processes and talking over pipes, it serves
``casemesh.harness.v1.CoordinatorService`` (protos/casemesh/harness/v1/coordinator.proto)
and waits for N ``casemesh worker`` processes to join. Everything else is the
local pool's: the same split of the schedule (worker *i* of N sends arrivals
``k`` with ``k % N == i``), the same messages (harness/distributed/wire.py
carries them), the same once-a-second merge of snapshots and the same exact
final merge (:meth:`RunStats.merge <casemesh.harness.stats.RunStats.merge>`),
the same per-worker send-lag verdict and the same bounds on every wait.

What differs:

- **Who joins.** Workers get indexes in the order they say ``hello``; the
  ``N+1``-th is refused (``RESOURCE_EXHAUSTED``). A worker of another
  casemesh version is refused (``FAILED_PRECONDITION``): it could draw another
  schedule from the same seed. When ``CASEMESH_COORDINATOR_TOKEN`` is set, a
  worker must send the same value as ``casemesh-join-token`` metadata
  (``UNAUTHENTICATED`` otherwise; compared in constant time). The command line
  refuses a non-loopback listen address without a token.
- **The start instant.** Workers may run on other hosts, whose
  ``perf_counter`` clocks mean nothing here: the start is sent as Unix time
  (wall clock) :data:`REMOTE_START_DELAY_S` ahead, and each worker converts it
  to its own monotonic clock once. Clock offsets between hosts (NTP keeps them
  to milliseconds) show in each worker's ``start_skew_ms``; latencies are
  unaffected, as each worker measures from its own start.
- **Waiting for workers.** Up to ``join_timeout_s`` (default
  :data:`JOIN_TIMEOUT_S`, long enough for pods to be scheduled and pull an
  image) for all N to join and report ready.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Callable, Mapping
from typing import Any

import grpc

from casemesh.harness.v1 import coordinator_pb2 as pb
from casemesh.harness.v1 import coordinator_pb2_grpc as pb_grpc
from casemesh.services.runtime.topology import TlsSettings

from ..errors import HarnessError
from ..workers import WorkerPool, _Worker
from .assignment import dump_state, plan_digest, profile_files, worker_profile_text
from .wire import message_of

#: How far ahead of "all workers ready" the shared start instant is (s): the start message crosses a network.
REMOTE_START_DELAY_S = 1.0
#: Default bound on the wait for every worker to join and be ready (s).
JOIN_TIMEOUT_S = 300.0
#: Metadata key of the join token.
TOKEN_METADATA = "casemesh-join-token"
#: Environment variable holding the join token, on the coordinator and on every worker.
TOKEN_ENV = "CASEMESH_COORDINATOR_TOKEN"
#: Largest message either side accepts (bytes): a seeded state or a final set of statistics can exceed gRPC's 4 MiB default.
MAX_MESSAGE_BYTES = 256 * 1024 * 1024
#: gRPC options of the coordinator's server and the workers' channel.
CHANNEL_OPTIONS = (("grpc.max_receive_message_length", MAX_MESSAGE_BYTES), ("grpc.max_send_message_length", MAX_MESSAGE_BYTES))


def casemesh_version() -> str:
    """The installed casemesh version (``unknown`` when not installed as a package)."""
    from importlib import metadata

    try:
        return metadata.version("casemesh")
    except metadata.PackageNotFoundError:
        return "unknown"


class RemoteWorkerPool(WorkerPool):
    """A :class:`~casemesh.harness.workers.WorkerPool` whose N workers are ``casemesh worker`` processes that join over gRPC.

    ``listen`` is the ``host:port`` to serve ``CoordinatorService`` on (port
    0: a free one; :attr:`address` is the bound one after :meth:`start`);
    ``token`` the join token (``None``: none asked). ``tls`` is the targets'
    mTLS, which each worker brings itself (``casemesh worker --tls``); the
    coordinator's own port is plaintext. Other arguments and every method as
    the local pool's; :meth:`start` returns once all N workers joined and are
    ready, or raises :class:`~casemesh.harness.errors.HarnessError` after
    ``join_timeout_s``.
    """

    min_workers = 1
    start_delay_s = REMOTE_START_DELAY_S

    def __init__(self, profile: Any, channels: Mapping[str, grpc.aio.Channel], targets: Mapping[str, str], *, workers: int,
                 listen: str, token: str | None = None, join_timeout_s: float = JOIN_TIMEOUT_S, rng_seed: int = 1,
                 trace_ratio: float = 0.0, say: Callable[[str], Any] = print,
                 on_snapshot: Callable[..., Any] | None = None, tls: TlsSettings | None = None):
        super().__init__(profile, channels, targets, workers=workers, rng_seed=rng_seed, trace_ratio=trace_ratio, say=say,
                         on_snapshot=on_snapshot, tls=tls)
        self.listen = listen
        self.address: str | None = None
        self._token = token
        self._join_timeout_s = join_timeout_s
        self._server: grpc.aio.Server | None = None
        self._assignment: dict[str, Any] = {}
        self._outboxes: dict[int, asyncio.Queue[Any]] = {}
        self._hosts: dict[int, str] = {}
        self._over: set[int] = set()  # workers whose stream has ended (finished, failed or gone)

    async def start(self) -> None:
        """Serve the coordinator; return once all N workers joined, connected to the targets and reported ready."""
        profile = self.profile
        self._assignment = {
            "profile_yaml": worker_profile_text(profile), "profile_files": profile_files(profile), "seed": self._seed,
            "targets": self._targets, "trace_ratio": self._trace_ratio, "seeded_state": dump_state(self.state),
            "plan_digest": plan_digest(profile, self._seed),
        }
        loop = asyncio.get_running_loop()
        self._inbox = asyncio.Queue()
        server = grpc.aio.server(options=CHANNEL_OPTIONS)
        pb_grpc.add_CoordinatorServiceServicer_to_server(_Coordinator(self), server)
        try:
            port = server.add_insecure_port(self.listen)
        except RuntimeError as error:
            raise HarnessError(f"--coordinator-listen: cannot listen on {self.listen}: {error}") from None
        await server.start()
        self._server = server
        self.address = f"{self.listen.rpartition(':')[0]}:{port}"
        self._say(f"coordinator listening on {self.address}: waiting up to {self._join_timeout_s:g} s for {self.count} "
                  f"worker(s) (casemesh worker --coordinator {self.address})")
        deadline = loop.time() + self._join_timeout_s
        ready = 0
        while ready < self.count:
            index, message = await self._next(deadline, f"only {ready} of {self.count} load workers joined and were ready "
                                                        f"within {self._join_timeout_s:g} s (--join-timeout)")
            if message[0] == "ready":
                ready += 1
            else:
                self._fail(index, message)
        self._say(f"{self.count} load worker(s) ready: " + ", ".join(self._describe(w.index) for w in self._workers))

    # -- called by the servicer, on the event loop

    def _admit(self, hello: pb.WorkerHello) -> int | None:
        """The index of a worker that says ``hello``; ``None`` when every place is taken."""
        if len(self._workers) >= self.count:
            return None
        index = len(self._workers)
        self._workers.append(_Worker(index, None, None, pid=hello.pid or None))
        self._hosts[index] = hello.host or "?"
        self._outboxes[index] = asyncio.Queue()
        self._say(f"load worker {index} joined: {self._describe(index)}")
        return index

    def _assignment_for(self, index: int) -> pb.Assignment:
        return pb.Assignment(worker_index=index, worker_count=self.count, **self._assignment)

    def _post(self, index: int, message: tuple[Any, ...]) -> None:
        if message[0] in ("done", "error", "eof"):
            if index in self._over:
                return
            self._over.add(index)
        if self._inbox is not None:
            self._inbox.put_nowait((index, message))

    def _describe(self, index: int) -> str:
        worker = self._workers[index]
        return f"{self._hosts.get(index, '?')} pid {worker.pid}"

    # -- the local pool's hooks

    def _fail(self, index: int, message: tuple[Any, ...]) -> None:
        who = f"load worker {index} ({self._describe(index)})"
        if message[0] == "error":
            raise HarnessError(f"{who} failed: {message[1]}")
        raise HarnessError(f"{who} disconnected before sending its results" + (f": {message[1]}" if len(message) > 1 else ""))

    def _send_start(self, start_at: float) -> None:
        start_unix_nanos = time.time_ns() + round((start_at - time.perf_counter()) * 1e9)
        for outbox in self._outboxes.values():
            outbox.put_nowait(pb.JoinResponse(start=pb.StartSignal(start_unix_nanos=start_unix_nanos)))

    def _finished(self) -> None:
        for outbox in self._outboxes.values():
            outbox.put_nowait(None)  # every worker's stream ends with OK

    def worker_summaries(self) -> list[dict[str, Any]]:
        """As the local pool's, with each worker's ``host`` (a pod name on Kubernetes)."""
        return [{**summary, "host": self._hosts.get(summary["index"])} for summary in super().worker_summaries()]

    def close(self) -> None:
        """End every worker's stream (``CANCELLED`` for one that has not finished) and stop serving (idempotent)."""
        for index, outbox in self._outboxes.items():
            if index not in self._over:
                outbox.put_nowait(("abort", "the coordinator stopped the run"))
        if self._server is not None:
            server, self._server = self._server, None
            asyncio.get_running_loop().create_task(server.stop(grace=2.0))


class _Coordinator(pb_grpc.CoordinatorServiceServicer):
    """``CoordinatorService`` of one :class:`RemoteWorkerPool`."""

    def __init__(self, pool: RemoteWorkerPool):
        self._pool = pool

    async def Join(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> Any:  # noqa: N802 - the RPC's name
        pool = self._pool
        if pool._token is not None:
            sent = dict(context.invocation_metadata() or ()).get(TOKEN_METADATA, "")
            if not hmac.compare_digest(sent.encode(), pool._token.encode()):
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"wrong or missing {TOKEN_METADATA} (the coordinator's {TOKEN_ENV})")
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("event") != "hello":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first message of Join must be hello")
        if first.hello.casemesh_version != casemesh_version():
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                f"the coordinator runs casemesh {casemesh_version()}, this worker {first.hello.casemesh_version or '?'}: "
                                "another version may draw another schedule from the same seed")
        index = pool._admit(first.hello)
        if index is None:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"the run already has its {pool.count} worker(s)")
        outbox = pool._outboxes[index]
        reader = asyncio.create_task(self._read(index, request_iterator))
        try:
            yield pb.JoinResponse(assignment=pool._assignment_for(index))
            while (item := await outbox.get()) is not None:
                if isinstance(item, tuple):  # ("abort", why)
                    await context.abort(grpc.StatusCode.CANCELLED, item[1])
                yield item
        finally:
            reader.cancel()
            pool._post(index, ("eof", "its stream ended"))  # ignored after done or error

    async def _read(self, index: int, request_iterator: Any) -> None:
        pool = self._pool
        pid = pool._workers[index].pid
        try:
            async for request in request_iterator:
                try:
                    message = message_of(request, pid)
                except ValueError as error:
                    message = ("error", f"protocol error: {error}")
                pool._post(index, message)
                if message[0] in ("done", "error"):
                    return
        except (grpc.RpcError, asyncio.CancelledError):
            pass
        pool._post(index, ("eof", "the connection closed"))
