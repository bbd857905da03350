"""banking-transfers' own metrics (``casemesh_banking_transfers_*``), seed 001 #14
(shared/seeds/001_58dfc580020147d2.txt line 39: "Online Banking | Double-entry ledger, ACID transactions, fraud
detection, reconciliation").

- ``casemesh_banking_transfers_transfers_total{status,decline_reason}``: transfers decided (by a call or by the
  recovery; a replay is not counted again): ``status`` ``completed`` (``decline_reason`` ``none``) or ``declined``
  (``insufficient_funds``, ``daily_limit``, ``velocity``, ``new_payee_amount``);
- ``casemesh_banking_transfers_fraud_declines_total{rule}``: transfers a fraud rule declined (``daily_limit``,
  ``velocity``, ``new_payee_amount``): the mechanism's own count, the A/B switch ``fraud_rules`` moves it;
- ``casemesh_banking_transfers_deposits_total``: deposits posted (OpenAccount's initial deposits included);
- ``casemesh_banking_transfers_idempotent_replays_total{operation}``: ``transfer`` / ``deposit`` calls answered from
  the stored decision of their idempotency key;
- ``casemesh_banking_transfers_pending`` (gauge): transfers and deposits written PENDING and not yet decided (set
  from the store at start);
- ``casemesh_banking_transfers_ledger_call_seconds{method}`` (histogram): each call to banking-ledger
  (``OpenAccount``, ``PostEntry``, ``GetAccount``), whatever its answer, in seconds;
- ``casemesh_banking_transfers_ledger_calls_total{method,code}``: the same calls by gRPC status code (``OK``,
  ``FAILED_PRECONDITION``, ``UNAVAILABLE``, ...);
- ``casemesh_banking_transfers_recoveries_total{kind,outcome}``: PENDING transfers and deposits the background
  recovery took up: ``completed``, ``declined`` (insufficient funds), ``unavailable`` (the ledger still unreachable:
  left for the next look), ``failed`` (refused: logged, left PENDING);
- ``casemesh_banking_transfers_write_seconds`` (histogram): one group commit to the SQLite file, fsync included.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

TRANSFERS = Counter("casemesh_banking_transfers_transfers", "Transfers decided, by status and decline reason.",
                    ["status", "decline_reason"])
FRAUD_DECLINES = Counter("casemesh_banking_transfers_fraud_declines", "Transfers declined by a fraud rule.", ["rule"])
DEPOSITS = Counter("casemesh_banking_transfers_deposits", "Deposits posted to the ledger.")
REPLAYS = Counter("casemesh_banking_transfers_idempotent_replays", "Calls answered from the stored decision of their "
                  "idempotency key.", ["operation"])
PENDING = Gauge("casemesh_banking_transfers_pending", "Transfers and deposits written PENDING and not yet decided.")
#: Seconds: a ledger call is an fsync away (about a millisecond), tens of ms on a loaded machine.
LEDGER_BUCKETS = (0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
LEDGER_SECONDS = Histogram("casemesh_banking_transfers_ledger_call_seconds", "Calls to banking-ledger, in seconds.",
                           ["method"], buckets=LEDGER_BUCKETS)
LEDGER_CALLS = Counter("casemesh_banking_transfers_ledger_calls", "Calls to banking-ledger by status code.",
                       ["method", "code"])
RECOVERIES = Counter("casemesh_banking_transfers_recoveries", "PENDING transfers and deposits taken up by the "
                     "background recovery, by outcome.", ["kind", "outcome"])
#: Seconds: a group commit with fsync takes about a millisecond on an SSD, tens on a loaded disk.
WRITE_BUCKETS = (0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
WRITE_SECONDS = Histogram("casemesh_banking_transfers_write_seconds", "One group commit to the transfers' SQLite "
                          "file, fsync included, in seconds.", buckets=WRITE_BUCKETS)
