"""The fraud rules a transfer passes before anything is posted (seed 001 #14, shared/seeds/001_58dfc580020147d2.txt
line 39: "Online Banking | Double-entry ledger, ACID transactions, fraud detection, reconciliation").

Three rules of the kind retail banks apply to online transfers (limits and velocity checks, the new-payee check of
account-takeover detection), in this order; the first that matches declines the transfer with its ``DeclineReason``
(settings and their defaults: :mod:`.settings`):

1. ``daily_limit``: the source account's outgoing transfers of the last 24 h plus this amount pass
   ``daily_limit_minor``;
2. ``velocity``: the account already made ``velocity_max_transfers`` transfers within the last ``velocity_window_s``
   (this one would be one more);
3. ``new_payee_amount``: the amount is at least ``new_payee_threshold_minor`` and no transfer from this account to
   this payee ever completed (the caller looks that up in the store, :meth:`.store.TransferStore.has_paid`, only for
   such amounts).

The windows live in memory: per source account, a ``deque`` of ``(created_at_unix_ms, transfer_id, amount_minor)`` of
its transfers of the last 24 h that passed the rules and were not declined since, with their running sum. A transfer
that passes is recorded at once (:meth:`FraudRules.check` checks and records in one step, without awaiting, so two
concurrent transfers of one account cannot both slip under a limit), and released if the ledger then declines it
(:meth:`FraudRules.release`, insufficient funds). At start the windows are rebuilt from the store's COMPLETED and
PENDING transfers of the last 24 h (:meth:`FraudRules.load`). ``fraud_rules`` false (the A/B switch) turns all of it
off.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from casemesh.banking.v1 import transfers_pb2

from . import metrics
from .settings import TransferSettings
from .store import TransferRow

#: The daily limit's window, in ms.
DAY_MS = 24 * 3_600 * 1_000

DAILY_LIMIT = "daily_limit"
VELOCITY = "velocity"
NEW_PAYEE_AMOUNT = "new_payee_amount"
#: Rule name → the DeclineReason it declines with, in the order the rules are checked.
RULES: dict[str, int] = {
    DAILY_LIMIT: transfers_pb2.DECLINE_REASON_DAILY_LIMIT,
    VELOCITY: transfers_pb2.DECLINE_REASON_VELOCITY,
    NEW_PAYEE_AMOUNT: transfers_pb2.DECLINE_REASON_NEW_PAYEE_AMOUNT,
}


@dataclass(slots=True)
class _Window:
    """One account's transfers of the last 24 h, oldest first, and their sum in minor units."""

    transfers: deque[tuple[int, str, int]] = field(default_factory=deque)
    total_minor: int = 0

    def prune(self, now_ms: int) -> None:
        while self.transfers and self.transfers[0][0] <= now_ms - DAY_MS:
            self.total_minor -= self.transfers.popleft()[2]

    def count_since(self, since_ms: int) -> int:
        count = 0
        for at_ms, _, _ in reversed(self.transfers):
            if at_ms <= since_ms:
                break
            count += 1
        return count


class FraudRules:
    """The rules of the module docstring over in-memory windows; ``settings`` gives the limits and the switch."""

    def __init__(self, settings: TransferSettings) -> None:
        self.enabled = settings.fraud_rules
        self._daily_limit_minor = settings.daily_limit_minor
        self._velocity_max = settings.velocity_max_transfers
        self._velocity_window_ms = int(settings.velocity_window_s * 1000)
        self.new_payee_threshold_minor = settings.new_payee_threshold_minor
        self._windows: dict[str, _Window] = {}

    def __len__(self) -> int:
        """Accounts with a window."""
        return len(self._windows)

    def needs_payee_check(self, amount_minor: int) -> bool:
        """Whether :meth:`check` needs to know if the payee was paid before (the new-payee rule may fire)."""
        return self.enabled and amount_minor >= self.new_payee_threshold_minor

    def load(self, rows: Iterable[TransferRow], now_ms: int) -> None:
        """Record the transfers of ``rows`` (the store's COMPLETED and PENDING ones, oldest first) of the last 24 h."""
        if not self.enabled:
            return
        for row in rows:
            if row.created_at_unix_ms > now_ms - DAY_MS:
                self._record(row.transfer_id, row.from_account_id, row.amount_minor, row.created_at_unix_ms)

    def check(self, transfer_id: str, from_account_id: str, amount_minor: int, now_ms: int,
              paid_before: bool = True) -> int:
        """The DeclineReason of the first rule that matches (counted per rule), or 0 after recording the transfer in
        its account's window. ``paid_before``: a transfer from this account to the payee ever completed (only read
        when :meth:`needs_payee_check`)."""
        if not self.enabled:
            return 0
        window = self._windows.get(from_account_id)
        if window is not None:
            window.prune(now_ms)
        rule = None
        if (window.total_minor if window else 0) + amount_minor > self._daily_limit_minor:
            rule = DAILY_LIMIT
        elif window is not None and window.count_since(now_ms - self._velocity_window_ms) >= self._velocity_max:
            rule = VELOCITY
        elif amount_minor >= self.new_payee_threshold_minor and not paid_before:
            rule = NEW_PAYEE_AMOUNT
        if rule is not None:
            metrics.FRAUD_DECLINES.labels(rule).inc()
            return RULES[rule]
        self._record(transfer_id, from_account_id, amount_minor, now_ms)
        return 0

    def _record(self, transfer_id: str, from_account_id: str, amount_minor: int, at_ms: int) -> None:
        window = self._windows.setdefault(from_account_id, _Window())
        window.transfers.append((at_ms, transfer_id, amount_minor))
        window.total_minor += amount_minor

    def release(self, transfer_id: str, from_account_id: str) -> None:
        """Take a recorded transfer out of its account's window (the ledger declined it: it moved nothing)."""
        window = self._windows.get(from_account_id)
        if window is None:
            return
        for item in window.transfers:
            if item[1] == transfer_id:
                window.transfers.remove(item)
                window.total_minor -= item[2]
                break
        if not window.transfers:
            del self._windows[from_account_id]

    def prune(self, now_ms: int) -> int:
        """Drop what is older than 24 h from every window (and the windows left empty); how many are left."""
        for account_id in list(self._windows):
            window = self._windows[account_id]
            window.prune(now_ms)
            if not window.transfers:
                del self._windows[account_id]
        return len(self._windows)
