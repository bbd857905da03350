"""A service area: the latitude/longitude box a one-city case study accepts points in (part of the contracts of the
geospatial case studies, whose .protos quote their box).

Imported by those case studies' contract modules (services/rides/contract.py, services/proximity/contract.py), and so
by their services and workloads alike.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServiceArea:
    """A latitude/longitude box, in degrees (south < north, west < east; not across the antimeridian).
    ``ValueError`` for anything else."""

    south_deg: float
    west_deg: float
    north_deg: float
    east_deg: float

    def __post_init__(self) -> None:
        if not (-90 <= self.south_deg < self.north_deg <= 90 and -180 <= self.west_deg < self.east_deg <= 180):
            raise ValueError(f"not a service area (south < north in [-90, 90], west < east in [-180, 180]): {self}")

    def contains(self, lat_deg: float, lng_deg: float) -> bool:
        """True when the point is inside the box (edges included)."""
        return self.south_deg <= lat_deg <= self.north_deg and self.west_deg <= lng_deg <= self.east_deg

    def describe(self) -> str:
        """``[south, north] x [west, east]`` in degrees, for error messages."""
        return f"lat [{self.south_deg}, {self.north_deg}], lng [{self.west_deg}, {self.east_deg}]"


#: San Francisco and its edges: about 12 km north to south and 14 km west to east (where Uber and Yelp started).
SAN_FRANCISCO = ServiceArea(south_deg=37.70, west_deg=-122.52, north_deg=37.82, east_deg=-122.36)
