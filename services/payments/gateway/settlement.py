"""Settlement reconciliation: every acquirer's settlement file matched against the gateway's ledger (seed 001 #25
"settlement", shared/seeds/001_58dfc580020147d2.txt line 49; the daily reconciliation of Stripe's and Adyen's
settlement reports).

:meth:`Settlement.reconcile` (SettlementService.Reconcile, one at a time: ABORTED while one runs):

1. CloseBatch at every configured acquirer, in routing order; each closed batch is recorded (fsynced) before the next
   step, so a batch closed by a run that then fails (UNAVAILABLE: an acquirer cannot be reached) is reconciled by the
   next run (its response then lists that acquirer twice, one entry per batch);
2. GetSettlementFile of every closed batch not yet reconciled;
3. each line is matched to the ledger entry (:mod:`.store`, ``ledger_entries``) of its (kind, reference,
   refund_reference): none → ``unknown_reference``; an entry recorded at another acquirer → ``wrong_acquirer``; one
   settled already (by an earlier batch, or an earlier line) → ``duplicate_line``; another amount or currency →
   ``amount_mismatch`` (the entry counts as settled, so it is not reported again as unsettled); else matched, and the
   entry is marked settled by the batch;
4. entries still in no file: ``unsettled`` when recorded before the previous reconciliation's start (they had two
   cut-offs to appear), else ``pending`` (normally settled by the next batch);
5. the report is written as JSON to ``DATA_DIR/payments-gateway/settlement/<report_id>.json`` atomically (a temporary
   file, fsync, rename, fsync of the folder), then the settlements, the batches' report and the run itself are
   committed in one write.

The report id is ``rec-`` and the run's UTC time ``yyyymmddThhmmssZ``; a run in the same second as the previous one
takes the next second. Metrics: ``casemesh_payments_gateway_settlement_discrepancies_total{kind}``,
``casemesh_payments_gateway_reconciliations_total{outcome}``.
"""

from __future__ import annotations

import asyncio
import calendar
import json
import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from pathlib import Path

from casemesh.payments.v1 import acquirer_pb2, settlement_pb2

from ...runtime.errors import Aborted
from . import metrics
from .clients import Acquirer, Unavailable, money
from .store import (
    CAPTURE,
    REFUND,
    GatewayStore,
    Statement,
    batch_reconciled,
    insert_batch,
    insert_reconciliation,
    settle_ledger_entry,
)

log = logging.getLogger("casemesh.payments.gateway.settlement")

REPORT_ID_PREFIX = "rec-"
REPORT_TIME_FORMAT = "%Y%m%dT%H%M%SZ"
_KINDS = {acquirer_pb2.SETTLEMENT_KIND_CAPTURE: CAPTURE, acquirer_pb2.SETTLEMENT_KIND_REFUND: REFUND}


def report_id_at(unix_s: int) -> str:
    """``rec-yyyymmddThhmmssZ`` of a UTC time in whole seconds."""
    return REPORT_ID_PREFIX + time.strftime(REPORT_TIME_FORMAT, time.gmtime(unix_s))


def report_time(report_id: str) -> int:
    """The UTC time (whole seconds) of a report id."""
    return calendar.timegm(time.strptime(report_id.removeprefix(REPORT_ID_PREFIX), REPORT_TIME_FORMAT))


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that it is either absent or whole, and on disk: a temporary file in the same
    folder, fsync, rename over ``path``, fsync of the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


