"""``casemesh.idgen.v1.IdGeneratorService``: leases blocks of unique 64-bit IDs.

Two layouts (see the .proto): a dense counter (what the URL shortener
encodes into 7-character base62 codes) and Snowflake (41-bit ms time, 10-bit
worker, 12-bit sequence; shared/seeds/003_1dfe16d8ccfde9ed.txt, "Snowflake ID
for Tweet IDs"). The worker ID comes from ``CASEMESH_IDGEN_WORKER_ID``
(0..1023, default 0); run replicas with distinct worker IDs.
"""

from __future__ import annotations

import os

import grpc

from casemesh.idgen.v1 import idgen_pb2 as pb
from casemesh.idgen.v1 import idgen_pb2_grpc as pb_grpc

from ..runtime.component import RuntimeContext, ServiceDefinition, StatelessComponent
from ..runtime.errors import InvalidArgument
from .generators import CounterGenerator, SnowflakeGenerator

FULL_NAME = pb.DESCRIPTOR.services_by_name["IdGeneratorService"].full_name
MAX_LEASE = 10_000


class IdGeneratorServicer(pb_grpc.IdGeneratorServiceServicer):
    """Validates a lease request and takes the IDs from the layout's generator."""

    def __init__(self, counter: CounterGenerator, snowflake: SnowflakeGenerator):
        self._generators = {pb.ID_LAYOUT_COUNTER: counter, pb.ID_LAYOUT_SNOWFLAKE: snowflake}
        self._worker_id = snowflake.worker_id

    async def LeaseIds(self, request: pb.LeaseIdsRequest, context: grpc.aio.ServicerContext) -> pb.LeaseIdsResponse:
        if not 1 <= request.count <= MAX_LEASE:
            raise InvalidArgument("count", f"must be 1 to {MAX_LEASE} (got {request.count})")
        generator = self._generators.get(request.layout)
        if generator is None:
            raise InvalidArgument("layout", f"must be ID_LAYOUT_COUNTER or ID_LAYOUT_SNOWFLAKE (got {request.layout})")
        ranges = generator.lease(request.count)
        return pb.LeaseIdsResponse(
            ranges=[pb.IdRange(start=start, count=count) for start, count in ranges],
            layout=request.layout,
            worker_id=self._worker_id if request.layout == pb.ID_LAYOUT_SNOWFLAKE else 0,
        )


async def build(context: RuntimeContext) -> StatelessComponent:
    worker_id = int(os.environ.get("CASEMESH_IDGEN_WORKER_ID", "0"))
    servicer = IdGeneratorServicer(CounterGenerator(), SnowflakeGenerator(worker_id))
    return StatelessComponent(servicer, pb_grpc.add_IdGeneratorServiceServicer_to_server)


DEFINITION = ServiceDefinition(name="idgen", grpc_services=(FULL_NAME,), dependencies=(), build=build)
