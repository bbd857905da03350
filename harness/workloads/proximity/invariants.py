"""The invariants the proximity workload checks from the client side: fence events exactly once, and search results
that keep the contract.

**fence_events_exactly_once** (``FENCE_EVENTS``). The property geofencing exists to protect (seed 001 #29
"Proximity Service", shared/seeds/001_58dfc580020147d2.txt line 51: "geofencing, real-time location updates";
geofence.proto: "an event is neither lost nor repeated, across retries and restarts"). A client can compute every
event it should see: the contract fixes the rule (:func:`casemesh.services.proximity.contract.inside_fence`), each
entity starts outside every fence, and a position is evaluated once, in its entity's sequence order (stale ones are
skipped). So the workload replays every acknowledged position of each of its entities, in sequence order, against
the seeded fences (:class:`Replay`): each fence the entity is inside now and was not before is an ENTER, each it
was inside and is not now an EXIT, keyed ``(fence_id, entity_id, position sequence, transition)``. At the end of the
run (:meth:`FenceLedger.verdict`) the multiset of events its watchers received must equal that expected multiset:

- an expected event not received is **lost** (one sample with code ``DATA_LOSS`` each);
- an event received more often than expected is **duplicated** (``DUPLICATE`` per extra copy);
- an event that no replayed position causes is **unexpected** (``UNEXPECTED`` each: a wrong transition, a wrong
  fence, an event of a position never sent);
- every expected event received exactly once is one ``OK`` sample.

Positions whose batch was never acknowledged (still unacknowledged when the run's end stopped waiting) may or may
not have been applied: the replay continues through them, and the events they cause may be received once or not at
all (neither lost nor unexpected), never twice. The measure's latency is 0: it is a count.

**search_results** (``SEARCH_RESULTS``): one sample per ``search`` or ``nearby`` journey, ``OK`` when every page
keeps the contract (:func:`check_places`, :func:`check_entities`), ``DATA_LOSS`` otherwise (with a warning naming
the first breach).
"""

from __future__ import annotations

import logging
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from casemesh.proximity.v1 import geofence_pb2
from casemesh.services.proximity.contract import distance_m, inside_fence

from .seeding import FenceSpec

log = logging.getLogger("casemesh.workloads.proximity")

FENCE_EVENTS = "fence_events_exactly_once"
SEARCH_RESULTS = "search_results"
OK = "OK"
DATA_LOSS = "DATA_LOSS"
DUPLICATE = "DUPLICATE"
UNEXPECTED = "UNEXPECTED"

ENTER = geofence_pb2.FENCE_TRANSITION_ENTER
EXIT = geofence_pb2.FENCE_TRANSITION_EXIT
#: An event as compared: (fence_id, entity_id, position sequence, transition).
EventKey = tuple[str, str, int, int]
#: Grid cell size of :class:`FenceSet`'s prefilter, degrees of latitude (about 550 m) and of longitude (440 m).
CELL_DEG = 0.005
#: Slack added around a fence's bounding box in the prefilter, metres (the exact test is ``inside_fence``).
MARGIN_M = 5.0
#: Metres the distance a service reports may differ from the client's own computation of it.
DISTANCE_TOLERANCE_M = 0.5


def event_key(event: geofence_pb2.FenceEvent) -> EventKey:
    """A received event's key."""
    return (event.fence_id, event.position.entity_id, event.position.sequence, event.transition)


class FenceSet:
    """The fences a client replays positions against: :meth:`containing` is every fence whose circle holds a point
    (exactly :func:`contract.inside_fence`), found through a grid of :data:`CELL_DEG` cells over the fences'
    bounding boxes."""

    def __init__(self, fences: Iterable[FenceSpec]):
        self.fences = {f.fence_id: f for f in fences}
        self._grid: dict[tuple[int, int], list[FenceSpec]] = defaultdict(list)
        for fence in self.fences.values():
            reach_lat = (fence.radius_m + MARGIN_M) / (math.pi * 6_371_007.2 / 180)
            reach_lng = reach_lat / max(math.cos(math.radians(fence.lat_deg)), 1e-6)
            for i in range(self._cell(fence.lat_deg - reach_lat), self._cell(fence.lat_deg + reach_lat) + 1):
                for j in range(self._cell(fence.lng_deg - reach_lng), self._cell(fence.lng_deg + reach_lng) + 1):
                    self._grid[(i, j)].append(fence)

    @staticmethod
    def _cell(deg: float) -> int:
        return math.floor(deg / CELL_DEG)

    def __len__(self) -> int:
        return len(self.fences)

    def containing(self, lat_deg: float, lng_deg: float) -> frozenset[str]:
        """The ids of the fences the point is inside."""
        candidates = self._grid.get((self._cell(lat_deg), self._cell(lng_deg)), ())
        return frozenset(f.fence_id for f in candidates
                         if inside_fence(f.lat_deg, f.lng_deg, f.radius_m, lat_deg, lng_deg))


