"""Input rules shared by the ride-sharing servicers, rule for rule as protos/casemesh/rides/v1 says.

Each check raises :class:`~services.runtime.errors.InvalidArgument` naming the
field as written in the .proto. The rules themselves are the geospatial case
studies' (services/geo/validation.py) and the common identifier rule
(services/runtime/identifiers.py); this module binds them to the rides service area.
"""

from __future__ import annotations

from casemesh.common.v1 import geo_pb2

from ..geo import validation as geo
from ..geo.validation import latlng, resolution
from ..runtime.identifiers import required_id
from .contract import DEFAULT_SERVICE_AREA, ServiceArea

__all__ = ["latlng", "point", "required_id", "resolution"]


def point(field: str, message: geo_pb2.LatLng, present: bool,
          area: ServiceArea = DEFAULT_SERVICE_AREA) -> tuple[float, float]:
    """``(lat_deg, lng_deg)`` of a LatLng field inside the rides service area (:func:`services.geo.validation.point`)."""
    return geo.point(field, message, present, area)
