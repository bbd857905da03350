"""What the payments journeys share in one load process, and the end-of-run settlement check.

Seed 001 #25 "Payment Gateway" (shared/seeds/001_58dfc580020147d2.txt line 49: "... settlement | 10K TPS,
Stripe/Adyen"). The workload's ``connect`` makes a :class:`Payments` for the process (the seeded merchants and
customers, the :class:`~.invariants.Tally` of money moved) and, with ``baseline_reconcile``, reconciles once,
unrecorded, so that the acquirers' open batches hold only what this run moves. ``disconnect`` runs
:meth:`Payments.settle` after the process's last journey has ended, as a merchant's finance team does at the
acquirers' cut-off: SettlementService.Reconcile closes every acquirer's batch, fetches its settlement file and matches
each line with the captures and refunds the gateway recorded.

The ``settlement`` measure gets one sample, its latency the reconciliation's time:

- ``OK``: no discrepancy, and, when the check can be made, the files' captures less refunds per currency (the sum of
  every acquirer's ``gross``) equal what this process's answered captures and refunds moved (:class:`Tally`). That
  cross-check runs only with one load process, after a successful baseline reconciliation, when the report has
  nothing ``pending`` and every money-moving call of the process ended with a known outcome (otherwise it is skipped
  and the log says why): it catches money that the gateway's own records and the acquirers' files agree on but that
  no client asked for;
- ``DATA_LOSS``: any discrepancy (each logged: kind, acquirer, reference, amounts) or a cross-check mismatch;
- the status code of Reconcile when it failed ``reconcile_attempts`` times (ABORTED while another reconciliation
  runs and UNAVAILABLE are sent again after 1 s).

With ``--workers N`` only load process 0 reconciles, ``reconcile_delay_s`` after its own drain (the others' last
journeys end at about the same time); the others record no ``settlement`` sample. Reconcile is called on the
payments-gateway channel: the gateway process serves SettlementService beside PaymentGatewayService
(:class:`GatewayStub`).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from typing import Any

import grpc

from casemesh.payments.v1 import gateway_pb2_grpc, settlement_pb2, settlement_pb2_grpc

from .invariants import DATA_LOSS, OK, Tally
from .seeding import GATEWAY, Customer, SeedParams, State

log = logging.getLogger("casemesh.workloads.payments")

SETTLEMENT = "settlement"
#: Codes after which Reconcile is sent again.
RECONCILE_RETRIED = frozenset({grpc.StatusCode.ABORTED, grpc.StatusCode.UNAVAILABLE})
RECONCILE_PAUSE_S = 1.0


class GatewayStub(gateway_pb2_grpc.PaymentGatewayServiceStub):
    """The payments-gateway process's two services on one channel: PaymentGatewayService's methods, and
    SettlementService's ``Reconcile``."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        super().__init__(channel)
        self.Reconcile = settlement_pb2_grpc.SettlementServiceStub(channel).Reconcile


