"""Payment gateway: Authorize against its 250 ms p99 and its three nines, PSP routing over two simulated acquirers with
failover, circuit breakers and the reversal of attempts whose outcome is unknown, the fraud rules, the card vault
(tokenization standing in for the seed's HSM), idempotent retries, and settlement reconciled against the gateway's
ledger.

Case study: seed 001 #25, shared/seeds/001_58dfc580020147d2.txt line 49 ("| 25 | Payment Gateway | PSP routing, fraud
detection, PCI DSS (HSM tokenization), settlement | 10K TPS, Stripe/Adyen |") and seed 000 line 522 ("Payment Service:
Idempotent APIs, retry with exponential backoff"); contracts in protos/casemesh/payments/v1/, SLOs in
harness/profiles/payments.slo.yaml (the server-side twins drawn here: payment-authorize-latency-server and
payment-checkout-availability-server; their targets are read from that file when the dashboard is built).

Service metrics, as the payment services expose them: ``casemesh_payments_gateway_payments_total{operation,outcome}``
(``authorize``: ``approved``, ``declined_issuer``, ``declined_fraud``, ``unavailable``; ``capture``, ``void``,
``refund``: ``ok``, ``unavailable``), ``casemesh_payments_gateway_authorize_seconds`` (the twin of the authorize
latency), ``casemesh_payments_gateway_attempts_total{acquirer,result}`` (``approved``, ``declined``, ``refused``,
``not_sent``, ``unknown``), ``casemesh_payments_gateway_failovers_total{from_acquirer}``,
``casemesh_payments_gateway_idempotent_replays_total{operation}``,
``casemesh_payments_gateway_reversals_total{acquirer,outcome}`` (``reversed``, ``retried``, ``refused``),
``casemesh_payments_gateway_reversals_pending``, ``casemesh_payments_gateway_breaker_open{acquirer}``,
``casemesh_payments_gateway_fraud_fail_open_total``, ``casemesh_payments_gateway_resumed_total{operation,outcome}``,
``casemesh_payments_gateway_settlement_discrepancies_total{kind}``,
``casemesh_payments_gateway_reconciliations_total{outcome}``, ``casemesh_payments_gateway_write_seconds``
(payments-gateway, services/payments/gateway/metrics.py); ``casemesh_payments_acquirer_authorizations_total{acquirer,
result}`` (``approved``, ``declined``, ``refused``), ``casemesh_payments_acquirer_captures_total{acquirer}``,
``casemesh_payments_acquirer_refunds_total{acquirer}``, ``casemesh_payments_acquirer_voids_total{acquirer,kind}``
(``release``, ``tombstone``), ``casemesh_payments_acquirer_repeats_total{acquirer,rpc}``,
``casemesh_payments_acquirer_issuer_latency_seconds{acquirer}``, ``casemesh_payments_acquirer_batches_closed_total{
acquirer}``, ``casemesh_payments_acquirer_write_seconds{acquirer}`` (payments-psp-a and payments-psp-b,
services/payments/acquirer/metrics.py); ``casemesh_payments_fraud_decisions_total{decision}`` (``allow``, ``review``,
``block``), ``casemesh_payments_fraud_rule_hits_total{rule}``, ``casemesh_payments_fraud_score``,
``casemesh_payments_fraud_repeats_total`` (payments-fraud, services/payments/fraud/metrics.py);
``casemesh_payments_vault_cards_tokenized_total{brand}``, ``casemesh_payments_vault_detokenize_total{outcome}``
(``ok``, ``not_found``, ``wrong_merchant``, ``invalid``, ``undecryptable``, ``unavailable``),
``casemesh_payments_vault_write_seconds`` (payments-vault, services/payments/vault/metrics.py); and the runtime's
``grpc_server_handled_total`` and ``grpc_server_handling_seconds`` of the payment services. Only the gRPC histograms
carry exemplars.

``AcquirerService/GetSettlementFile`` is a server stream (a batch's lines: its handling time is the file's length) and
``SettlementService/Reconcile`` closes every acquirer's batch and matches every line of their files (seconds, once a
run): both are left out of the gRPC duration and error panels; Reconcile has panels of its own in the settlement row.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from casemesh.harness.profile import PROFILES_DIR, SLO_FILE_SUFFIX

from .common import (
    ERROR_CODES_MATCHER, latency_panel, le, mean, new_dashboard, quantile, query, query_variable, rate, refs, selector,
    slo_targets, stat_panel, timeseries_panel, within,
)

UID = "casemesh-payments"
GATEWAY = "casemesh.payments.v1.PaymentGatewayService"
SETTLEMENT = "casemesh.payments.v1.SettlementService"
HANDLING = "grpc_server_handling_seconds"
HANDLED = "grpc_server_handled_total"
#: The payments profile's SLOs: the targets drawn here are read from it (:func:`targets`).
SLO_FILE = PROFILES_DIR / f"payments{SLO_FILE_SUFFIX}"
#: payment-authorize-latency-server (payments.slo.yaml): Authorize calls handled within 250 ms, a bucket of
#: casemesh_payments_gateway_authorize_seconds.
AUTHORIZE = "casemesh_payments_gateway_authorize_seconds"
AUTHORIZE_S = 0.25
#: payment-checkout-availability-server: Authorize answered OK over every Authorize but ABORTED (a double click's
#: second send while the first is in flight, retried by the client).
NOT_ABORTED = 'grpc_code!="Aborted"'
PAYMENTS = "casemesh_payments_gateway_payments_total"
JOB = 'job=~"$job"'
PAYMENT_SERVICES = r'grpc_service=~"casemesh\\.payments\\.v1\\..+"'
#: The payment services' jobs.
PAYMENT_JOBS = r'{__name__="grpc_server_handled_total", grpc_service=~"casemesh\\.payments\\.v1\\..+"}'
#: GetSettlementFile streams a batch's lines; Reconcile closes and matches every acquirer's batch (drawn on its own).
NOT_STREAMS = 'grpc_method!~"GetSettlementFile|Reconcile"'


def over_range(metric: str, matchers: str, by: tuple[str, ...]) -> str:
    """``sum by (BY) (increase(METRIC{...}[$__range]))``: events of the selected time range (rare ones: batches,
    reconciliations)."""
    return f"sum by ({', '.join(by)}) (increase({metric}{matchers}[$__range]))"


def build() -> Dashboard:
    target = slo_targets(SLO_FILE)
    latency_target = target["payment-authorize-latency-server"]
    answered_target = target["payment-checkout-availability-server"]
    jobs = selector(JOB)
    counted = selector(JOB, f'grpc_service="{GATEWAY}"', 'grpc_method="Authorize"', NOT_ABORTED)
    answered = selector(JOB, f'grpc_service="{GATEWAY}"', 'grpc_method="Authorize"', 'grpc_code="OK"')
    authorized = selector(JOB, 'operation="authorize"')
    by_issuer = selector(JOB, 'operation="authorize"', 'outcome="declined_issuer"')
    by_fraud = selector(JOB, 'operation="authorize"', 'outcome="declined_fraud"')
    board = (
        new_dashboard(UID, "casemesh / payment gateway",
                      "The payment-gateway case study (Stripe / Adyen): Authorize against its 250 ms p99 and its "
                      "three nines, PSP routing over two simulated acquirers with failover, circuit breakers and "
                      "the reversal of attempts whose outcome is unknown (no double charge for one idempotency "
                      "key), the fraud rules, the card vault, idempotent retries, and settlement reconciled against "
                      "the gateway's ledger.",
                      ["payments"])
        .with_variable(query_variable("job", "Job", f"label_values({PAYMENT_JOBS}, job)"))
    )
    board = (
        board.with_row(Row(f"Authorize: {latency_target:.0%} within {AUTHORIZE_S * 1000:g} ms, "
                           f"{answered_target:.1%} answered OK"))
        .with_panel(latency_panel(
            f"Authorize time vs {AUTHORIZE_S * 1000:g} ms",
            "Each Authorize from the request to its answer as the gateway times it "
            "(casemesh_payments_gateway_authorize_seconds; replays included, requests refused by validation not): "
            "the vault's DetokenizeCard, the fraud rules, the acquirer's issuer round trip (and a failover's "
            "second one), the capture of a sale, and the fsyncs of the key, the payment and its attempts. The "
            "dashed line is the SLO payment-authorize-latency-server of payments.slo.yaml (the server-side twin "
            "of payment-authorize-latency).", AUTHORIZE, jobs, (), "", width=6, threshold_s=AUTHORIZE_S))
        .with_panel(timeseries_panel(
            f"Authorized within {AUTHORIZE_S * 1000:g} ms",
            f"Share of Authorize calls answered within {AUTHORIZE_S * 1000:g} ms (le=\"{le(AUTHORIZE_S)}\" bucket "
            f"over the count of casemesh_payments_gateway_authorize_seconds: payment-authorize-latency-server); "
            f"the dashed line is its target {latency_target:g}.", "percentunit",
            [query(within(AUTHORIZE, jobs, AUTHORIZE_S), f"within {AUTHORIZE_S * 1000:g} ms")],
            width=5, threshold_line=(latency_target, "red"), max_value=1))
        .with_panel(timeseries_panel(
            "Authorize answered OK",
            f"PaymentGatewayService/Authorize calls answered OK (approved or declined: a decline is an answer) "
            f"over all of them but ABORTED (a double click's second send while the first is in flight, which the "
            f"client retries): the SLO payment-checkout-availability-server of payments.slo.yaml; the dashed line "
            f"is its target {answered_target:g}.", "percentunit",
            [query(f"{rate(HANDLED, answered)} / {rate(HANDLED, counted)}", "answered OK")],
            width=5, threshold_line=(answered_target, "red"), max_value=1))
        .with_panel(stat_panel(
            "Answered OK over the range",
            f"Share of Authorize calls answered OK over the selected time range (ABORTED left out), against "
            f"{answered_target:g} (payment-checkout-availability-server).", "percentunit",
            [query(f"sum(increase({HANDLED}{answered}[$__range])) / sum(increase({HANDLED}{counted}[$__range]))",
                   instant=True)],
            width=3, height=8, base="red", steps=((answered_target, "green"),), decimals=4))
        .with_panel(stat_panel(
            f"Within {AUTHORIZE_S * 1000:g} ms over the range",
            f"Share of Authorize calls answered within {AUTHORIZE_S * 1000:g} ms over the selected time range, "
            f"against {latency_target:g} (payment-authorize-latency-server).", "percentunit",
            [query(within(AUTHORIZE, jobs, AUTHORIZE_S, window="$__range"), instant=True)],
            width=5, height=8, base="red", steps=((latency_target, "green"),), decimals=3))
        .with_panel(timeseries_panel(
            "Payments by operation and outcome",
            "Answered payment calls per second (casemesh_payments_gateway_payments_total): authorize approved "
            "(authorized, or captured for a sale), declined_issuer, declined_fraud, unavailable (no acquirer could "
            "take it, or a dependency failed: nothing held, the client retries with its key); capture, void and "
            "refund ok or unavailable. Replays and requests refused for their content are not counted here.", "ops",
            [query(rate(PAYMENTS, jobs, ("operation", "outcome")), "{{operation}} {{outcome}}")],
            width=12, stacked=True))
        .with_panel(timeseries_panel(
            "Declines by reason",
            "Authorize calls declined over all answered Authorize calls, by reason: the issuer (a test card, an "
            "expired card, the acquirer's decline rate; casemesh_payments_gateway_payments_total declined_issuer) "
            "or the fraud rules (declined_fraud: blocked before any acquirer saw the payment).", "percentunit",
            refs([(f"{rate(PAYMENTS, by_issuer)} / {rate(PAYMENTS, authorized)}", "issuer"),
                  (f"{rate(PAYMENTS, by_fraud)} / {rate(PAYMENTS, authorized)}", "fraud")]), width=12, max_value=1))
    )
    attempts = "casemesh_payments_gateway_attempts_total"
    board = (
        board.with_row(Row("Routing and failover: cheapest acquirer first, the next when one fails"))
        .with_panel(timeseries_panel(
            "Attempts by acquirer and result",
            "Authorization attempts the gateway sent per second (casemesh_payments_gateway_attempts_total), by "
            "acquirer and result: approved, declined (by the issuer), refused (the acquirer answered it did not "
            "process it, e.g. a reference already voided), not_sent (the mesh channel's circuit breaker failed it "
            "fast: nothing left the process), unknown (no answer: UNAVAILABLE, DEADLINE_EXCEEDED; reversed with a "
            "Void, and with failover the next acquirer is tried).", "ops",
            [query(rate(attempts, jobs, ("acquirer", "result")), "{{acquirer}} {{result}}")], width=8, stacked=True))
        .with_panel(timeseries_panel(
            "Failovers",
            "Payments sent on to the next acquirer after one failed, per second, by the acquirer that failed "
            "(casemesh_payments_gateway_failovers_total), and the share of answered Authorize calls that needed "
            "one. The A/B switch payments-gateway.failover: off, a failing acquirer ends the call UNAVAILABLE "
            "instead.", "short",
            refs([(rate("casemesh_payments_gateway_failovers_total", jobs, ("from_acquirer",)),
                   "from {{from_acquirer}} /s"),
                  (f"{rate('casemesh_payments_gateway_failovers_total', jobs)} / {rate(PAYMENTS, authorized)}",
                   "share of Authorize")]), width=6))
        .with_panel(timeseries_panel(
            "Acquirer breakers open",
            "1 while the gateway's circuit breaker of an acquirer is open (casemesh_payments_gateway_breaker_open: "
            "breaker_consecutive_failures unknown outcomes in a row, or the failure ratio over breaker_window_s): "
            "routing skips it until a probe after breaker_cooldown_s is answered.", "short",
            [query(f"max by (acquirer) (casemesh_payments_gateway_breaker_open{jobs})", "{{acquirer}}")],
            width=4, min_value=0, max_value=1))
        .with_panel(timeseries_panel(
            "Reversals",
            "Voids of attempts whose outcome is unknown, per second (casemesh_payments_gateway_reversals_total): "
            "reversed (the acquirer confirmed: nothing held there), retried (a Void failed: sent again after a "
            "backoff), refused (a person must look); and the attempts REVERSING now "
            "(casemesh_payments_gateway_reversals_pending).", "short",
            refs([(rate("casemesh_payments_gateway_reversals_total", jobs, ("acquirer", "outcome")),
                   "{{acquirer}} {{outcome}} /s"),
                  (f"sum(casemesh_payments_gateway_reversals_pending{jobs})", "pending")]), width=6))
    )
    authorizations = "casemesh_payments_acquirer_authorizations_total"
    board = (
        board.with_row(Row("Acquirers: the simulated issuers, the ledgers and the settlement batches"))
        .with_panel(latency_panel(
            "Issuer round trip",
            "The simulated issuer's round trip of each authorization an acquirer decided "
            "(casemesh_payments_acquirer_issuer_latency_seconds: lognormal, latency_median_ms and latency_sigma of "
            "each acquirer's settings), median and 99th percentile per acquirer.",
            "casemesh_payments_acquirer_issuer_latency_seconds", jobs, ("acquirer",), "{{acquirer}}",
            quantiles=(0.5, 0.99), width=6))
        .with_panel(timeseries_panel(
            "Authorizations by result",
            "Authorizations each acquirer decided per second, once per reference "
            "(casemesh_payments_acquirer_authorizations_total): approved, declined by the issuer, refused (the "
            "reference was voided before its authorization arrived: a late attempt refused, nothing held).", "ops",
            [query(rate(authorizations, jobs, ("acquirer", "result")), "{{acquirer}} {{result}}")],
            width=6, stacked=True))
        .with_panel(timeseries_panel(
            "Captures, refunds and voids",
            "Captures and refunds booked into each acquirer's open settlement batch per second "
            "(casemesh_payments_acquirer_captures_total, ..._refunds_total), and voids recorded "
            "(casemesh_payments_acquirer_voids_total): release (an approved authorization released) or tombstone "
            "(a reference never seen, recorded voided so a late Authorize is refused).", "ops",
            refs([(rate("casemesh_payments_acquirer_captures_total", jobs, ("acquirer",)), "captures {{acquirer}}"),
                  (rate("casemesh_payments_acquirer_refunds_total", jobs, ("acquirer",)), "refunds {{acquirer}}"),
                  (rate("casemesh_payments_acquirer_voids_total", jobs, ("acquirer", "kind")),
                   "voids {{kind}} {{acquirer}}")]), width=6))
        .with_panel(timeseries_panel(
            "Repeats answered from the ledger",
            "Calls an acquirer answered with its first answer, the same reference (or refund reference) again: "
            "the gateway's retries and resumptions (casemesh_payments_acquirer_repeats_total), per RPC.", "ops",
            [query(rate("casemesh_payments_acquirer_repeats_total", jobs, ("acquirer", "rpc")),
                   "{{acquirer}} {{rpc}}")], width=6))
        .with_panel(stat_panel(
            "Batches closed over the range",
            "Settlement batches each acquirer closed over the selected time range (settlement files written: "
            "casemesh_payments_acquirer_batches_closed_total; SettlementService/Reconcile closes one per acquirer).",
            "short", [query(over_range("casemesh_payments_acquirer_batches_closed_total", jobs, ("acquirer",)),
                            "{{acquirer}}", instant=True)], width=12, height=8))
        .with_panel(latency_panel(
            "Ledger group commit",
            "One group commit to an acquirer's ledger, fsync included (casemesh_payments_acquirer_write_seconds): "
            "every authorization, capture, refund and void is on disk before it is answered.",
            "casemesh_payments_acquirer_write_seconds", jobs, ("acquirer",), "{{acquirer}}", quantiles=(0.5, 0.99),
            width=12))
    )
    decisions = "casemesh_payments_fraud_decisions_total"
    blocked = selector(JOB, 'decision="block"')
    board = (
        board.with_row(Row("Fraud: weighted rules over sliding windows, blocked before any acquirer"))
        .with_panel(timeseries_panel(
            "Decisions",
            "Payments the fraud rules scored per second, once per payment (casemesh_payments_fraud_decisions_total): "
            "allow, review (a score at or above review_threshold: the payment goes on), block (at or above "
            "block_threshold: declined fraud_blocked, no acquirer asked).", "ops",
            [query(rate(decisions, jobs, ("decision",)), "{{decision}}")], width=6, stacked=True))
        .with_panel(timeseries_panel(
            "Rule hits",
            "Rules that fired per second (casemesh_payments_fraud_rule_hits_total): card_velocity (too many "
            "payments on one card in the window), card_testing (a customer with several distinct cards: a bot "
            "testing stolen numbers), amount_spike (far above the card's mean), large_first_payment.", "ops",
            [query(rate("casemesh_payments_fraud_rule_hits_total", jobs, ("rule",)), "{{rule}}")], width=6))
        .with_panel(timeseries_panel(
            "Fraud score",
            "The score of each payment scored, 0 (clean) to 100 (casemesh_payments_fraud_score): median, 99th "
            "percentile and mean.", "short",
            refs([(quantile(0.5, "casemesh_payments_fraud_score", jobs), "p50"),
                  (quantile(0.99, "casemesh_payments_fraud_score", jobs), "p99"),
                  (mean("casemesh_payments_fraud_score", jobs), "mean")]), width=6))
        .with_panel(timeseries_panel(
            "Failed open and repeats",
            "Payments the gateway let through with score 0 because the fraud service could not answer "
            "(casemesh_payments_gateway_fraud_fail_open_total; fraud_fail_open), ScorePayment calls for a payment "
            "already scored, answered with the first answer (casemesh_payments_fraud_repeats_total), and the share "
            "of scored payments blocked.", "short",
            refs([(rate("casemesh_payments_gateway_fraud_fail_open_total", jobs), "failed open /s"),
                  (rate("casemesh_payments_fraud_repeats_total", jobs), "repeats /s"),
                  (f"{rate(decisions, blocked)} / {rate(decisions, jobs)}",
                   "blocked share")]), width=6))
    )
    board = (
        board.with_row(Row("Vault: cards tokenized, numbers only to the gateway"))
        .with_panel(timeseries_panel(
            "Cards tokenized by brand",
            "Cards stored by TokenizeCard per second, once on disk (casemesh_payments_vault_cards_tokenized_total), "
            "by brand from the number's leading digits.", "ops",
            [query(rate("casemesh_payments_vault_cards_tokenized_total", jobs, ("brand",)), "{{brand}}")],
            width=8, stacked=True))
        .with_panel(timeseries_panel(
            "DetokenizeCard by outcome",
            "The gateway's DetokenizeCard calls per second (casemesh_payments_vault_detokenize_total): ok, "
            "not_found and wrong_merchant (both answered NOT_FOUND alike: a token is its merchant's only), invalid, "
            "undecryptable (the card's key no longer held, or the stored row failed authentication), unavailable.",
            "ops", [query(rate("casemesh_payments_vault_detokenize_total", jobs, ("outcome",)), "{{outcome}}")],
            width=8, stacked=True))
        .with_panel(latency_panel(
            "Vault group commit",
            "One group commit of new cards to the vault's SQLite file, fsync included "
            "(casemesh_payments_vault_write_seconds): a card is on disk, sealed, before its token is answered.",
            "casemesh_payments_vault_write_seconds", jobs, (), "", quantiles=(0.5, 0.99), width=8))
    )
    board = (
        board.with_row(Row("Idempotency: one payment per key, whatever the client retries"))
        .with_panel(timeseries_panel(
            "Replays by operation",
            "Calls answered from the stored answer of their idempotency key per second "
            "(casemesh_payments_gateway_idempotent_replays_total): a client's retry after its answer was lost, a "
            "double click after the first answer.", "ops",
            [query(rate("casemesh_payments_gateway_idempotent_replays_total", jobs, ("operation",)),
                   "{{operation}}")], width=6))
        .with_panel(timeseries_panel(
            "Key conflicts",
            "Gateway calls refused for their key per second: ABORTED (a call with the same key in flight: a double "
            "click's second send, retried by the client) and FAILED_PRECONDITION (the key used for a different "
            "request, or a payment not in the state the call needs).", "reqps",
            [query(rate(HANDLED, selector(JOB, f'grpc_service="{GATEWAY}"', 'grpc_code=~"Aborted|FailedPrecondition"'),
                        ("grpc_method", "grpc_code")), "{{grpc_method}} {{grpc_code}}")], width=6, stacked=True))
        .with_panel(timeseries_panel(
            "Keys resumed in the background",
            "Idempotency keys left IN_FLIGHT by a call that died or gave up, resolved by the gateway's sweep after "
            "resume_grace_s (casemesh_payments_gateway_resumed_total): reversed (an Authorize's attempts left SENT "
            "reversed), finished (a capture, void or refund completed), failed (refused, the key released), "
            "unavailable (left for the next look).", "ops",
            [query(rate("casemesh_payments_gateway_resumed_total", jobs, ("operation", "outcome")),
                   "{{operation}} {{outcome}}")], width=6))
        .with_panel(latency_panel(
            "Gateway group commit",
            "One group commit to the gateway's SQLite file, fsync included (casemesh_payments_gateway_write_seconds): "
            "the key and the payment before any call out, each attempt before it is sent, the outcome with the "
            "answer.", "casemesh_payments_gateway_write_seconds", jobs, (), "", quantiles=(0.5, 0.99), width=6))
    )
    reconciles = selector(JOB, f'grpc_service="{SETTLEMENT}"', 'grpc_method="Reconcile"')
    board = (
        board.with_row(Row("Settlement: the acquirers' files reconciled with the gateway's ledger"))
        .with_panel(stat_panel(
            "Reconciliations over the range",
            "SettlementService/Reconcile runs over the selected time range by outcome "
            "(casemesh_payments_gateway_reconciliations_total): ok (zero discrepancies), discrepancies, "
            "unavailable (an acquirer could not be reached: its closed batch is reconciled by the next run).",
            "short", [query(over_range("casemesh_payments_gateway_reconciliations_total", jobs, ("outcome",)),
                            "{{outcome}}", instant=True)], width=6, height=8))
        .with_panel(stat_panel(
            "Discrepancies over the range",
            "Discrepancies the reconciliations found over the selected time range by kind "
            "(casemesh_payments_gateway_settlement_discrepancies_total): unknown_reference (a line the gateway never "
            "recorded), amount_mismatch, duplicate_line, wrong_acquirer, unsettled (recorded, and in no file after "
            "two cut-offs). Anything here fails payment-settlement-reconciles.", "short",
            [query(over_range("casemesh_payments_gateway_settlement_discrepancies_total", jobs, ("kind",)),
                   "{{kind}}", instant=True)], width=6, height=8, base="green", steps=((1, "red"),)))
        .with_panel(timeseries_panel(
            "Reconcile calls by code",
            "SettlementService/Reconcile calls per second by status (ABORTED while another runs, UNAVAILABLE when an "
            "acquirer cannot be reached).", "reqps",
            [query(rate(HANDLED, reconciles, ("grpc_code",)), "{{grpc_code}}")], width=6))
        .with_panel(timeseries_panel(
            "Reconcile duration",
            "99th percentile handling time of Reconcile: CloseBatch at every acquirer, their files streamed "
            "(GetSettlementFile) and every line matched, the report written.", "s",
            [query(quantile(0.99, HANDLING, reconciles), "p99", exemplar=True)], width=6))
    )
    calls = selector(JOB, PAYMENT_SERVICES)
    board = (
        board.with_row(Row("gRPC per payment service"))
        .with_panel(timeseries_panel(
            "Request rate", "Calls handled per second by each payment method. DetokenizeCard, ScorePayment and every "
            "AcquirerService method are the gateway's calls to the other services; GetSettlementFile counts "
            "streams when they end.", "reqps",
            [query(rate(HANDLED, calls, ("grpc_service", "grpc_method")), "{{grpc_service}}/{{grpc_method}}")],
            width=8))
        .with_panel(timeseries_panel(
            "Errors by code", "Failed calls per second (codes other than OK, NotFound, InvalidArgument, "
            "AlreadyExists); GetSettlementFile and Reconcile are left out (Reconcile is in the settlement row). The "
            "gateway's Aborted is a double click in flight, its FailedPrecondition a key reused or a payment in the "
            "wrong state; an acquirer's Authorize FailedPrecondition a late attempt refused after its reversal.",
            "reqps",
            [query(rate(HANDLED, selector(JOB, PAYMENT_SERVICES, NOT_STREAMS, ERROR_CODES_MATCHER),
                        ("grpc_method", "grpc_code")), "{{grpc_method}} {{grpc_code}}")], width=8, stacked=True))
        .with_panel(timeseries_panel(
            "p99 duration", "99th percentile server handling time per method, GetSettlementFile and Reconcile left "
            "out. Dots are exemplars.", "s",
            [query(quantile(0.99, HANDLING, selector(JOB, PAYMENT_SERVICES, NOT_STREAMS),
                            ("grpc_service", "grpc_method")), "{{grpc_service}}/{{grpc_method}}", exemplar=True)],
            width=8))
    )
    return board
