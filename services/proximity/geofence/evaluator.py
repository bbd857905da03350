"""The geofence transition logic: positions and entity states in, ENTER/EXIT events and new states out (no I/O).

Seed 001 #29 (shared/seeds/001_58dfc580020147d2.txt line 51), "Proximity Service | ... geofencing, real-time
location updates". Per entity the service keeps an :class:`EntityState`: the sequence of its last applied position
and the fences it is inside (with each fence's generation). For each position of a batch, in the batch's order:

- a sequence not above the entity's last is **stale**: skipped, no event, state unchanged (a retried batch, or a
  device resending positions it is unsure were applied, changes nothing: no event is repeated);
- else the fences containing the point now are found through the fence index (exact test:
  :func:`services.proximity.contract.inside_fence`); a fence in them and not in the state gives ENTER, a fence in
  the state (still existing, same generation) and not in them gives EXIT; one position's events are ordered by
  fence id, and numbered consecutively from the next global sequence. A fence deleted since (or deleted and
  created again: another generation) is dropped from the state silently: the fence is gone, not left. A fence
  created while the entity is inside it gives ENTER with the entity's next position.

:meth:`Evaluator.evaluate` changes nothing: it returns an :class:`Evaluation` that the owner writes to disk first
and applies to memory after (:class:`~.geofences.Geofences`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from casemesh.proximity.v1 import geofence_pb2, proximity_pb2

from ...geo.validation import latlng
from .fences import FenceIndex

ENTER = geofence_pb2.FENCE_TRANSITION_ENTER
EXIT = geofence_pb2.FENCE_TRANSITION_EXIT
TRANSITION_NAMES = {ENTER: "ENTER", EXIT: "EXIT"}


@dataclass(frozen=True, slots=True)
class Position:
    """One position of an entity as its device sent it: point in degrees, ``sent_at_unix_ms`` (0: unknown)."""

    entity_id: str
    sequence: int
    lat_deg: float
    lng_deg: float
    sent_at_unix_ms: int = 0

    def to_proto(self) -> proximity_pb2.EntityPosition:
        """The ``casemesh.proximity.v1.EntityPosition`` of this position."""
        return proximity_pb2.EntityPosition(entity_id=self.entity_id, sequence=self.sequence,
                                            point=latlng(self.lat_deg, self.lng_deg),
                                            sent_at_unix_ms=self.sent_at_unix_ms)


@dataclass(frozen=True, slots=True)
class EntityState:
    """An entity's state: the sequence of its last applied position and the fences it is inside, as
    ``(fence_id, generation)`` pairs sorted by fence id."""

    last_sequence: int
    inside: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class FenceEvent:
    """One event: its global ``sequence``, the fence, ``transition`` (:data:`ENTER` or :data:`EXIT`), the position
    that caused it and when the service wrote it (ms since the Unix epoch)."""

    sequence: int
    fence_id: str
    transition: int
    position: Position
    recorded_at_unix_ms: int

    def to_proto(self) -> geofence_pb2.FenceEvent:
        """The ``casemesh.proximity.v1.FenceEvent`` of this event."""
        return geofence_pb2.FenceEvent(sequence=self.sequence, fence_id=self.fence_id, transition=self.transition,
                                       position=self.position.to_proto(),
                                       recorded_at_unix_ms=self.recorded_at_unix_ms)


@dataclass(slots=True)
class Evaluation:
    """What one batch does: the new ``states`` of the entities of its applied positions, the ``events`` (numbered
    from the sequence given to :meth:`Evaluator.evaluate`), the counts of ``applied`` and ``stale`` positions, and
    the fences measured for each applied position (``candidates``)."""

    states: dict[str, EntityState] = field(default_factory=dict)
    events: list[FenceEvent] = field(default_factory=list)
    applied: int = 0
    stale: int = 0
    candidates: list[int] = field(default_factory=list)


class Evaluator:
    """Turns positions into events against ``index`` (module docstring)."""

    def __init__(self, index: FenceIndex) -> None:
        self.index = index

    def evaluate(self, positions: Sequence[Position], state_of: Callable[[str], EntityState | None],
                 first_sequence: int, recorded_at_unix_ms: int) -> Evaluation:
        """Evaluate ``positions`` in order against the entities' states (``state_of(entity_id)``, ``None`` for an
        entity never seen) and the fences now; events are numbered from ``first_sequence``. An entity appearing
        twice is evaluated against its state from the first. Changes nothing."""
        result = Evaluation()
        sequence = first_sequence
        index = self.index
        for position in positions:
            previous = result.states.get(position.entity_id) or state_of(position.entity_id)
            if previous is not None and position.sequence <= previous.last_sequence:
                result.stale += 1
                continue
            inside, measured = index.containing(position.lat_deg, position.lng_deg)
            now = {fence.fence_id: fence.generation for fence in inside}
            before: dict[str, int] = {}
            if previous is not None:
                for fence_id, generation in previous.inside:
                    fence = index.get(fence_id)
                    if fence is not None and fence.generation == generation:  # else gone: dropped, no EXIT
                        before[fence_id] = generation
            for fence_id in sorted(now.keys() ^ before.keys()):
                result.events.append(FenceEvent(sequence, fence_id, ENTER if fence_id in now else EXIT, position,
                                                recorded_at_unix_ms))
                sequence += 1
            result.states[position.entity_id] = EntityState(position.sequence, tuple(now.items()))
            result.applied += 1
            result.candidates.append(measured)
        return result
