"""rides-location's input rules, as protos/casemesh/rides/v1/location.proto states them.

Each check raises :class:`~services.runtime.errors.InvalidArgument` naming the field as written in the .proto.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from casemesh.rides.v1 import location_pb2, rides_pb2

from ...runtime.errors import InvalidArgument
from .. import validation as check
from ..contract import MAX_EXCLUDED_DRIVERS, MAX_NEARBY_LIMIT, MAX_RADIUS_M

_REPORTED_STATUSES = frozenset({rides_pb2.DRIVER_STATUS_AVAILABLE, rides_pb2.DRIVER_STATUS_BUSY,
                                rides_pb2.DRIVER_STATUS_OFFLINE})


class Report(NamedTuple):
    """A valid ReportLocations frame: the driver, the point (degrees), status, heading (degrees), sent_at (ms)."""

    driver_id: str
    lat_deg: float
    lng_deg: float
    status: int
    heading_deg: float
    sent_at_unix_ms: int


def report(frame: location_pb2.ReportLocationsRequest, stream_driver_id: str | None) -> Report:
    """A frame of a ReportLocations stream whose first frame named ``stream_driver_id`` (``None``: this is the
    first). INVALID_ARGUMENT naming ``driver_id`` (missing, malformed, not the stream's), ``point``,
    ``point.lat_deg``, ``point.lng_deg``, ``status`` (unspecified or unknown) or ``heading_deg`` (not in [0, 360))."""
    driver_id = check.required_id("driver_id", frame.driver_id)
    if stream_driver_id is not None and driver_id != stream_driver_id:
        raise InvalidArgument("driver_id", f"is {driver_id!r}, but this stream is driver {stream_driver_id!r}'s "
                                           f"(every frame of a stream names the driver of its first frame)")
    lat, lng = check.point("point", frame.point, frame.HasField("point"))
    if frame.status not in _REPORTED_STATUSES:
        raise InvalidArgument("status", f"must be AVAILABLE, BUSY or OFFLINE, not {frame.status}")
    heading = frame.heading_deg
    if not (math.isfinite(heading) and 0 <= heading < 360):
        raise InvalidArgument("heading_deg", f"{heading} is not in [0, 360) degrees")
    return Report(driver_id, lat, lng, frame.status, heading, frame.sent_at_unix_ms)


class NearbyQuery(NamedTuple):
    """A valid FindNearbyDrivers request: centre (degrees), radius (metres), limit, drivers left out."""

    lat_deg: float
    lng_deg: float
    radius_m: float
    limit: int
    exclude: frozenset[str]


def nearby(request: location_pb2.FindNearbyDriversRequest) -> NearbyQuery:
    """INVALID_ARGUMENT naming ``point``, ``point.lat_deg``, ``point.lng_deg``, ``radius_m`` (not 1 to 50,000),
    ``limit`` (not 1 to 100), ``exclude_driver_ids`` (over 100) or ``exclude_driver_ids[i]`` (malformed)."""
    lat, lng = check.point("point", request.point, request.HasField("point"))
    radius = request.radius_m
    if not (math.isfinite(radius) and 1 <= radius <= MAX_RADIUS_M):
        raise InvalidArgument("radius_m", f"{radius} is not 1 to {MAX_RADIUS_M:,.0f} metres")
    if not 1 <= request.limit <= MAX_NEARBY_LIMIT:
        raise InvalidArgument("limit", f"{request.limit} is not 1 to {MAX_NEARBY_LIMIT}")
    excluded = request.exclude_driver_ids
    if len(excluded) > MAX_EXCLUDED_DRIVERS:
        raise InvalidArgument("exclude_driver_ids", f"names {len(excluded)} drivers; at most {MAX_EXCLUDED_DRIVERS}")
    exclude = frozenset(check.required_id(f"exclude_driver_ids[{i}]", d) for i, d in enumerate(excluded))
    return NearbyQuery(lat, lng, radius, request.limit, exclude)
