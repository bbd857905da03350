"""Dependency health: a service whose required upstream is unreachable reports NOT_SERVING.

For each service it serves, the runtime starts one :class:`DependencyWatch`
over the service's ``ServiceDefinition.dependencies``. Every ``interval_s``
it asks each upstream's gRPC health service (``grpc.health.v1.Health/Check``
for the upstream's first gRPC service name, ``""`` for an upstream that has
none) with a timeout of ``interval_s``, on a channel of its own (plain: no
casemesh interceptors, so probes are not counted as mesh calls, and a short
reconnect backoff, so a restarted upstream is seen within about a second).
With the topology's ``tls:`` the probe channels use mTLS with the watching
service's own certificate, as its calls do (tls.py).

An upstream is *down* once no probe of it has succeeded (answered
``SERVING``) for ``unhealthy_after_s`` (topology ``server.dependency_unhealthy_after_s``,
3 s by default); it is *up* again at the first successful probe. While any
*required* upstream (a dependency not in ``optional_dependencies``) is down,
the service's own health status, for each of its gRPC service names, is
``NOT_SERVING``; otherwise ``SERVING``. The whole server's status (``""``)
is left alone: the process is up. Each transition is logged once (a warning
when an upstream goes down, info when it is back); an optional upstream's
transitions are logged but do not change the status.

An upstream that answers ``NOT_SERVING`` counts as down too, so status
propagates along a chain of required dependencies (one hop per
``unhealthy_after_s``). Health status is advisory: calls are still handled
(and fail with the upstream's error) while it reads ``NOT_SERVING``.

Metric: ``casemesh_dependency_up{service, upstream}``, 1 while the upstream
is up, 0 while it is down. Sources: gRPC health checking protocol
(grpc/doc/health-checking.md); the bounded-time rule follows Envoy's active
health checking (``unhealthy_threshold`` times ``interval``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import Gauge

from .tls import channel_credentials

log = logging.getLogger("casemesh.runtime.dependencies")

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

DEPENDENCY_UP = Gauge("casemesh_dependency_up", "1 while an upstream answers its health check SERVING, 0 once it has not for the bound.",
                      ["service", "upstream"])

#: Reconnect backoff of the probe channels (ms): grpc's default grows to 120 s, which would hide a restart.
PROBE_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


@dataclass
class Upstream:
    """One dependency as probed: its topology name, address and the health service name asked for."""

    name: str
    address: str
    health_name: str
    required: bool = True
    last_ok: float = field(default_factory=time.monotonic)
    down: bool = False
    last_error: str = ""


class DependencyWatch:
    """Probes ``upstreams`` and sets ``service``'s health (``set_status(name, status)`` for each of ``grpc_services``).

    Start with :meth:`start` inside the running event loop; :meth:`stop` ends
    the probes and closes their channels. ``serving`` is the status last set.
    """

    def __init__(self, service: str, grpc_services: tuple[str, ...], upstreams: list[Upstream],
                 set_status: Callable[[str, int], Awaitable[None]], *, unhealthy_after_s: float = 3.0,
                 interval_s: float | None = None, credentials: grpc.ChannelCredentials | None = None):
        if unhealthy_after_s <= 0:
            raise ValueError(f"unhealthy_after_s must be > 0 (got {unhealthy_after_s})")
        self.service = service
        self.grpc_services = grpc_services
        self.upstreams = upstreams
        self._set_status = set_status
        self.unhealthy_after_s = unhealthy_after_s
        self.interval_s = interval_s or min(1.0, unhealthy_after_s / 3)
        self.serving = True
        self._credentials = credentials  # mTLS as ``service`` (None: plaintext)
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        """Start probing (every upstream counts as up from now)."""
        now = time.monotonic()
        for upstream in self.upstreams:
            upstream.last_ok = now
            DEPENDENCY_UP.labels(self.service, upstream.name).set(1)
            if upstream.address not in self._channels:
                self._channels[upstream.address] = (
                    grpc.aio.secure_channel(upstream.address, self._credentials, options=PROBE_CHANNEL_OPTIONS)
                    if self._credentials is not None else grpc.aio.insecure_channel(upstream.address, options=PROBE_CHANNEL_OPTIONS))
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"dependency-health-{self.service}")

    async def stop(self) -> None:
        """Stop probing and close the probe channels."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            healthy = await asyncio.gather(*(self._probe(u) for u in self.upstreams))
            await self._update(healthy, time.monotonic())
            await asyncio.sleep(max(0.0, self.interval_s - (time.monotonic() - started)))

    async def _probe(self, upstream: Upstream) -> bool:
        stub = health_pb2_grpc.HealthStub(self._channels[upstream.address])
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=upstream.health_name), timeout=self.interval_s)
        except grpc.aio.AioRpcError as error:
            upstream.last_error = f"{error.code().name}: {error.details()}"
            return False
        if reply.status != SERVING:
            upstream.last_error = f"it reports {health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)}"
            return False
        upstream.last_ok = time.monotonic()
        return True

    async def _update(self, healthy: list[bool], now: float) -> None:
        changed: list[Upstream] = []
        for upstream, ok in zip(self.upstreams, healthy):
            if ok and upstream.down:
                upstream.down = False
                changed.append(upstream)
            elif not ok and not upstream.down and now - upstream.last_ok >= self.unhealthy_after_s:
                upstream.down = True
                changed.append(upstream)
        if not changed:
            return
        serving = not any(u.down for u in self.upstreams if u.required)
        flipped = serving != self.serving
        self.serving = serving
        for upstream in changed:
            DEPENDENCY_UP.labels(self.service, upstream.name).set(0 if upstream.down else 1)
            kind = "required" if upstream.required else "optional"
            if upstream.down:
                log.warning("%s: %s upstream %s (%s) has failed its health check for %.1f s (%s)%s", self.service, kind,
                            upstream.name, upstream.address, now - upstream.last_ok, upstream.last_error,
                            ": health NOT_SERVING" if upstream.required and flipped else "")
            else:
                log.info("%s: %s upstream %s (%s) is healthy again%s", self.service, kind, upstream.name,
                         upstream.address, ": health SERVING" if flipped and serving else "")
        if flipped:
            for name in self.grpc_services:
                await self._set_status(name, SERVING if serving else NOT_SERVING)


