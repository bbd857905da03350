"""payments-gateway's own metrics (``casemesh_payments_gateway_*``), seed 001 #25 (PSP routing, settlement).

- ``casemesh_payments_gateway_payments_total{operation,outcome}``: answered calls. ``authorize``: ``approved``
  (AUTHORIZED or CAPTURED), ``declined_issuer``, ``declined_fraud``, ``unavailable`` (no acquirer could take it, or a
  dependency failed: UNAVAILABLE); ``capture``, ``void``, ``refund``: ``ok`` or ``unavailable``. Replays and
  requests refused for their content (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, ABORTED) are not counted
  here (``grpc_server_handled_total`` has them);
- ``casemesh_payments_gateway_authorize_seconds`` (histogram): each Authorize from the request to its answer
  (whatever the answer, replays included; not a request refused by validation), in seconds: the server-side twin of
  the authorize latency SLO;
- ``casemesh_payments_gateway_attempts_total{acquirer,result}``: authorization attempts sent, by result:
  ``approved``, ``declined``, ``refused`` (the acquirer answered it did not process it: FAILED_PRECONDITION,
  INVALID_ARGUMENT), ``not_sent`` (the mesh channel's own circuit breaker failed it fast), ``unknown`` (no answer:
  UNAVAILABLE, DEADLINE_EXCEEDED, ...; the attempt is reversed);
- ``casemesh_payments_gateway_failovers_total{from_acquirer}``: payments sent on to the next acquirer after one failed;
- ``casemesh_payments_gateway_idempotent_replays_total{operation}``: calls answered from a stored answer;
- ``casemesh_payments_gateway_reversals_total{acquirer,outcome}``: Voids of attempts with an unknown outcome:
  ``reversed`` (confirmed: done), ``retried`` (a Void failed; sent again after a backoff), ``refused`` (the acquirer
  refused the Void: a person must look);
- ``casemesh_payments_gateway_reversals_pending`` (gauge): attempts REVERSING whose Void is being sent;
- ``casemesh_payments_gateway_breaker_open{acquirer}`` (gauge): 1 from the moment an acquirer's breaker opens until a
  probe closes it, 0 otherwise (set to 0 for every configured acquirer at start);
- ``casemesh_payments_gateway_fraud_fail_open_total``: payments let through with score 0 because the fraud service
  could not answer;
- ``casemesh_payments_gateway_resumed_total{operation,outcome}``: IN_FLIGHT keys resolved in the background
  (``reversed``: an Authorize's SENT attempts reversed; ``finished``; ``failed``: refused, the key released;
  ``unavailable``: left for the next look);
- ``casemesh_payments_gateway_settlement_discrepancies_total{kind}``: discrepancies found by reconciliations
  (``unknown_reference``, ``amount_mismatch``, ``duplicate_line``, ``wrong_acquirer``, ``unsettled``);
- ``casemesh_payments_gateway_reconciliations_total{outcome}``: ``ok`` (zero discrepancies), ``discrepancies``,
  ``unavailable``;
- ``casemesh_payments_gateway_write_seconds`` (histogram): one group commit to the SQLite file, fsync included.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PAYMENTS = Counter("casemesh_payments_gateway_payments", "Answered payment calls by operation and outcome.",
                   ["operation", "outcome"])
#: Seconds: an authorization with an issuer round trip takes 100 ms to 1 s (Stripe's p50 is about 300 ms).
AUTHORIZE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 10.0)
AUTHORIZE_SECONDS = Histogram("casemesh_payments_gateway_authorize_seconds", "Authorize calls from the request to the "
                              "answer, in seconds.", buckets=AUTHORIZE_BUCKETS)
ATTEMPTS = Counter("casemesh_payments_gateway_attempts", "Authorization attempts sent to acquirers, by result.",
                   ["acquirer", "result"])
FAILOVERS = Counter("casemesh_payments_gateway_failovers", "Payments sent on to the next acquirer after one failed.",
                    ["from_acquirer"])
REPLAYS = Counter("casemesh_payments_gateway_idempotent_replays", "Calls answered from the stored answer of their "
                  "idempotency key.", ["operation"])
REVERSALS = Counter("casemesh_payments_gateway_reversals", "Voids of attempts with an unknown outcome, by outcome "
                    "(reversed, retried, refused).", ["acquirer", "outcome"])
REVERSALS_PENDING = Gauge("casemesh_payments_gateway_reversals_pending", "Attempts REVERSING whose Void is being sent.")
BREAKER_OPEN = Gauge("casemesh_payments_gateway_breaker_open", "1 while an acquirer's circuit breaker is open (until "
                     "a probe closes it), else 0.", ["acquirer"])
FRAUD_FAIL_OPEN = Counter("casemesh_payments_gateway_fraud_fail_open", "Payments let through with score 0 because "
                          "the fraud service could not answer.")
RESUMED = Counter("casemesh_payments_gateway_resumed", "IN_FLIGHT idempotency keys resolved in the background.",
                  ["operation", "outcome"])
DISCREPANCIES = Counter("casemesh_payments_gateway_settlement_discrepancies", "Settlement discrepancies found by "
                        "reconciliations, by kind.", ["kind"])
RECONCILIATIONS = Counter("casemesh_payments_gateway_reconciliations", "Reconciliations by outcome (ok, "
                          "discrepancies, unavailable).", ["outcome"])
#: Seconds: a group commit with fsync takes about a millisecond on an SSD, tens on a loaded disk.
WRITE_BUCKETS = (0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
WRITE_SECONDS = Histogram("casemesh_payments_gateway_write_seconds", "One group commit to the gateway's SQLite file, "
                          "fsync included, in seconds.", buckets=WRITE_BUCKETS)

OPERATIONS = ("authorize", "capture", "void", "refund")
AUTHORIZE_OUTCOMES = ("approved", "declined_issuer", "declined_fraud", "unavailable")
ATTEMPT_RESULTS = ("approved", "declined", "refused", "not_sent", "unknown")
DISCREPANCY_KINDS = ("unknown_reference", "amount_mismatch", "duplicate_line", "wrong_acquirer", "unsettled")


def payment(operation: str, outcome: str) -> None:
    """Count one answered ``operation`` call under ``outcome``."""
    PAYMENTS.labels(operation, outcome).inc()


def attempt(acquirer: str, result: str) -> None:
    """Count one authorization attempt at ``acquirer`` ending with ``result`` (one of :data:`ATTEMPT_RESULTS`)."""
    ATTEMPTS.labels(acquirer, result).inc()


def started(acquirers: tuple[str, ...]) -> None:
    """Set the process-global gauges of a gateway that starts (tests run several in one process)."""
    for acquirer in acquirers:
        BREAKER_OPEN.labels(acquirer).set(0)
    REVERSALS_PENDING.set(0)
