"""trading-marketdata's own metrics (``casemesh_trading_marketdata_*``), seed 001 #08 (market data).

- ``casemesh_trading_marketdata_subscribers`` (gauge): open StreamMarketData calls (set to 0 at start);
- ``casemesh_trading_marketdata_messages_sent_total{kind}``: messages sent to subscribers, by kind (``snapshot``,
  ``trade``, ``depth``);
- ``casemesh_trading_marketdata_publish_lag_seconds`` (histogram): for each engine event that queued at least one
  message, seconds from the engine writing it (``at_unix_ns``) to the last subscriber queue put: how stale the feed
  is as it leaves the publisher;
- ``casemesh_trading_marketdata_dropped_subscribers_total``: subscribers ended RESOURCE_EXHAUSTED for falling behind;
- ``casemesh_trading_marketdata_feed_reconnects_total{reason}``: engine feed streams reopened, by reason (``gap``,
  ``duplicate``, ``ended``, ``renewed``, ``handler_error`` or the stream's status code in lower case);
- ``casemesh_trading_marketdata_feed_sequence`` (gauge): the last engine sequence applied to the books;
- ``casemesh_trading_marketdata_feed_lag_seconds`` (gauge): seconds from the engine writing the last applied event to
  the books applying it (and its messages being queued).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from ..engine_feed import FeedMetrics

SUBSCRIBERS = Gauge("casemesh_trading_marketdata_subscribers", "Open StreamMarketData calls.")
MESSAGES_SENT = Counter("casemesh_trading_marketdata_messages_sent", "Messages sent to subscribers, by kind "
                        "(snapshot, trade, depth).", ["kind"])
KINDS = ("snapshot", "trade", "depth")
#: The counters by kind, bound once (one increment per message per subscriber).
SENT = {kind: MESSAGES_SENT.labels(kind) for kind in KINDS}
#: Seconds: the engine's fsync and one hop before the publisher; buckets from 100 us.
PUBLISH_LAG_BUCKETS = (0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                       2.0, 5.0)
PUBLISH_LAG_SECONDS = Histogram("casemesh_trading_marketdata_publish_lag_seconds", "Seconds from the engine writing "
                                "an event to its messages being queued to the subscribers.",
                                buckets=PUBLISH_LAG_BUCKETS)
DROPPED_SUBSCRIBERS = Counter("casemesh_trading_marketdata_dropped_subscribers", "Subscribers ended "
                              "RESOURCE_EXHAUSTED for falling behind.")
FEED = FeedMetrics(
    reconnects=Counter("casemesh_trading_marketdata_feed_reconnects", "Engine feed streams reopened, by reason.",
                       ["reason"]),
    sequence=Gauge("casemesh_trading_marketdata_feed_sequence", "Last engine sequence applied to the books."),
    lag_seconds=Gauge("casemesh_trading_marketdata_feed_lag_seconds", "Seconds from the engine writing the last "
                      "applied event to the books applying it."),
)


def started() -> None:
    """Set the process-global gauges of a market data service that starts (tests run several in one process)."""
    SUBSCRIBERS.set(0)
    FEED.sequence.set(0)
    FEED.lag_seconds.set(0)
