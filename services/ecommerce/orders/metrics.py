"""ecommerce-orders' own metrics (``casemesh_ecommerce_orders_*``): the checkout saga seen from inside.

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 496-585: "Latency: ... 500ms
for checkout", "Order Service: Saga pattern for distributed transactions").

- ``casemesh_ecommerce_orders_checkouts_total{outcome,reason}``: orders decided (by a call or by the recovery; a replay
  is not counted again): ``outcome`` ``confirmed`` (``reason`` ``none``) or ``failed`` (``out_of_stock``,
  ``reservation_expired``, ``payment_declined``);
- ``casemesh_ecommerce_orders_saga_step_seconds{step}`` (histogram): each run of a saga step, whatever its outcome, in
  seconds: ``reserve`` (hold every line again), ``pay`` (Authorize), ``commit`` (hold again if needed, Commit every
  line), ``capture``, ``compensate`` (Void, Release, Restock);
- ``casemesh_ecommerce_orders_compensations_total{kind}``: compensating calls that undid something: ``release`` (a held
  reservation given back), ``void`` (an authorisation released), ``restock`` (a line a failed order had committed,
  given back to the stock: the commit is not all-or-nothing across lines, :mod:`.saga`);
- ``casemesh_ecommerce_orders_restocked_units_total``: units of those restocked lines;
- ``casemesh_ecommerce_orders_idempotent_replays_total``: Checkout calls answered from a decided order of their key;
- ``casemesh_ecommerce_orders_recovered_total{outcome}``: PENDING orders the background recovery took up: ``confirmed``,
  ``failed``, ``unavailable`` (a dependency still unreachable: left for the next look), ``error`` (logged, left
  PENDING);
- ``casemesh_ecommerce_orders_pending`` (gauge): orders written PENDING and not yet decided (set from the store at
  start);
- ``casemesh_ecommerce_orders_dependency_call_seconds{method}`` (histogram) and
  ``casemesh_ecommerce_orders_dependency_calls_total{method,code}``: each attempt of a call to ecommerce-cart,
  ecommerce-inventory or payments-gateway (``GetCart``, ``Reserve``, ``Authorize``, ...), by gRPC status code;
- ``casemesh_ecommerce_orders_write_seconds`` (histogram): one group commit to the SQLite file, fsync included.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CHECKOUTS = Counter("casemesh_ecommerce_orders_checkouts", "Orders decided, by outcome and failure reason.",
                    ["outcome", "reason"])
#: Seconds: a step is one or two calls of a few ms each; an Authorize may fail over (seconds).
STEP_BUCKETS = (0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
STEP_SECONDS = Histogram("casemesh_ecommerce_orders_saga_step_seconds", "Saga steps, in seconds.", ["step"],
                         buckets=STEP_BUCKETS)
COMPENSATIONS = Counter("casemesh_ecommerce_orders_compensations", "Compensating calls that undid a step, by kind.",
                        ["kind"])
RESTOCKED_UNITS = Counter("casemesh_ecommerce_orders_restocked_units", "Units a failed order had committed, given "
                          "back to the stock.")
REPLAYS = Counter("casemesh_ecommerce_orders_idempotent_replays", "Checkouts answered from a decided order of their "
                  "idempotency key.")
RECOVERED = Counter("casemesh_ecommerce_orders_recovered", "PENDING orders taken up by the background recovery, by "
                    "outcome.", ["outcome"])
for _outcome in ("confirmed", "failed", "unavailable", "error"):  # zero, not "No data", until the first recovery
    RECOVERED.labels(_outcome)
PENDING = Gauge("casemesh_ecommerce_orders_pending", "Orders written PENDING and not yet decided.")
CALL_SECONDS = Histogram("casemesh_ecommerce_orders_dependency_call_seconds", "Calls to the cart, the inventory and "
                         "the payment gateway, in seconds.", ["method"], buckets=STEP_BUCKETS)
CALLS = Counter("casemesh_ecommerce_orders_dependency_calls", "Calls to the cart, the inventory and the payment "
                "gateway, by status code.", ["method", "code"])
#: Seconds: a group commit with fsync takes about a millisecond on an SSD, tens on a loaded disk.
WRITE_BUCKETS = (0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
WRITE_SECONDS = Histogram("casemesh_ecommerce_orders_write_seconds", "One group commit to the orders' SQLite file, "
                          "fsync included, in seconds.", buckets=WRITE_BUCKETS)
