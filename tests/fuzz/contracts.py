"""Every RPC casemesh serves, found from the service catalogue and the protobuf descriptors, and every service in protos/.

Nothing here names a case study: :func:`served_rpcs` walks
``services/catalog.py``'s ``SERVICES`` (each definition's ``grpc_services``)
and looks each service up in the descriptor pool, so a new case study is
fuzzed as soon as it is in the catalogue. :func:`declared_services` reads
every ``.proto`` file under ``protos/`` through its generated module, so a
contract that nothing serves is noticed too.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import descriptor_pool
from google.protobuf.descriptor import Descriptor

from casemesh.services.catalog import SERVICES

PROTOS = Path(__file__).resolve().parents[2] / "protos"


@dataclass(frozen=True)
class Rpc:
    """One method of one gRPC service, and the topology name of the service that serves it."""

    topology_name: str
    service: str  # full gRPC service name, casemesh.video.v1.ObjectStoreService
    method: str
    request: Descriptor
    response: Descriptor
    client_streaming: bool
    server_streaming: bool

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.method}"

    @property
    def kind(self) -> str:
        return {(False, False): "unary", (False, True): "server_stream",
                (True, False): "client_stream", (True, True): "bidi_stream"}[(self.client_streaming, self.server_streaming)]

    @property
    def id(self) -> str:
        return f"{self.service.rsplit('.', 1)[-1]}/{self.method}"


def served_rpcs() -> list[Rpc]:
    """Every method of every gRPC service of every catalogued casemesh service, in declaration order.

    A gRPC service that several catalogued services serve (the chat's connection-server shards, chat-gateway-N) is
    fuzzed once, at the first of them.
    """
    pool = descriptor_pool.Default()
    rpcs: list[Rpc] = []
    seen: set[str] = set()
    for definition in SERVICES.values():
        for full_name in definition.grpc_services:
            if full_name in seen:
                continue
            seen.add(full_name)
            service = pool.FindServiceByName(full_name)
            for method in service.methods:
                rpcs.append(Rpc(definition.name, full_name, method.name, method.input_type, method.output_type,
                                method.client_streaming, method.server_streaming))
    return rpcs


def declared_services() -> dict[str, list[str]]:
    """``{full service name: [method, ...]}`` of every service declared in a .proto file under protos/."""
    declared: dict[str, list[str]] = {}
    for proto in sorted(PROTOS.rglob("*.proto")):
        relative = proto.relative_to(PROTOS).with_suffix("")
        module = importlib.import_module(".".join(relative.parts[:-1]) + f".{relative.name}_pb2")
        for service in module.DESCRIPTOR.services_by_name.values():
            declared[service.full_name] = [m.name for m in service.methods]
    return declared
