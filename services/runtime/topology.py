"""Topology: which service listens where, and how outbound calls to it behave.

One YAML file (or the ``CASEMESH_TOPOLOGY`` environment variable naming one)
drives every process, so the same code runs as one process per service or
several services in one process::

    services:
      urlshortener: {address: 127.0.0.1:50051, metrics_address: 127.0.0.1:9464}
      idgen:        {address: 127.0.0.1:50051}   # impl: node serves it from services/idgen/node
      analytics:    {address: 127.0.0.1:50051}
    calls:                       # outbound channel policy (all optional; docs/services.md "Retries, retry budgets and circuit breaking")
      timeout_ms: 500            # per call default when the caller sets none
      max_attempts: 3            # gRPC retry policy (1: no retries)
      initial_backoff_ms: 10
      max_backoff_ms: 100
      retryable_codes: [UNAVAILABLE]
      retry_budget: {max_tokens: 10, token_ratio: 0.1}   # gRPC retryThrottling; null: no budget
      circuit_breaker: {enabled: true, consecutive_failures: 5, open_ms: 1000}
      edges:                     # per target service: any of the fields above, the rest inherited
        idgen: {max_attempts: 5, retryable_codes: [UNAVAILABLE, RESOURCE_EXHAUSTED]}
    server:                      # admission control (services/runtime/admission.py) and shutdown
      max_concurrent_rpcs: 256   # calls in flight per gRPC service; beyond them calls queue
      max_queued_rpcs: 64        # calls that may wait for a slot; beyond them RESOURCE_EXHAUSTED at once
      max_queue_wait_ms: 100     # the longest wait for a slot; then RESOURCE_EXHAUSTED
      max_start_wait_ms: null    # optional: reject calls that waited longer to start (slot or saturated event loop)
      retry_pushback_ms: 100     # the grpc-retry-pushback-ms trailer of every rejection
      deadline_drop: true        # drop calls whose deadline is shorter than their method's recent p50
      abandoned_work: drop       # drop | finish: the work of a call whose caller gave up (finish: it goes on)
      limits: {}                 # "pkg.Service": its own max_concurrent_rpcs; "pkg.Service/Method": a per-method bound
      grace_s: 5                 # drain time on SIGTERM/SIGINT
      dependency_unhealthy_after_s: 3   # a required upstream unhealthy this long: NOT_SERVING
    data_dir: casemesh-data      # where services that persist keep their files (one folder each)
    settings:                    # per-service settings, checked by each service's settings model
      video-edge: {cache_bytes: 268435456}
    tls:                         # mutual TLS everywhere (services/runtime/tls.py); absent: plaintext
      dir: certs                 # casemesh certs init layout: ca.pem, <name>.pem, <name>.key
      # ca: certs/ca.pem         # or explicit files (win over dir):
      # services: {urlshortener: {cert: certs/urlshortener.pem, key: certs/urlshortener.key}}
    reflection: false            # gRPC server reflection (lists every service); on for local development only
    allow_insecure_public_bind: false   # plaintext on a non-loopback address is refused unless true

Services that share an address in one process share one gRPC server (one port).
The shipped default (``topology.default.yaml``) puts all three URL-shortener
services on 127.0.0.1:50051 with metrics on 127.0.0.1:9464.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import grpc
import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_TOPOLOGY = Path(__file__).with_name("topology.default.yaml")
ENV_VAR = "CASEMESH_TOPOLOGY"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_address(value: str) -> str:
    """``value`` when it is ``host:port`` with a port in 0..65535; ``ValueError`` saying so otherwise."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not host:port (e.g. 127.0.0.1:50051 or [::1]:50051)")
    return value


class Endpoint(_Strict):
    """Where one service listens (``host:port``) and, optionally, where its process serves ``/metrics``.

    ``impl`` is the implementation that serves it: ``python`` (the default) or
    ``node`` (idgen only: services/idgen/node, docs/polyglot.md); ``casemesh
    serve`` and the embedded mesh start the one named.
    """

    address: str
    metrics_address: str | None = None
    impl: Literal["python", "node"] = "python"

    _addr = field_validator("address", "metrics_address")(lambda v: v if v is None else check_address(v))


#: Status codes a retry policy or a circuit breaker may name (every gRPC code but OK).
STATUS_CODE_NAMES: tuple[str, ...] = tuple(code.name for code in grpc.StatusCode if code is not grpc.StatusCode.OK)


