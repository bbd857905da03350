"""Per-method authorization from the caller's identity (docs/security.md, "Identities and authorization").

Each :class:`~.component.ServiceDefinition` declares an :class:`Access`:
which of its methods anyone may call (``public``) and, for each internal
method, the topology names of the services allowed to call it. A method it
does not list is denied to everyone. The gRPC health and reflection services,
and services whose definition declares no ``access`` (test doubles), are open.

The :class:`Authorizer` turns the declarations of the services a process
serves into one table, full method → allowed identities (``None`` when
public), built once; the server interceptor asks :meth:`Authorizer.check`
before the handler runs: a public method costs one dictionary lookup; an
internal one also identifies the caller (:mod:`.identity`: the mTLS peer's
SPIFFE ID, else a verified caller token, cached per token).

Refusals, before the request is handed to the handler:

- ``PERMISSION_DENIED`` when the caller has no identity or one the method does
  not allow: ``"casemesh.video.v1.CatalogService/PublishVideo may not be called
  by spiffe://casemesh.local/svc/video-edge"`` (or ``by an unidentified
  caller``);
- ``UNAUTHENTICATED`` when the caller token is invalid (forged, expired, an
  unknown key): the message says which.

Both are counted in ``grpc_server_handled_total`` under the method and in
``casemesh_server_denied_total{grpc_service, grpc_method, caller}`` (``caller``:
the identity, ``none`` when there is none, ``invalid`` for a bad token).

The test identity ``spiffe://casemesh.local/test`` may call every method only
when the server opts in (``allow_test_identity``, from
``CASEMESH_ALLOW_TEST_IDENTITY=1``): never by default.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import grpc
from google.protobuf import descriptor_pool
from prometheus_client import REGISTRY, CollectorRegistry, Counter

from .identity import TEST_IDENTITY, CallerIdentifier, service_identity

if TYPE_CHECKING:
    from .component import ServiceDefinition

#: The variable that lets the test identity call every method (tests only; read by :func:`allow_test_identity_from_env`).
ALLOW_TEST_IDENTITY_ENV = "CASEMESH_ALLOW_TEST_IDENTITY"


@dataclass(frozen=True)
class Access:
    """Who may call a service's methods: ``public`` method names, and ``internal`` method name → caller topology names.

    A method in neither is denied to every caller. ``ValueError`` when a
    method is both public and internal or an internal method lists no caller.
    """

    public: frozenset[str] = frozenset()
    internal: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "public", frozenset(self.public))
        object.__setattr__(self, "internal", {m: tuple(callers) for m, callers in self.internal.items()})
        both = self.public & set(self.internal)
        if both:
            raise ValueError(f"methods both public and internal: {', '.join(sorted(both))}")
        empty = [m for m, callers in self.internal.items() if not callers]
        if empty:
            raise ValueError(f"internal methods without callers: {', '.join(sorted(empty))}")

    def methods(self) -> set[str]:
        """Every method named (public or internal)."""
        return {*self.public, *self.internal}


def _method_names(full_service: str) -> list[str] | None:
    """The methods of gRPC service ``full_service`` from the default descriptor pool, or ``None`` when unknown."""
    try:
        return [m.name for m in descriptor_pool.Default().FindServiceByName(full_service).methods]
    except KeyError:
        return None


@dataclass(frozen=True, slots=True)
class Denial:
    """A refused call: the status code and message to answer with, and the ``caller`` label it is counted under."""

    code: grpc.StatusCode
    message: str
    caller: str


class DeniedMetrics:
    """``casemesh_server_denied_total{grpc_service, grpc_method, caller}``: calls refused by authorization."""

    def __init__(self, registry: CollectorRegistry = REGISTRY):
        self.denied = Counter("casemesh_server_denied", "Calls refused by per-method authorization (PERMISSION_DENIED "
                              "or UNAUTHENTICATED), by method and caller identity (none: no identity; invalid: a bad token).",
                              ("grpc_service", "grpc_method", "caller"), registry=registry)


@functools.cache
def denied_metrics() -> DeniedMetrics:
    """The process-wide denied counter, created once."""
    return DeniedMetrics()


def allow_test_identity_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``CASEMESH_ALLOW_TEST_IDENTITY`` is ``1`` (or ``true``/``yes``)."""
    value = (os.environ if environ is None else environ).get(ALLOW_TEST_IDENTITY_ENV, "")
    return value.strip().lower() in ("1", "true", "yes")


