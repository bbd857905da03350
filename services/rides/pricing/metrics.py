"""rides-pricing's own metrics (``casemesh_rides_pricing_*``).

- ``casemesh_rides_pricing_quotes_total``: quotes issued;
- ``casemesh_rides_pricing_surge_multiplier`` (histogram): the multiplier of each quote issued, bucketed at the
  ladder's steps (1.0, 1.2, 1.5, 2.0, 2.5, and above for other ladders);
- ``casemesh_rides_pricing_surge_cells{multiplier}`` (gauge): cells at each multiplier after the last
  recomputation (cells with demand or supply);
- ``casemesh_rides_pricing_surge_recomputations_total``: recomputations done;
- ``casemesh_rides_pricing_surge_errors_total``: recomputations that could not get the supply from rides-location
  (they kept the last supply);
- ``casemesh_rides_pricing_quotes_live`` (gauge): unexpired quotes held (set at each quote and recomputation:
  the metrics endpoint never touches the store).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

QUOTES = Counter("casemesh_rides_pricing_quotes", "Quotes issued.")
SURGE_MULTIPLIER = Histogram("casemesh_rides_pricing_surge_multiplier", "Surge multiplier of each quote issued.",
                             buckets=(1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 5.0))
SURGE_CELLS = Gauge("casemesh_rides_pricing_surge_cells", "Surge cells at each multiplier after the last "
                    "recomputation.", ["multiplier"])
RECOMPUTATIONS = Counter("casemesh_rides_pricing_surge_recomputations", "Surge recomputations.")
SURGE_ERRORS = Counter("casemesh_rides_pricing_surge_errors", "Surge recomputations without fresh supply "
                       "(rides-location unreachable: the last supply was kept).")
QUOTES_LIVE = Gauge("casemesh_rides_pricing_quotes_live", "Unexpired quotes held.")


def multiplier_label(multiplier: float) -> str:
    """The ``multiplier`` label of a multiplier: ``"1.0"``, ``"1.2"``, ``"2.5"``."""
    return f"{multiplier:.1f}" if round(multiplier, 1) == multiplier else f"{multiplier:g}"
