"""trading-gateway's own metrics (``casemesh_trading_gateway_*``), seed 001 #08 (order entry, < 10 ms p99).

- ``casemesh_trading_gateway_orders_total{outcome}``: PlaceOrder calls by outcome: ``placed`` (sent to the engine
  and answered), ``replayed`` (a retry of an order the gateway knew, answered by the engine as it is), ``invalid``
  (INVALID_ARGUMENT or NOT_FOUND), ``refused`` (a risk check), ``conflict`` (the client_order_id was used for a
  different order), ``unavailable`` (the engine could not be reached: retry with the same client_order_id);
- ``casemesh_trading_gateway_risk_refusals_total{check}``: orders refused by ``price_band``, ``max_notional`` or
  ``max_open_orders`` (set to 0 for each at start);
- ``casemesh_trading_gateway_engine_call_seconds{method}`` (histogram): each call to the matching engine
  (``SubmitOrder``, ``CancelOrder``, ``GetOrder``) from sending to its answer or failure, in seconds, buckets from
  100 us: the engine's share of the order acknowledgement;
- ``casemesh_trading_gateway_feed_sequence`` (gauge): the last engine sequence the risk state applied (the drop
  copy, services/trading/engine_feed.py);
- ``casemesh_trading_gateway_feed_lag_seconds`` (gauge): seconds from the engine writing the last applied event to
  the risk state applying it;
- ``casemesh_trading_gateway_feed_reconnects_total{reason}``: drop copy streams reopened, by reason (``gap``,
  ``duplicate``, ``ended``, ``renewed``, ``handler_error`` or the stream's status code in lower case).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from ..engine_feed import FeedMetrics
from .risk import CHECKS

ORDERS = Counter("casemesh_trading_gateway_orders", "PlaceOrder calls by outcome (placed, replayed, invalid, refused, "
                 "conflict, unavailable).", ["outcome"])
RISK_REFUSALS = Counter("casemesh_trading_gateway_risk_refusals", "Orders refused by a pre-trade risk check, by "
                        "check.", ["check"])
#: Seconds: an in-memory engine answers in a few hundred microseconds; the order ack's SLO is 10 ms.
ENGINE_CALL_BUCKETS = (0.000_1, 0.000_25, 0.000_5, 0.000_75, 0.001, 0.002, 0.003, 0.005, 0.007_5, 0.01, 0.025,
                       0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
ENGINE_CALL_SECONDS = Histogram("casemesh_trading_gateway_engine_call_seconds", "Calls to the matching engine from "
                                "sending to the answer, in seconds.", ["method"], buckets=ENGINE_CALL_BUCKETS)
FEED = FeedMetrics(
    reconnects=Counter("casemesh_trading_gateway_feed_reconnects", "Drop copy streams of the engine's log reopened, "
                       "by reason.", ["reason"]),
    sequence=Gauge("casemesh_trading_gateway_feed_sequence", "Last engine sequence applied to the risk state."),
    lag_seconds=Gauge("casemesh_trading_gateway_feed_lag_seconds", "Seconds from the engine writing the last applied "
                      "event to the risk state applying it."),
)

OUTCOMES = ("placed", "replayed", "invalid", "refused", "conflict", "unavailable")
#: The outcome counters, bound once (PlaceOrder is the latency-critical path).
OUTCOME = {outcome: ORDERS.labels(outcome) for outcome in OUTCOMES}
REFUSAL = {name: RISK_REFUSALS.labels(name) for name in CHECKS}


def started() -> None:
    """Set the process-global gauges of a gateway that starts (tests run several in one process)."""
    FEED.sequence.set(0)
    FEED.lag_seconds.set(0)
