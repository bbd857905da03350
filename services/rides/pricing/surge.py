"""Surge pricing: per-cell demand over supply, on a ladder of multipliers, recomputed every interval.

Seed 003 (shared/seeds/003_1dfe16d8ccfde9ed.txt), "Uber Ride Matching", Surge Pricing (line 883): "Divide city into
cells (geohash)" at "~1km precision" (line 906); "demandSupplyRatio = activeRides / Math.max(availableDrivers, 1)";
under 0.5 → 1.0, under 1.0 → 1.2, under 2.0 → 1.5, under 3.0 → 2.0, else "Max surge 2.5x" (lines 917-921);
"Update every 30 seconds" (line 961). Cells here are H3 cells at the surge resolution (seed 001 #29).

A :class:`SurgeMap` counts demand (one per quote asked, in the pickup's cell) in the current window. A
recomputation swaps the window: each cell with demand in the window just ended or supply (AVAILABLE drivers, from
rides-location) gets its multiplier from the :class:`SurgeLadder`, and that map is in force until the next one.
Supply that could not be fetched is the last supply fetched. Surge off: every multiplier 1.0, demand still
counted and reported.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import h3


class SurgeLadder:
    """The multiplier of a demand/supply ratio: ``steps`` of (ratio_below, multiplier), ratios increasing, then
    ``max_multiplier`` (validated by the settings)."""

    def __init__(self, steps: Iterable[tuple[float, float]], max_multiplier: float) -> None:
        self.steps = tuple(steps)
        self.max_multiplier = max_multiplier

    @property
    def multipliers(self) -> tuple[float, ...]:
        """Every multiplier the ladder gives, lowest first (1.0 included: surge off, or an empty ladder)."""
        return tuple(sorted({1.0, *(m for _, m in self.steps), self.max_multiplier}))

    def multiplier(self, demand: int, supply: int) -> float:
        """The multiplier of ``demand`` quotes over ``supply`` drivers (ratio demand / max(supply, 1))."""
        ratio = demand / max(supply, 1)
        for below, multiplier in self.steps:
            if ratio < below:
                return multiplier
        return self.max_multiplier


@dataclass(frozen=True, slots=True)
class CellSurge:
    """One cell's surge: the H3 cell, its multiplier, the demand (quotes in the window) and supply (drivers)."""

    cell: str
    multiplier: float
    demand: int
    supply: int


class SurgeMap:
    """Demand windows and the surge map in force (module docstring). ``resolution``: the cells' H3 resolution."""

    def __init__(self, ladder: SurgeLadder, resolution: int, enabled: bool = True) -> None:
        self.ladder = ladder
        self.resolution = resolution
        self.enabled = enabled
        self._window: Counter[str] = Counter()
        self._supply: dict[str, int] = {}
        self._cells: dict[str, CellSurge] = {}
        #: When the map in force was computed, in ms since the Unix epoch (0: never).
        self.computed_at_unix_ms = 0

    def cell_of(self, lat_deg: float, lng_deg: float) -> str:
        """The surge cell (H3 string) of a point in degrees."""
        return h3.latlng_to_cell(lat_deg, lng_deg, self.resolution)

    def count_demand(self, cell: str) -> None:
        """One quote asked with a pickup in ``cell``, in the current window."""
        self._window[cell] += 1

    def surge(self, cell: str) -> CellSurge:
        """``cell``'s surge in force (multiplier 1.0, no demand or supply for a cell without either)."""
        return self._cells.get(cell) or CellSurge(cell, 1.0, 0, 0)

    def cells(self) -> list[CellSurge]:
        """Every cell of the map in force (cells with demand or supply)."""
        return list(self._cells.values())

    def recompute(self, supply: Mapping[str, int] | None, now_unix_ms: int) -> list[CellSurge]:
        """End the demand window and put in force the map of its demand over ``supply`` (cell → AVAILABLE drivers;
        ``None``: the last supply). Returns the new map's cells."""
        demand, self._window = self._window, Counter()
        if supply is not None:
            self._supply = dict(supply)
        cells: dict[str, CellSurge] = {}
        for cell in demand.keys() | self._supply.keys():
            d, s = demand.get(cell, 0), self._supply.get(cell, 0)
            cells[cell] = CellSurge(cell, self.ladder.multiplier(d, s) if self.enabled else 1.0, d, s)
        self._cells = cells
        self.computed_at_unix_ms = now_unix_ms
        return list(cells.values())