@dataclass
class _EntityState:
    sequence: int = 0
    inside: frozenset[str] = frozenset()


class Replay:
    """Entities' fence states as the contract defines them, position by position (no I/O).

    Each entity starts outside every fence, not seen before. :meth:`apply` takes one position: stale (sequence not
    above the entity's last) → no events; else the transitions it causes, ENTERs then EXITs, each sorted by fence id.
    """

    def __init__(self, fences: FenceSet):
        self.fences = fences
        self._entities: dict[str, _EntityState] = {}

    def apply(self, entity_id: str, sequence: int, lat_deg: float, lng_deg: float) -> list[EventKey]:
        state = self._entities.get(entity_id)
        if state is None:
            state = self._entities[entity_id] = _EntityState()
        if sequence <= state.sequence:
            return []
        now = self.fences.containing(lat_deg, lng_deg)
        events = [(f, entity_id, sequence, ENTER) for f in sorted(now - state.inside)]
        events += [(f, entity_id, sequence, EXIT) for f in sorted(state.inside - now)]
        state.sequence = sequence
        state.inside = now
        return events

    def copy(self) -> Replay:
        """An independent replay in the same state (to play positions that may or may not have been applied)."""
        other = Replay(self.fences)
        other._entities = {e: _EntityState(s.sequence, s.inside) for e, s in self._entities.items()}
        return other

    def inside(self, entity_id: str) -> frozenset[str]:
        """The fences ``entity_id`` is inside after its last position (empty when never seen)."""
        state = self._entities.get(entity_id)
        return state.inside if state is not None else frozenset()


def expected_events(fences: FenceSet, positions: Iterable[tuple[str, int, float, float]]) -> Counter[EventKey]:
    """The events ``positions`` (``(entity_id, sequence, lat_deg, lng_deg)``, each entity's in sequence order) cause."""
    replay = Replay(fences)
    out: Counter[EventKey] = Counter()
    for entity_id, sequence, lat, lng in positions:
        out.update(replay.apply(entity_id, sequence, lat, lng))
    return out


@dataclass
class Verdict:
    """The comparison of received events with expected ones (counts of events; ``examples`` a few keys of each kind)."""

    expected: int = 0
    matched: int = 0
    lost: int = 0
    duplicated: int = 0
    unexpected: int = 0
    uncertain_seen: int = 0
    examples: dict[str, list[EventKey]] = field(default_factory=dict)

    @property
    def holds(self) -> bool:
        """True when nothing was lost, duplicated or unexpected."""
        return not (self.lost or self.duplicated or self.unexpected)

    def samples(self) -> list[str]:
        """The invariant's sample codes: ``OK`` per expected event received once, and one per breach."""
        return [OK] * self.matched + [DATA_LOSS] * self.lost + [DUPLICATE] * self.duplicated + [UNEXPECTED] * self.unexpected


def compare(expected: Counter[EventKey], received: Counter[EventKey],
            optional: Counter[EventKey] | None = None, examples: int = 5) -> Verdict:
    """Received against expected events (multisets). ``optional`` events (caused by positions that may not have been
    applied) may be received up to their count on top of the expected ones, neither lost nor unexpected."""
    optional = optional or Counter()
    verdict = Verdict(expected=sum(expected.values()))
    kinds: dict[str, list[EventKey]] = defaultdict(list)
    for key, count in expected.items():
        got = received.get(key, 0)
        verdict.matched += min(got, count)
        if got < count:
            verdict.lost += count - got
            kinds["lost"].append(key)
    for key, got in received.items():
        allowed = expected.get(key, 0) + optional.get(key, 0)
        if key in optional:
            verdict.uncertain_seen += min(max(got - expected.get(key, 0), 0), optional[key])
        if got <= allowed:
            continue
        if allowed == 0:
            verdict.unexpected += got
            kinds["unexpected"].append(key)
        else:
            verdict.duplicated += got - allowed
            kinds["duplicated"].append(key)
    verdict.examples = {kind: sorted(keys)[:examples] for kind, keys in kinds.items()}
    return verdict


