"""The bank's invariants as a client sees them: one idempotency key makes one transfer, and the money this load process
moved (what every account should hold).

Seed 001 #14 "Online Banking" (shared/seeds/001_58dfc580020147d2.txt line 39: "Double-entry ledger, ACID
transactions, fraud detection, reconciliation"); transfers.proto: "a retry, also after a crash of this service or of
the ledger between the posting and the answer, reaches the same entry and never moves money twice".

**Single posting** (:data:`SINGLE_POSTING`): after a transfer whose key was sent more than once (a double tap, or a
retry after an error) the journey reads the transfer back (TransferService.GetTransfer) and checks
(:func:`check_answers`, :func:`check_transfer`) that every answer to the key carried the same ``transfer_id`` and the
same decision, that GetTransfer returns that transfer with that decision, and that the transfer is the one asked for
(accounts, amount, currency) and well formed (COMPLETED with a journal entry and no decline reason, DECLINED with a
reason and no entry). One sample per checked key: ``OK``, or ``DATA_LOSS`` with a warning naming the key, the transfer
and every problem (:func:`record`); latency 0 (a count). A transfer answered with a malformed decision is checked
too, whether or not it was sent twice; so is a paycheck (Deposit) that was retried or answered with an entry that does
not credit the account and debit the bank's cash account by the amount (:func:`.journeys.deposit_problems`). Whether
a retried paycheck was posted once only the balances tell: the end-of-run check (:mod:`.live`).

:class:`Book` keeps, per account, the balance the client's answers imply: the opening deposit, plus the deposits
answered, plus the transfers answered COMPLETED in, less those out. A money-moving call that ended without a known
outcome (no answer and a code after which something may have been done, or still open when the run ended) makes its
accounts :meth:`Book.uncertain`. The end-of-run check (:mod:`.live`) compares the ledger's balances with it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from casemesh.banking.v1 import transfers_pb2
from casemesh.services.banking.contract import is_transfer_id

from ..base import Caller

log = logging.getLogger("casemesh.workloads.banking")

#: The measure's name, and the codes of its samples.
SINGLE_POSTING = "single_posting"
OK = "OK"
DATA_LOSS = "DATA_LOSS"

T = transfers_pb2


def status_name(status: int) -> str:
    """``COMPLETED`` for TRANSFER_STATUS_COMPLETED (the number itself when unknown)."""
    try:
        return T.TransferStatus.Name(status).removeprefix("TRANSFER_STATUS_")
    except ValueError:
        return str(status)


def reason_name(reason: int) -> str:
    """``INSUFFICIENT_FUNDS`` for DECLINE_REASON_INSUFFICIENT_FUNDS (the number itself when unknown)."""
    try:
        return T.DeclineReason.Name(reason).removeprefix("DECLINE_REASON_")
    except ValueError:
        return str(reason)


@dataclass(frozen=True)
class Asked:
    """What the client asked one key to do: from, to, amount (minor units) and currency."""

    from_account_id: str
    to_account_id: str
    amount_minor: int
    currency: str


def check_answers(transfers: Iterable[T.Transfer]) -> list[str]:
    """Problems of the transfers one key's answers carried: more than one ``transfer_id`` or decision is a double
    posting (or a key answered two ways)."""
    seen = list(transfers)
    ids = sorted({t.transfer_id for t in seen})
    problems = [f"one key answered with {len(ids)} transfers: {', '.join(ids)}"] if len(ids) > 1 else []
    decisions = sorted({(status_name(t.status), reason_name(t.decline_reason), t.entry_sequence) for t in seen})
    if len(decisions) > 1:
        problems.append(f"one key answered {len(decisions)} decisions: {decisions}")
    return problems


def check_transfer(asked: Asked, transfer: T.Transfer) -> list[str]:
    """Problems of one answered transfer against what was asked and the contract's shape of a decision."""
    problems: list[str] = []
    if not is_transfer_id(transfer.transfer_id):
        problems.append(f"transfer_id {transfer.transfer_id!r} is not tr_ and 24 base32 characters")
    if (transfer.from_account_id, transfer.to_account_id) != (asked.from_account_id, asked.to_account_id):
        problems.append(f"{transfer.from_account_id} -> {transfer.to_account_id}, asked "
                        f"{asked.from_account_id} -> {asked.to_account_id}")
    if (transfer.amount.amount_minor, transfer.amount.currency_code) != (asked.amount_minor, asked.currency):
        problems.append(f"amount {transfer.amount.amount_minor} {transfer.amount.currency_code}, asked "
                        f"{asked.amount_minor} {asked.currency}")
    if transfer.status == T.TRANSFER_STATUS_COMPLETED:
        if transfer.entry_sequence == 0:
            problems.append("COMPLETED without a journal entry (entry_sequence 0)")
        if transfer.decline_reason != T.DECLINE_REASON_UNSPECIFIED:
            problems.append(f"COMPLETED with decline reason {reason_name(transfer.decline_reason)}")
    elif transfer.status == T.TRANSFER_STATUS_DECLINED:
        if transfer.entry_sequence != 0:
            problems.append(f"DECLINED with journal entry {transfer.entry_sequence}")
        if transfer.decline_reason == T.DECLINE_REASON_UNSPECIFIED:
            problems.append("DECLINED without a reason")
    else:
        problems.append(f"status {status_name(transfer.status)}")
    return problems