class Settlement:
    """Reconciles the acquirers' batches (``acquirers``: topology name → client, reconciled in ``order``) against
    ``store``'s ledger, writing reports under ``report_dir``. ``clock()`` is seconds since the Unix epoch."""

    def __init__(self, store: GatewayStore, acquirers: Mapping[str, Acquirer], order: tuple[str, ...],
                 report_dir: Path, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._acquirers = acquirers
        self._order = order
        self.report_dir = report_dir
        self._clock = clock
        self._lock = asyncio.Lock()

    async def reconcile(self) -> settlement_pb2.ReconcileResponse:
        """One reconciliation (see the module docstring). :class:`Aborted` while another runs; :class:`Unavailable`
        when an acquirer cannot be reached or the store or the report cannot be written."""
        if self._lock.locked():
            raise Aborted("another reconciliation runs; retry when it has finished")
        async with self._lock:
            try:
                response = await self._reconcile()
            except Unavailable:
                metrics.RECONCILIATIONS.labels("unavailable").inc()
                raise
            except OSError as error:
                metrics.RECONCILIATIONS.labels("unavailable").inc()
                raise Unavailable(f"the settlement report could not be written: {error}") from error
        for discrepancy in response.discrepancies:
            metrics.DISCREPANCIES.labels(discrepancy.kind).inc()
        metrics.RECONCILIATIONS.labels("discrepancies" if response.discrepancies else "ok").inc()
        return response

    async def _reconcile(self) -> settlement_pb2.ReconcileResponse:
        started_ms = int(self._clock() * 1000)
        previous = await self._store.last_reconciliation()
        report_s = started_ms // 1000
        if previous is not None:
            report_s = max(report_s, report_time(previous[0]) + 1)
        report_id = report_id_at(report_s)

        for name in self._order:
            closed = await self._acquirers[name].close_batch()
            await self._store.write([insert_batch(name, closed.batch_id, int(self._clock() * 1000))])
        files: list[tuple[str, str, list[acquirer_pb2.GetSettlementFileResponse]]] = []
        for acquirer, batch_id in await self._store.unreconciled_batches():
            client = self._acquirers.get(acquirer)
            if client is None:
                log.warning("batch %s of %s is not reconciled: %s is no longer a configured acquirer", batch_id,
                            acquirer, acquirer)
                continue
            files.append((acquirer, batch_id, await client.settlement_file(batch_id)))

        keys = [(_KINDS.get(line.kind, "unspecified"), line.reference, line.refund_reference)
                for _, _, lines in files for line in lines]
        entries = await self._store.lookup_entries(keys)
        settled: set[tuple[str, str, str]] = set()
        statements: list[Statement] = []
        discrepancies: list[settlement_pb2.Discrepancy] = []
        summaries: list[settlement_pb2.AcquirerSettlement] = []
        for acquirer, batch_id, lines in files:
            matched = 0
            gross: dict[str, int] = defaultdict(int)
            fees: dict[str, int] = defaultdict(int)
            for line in lines:
                kind = _KINDS.get(line.kind, "unspecified")
                amount, currency = line.amount.amount_minor, line.amount.currency_code
                gross[currency] += amount if kind == CAPTURE else -amount
                if line.HasField("fee"):
                    fees[line.fee.currency_code] += line.fee.amount_minor
                key = (kind, line.reference, line.refund_reference)
                entry = entries.get(key)
                what, recorded = "", 0
                if entry is None:
                    what = "unknown_reference"
                elif entry.acquirer != acquirer:
                    what, recorded = "wrong_acquirer", entry.amount_minor
                elif entry.settled_batch or key in settled:
                    what, recorded = "duplicate_line", entry.amount_minor
                else:
                    settled.add(key)
                    statements.append(settle_ledger_entry(*key, batch_id))
                    if entry.amount_minor != amount or entry.currency_code != currency:
                        what, recorded = "amount_mismatch", entry.amount_minor
                    else:
                        matched += 1
                if what:
                    discrepancies.append(settlement_pb2.Discrepancy(
                        kind=what, acquirer=acquirer, reference=line.reference,
                        refund_reference=line.refund_reference, file_amount_minor=amount,
                        recorded_amount_minor=recorded))
            summaries.append(settlement_pb2.AcquirerSettlement(
                acquirer=acquirer, batch_id=batch_id, lines=len(lines), matched=matched,
                gross=[money(c, a) for c, a in sorted(gross.items())],
                fees=[money(c, a) for c, a in sorted(fees.items())]))
            statements.append(batch_reconciled(acquirer, batch_id, report_id))

        pending = 0
        cutoff_ms = previous[1] if previous is not None else None
        for entry in await self._store.unsettled():
            if entry.key in settled:
                continue
            if cutoff_ms is not None and entry.recorded_at_unix_ms < cutoff_ms:
                discrepancies.append(settlement_pb2.Discrepancy(
                    kind="unsettled", acquirer=entry.acquirer, reference=entry.reference,
                    refund_reference=entry.refund_reference, recorded_amount_minor=entry.amount_minor))
            else:
                pending += 1

        path = self.report_dir / f"{report_id}.json"
        finished_ms = int(self._clock() * 1000)
        response = settlement_pb2.ReconcileResponse(report_id=report_id, acquirers=summaries, pending=pending,
                                                    discrepancies=discrepancies, report_path=str(path))
        report = {
            "report_id": report_id, "started_at_unix_ms": started_ms, "finished_at_unix_ms": finished_ms,
            "acquirers": [{"acquirer": s.acquirer, "batch_id": s.batch_id, "lines": s.lines, "matched": s.matched,
                           "gross": {m.currency_code: m.amount_minor for m in s.gross},
                           "fees": {m.currency_code: m.amount_minor for m in s.fees}} for s in summaries],
            "pending": pending,
            "discrepancies": [{"kind": d.kind, "acquirer": d.acquirer, "reference": d.reference,
                               "refund_reference": d.refund_reference, "file_amount_minor": d.file_amount_minor,
                               "recorded_amount_minor": d.recorded_amount_minor} for d in discrepancies],
        }
        await asyncio.to_thread(write_atomically, path, json.dumps(report, indent=2, sort_keys=True).encode())
        statements.append(insert_reconciliation(report_id, started_ms, finished_ms, len(discrepancies), str(path)))
        await self._store.write(statements)
        if discrepancies:
            log.warning("reconciliation %s: %d discrepancies (%s)", report_id, len(discrepancies), path)
        return response
