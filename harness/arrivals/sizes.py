"""The size of the arrival a journey is serving, for journeys that scale their requests with it.

Some arrival processes carry a size per arrival (``trace`` with
``size_column``: e.g. the prompt tokens of a recorded request). The driver
sets it with :func:`set_arrival_size` just before it creates the journey's
task; ``asyncio.create_task`` copies the current :mod:`contextvars` context,
so the journey, and only that journey, sees its own arrival's size through
:func:`arrival_size`, however many journeys run concurrently. Cost: one
context-variable set per sized arrival, nothing for processes without sizes.
"""

from __future__ import annotations

from contextvars import ContextVar

_ARRIVAL_SIZE: ContextVar[float | None] = ContextVar("casemesh_arrival_size", default=None)


def arrival_size() -> float | None:
    """The current arrival's size, in the unit of the trace's ``size_column``; ``None`` when the arrival has none.

    Call it from a journey (anywhere in its task). Profiles whose arrival
    process carries no sizes always give ``None``.
    """
    return _ARRIVAL_SIZE.get()


def set_arrival_size(size: float | None) -> None:
    """Make ``size`` the arrival size of tasks created from now on in this context (the driver calls this)."""
    _ARRIVAL_SIZE.set(size)
