"""Where calibrations are kept: one JSON file per user, one entry per machine fingerprint.

``$CASEMESH_CACHE_DIR/calibration.json``, else
``$XDG_CACHE_HOME/casemesh/calibration.json``, else
``~/.cache/casemesh/calibration.json``. An entry is the document
:func:`~casemesh.harness.calibration.measure.calibrate` returns, keyed by
:func:`~casemesh.harness.calibration.machine.fingerprint_key`: a machine with
another CPU model, core count, Python, grpcio or casemesh version is
calibrated anew. A cache that cannot be read is ignored (and rewritten), one
that cannot be written is only a warning: calibration is an optimisation of
planning, never a reason for a run to fail.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .machine import fingerprint, fingerprint_key


def cache_path() -> Path:
    """The calibration cache file (see the module docstring)."""
    if os.environ.get("CASEMESH_CACHE_DIR"):
        return Path(os.environ["CASEMESH_CACHE_DIR"]) / "calibration.json"
    base = Path(os.environ["XDG_CACHE_HOME"]) if os.environ.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "casemesh" / "calibration.json"


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load_calibration() -> dict[str, Any] | None:
    """This machine's cached calibration with ``age_s`` (seconds since it was measured) added, or ``None``."""
    entry = _read(cache_path()).get(fingerprint_key(fingerprint()))
    if not isinstance(entry, dict) or "ceiling_per_s" not in entry or "steps" not in entry:
        return None
    try:
        measured = datetime.fromisoformat(str(entry["measured_at"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None
    return {**entry, "age_s": round((datetime.now(timezone.utc) - measured).total_seconds())}


def save_calibration(calibration: dict[str, Any]) -> Path | None:
    """Store ``calibration`` under its fingerprint; returns the file, or ``None`` when it cannot be written."""
    path = cache_path()
    data = _read(path)
    data[fingerprint_key(calibration["fingerprint"])] = {k: v for k, v in calibration.items() if k != "age_s"}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError:
        return None
    return path


def describe_age(age_s: float) -> str:
    """``"3 min"``, ``"5 h"``, ``"2 days"``: how old a calibration is."""
    if age_s < 120:
        return f"{age_s:.0f} s"
    if age_s < 7200:
        return f"{age_s / 60:.0f} min"
    if age_s < 172_800:
        return f"{age_s / 3600:.0f} h"
    return f"{age_s / 86_400:.0f} days"
