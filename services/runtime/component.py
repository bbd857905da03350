"""The contract between the runtime and a case-study service.

A service package exposes a :class:`ServiceDefinition`; the runtime builds its
:class:`Component` with a :class:`RuntimeContext` (outbound channels to the
services it depends on), registers it on a gRPC server, starts it, and on
shutdown stops it after its inbound calls have drained, while the services it
depends on still serve.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

import grpc
from pydantic import BaseModel, ValidationError

from .channels import open_channel
from .identity import CallerToken, service_identity
from .secrets import SERVICE_TOKEN, UPLOAD_TOKEN, Keyring, MeshSecret
from .topology import Topology, TopologyError
from .tracing import RpcTracing

if TYPE_CHECKING:
    from .authorization import Access

SettingsT = TypeVar("SettingsT", bound=BaseModel)


class Component(Protocol):
    """A built service: registers its servicers, then runs between ``start`` and ``stop``."""

    def register(self, server: grpc.aio.Server) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class RuntimeContext:
    """What a component gets from the runtime: the topology, the mesh secret's keys, and channels to its dependencies.

    ``serve`` hands each service ``context.for_service(NAME)``: its outbound
    channels carry that service's identity (a caller token signed with
    ``secret``'s ``service-token`` key, and its certificate under mTLS).
    Channels are shared per (caller, target) by every context made from the
    same root. A context without ``secret`` gets a random one (tests of one
    component: its tokens are good only inside the process).
    """

    def __init__(self, topology: Topology, tracing: RpcTracing | None = None, *, secret: MeshSecret | None = None,
                 caller: str | None = None, _channels: dict[tuple[str | None, str], grpc.aio.Channel] | None = None):
        self.topology = topology
        self._tracing = tracing
        self.secret = secret or MeshSecret.generate()
        #: Topology name of the service this context is for (``None``: the process's root context, no identity).
        self.caller = caller
        self._channels: dict[tuple[str | None, str], grpc.aio.Channel] = {} if _channels is None else _channels

    def for_service(self, name: str) -> RuntimeContext:
        """The context of service ``name``: the same topology, secret and channel pool; outbound calls as ``name``."""
        return RuntimeContext(self.topology, self._tracing, secret=self.secret, caller=name, _channels=self._channels)

    def upload_keys(self) -> Keyring:
        """The keyring of upload tokens (``upload-token`` keys of the mesh secret, current and previous)."""
        return self.secret.keyring(UPLOAD_TOKEN)

    def settings(self, service: str, model: type[SettingsT]) -> SettingsT:
        """Service ``service``'s settings from the topology's ``settings`` section, validated by ``model``.

        Missing keys take the model's defaults. Raises ``TopologyError``
        naming ``settings.SERVICE.FIELD`` when a value is invalid.
        """
        try:
            return model.model_validate(self.topology.settings.get(service, {}))
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(p) for p in first["loc"])  # empty for a check across fields (a model validator)
            raise TopologyError(f"settings.{service}{'.' + field if field else ''}: {first['msg']}") from None

    def data_dir(self, service: str) -> Path:
        """The folder of ``service``'s persistent files (``DATA_DIR/SERVICE``, created if missing)."""
        path = Path(self.topology.data_dir) / service
        path.mkdir(parents=True, exist_ok=True)
        return path

    def channel(self, service: str) -> grpc.aio.Channel:
        """The shared outbound channel from this context's service to topology service ``service`` (opened on first use)."""
        key = (self.caller, service)
        channel = self._channels.get(key)
        if channel is None:
            address = self.topology.endpoint(service).address
            token = (CallerToken(service_identity(self.caller), self.secret.keyring(SERVICE_TOKEN))
                     if self.caller is not None else None)
            channel = self._channels[key] = open_channel(address, self.topology.calls, self._tracing, target=service,
                                                         caller=self.caller, caller_token=token, tls=self.topology.tls)
        return channel

    async def close(self) -> None:
        """Close every channel opened through this context."""
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()


class StatelessComponent:
    """A component that is only a servicer: ``add_to_server(servicer, server)`` registers it."""

    def __init__(self, servicer: object, add_to_server: Callable[[object, grpc.aio.Server], None]):
        self.servicer = servicer
        self._add_to_server = add_to_server

    def register(self, server: grpc.aio.Server) -> None:
        self._add_to_server(self.servicer, server)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


@dataclass(frozen=True)
class ServiceDefinition:
    """A case-study service as the runtime sees it.

    ``name`` is the topology name (``urlshortener``); ``grpc_services`` the
    full names it registers (for health and reflection; empty for a worker
    that only calls others); ``dependencies`` the topology names it calls;
    ``build`` makes the component; ``settings_model`` (optional) is the
    pydantic model of its ``settings`` in the topology, which profiles are
    checked against before anything starts; ``optional_dependencies`` are
    the dependencies it can serve without (most calls still succeed while
    they are down), so their loss does not turn its health NOT_SERVING
    (:mod:`.dependency_health`); ``access`` says which callers may use which
    of its methods (:class:`~.authorization.Access`; ``None``: every method
    open, for test doubles only; every casemesh service declares one);
    ``default_limits`` gives some of its gRPC services (``"pkg.Service"``) an
    admission slot count of their own instead of ``server.max_concurrent_rpcs``
    (a service of long-lived streams, whose calls must not use up the slots
    that bound unary work), which the topology's ``server.limits`` overrides
    (:func:`.admission.limits_from_policy`).
    """

    name: str
    grpc_services: tuple[str, ...]
    dependencies: tuple[str, ...]
    build: Callable[[RuntimeContext], Awaitable[Component]]
    settings_model: type[BaseModel] | None = None
    optional_dependencies: tuple[str, ...] = ()
    access: Access | None = None
    default_limits: Mapping[str, int] = field(default_factory=dict)
