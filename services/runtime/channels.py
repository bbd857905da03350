"""Outbound channels to other services of the mesh, built from the topology.

Each channel carries the casemesh client interceptor: a CLIENT span and
``traceparent`` inside sampled traces, deadline propagation, ``grpc_client_*``
metrics. The topology's call policy
gives a default timeout (set by the client interceptor when the caller sets
none) and, through the channel's gRPC service config, a retry policy that retries ``UNAVAILABLE`` only (safe for every casemesh RPC:
the request never reached a handler, or the handler refused it while draining).
"""

from __future__ import annotations

import json

import grpc
from .interceptors.client import ClientInterceptor
from .topology import CallPolicy
from .tracing import RpcTracing


def service_config(policy: CallPolicy) -> str:
    """The gRPC service config JSON (retry policy) for ``policy``, applied to every method.

    The default timeout is applied by the client interceptor, not here: with
    grpcio 1.85 a service-config ``timeout`` of 1 s or less expired calls at
    once (seen on this machine), while explicit per-call timeouts work.
    """
    method_config: dict = {"name": [{}]}
    if policy.max_attempts > 1:
        method_config["retryPolicy"] = {
            "maxAttempts": policy.max_attempts,
            "initialBackoff": f"{policy.initial_backoff_ms / 1000:.3f}s",
            "maxBackoff": f"{policy.max_backoff_ms / 1000:.3f}s",
            "backoffMultiplier": 2,
            "retryableStatusCodes": ["UNAVAILABLE"],
        }
    return json.dumps({"methodConfig": [method_config]})


#: Largest message an outbound call accepts (bytes): 32 MiB, twice the largest video segment.
MAX_RECEIVE_BYTES = 32 * 1024 * 1024


def open_channel(address: str, policy: CallPolicy, tracing: RpcTracing | None = None) -> grpc.aio.Channel:
    """An insecure ``grpc.aio`` channel to ``address`` (``host:port``) with the mesh interceptors.

    Must be called inside the running event loop.
    """
    options = [
        ("grpc.service_config", service_config(policy)),
        ("grpc.enable_retries", 1),
        ("grpc.keepalive_time_ms", 30_000),
        # Segments fetched from the video origin are up to 16 MiB (storage.proto); gRPC's default limit is 4 MiB.
        ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
    ]
    interceptor = ClientInterceptor(default_timeout_s=policy.timeout_ms / 1000, tracing=tracing)
    return grpc.aio.insecure_channel(address, options=options, interceptors=[interceptor])
