"""Input rules for geospatial fields, shared by the geospatial case studies' servicers (rides, proximity).

Each check raises :class:`~services.runtime.errors.InvalidArgument` naming the field as written in the .proto.
"""

from __future__ import annotations

import math

from casemesh.common.v1 import geo_pb2

from ..runtime.errors import InvalidArgument
from .area import ServiceArea
from .index import MAX_RESOLUTION, MIN_RESOLUTION


def point(field: str, message: geo_pb2.LatLng, present: bool, area: ServiceArea) -> tuple[float, float]:
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


def radius(field: str, value: float, most_m: float) -> float:
    """A search radius in metres, 1 to ``most_m``; INVALID_ARGUMENT naming ``field`` otherwise (NaN included)."""
    if not (math.isfinite(value) and 1 <= value <= most_m):
        raise InvalidArgument(field, f"{value} is not a radius of 1 to {most_m:,.0f} m")
    return value


def resolution(field: str, value: int) -> int:
    """An H3 resolution, 0 to 15."""
    if not MIN_RESOLUTION <= value <= MAX_RESOLUTION:
        raise InvalidArgument(field, f"{value} is not an H3 resolution ({MIN_RESOLUTION} to {MAX_RESOLUTION})")
    return value
