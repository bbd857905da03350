"""Circular fences and the fence index: H3 cell → the fences that can hold a point of that cell.

Seed 001 #29 (shared/seeds/001_58dfc580020147d2.txt line 51), "Proximity Service | Geohash/H3, ... geofencing":
a position is checked only against the fences of its own cell, not against every fence.

A fence's cells are every H3 cell that can hold a point within its radius: ``h3.grid_disk`` around the cell of its
centre out to ring ``k - 1``, where ``k`` is the first ring whose distance floor
(:func:`services.geo.index.ring_floor_m` with :func:`~services.geo.index.ring_step_m` of the centre cell) exceeds
the radius. That floor bounds from below the distance from any point of the centre cell (the centre among them) to
any point of ring ``k`` or beyond, so a point within the radius lies in a cell of the disk: the cells are a sound
superset, and containment itself is decided exactly by :func:`services.proximity.contract.inside_fence`.

Big fences would need many cells at a fine resolution (a 50 km fence: about 25,000 at resolution 8), so a fence is
indexed at the finest resolution at or below ``resolution`` whose disk has at most ``max_cells`` cells (a 50 km
fence at 5: 127 cells). A point is looked up in its own cell at each resolution some fence uses (H3 cells are not
exactly nested, so each is ``h3.latlng_to_cell`` of the point, never a parent of a finer cell): usually one or two.

Plain data, no locks: the owner (:class:`~.geofences.Geofences`) changes it only between two awaits.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import h3

from casemesh.proximity.v1 import geofence_pb2

from ...geo.index import ring_floor_m, ring_step_m
from ...geo.validation import latlng
from ..contract import inside_fence


@dataclass(frozen=True, slots=True)
class Fence:
    """A circular fence: centre in degrees, radius in metres.

    ``generation`` numbers the fence's creation (one more for each fence ever created, never reused): an entity's
    state remembers the generation of each fence it is inside, so a fence deleted and created again under the same
    id is a new fence (ENTER again), not the old one.
    """

    fence_id: str
    name: str
    lat_deg: float
    lng_deg: float
    radius_m: float
    generation: int = 0

    def same_definition(self, other: Fence) -> bool:
        """True when ``other`` has the same id, name, centre and radius (the generation aside): a retried create."""
        return (self.fence_id, self.name, self.lat_deg, self.lng_deg, self.radius_m) == (
            other.fence_id, other.name, other.lat_deg, other.lng_deg, other.radius_m)

    def contains(self, lat_deg: float, lng_deg: float) -> bool:
        """True when the point (degrees) is inside (:func:`~services.proximity.contract.inside_fence`)."""
        return inside_fence(self.lat_deg, self.lng_deg, self.radius_m, lat_deg, lng_deg)

    def to_proto(self) -> geofence_pb2.Fence:
        """The ``casemesh.proximity.v1.Fence`` of this fence."""
        return geofence_pb2.Fence(fence_id=self.fence_id, name=self.name, center=latlng(self.lat_deg, self.lng_deg),
                                  radius_m=self.radius_m)


def disk_cells(k: int) -> int:
    """Cells of ``h3.grid_disk`` at distance ``k`` away from pentagons: 3k(k+1) + 1."""
    return 3 * k * (k + 1) + 1


def fence_cells(lat_deg: float, lng_deg: float, radius_m: float, resolution: int,
                max_cells: int) -> tuple[int, list[str]]:
    """The resolution and the H3 cells indexing a fence (centre in degrees, radius in metres): the finest resolution
    at or below ``resolution`` whose disk has at most ``max_cells`` cells (module docstring). ``ValueError`` when
    ``max_cells`` < 7 (one ring: the least any fence needs)."""
    if max_cells < 7:
        raise ValueError(f"max_cells must be at least 7, not {max_cells}")
    for r in range(resolution, -1, -1):
        centre = h3.latlng_to_cell(lat_deg, lng_deg, r)
        step_m = ring_step_m(centre)
        k = 2  # the floor of rings 0 and 1 is 0: they touch the centre cell
        while ring_floor_m(k, step_m) <= radius_m:
            k += 1
        if disk_cells(k - 1) <= max_cells or r == 0:
            return r, list(h3.grid_disk(centre, k - 1))
    raise AssertionError("unreachable")  # pragma: no cover - r == 0 returns


class FenceIndex:
    """Fences by id and by H3 cell (module docstring). ``resolution`` (0 to 15): the finest resolution of a fence's
    cells; ``max_cells`` (at least 7): the most cells of one fence."""

    def __init__(self, resolution: int = 8, max_cells: int = 500) -> None:
        if not 0 <= resolution <= 15:
            raise ValueError(f"resolution {resolution} is not an H3 resolution (0 to 15)")
        if max_cells < 7:
            raise ValueError(f"max_cells must be at least 7, not {max_cells}")
        self.resolution = resolution
        self.max_cells = max_cells
        self._fences: dict[str, Fence] = {}
        self._cells_of: dict[str, list[str]] = {}  # fence id → its cells
        self._by_cell: dict[str, set[str]] = {}  # cell (any resolution: H3 strings say theirs) → fence ids
        self._resolutions: Counter[int] = Counter()  # resolution → fences indexed at it
        self._lookup: tuple[int, ...] = ()  # the resolutions in use, finest first
        self.cell_entries = 0

    def __len__(self) -> int:
        return len(self._fences)

    def __contains__(self, fence_id: object) -> bool:
        return fence_id in self._fences

    def get(self, fence_id: str) -> Fence | None:
        """The fence, or ``None``."""
        return self._fences.get(fence_id)

    def fences(self) -> list[Fence]:
        """Every fence (in no particular order)."""
        return list(self._fences.values())

    @property
    def resolutions(self) -> tuple[int, ...]:
        """The resolutions some fence is indexed at, finest first (a lookup reads one cell at each)."""
        return self._lookup

    def add(self, fence: Fence) -> int:
        """Index ``fence`` (replacing a fence of the same id); returns its number of cells."""
        self.remove(fence.fence_id)
        r, cells = fence_cells(fence.lat_deg, fence.lng_deg, fence.radius_m, self.resolution, self.max_cells)
        for cell in cells:
            self._by_cell.setdefault(cell, set()).add(fence.fence_id)
        self._fences[fence.fence_id] = fence
        self._cells_of[fence.fence_id] = cells
        self.cell_entries += len(cells)
        self._resolutions[r] += 1
        if self._resolutions[r] == 1:
            self._lookup = tuple(sorted(self._resolutions, reverse=True))
        return len(cells)

    def remove(self, fence_id: str) -> Fence | None:
        """Take the fence out; returns it, or ``None`` when there was none."""
        fence = self._fences.pop(fence_id, None)
        if fence is None:
            return None
        cells = self._cells_of.pop(fence_id)
        for cell in cells:
            members = self._by_cell[cell]
            members.discard(fence_id)
            if not members:
                del self._by_cell[cell]
        self.cell_entries -= len(cells)
        r = h3.get_resolution(cells[0])
        self._resolutions[r] -= 1
        if self._resolutions[r] == 0:
            del self._resolutions[r]
            self._lookup = tuple(sorted(self._resolutions, reverse=True))
        return fence

    def candidates(self, lat_deg: float, lng_deg: float) -> list[Fence]:
        """The fences indexed in the point's cells (degrees): every fence containing the point, and some others."""
        found: list[Fence] = []
        for r in self._lookup:
            members = self._by_cell.get(h3.latlng_to_cell(lat_deg, lng_deg, r))
            if members:
                found.extend(self._fences[fence_id] for fence_id in members)
        return found

    def containing(self, lat_deg: float, lng_deg: float) -> tuple[list[Fence], int]:
        """The fences containing the point (degrees), by fence id, and how many candidates were measured."""
        candidates = self.candidates(lat_deg, lng_deg)
        inside = [fence for fence in candidates if fence.contains(lat_deg, lng_deg)]
        inside.sort(key=lambda fence: fence.fence_id)
        return inside, len(candidates)
