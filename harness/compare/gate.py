"""The options of ``casemesh compare`` that take words: percentiles, ``--min-effect`` and the ``--fail-on`` gate.

``--fail-on [NAME:]PERCENTILE:+THRESHOLD`` (repeatable): the comparison
fails (exit 1) when that percentile of any RPC or journey (or of the one
named) is slower in B, significantly (its interval excludes 0 and it is at
least ``--min-effect``), by more than ``THRESHOLD``: ``+10%`` of A's value
or ``+2ms``. ``NAME`` is a journey (``resolve``), a full method
(``pkg.Service/Method``), ``Service/Method`` or a bare ``Method``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

_PERCENTILE = re.compile(r"^p?(\d+(?:\.\d+)?)$", re.IGNORECASE)
_THRESHOLD = re.compile(r"^\+?(\d+(?:\.\d+)?)\s*(%|ms)$", re.IGNORECASE)


def parse_percentile(text: str, flag: str) -> float:
    """``p99`` → 99.0; ``p99.9`` and ``p999`` (result.json's spelling) → 99.9; ``50`` → 50.0. Strictly between 0 and 100."""
    match = _PERCENTILE.match(text.strip())
    if not match:
        raise ConfigError(f"{text!r} is not a percentile: write p50, p99, p99.9 (or p999)", field=flag)
    digits = match.group(1)
    nines = "." not in digits and len(digits) > 2 and digits.startswith("99")  # p999, p9999: result.json's spelling
    value = float(digits[:2] + "." + digits[2:]) if nines else float(digits)
    if not 0 < value < 100:
        raise ConfigError(f"{text!r}: a percentile is above 0 and below 100 (the max is not estimable with an interval)", field=flag)
    return value


def parse_percentiles(text: str) -> list[float]:
    """``50,90,99,99.9`` (or ``p50,p99``) → ascending unique percentiles."""
    values = {parse_percentile(part, "--percentiles") for part in text.split(",") if part.strip()}
    if not values:
        raise ConfigError("no percentile given", field="--percentiles")
    return sorted(values)


def parse_fraction(text: str, flag: str) -> float:
    """``5%`` → 0.05; a bare number is a percentage too (``5`` → 0.05). At least 0."""
    cleaned = text.strip().removesuffix("%").strip()
    try:
        value = float(cleaned) / 100
    except ValueError:
        raise ConfigError(f"{text!r} is not a percentage (write 5%)", field=flag) from None
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{text!r}: expected 0% or more", field=flag)
    return value


def percentile_label(percentile: float) -> str:
    """99.0 → ``p99``, 99.9 → ``p99.9``."""
    return f"p{percentile:g}"


@dataclass(frozen=True)
class FailRule:
    """One ``--fail-on``: ``percentile`` of ``name`` (``None``: any RPC or journey) slower by more than ``threshold`` ``unit`` (``%`` or ``ms``)."""

    text: str
    name: str | None
    percentile: float
    threshold: float
    unit: str

    def matches(self, kind: str, name: str) -> bool:
        """Whether this rule judges RPC (``kind="rpcs"``) or journey ``name``."""
        if self.name is None:
            return True
        if kind == "journeys":
            return name == self.name
        return name == self.name or name.rsplit(".", 1)[-1] == self.name or name.rsplit("/", 1)[-1] == self.name

    def exceeded_by(self, row: Mapping[str, Any]) -> bool:
        """Whether a compared percentile (a ``compare.json`` row) breaks this rule: significantly slower, beyond the threshold."""
        if not row["significant"] or row["change"] != "slower":
            return False
        if self.unit == "ms":
            return row["diff_ms"] > self.threshold
        return row["diff_pct"] is not None and row["diff_pct"] > self.threshold

    def describe(self) -> str:
        threshold = f"+{self.threshold * 100:g}%" if self.unit == "%" else f"+{self.threshold:g} ms"
        return f"{self.name or 'any RPC or journey'}: {percentile_label(self.percentile)} slower by more than {threshold}"


def parse_rule(text: str) -> FailRule:
    """``p99:+10%``, ``resolve:p99:+10%``, ``UrlShortenerService/Resolve:p50:+2ms`` → :class:`FailRule`; ``ConfigError`` naming ``--fail-on``."""
    parts = text.strip().rsplit(":", 2)
    if len(parts) < 2 or not all(p.strip() for p in parts):
        raise ConfigError(f"{text!r}: write [NAME:]PERCENTILE:+THRESHOLD, e.g. p99:+10% or resolve:p99:+2ms", field="--fail-on")
    name = parts[0].strip() if len(parts) == 3 else None
    percentile = parse_percentile(parts[-2], "--fail-on")
    match = _THRESHOLD.match(parts[-1].strip())
    if not match:
        raise ConfigError(f"{text!r}: the threshold {parts[-1]!r} is not +N% or +Nms", field="--fail-on")
    amount, unit = float(match.group(1)), match.group(2).lower()
    return FailRule(text.strip(), name, percentile, amount / 100 if unit == "%" else amount, unit)
