"""proximity-tracker's input rules, as protos/casemesh/proximity/v1/tracker.proto and proximity.proto state them.

Each check raises :class:`~services.runtime.errors.InvalidArgument` naming the field as written in the .proto
(``positions[2].point.lat_deg``). The rules are the contract's (:mod:`services.proximity.contract`): identifiers
(services/runtime/identifiers.py), points inside :data:`~services.proximity.contract.SERVICE_AREA`
(services/geo/validation.py), batches of 1 to :data:`~services.proximity.contract.MAX_BATCH`, radii of 1 to
:data:`~services.proximity.contract.MAX_RADIUS_M` m, at most :data:`~services.proximity.contract.MAX_NEARBY_LIMIT`
entities found.
"""

from __future__ import annotations

from typing import NamedTuple

from casemesh.proximity.v1 import proximity_pb2, tracker_pb2

from ...geo import validation as geo
from ...runtime.errors import InvalidArgument
from ...runtime.identifiers import required_id
from ..contract import MAX_BATCH, MAX_NEARBY_LIMIT, MAX_RADIUS_M, SERVICE_AREA


class Position(NamedTuple):
    """A valid ``EntityPosition``: the entity, its sequence (>= 1), the point (degrees) and ``sent_at_unix_ms`` (the
    device's clock, ms since the Unix epoch; 0 when unknown). The index keeps it as the entity's payload."""

    entity_id: str
    sequence: int
    lat_deg: float
    lng_deg: float
    sent_at_unix_ms: int

    def to_proto(self) -> proximity_pb2.EntityPosition:
        """The ``EntityPosition`` as the device sent it."""
        return proximity_pb2.EntityPosition(entity_id=self.entity_id, sequence=self.sequence,
                                            point=geo.latlng(self.lat_deg, self.lng_deg),
                                            sent_at_unix_ms=self.sent_at_unix_ms)


def batch(request: tracker_pb2.StreamPositionsRequest) -> list[Position]:
    """Every position of a StreamPositions batch, checked whole before any is used.

    INVALID_ARGUMENT naming ``positions`` (empty or over 1,000), or the first bad field in order: for position i,
    ``positions[i].entity_id`` (missing, malformed, or the entity of an earlier position of the batch),
    ``positions[i].sequence`` (below 1), ``positions[i].point`` (missing or outside the service area),
    ``positions[i].point.lat_deg`` or ``positions[i].point.lng_deg`` (not a latitude / longitude).
    """
    positions = request.positions
    if not 1 <= len(positions) <= MAX_BATCH:
        raise InvalidArgument("positions", f"holds {len(positions)} positions; a batch is 1 to {MAX_BATCH:,}")
    valid: list[Position] = []
    seen: set[str] = set()
    for i, position in enumerate(positions):
        entity_id = required_id(f"positions[{i}].entity_id", position.entity_id)
        if entity_id in seen:
            raise InvalidArgument(f"positions[{i}].entity_id",
                                  f"entity {entity_id!r} appears twice in the batch (at most one position per entity)")
        seen.add(entity_id)
        if position.sequence < 1:
            raise InvalidArgument(f"positions[{i}].sequence", f"{position.sequence} is below 1")
        lat, lng = geo.point(f"positions[{i}].point", position.point, position.HasField("point"), SERVICE_AREA)
        valid.append(Position(entity_id, position.sequence, lat, lng, position.sent_at_unix_ms))
    return valid


class NearbyQuery(NamedTuple):
    """A valid FindNearbyEntities request: centre (degrees), radius (metres), limit."""

    lat_deg: float
    lng_deg: float
    radius_m: float
    limit: int


def nearby(request: tracker_pb2.FindNearbyEntitiesRequest) -> NearbyQuery:
    """INVALID_ARGUMENT naming ``center`` (missing, or outside the service area), ``center.lat_deg``,
    ``center.lng_deg``, ``radius_m`` (not 1 to 50,000) or ``limit`` (not 1 to 100)."""
    lat, lng = geo.point("center", request.center, request.HasField("center"), SERVICE_AREA)
    radius = geo.radius("radius_m", request.radius_m, MAX_RADIUS_M)
    if not 1 <= request.limit <= MAX_NEARBY_LIMIT:
        raise InvalidArgument("limit", f"{request.limit} is not 1 to {MAX_NEARBY_LIMIT}")
    return NearbyQuery(lat, lng, radius, request.limit)


def entity_id(request: tracker_pb2.GetPositionRequest) -> str:
    """INVALID_ARGUMENT naming ``entity_id`` (missing or malformed)."""
    return required_id("entity_id", request.entity_id)
