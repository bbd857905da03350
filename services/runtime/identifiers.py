"""The identifier rule most case studies share, and its check: 1 to 64 characters of ``[A-Za-z0-9_-]``.

A contract that uses it says so in its .proto (rides, proximity); its contract module re-exports :func:`is_id` for
clients, and its servicers call :func:`required_id`.
"""

from __future__ import annotations

import re

from .errors import InvalidArgument

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
ID_RULE = "1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'"


def is_id(value: str) -> bool:
    """True when ``value`` is 1 to 64 characters of [A-Za-z0-9_-]."""
    return bool(ID_PATTERN.fullmatch(value))


def required_id(field: str, value: str) -> str:
    """``value`` when it is an ID (1 to 64 characters of [A-Za-z0-9_-]); else INVALID_ARGUMENT naming ``field``."""
    if not value:
        raise InvalidArgument(field, f"is required ({ID_RULE})")
    if not is_id(value):
        raise InvalidArgument(field, f"must be {ID_RULE}")
    return value
