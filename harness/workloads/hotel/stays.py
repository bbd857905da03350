"""The stays guests look for: which hotel, which room type, which nights, how many rooms (pure functions, no I/O).

Seed 001 #20 "Hotel Reservation" (shared/seeds/001_58dfc580020147d2.txt line 23: "1M bookings/day, Booking.com").
The seed gives no distribution; these are the workload's, each a parameter of the ``search`` and ``book`` journeys
(:class:`StayParams`):

- **everyday stays** (:func:`everyday_stay`): a hotel drawn by popularity, Zipf with ``zipf_exponent`` over the
  seeded order (a few city-centre hotels draw most guests), a room type uniform among its own; the first night
  ``lead`` days after the state's ``first_night``, ``lead`` exponential with mean ``lead_days_mean`` (most stays are
  booked weeks ahead, a tail months ahead), cut below ``horizon_days`` (how far ahead hotels sell); ``nights`` drawn
  with ``nights_weights`` (1, 2, ... nights: city breaks of one to three nights most, a week at most by default) and
  ``rooms`` with ``rooms_weights`` (one room almost always), at most the room type's room count;
- **festival stays** (:func:`festival_stay`, ``festival_share`` of guests): a festival hotel and room type drawn
  uniformly, the nights inside the festival's (``festival_nights`` from its Friday, chosen at connect: :mod:`.live`):
  the first night with ``festival_first_night_p`` (else a later one, uniform), to the festival's end with
  ``festival_full_stay_p`` (else 1 night to the end, uniform). Every festival stay overlaps the others: they compete
  for the same room-nights, the contention the ``hotel-peak-dates`` profile exists to make;
- **alternatives** (:func:`options`): what a guest tries when a stay shows too few rooms, in order: the same hotel's
  other room types (shuffled), then other hotels (everyday: by popularity; festival: the other festival hotels), each
  with a room type uniform among its own, for the same nights and rooms.
"""

from __future__ import annotations

import itertools
import math
import random
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from pydantic import Field, field_validator

from casemesh.services.hotel.contract import MAX_NIGHTS, MAX_ROOMS_PER_STAY

from ..base import Params
from .seeding import Hotel, RoomTypePlan


