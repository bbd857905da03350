"""ecommerce-cart's own metrics (``casemesh_ecommerce_cart_*``), seed 000 "E-commerce Platform"
(shared/seeds/000_69ff90d97cf45f9b.txt line 520: "Cart Service: Redis for session, real-time inventory reservation").

- ``casemesh_ecommerce_cart_set_item_total{outcome}``: SetItem calls past validation, by outcome: ``set`` (a line
  reserved and set), ``removed`` (quantity 0: the line released and removed, or there was none), ``out_of_stock``,
  ``not_found`` (no such product), ``cart_full``, ``currency_mismatch``, ``unavailable`` (the catalogue or the
  inventory did not answer: the cart unchanged), ``refused`` (another refusal by a dependency);
- ``casemesh_ecommerce_cart_carts`` (gauge): carts with at least one line (in memory: 0 at start);
- ``casemesh_ecommerce_cart_lines`` (gauge): lines in every cart;
- ``casemesh_ecommerce_cart_release_failures_total{kind}``: releases that did not answer, whose units stay held until
  the reservation's TTL gives them back: ``replaced`` (the previous reservation of a line set to a new quantity, after
  the new one was held) or ``abandoned`` (a new reservation whose Reserve got no answer, or whose SetItem was
  cancelled while it waited for one, so it may be held for no line).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

SET_ITEMS = Counter("casemesh_ecommerce_cart_set_item", "SetItem calls past validation, by outcome.", ["outcome"])
CARTS = Gauge("casemesh_ecommerce_cart_carts", "Carts with at least one line.")
LINES = Gauge("casemesh_ecommerce_cart_lines", "Lines in every cart.")
RELEASE_FAILURES = Counter("casemesh_ecommerce_cart_release_failures", "Releases that did not answer (their units "
                           "held until the reservation's TTL), by kind (replaced, abandoned).", ["kind"])
for _kind in ("replaced", "abandoned"):  # zero, not "No data", until the first failure
    RELEASE_FAILURES.labels(_kind)
