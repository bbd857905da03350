"""Surge pricing of the delivery fee: open orders over available couriers per H3 region, on a ladder.

Seed 001 #13 (shared/seeds/001_58dfc580020147d2.txt line 38, "Food Delivery": "surge pricing"); the ladder is the
ride-sharing one (seed 003, shared/seeds/003_1dfe16d8ccfde9ed.txt, "Uber Ride Matching", Surge Pricing, lines
917-921: demand/supply under 0.5 → 1.0, under 1.0 → 1.2, under 2.0 → 1.5, under 3.0 → 2.0, else 2.5; "Update every
30 seconds", line 961), reused as is (``services/rides/pricing/surge.py`` :class:`SurgeLadder`).

Demand here is a stock, not a flow: the open orders (PLACED + ASSIGNED: waiting for a courier, or a courier on its
way to the kitchen) whose restaurant is in the region, counted at each recomputation; supply is the region's
AVAILABLE couriers (rides-location ``CountAvailableDrivers`` at the surge resolution). A :class:`RegionSurge` map is
recomputed every ``surge_interval_s`` and is in force until the next one; a supply that could not be fetched is the
last one fetched. Surge off: every multiplier 1.0, demand and supply still counted (the ETA model's approach uses
the supply either way).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import h3

from ...rides.pricing.surge import SurgeLadder

__all__ = ["SurgeLadder", "RegionSurge", "SurgeMap"]


@dataclass(frozen=True, slots=True)
class RegionSurge:
    """One region's surge: the H3 cell, its multiplier, its demand (open orders) and supply (available couriers)."""

    region: str
    multiplier: float
    demand: int
    supply: int


class SurgeMap:
    """The surge map in force (module docstring). ``resolution``: the regions' H3 resolution."""

    def __init__(self, ladder: SurgeLadder, resolution: int, enabled: bool = True) -> None:
        self.ladder = ladder
        self.resolution = resolution
        self.enabled = enabled
        self._supply: dict[str, int] | None = None
        self._regions: dict[str, RegionSurge] = {}
        #: When the map in force was computed, in ms since the Unix epoch (0: never).
        self.computed_at_unix_ms = 0

    def region_of(self, lat_deg: float, lng_deg: float) -> str:
        """The surge region (H3 cell string) of a point in degrees."""
        return h3.latlng_to_cell(lat_deg, lng_deg, self.resolution)

    def surge(self, region: str) -> RegionSurge:
        """``region``'s surge in force (multiplier 1.0 for a region without demand or supply)."""
        return self._regions.get(region) or RegionSurge(region, 1.0, 0, 0)

    def supply(self, region: str) -> int | None:
        """``region``'s AVAILABLE couriers at the last successful fetch; ``None`` before any."""
        return None if self._supply is None else self._supply.get(region, 0)

    def regions(self) -> list[RegionSurge]:
        """Every region of the map in force (regions with demand or supply)."""
        return list(self._regions.values())

    def recompute(self, demand: Mapping[str, int], supply: Mapping[str, int] | None,
                  now_unix_ms: int) -> list[RegionSurge]:
        """Put in force the map of ``demand`` (region → open orders) over ``supply`` (region → AVAILABLE couriers;
        ``None``: the last supply). Returns the new map's regions."""
        if supply is not None:
            self._supply = dict(supply)
        last = self._supply or {}
        regions: dict[str, RegionSurge] = {}
        for region in demand.keys() | last.keys():
            d, s = demand.get(region, 0), last.get(region, 0)
            regions[region] = RegionSurge(region, self.ladder.multiplier(d, s) if self.enabled else 1.0, d, s)
        self._regions = regions
        self.computed_at_unix_ms = now_unix_ms
        return list(regions.values())
