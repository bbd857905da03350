"""How calls behave in a run: the mesh's outbound call policy and server limits (profile ``topology:``) and the harness's own retries (``harness_retry:``).

``topology:`` holds the ``calls:`` and ``server:`` sections of the topology
file (:class:`~casemesh.services.runtime.topology.CallPolicy`,
:class:`~casemesh.services.runtime.topology.ServerPolicy`) for the services
``casemesh run`` starts; the harness writes them into the embedded mesh's
topology (addresses stay the harness's). ``harness_retry:`` is a gRPC retry
policy on the harness's own channels to the mesh, so a profile can retry at
the edge as real clients do (the retry storm of
``url-shortener-retry-storm``). Latency stays measured per call from its
intended send time, retries included; a call's status is its last attempt's.
Format: docs/profiles.md ("topology" and "harness_retry").
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from casemesh.services.runtime.channels import service_config
from casemesh.services.runtime.topology import CallPolicy, RetryBudget, ServerPolicy, StatusCodes, Topology

from .yaml_lines import Problem


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ProfileTopology(_Strict):
    """``topology:``: the topology sections a profile may set for the mesh it starts (absent ones keep the defaults)."""

    calls: CallPolicy | None = None
    server: ServerPolicy | None = None

    def problems(self, services: Collection[str]) -> list[Problem]:
        """``calls.edges`` keys that are not services the profile starts (locations relative to ``topology``)."""
        if self.calls is None:
            return []
        return [Problem(("calls", "edges", target), f"{target!r} is not a service this profile starts ({', '.join(services) or 'none'})")
                for target in self.calls.edges if target not in services]

    def applied(self, topology: Topology) -> Topology:
        """``topology`` with these sections in place of its own."""
        changes: dict[str, Any] = {}
        if self.calls is not None:
            changes["calls"] = self.calls
        if self.server is not None:
            changes["server"] = self.server
        return topology.model_copy(update=changes)


class HarnessRetry(_Strict):
    """``harness_retry:``: gRPC's retry policy (and optional ``retryThrottling``) on the harness's channels, every method.

    ``max_attempts`` counts the first attempt (2..5; gRPC caps it at 5); the
    backoff before attempt n is random in [0, min(initial · 2^(n-1), max)]
    ms; only ``retryable_codes`` are retried, while the call's deadline
    (``request_timeout_ms``) lasts; ``retry_budget`` (default none) is the
    token bucket of :class:`~casemesh.services.runtime.topology.RetryBudget`.
    """

    max_attempts: Annotated[int, Field(ge=2, le=5)]
    initial_backoff_ms: Annotated[float, Field(ge=5)] = 10
    max_backoff_ms: Annotated[float, Field(ge=5)] = 100
    retryable_codes: Annotated[StatusCodes, Field(min_length=1)] = ("UNAVAILABLE",)
    retry_budget: RetryBudget | None = None

    def channel_options(self) -> list[tuple[str, Any]]:
        """gRPC channel options that make a channel retry by this policy."""
        policy = CallPolicy(max_attempts=self.max_attempts, initial_backoff_ms=self.initial_backoff_ms,
                            max_backoff_ms=max(self.max_backoff_ms, self.initial_backoff_ms),
                            retryable_codes=self.retryable_codes, retry_budget=self.retry_budget)
        return [("grpc.service_config", service_config(policy)), ("grpc.enable_retries", 1)]

    def describe(self) -> str:
        """One line for the terminal."""
        budget = (f"budget {self.retry_budget.max_tokens} tokens, ratio {self.retry_budget.token_ratio:g}"
                  if self.retry_budget else "no retry budget")
        return (f"harness retries: up to {self.max_attempts} attempts on {', '.join(self.retryable_codes)}, "
                f"backoff {self.initial_backoff_ms:g}-{self.max_backoff_ms:g} ms, {budget}")


#: gRPC core's minimal channel stack: the filters a call cannot do without (HTTP/2 framing, compression, deadlines),
#: none of the optional ones (service config, message size limits, idleness, census and load reporting). It costs
#: less CPU per call (about 4 % of a zero-work Echo at 1,000/s: benchmarks/channel_stack.py, docs/benchmarks.md
#: "Harness overhead against k6"), but gRPC then applies no service config, so a channel that retries
#: (:class:`HarnessRetry`) keeps the full one (tests/integration/test_harness_channels.py).
MINIMAL_STACK = ("grpc.minimal_stack", 1)


def harness_channel_options(retry: HarnessRetry | None) -> list[tuple[str, Any]]:
    """The options of the harness's channels to the mesh: ``retry``'s on gRPC's full stack, else its minimal stack.

    Without a retry policy the channel is gRPC's minimal stack
    (:data:`MINIMAL_STACK`): deadlines and compressed responses still work,
    no receive-size limit applies. With one, the service config that
    carries the retry policy needs the full stack.
    """
    return retry.channel_options() if retry is not None else [MINIMAL_STACK]
