"""Outbound channels to other services of the mesh, built from the topology.

Each channel carries the casemesh client interceptor: a CLIENT span and
``traceparent`` inside sampled traces, deadline propagation, ``grpc_client_*``
metrics. The topology's call policy for the target (``calls``, with
``calls.edges.TARGET`` applied: :meth:`~.topology.CallPolicy.for_target`)
gives a default timeout (set by the client interceptor when the caller sets
none); through the channel's gRPC service config, a retry policy (by default
``UNAVAILABLE`` only, safe for every casemesh RPC: the request never reached a
handler, or the handler refused it while draining) and a retry budget (gRPC's
``retryThrottling``); and a circuit breaker (``.circuit_breaker``) in the
interceptor.
"""

from __future__ import annotations

import json

import grpc
from .circuit_breaker import CircuitBreaker
from .identity import CallerToken
from .interceptors.client import ClientInterceptor
from .topology import CallPolicy, TlsSettings
from .tracing import RpcTracing


def service_config(policy: CallPolicy) -> str:
    """The gRPC service config JSON (retry policy and ``retryThrottling``) for ``policy``, applied to every method.

    With ``max_attempts`` 1 there is no retry policy and no throttling; the
    budget (``retry_budget``, ``None`` for none) is gRPC's token bucket per
    channel target (gRFC A6).

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
            "retryableStatusCodes": list(policy.retryable_codes),
        }
    config: dict = {"methodConfig": [method_config]}
    if policy.max_attempts > 1 and policy.retry_budget is not None:
        config["retryThrottling"] = {"maxTokens": policy.retry_budget.max_tokens,
                                     "tokenRatio": round(policy.retry_budget.token_ratio, 3)}
    return json.dumps(config)


#: Largest message an outbound call accepts (bytes): 32 MiB, twice the largest video segment.
MAX_RECEIVE_BYTES = 32 * 1024 * 1024


def open_channel(address: str, policy: CallPolicy, tracing: RpcTracing | None = None,
                 target: str | None = None, *, caller: str | None = None, tls: TlsSettings | None = None,
                 caller_token: CallerToken | None = None) -> grpc.aio.Channel:
    """A ``grpc.aio`` channel to ``address`` (``host:port``) with the mesh interceptors.

    Plaintext when ``tls`` is ``None``; otherwise mTLS with the certificate of
    ``caller`` (the calling service's topology name, required then) and the
    topology's CA (:func:`.tls.channel_credentials`; ``TlsError`` when its
    files are unusable).

    ``caller_token`` (the calling service's, :mod:`.identity`) is added to
    every call's metadata, so the target can authorize it without mTLS.

    ``target`` is the topology name of the service at ``address``: its
    ``calls.edges`` entry applies, and its circuit breaker (when enabled)
    is labelled with it. Must be called inside the running event loop.
    """
    if target is not None:
        policy = policy.for_target(target)
    breaker = CircuitBreaker(target or address, policy.circuit_breaker) if policy.circuit_breaker.enabled else None
    options = [
        ("grpc.service_config", service_config(policy)),
        ("grpc.enable_retries", 1),
        ("grpc.keepalive_time_ms", 30_000),
        # Segments fetched from the video origin are up to 16 MiB (storage.proto); gRPC's default limit is 4 MiB.
        ("grpc.max_receive_message_length", MAX_RECEIVE_BYTES),
    ]
    interceptor = ClientInterceptor(default_timeout_s=policy.timeout_ms / 1000, tracing=tracing, breaker=breaker,
                                    caller_token=caller_token)
    if tls is not None:
        from .tls import channel_credentials  # here: cryptography's x509 costs a plaintext run ~0.1 s of start-up

        if caller is None:
            raise ValueError(f"open_channel({address!r}): tls needs the calling service's name (caller)")
        return grpc.aio.secure_channel(address, channel_credentials(tls, caller), options=options, interceptors=interceptor.channel_interceptors())
    return grpc.aio.insecure_channel(address, options=options, interceptors=interceptor.channel_interceptors())