def check_read_back(answer: T.Transfer, stored: T.Transfer) -> list[str]:
    """Problems of GetTransfer's ``stored`` transfer against the ``answer`` the key got."""
    problems: list[str] = []
    if stored.transfer_id != answer.transfer_id:
        problems.append(f"GetTransfer returned {stored.transfer_id!r}, the answers {answer.transfer_id!r}")
    fields = ("from_account_id", "to_account_id", "status", "decline_reason", "entry_sequence")
    for name in fields:
        if getattr(stored, name) != getattr(answer, name):
            problems.append(f"GetTransfer's {name} is {getattr(stored, name)!r}, the answer's {getattr(answer, name)!r}")
    if stored.amount != answer.amount:
        problems.append(f"GetTransfer's amount is {stored.amount.amount_minor} {stored.amount.currency_code}, the "
                        f"answer's {answer.amount.amount_minor} {answer.amount.currency_code}")
    return problems


def record(call: Caller, key: str, transfer_id: str, problems: list[str]) -> str:
    """One ``single_posting`` sample for ``key``: OK without ``problems``, DATA_LOSS (and a warning) with; returns the
    code."""
    if problems:
        log.warning("double posting or inconsistent transfer for idempotency key %s (%s): %s", key,
                    transfer_id or "?", "; ".join(problems))
        call.observe(SINGLE_POSTING, 0.0, DATA_LOSS)
        return DATA_LOSS
    call.observe(SINGLE_POSTING, 0.0, OK)
    return OK


class Book:
    """Per account, the balance the client's answers imply (minor units), from the opening deposits; and the accounts
    a money-moving call of unknown outcome touched.

    :meth:`begin` before a money-moving request (with its retries) and :meth:`end` after it, with the accounts it
    touches: a call still open (a journey cancelled at the run's end) or ended without a known outcome makes them
    :meth:`uncertain`; a deposit among them makes the :meth:`total` uncertain too (transfers between the run's
    accounts do not change it).
    """

    def __init__(self, opening_minor: Mapping[str, int], unread: Iterable[str] = ()) -> None:
        """``opening_minor``: each account's balance at the start (the opening deposits, or the balances read at
        connect); ``unread``: accounts whose starting balance is not known (uncertain, and so is the total)."""
        self.expected: Counter[str] = Counter(opening_minor)
        self.opened_minor = sum(opening_minor.values())
        self.deposited_minor = 0
        self.open: Counter[str] = Counter()
        self.unknown: set[str] = set(unread)
        self.open_deposits = 0
        self.unknown_deposits = 0
        self.unread = bool(self.unknown)

    def begin(self, accounts: Iterable[str], *, deposit: bool = False) -> None:
        for account in accounts:
            self.open[account] += 1
        self.open_deposits += deposit

    def end(self, accounts: Iterable[str], known: bool, *, deposit: bool = False) -> None:
        for account in accounts:
            self.open[account] -= 1
            if not self.open[account]:
                del self.open[account]
            if not known:
                self.unknown.add(account)
        self.open_deposits -= deposit
        if not known:
            self.unknown_deposits += deposit

    def deposit(self, account: str, amount_minor: int) -> None:
        self.expected[account] += amount_minor
        self.deposited_minor += amount_minor

    def transfer(self, from_account: str, to_account: str, amount_minor: int) -> None:
        self.expected[from_account] -= amount_minor
        self.expected[to_account] += amount_minor

    def uncertain(self, account: str) -> bool:
        """True when a call of unknown outcome touched ``account`` (or one is still open)."""
        return account in self.unknown or account in self.open

    @property
    def uncertain_accounts(self) -> int:
        return len(self.unknown | set(self.open))

    @property
    def total_uncertain(self) -> bool:
        """True when some deposit is open or ended without a known outcome, or a starting balance is not known."""
        return self.open_deposits > 0 or self.unknown_deposits > 0 or self.unread

    def total(self) -> int:
        """What every account of the run should hold together: the starting balances and the deposits answered."""
        return self.opened_minor + self.deposited_minor
