"""The speed model of an offer's pickup ETA.

Seed 000 (shared/seeds/000_69ff90d97cf45f9b.txt), "Ride-Sharing (like Uber)", Key Challenges: "ETA Calculation:
Real-time traffic and route optimization". Without a road graph or traffic feed, the ETA is the great-circle
distance (``h3.great_circle_distance``) times a detour factor (road distance over straight line, 1.3 by default)
over an average city speed (30 km/h by default): the same model rides-pricing uses for a trip's duration.
"""

from __future__ import annotations

import h3

from casemesh.common.v1 import geo_pb2


class SpeedModel:
    """``city_speed_kmh`` (> 0) and ``detour_factor`` (>= 1) of the dispatch settings."""

    def __init__(self, city_speed_kmh: float, detour_factor: float) -> None:
        if city_speed_kmh <= 0 or detour_factor < 1:
            raise ValueError(f"need city_speed_kmh > 0 and detour_factor >= 1 (got {city_speed_kmh}, {detour_factor})")
        self._speed_m_s = city_speed_kmh / 3.6
        self._detour = detour_factor

    @staticmethod
    def distance_m(a: geo_pb2.LatLng, b: geo_pb2.LatLng) -> float:
        """Great-circle distance between two points (degrees), in metres."""
        return h3.great_circle_distance((a.lat_deg, a.lng_deg), (b.lat_deg, b.lng_deg), unit="m")

    def eta_s(self, distance_m: float) -> float:
        """Seconds to drive ``distance_m`` metres of great-circle distance."""
        return distance_m * self._detour / self._speed_m_s
