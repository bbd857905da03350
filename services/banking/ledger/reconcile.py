"""Reconciliation: the ledger's balances checked against its log, and the log against double entry.

Seed 001 #14 (shared/seeds/001_58dfc580020147d2.txt line 39, "Online Banking | Double-entry ledger, ACID
transactions, fraud detection, reconciliation"). The checks (protos/casemesh/banking/v1/ledger.proto, Reconcile), of
one consistent state: the ledger's balances as of sequence S (:class:`Snapshot`, copied while no entry is between its
commit and its apply) and the file's entries up to S (:meth:`.store.LedgerStore.audit`, one read transaction):

- every entry's postings sum to zero in each currency, and an entry has two postings or more;
- every posting belongs to a stored entry and a stored account;
- every balance equals the sum of its account's postings (and its entry count their number), and every account the
  file holds with postings is one the ledger holds;
- the balances of each currency sum to zero (what the customers hold is what the bank's cash account owes);
- no customer account is below zero.

Each failure is one line of :attr:`Reconciliation.discrepancies`. :func:`reconcile` also runs on a bare store (tests,
tools): without a snapshot it checks the file against the balances it derives from itself.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from .records import CUSTOMER, AccountRecord
from .store import Audit, LedgerStore


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The ledger's side: its accounts, balances (minor units) and entry counts after the entries up to ``sequence``."""

    sequence: int
    accounts: dict[str, AccountRecord]
    balances: dict[str, int]
    entry_counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """The result: ``balanced`` when ``discrepancies`` is empty; counts and totals (minor units per currency) of the
    state checked, as of ``sequence``."""

    balanced: bool
    account_count: int
    entry_count: int
    sequence: int
    total_minor_by_currency: dict[str, int]
    discrepancies: tuple[str, ...]


def check(audit: Audit, snapshot: Snapshot) -> Reconciliation:
    """Compare ``audit`` (the file up to ``snapshot.sequence``) with ``snapshot`` (see the module docstring)."""
    lines: list[str] = []
    for sequence, entry_id, currency, total in audit.unbalanced:
        lines.append(f"entry {sequence} ({entry_id}): its {currency} postings sum to {total}, not 0")
    for sequence, entry_id, count in audit.short:
        lines.append(f"entry {sequence} ({entry_id}): {count} postings, fewer than 2")
    for sequence, account_id in audit.orphans:
        lines.append(f"entry {sequence}: a posting to {account_id} whose entry or account is not stored")
    for account_id, account in sorted(snapshot.accounts.items()):
        if account_id not in audit.accounts:
            lines.append(f"account {account_id}: held by the ledger but not stored")
        balance = snapshot.balances.get(account_id, 0)
        stored, postings = audit.posting_sums.get(account_id, (0, 0))
        if balance != stored:
            lines.append(f"account {account_id}: balance {balance} {account.currency_code} but its postings sum to "
                         f"{stored}")
        if snapshot.entry_counts.get(account_id, 0) != postings:
            lines.append(f"account {account_id}: {snapshot.entry_counts.get(account_id, 0)} entries counted but "
                         f"{postings} postings stored")
        if account.kind == CUSTOMER and balance < 0:
            lines.append(f"account {account_id}: customer balance {balance} {account.currency_code} is below zero")
    for account_id in sorted(set(audit.posting_sums) - set(snapshot.accounts)):
        lines.append(f"account {account_id}: has stored postings but is not held by the ledger")
    totals: defaultdict[str, int] = defaultdict(int)
    for account_id, account in snapshot.accounts.items():
        totals[account.currency_code] += snapshot.balances.get(account_id, 0)
    for currency, total in sorted(totals.items()):
        if total:
            lines.append(f"currency {currency}: balances sum to {total}, not 0")
    return Reconciliation(not lines, len(snapshot.accounts), audit.entry_count, snapshot.sequence, dict(totals),
                          tuple(lines))


async def reconcile(store: LedgerStore, snapshot: Snapshot | None = None) -> Reconciliation:
    """Reconcile ``store`` with ``snapshot`` (``None``: the balances the store derives from its own postings, for a
    store no ledger is writing to)."""
    if snapshot is None:
        loaded = await store.load()
        snapshot = Snapshot(loaded.last_sequence, {a.account_id: a for a in loaded.accounts}, loaded.balances,
                            loaded.entry_counts)
    return check(await store.audit(snapshot.sequence), snapshot)