class FenceLedger:
    """What one load process sent and received of fence events: the expected ones (replayed as batches are
    acknowledged), the received ones, and the verdict at the end.

    ``entities`` are this process's own: received events of other entities (probes, other processes', earlier runs')
    are not counted.
    """

    def __init__(self, fences: FenceSet, entities: Iterable[str]):
        self.fences = fences
        self.entities = frozenset(entities)
        self.replay = Replay(fences)
        self.expected: Counter[EventKey] = Counter()
        self.received: Counter[EventKey] = Counter()
        self.acked_positions = 0

    def acknowledged(self, positions: Iterable[tuple[str, int, float, float]]) -> None:
        """Positions of an acknowledged batch (``(entity_id, sequence, lat_deg, lng_deg)``), in the order sent."""
        for entity_id, sequence, lat, lng in positions:
            self.acked_positions += 1
            self.expected.update(self.replay.apply(entity_id, sequence, lat, lng))

    def saw(self, event: geofence_pb2.FenceEvent) -> bool:
        """A received event; True when it is one of this process's entities' (counted), False otherwise."""
        if event.position.entity_id not in self.entities:
            return False
        self.received[event_key(event)] += 1
        return True

    def optional(self, unacknowledged: Iterable[tuple[str, int, float, float]]) -> Counter[EventKey]:
        """The events positions never acknowledged would cause after the acknowledged ones (each entity's in order)."""
        replay = self.replay.copy()
        out: Counter[EventKey] = Counter()
        for entity_id, sequence, lat, lng in unacknowledged:
            out.update(replay.apply(entity_id, sequence, lat, lng))
        return out

    def caught_up(self) -> bool:
        """True once every expected event has been received (as often as expected)."""
        received = self.received
        return all(received.get(key, 0) >= count for key, count in self.expected.items())

    def missing(self) -> int:
        """Expected events not received yet."""
        received = self.received
        return sum(max(count - received.get(key, 0), 0) for key, count in self.expected.items())

    def verdict(self, unacknowledged: Iterable[tuple[str, int, float, float]] = ()) -> Verdict:
        """Received against expected (module docstring)."""
        return compare(self.expected, self.received, self.optional(unacknowledged))


# search results ---------------------------------------------------------------------------------------------------

def check_places(pages: Sequence[Sequence], center: tuple[float, float], radius_m: float, category: int,
                 page_size: int) -> str | None:
    """The first way ``pages`` (each a list of PlaceHit, in order) of one search break the contract, or None:
    a page longer than ``page_size``; a hit beyond ``radius_m``, or whose ``distance_m`` is not the distance from
    ``center`` to its point; a hit of another category (when ``category`` is set); hits not nearest first (ties by
    place id) across the pages; a place twice."""
    seen: set[str] = set()
    last: tuple[float, str] | None = None
    for number, page in enumerate(pages):
        if len(page) > page_size:
            return f"page {number} holds {len(page)} places, more than page_size {page_size}"
        for hit in page:
            place = hit.place
            if hit.distance_m > radius_m + DISTANCE_TOLERANCE_M:
                return f"{place.place_id} at {hit.distance_m:.1f} m is beyond the radius {radius_m:g} m"
            own = distance_m(center[0], center[1], place.point.lat_deg, place.point.lng_deg)
            if abs(own - hit.distance_m) > DISTANCE_TOLERANCE_M:
                return f"{place.place_id} reported at {hit.distance_m:.2f} m, but its point is {own:.2f} m away"
            if category and place.category != category:
                return f"{place.place_id} has category {place.category}, the search asked for {category}"
            if place.place_id in seen:
                return f"{place.place_id} returned twice"
            seen.add(place.place_id)
            order = (hit.distance_m, place.place_id)
            if last is not None and order < last:
                return f"{place.place_id} at {hit.distance_m:.2f} m comes after {last[1]} at {last[0]:.2f} m"
            last = order
    return None


def check_entities(entities: Sequence, center: tuple[float, float], radius_m: float, limit: int) -> str | None:
    """The first way a FindNearbyEntities answer breaks the contract, or None: more than ``limit``; an entity beyond
    ``radius_m`` or whose ``distance_m`` is not its point's distance from ``center``; not nearest first; twice."""
    if len(entities) > limit:
        return f"{len(entities)} entities, more than the limit {limit}"
    seen: set[str] = set()
    last = -1.0
    for found in entities:
        position = found.position
        if found.distance_m > radius_m + DISTANCE_TOLERANCE_M:
            return f"{position.entity_id} at {found.distance_m:.1f} m is beyond the radius {radius_m:g} m"
        own = distance_m(center[0], center[1], position.point.lat_deg, position.point.lng_deg)
        if abs(own - found.distance_m) > DISTANCE_TOLERANCE_M:
            return f"{position.entity_id} reported at {found.distance_m:.2f} m, but its point is {own:.2f} m away"
        if found.distance_m < last:
            return f"{position.entity_id} at {found.distance_m:.2f} m comes after one at {last:.2f} m"
        if position.entity_id in seen:
            return f"{position.entity_id} returned twice"
        seen.add(position.entity_id)
        last = found.distance_m
    return None


def record_verdict(verdict: Verdict, observe: Callable[[str], None]) -> None:
    """Record ``verdict``'s samples through ``observe(code)`` and log it (a warning with examples when it breaks)."""
    for code in verdict.samples():
        observe(code)
    if verdict.holds:
        log.info("proximity: fence events exactly once: %d expected, all received once (%d of the unacknowledged "
                 "positions' events received)", verdict.expected, verdict.uncertain_seen)
    else:
        log.warning("proximity: fence events NOT exactly once: %d expected, %d received once, %d lost, %d duplicated, "
                    "%d unexpected; examples (fence, entity, sequence, transition): %s", verdict.expected,
                    verdict.matched, verdict.lost, verdict.duplicated, verdict.unexpected, verdict.examples)
