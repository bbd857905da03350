"""ecommerce-inventory's own metrics (``casemesh_ecommerce_inventory_*``), seed 000 "E-commerce Platform (like
Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt line 529: "Inventory reservation: Optimistic locking with TTL").

- ``casemesh_ecommerce_inventory_reservations_total{outcome}``: what happened to reservations: ``held`` (Reserve held
  units, new or anew after an expiry), ``extended`` (Reserve of a HELD one moved its expiry), ``out_of_stock``
  (Reserve refused: fewer units available), ``committed``, ``released``, ``expired`` (its TTL ran out);
- ``casemesh_ecommerce_inventory_reservation_expiries_total{trigger}``: the TTL mechanism's expiries, by who noticed
  them: ``request`` (a request expired the due reservations before reading availability), ``sweep`` (the background
  sweeper), ``start`` (expired while the service was down, expired when it started); their sum is the ``expired``
  outcome above;
- ``casemesh_ecommerce_inventory_units_held`` (gauge): units held by HELD reservations, all products (set at start);
- ``casemesh_ecommerce_inventory_reservations_held`` (gauge): HELD reservations (set at start);
- ``casemesh_ecommerce_inventory_units_restocked_total``: units put into stock by Restock (not its retries);
- ``casemesh_ecommerce_inventory_commit_seconds`` (histogram): one group commit to the SQLite file, fsync included,
  in seconds;
- ``casemesh_ecommerce_inventory_writes_per_commit`` (histogram): writes (reservation changes, restocks) per group
  commit.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RESERVATIONS = Counter("casemesh_ecommerce_inventory_reservations", "Reservation outcomes (held, extended, "
                       "out_of_stock, committed, released, expired).", ["outcome"])
EXPIRIES = Counter("casemesh_ecommerce_inventory_reservation_expiries", "HELD reservations expired because their TTL "
                   "ran out, by trigger (request, sweep, start).", ["trigger"])
UNITS_HELD = Gauge("casemesh_ecommerce_inventory_units_held", "Units held by HELD reservations, all products.")
RESERVATIONS_HELD = Gauge("casemesh_ecommerce_inventory_reservations_held", "HELD reservations.")
UNITS_RESTOCKED = Counter("casemesh_ecommerce_inventory_units_restocked", "Units put into stock by Restock.")
#: Seconds: a group commit with fsync takes about a millisecond on an SSD, tens on a loaded disk.
COMMIT_BUCKETS = (0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.0)
COMMIT_SECONDS = Histogram("casemesh_ecommerce_inventory_commit_seconds", "One group commit to the inventory's SQLite "
                           "file, fsync included, in seconds.", buckets=COMMIT_BUCKETS)
WRITES_PER_COMMIT = Histogram("casemesh_ecommerce_inventory_writes_per_commit", "Writes (reservation changes, "
                              "restocks) per group commit.", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))

for _outcome in ("held", "extended", "out_of_stock", "committed", "released", "expired"):
    RESERVATIONS.labels(_outcome)
for _trigger in ("request", "sweep", "start"):
    EXPIRIES.labels(_trigger)


def held(units: int, reservations: int) -> None:
    """Set the held gauges (at start, and on every change of an inventory: tests run several in one process)."""
    UNITS_HELD.set(units)
    RESERVATIONS_HELD.set(reservations)
