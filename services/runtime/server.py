"""The one bootstrap every casemesh server process uses (DESIGN.md §4).

``serve`` builds the given services from the topology and runs them until
SIGTERM/SIGINT (or ``stop``): one ``grpc.aio`` server per distinct address,
each with the gRPC health service (``grpc.health.v1.Health``, per-service
status plus ``""`` for the whole server), server reflection when the topology
turns it on, mTLS when it has ``tls:`` (tls.py), the casemesh
interceptor (SERVER spans, metrics, deadline, per-method authorization, error mapping), and ``/metrics`` on each distinct ``metrics_address``.
One event-loop lag and GC pause probe per process (:mod:`.loop_probe`) feeds ``/metrics`` and, when
``CASEMESH_LOOP_SERIES`` is set, a per-second series file.

Shutdown is graceful and ordered: health turns NOT_SERVING; then each service,
dependents before their dependencies, refuses new calls (UNAVAILABLE), waits
up to ``server.grace_s`` for its calls in flight, and stops its component
(flushing what it owes other services, which still serve); finally the
servers stop, channels close and spans are flushed.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
from collections.abc import Callable, Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from .admission import Admission, limits_from_policy
from .authorization import ALLOW_TEST_IDENTITY_ENV, Authorizer, allow_test_identity_from_env
from .bind_check import check_binds
from .component import Component, RuntimeContext, ServiceDefinition
from .dependency_health import dependency_watches
from .identity import TEST_IDENTITY, CallerIdentifier, TokenVerifier
from .faults import watch_from_env
from .interceptors.server import ServerInterceptor
from .loop_probe import shared_probe
from .parent_watch import watch_parent
from .metrics import serve_metrics
from .secrets import SERVICE_TOKEN, MeshSecret, load_mesh_secret
from .tls import load_identity, server_credentials
from .topology import Topology
from .tracing import RpcTracing, configure_tracing, root_ratio

log = logging.getLogger("casemesh.runtime")

HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name

#: grpc-core's backlog of calls not yet taken by the server cancels calls (CANCELLED, counted nowhere)
#: past 1,000-3,000 of them; raised so that overload reaches admission control (admission.py) instead.
#: Largest request message a server accepts, in bytes: gRPC's own default (4 MiB), set on purpose. grpc-core
#: refuses a larger message with RESOURCE_EXHAUSTED before any of it is decoded or reaches a handler. The largest
#: legitimate casemesh requests stay below it: an UploadObject chunk (1 MiB of data plus a token of at most
#: 2 KiB), an IndexVideos batch (1,000 documents, at most about 2.3 MB), a PublishVideo (3 renditions of at
#: most 100,000 segment sizes, about 1.2 MB), a photo PutRendition (one size of at most 2 MiB); segments go the
#: other way (responses are not limited).
MAX_REQUEST_BYTES = 4 * 1024 * 1024

CORE_BACKLOG_OPTIONS = (("grpc.server.max_pending_requests", 20_000),
                        ("grpc.server.max_pending_requests_hard_limit", 40_000))


def shutdown_order(definitions: Sequence[ServiceDefinition]) -> list[ServiceDefinition]:
    """Dependents before their dependencies (among ``definitions``), so flushes reach live services."""
    remaining = {d.name: d for d in definitions}
    ordered: list[ServiceDefinition] = []
    while remaining:
        depended_on = {dep for d in remaining.values() for dep in d.dependencies if dep in remaining and dep != d.name}
        ready = [d for n, d in remaining.items() if n not in depended_on] or list(remaining.values())
        for d in ready:
            ordered.append(remaining.pop(d.name))
    return ordered


async def serve(
    definitions: Sequence[ServiceDefinition],
    topology: Topology,
    *,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[dict[str, int]], None] | None = None,
    secret: MeshSecret | None = None,
    allow_test_identity: bool | None = None,
    freeze_gc: bool = False,
) -> None:
    """Serve ``definitions`` at their topology addresses until SIGTERM/SIGINT or ``stop`` is set.

    ``on_ready`` receives ``{service name: bound port}`` once every server
    listens and reports SERVING. Raises ``OSError`` when an address cannot be
    bound, ``KeyError`` when a service is missing from the topology,
    ``TopologyError`` when a plaintext address is not loopback (bind_check.py)
    or a ``tls:`` file is unusable (tls.py). With ``tls:`` every server
    listens with mTLS only (the certificate of the first service at its
    address); reflection is served only when the topology's ``reflection`` is true.

    ``secret`` is the mesh secret (default: from the environment,
    :func:`.secrets.load_mesh_secret`, which raises ``SecretError`` when there
    is none). Every call is authorized by the services' ``access``
    (:mod:`.authorization`); ``allow_test_identity`` (default: from
    ``CASEMESH_ALLOW_TEST_IDENTITY``) lets the test identity call every method.

    ``freeze_gc`` (a process of its own: ``casemesh serve``): once serving,
    everything allocated so far (modules, generated code, components) is
    moved out of the garbage collector's scans (``gc.freeze``). Without it a
    full collection scans all of it: 77 ms in the urlshortener process at the
    spike of ``url-shortener-overload``, which every call then waited out.
    """
    stop = stop or asyncio.Event()
    check_binds(topology, [d.name for d in definitions])
    secret = secret or load_mesh_secret()
    if allow_test_identity is None:
        allow_test_identity = allow_test_identity_from_env()
    if allow_test_identity:
        log.warning("the test identity (%s) may call every method (%s): for tests only", TEST_IDENTITY, ALLOW_TEST_IDENTITY_ENV)
    credentials: dict[str, grpc.ServerCredentials] = {}
    if topology.tls is not None:
        for definition in definitions:
            address = topology.endpoint(definition.name).address
            if address not in credentials:
                credentials[address] = server_credentials(topology.tls, definition.name)
            else:  # its outbound calls present it: checked now, not at its first call
                load_identity(topology.tls, definition.name)
    provider = configure_tracing(os.environ.get("OTEL_SERVICE_NAME") or "+".join(d.name for d in definitions))
    tracing = RpcTracing(provider.get_tracer("casemesh.services.runtime"),
                         trace_roots=root_ratio() > 0 or "OTEL_TRACES_SAMPLER" in os.environ)
    context = RuntimeContext(topology, tracing, secret=secret)
    authorizer = Authorizer(definitions, CallerIdentifier(TokenVerifier(secret.keyring(SERVICE_TOKEN))),
                            allow_test_identity=allow_test_identity)
    default_limits: dict[str, int] = {}  # services of long-lived streams get their own slot counts (component.py)
    for definition in definitions:
        for service, slots in definition.default_limits.items():
            default_limits[service] = max(slots, default_limits.get(service, 0))
    interceptor = ServerInterceptor(tracing=tracing, admission=Admission(limits_from_policy(topology.server, default_limits)),
                                    authorizer=authorizer)
    servers: dict[str, tuple[grpc.aio.Server, health.aio.HealthServicer, list[str]]] = {}
    components: dict[str, Component] = {}
    for definition in definitions:
        address = topology.endpoint(definition.name).address
        if address not in servers:
            server = grpc.aio.server(
                interceptors=[interceptor],  # admission control sheds there; no uncounted grpc-side limit
                options=[("grpc.so_reuseport", 0), *CORE_BACKLOG_OPTIONS,
                         ("grpc.max_receive_message_length", MAX_REQUEST_BYTES)],
            )
            health_servicer = health.aio.HealthServicer()
            health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
            servers[address] = (server, health_servicer, [])
        server, _, hosted = servers[address]
        component = await definition.build(context.for_service(definition.name))  # its calls carry its identity
        component.register(server)
        components[definition.name] = component
        hosted.extend(definition.grpc_services)

    ports: dict[str, int] = {}
    for address, (server, _, hosted) in servers.items():
        if topology.reflection:
            reflection.enable_server_reflection((*hosted, HEALTH_SERVICE, reflection.SERVICE_NAME), server)
        if address in credentials:
            port = server.add_secure_port(address, credentials[address])
        else:
            port = server.add_insecure_port(address)
        if port == 0:
            raise OSError(f"cannot listen on {address}")
        for definition in definitions:
            if topology.endpoint(definition.name).address == address:
                ports[definition.name] = port

    for component in components.values():
        await component.start()
    for server, health_servicer, hosted in servers.values():
        await server.start()
        for name in ("", *hosted):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    # NOT_SERVING while a required upstream fails its health checks (dependency_health.py).
    watches = dependency_watches(definitions, topology,
                                 {d.name: servers[topology.endpoint(d.name).address][1].set for d in definitions})
    for watch in watches:
        watch.start()
    for metrics_address in dict.fromkeys(topology.endpoint(d.name).metrics_address for d in definitions):
        if metrics_address:
            serve_metrics(metrics_address)
    # Fault injection only when the harness names a schedule file (CASEMESH_FAULTS, faults.py); None otherwise.
    fault_watch = watch_from_env(interceptor, [s for d in definitions for s in d.grpc_services],
                                 [d.name for d in definitions])
    # Event-loop lag and GC pauses (casemesh_event_loop_lag_seconds, casemesh_gc_pause_seconds): loop_probe.py.
    probe = shared_probe(os.environ.get("OTEL_SERVICE_NAME") or "+".join(d.name for d in definitions))

    loop = asyncio.get_running_loop()
    orphan_watch = watch_parent(stop)  # a mesh child stops when the harness that started it is gone (parent_watch.py)
    handled: list[signal.Signals] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
            handled.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread
            pass
    for definition in definitions:
        log.info("serving %s on %s (%s%s)", definition.name, topology.endpoint(definition.name).address,
                 "mTLS" if topology.tls is not None else "plaintext", ", reflection on" if topology.reflection else "")
    if freeze_gc:
        gc.collect()
        gc.freeze()
    if on_ready:
        on_ready(ports)
    try:
        await stop.wait()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
        if orphan_watch is not None:
            orphan_watch.cancel()
        for watch in watches:
            await watch.stop()
        if fault_watch is not None:
            await fault_watch.stop()
        await _shutdown(definitions, topology, servers, components, interceptor, context)
        provider.shutdown()
        if probe is not None:
            probe.release()


async def _shutdown(definitions, topology, servers, components, interceptor, context) -> None:
    grace = topology.server.grace_s
    for _, health_servicer, _ in servers.values():
        await health_servicer.enter_graceful_shutdown()
    for definition in shutdown_order(definitions):
        for service in definition.grpc_services:
            if not await interceptor.drain(service, grace):
                log.warning("%s: calls still in flight after %.1f s grace", service, grace)
        await components[definition.name].stop()
    await asyncio.gather(*(server.stop(grace) for server, _, _ in servers.values()))
    await context.close()