class Payments:
    """A load process's share of the workload: the seeded state, the money tally, the settlement check.

    ``streams`` is :class:`casemesh.harness.streams.Streams` (its unrecorded ``call``, ``observe`` and ``share``);
    ``clock`` and ``sleep`` are injectable for tests.
    """

    def __init__(self, streams: Any, state: State, params: SeedParams, *, clock: Any = time.perf_counter,
                 sleep: Any = asyncio.sleep) -> None:
        if not state.customers:
            raise ValueError("the payments workload needs at least one seeded customer")
        self.streams = streams
        self.state = state
        self.params = params
        self.tally = Tally()
        self.clock = clock
        self.sleep = sleep
        self.baseline_ok = False
        self.reconciles: list[settlement_pb2.ReconcileResponse] = []

    @property
    def run(self) -> str:
        return self.state.run

    def customer(self, rng: random.Random) -> Customer:
        """A customer drawn uniformly (every merchant has as many)."""
        return self.state.customers[rng.randrange(len(self.state.customers))]

    @property
    def reconciler(self) -> bool:
        """True for the load process that reconciles (process 0)."""
        return self.streams.share[0] == 0

    async def reconcile(self) -> settlement_pb2.ReconcileResponse:
        """One Reconcile (unrecorded), sent again on ABORTED or UNAVAILABLE; raises its last error."""
        for attempt in range(1, self.params.reconcile_attempts + 1):
            try:
                response = await self.streams.call(GATEWAY, "Reconcile", settlement_pb2.ReconcileRequest(),
                                                   timeout_s=self.params.reconcile_timeout_s)
            except grpc.aio.AioRpcError as error:
                if error.code() not in RECONCILE_RETRIED or attempt == self.params.reconcile_attempts:
                    raise
                log.info("payments: Reconcile answered %s, again in %.0f s", error.code().name, RECONCILE_PAUSE_S)
                await self.sleep(RECONCILE_PAUSE_S)
                continue
            self.reconciles.append(response)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    async def baseline(self) -> None:
        """The reconciliation at connect (not judged): closes the acquirers' batches of earlier runs."""
        if not (self.params.baseline_reconcile and self.reconciler):
            return
        try:
            response = await self.reconcile()
        except grpc.aio.AioRpcError as error:
            log.warning("payments: the baseline Reconcile failed (%s %s): the end-of-run cross-check is skipped",
                        error.code().name, error.details())
            return
        self.baseline_ok = True
        if response.discrepancies:
            log.warning("payments: the baseline reconciliation (earlier runs' batches) has %d discrepancies",
                        len(response.discrepancies))

    async def settle(self) -> str | None:
        """The end-of-run check (module docstring): records one ``settlement`` sample and returns its code (``None``
        in a load process that does not reconcile)."""
        if not self.reconciler:
            return None
        if self.streams.share[1] > 1 and self.params.reconcile_delay_s > 0:
            await self.sleep(self.params.reconcile_delay_s)
        started = self.clock()
        try:
            response = await self.reconcile()
        except grpc.aio.AioRpcError as error:
            log.warning("payments: Reconcile failed: %s %s", error.code().name, error.details())
            return self._observe(error.code().name, started)
        problems = [describe(d) for d in response.discrepancies]
        problems += self.cross_check(response)
        for problem in problems:
            log.warning("payments: settlement does not reconcile (report %s): %s", response.report_id, problem)
        log.info("payments: settlement report %s: %d acquirers, %d lines, %d matched, %d pending, %d discrepancies",
                 response.report_id, len(response.acquirers), sum(a.lines for a in response.acquirers),
                 sum(a.matched for a in response.acquirers), response.pending, len(response.discrepancies))
        return self._observe(DATA_LOSS if problems else OK, started)

    def _observe(self, code: str, started: float) -> str:
        now = self.clock()
        self.streams.observe(SETTLEMENT, now - started, code, sent_at=started)
        return code

    def cross_check(self, response: settlement_pb2.ReconcileResponse) -> list[str]:
        """Problems of the files' gross against the :class:`Tally`, or none when the check cannot be made (logged)."""
        why_not = [reason for reason, applies in (
            ("several load processes", self.streams.share[1] > 1),
            ("no baseline reconciliation", not self.baseline_ok),
            (f"{response.pending} captures or refunds pending", response.pending > 0),
            ("discrepancies", bool(response.discrepancies)),
            (f"{self.tally.open + self.tally.unknown} money-moving calls without a known outcome", self.tally.uncertain),
        ) if applies]
        if why_not:
            log.info("payments: settlement cross-check against the clients' tally skipped: %s", ", ".join(why_not))
            return []
        files: Counter[str] = Counter()
        for acquirer in response.acquirers:
            for money in acquirer.gross:
                files[money.currency_code] += money.amount_minor
        settled = {c: v for c, v in sorted(files.items()) if v != 0}
        expected = self.tally.net()
        if settled == expected:
            return []
        return [(f"the settlement files move {settled} (captures less refunds, minor units), the clients' answered "
                 f"captures and refunds {expected}")]


def describe(discrepancy: settlement_pb2.Discrepancy) -> str:
    """One discrepancy in words."""
    refund = f" refund {discrepancy.refund_reference}" if discrepancy.refund_reference else ""
    return (f"{discrepancy.kind} at {discrepancy.acquirer}: {discrepancy.reference}{refund} (file "
            f"{discrepancy.file_amount_minor}, recorded {discrepancy.recorded_amount_minor})")
