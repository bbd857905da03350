"""hotel-inventory's own metrics (``casemesh_hotel_inventory_*``), seed 001 #20 (shared/seeds/001_58dfc580020147d2.txt
line 23: "Pessimistic locking, overbooking prevention").

- ``casemesh_hotel_inventory_holds_total{outcome}``: what became of holds: ``held`` (HoldRooms took the rooms; not the
  retries answered with a known hold), ``no_availability`` (refused: a night had fewer rooms available),
  ``conflict`` (optimistic lock mode: ABORTED by the version check), ``confirmed``, ``released``, ``expired``;
- ``casemesh_hotel_inventory_lock_wait_seconds`` (histogram, pessimistic lock mode): from a hold's, confirmation's,
  release's or expiry's first room-night lock request until it holds every lock of its nights, in seconds;
- ``casemesh_hotel_inventory_version_conflicts_total`` (optimistic lock mode): writes refused by the version check
  (a room-night's version moved between a hold's read and its write);
- ``casemesh_hotel_inventory_write_seconds`` (histogram): from a write's submission to its durable commit (the wait
  for the group commit included), in seconds;
- ``casemesh_hotel_inventory_commit_seconds`` (histogram): one group commit to the SQLite file, fsync included;
- ``casemesh_hotel_inventory_writes_per_commit`` (histogram): writes per group commit;
- ``casemesh_hotel_inventory_held_room_nights`` / ``..._booked_room_nights`` (gauges): rooms held (booked) summed
  over all nights (set at start and on every change);
- ``casemesh_hotel_inventory_room_types`` (gauge): room types on sale (set at start);
- ``casemesh_hotel_inventory_lock_mode{lock_mode}`` (gauge): 1 for the mode in use, 0 for the other (set at start).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HOLDS = Counter("casemesh_hotel_inventory_holds", "What became of holds (held, no_availability, conflict, "
                "confirmed, released, expired).", ["outcome"])
#: Seconds: nothing on a quiet night, a few fsyncs (ms each) behind a popular one.
LOCK_WAIT_BUCKETS = (0.000_1, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
LOCK_WAIT_SECONDS = Histogram("casemesh_hotel_inventory_lock_wait_seconds", "From the first room-night lock request "
                              "until every lock of the nights is held (pessimistic lock mode), in seconds.",
                              buckets=LOCK_WAIT_BUCKETS)
VERSION_CONFLICTS = Counter("casemesh_hotel_inventory_version_conflicts", "Writes refused by the version check "
                            "(optimistic lock mode).")
#: Seconds: a group commit with fsync takes about a millisecond on an SSD, tens on a loaded disk.
COMMIT_BUCKETS = (0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.0)
WRITE_SECONDS = Histogram("casemesh_hotel_inventory_write_seconds", "From a write's submission to its durable "
                          "commit, in seconds.", buckets=COMMIT_BUCKETS)
COMMIT_SECONDS = Histogram("casemesh_hotel_inventory_commit_seconds", "One group commit to the inventory's SQLite "
                           "file, fsync included, in seconds.", buckets=COMMIT_BUCKETS)
WRITES_PER_COMMIT = Histogram("casemesh_hotel_inventory_writes_per_commit", "Writes per group commit.",
                              buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))
HELD_ROOM_NIGHTS = Gauge("casemesh_hotel_inventory_held_room_nights", "Rooms held, summed over all nights.")
BOOKED_ROOM_NIGHTS = Gauge("casemesh_hotel_inventory_booked_room_nights", "Rooms booked, summed over all nights.")
ROOM_TYPES = Gauge("casemesh_hotel_inventory_room_types", "Room types on sale.")
LOCK_MODE = Gauge("casemesh_hotel_inventory_lock_mode", "1 for the lock mode in use, 0 for the other.", ["lock_mode"])


def started(lock_mode: str, modes: tuple[str, ...], room_types: int, held: int, booked: int) -> None:
    """Set the process-global gauges of an inventory that starts (tests run several in one process)."""
    for mode in modes:
        LOCK_MODE.labels(mode).set(1 if mode == lock_mode else 0)
    ROOM_TYPES.set(room_types)
    HELD_ROOM_NIGHTS.set(held)
    BOOKED_ROOM_NIGHTS.set(booked)
