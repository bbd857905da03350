"""Settlement files: what an acquirer tells the merchant's gateway it moved in one batch.

Seed 001 #25 (shared/seeds/001_58dfc580020147d2.txt line 49, "Payment Gateway": settlement). An acquirer does not
move money per payment: at the cut-off of its settlement day it closes the batch of captures and refunds booked since
the last one and sends a settlement file, one line per capture or refund with its fee, which the gateway reconciles
against its own ledger (SettlementService). Here a batch is closed by CloseBatch and written to
``DATA_DIR/<acquirer>/settlement/<batch_id>.csv``.

The file (:data:`HEADER`, UTF-8 CSV, ``\\n`` line ends, one header row then one row per line in booking order):

=====================  ==================================================================================
``reference``          the gateway's reference of the authorization
``psp_reference``      the acquirer's id of it (``psp-a_`` and 20 characters of [a-z0-9])
``kind``               ``capture`` (money to the merchant) or ``refund`` (money back to the card)
``refund_reference``   the gateway's refund id for a refund; empty for a capture
``merchant_id``        whose money
``currency``           ISO 4217 code of the amount and the fee
``amount_minor``       minor units moved, positive for both kinds
``fee_minor``          the acquirer's fee in minor units: :func:`capture_fee` for a capture, 0 for a refund
``booked_at_unix_ms``  when the line entered the batch, ms since the Unix epoch
=====================  ==================================================================================

:func:`write_file` writes it atomically (a temporary file in the same folder, fsync, rename over the name, fsync of
the folder): a reader sees the whole file or none, and once it returns the file survives a crash. :func:`read_file`
reads it back (``ValueError`` naming the row when a row is not of this format). :func:`summarize` gives a batch's
gross (captures less refunds) and fees per currency, as CloseBatch answers them.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass, fields
from pathlib import Path

from casemesh.common.v1 import money_pb2
from casemesh.payments.v1 import acquirer_pb2

CAPTURE = "capture"
REFUND = "refund"
KINDS = {CAPTURE: acquirer_pb2.SETTLEMENT_KIND_CAPTURE, REFUND: acquirer_pb2.SETTLEMENT_KIND_REFUND}


def capture_fee(amount_minor: int, fee_bps: int, fee_fixed_minor: int) -> int:
    """The acquirer's fee on a capture of ``amount_minor``: ``amount_minor × fee_bps / 10,000`` rounded half up, plus
    ``fee_fixed_minor`` (all in minor units)."""
    return (amount_minor * fee_bps + 5_000) // 10_000 + fee_fixed_minor


@dataclass(frozen=True, slots=True)
class SettlementLine:
    """One line of a settlement file (a capture or a refund); amounts in minor units of ``currency``."""

    reference: str
    psp_reference: str
    kind: str
    refund_reference: str
    merchant_id: str
    currency: str
    amount_minor: int
    fee_minor: int
    booked_at_unix_ms: int

    def to_proto(self) -> acquirer_pb2.GetSettlementFileResponse:
        """The ``GetSettlementFileResponse`` of this line."""
        return acquirer_pb2.GetSettlementFileResponse(
            reference=self.reference, psp_reference=self.psp_reference, kind=KINDS[self.kind],
            refund_reference=self.refund_reference, merchant_id=self.merchant_id,
            amount=money_pb2.Money(currency_code=self.currency, amount_minor=self.amount_minor),
            fee=money_pb2.Money(currency_code=self.currency, amount_minor=self.fee_minor),
            booked_at_unix_ms=self.booked_at_unix_ms)


#: The header row, the names of :class:`SettlementLine`'s fields.
HEADER: tuple[str, ...] = tuple(f.name for f in fields(SettlementLine))
_INTEGERS = frozenset({"amount_minor", "fee_minor", "booked_at_unix_ms"})


def render(lines: Iterable[SettlementLine]) -> str:
    """The text of a settlement file of ``lines``: the header row, then one row per line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for line in lines:
        writer.writerow(astuple(line))
    return out.getvalue()


def parse(text: str) -> list[SettlementLine]:
    """The lines of a settlement file's text; ``ValueError`` naming the row when the header or a row is not of the
    format."""
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if header is None or tuple(header) != HEADER:
        raise ValueError(f"settlement file: the header is {header!r}, not {','.join(HEADER)}")
    lines = []
    for number, row in enumerate(rows, start=2):
        if len(row) != len(HEADER):
            raise ValueError(f"settlement file: row {number} has {len(row)} columns, not {len(HEADER)}")
        values = dict(zip(HEADER, row, strict=True))
        try:
            for name in _INTEGERS:
                values[name] = int(values[name])
        except ValueError:
            raise ValueError(f"settlement file: row {number} has a non-integer amount or time") from None
        if values["kind"] not in KINDS:
            raise ValueError(f"settlement file: row {number} has kind {values['kind']!r}")
        lines.append(SettlementLine(**values))
    return lines


def fsync_folder(folder: Path) -> None:
    """fsync ``folder`` itself, so the names created or renamed in it survive a crash."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_file(path: Path, lines: Iterable[SettlementLine]) -> None:
    """Write the settlement file of ``lines`` at ``path`` atomically and durably: ``path``'s name with ``.tmp`` in
    the same folder, fsynced, renamed over ``path``, then the folder fsynced. ``OSError`` when it cannot be written
    (``path`` is then unchanged)."""
    temporary = path.with_name(path.name + ".tmp")
    data = render(lines).encode("utf-8")
    try:
        with open(temporary, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)


def read_file(path: Path) -> list[SettlementLine]:
    """The lines of the settlement file at ``path`` (``OSError`` when it cannot be read, ``ValueError`` when it is
    not a settlement file)."""
    return parse(path.read_text(encoding="utf-8"))


@dataclass(frozen=True, slots=True)
class BatchTotals:
    """A batch's totals: its line count, and per currency (code → minor units) the gross (captures less refunds;
    negative when refunds exceed captures) and the fees."""

    lines: int
    gross: dict[str, int]
    fees: dict[str, int]

    def gross_proto(self) -> list[money_pb2.Money]:
        """The gross per currency, sorted by code."""
        return [money_pb2.Money(currency_code=code, amount_minor=self.gross[code]) for code in sorted(self.gross)]

    def fees_proto(self) -> list[money_pb2.Money]:
        """The fees per currency, sorted by code."""
        return [money_pb2.Money(currency_code=code, amount_minor=self.fees[code]) for code in sorted(self.fees)]


def summarize(lines: Sequence[SettlementLine]) -> BatchTotals:
    """The totals of a batch's lines: every currency that appears gets a gross and a fee (0 when it has only
    refunds)."""
    gross: dict[str, int] = {}
    fees: dict[str, int] = {}
    for line in lines:
        sign = 1 if line.kind == CAPTURE else -1
        gross[line.currency] = gross.get(line.currency, 0) + sign * line.amount_minor
        fees[line.currency] = fees.get(line.currency, 0) + line.fee_minor
    return BatchTotals(len(lines), gross, fees)
