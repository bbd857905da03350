"""Input rules shared by the ride-sharing servicers, rule for rule as protos/casemesh/rides/v1 says.

Each check raises :class:`~services.runtime.errors.InvalidArgument` naming the
field as written in the .proto.
"""

from __future__ import annotations

import math

from casemesh.common.v1 import geo_pb2

from ..runtime.errors import InvalidArgument
from .contract import DEFAULT_SERVICE_AREA, MAX_H3_RESOLUTION, MIN_H3_RESOLUTION, ServiceArea, is_id

_ID_RULE = "1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'"


def required_id(field: str, value: str) -> str:
    """``value`` when it is an ID (1 to 64 characters of [A-Za-z0-9_-]); else INVALID_ARGUMENT naming ``field``."""
    if not value:
        raise InvalidArgument(field, f"is required ({_ID_RULE})")
    if not is_id(value):
        raise InvalidArgument(field, f"must be {_ID_RULE}")
    return value


def point(field: str, message, present: bool, area: ServiceArea = DEFAULT_SERVICE_AREA) -> tuple[float, float]:
    """``(lat_deg, lng_deg)`` of a ``casemesh.common.v1.LatLng`` field that must be set and inside ``area``.

    ``present`` is ``request.HasField(field)``. INVALID_ARGUMENT names ``field`` when it is missing,
    ``field.lat_deg`` or ``field.lng_deg`` when a coordinate is out of range, and ``field`` when the
    point is outside the service area.
    """
    if not present:
        raise InvalidArgument(field, "is required (a casemesh.common.v1.LatLng in degrees)")
    lat, lng = message.lat_deg, message.lng_deg
    if not (math.isfinite(lat) and -90 <= lat <= 90):
        raise InvalidArgument(f"{field}.lat_deg", f"{lat} is not a latitude in [-90, 90]")
    if not (math.isfinite(lng) and -180 <= lng <= 180):
        raise InvalidArgument(f"{field}.lng_deg", f"{lng} is not a longitude in [-180, 180]")
    if not area.contains(lat, lng):
        raise InvalidArgument(field, f"({lat}, {lng}) is outside the service area ({area.describe()})")
    return lat, lng


def latlng(lat_deg: float, lng_deg: float) -> geo_pb2.LatLng:
    """The ``casemesh.common.v1.LatLng`` of a point."""
    return geo_pb2.LatLng(lat_deg=lat_deg, lng_deg=lng_deg)


def resolution(field: str, value: int) -> int:
    """An H3 resolution, 0 to 15."""
    if not MIN_H3_RESOLUTION <= value <= MAX_H3_RESOLUTION:
        raise InvalidArgument(field, f"{value} is not an H3 resolution ({MIN_H3_RESOLUTION} to {MAX_H3_RESOLUTION})")
    return value
