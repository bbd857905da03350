"""food-restaurants' own metrics (``casemesh_food_restaurants_*``).

- ``casemesh_food_restaurants_restaurants`` (gauge): restaurants stored (loaded at start plus created since);
- ``casemesh_food_restaurants_created_total``: restaurants stored by CreateRestaurants (not the identical ones a
  retry sent again), counted once on disk;
- ``casemesh_food_restaurants_orders_prepared_total``: orders queued in a kitchen by PrepareOrder (a retried order
  id that was remembered is not counted again);
- ``casemesh_food_restaurants_orders_repeated_total``: PrepareOrder calls answered from the memory of recent orders
  (a retry: the same ready time, nothing queued);
- ``casemesh_food_restaurants_kitchen_wait_seconds`` (histogram): how long a new order waits for a free slot of its
  kitchen (start − now: the queue ahead of it; 0 when a slot was free, the ``le="0.0"`` bucket);
- ``casemesh_food_restaurants_prep_seconds`` (histogram): an order's preparation time once it has a slot
  (``prep_base_s + prep_per_item_s × items``, times the order's jitter);
- ``casemesh_food_restaurants_kitchen_slots_busy`` (gauge): kitchen slots preparing an order now, summed over every
  kitchen (refreshed every ``sweep_interval_s``);
- ``casemesh_food_restaurants_orders_preparing`` (gauge): orders in the kitchens not yet ready (preparing or waiting
  for a slot), summed over every kitchen (refreshed every ``sweep_interval_s``);
- ``casemesh_food_restaurants_commit_seconds`` (histogram): one group commit to the SQLite file, fsync included;
- ``casemesh_food_restaurants_load_seconds`` (gauge): how long the last start took to read every restaurant.

Times are real seconds (the workload scales a city's minutes into them: harness/profiles/food*.yaml).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RESTAURANTS = Gauge("casemesh_food_restaurants_restaurants", "Restaurants stored.")
CREATED = Counter("casemesh_food_restaurants_created", "Restaurants stored by CreateRestaurants (new ones only), once "
                  "on disk.")
ORDERS_PREPARED = Counter("casemesh_food_restaurants_orders_prepared", "Orders queued in a kitchen by PrepareOrder "
                          "(retries of a remembered order id not counted).")
ORDERS_REPEATED = Counter("casemesh_food_restaurants_orders_repeated", "PrepareOrder retries answered from the "
                          "memory of recent orders (nothing queued).")
#: Seconds: 0 (a slot was free) up to an hour's queue; scaled profiles prepare in seconds, real kitchens in minutes.
TIME_BUCKETS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1_200.0, 1_800.0,
                3_600.0)
KITCHEN_WAIT_SECONDS = Histogram("casemesh_food_restaurants_kitchen_wait_seconds", "Time a new order waits for a "
                                 "free kitchen slot (its start minus now), in seconds.", buckets=TIME_BUCKETS)
PREP_SECONDS = Histogram("casemesh_food_restaurants_prep_seconds", "Preparation time of an order once it has a "
                         "kitchen slot, in seconds.", buckets=TIME_BUCKETS[1:])
KITCHEN_SLOTS_BUSY = Gauge("casemesh_food_restaurants_kitchen_slots_busy", "Kitchen slots preparing an order now, "
                           "over every kitchen.")
ORDERS_PREPARING = Gauge("casemesh_food_restaurants_orders_preparing", "Orders in the kitchens not yet ready "
                         "(preparing or waiting for a slot), over every kitchen.")
#: Seconds: a group commit with fsync takes about a millisecond on an SSD, tens on a loaded disk.
COMMIT_SECONDS = Histogram("casemesh_food_restaurants_commit_seconds", "One group commit of restaurants to the "
                           "SQLite file, fsync included, in seconds.",
                           buckets=(0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0))
LOAD_SECONDS = Gauge("casemesh_food_restaurants_load_seconds", "Time the last start took to read every restaurant "
                     "from the SQLite file, in seconds.")
