"""``casemesh.idgen.v1.IdGeneratorService``: leases blocks of unique 64-bit IDs.

Two layouts (see the .proto): a dense counter (what the URL shortener
encodes into 7-character base62 codes) and Snowflake (41-bit ms time, 10-bit
worker, 12-bit sequence; shared/seeds/003_1dfe16d8ccfde9ed.txt, "Snowflake ID
for Tweet IDs"). The worker ID comes from ``CASEMESH_IDGEN_WORKER_ID``
(0..1023, default 0); run replicas with distinct worker IDs.

Durable: every lease is covered by a high-water mark fsynced in
``DATA_DIR/idgen`` before it is returned (:mod:`.high_water`), so a restarted
(or crashed and restarted) idgen never hands out an ID twice. Settings
(``settings.idgen`` in the topology, :class:`IdgenSettings`) set the first
counter ID of a fresh data folder and how far ahead a mark reserves.

Status codes of LeaseIds: ``INVALID_ARGUMENT`` naming ``count`` or ``layout``;
``RESOURCE_EXHAUSTED`` when the layout's ID space is used up;
``UNAVAILABLE`` when the mark cannot be written (the IDs are not handed out).
"""

from __future__ import annotations

import logging
import os

import grpc
from pydantic import BaseModel, ConfigDict, Field

from casemesh.idgen.v1 import idgen_pb2 as pb
from casemesh.idgen.v1 import idgen_pb2_grpc as pb_grpc

from ..runtime.authorization import Access
from ..runtime.component import RuntimeContext, ServiceDefinition, StatelessComponent
from ..runtime.errors import InvalidArgument
from .generators import COUNTER_MAXIMUM, MAX_TIMESTAMP, CounterGenerator, SnowflakeGenerator
from .high_water import DurableLeases, HighWaterMark

log = logging.getLogger("casemesh.idgen")

NAME = "idgen"
FULL_NAME = pb.DESCRIPTOR.services_by_name["IdGeneratorService"].full_name
MAX_LEASE = 10_000


class IdgenSettings(BaseModel):
    """``settings.idgen`` in the topology."""

    model_config = ConfigDict(extra="forbid")

    #: First counter ID when the data folder holds no mark yet (a stored mark above it wins).
    counter_start: int = Field(default=1, ge=1)
    #: Counter IDs a mark reserves beyond the lease that writes it: 0 writes (and fsyncs) on every
    #: lease; N writes about once per N IDs and skips at most N IDs after a crash.
    counter_reserve_ids: int = Field(default=0, ge=0)
    #: Milliseconds a Snowflake mark reserves beyond its lease's last timestamp (one write per
    #: this much time at most; after a restart IDs may run this far ahead of the clock).
    snowflake_reserve_ms: int = Field(default=1000, ge=0)


class IdGeneratorServicer(pb_grpc.IdGeneratorServiceServicer):
    """Validates a lease request and takes the IDs from the layout's generator."""

    def __init__(self, counter: DurableLeases, snowflake: DurableLeases, worker_id: int):
        self._generators = {pb.ID_LAYOUT_COUNTER: counter, pb.ID_LAYOUT_SNOWFLAKE: snowflake}
        self._worker_id = worker_id

    async def LeaseIds(self, request: pb.LeaseIdsRequest, context: grpc.aio.ServicerContext) -> pb.LeaseIdsResponse:
        if not 1 <= request.count <= MAX_LEASE:
            raise InvalidArgument("count", f"must be 1 to {MAX_LEASE} (got {request.count})")
        generator = self._generators.get(request.layout)
        if generator is None:
            raise InvalidArgument("layout", f"must be ID_LAYOUT_COUNTER or ID_LAYOUT_SNOWFLAKE (got {request.layout})")
        try:
            ranges = await generator.lease(request.count)
        except OSError as error:
            log.error("cannot write the ID high-water mark %s: %s", generator.mark.path, error)
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"cannot persist the ID high-water mark: {error.strerror or error}")
        return pb.LeaseIdsResponse(
            ranges=[pb.IdRange(start=start, count=count) for start, count in ranges],
            layout=request.layout,
            worker_id=self._worker_id if request.layout == pb.ID_LAYOUT_SNOWFLAKE else 0,
        )


async def build(context: RuntimeContext) -> StatelessComponent:
    settings = context.settings(NAME, IdgenSettings)
    worker_id = int(os.environ.get("CASEMESH_IDGEN_WORKER_ID", "0"))
    folder = context.data_dir(NAME)
    counter_mark = HighWaterMark(folder / "counter.mark")
    stored = counter_mark.load()
    start = max(settings.counter_start, (stored or 0) + 1)
    counter = CounterGenerator(start=min(start, COUNTER_MAXIMUM + 1))  # past the maximum: every lease is RESOURCE_EXHAUSTED
    counter_leases = DurableLeases(counter, counter_mark, top=lambda ranges: ranges[-1][0] + ranges[-1][1] - 1,
                                   ceiling=counter.next_id - 1, reserve=settings.counter_reserve_ids, limit=counter.maximum)

    snowflake_mark = HighWaterMark(folder / f"snowflake-{worker_id}.mark")
    snowflake = SnowflakeGenerator(worker_id)
    stored_ms = snowflake_mark.load()
    if stored_ms is not None:
        snowflake.resume_after(stored_ms)
    snowflake_leases = DurableLeases(snowflake, snowflake_mark, top=lambda _ranges: snowflake.last_ms,
                                     ceiling=-1 if stored_ms is None else stored_ms,
                                     reserve=settings.snowflake_reserve_ms, limit=MAX_TIMESTAMP)
    if stored is not None or stored_ms is not None:
        log.info("resuming above the stored marks in %s: counter from %d, Snowflake after %s ms",
                 folder, counter.next_id, stored_ms)
    servicer = IdGeneratorServicer(counter_leases, snowflake_leases, worker_id)
    return StatelessComponent(servicer, pb_grpc.add_IdGeneratorServiceServicer_to_server)


DEFINITION = ServiceDefinition(name=NAME, grpc_services=(FULL_NAME,), dependencies=(), build=build,
                               settings_model=IdgenSettings,
                               access=Access(internal={"LeaseIds": ("urlshortener", "social-tweets", "photo-media")}))
