"""banking-ledger's own metrics (``casemesh_banking_ledger_*``), seed 001 #14 (double-entry ledger, ACID
transactions, reconciliation).

- ``casemesh_banking_ledger_entries_posted_total``: journal entries committed (not the retries answered from a
  stored entry);
- ``casemesh_banking_ledger_idempotent_replays_total``: PostEntry calls answered with the entry already posted under
  their ``entry_id``;
- ``casemesh_banking_ledger_insufficient_funds_total``: entries refused because a customer account would go below
  zero;
- ``casemesh_banking_ledger_lock_wait_seconds{locking}`` (histogram): from a PostEntry's first lock request until it
  holds every lock its mode takes (``locking``: ``account``, ``global``, ``none``), in seconds: how long isolation
  makes an entry queue;
- ``casemesh_banking_ledger_commit_seconds`` (histogram): one group commit to the SQLite file, fsync included;
- ``casemesh_banking_ledger_entries_per_commit`` (histogram): writes (entries, account openings) per group commit;
- ``casemesh_banking_ledger_accounts`` (gauge): accounts open, cash accounts included (set at start);
- ``casemesh_banking_ledger_sequence`` (gauge): the sequence number of the last entry applied (set at start);
- ``casemesh_banking_ledger_reconcile_runs_total{outcome}``: Reconcile runs, ``balanced`` or ``discrepancies``;
- ``casemesh_banking_ledger_reconcile_discrepancies_total``: discrepancy lines reported by Reconcile runs.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ENTRIES_POSTED = Counter("casemesh_banking_ledger_entries_posted", "Journal entries committed.")
REPLAYS = Counter("casemesh_banking_ledger_idempotent_replays", "PostEntry calls answered with the entry already "
                  "posted under their entry_id.")
INSUFFICIENT_FUNDS = Counter("casemesh_banking_ledger_insufficient_funds", "Entries refused because a customer "
                             "account would go below zero.")
#: Seconds: no wait at all on a quiet account, a few fsyncs (ms each) behind a hot one, much more under global.
LOCK_WAIT_BUCKETS = (0.000_1, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
LOCK_WAIT_SECONDS = Histogram("casemesh_banking_ledger_lock_wait_seconds", "From a PostEntry's first lock request "
                              "until it holds every lock of its mode, in seconds.", ["locking"],
                              buckets=LOCK_WAIT_BUCKETS)
#: Seconds: a group commit with fsync takes about a millisecond on an SSD, tens on a loaded disk.
COMMIT_BUCKETS = (0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.0)
COMMIT_SECONDS = Histogram("casemesh_banking_ledger_commit_seconds", "One group commit to the ledger's SQLite file, "
                           "fsync included, in seconds.", buckets=COMMIT_BUCKETS)
ENTRIES_PER_COMMIT = Histogram("casemesh_banking_ledger_entries_per_commit", "Writes (entries, account openings) per "
                               "group commit.", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))
ACCOUNTS = Gauge("casemesh_banking_ledger_accounts", "Accounts open, cash accounts included.")
SEQUENCE = Gauge("casemesh_banking_ledger_sequence", "Sequence number of the last journal entry applied.")
RECONCILE_RUNS = Counter("casemesh_banking_ledger_reconcile_runs", "Reconcile runs by outcome (balanced, "
                         "discrepancies).", ["outcome"])
RECONCILE_DISCREPANCIES = Counter("casemesh_banking_ledger_reconcile_discrepancies", "Discrepancy lines reported by "
                                  "Reconcile runs.")


def started(accounts: int, sequence: int) -> None:
    """Set the process-global gauges of a ledger that starts (tests run several in one process)."""
    ACCOUNTS.set(accounts)
    SEQUENCE.set(sequence)
