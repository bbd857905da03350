"""proximity-geofence's input rules, as protos/casemesh/proximity/v1/geofence.proto and proximity.proto state them.

Each check raises :class:`~services.runtime.errors.InvalidArgument` naming the field as written in the .proto
(``fence.radius_m``, ``positions[2].point.lat_deg``); the shared rules are services/proximity/contract.py's.
"""

from __future__ import annotations

import math
import unicodedata
from typing import NamedTuple

from casemesh.proximity.v1 import geofence_pb2

from ...geo import validation as geo
from ...runtime.errors import InvalidArgument
from ...runtime.identifiers import ID_RULE, is_id, required_id
from ..contract import (
    MAX_BATCH,
    MAX_FENCE_RADIUS_M,
    MAX_NAME_CHARS,
    MAX_WATCHED_FENCES,
    MIN_FENCE_RADIUS_M,
    SERVICE_AREA,
)
from .evaluator import Position
from .fences import Fence


def fence(request: geofence_pb2.CreateFenceRequest) -> Fence:
    """The fence of a CreateFence. INVALID_ARGUMENT naming ``fence.fence_id``, ``fence.name`` (over 200 characters,
    or a control character), ``fence.center``, ``fence.center.lat_deg``, ``fence.center.lng_deg`` or
    ``fence.radius_m`` (not 10 to 50,000 m)."""
    message = request.fence
    fence_id = required_id("fence.fence_id", message.fence_id)
    name = message.name
    if len(name) > MAX_NAME_CHARS:
        raise InvalidArgument("fence.name", f"has {len(name)} characters; at most {MAX_NAME_CHARS}")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise InvalidArgument("fence.name", "must not contain control characters")
    lat, lng = geo.point("fence.center", message.center, message.HasField("center"), SERVICE_AREA)
    radius = message.radius_m
    if not (math.isfinite(radius) and MIN_FENCE_RADIUS_M <= radius <= MAX_FENCE_RADIUS_M):
        raise InvalidArgument("fence.radius_m",
                              f"{radius} is not {MIN_FENCE_RADIUS_M:,.0f} to {MAX_FENCE_RADIUS_M:,.0f} metres")
    return Fence(fence_id, name, lat, lng, radius)


def positions(request: geofence_pb2.EvaluatePositionsRequest) -> list[Position]:
    """The positions of an EvaluatePositions, in order. INVALID_ARGUMENT naming ``positions`` (empty or over 1,000)
    or the first bad field: ``positions[i].entity_id`` (missing, malformed, or an entity already in the batch),
    ``positions[i].sequence`` (below 1), ``positions[i].point``, ``positions[i].point.lat_deg`` or
    ``positions[i].point.lng_deg``."""
    items = request.positions
    if not 1 <= len(items) <= MAX_BATCH:
        raise InvalidArgument("positions", f"has {len(items)} positions; 1 to {MAX_BATCH:,}")
    seen: set[str] = set()
    result: list[Position] = []
    for i, item in enumerate(items):
        entity_id = required_id(f"positions[{i}].entity_id", item.entity_id)
        if entity_id in seen:
            raise InvalidArgument(f"positions[{i}].entity_id", f"entity {entity_id} appears twice in the batch "
                                                               f"(at most one position per entity)")
        seen.add(entity_id)
        if item.sequence < 1:
            raise InvalidArgument(f"positions[{i}].sequence", f"{item.sequence} is not at least 1")
        lat, lng = geo.point(f"positions[{i}].point", item.point, item.HasField("point"), SERVICE_AREA)
        result.append(Position(entity_id, item.sequence, lat, lng, item.sent_at_unix_ms))
    return result


class WatchQuery(NamedTuple):
    """A valid WatchFenceEvents request: the fences (empty: all), where to start, or from now."""

    fence_ids: frozenset[str]
    after_sequence: int
    from_now: bool


def watch(request: geofence_pb2.WatchFenceEventsRequest) -> WatchQuery:
    """INVALID_ARGUMENT naming ``fence_ids`` (over 100, or one malformed) or ``after_sequence`` (negative, or set
    with ``from_now``)."""
    fence_ids = request.fence_ids
    if len(fence_ids) > MAX_WATCHED_FENCES:
        raise InvalidArgument("fence_ids", f"names {len(fence_ids)} fences; at most {MAX_WATCHED_FENCES}")
    for i, fence_id in enumerate(fence_ids):
        if not is_id(fence_id):
            raise InvalidArgument("fence_ids", f"fence_ids[{i}] ({fence_id!r}) is not {ID_RULE}")
    if request.after_sequence < 0:
        raise InvalidArgument("after_sequence", f"{request.after_sequence} is negative")
    if request.from_now and request.after_sequence != 0:
        raise InvalidArgument("after_sequence", "must be 0 with from_now")
    return WatchQuery(frozenset(fence_ids), request.after_sequence, request.from_now)