def dependency_watches(definitions: list, topology, health_of: dict[str, Callable[[str, int], Awaitable[None]]]
                       ) -> list[DependencyWatch]:
    """One watch per served definition that has dependencies.

    An optional dependency the topology does not name is not watched (the
    service runs without it, e.g. social-timeline without the recommendation
    engine); a required one it does not name is a ``KeyError``.

    ``definitions`` are the ``ServiceDefinition`` objects served here;
    ``health_of`` maps each one's name to the ``set(name, status)`` of the
    health servicer its gRPC services are registered on. Each upstream is
    asked for its first gRPC service name (from the served definitions or the
    service catalog), ``""`` when it has none or is unknown. The bound is the
    topology's ``server.dependency_unhealthy_after_s``. With ``tls:`` each
    watch probes with its service's certificate.
    """
    from ..catalog import SERVICES  # here, not at import: the catalog imports every service, which import the runtime

    served = {d.name: d for d in definitions}
    watches = []
    for definition in definitions:
        if not definition.dependencies:
            continue
        upstreams = []
        for name in dict.fromkeys(definition.dependencies):
            if name in definition.optional_dependencies and name not in topology.services:
                continue  # an optional upstream this mesh does not have: nothing to watch
            upstream = served.get(name) or SERVICES.get(name)  # imports only the upstreams' modules, not every service
            upstreams.append(Upstream(name=name, address=topology.endpoint(name).address,
                                      health_name=upstream.grpc_services[0] if upstream and upstream.grpc_services else "",
                                      required=name not in definition.optional_dependencies))
        credentials = channel_credentials(topology.tls, definition.name) if topology.tls is not None else None
        watches.append(DependencyWatch(definition.name, definition.grpc_services, upstreams, health_of[definition.name],
                                       unhealthy_after_s=topology.server.dependency_unhealthy_after_s,
                                       credentials=credentials))
    return watches
