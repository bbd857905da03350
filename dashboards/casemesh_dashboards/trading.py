"""Stock trading: the order acknowledgement (PlaceOrder) against the seed's 10 ms p99 and its three nines, the
gateway's pre-trade risk checks, the matching engine (price-time priority, one book per symbol), its durable log
(group commit or a flush per order: the A/B switch ``trading-engine.commit``), and the market data built from the
engine's sequenced event stream against its 50 ms freshness.

Case study: seed 001 #08, shared/seeds/001_58dfc580020147d2.txt line 22 ("| 08 | Stock Trading | Order matching
engine, order book, market data, low-latency | <10ms p99 latency, NASDAQ-scale |"); contracts in
protos/casemesh/trading/v1/, SLOs in harness/profiles/trading.slo.yaml (the server-side twins drawn here:
trading-place-order-latency-server, trading-place-order-availability-server and trading-market-data-freshness-server;
their targets are read from that file when the dashboard is built).

Service metrics, as the trading services expose them: ``casemesh_trading_gateway_orders_total{outcome}``
(``placed``, ``replayed``, ``invalid``, ``refused``, ``conflict``, ``unavailable``),
``casemesh_trading_gateway_risk_refusals_total{check}`` (``price_band``, ``max_notional``, ``max_open_orders``),
``casemesh_trading_gateway_engine_call_seconds{method}`` (``SubmitOrder``, ``CancelOrder``, ``GetOrder``),
``casemesh_trading_gateway_feed_sequence``, ``casemesh_trading_gateway_feed_lag_seconds``,
``casemesh_trading_gateway_feed_reconnects_total{reason}`` (trading-gateway, services/trading/gateway/metrics.py; its
drop copy of the engine's log); ``casemesh_trading_engine_orders_accepted_total{side,type}`` (``buy``, ``sell``;
``limit``, ``market``), ``casemesh_trading_engine_trades_total``, ``casemesh_trading_engine_traded_shares_total``,
``casemesh_trading_engine_match_seconds``, ``casemesh_trading_engine_commit_seconds``,
``casemesh_trading_engine_commit_events``, ``casemesh_trading_engine_ack_wait_seconds`` (an order's or a cancel's
acceptance to durable),
``casemesh_trading_engine_stream_dropped_total``, ``casemesh_trading_engine_sequence``,
``casemesh_trading_engine_resting_orders{symbol}``, ``casemesh_trading_engine_stream_subscribers``,
``casemesh_trading_engine_replay_seconds``, ``casemesh_trading_engine_replay_events`` (trading-engine,
services/trading/engine/metrics.py); ``casemesh_trading_marketdata_subscribers``,
``casemesh_trading_marketdata_messages_sent_total{kind}`` (``snapshot``, ``trade``, ``depth``),
``casemesh_trading_marketdata_publish_lag_seconds`` (the twin of the market data's freshness),
``casemesh_trading_marketdata_dropped_subscribers_total``, ``casemesh_trading_marketdata_feed_sequence``,
``casemesh_trading_marketdata_feed_lag_seconds``, ``casemesh_trading_marketdata_feed_reconnects_total{reason}``
(trading-marketdata, services/trading/marketdata/metrics.py; the feeds: services/trading/engine_feed.py); and the
runtime's ``grpc_server_handled_total`` and ``grpc_server_handling_seconds`` of the trading services (the twins of
PlaceOrder). Only the gRPC histograms carry exemplars.

``MatchingEngineService/StreamEvents`` (the gateway's drop copy and the market data's feed, reopened every
``feed_renew_s``) and ``MarketDataService/StreamMarketData`` (a subscriber, open for a trading session) are streams:
their handling time is that length and their status how they ended. They are left out of the gRPC duration and error
panels.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from casemesh.harness.profile import PROFILES_DIR, SLO_FILE_SUFFIX

from .common import (
    ERROR_CODES_MATCHER, latency_panel, le, mean, new_dashboard, quantile, query, query_variable, rate, refs, selector,
    slo_targets, stat_panel, timeseries_panel, within,
)

UID = "casemesh-trading"
ORDER_ENTRY = "casemesh.trading.v1.OrderEntryService"
HANDLING = "grpc_server_handling_seconds"
HANDLED = "grpc_server_handled_total"
#: The trading profile's SLOs: the targets drawn here are read from it (:func:`targets`).
SLO_FILE = PROFILES_DIR / f"trading{SLO_FILE_SUFFIX}"
#: trading-place-order-latency-server (trading.slo.yaml): PlaceOrder handled within 10 ms (the seed's "<10ms p99"), a
#: bucket of grpc_server_handling_seconds.
ACK_S = 0.01
#: trading-market-data-freshness-server: engine events queued to their subscribers within 50 ms, a bucket of
#: casemesh_trading_marketdata_publish_lag_seconds.
PUBLISH_LAG = "casemesh_trading_marketdata_publish_lag_seconds"
FRESH_S = 0.05
JOB = 'job=~"$job"'
TRADING_SERVICES = r'grpc_service=~"casemesh\\.trading\\.v1\\..+"'
#: The trading services' jobs.
TRADING_JOBS = r'{__name__="grpc_server_handled_total", grpc_service=~"casemesh\\.trading\\.v1\\..+"}'
#: The streams: the engine's event log followed by the gateway and the market data, a market data subscriber.
NOT_STREAMS = 'grpc_method!~"StreamEvents|StreamMarketData"'


def build() -> Dashboard:
    target = slo_targets(SLO_FILE)
    latency_target = target["trading-place-order-latency-server"]
    answered_target = target["trading-place-order-availability-server"]
    fresh_target = target["trading-market-data-freshness-server"]
    jobs = selector(JOB)
    placed = selector(JOB, f'grpc_service="{ORDER_ENTRY}"', 'grpc_method="PlaceOrder"')
    accepted = selector(JOB, f'grpc_service="{ORDER_ENTRY}"', 'grpc_method="PlaceOrder"', 'grpc_code="OK"')
    ack_ms, fresh_ms = f"{ACK_S * 1000:g} ms", f"{FRESH_S * 1000:g} ms"
    board = (
        new_dashboard(UID, "casemesh / stock trading",
                      "The stock-trading case study (an exchange, NASDAQ-scale): the order acknowledgement against "
                      "the seed's 10 ms p99 and its three nines, the pre-trade risk checks, the matching engine and "
                      "its durable log (group commit or a flush per order), and the market data built from the "
                      "engine's sequenced events against their 50 ms freshness.",
                      ["trading"])
        .with_variable(query_variable("job", "Job", f"label_values({TRADING_JOBS}, job)"))
    )
    orders = "casemesh_trading_gateway_orders_total"
    board = (
        board.with_row(Row(f"Order acknowledgement: {latency_target:.0%} within {ack_ms}, "
                           f"{answered_target:.1%} accepted"))
        .with_panel(latency_panel(
            f"PlaceOrder time vs {ack_ms}",
            "OrderEntryService/PlaceOrder handling time in trading-gateway (grpc_server_handling_seconds): the "
            "risk checks, the engine's SubmitOrder with its matching and the log flush the answer waits for. The "
            "dashed line is the SLO trading-place-order-latency-server of trading.slo.yaml (the server-side twin "
            "of trading-place-order-latency: the seed's \"<10ms p99\"). Dots are exemplars.",
            HANDLING, placed, (), "", width=6, threshold_s=ACK_S))
        .with_panel(timeseries_panel(
            f"Acknowledged within {ack_ms}",
            f"Share of PlaceOrder calls handled within {ack_ms} (le=\"{le(ACK_S)}\" bucket over the count of "
            f"grpc_server_handling_seconds: trading-place-order-latency-server); the dashed line is its target "
            f"{latency_target:g}.", "percentunit",
            [query(within(HANDLING, placed, ACK_S), f"within {ack_ms}")],
            width=5, threshold_line=(latency_target, "red"), max_value=1))
        .with_panel(timeseries_panel(
            "PlaceOrder answered OK",
            f"OrderEntryService/PlaceOrder calls answered OK over all of them: the SLO "
            f"trading-place-order-availability-server of trading.slo.yaml (the workload sends only orders the "
            f"contract and the risk checks accept, so a refusal counts against it); the dashed line is its target "
            f"{answered_target:g}.", "percentunit",
            [query(f"{rate(HANDLED, accepted)} / {rate(HANDLED, placed)}", "answered OK")],
            width=5, threshold_line=(answered_target, "red"), max_value=1))
        .with_panel(stat_panel(
            "Answered OK over the range",
            f"Share of PlaceOrder calls answered OK over the selected time range, against {answered_target:g} "
            f"(trading-place-order-availability-server).", "percentunit",
            [query(f"sum(increase({HANDLED}{accepted}[$__range])) / sum(increase({HANDLED}{placed}[$__range]))",
                   instant=True)],
            width=3, height=8, base="red", steps=((answered_target, "green"),), decimals=4))
        .with_panel(stat_panel(
            f"Within {ack_ms} over the range",
            f"Share of PlaceOrder calls handled within {ack_ms} over the selected time range, against "
            f"{latency_target:g} (trading-place-order-latency-server).", "percentunit",
            [query(within(HANDLING, placed, ACK_S, window="$__range"), instant=True)],
            width=5, height=8, base="red", steps=((latency_target, "green"),), decimals=3))
        .with_panel(timeseries_panel(
            "Orders by outcome",
            "PlaceOrder calls per second by outcome (casemesh_trading_gateway_orders_total): placed (sent to the "
            "engine and answered), replayed (a retry of an order the engine holds, answered as it is: it never "
            "trades twice), invalid (INVALID_ARGUMENT, NOT_FOUND), refused (a risk check), conflict (the "
            "client_order_id used for a different order), unavailable (the engine could not be reached).", "ops",
            [query(rate(orders, jobs, ("outcome",)), "{{outcome}}")], width=8, stacked=True))
        .with_panel(timeseries_panel(
            "Risk refusals by check",
            "Orders the gateway's pre-trade risk checks refused per second "
            "(casemesh_trading_gateway_risk_refusals_total): price_band (a limit price more than price_band_pct "
            "from the last trade: the Limit Up-Limit Down band), max_notional (price x quantity), max_open_orders "
            "(resting orders per account).", "ops",
            [query(rate("casemesh_trading_gateway_risk_refusals_total", jobs, ("check",)), "{{check}}")],
            width=8, stacked=True))
        .with_panel(latency_panel(
            "Engine calls from the gateway",
            "The gateway's calls to the matching engine from sending to the answer or failure "
            "(casemesh_trading_gateway_engine_call_seconds), by method: SubmitOrder is the engine's share of the "
            "order acknowledgement (matching and the log flush, and one hop).",
            "casemesh_trading_gateway_engine_call_seconds", jobs, ("method",), "{{method}}", quantiles=(0.5, 0.99),
            width=8))
    )
    board = (
        board.with_row(Row("Matching engine: one book per symbol, price-time priority, one thread"))
        .with_panel(timeseries_panel(
            "Orders accepted by type and side",
            "Orders the engine accepted per second, each once (casemesh_trading_engine_orders_accepted_total: "
            "retries of an order it holds not counted), by type (limit, market) and side.", "ops",
            [query(rate("casemesh_trading_engine_orders_accepted_total", jobs, ("type", "side")),
                   "{{type}} {{side}}")], width=6, stacked=True))
        .with_panel(timeseries_panel(
            "Trades",
            "Trades the engine made per second (casemesh_trading_engine_trades_total), and the shares they moved "
            "(casemesh_trading_engine_traded_shares_total).", "short",
            refs([(rate("casemesh_trading_engine_trades_total", jobs), "trades /s"),
                  (rate("casemesh_trading_engine_traded_shares_total", jobs), "shares /s")]), width=6))
        .with_panel(latency_panel(
            "Match time",
            "One order on the matching thread, from its acceptance to its events handed to the log "
            "(casemesh_trading_engine_match_seconds): the matching itself; in per_order mode the flush is not in "
            "it (it is in the commit time).", "casemesh_trading_engine_match_seconds", jobs, (), "",
            quantiles=(0.5, 0.99), width=6))
        .with_panel(timeseries_panel(
            "Resting orders per symbol",
            "Orders resting in each symbol's book (casemesh_trading_engine_resting_orders), read from the running "
            "engine when scraped.", "short",
            [query(f"sum by (symbol) (casemesh_trading_engine_resting_orders{jobs})", "{{symbol}}")], width=6))
    )
    board = (
        board.with_row(Row("Durability: answered once on disk, group commit or a flush per order "
                           "(trading-engine.commit)"))
        .with_panel(latency_panel(
            f"Ack wait vs {ack_ms}",
            "From an order's (or a cancel's) acceptance to its events being durable, when it may be answered "
            "(casemesh_trading_engine_ack_wait_seconds): the engine's share of the seed's 10 ms, drawn as the "
            "dashed line. With the A/B switch trading-engine.commit=group an order waits for the flush under way "
            "and the next one; with per_order for its own flush only (the flushes of the orders before it block the "
            "engine's event loop before this order is accepted: they show in the gateway's engine call time).",
            "casemesh_trading_engine_ack_wait_seconds", jobs, (), "", width=6, threshold_s=ACK_S))
        .with_panel(latency_panel(
            "Commit time",
            "One write and fdatasync of the event log (casemesh_trading_engine_commit_seconds): a group of orders "
            "in group mode (on the writer thread), one order in per_order mode (on the matching thread, which "
            "matches nothing meanwhile).", "casemesh_trading_engine_commit_seconds", jobs, (), "",
            quantiles=(0.5, 0.99), width=6))
        .with_panel(timeseries_panel(
            "Events per commit",
            "Events written by one commit of the log (casemesh_trading_engine_commit_events): how many share one "
            "fdatasync in group mode; an order's own events (its acceptance, trades, its rest) in per_order mode.",
            "short",
            refs([(quantile(0.5, "casemesh_trading_engine_commit_events", jobs), "p50"),
                  (quantile(0.99, "casemesh_trading_engine_commit_events", jobs), "p99"),
                  (mean("casemesh_trading_engine_commit_events", jobs), "mean")]), width=6))
        .with_panel(stat_panel(
            "Engine sequence",
            "The sequence number of the engine's last durable event (casemesh_trading_engine_sequence): events "
            "logged since the log was created.", "short",
            [query(f"max(casemesh_trading_engine_sequence{jobs})")], width=2, height=8))
        .with_panel(stat_panel(
            "Events replayed",
            "Events the engine replayed from its log when it last started (casemesh_trading_engine_replay_events): "
            "its books rebuilt.", "short",
            [query(f"max(casemesh_trading_engine_replay_events{jobs})")], width=2, height=8))
        .with_panel(stat_panel(
            "Replay time",
            "How long that replay took (casemesh_trading_engine_replay_seconds): the price of a restart.", "s",
            [query(f"max(casemesh_trading_engine_replay_seconds{jobs})")], width=2, height=8))
    )
    messages = "casemesh_trading_marketdata_messages_sent_total"
    board = (
        board.with_row(Row(f"Market data: {fresh_target:.0%} of events published within {fresh_ms}"))
        .with_panel(latency_panel(
            f"Publish lag vs {fresh_ms}",
            "Per engine event the market data published, from the engine writing it to the last subscriber queue "
            "put (casemesh_trading_marketdata_publish_lag_seconds): the engine's flush, its event stream, the "
            "books' update and the fan-out. The dashed line is the SLO trading-market-data-freshness-server of "
            "trading.slo.yaml (the server-side twin of trading-market-data-freshness).",
            PUBLISH_LAG, jobs, (), "", width=6, threshold_s=FRESH_S))
        .with_panel(timeseries_panel(
            f"Published within {fresh_ms}",
            f"Share of published events queued within {fresh_ms} (le=\"{le(FRESH_S)}\" bucket over the count of "
            f"casemesh_trading_marketdata_publish_lag_seconds: trading-market-data-freshness-server); the dashed "
            f"line is its target {fresh_target:g}.", "percentunit",
            [query(within(PUBLISH_LAG, jobs, FRESH_S), f"within {fresh_ms}")],
            width=5, threshold_line=(fresh_target, "red"), max_value=1))
        .with_panel(stat_panel(
            f"Within {fresh_ms} over the range",
            f"Share of published events queued within {fresh_ms} over the selected time range, against "
            f"{fresh_target:g} (trading-market-data-freshness-server).", "percentunit",
            [query(within(PUBLISH_LAG, jobs, FRESH_S, window="$__range"), instant=True)],
            width=5, height=8, base="red", steps=((fresh_target, "green"),), decimals=3))
        .with_panel(timeseries_panel(
            "Messages by kind",
            "Messages sent to subscribers per second (casemesh_trading_marketdata_messages_sent_total), by kind: "
            "snapshot (a stream's first message per symbol), trade, depth (the top levels after a change).", "ops",
            [query(rate(messages, jobs, ("kind",)), "{{kind}}")], width=8, stacked=True))
        .with_panel(timeseries_panel(
            "Subscribers",
            "Open StreamMarketData calls (casemesh_trading_marketdata_subscribers), and the engine's StreamEvents "
            "subscribers following live events (casemesh_trading_engine_stream_subscribers: the gateway's drop copy "
            "and the market data's feed).", "short",
            refs([(f"sum(casemesh_trading_marketdata_subscribers{jobs})", "market data subscribers"),
                  (f"sum(casemesh_trading_engine_stream_subscribers{jobs})", "engine stream subscribers")]),
            width=8, min_value=0))
        .with_panel(timeseries_panel(
            "Subscribers dropped",
            "Subscribers ended RESOURCE_EXHAUSTED for falling behind, per second: market data subscribers "
            "(casemesh_trading_marketdata_dropped_subscribers_total: subscriber_queue_size messages queued; they "
            "reconnect to a fresh snapshot) and the engine's StreamEvents subscribers "
            "(casemesh_trading_engine_stream_dropped_total: stream_queue_events behind; they resume from their last "
            "sequence).", "short",
            refs([(rate("casemesh_trading_marketdata_dropped_subscribers_total", jobs), "market data /s"),
                  (rate("casemesh_trading_engine_stream_dropped_total", jobs), "engine stream /s")]), width=8))
    )
    board = (
        board.with_row(Row("Engine feeds: the gateway's drop copy and the market data follow the engine's log"))
        .with_panel(timeseries_panel(
            "Feed sequence",
            "The last engine sequence each feed applied (casemesh_trading_gateway_feed_sequence: the risk state; "
            "casemesh_trading_marketdata_feed_sequence: the books), against the engine's last durable one "
            "(casemesh_trading_engine_sequence).", "short",
            refs([(f"max(casemesh_trading_engine_sequence{jobs})", "engine"),
                  (f"max(casemesh_trading_gateway_feed_sequence{jobs})", "gateway drop copy"),
                  (f"max(casemesh_trading_marketdata_feed_sequence{jobs})", "market data")]), width=8))
        .with_panel(timeseries_panel(
            "Feed lag",
            "Seconds from the engine writing the last event each feed applied to the feed applying it "
            "(casemesh_trading_gateway_feed_lag_seconds, casemesh_trading_marketdata_feed_lag_seconds).", "s",
            refs([(f"max(casemesh_trading_gateway_feed_lag_seconds{jobs})", "gateway drop copy"),
                  (f"max(casemesh_trading_marketdata_feed_lag_seconds{jobs})", "market data")]), width=8))
        .with_panel(timeseries_panel(
            "Feed reconnects by reason",
            "Engine event streams reopened per second (casemesh_trading_gateway_feed_reconnects_total, "
            "casemesh_trading_marketdata_feed_reconnects_total), by reason: renewed (the stream's own deadline, "
            "feed_renew_s, ran out: reopened at once), gap, duplicate, ended, handler_error, or the stream's status "
            "code (unavailable: the engine restarted; resource_exhausted: the feed fell behind).", "short",
            refs([(rate("casemesh_trading_gateway_feed_reconnects_total", jobs, ("reason",)), "gateway {{reason}}"),
                  (rate("casemesh_trading_marketdata_feed_reconnects_total", jobs, ("reason",)),
                   "market data {{reason}}")]), width=8))
    )
    calls = selector(JOB, TRADING_SERVICES)
    board = (
        board.with_row(Row("gRPC per trading service"))
        .with_panel(timeseries_panel(
            "Request rate", "Calls handled per second by each trading method. SubmitOrder, CancelOrder and "
            "GetOrder of MatchingEngineService are the gateway's calls; StreamEvents and StreamMarketData count "
            "streams when they end.", "reqps",
            [query(rate(HANDLED, calls, ("grpc_service", "grpc_method")), "{{grpc_service}}/{{grpc_method}}")],
            width=8))
        .with_panel(timeseries_panel(
            "Errors by code", "Failed calls per second (codes other than OK, NotFound, InvalidArgument, "
            "AlreadyExists); StreamEvents and StreamMarketData left out. PlaceOrder's FailedPrecondition is a risk "
            "check or a client_order_id reused; CancelOrder's an order already filled.", "reqps",
            [query(rate(HANDLED, selector(JOB, TRADING_SERVICES, NOT_STREAMS, ERROR_CODES_MATCHER),
                        ("grpc_method", "grpc_code")), "{{grpc_method}} {{grpc_code}}")], width=8, stacked=True))
        .with_panel(timeseries_panel(
            "p99 duration", "99th percentile server handling time per method, StreamEvents and StreamMarketData "
            "left out. Dots are exemplars.", "s",
            [query(quantile(0.99, HANDLING, selector(JOB, TRADING_SERVICES, NOT_STREAMS),
                            ("grpc_service", "grpc_method")), "{{grpc_service}}/{{grpc_method}}", exemplar=True)],
            width=8))
    )
    return board