def access_table(definitions: Iterable[ServiceDefinition]) -> dict[str, frozenset[str] | None]:
    """Full method (``/pkg.Service/Method``) → allowed identities (``None``: public) for every declared service.

    Every method of a declared service's descriptor is in the table (an
    undeclared one with no allowed identity). ``ValueError`` when an
    :class:`Access` names a method its service does not have.
    """
    table: dict[str, frozenset[str] | None] = {}
    for definition in definitions:
        access = definition.access
        if access is None:
            continue
        named = access.methods()
        known: set[str] = set()
        for full_service in definition.grpc_services:
            methods = _method_names(full_service)
            if methods is None:
                raise ValueError(f"{definition.name}: gRPC service {full_service} is not in the descriptor pool")
            known.update(methods)
            for method in methods:
                callers = access.internal.get(method)
                table[f"/{full_service}/{method}"] = (
                    None if method in access.public
                    else frozenset(service_identity(c) for c in callers) if callers else frozenset())
        unknown = named - known
        if unknown:
            raise ValueError(f"{definition.name}: access names methods its services do not have: {', '.join(sorted(unknown))}")
    return table


class Authorizer:
    """The authorization table of the services one process serves, and the per-call check.

    ``identifier`` identifies callers; ``allow_test_identity`` lets
    :data:`~.identity.TEST_IDENTITY` call every method (tests only).
    """

    def __init__(self, definitions: Sequence[ServiceDefinition], identifier: CallerIdentifier, *,
                 allow_test_identity: bool = False, metrics: DeniedMetrics | None = None):
        self.table = access_table(definitions)
        self.identifier = identifier
        self.allow_test_identity = allow_test_identity
        self._metrics = metrics or denied_metrics()
        self._counters: dict[tuple[str, str], object] = {}

    def allowed(self, full_method: str) -> frozenset[str] | None:
        """The identities allowed to call ``full_method``; ``None`` when anyone may."""
        return self.table.get(full_method)

    def check(self, full_method: str, context: grpc.aio.ServicerContext) -> Denial | None:
        """``None`` when the caller of this call may call ``full_method``; else the :class:`Denial` (counted)."""
        allowed = self.table.get(full_method)
        if allowed is None:
            return None
        identity, problem = self.identifier.identify(context)
        if identity is not None and (identity in allowed or (self.allow_test_identity and identity == TEST_IDENTITY)):
            return None
        if identity is not None:
            denial = Denial(grpc.StatusCode.PERMISSION_DENIED, f"{full_method.lstrip('/')} may not be called by {identity}", identity)
        elif problem == "no caller identity":
            denial = Denial(grpc.StatusCode.PERMISSION_DENIED,
                            f"{full_method.lstrip('/')} may not be called by an unidentified caller "
                            f"(an internal method: mesh services only)", "none")
        else:
            denial = Denial(grpc.StatusCode.UNAUTHENTICATED, f"{full_method.lstrip('/')}: {problem}", "invalid")
        self._count(full_method, denial.caller)
        return denial

    def _count(self, full_method: str, caller: str) -> None:
        key = (full_method, caller)
        child = self._counters.get(key)
        if child is None:
            service, _, method = full_method.lstrip("/").rpartition("/")
            child = self._counters[key] = self._metrics.denied.labels(service, method, caller)
        child.inc()
