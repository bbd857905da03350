"""The no-double-charge invariant, checked by the client side, and the money this load process moved.

The property the payment gateway exists to protect (seed 000 line 522, shared/seeds/000_69ff90d97cf45f9b.txt:
"Payment Service: Idempotent APIs, retry with exponential backoff"; seed 001 #25 "Payment Gateway", line 49: PSP
routing over several acquirers): **one idempotency key, one payment, charged at most once**, whatever the client
retries, double-submits, or the gateway's failover does. After each merchant journey's final answers the journey reads
the payment back (GetPayment) and :func:`check_payment` compares it with what the client did (:class:`Expected`):

- **one payment per key**: every answer to the key's requests (retries, a double submit's two sends) carries the same
  ``payment_id`` (:func:`same_payment`), and so does GetPayment;
- **at most one approved authorization**: at most one attempt APPROVED across all acquirers; a payment that holds or
  moved money (AUTHORIZED, CAPTURED, REFUNDED) has exactly one, at the acquirer the payment names; a DECLINED one
  none (an attempt being reversed, REVERSING, is not a hold); attempt references are unique;
- **the amounts the client asked for**: the amount authorised is the one requested; ``captured_minor`` is what the
  client captured (the whole amount for a sale, the capture's amount for a hold, 0 when declined or voided);
  ``refunded_minor`` the sum of the refunds answered; never captured above authorised nor refunded above captured;
  the status the client's last answer implies.

Each checked key is one ``single_charge`` sample: code ``OK``, or ``DATA_LOSS`` with a warning naming the key, the
payment and every problem (:func:`record`). The measure's latency is 0: it is a count. A key whose requests never got
an answer (retries exhausted) cannot be checked by the client (the payment id is the gateway's): it records nothing,
and the journey fails with the last code.

:class:`Tally` adds up, per currency, what this process's answered captures and refunds moved; the end-of-run
settlement check (:mod:`.live`) compares the acquirers' settlement files with it when every money-moving call of the
process ended with a known outcome.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from casemesh.payments.v1 import payments_pb2

from ..base import Caller

log = logging.getLogger("casemesh.workloads.payments")

#: The measure's name, and the codes of its samples.
SINGLE_CHARGE = "single_charge"
OK = "OK"
DATA_LOSS = "DATA_LOSS"

S = payments_pb2
#: Statuses of a payment that an approved authorization stands behind.
HELD_STATUSES = frozenset({S.PAYMENT_STATUS_AUTHORIZED, S.PAYMENT_STATUS_CAPTURED, S.PAYMENT_STATUS_REFUNDED})


def status_name(status: int) -> str:
    """``CAPTURED`` for PAYMENT_STATUS_CAPTURED (the number itself when unknown)."""
    try:
        return S.PaymentStatus.Name(status).removeprefix("PAYMENT_STATUS_")
    except ValueError:
        return str(status)


@dataclass(frozen=True)
class Expected:
    """What the client did with one key's payment: the amount asked for (minor units, currency), the status its last
    answer implies, what it captured and what it got refunded (minor units)."""

    merchant_id: str
    amount_minor: int
    currency: str
    status: int
    captured_minor: int = 0
    refunded_minor: int = 0


def same_payment(payment_ids: Iterable[str]) -> list[str]:
    """Problems of the payment ids one key's answers carried: more than one is a double charge."""
    ids = sorted(set(payment_ids))
    return [f"one key answered with {len(ids)} payments: {', '.join(ids)}"] if len(ids) > 1 else []


