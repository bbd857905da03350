"""Online banking: Transfer against its 250 ms p99 and its three nines, balance reads against 100 ms, the fraud rules
that decline a transfer before the ledger moves money, the double-entry ledger (per-account two-phase locking, the A/B
switch ``banking-ledger.locking``; the group commit; reconciliation), and the PENDING-before-posting protocol of the
transfers with its background recovery.

Case study: seed 001 #14, shared/seeds/001_58dfc580020147d2.txt line 39 ("| 14 | Online Banking | Double-entry ledger,
ACID transactions, fraud detection, reconciliation | 100M accounts, Chase/Wells Fargo |"); contracts in
protos/casemesh/banking/v1/, SLOs in harness/profiles/banking.slo.yaml (the server-side twins drawn here:
banking-transfer-latency-server, banking-transfer-availability-server and banking-balance-read-latency-server; their
targets are read from that file when the dashboard is built).

Service metrics, as the banking services expose them: ``casemesh_banking_transfers_transfers_total{status,
decline_reason}`` (``completed`` with ``none``; ``declined`` with ``insufficient_funds``, ``daily_limit``,
``velocity``, ``new_payee_amount``), ``casemesh_banking_transfers_fraud_declines_total{rule}`` (``daily_limit``,
``velocity``, ``new_payee_amount``), ``casemesh_banking_transfers_deposits_total``,
``casemesh_banking_transfers_idempotent_replays_total{operation}`` (``transfer``, ``deposit``),
``casemesh_banking_transfers_pending``, ``casemesh_banking_transfers_ledger_call_seconds{method}``,
``casemesh_banking_transfers_ledger_calls_total{method,code}``, ``casemesh_banking_transfers_recoveries_total{kind,
outcome}`` (``completed``, ``declined``, ``unavailable``, ``failed``), ``casemesh_banking_transfers_write_seconds``
(banking-transfers, services/banking/transfers/metrics.py); ``casemesh_banking_ledger_entries_posted_total``,
``casemesh_banking_ledger_idempotent_replays_total``, ``casemesh_banking_ledger_insufficient_funds_total``,
``casemesh_banking_ledger_lock_wait_seconds{locking}`` (``account``, ``global``, ``none``: the A/B switch),
``casemesh_banking_ledger_commit_seconds``, ``casemesh_banking_ledger_entries_per_commit``,
``casemesh_banking_ledger_accounts``, ``casemesh_banking_ledger_sequence``,
``casemesh_banking_ledger_reconcile_runs_total{outcome}`` (``balanced``, ``discrepancies``),
``casemesh_banking_ledger_reconcile_discrepancies_total`` (banking-ledger, services/banking/ledger/metrics.py); and the
runtime's ``grpc_server_handled_total`` and ``grpc_server_handling_seconds`` of the banking services (the twins of
Transfer and GetAccount). Only the gRPC histograms carry exemplars.

``LedgerService/Reconcile`` checks the whole ledger (every entry, every balance: its time grows with the journal, once
a run): it is left out of the gRPC duration and error panels and has panels of its own in the reconciliation row.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from casemesh.harness.profile import PROFILES_DIR, SLO_FILE_SUFFIX

from .common import (
    ERROR_CODES_MATCHER, latency_panel, le, mean, new_dashboard, quantile, query, query_variable, rate, refs, selector,
    slo_targets, stat_panel, timeseries_panel, within,
)

UID = "casemesh-banking"
TRANSFERS = "casemesh.banking.v1.TransferService"
LEDGER = "casemesh.banking.v1.LedgerService"
HANDLING = "grpc_server_handling_seconds"
HANDLED = "grpc_server_handled_total"
#: The banking profile's SLOs: the targets drawn here are read from it (:func:`targets`).
SLO_FILE = PROFILES_DIR / f"banking{SLO_FILE_SUFFIX}"
#: banking-transfer-latency-server (banking.slo.yaml): Transfer calls handled within 250 ms, a bucket of
#: grpc_server_handling_seconds.
TRANSFER_S = 0.25
#: banking-balance-read-latency-server: GetAccount calls handled within 100 ms.
BALANCE_S = 0.1
#: banking-transfer-availability-server: Transfer answered OK over every Transfer but ABORTED (a double tap's second
#: send while the first is in flight, retried by the client).
NOT_ABORTED = 'grpc_code!="Aborted"'
DECIDED = "casemesh_banking_transfers_transfers_total"
JOB = 'job=~"$job"'
BANKING_SERVICES = r'grpc_service=~"casemesh\\.banking\\.v1\\..+"'
#: The banking services' jobs.
BANKING_JOBS = r'{__name__="grpc_server_handled_total", grpc_service=~"casemesh\\.banking\\.v1\\..+"}'
#: Reconcile reads the whole journal (drawn on its own).
NOT_RECONCILE = 'grpc_method!="Reconcile"'


def over_range(metric: str, matchers: str, by: tuple[str, ...] = ()) -> str:
    """``sum by (BY) (increase(METRIC{...}[$__range]))``: events of the selected time range (rare ones:
    reconciliations)."""
    grouping = f" by ({', '.join(by)})" if by else ""
    return f"sum{grouping} (increase({metric}{matchers}[$__range]))"


def build() -> Dashboard:
    target = slo_targets(SLO_FILE)
    latency_target = target["banking-transfer-latency-server"]
    answered_target = target["banking-transfer-availability-server"]
    balance_target = target["banking-balance-read-latency-server"]
    jobs = selector(JOB)
    transfers = selector(JOB, f'grpc_service="{TRANSFERS}"', 'grpc_method="Transfer"')
    counted = selector(JOB, f'grpc_service="{TRANSFERS}"', 'grpc_method="Transfer"', NOT_ABORTED)
    answered = selector(JOB, f'grpc_service="{TRANSFERS}"', 'grpc_method="Transfer"', 'grpc_code="OK"')
    balances = selector(JOB, f'grpc_service="{LEDGER}"', 'grpc_method="GetAccount"')
    declined = selector(JOB, 'status="declined"')
    transfer_ms, balance_ms = f"{TRANSFER_S * 1000:g} ms", f"{BALANCE_S * 1000:g} ms"
    board = (
        new_dashboard(UID, "casemesh / online banking",
                      "The online-banking case study (Chase / Wells Fargo): Transfer against its 250 ms p99 and its "
                      "three nines, balance reads, the fraud rules, the double-entry ledger (per-account locking, "
                      "the group commit, reconciliation: the books must balance), and the transfers' PENDING rows "
                      "finished by the background recovery.",
                      ["banking"])
        .with_variable(query_variable("job", "Job", f"label_values({BANKING_JOBS}, job)"))
    )
    board = (
        board.with_row(Row(f"Transfer: {latency_target:.0%} within {transfer_ms}, {answered_target:.1%} answered OK"))
        .with_panel(latency_panel(
            f"Transfer time vs {transfer_ms}",
            "TransferService/Transfer handling time in banking-transfers (grpc_server_handling_seconds): two "
            "GetAccount, the fraud rules, the PENDING row's fsync, the ledger's PostEntry (its locks and group "
            "commit) and the decision's fsync. The dashed line is the SLO banking-transfer-latency-server of "
            "banking.slo.yaml (the server-side twin of banking-transfer-latency). Dots are exemplars.",
            HANDLING, transfers, (), "", width=6, threshold_s=TRANSFER_S))
        .with_panel(timeseries_panel(
            f"Transfers within {transfer_ms}",
            f"Share of Transfer calls handled within {transfer_ms} (le=\"{le(TRANSFER_S)}\" bucket over the count "
            f"of grpc_server_handling_seconds: banking-transfer-latency-server); the dashed line is its target "
            f"{latency_target:g}.", "percentunit",
            [query(within(HANDLING, transfers, TRANSFER_S), f"within {transfer_ms}")],
            width=5, threshold_line=(latency_target, "red"), max_value=1))
        .with_panel(timeseries_panel(
            "Transfer answered OK",
            f"TransferService/Transfer calls answered OK (completed or declined: a decline is an answer) over all "
            f"of them but ABORTED (a double tap's second send while the first is in flight, which the client "
            f"retries): the SLO banking-transfer-availability-server of banking.slo.yaml; the dashed line is its "
            f"target {answered_target:g}.", "percentunit",
            [query(f"{rate(HANDLED, answered)} / {rate(HANDLED, counted)}", "answered OK")],
            width=5, threshold_line=(answered_target, "red"), max_value=1))
        .with_panel(stat_panel(
            "Answered OK over the range",
            f"Share of Transfer calls answered OK over the selected time range (ABORTED left out), against "
            f"{answered_target:g} (banking-transfer-availability-server).", "percentunit",
            [query(f"sum(increase({HANDLED}{answered}[$__range])) / sum(increase({HANDLED}{counted}[$__range]))",
                   instant=True)],
            width=3, height=8, base="red", steps=((answered_target, "green"),), decimals=4))
        .with_panel(stat_panel(
            f"Within {transfer_ms} over the range",
            f"Share of Transfer calls handled within {transfer_ms} over the selected time range, against "
            f"{latency_target:g} (banking-transfer-latency-server).", "percentunit",
            [query(within(HANDLING, transfers, TRANSFER_S, window="$__range"), instant=True)],
            width=5, height=8, base="red", steps=((latency_target, "green"),), decimals=3))
        .with_panel(latency_panel(
            f"GetAccount time vs {balance_ms}",
            "LedgerService/GetAccount handling time in banking-ledger (grpc_server_handling_seconds): an in-memory "
            "read, so what it shows is the ledger's event loop under the commits' load; the customers' balance "
            "reads and banking-transfers' own (two per transfer) alike. The dashed line is the SLO "
            "banking-balance-read-latency-server of banking.slo.yaml. Dots are exemplars.",
            HANDLING, balances, (), "", width=8, threshold_s=BALANCE_S))
        .with_panel(timeseries_panel(
            f"Balance reads within {balance_ms}",
            f"Share of GetAccount calls handled within {balance_ms} (le=\"{le(BALANCE_S)}\" bucket over the count "
            f"of grpc_server_handling_seconds: banking-balance-read-latency-server); the dashed line is its target "
            f"{balance_target:g}.", "percentunit",
            [query(within(HANDLING, balances, BALANCE_S), f"within {balance_ms}")],
            width=8, threshold_line=(balance_target, "red"), max_value=1))
        .with_panel(stat_panel(
            f"Balance reads within {balance_ms} over the range",
            f"Share of GetAccount calls handled within {balance_ms} over the selected time range, against "
            f"{balance_target:g} (banking-balance-read-latency-server).", "percentunit",
            [query(within(HANDLING, balances, BALANCE_S, window="$__range"), instant=True)],
            width=8, height=8, base="red", steps=((balance_target, "green"),), decimals=3))
    )
    fraud = "casemesh_banking_transfers_fraud_declines_total"
    board = (
        board.with_row(Row("Decisions: completed or declined, the fraud rules before the ledger"))
        .with_panel(timeseries_panel(
            "Transfers by status and decline reason",
            "Transfers decided per second, once each (casemesh_banking_transfers_transfers_total; by a call or by "
            "the recovery, replays not counted again): completed, or declined for insufficient_funds (the ledger "
            "refused the debit), daily_limit, velocity or new_payee_amount (a fraud rule: nothing was posted).",
            "ops", [query(rate(DECIDED, jobs, ("status", "decline_reason")), "{{status}} {{decline_reason}}")],
            width=8, stacked=True))
        .with_panel(timeseries_panel(
            "Fraud declines by rule",
            "Transfers a fraud rule declined per second (casemesh_banking_transfers_fraud_declines_total), checked "
            "in this order: daily_limit (the account's outgoing transfers of 24 h would pass daily_limit_minor), "
            "velocity (velocity_max_transfers within velocity_window_s already), new_payee_amount (a first "
            "transfer to a payee at or above new_payee_threshold_minor: the account-takeover pattern). The A/B "
            "switch banking-transfers.fraud_rules=false turns them off.", "ops",
            [query(rate(fraud, jobs, ("rule",)), "{{rule}}")], width=8, stacked=True))
        .with_panel(timeseries_panel(
            "Declined share",
            "Decided transfers declined, over all decided (casemesh_banking_transfers_transfers_total), and the "
            "share a fraud rule declined (casemesh_banking_transfers_fraud_declines_total).", "percentunit",
            refs([(f"{rate(DECIDED, declined)} / {rate(DECIDED, jobs)}", "declined"),
                  (f"{rate(fraud, jobs)} / {rate(DECIDED, jobs)}", "by a fraud rule")]), width=8, max_value=1))
    )
    board = (
        board.with_row(Row("Ledger: balanced entries, per-account locks, one fsync per group commit"))
        .with_panel(timeseries_panel(
            "Entries posted and refused",
            "Journal entries committed per second (casemesh_banking_ledger_entries_posted_total: transfers and "
            "deposits), PostEntry calls answered with the entry already posted under their entry_id "
            "(casemesh_banking_ledger_idempotent_replays_total: retries and the recovery), and entries refused "
            "because a customer account would go below zero (casemesh_banking_ledger_insufficient_funds_total).",
            "ops",
            refs([(rate("casemesh_banking_ledger_entries_posted_total", jobs), "posted"),
                  (rate("casemesh_banking_ledger_idempotent_replays_total", jobs), "replayed"),
                  (rate("casemesh_banking_ledger_insufficient_funds_total", jobs), "insufficient funds")]),
            width=6))
        .with_panel(latency_panel(
            "Lock wait by locking mode",
            "From a PostEntry's first lock request until it holds every lock of its mode "
            "(casemesh_banking_ledger_lock_wait_seconds), by the A/B switch banking-ledger.locking: account "
            "(two-phase locking of the debited accounts: only entries debiting the same account wait), global (one "
            "lock: every entry waits for the one before, commit and fsync included), none (no wait, and no "
            "isolation: concurrent debits can overdraw).", "casemesh_banking_ledger_lock_wait_seconds", jobs,
            ("locking",), "{{locking}}", quantiles=(0.5, 0.99), width=6))
        .with_panel(latency_panel(
            "Group commit time",
            "One group commit to the ledger's SQLite file, fsync included (casemesh_banking_ledger_commit_seconds): "
            "every entry is durable before it is applied and answered.",
            "casemesh_banking_ledger_commit_seconds", jobs, (), "", quantiles=(0.5, 0.99), width=6))
        .with_panel(timeseries_panel(
            "Entries per commit",
            "Writes (entries, account openings) per group commit (casemesh_banking_ledger_entries_per_commit): how "
            "many share one fsync. Under locking=global it stays at 1.", "short",
            refs([(quantile(0.5, "casemesh_banking_ledger_entries_per_commit", jobs), "p50"),
                  (quantile(0.99, "casemesh_banking_ledger_entries_per_commit", jobs), "p99"),
                  (mean("casemesh_banking_ledger_entries_per_commit", jobs), "mean")]), width=6))
    )
    reconciles = selector(JOB, f'grpc_service="{LEDGER}"', 'grpc_method="Reconcile"')
    board = (
        board.with_row(Row("Reconciliation: every entry sums to zero, every balance to its postings"))
        .with_panel(stat_panel(
            "Reconcile runs over the range",
            "LedgerService/Reconcile runs over the selected time range by outcome "
            "(casemesh_banking_ledger_reconcile_runs_total): balanced, or discrepancies.", "short",
            [query(over_range("casemesh_banking_ledger_reconcile_runs_total", jobs, ("outcome",)), "{{outcome}}",
                   instant=True)], width=5, height=8))
        .with_panel(stat_panel(
            "Discrepancies over the range",
            "Discrepancy lines the reconciliations reported over the selected time range "
            "(casemesh_banking_ledger_reconcile_discrepancies_total): an entry not summing to zero, a balance not "
            "equal to its postings, a currency not summing to zero, a customer account below zero. It must be "
            "zero; banking-ledger.locking=none is how it is not.", "short",
            [query(over_range("casemesh_banking_ledger_reconcile_discrepancies_total", jobs), instant=True)],
            width=4, height=8, base="green", steps=((1, "red"),)))
        .with_panel(stat_panel(
            "Accounts",
            "Accounts open in the ledger, the bank's cash accounts included (casemesh_banking_ledger_accounts).",
            "short", [query(f"sum(casemesh_banking_ledger_accounts{jobs})")], width=3, height=8))
        .with_panel(stat_panel(
            "Journal sequence",
            "The sequence number of the last journal entry applied (casemesh_banking_ledger_sequence): entries "
            "posted since the ledger was created.", "short",
            [query(f"max(casemesh_banking_ledger_sequence{jobs})")], width=4, height=8))
        .with_panel(timeseries_panel(
            "Reconcile calls by code",
            "LedgerService/Reconcile calls per second by status.", "reqps",
            [query(rate(HANDLED, reconciles, ("grpc_code",)), "{{grpc_code}}")], width=4))
        .with_panel(timeseries_panel(
            "Reconcile duration",
            "99th percentile handling time of Reconcile: the balances copied while no entry is between its commit "
            "and its apply, then every entry of the journal read and summed.", "s",
            [query(quantile(0.99, HANDLING, reconciles), "p99", exemplar=True)], width=4))
    )
    board = (
        board.with_row(Row("Transfers: PENDING before posting, the same entry for every retry, the recovery"))
        .with_panel(timeseries_panel(
            "Transfers pending",
            "Transfers and deposits written PENDING and not yet decided (casemesh_banking_transfers_pending): in "
            "flight to the ledger, or left by a call the ledger did not answer until the customer's retry or the "
            "recovery finishes them.", "short",
            [query(f"sum(casemesh_banking_transfers_pending{jobs})", "pending")], width=6, min_value=0))
        .with_panel(timeseries_panel(
            "Recoveries by kind and outcome",
            "PENDING transfers and deposits the background recovery took up per second, recovery_grace_s after "
            "they were written (casemesh_banking_transfers_recoveries_total): completed, declined (insufficient "
            "funds), unavailable (the ledger still unreachable: left for the next look), failed (refused: left "
            "PENDING, logged).", "ops",
            [query(rate("casemesh_banking_transfers_recoveries_total", jobs, ("kind", "outcome")),
                   "{{kind}} {{outcome}}")], width=6))
        .with_panel(timeseries_panel(
            "Deposits and replays",
            "Deposits posted per second (casemesh_banking_transfers_deposits_total, OpenAccount's initial deposits "
            "included), and calls answered from the stored decision of their idempotency key "
            "(casemesh_banking_transfers_idempotent_replays_total) by operation.", "ops",
            refs([(rate("casemesh_banking_transfers_deposits_total", jobs), "deposits"),
                  (rate("casemesh_banking_transfers_idempotent_replays_total", jobs, ("operation",)),
                   "replayed {{operation}}")]), width=6))
        .with_panel(timeseries_panel(
            "Key conflicts",
            "TransferService calls refused for their key or state per second: ABORTED (a call with the same key in "
            "flight: a double tap's second send, retried by the client) and FAILED_PRECONDITION (the key used for a "
            "different request, or accounts in different currencies).", "reqps",
            [query(rate(HANDLED, selector(JOB, f'grpc_service="{TRANSFERS}"',
                                          'grpc_code=~"Aborted|FailedPrecondition"'), ("grpc_method", "grpc_code")),
                   "{{grpc_method}} {{grpc_code}}")], width=6, stacked=True))
        .with_panel(latency_panel(
            "Ledger calls",
            "banking-transfers' calls to banking-ledger from sending to the answer or failure "
            "(casemesh_banking_transfers_ledger_call_seconds), by method: OpenAccount, PostEntry, GetAccount.",
            "casemesh_banking_transfers_ledger_call_seconds", jobs, ("method",), "{{method}}",
            quantiles=(0.5, 0.99), width=8))
        .with_panel(timeseries_panel(
            "Ledger calls by code",
            "banking-transfers' calls to banking-ledger per second by method and status code "
            "(casemesh_banking_transfers_ledger_calls_total): FAILED_PRECONDITION is insufficient funds, "
            "UNAVAILABLE or DEADLINE_EXCEEDED a ledger that did not answer (the row stays PENDING).", "reqps",
            [query(rate("casemesh_banking_transfers_ledger_calls_total", jobs, ("method", "code")),
                   "{{method}} {{code}}")], width=8, stacked=True))
        .with_panel(latency_panel(
            "Transfers' group commit",
            "One group commit to banking-transfers' SQLite file, fsync included "
            "(casemesh_banking_transfers_write_seconds): the PENDING row before the ledger is asked, the decision "
            "before the answer.", "casemesh_banking_transfers_write_seconds", jobs, (), "", quantiles=(0.5, 0.99),
            width=8))
    )
    calls = selector(JOB, BANKING_SERVICES)
    board = (
        board.with_row(Row("gRPC per banking service"))
        .with_panel(timeseries_panel(
            "Request rate", "Calls handled per second by each banking method. OpenAccount and PostEntry of "
            "LedgerService, and most of its GetAccount, are banking-transfers' calls.", "reqps",
            [query(rate(HANDLED, calls, ("grpc_service", "grpc_method")), "{{grpc_service}}/{{grpc_method}}")],
            width=8))
        .with_panel(timeseries_panel(
            "Errors by code", "Failed calls per second (codes other than OK, NotFound, InvalidArgument, "
            "AlreadyExists); Reconcile left out (it is in the reconciliation row). Transfer's Aborted is a double "
            "tap in flight, FailedPrecondition a key reused or a currency mismatch; PostEntry's FailedPrecondition "
            "is insufficient funds.", "reqps",
            [query(rate(HANDLED, selector(JOB, BANKING_SERVICES, NOT_RECONCILE, ERROR_CODES_MATCHER),
                        ("grpc_method", "grpc_code")), "{{grpc_method}} {{grpc_code}}")], width=8, stacked=True))
        .with_panel(timeseries_panel(
            "p99 duration", "99th percentile server handling time per method, Reconcile left out. Dots are "
            "exemplars.", "s",
            [query(quantile(0.99, HANDLING, selector(JOB, BANKING_SERVICES, NOT_RECONCILE),
                            ("grpc_service", "grpc_method")), "{{grpc_service}}/{{grpc_method}}", exemplar=True)],
            width=8))
    )
    return board