def _check_codes(value: tuple[str, ...]) -> tuple[str, ...]:
    """``value`` when every entry is a gRPC status code name other than OK, without repeats; ``ValueError`` naming the bad one."""
    for code in value:
        if code not in STATUS_CODE_NAMES:
            close = difflib.get_close_matches(str(code).upper(), STATUS_CODE_NAMES, n=1)
            raise ValueError(f"{code!r} is not a gRPC status code other than OK"
                             + (f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(STATUS_CODE_NAMES)}"))
    if len(set(value)) != len(value):
        raise ValueError(f"a code is listed twice: {', '.join(value)}")
    return value


StatusCodes = Annotated[tuple[str, ...], AfterValidator(_check_codes)]


class RetryBudget(_Strict):
    """gRPC's ``retryThrottling`` (gRFC A6): a token bucket per channel target that stops retries when too many attempts fail.

    The bucket starts full at ``max_tokens``; every attempt that fails with a
    retryable code takes 1 token, every successful call adds ``token_ratio``.
    Retries (and hedges) are sent only while more than ``max_tokens / 2``
    tokens are left: with the defaults, after 5 failures in a row retries stop
    until 10 calls (or more) succeed per token — a sustained retry rate of
    about ``token_ratio`` of the successful calls.
    """

    max_tokens: int = Field(default=10, ge=1, le=1000, description="bucket size, a whole number; gRPC allows 1..1000")
    token_ratio: float = Field(default=0.1, gt=0, le=1, description="tokens a success adds back (gRPC keeps 3 decimals)")


class CircuitBreakerPolicy(_Strict):
    """A circuit breaker on one outbound channel (services/runtime/circuit_breaker.py).

    ``consecutive_failures`` calls in a row ending with one of
    ``failure_codes`` (after gRPC's retries) open it; while open every call
    fails at once with ``UNAVAILABLE``, no network call made; after
    ``open_ms`` it lets ``half_open_probes`` calls through: one success closes
    it, one failure opens it again.
    """

    enabled: bool = True
    consecutive_failures: int = Field(default=5, ge=1, le=10_000)
    open_ms: float = Field(default=1000, gt=0, le=3_600_000)
    half_open_probes: int = Field(default=1, ge=1, le=1000)
    failure_codes: StatusCodes = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED")


class EdgePolicy(_Strict):
    """``calls.edges.TARGET``: overrides of the :class:`CallPolicy` fields for calls to one target service.

    A field left out is inherited from ``calls``; ``retry_budget: null``
    turns the budget off on this edge.
    """

    timeout_ms: float | None = Field(default=None, gt=0)
    max_attempts: int | None = Field(default=None, ge=1, le=5)
    initial_backoff_ms: float | None = Field(default=None, ge=5)
    max_backoff_ms: float | None = Field(default=None, ge=5)
    retryable_codes: StatusCodes | None = Field(default=None, min_length=1)
    retry_budget: RetryBudget | None = None
    circuit_breaker: CircuitBreakerPolicy | None = None


class CallPolicy(_Strict):
    """Outbound call policy: the default timeout (client interceptor), the retry policy and budget (the channel's gRPC service config), the circuit breaker.

    ``edges`` overrides any of these per target service;
    :meth:`for_target` gives the policy of one channel.
    """

    timeout_ms: float = Field(default=500, gt=0)
    max_attempts: int = Field(default=3, ge=1, le=5, description="attempts per call, first included (gRPC caps it at 5)")
    #: At least 5 ms: with grpcio 1.85 a 1 ms backoff left some retried calls hanging until their deadline (seen on this machine).
    initial_backoff_ms: float = Field(default=10, ge=5)
    max_backoff_ms: float = Field(default=100, ge=5)
    #: Codes gRPC retries. The default, UNAVAILABLE only, is safe for every casemesh RPC (the request never reached a
    #: handler, or the handler refused it while draining); others may re-run a handler that did its work.
    retryable_codes: StatusCodes = Field(default=("UNAVAILABLE",), min_length=1)
    retry_budget: RetryBudget | None = RetryBudget()
    circuit_breaker: CircuitBreakerPolicy = CircuitBreakerPolicy()
    edges: dict[str, EdgePolicy] = {}

    @model_validator(mode="after")
    def _check_backoff(self) -> CallPolicy:
        if self.max_backoff_ms < self.initial_backoff_ms:
            raise ValueError(f"max_backoff_ms ({self.max_backoff_ms:g}) is below initial_backoff_ms ({self.initial_backoff_ms:g})")
        return self

    def for_target(self, target: str) -> CallPolicy:
        """The policy of calls to ``target``: this one with ``edges[target]``'s fields applied (and no ``edges``)."""
        edge = self.edges.get(target)
        values = {name: getattr(self, name) for name in type(self).model_fields if name != "edges"}
        if edge is not None:
            values.update({name: getattr(edge, name) for name in edge.model_fields_set})
        return CallPolicy(**values)


class ServerPolicy(_Strict):
    """Server limits: admission control (per gRPC service) and the drain grace period.

    The defaults are meant to leave the shipped profiles unshed on a slow
    2-core machine (checked: docs/services.md) while bounding
    what an overload can pile up: 256 in flight plus 64 waiting, none waiting more than 100 ms for a slot.
    See :mod:`casemesh.services.runtime.admission` for what each limit does.
    """

    max_concurrent_rpcs: int = Field(default=256, ge=1, description="calls in flight per gRPC service")
    max_queued_rpcs: int = Field(default=64, ge=0, description="calls that may wait for a slot, per gRPC service")
    max_queue_wait_ms: float = Field(default=100, gt=0, le=60_000, description="the longest wait for a slot, ms")
    retry_pushback_ms: int = Field(default=100, ge=0, description="grpc-retry-pushback-ms trailer of a rejection")
    deadline_drop: bool = True
    max_start_wait_ms: float | None = Field(
        default=None, gt=0, le=60_000,
        description="reject calls that waited longer than this to start (for a slot or a saturated event loop); off by default")
    abandoned_work: Literal["drop", "finish"] = Field(
        default="drop",
        description="drop: a call whose caller gave up leaves the queue, its handler is cancelled; finish: its work goes on")
    limits: dict[str, int] = Field(default_factory=dict,
                                   description='"pkg.Service" → its slots; "pkg.Service/Method" → that method\'s bound')
    grace_s: float = Field(default=5.0, ge=0)
    #: A required upstream failing its health checks this long turns a service NOT_SERVING (runtime/dependency_health.py).
    dependency_unhealthy_after_s: float = Field(default=3.0, gt=0, le=3600)

    @field_validator("limits")
    @classmethod
    def _check_limits(cls, value: dict[str, int]) -> dict[str, int]:
        for key, limit in value.items():
            service, _, method = key.partition("/")
            if "." not in service or "/" in method or (key.endswith("/")):
                raise ValueError(f"{key!r} is not a full gRPC service (pkg.Service) or method (pkg.Service/Method)")
            if limit < 1:
                raise ValueError(f"{key!r}: a limit must be at least 1 (got {limit})")
        return value


class CertPair(_Strict):
    """One identity's certificate chain and private key (PEM files)."""

    cert: str
    key: str


class TlsSettings(_Strict):
    """Mutual TLS for every server and outbound channel (services/runtime/tls.py; docs/security.md).

    ``dir`` is a folder in the layout of ``casemesh certs init`` (``ca.pem``,
    ``<name>.pem``, ``<name>.key``); ``ca`` (the CA bundle every peer must
    chain to) and ``services`` (``{name: {cert, key}}``) name files
    explicitly and win over ``dir``. At least one of ``dir`` and ``ca``.
    Relative paths are relative to the working directory, as ``data_dir``.
    """

    dir: str | None = None
    ca: str | None = None
    services: dict[str, CertPair] = {}

    @model_validator(mode="after")
    def _check_source(self) -> TlsSettings:
        if self.dir is None and self.ca is None:
            raise ValueError("give dir (a casemesh certs init folder) or ca (with services: {NAME: {cert, key}})")
        return self


class Topology(_Strict):
    """The whole topology file.

    ``settings`` maps a service's topology name to its settings (a mapping
    its definition's ``settings_model`` validates; see
    :meth:`casemesh.services.runtime.component.RuntimeContext.settings`).
    ``data_dir`` is the parent folder of the services' persistent files.
    ``tls`` turns on mutual TLS (:class:`TlsSettings`); ``reflection``
    serves gRPC server reflection (off by default: it lists every internal
    service); ``allow_insecure_public_bind`` lets a plaintext server bind a
    non-loopback address (services/runtime/bind_check.py).
    """

    services: dict[str, Endpoint]
    calls: CallPolicy = CallPolicy()
    server: ServerPolicy = ServerPolicy()
    data_dir: str = "casemesh-data"
    settings: dict[str, dict[str, Any]] = {}
    tls: TlsSettings | None = None
    reflection: bool = False
    allow_insecure_public_bind: bool = False

    @model_validator(mode="after")
    def _check_edges(self) -> Topology:
        for target in self.calls.edges:
            if target not in self.services:
                raise ValueError(f"calls.edges.{target}: {target!r} is not a service of the topology "
                                 f"(has: {', '.join(sorted(self.services))})")
        for target in self.calls.edges:  # the merged policy must hold too (backoffs)
            try:
                self.calls.for_target(target)
            except ValidationError as error:
                raise ValueError(f"calls.edges.{target}: {error.errors()[0]['msg'].removeprefix('Value error, ')}") from None
        return self

    def endpoint(self, name: str) -> Endpoint:
        """The endpoint of service ``name``; ``KeyError`` naming the known ones otherwise."""
        try:
            return self.services[name]
        except KeyError:
            raise KeyError(f"service {name!r} is not in the topology (has: {', '.join(sorted(self.services))})") from None

    def dump(self) -> str:
        """The topology as YAML, readable by :func:`load_topology`."""
        data = self.model_dump(exclude_none=True)
        if "calls" in data:  # retry_budget: null (no budget) must survive; an edge keeps only what it overrides
            data["calls"] = {**self.calls.model_dump(mode="json", exclude={"edges"}),
                             "edges": {t: e.model_dump(mode="json", exclude_unset=True) for t, e in self.calls.edges.items()}}
        return yaml.safe_dump(data, sort_keys=False)


class TopologyError(ValueError):
    """The topology file is missing or invalid; the message names the file and field."""


def load_topology(path: str | Path | None = None) -> Topology:
    """Load ``path``, else the file named by ``$CASEMESH_TOPOLOGY``, else the shipped default.

    ``TopologyError`` when the file cannot be read, is not UTF-8 YAML, or does
    not validate: its message names the file and lists every problem, one
    line each (``FILE: FIELD: MESSAGE``; an unknown key with the closest known
    one).
    """
    path = Path(path or os.environ.get(ENV_VAR) or DEFAULT_TOPOLOGY)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise TopologyError(f"{path}: cannot read topology: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise TopologyError(f"{path}: not UTF-8 text: {error.reason} at byte {error.start}") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise TopologyError(f"{where}: invalid YAML: {f'{error.context}: ' if error.context else ''}{error.problem}") from None
    except yaml.YAMLError as error:
        raise TopologyError(f"{path}: invalid YAML: {error}") from None
    except RecursionError:  # PyYAML composes nested collections recursively
        raise TopologyError(f"{path}: invalid YAML: collections nested too deeply") from None
    if not isinstance(data, dict):
        raise TopologyError(f"{path}: expected a mapping with services:, found {type(data).__name__ if data is not None else 'an empty file'}")
    try:
        return Topology.model_validate(data)
    except ValidationError as error:
        raise TopologyError("\n".join(f"{path}: {'.'.join(str(p) for p in e['loc']) or '(top level)'}: {_problem(e)}"
                                      for e in error.errors())) from None


def _problem(error: Any) -> str:
    """Pydantic's message, or for an unknown key the closest known one (``unknown field 'grase_s' (did you mean 'grace_s'?)``)."""
    loc = tuple(error["loc"])
    if error["type"] != "extra_forbidden" or not loc:
        return error["msg"]
    parent = loc[:-1]
    model = {(): Topology, ("calls",): CallPolicy, ("server",): ServerPolicy, ("calls", "retry_budget"): RetryBudget,
             ("calls", "circuit_breaker"): CircuitBreakerPolicy, ("tls",): TlsSettings}.get(parent)
    if model is None and len(parent) == 3 and parent[:2] == ("calls", "edges"):
        model = EdgePolicy
    if model is None and len(parent) == 4 and parent[:2] == ("calls", "edges"):
        model = {"retry_budget": RetryBudget, "circuit_breaker": CircuitBreakerPolicy}.get(str(parent[3]))
    if model is None and len(parent) == 2 and parent[0] == "services":
        model = Endpoint
    if model is None and len(parent) == 3 and parent[:2] == ("tls", "services"):
        model = CertPair
    known = list(model.model_fields) if model is not None else []
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    if close:
        return f"unknown field {str(loc[-1])!r} (did you mean {close[0]!r}?)"
    return f"unknown field {str(loc[-1])!r}" + (f"; known fields: {', '.join(known)}" if known else "")
