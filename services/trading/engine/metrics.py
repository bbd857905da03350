"""trading-engine's own metrics (``casemesh_trading_engine_*``).

Seed 001 #08 (shared/seeds/001_58dfc580020147d2.txt line 22: "| 08 | Stock Trading | Order matching engine, order
book, market data, low-latency | <10ms p99 latency, NASDAQ-scale |"): what the engine's share of that latency is made
of (matching, the log's flush, the wait for it) and what the mechanism does (events per group commit).

Counters and histograms (the hot path pays for one child each, looked up once at import):

- ``casemesh_trading_engine_orders_accepted_total{side,type}``: orders accepted (a new order_id: its accepted
  event), ``side`` buy/sell, ``type`` limit/market; retries of a held order are not counted;
- ``casemesh_trading_engine_trades_total`` and ``casemesh_trading_engine_traded_shares_total``: trades made and
  the shares they moved;
- ``casemesh_trading_engine_match_seconds`` (histogram, from 10 us): one order on the matching thread, from its
  acceptance to its events handed to the log (matching, events, and in ``per_order`` mode nothing of the flush);
- ``casemesh_trading_engine_commit_seconds`` (histogram): one write + ``fdatasync`` of the log (a group of orders
  in ``group`` mode, one order in ``per_order`` mode);
- ``casemesh_trading_engine_commit_events`` (histogram): events per commit (the group commit's batch size);
- ``casemesh_trading_engine_ack_wait_seconds`` (histogram): from an order's acceptance (or a cancel's) to its events
  being durable (it may be answered from then on): the engine's share of the seed's "< 10 ms p99";
- ``casemesh_trading_engine_stream_dropped_total``: StreamEvents subscribers dropped for reading too slowly
  (RESOURCE_EXHAUSTED).

Gauges read from the running engine when scraped (:class:`EngineState`; no cost on the hot path, nothing to reset
between engines of one process: the last one started is reported):

- ``casemesh_trading_engine_sequence``: the sequence number of the last durable event;
- ``casemesh_trading_engine_resting_orders{symbol}``: orders resting in each symbol's book;
- ``casemesh_trading_engine_stream_subscribers``: StreamEvents subscribers following live events.

Set once at start: ``casemesh_trading_engine_replay_seconds`` and ``casemesh_trading_engine_replay_events`` (the
log replayed when the engine started and how long it took).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from casemesh.trading.v1 import trading_pb2

ORDERS_ACCEPTED = Counter("casemesh_trading_engine_orders_accepted", "Orders accepted by the matching engine, by side "
                          "and type.", ["side", "type"])
#: (side, type) enum numbers → the counter's child.
ACCEPTED = {(side, kind): ORDERS_ACCEPTED.labels(side_name, type_name)
            for side, side_name in ((trading_pb2.SIDE_BUY, "buy"), (trading_pb2.SIDE_SELL, "sell"))
            for kind, type_name in ((trading_pb2.ORDER_TYPE_LIMIT, "limit"), (trading_pb2.ORDER_TYPE_MARKET, "market"))}
TRADES = Counter("casemesh_trading_engine_trades", "Trades made by the matching engine.")
TRADED_SHARES = Counter("casemesh_trading_engine_traded_shares", "Shares traded by the matching engine.")
#: Seconds: matching one order in Python takes tens of microseconds.
MATCH_BUCKETS = (0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.05)
MATCH_SECONDS = Histogram("casemesh_trading_engine_match_seconds", "One order on the matching thread, from acceptance "
                          "to its events handed to the log, in seconds.", buckets=MATCH_BUCKETS)
#: Seconds: an fdatasync takes tens of microseconds (a write cache) to tens of milliseconds (a busy disk).
COMMIT_BUCKETS = (0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.0)
COMMIT_SECONDS = Histogram("casemesh_trading_engine_commit_seconds", "One write and fdatasync of the event log, in "
                           "seconds.", buckets=COMMIT_BUCKETS)
EVENTS_BUCKETS = (1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000)
COMMIT_EVENTS = Histogram("casemesh_trading_engine_commit_events", "Events written by one commit of the event log.",
                          buckets=EVENTS_BUCKETS)
#: Seconds: the SLO is 10 ms at the 99th percentile for the whole acknowledgement.
ACK_BUCKETS = (0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002, 0.003, 0.005, 0.007_5, 0.01, 0.025, 0.05, 0.1,
               0.25, 1.0, 2.0)
ACK_WAIT_SECONDS = Histogram("casemesh_trading_engine_ack_wait_seconds", "From an order's (or a cancel's) acceptance "
                             "to its events being durable, in seconds.", buckets=ACK_BUCKETS)
STREAM_DROPPED = Counter("casemesh_trading_engine_stream_dropped", "StreamEvents subscribers dropped for reading too "
                         "slowly (RESOURCE_EXHAUSTED).")
REPLAY_SECONDS = Gauge("casemesh_trading_engine_replay_seconds", "Seconds the engine took to replay its log at start.")
REPLAY_EVENTS = Gauge("casemesh_trading_engine_replay_events", "Events the engine replayed from its log at start.")


class EngineState(Collector):
    """The gauges read from the running engine at scrape time: its durable sequence number, resting orders per
    symbol, live subscribers (``source()`` returns them; nothing before an engine starts)."""

    def __init__(self) -> None:
        self.source: Callable[[], tuple[int, dict[str, int], int]] | None = None

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return self._families(0, {}, 0)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        source = self.source
        return self._families(*source()) if source is not None else iter(())

    @staticmethod
    def _families(sequence: int, resting: dict[str, int], subscribers: int) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("casemesh_trading_engine_sequence", "Sequence number of the last durable event.",
                                value=sequence)
        family = GaugeMetricFamily("casemesh_trading_engine_resting_orders", "Orders resting in each symbol's book.",
                                   labels=["symbol"])
        for symbol, count in sorted(resting.items()):
            family.add_metric([symbol], count)
        yield family
        yield GaugeMetricFamily("casemesh_trading_engine_stream_subscribers", "StreamEvents subscribers following "
                                "live events.", value=subscribers)


ENGINE_STATE = EngineState()
REGISTRY.register(ENGINE_STATE)


def started(source: Callable[[], tuple[int, dict[str, int], int]], replayed_events: int, replay_seconds: float) -> None:
    """An engine started after replaying ``replayed_events`` in ``replay_seconds``: report its state from now on."""
    ENGINE_STATE.source = source
    REPLAY_EVENTS.set(replayed_events)
    REPLAY_SECONDS.set(replay_seconds)
