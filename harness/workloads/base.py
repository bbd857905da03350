"""What a workload is: the journeys of one case study and how to seed its data.

A profile names a workload (``workload: url-shortener``) and weights its
journeys; the driver picks a journey per arrival and runs it. A journey is a
coroutine that makes one or more RPCs through a :class:`Caller`, which times
and records every call.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict


class Params(BaseModel):
    """Base of journey and seed parameter models: unknown keys are errors.

    A seed model lists in ``RATE_FIELDS`` the fields that size the seeded data for the arrival rate (the ads budgets'
    page views a second): ``--rate-scale`` and ``rate_scale: auto`` scale them with the rate
    (:func:`scale_rate_fields`), and ``casemesh capacity`` seeds them for its highest rate, so that data sized for one
    rate never caps what another one measures.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    RATE_FIELDS: ClassVar[tuple[str, ...]] = ()


def scale_rate_fields(params: Params, factor: float) -> Params:
    """``params`` with each of its ``RATE_FIELDS`` multiplied by ``factor`` (the same object when it has none)."""
    if not params.RATE_FIELDS or factor == 1:
        return params
    return params.model_copy(update={name: getattr(params, name) * factor for name in params.RATE_FIELDS})


class Caller(Protocol):
    """Makes timed RPCs for a journey; the driver implements it (``harness.driver.JourneyCaller``).

    ``service`` is the topology name of the service (``urlshortener``),
    ``method`` the RPC name on its stub (``Resolve``). Calls return the
    response; they raise ``grpc.aio.AioRpcError`` when the call ends with a
    non-OK status (already recorded by then, so journeys may catch expected
    codes such as ``NOT_FOUND``). Values flow from one step to the next as
    ordinary Python values (the video id of one response into the next request).
    """

    async def __call__(self, service: str, method: str, request: Any) -> Any:
        """A unary call."""

    def begin(self) -> None:
        """Mark the journey's first action when it is not an RPC (a frame on a long-lived stream): records send lag."""

    @property
    def intended_at(self) -> float:
        """The journey's intended start (perf_counter s), from the arrival process."""

    def bidi_stream(self, service: str, method: str) -> Any:
        """Open a long-lived bidi stream (:class:`casemesh.harness.streams.BidiStream`): time to connect recorded."""

    def server_stream(self, service: str, method: str, request: Any) -> AsyncIterator[Any]:
        """A server-streaming call: iterate it to the end; time to first message and whole call are recorded."""

    async def client_stream(self, service: str, method: str, requests: AsyncIterable[Any] | Iterable[Any]) -> Any:
        """A client-streaming call."""

    def observe(self, name: str, latency_s: float, code: str = "OK") -> None:
        """Record a journey-defined measure (seconds), reported and judged like a journey called ``name``."""


class UnrecordedCaller:
    """A seeder's caller over the driver's plain unary call: client streams go through it too (a stub takes an
    iterator of requests), so seeding can upload without the journey-recording ``client_stream``."""

    def __init__(self, call: Caller):
        self._call = call

    async def __call__(self, service: str, method: str, request: Any) -> Any:
        return await self._call(service, method, request)

    async def client_stream(self, service: str, method: str, requests: AsyncIterable[Any] | Iterable[Any]) -> Any:
        return await self._call(service, method, requests)


@dataclass(frozen=True)
class Journey:
    """One user journey: a name, its parameter model and the coroutine that runs it.

    ``run(call, params, state, rng)`` makes the journey's RPCs through ``call``;
    ``state`` is what the workload's seeder returned.
    """

    name: str
    description: str
    params_model: type[Params]
    run: Callable[[Caller, Any, Any, random.Random], Awaitable[None]]


@dataclass(frozen=True)
class Workload:
    """The journeys of a case study, the services they call, and its seeder.

    ``services`` are the topology names the journeys call directly (the
    entry points that ``--target`` must name); ``stubs`` maps each to its
    generated stub class and ``service_names`` to its full gRPC service name; ``rpcs`` lists every full method name
    (``package.Service/Method``) the journeys may call, which SLOs may
    reference. ``seed(call, params, rng)`` creates the data the journeys need
    before load starts and returns the workload's state. ``measures`` names
    the journey-defined measures (``Caller.observe``) that SLOs may target as
    ``journey:``.

    A workload of connected clients (chat, live documents) also has
    ``connect(streams, state, seed_params, rng)``: it opens the population's
    long-lived streams through ``streams``
    (:class:`casemesh.harness.streams.Streams`) before the first arrival
    and returns the state the journeys then get; ``disconnect(live_state)``
    closes them after the run.
    """

    name: str
    description: str
    services: tuple[str, ...]
    stubs: Mapping[str, type]
    service_names: Mapping[str, str]
    rpcs: tuple[str, ...]
    journeys: Mapping[str, Journey]
    seed_model: type[Params]
    seed: Callable[[Caller, Any, random.Random], Awaitable[Any]]
    measures: tuple[str, ...] = ()
    connect: Callable[[Any, Any, Any, random.Random], Awaitable[Any]] | None = None
    disconnect: Callable[[Any], Awaitable[None]] | None = None

    def full_method(self, service: str, method: str) -> str:
        """``package.Service/Method`` of ``method`` on topology service ``service``."""
        return f"{self.service_names[service]}/{method}"


@dataclass(frozen=True)
class Entrypoints:
    """A workload's services, stubs, full service names and every RPC, built from one table (the fields of :class:`Workload`)."""

    services: tuple[str, ...]
    stubs: Mapping[str, type]
    service_names: Mapping[str, str]
    rpcs: tuple[str, ...]


def entrypoints(table: Mapping[str, tuple[ModuleType, str, type]]) -> Entrypoints:
    """From topology name → (generated ``*_pb2`` module, gRPC service name, stub class): what :class:`Workload` needs.

    ``rpcs`` lists every method of each service (``package.Service/Method``), so SLOs may name any of them.
    """
    names = {name: module.DESCRIPTOR.services_by_name[service].full_name for name, (module, service, _) in table.items()}
    return Entrypoints(
        services=tuple(table),
        stubs={name: stub for name, (_, _, stub) in table.items()},
        service_names=names,
        # Several topology names may serve one gRPC service (connection-server shards): each method once.
        rpcs=tuple(dict.fromkeys(f"{names[name]}/{method.name}" for name, (module, service, _) in table.items()
                                 for method in module.DESCRIPTOR.services_by_name[service].methods)),
    )
