"""Load a run's result document for ``casemesh compare``, checking that it is one (docs/results.md).

A run is named by its ``result.json`` or by the directory holding it
(``casemesh run``'s ``--out``). Anything else is refused with a
:class:`~casemesh.harness.errors.ConfigError` naming the file and the field:
not JSON, another ``schema_version``, a capacity document, a histogram that
does not decode or whose count is not the entry's ``count``.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hdrh.codec import HdrCookieException, HdrHistogramSettingsException, HdrLengthException

from ..errors import ConfigError
from ..result import SCHEMA_VERSION
from ..stats import decode
from .stats import Distribution

#: The two groups compared: ``result.json``'s sections, in display order.
KINDS = ("rpcs", "journeys")


@dataclass
class RunDocument:
    """One run's result document, checked: ``path`` (the JSON file), ``data`` (as read), decoded ``distributions``.

    ``distributions[kind][name]`` is the :class:`Distribution` of the
    histogram of ``rpcs[name]`` (``kind="rpcs"``) or ``journeys[name]``;
    entries without calls are absent.
    """

    path: Path
    data: dict[str, Any]
    distributions: dict[str, dict[str, Distribution]] = field(default_factory=dict)

    def series_points(self, kind: str, name: str) -> Mapping[str, Any] | None:
        """``series[kind][name]`` (per-second counts and percentiles), ``None`` when the document has none."""
        return ((self.data.get("series") or {}).get(kind) or {}).get(name)

    @property
    def warmup(self) -> list[bool]:
        """``series.warmup``: which seconds of the series are warm-up."""
        return list((self.data.get("series") or {}).get("warmup") or [])


def resolve_path(given: Path) -> Path:
    """``given`` itself, or ``given/result.json`` for a run directory."""
    return given / "result.json" if given.is_dir() else given


def load_run(given: Path) -> RunDocument:
    """Read and check the run at ``given`` (a ``result.json`` or a run directory); ``ConfigError`` naming the file otherwise."""
    path = resolve_path(given)
    where = str(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("no such file" + (" (a run directory holds result.json)" if given.is_dir() else ""), file=where) from None
    except OSError as error:
        raise ConfigError(f"cannot read it: {error.strerror or error}", file=where) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"not JSON: {error}", file=where) from None
    if not isinstance(data, dict):
        raise ConfigError("not a casemesh result document (not a JSON object)", file=where)
    if "steps" in data and "capacity_rate_per_s" in data:
        raise ConfigError("a capacity search's document, not a run's result.json: compare runs (casemesh run's OUT/result.json)", file=where)
    if "schema_version" not in data:
        raise ConfigError("not a casemesh result document (no schema_version)", file=where, field="schema_version")
    if data["schema_version"] != SCHEMA_VERSION:
        raise ConfigError(f"{data['schema_version']!r}: this casemesh reads result documents of version {SCHEMA_VERSION}",
                          file=where, field="schema_version")
    document = RunDocument(path, data)
    for kind in KINDS:
        section = data.get(kind)
        if not isinstance(section, dict):
            raise ConfigError("missing or not an object: not a casemesh result document", file=where, field=kind)
        document.distributions[kind] = {}
        for name, entry in section.items():
            distribution = _distribution(entry, where, f"{kind}[{json.dumps(name)}]")
            if distribution is not None:
                document.distributions[kind][name] = distribution
    slos = data.get("slos", [])
    if not isinstance(slos, list) or not all(isinstance(s, dict) and isinstance(s.get("name"), str) for s in slos):
        raise ConfigError("expected a list of SLO verdicts, each with a name", file=where, field="slos")
    _check_series(data.get("series"), where)
    return document


def _check_series(series: Any, where: str) -> None:
    """``series`` (optional) as compare reads it: per RPC and journey, lists of counts and of ms (or null) per second."""
    if series is None:
        return
    if not (isinstance(series, dict) and all(isinstance(series.get(k, {}), dict) for k in KINDS)):
        raise ConfigError("expected an object with rpcs and journeys", file=where, field="series")
    if not isinstance(series.get("warmup", []), list):
        raise ConfigError("expected a list of booleans", file=where, field="series.warmup")
    for kind in KINDS:
        for name, points in series.get(kind, {}).items():
            field_name = f"series.{kind}[{json.dumps(name)}]"
            if not isinstance(points, dict) or not isinstance(points.get("count"), list) or not all(
                    isinstance(n, int) for n in points["count"]):
                raise ConfigError("expected count: a list of integers per second", file=where, field=field_name)
            for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms"):
                values = points.get(key, [])
                if not isinstance(values, list) or not all(v is None or isinstance(v, (int, float)) for v in values):
                    raise ConfigError("expected a list of numbers (ms) or null per second", file=where, field=f"{field_name}.{key}")


def _distribution(entry: Any, where: str, field_name: str) -> Distribution | None:
    """The decoded histogram of one CALLS entry, ``None`` when it has no calls; ``ConfigError`` when it is damaged."""
    if not isinstance(entry, dict) or not isinstance(entry.get("count"), int):
        raise ConfigError("expected an object with an integer count", file=where, field=field_name)
    encoded = entry.get("histogram")
    if not isinstance(encoded, str) or not encoded:
        raise ConfigError("no encoded HDR histogram (result documents since schema 1 have one per RPC and journey)",
                          file=where, field=f"{field_name}.histogram")
    try:
        histogram = decode(encoded)
    except (TypeError, ValueError, IndexError, zlib.error, HdrCookieException, HdrLengthException, HdrHistogramSettingsException) as error:
        why = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        raise ConfigError(f"not a valid encoded HDR histogram ({why})", file=where, field=f"{field_name}.histogram") from None
    total = histogram.get_total_count()
    if total != entry["count"]:
        raise ConfigError(f"the histogram holds {total:,} calls but count is {entry['count']:,}: damaged or edited",
                          file=where, field=f"{field_name}.histogram")
    return Distribution.from_histogram(histogram) if total else None
