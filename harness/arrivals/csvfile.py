"""Reading the CSV files that arrival processes take (rate curves, traces), with line numbers for errors.

A CSV here is UTF-8 text (a leading byte-order mark is ignored) in the
dialect of RFC 4180 as Python's :mod:`csv` reads it: comma-separated, a
header line first naming the columns, then one record per line. Blank lines
are skipped. Every problem is a :class:`~casemesh.harness.errors.ConfigError`
naming the file as the user wrote it and the 1-based line.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError


class FieldError(Exception):
    """A problem with a CSV that is best reported at the profile field that caused it.

    ``field`` is that field of the arrival section (``column``,
    ``size_column``, ``start_s``, ``end_s``), ``message`` says what is wrong
    (naming the CSV and its line where that helps). The profile loader
    reports it at the field's line.
    """

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(message)


@dataclass(frozen=True)
class CsvFile:
    """A CSV's header (column names, whitespace stripped) and its records with their line numbers."""

    shown: str
    header: list[str]
    header_line: int
    records: list[tuple[int, list[str]]]

    def column(self, name: str | None, field: str) -> int:
        """Index of column ``name`` (``None``: the first column); ``FieldError`` for profile field ``field`` when absent."""
        if name is None:
            return 0
        try:
            return self.header.index(name)
        except ValueError:
            raise FieldError(field, f"no column {name!r} in the header (line {self.header_line}) of {self.shown}; "
                                     f"its columns: {', '.join(self.header)}") from None

    def cell(self, line: int, record: list[str], index: int) -> str:
        """The stripped text of column ``index`` of a record; ``ConfigError`` when the record is too short."""
        if index >= len(record):
            raise ConfigError(f"expected at least {index + 1} fields, found {len(record)}", file=self.shown, line=line,
                              field=self.header[index])
        return record[index].strip()

    def number(self, line: int, record: list[str], index: int, *, minimum: float | None = None) -> float:
        """Column ``index`` of a record as a finite number (≥ ``minimum`` when given); ``ConfigError`` naming line and column."""
        text = self.cell(line, record, index)
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise ConfigError(f"expected a finite number, found {text!r}", file=self.shown, line=line, field=self.header[index])
        if minimum is not None and value < minimum:
            raise ConfigError(f"must be at least {minimum:g}, found {text}", file=self.shown, line=line, field=self.header[index])
        return value


def read_csv(path: Path, shown: str) -> CsvFile:
    """The header and non-blank records of the CSV at ``path`` (``shown`` names it in errors).

    Raises ``ConfigError`` when the file cannot be read, is not UTF-8, is not
    valid CSV, or has no header; ``FileNotFoundError`` passes through so the
    caller can point at the profile line that names the file.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as error:
        raise ConfigError(f"cannot read: {error.strerror}", file=shown) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ConfigError(f"not UTF-8 text: {error.reason} at byte {error.start}", file=shown, line=line) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    records: list[tuple[int, list[str]]] = []
    header: list[str] | None = None
    header_line = 1
    try:
        for record in reader:
            if not record or (len(record) == 1 and not record[0].strip()):
                continue
            if header is None:
                header, header_line = [name.strip() for name in record], reader.line_num
            else:
                records.append((reader.line_num, record))
    except csv.Error as error:
        raise ConfigError(f"invalid CSV: {error}", file=shown, line=reader.line_num) from None
    if header is None:
        raise ConfigError("the CSV is empty: expected a header line naming the columns", file=shown, line=1)
    return CsvFile(shown, header, header_line, records)