class StayParams(Params):
    """The stays a journey's guests look for (module docstring); the base of ``search`` and ``book``'s params."""

    zipf_exponent: float = Field(default=0.8, ge=0, le=5,
                                 description="hotel popularity: rank r weighs 1 / r**exponent (0: uniform)")
    lead_days_mean: float = Field(default=30.0, gt=0, le=3_650,
                                  description="mean days from first_night to the first night (exponential)")
    horizon_days: int = Field(default=180, ge=1, le=3_650, description="first nights stay below this many days ahead")
    nights_weights: tuple[float, ...] = Field(default=(35, 30, 15, 8, 5, 4, 3), min_length=1, max_length=MAX_NIGHTS,
                                              description="relative weights of 1, 2, ... nights")
    rooms_weights: tuple[float, ...] = Field(default=(90, 8, 2), min_length=1, max_length=MAX_ROOMS_PER_STAY,
                                             description="relative weights of 1, 2, ... rooms")
    festival_share: float = Field(default=0.0, ge=0, le=1,
                                  description="share of guests after the festival's nights (seed festival_hotels > 0)")
    festival_first_night_p: float = Field(default=0.75, ge=0, le=1,
                                          description="share of festival stays from the festival's first night")
    festival_full_stay_p: float = Field(default=0.7, ge=0, le=1,
                                        description="share of festival stays to the festival's last night")

    @field_validator("nights_weights", "rooms_weights")
    @classmethod
    def _weights(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(w < 0 or not math.isfinite(w) for w in value) or sum(value) <= 0:
            raise ValueError("weights must be finite, non-negative and not all 0")
        return value


@dataclass(frozen=True)
class Stay:
    """A stay: ``rooms`` rooms of a room type for ``nights`` nights from ``check_in``."""

    hotel: Hotel
    room_type: RoomTypePlan
    check_in: date
    nights: int
    rooms: int
    festival: bool = False

    def at(self, hotel: Hotel, room_type: RoomTypePlan) -> Stay:
        """The same nights and rooms (at most the room type's) at another hotel or room type."""
        return Stay(hotel, room_type, self.check_in, self.nights, min(self.rooms, room_type.rooms), self.festival)


def zipf_cdf(count: int, exponent: float) -> list[float]:
    """The cumulative weights of ranks 1 .. ``count``, rank r weighing ``1 / r**exponent``."""
    return list(itertools.accumulate(1.0 / (r ** exponent) for r in range(1, count + 1)))


def draw_rank(cdf: Sequence[float], rng: random.Random) -> int:
    """A 0-based rank drawn from ``cdf`` (:func:`zipf_cdf`)."""
    return min(bisect_left(cdf, rng.random() * cdf[-1]), len(cdf) - 1)


def draw_count(rng: random.Random, weights: Sequence[float]) -> int:
    """1, 2, ... drawn with ``weights``."""
    return rng.choices(range(1, len(weights) + 1), weights=weights)[0]


def everyday_stay(rng: random.Random, params: StayParams, hotels: Sequence[Hotel], cdf: Sequence[float],
                  first_night: date) -> Stay:
    """An everyday stay (module docstring); ``cdf`` is :func:`zipf_cdf` over ``hotels``."""
    hotel = hotels[draw_rank(cdf, rng)]
    room_type = rng.choice(hotel.room_types)
    lead = min(int(rng.expovariate(1.0 / params.lead_days_mean)), params.horizon_days - 1)
    rooms = min(draw_count(rng, params.rooms_weights), room_type.rooms)
    return Stay(hotel, room_type, first_night + timedelta(days=lead), draw_count(rng, params.nights_weights), rooms)


def festival_stay(rng: random.Random, params: StayParams, hotels: Sequence[Hotel], friday: date, nights: int) -> Stay:
    """A festival stay inside the ``nights`` nights from ``friday`` (module docstring)."""
    hotel = rng.choice(hotels)
    room_type = rng.choice(hotel.room_types)
    offset = 0 if nights == 1 or rng.random() < params.festival_first_night_p else rng.randint(1, nights - 1)
    left = nights - offset
    length = left if rng.random() < params.festival_full_stay_p else rng.randint(1, left)
    rooms = min(draw_count(rng, params.rooms_weights), room_type.rooms)
    return Stay(hotel, room_type, friday + timedelta(days=offset), length, rooms, festival=True)


def options(rng: random.Random, stay: Stay, hotels: Sequence[Hotel], cdf: Sequence[float] | None,
            count: int) -> list[Stay]:
    """``stay`` and up to ``count - 1`` alternatives (module docstring): ``hotels`` are the ones the guest may turn
    to, drawn by ``cdf`` (:func:`zipf_cdf` over them) or uniformly when ``None``."""
    found = [stay]
    others = [r for r in stay.hotel.room_types if r != stay.room_type]
    rng.shuffle(others)
    found += [stay.at(stay.hotel, r) for r in others[:count - 1]]
    tried = {stay.hotel.hotel_id}
    candidates = [h for h in hotels if h.hotel_id not in tried]
    while len(found) < count and candidates:
        hotel = hotels[draw_rank(cdf, rng)] if cdf is not None else rng.choice(candidates)
        if hotel.hotel_id in tried:  # a popular hotel drawn again: draw again (rare unless few hotels are left)
            if len(tried) * 2 > len(hotels):
                hotel = rng.choice(candidates)
            else:
                continue
        tried.add(hotel.hotel_id)
        candidates.remove(hotel)
        found.append(stay.at(hotel, rng.choice(hotel.room_types)))
    return found
