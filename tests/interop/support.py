"""Paths and helpers shared by the interop tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROTOS = ROOT / "protos"
NODE_BIN = ROOT / "node_modules" / ".bin"
URL_SHORTENER_SERVICES = ("urlshortener", "idgen", "analytics")


def run(command: list[str], *, timeout: float, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``command`` with its output captured as text, bounded by ``timeout`` seconds."""
    return subprocess.run(command, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
