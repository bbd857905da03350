"""The echo workload: one trivial RPC, for measuring the harness and the machine rather than a case study.

Drives ``casemesh.bench.v1.EchoService/Echo`` (protos/casemesh/bench/v1/echo.proto),
served bare by benchmarks/echo_server.py. Nothing is seeded and the server
does no work, so what a run measures is the cost of gRPC, the loopback and
the client: the baseline the case-study meshes are compared to
(docs/benchmarks.md).
"""

from __future__ import annotations

import random
from functools import lru_cache

from pydantic import Field

from casemesh.bench.v1 import echo_pb2 as pb
from casemesh.bench.v1 import echo_pb2_grpc as pb_grpc

from .base import Caller, Journey, Params, Workload

SERVICE = "echo"
FULL_SERVICE = pb.DESCRIPTOR.services_by_name["EchoService"].full_name


class SeedParams(Params):
    """The echo workload seeds nothing; it takes no seed parameters."""


class EchoParams(Params):
    """Echo of a fixed payload of ``payload_bytes`` bytes."""

    payload_bytes: int = Field(default=100, ge=0, le=65536, description="size of the request payload (bytes)")


@lru_cache(maxsize=16)
def _request(payload_bytes: int) -> pb.EchoRequest:
    """The request of a given payload size, built once (requests are immutable once sent)."""
    return pb.EchoRequest(payload=b"x" * payload_bytes)


async def seed(call: Caller, params: SeedParams, rng: random.Random) -> None:
    """Nothing to create: the echo server keeps no state."""
    return None


async def echo(call: Caller, params: EchoParams, state: None, rng: random.Random) -> None:
    await call(SERVICE, "Echo", _request(params.payload_bytes))


WORKLOAD = Workload(
    name="echo",
    description="Bare echo (benchmarks/echo_server.py): one Echo RPC per journey, for harness and baseline measurements",
    services=(SERVICE,),
    stubs={SERVICE: pb_grpc.EchoServiceStub},
    service_names={SERVICE: FULL_SERVICE},
    rpcs=(f"{FULL_SERVICE}/Echo",),
    journeys={
        j.name: j
        for j in (
            Journey("echo", "Echo a payload of payload_bytes bytes (the server returns it unchanged)", EchoParams, echo),
        )
    },
    seed_model=SeedParams,
    seed=seed,
)
