"""Topology: which service listens where, and how outbound calls to it behave.

One YAML file (or the ``CASEMESH_TOPOLOGY`` environment variable naming one)
drives every process, so the same code runs as one process per service or
several services in one process::

    services:
      urlshortener: {address: 127.0.0.1:50051, metrics_address: 127.0.0.1:9464}
      idgen:        {address: 127.0.0.1:50051}
      analytics:    {address: 127.0.0.1:50051}
    calls:                       # outbound channel policy (all optional)
      timeout_ms: 500            # per attempt default when the caller sets none
      max_attempts: 3            # gRPC retry policy, on UNAVAILABLE only
      initial_backoff_ms: 10
      max_backoff_ms: 100
    server:                      # admission control (services/runtime/admission.py) and shutdown
      max_concurrent_rpcs: 256   # calls in flight per gRPC service; beyond them calls queue
      max_queued_rpcs: 64        # calls that may wait for a slot; beyond them RESOURCE_EXHAUSTED at once
      max_queue_wait_ms: 100     # the longest wait for a slot; then RESOURCE_EXHAUSTED
      max_start_wait_ms: null    # optional: reject calls that waited longer to start (slot or saturated event loop)
      retry_pushback_ms: 100     # the grpc-retry-pushback-ms trailer of every rejection
      deadline_drop: true        # drop calls whose deadline is shorter than their method's recent p50
      limits: {}                 # "pkg.Service": its own max_concurrent_rpcs; "pkg.Service/Method": a per-method bound
      grace_s: 5                 # drain time on SIGTERM/SIGINT
      dependency_unhealthy_after_s: 3   # a required upstream unhealthy this long: NOT_SERVING
    data_dir: casemesh-data      # where services that persist keep their files (one folder each)
    settings:                    # per-service settings, checked by each service's settings model
      video-edge: {cache_bytes: 268435456}

Services that share an address in one process share one gRPC server (one port).
The shipped default (``topology.default.yaml``) puts all three URL-shortener
services on 127.0.0.1:50051 with metrics on 127.0.0.1:9464.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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
    """Where one service listens (``host:port``) and, optionally, where its process serves ``/metrics``."""

    address: str
    metrics_address: str | None = None

    _addr = field_validator("address", "metrics_address")(lambda v: v if v is None else check_address(v))


class CallPolicy(_Strict):
    """Outbound call defaults, applied through the channel's gRPC service config."""

    timeout_ms: float = Field(default=500, gt=0)
    max_attempts: int = Field(default=3, ge=1, le=5)
    initial_backoff_ms: float = Field(default=10, gt=0)
    max_backoff_ms: float = Field(default=100, gt=0)


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


class Topology(_Strict):
    """The whole topology file.

    ``settings`` maps a service's topology name to its settings (a mapping
    its definition's ``settings_model`` validates; see
    :meth:`casemesh.services.runtime.component.RuntimeContext.settings`).
    ``data_dir`` is the parent folder of the services' persistent files.
    """

    services: dict[str, Endpoint]
    calls: CallPolicy = CallPolicy()
    server: ServerPolicy = ServerPolicy()
    data_dir: str = "casemesh-data"
    settings: dict[str, dict[str, Any]] = {}

    def endpoint(self, name: str) -> Endpoint:
        """The endpoint of service ``name``; ``KeyError`` naming the known ones otherwise."""
        try:
            return self.services[name]
        except KeyError:
            raise KeyError(f"service {name!r} is not in the topology (has: {', '.join(sorted(self.services))})") from None

    def dump(self) -> str:
        """The topology as YAML, readable by :func:`load_topology`."""
        return yaml.safe_dump(self.model_dump(exclude_none=True), sort_keys=False)


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
    model = {(): Topology, ("calls",): CallPolicy, ("server",): ServerPolicy}.get(parent)
    if model is None and len(parent) == 2 and parent[0] == "services":
        model = Endpoint
    known = list(model.model_fields) if model is not None else []
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    if close:
        return f"unknown field {str(loc[-1])!r} (did you mean {close[0]!r}?)"
    return f"unknown field {str(loc[-1])!r}" + (f"; known fields: {', '.join(known)}" if known else "")
