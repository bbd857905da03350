"""Bounded waits shared by the integration tests' clients (chat, collab, live)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

#: Every wait in these tests is bounded by this (seconds); a loaded 2-core machine is slow, not stuck.
WAIT_S = 60.0


async def eventually(check: Callable[[], bool], what: str | Callable[[], str], timeout_s: float = WAIT_S) -> None:
    """Wait until ``check()`` holds (polling every 20 ms), failing with ``what`` (or ``what()``) after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not check():
        assert loop.time() < deadline, f"timed out waiting for {what() if callable(what) else what}"
        await asyncio.sleep(0.02)