def check_payment(expected: Expected, payment: payments_pb2.Payment, payment_id: str) -> list[str]:
    """Problems of ``payment`` (GetPayment's, after the final answers) against what the client did (module docstring);
    empty when it is consistent."""
    problems: list[str] = []
    if payment.payment_id != payment_id:
        problems.append(f"GetPayment returned payment {payment.payment_id!r}, the answers {payment_id!r}")
    if payment.merchant_id != expected.merchant_id:
        problems.append(f"merchant {payment.merchant_id!r}, not {expected.merchant_id!r}")
    if (payment.amount.amount_minor, payment.amount.currency_code) != (expected.amount_minor, expected.currency):
        problems.append(f"amount {payment.amount.amount_minor} {payment.amount.currency_code}, asked "
                        f"{expected.amount_minor} {expected.currency}")
    if payment.status != expected.status:
        problems.append(f"status {status_name(payment.status)}, expected {status_name(expected.status)}")
    approved = [a for a in payment.attempts if a.state == S.ATTEMPT_STATE_APPROVED]
    if len(approved) > 1:
        problems.append(f"{len(approved)} approved authorizations: "
                        f"{', '.join(f'{a.acquirer}/{a.reference}' for a in approved)}")
    if payment.status in HELD_STATUSES:
        if not approved:
            problems.append(f"{status_name(payment.status)} without an approved authorization")
        elif len(approved) == 1 and payment.acquirer != approved[0].acquirer:
            problems.append(f"held at {payment.acquirer!r} but approved at {approved[0].acquirer!r}")
    if payment.status == S.PAYMENT_STATUS_DECLINED and approved:
        problems.append(f"DECLINED with an approved authorization at {approved[0].acquirer}/{approved[0].reference}")
    references = [a.reference for a in payment.attempts]
    if len(set(references)) != len(references):
        problems.append(f"attempt references repeat: {', '.join(references)}")
    if payment.captured_minor != expected.captured_minor:
        problems.append(f"captured {payment.captured_minor}, the client captured {expected.captured_minor}")
    if payment.refunded_minor != expected.refunded_minor:
        problems.append(f"refunded {payment.refunded_minor}, the client was refunded {expected.refunded_minor}")
    if payment.captured_minor > payment.amount.amount_minor:
        problems.append(f"captured {payment.captured_minor} above the {payment.amount.amount_minor} authorised")
    if payment.refunded_minor > payment.captured_minor:
        problems.append(f"refunded {payment.refunded_minor} above the {payment.captured_minor} captured")
    return problems


def record(call: Caller, key: str, payment_id: str, problems: list[str]) -> str:
    """One ``single_charge`` sample for ``key``: OK without ``problems``, DATA_LOSS (and a warning) with; returns the
    code."""
    if problems:
        log.warning("double charge or inconsistent payment for idempotency key %s (%s): %s", key, payment_id or "?",
                    "; ".join(problems))
        call.observe(SINGLE_CHARGE, 0.0, DATA_LOSS)
        return DATA_LOSS
    call.observe(SINGLE_CHARGE, 0.0, OK)
    return OK


class Tally:
    """Money this process moved, per currency (minor units), from answered captures and refunds; and whether every
    money-moving call ended with a known outcome (an answer, or a refusal after which nothing was done).

    :meth:`begin` before a money-moving request (with its retries), :meth:`end` after it: a call still open (a journey
    cancelled at the run's end) or ended without a known outcome makes the tally :attr:`uncertain`.
    """

    def __init__(self) -> None:
        self.captured: Counter[str] = Counter()
        self.refunded: Counter[str] = Counter()
        self.open = 0
        self.unknown = 0

    def begin(self) -> None:
        self.open += 1

    def end(self, known: bool) -> None:
        self.open -= 1
        if not known:
            self.unknown += 1

    def capture(self, currency: str, amount_minor: int) -> None:
        self.captured[currency] += amount_minor

    def refund(self, currency: str, amount_minor: int) -> None:
        self.refunded[currency] += amount_minor

    @property
    def uncertain(self) -> bool:
        """True when some money-moving call is open or ended without a known outcome."""
        return self.open > 0 or self.unknown > 0

    def net(self) -> dict[str, int]:
        """Per currency, captured less refunded (currencies that moved nothing left out)."""
        return {c: v for c in sorted(set(self.captured) | set(self.refunded))
                if (v := self.captured[c] - self.refunded[c]) != 0}
