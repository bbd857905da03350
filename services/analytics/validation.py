"""Request validation of casemesh.analytics.v1, rule for rule as the .proto says.

Rules from the comments of protos/casemesh/analytics/v1/analytics.proto;
failures raise ``InvalidArgument(field, reason)`` with the field path
(``events``, ``events[3].code``, ``code``) for an ``INVALID_ARGUMENT`` status.
A rejected batch is rejected whole: validate before recording anything.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from casemesh.analytics.v1 import analytics_pb2
from casemesh.services.runtime.errors import InvalidArgument

#: Largest RecordClicks batch, in events.
MAX_BATCH_EVENTS = 5000
#: Most events of one code in one batch. The URL shortener sends at most 500 clicks per batch (its click
#: buffer's batch size), so a legitimate batch never comes near it; it caps what one call can add to a code.
MAX_EVENTS_PER_CODE = 1000

_CODE_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
_COUNTRY_RE = re.compile(r"[A-Z]{2}")
# google.protobuf.Timestamp's valid range: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z.
_MIN_TS_SECONDS = -62_135_596_800
_MAX_TS_SECONDS = 253_402_300_799


def _show(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


def validate_event(event: analytics_pb2.ClickEvent, field: str) -> None:
    """One ClickEvent; ``field`` is its path, e.g. ``events[3]``."""
    if not _CODE_RE.fullmatch(event.code):
        reason = "is required" if not event.code else (
            f"must be 1 to 32 characters of [A-Za-z0-9_-] (got {_show(event.code)})"
        )
        raise InvalidArgument(f"{field}.code", reason)
    if not event.HasField("click_time"):
        raise InvalidArgument(f"{field}.click_time", "is required")
    ts = event.click_time
    if not (_MIN_TS_SECONDS <= ts.seconds <= _MAX_TS_SECONDS and 0 <= ts.nanos <= 999_999_999):
        raise InvalidArgument(
            f"{field}.click_time", "must be a valid timestamp (0001-01-01 to 9999-12-31)"
        )
    if event.country_code and not _COUNTRY_RE.fullmatch(event.country_code):
        raise InvalidArgument(
            f"{field}.country_code",
            f"must be empty or two upper-case letters A-Z (got {_show(event.country_code)})",
        )


def validate_batch(events: Sequence[analytics_pb2.ClickEvent]) -> None:
    """A RecordClicksRequest's ``events``: 1 to 5000 events, each a valid ClickEvent, at most 1000 of one code.

    The per-code failure names the first event past the bound (``events[1000].code``).
    """
    if not events:
        raise InvalidArgument("events", "must hold at least 1 event")
    if len(events) > MAX_BATCH_EVENTS:
        raise InvalidArgument(
            "events", f"must hold at most {MAX_BATCH_EVENTS} events (got {len(events)})"
        )
    per_code: dict[str, int] = {}
    for i, event in enumerate(events):
        validate_event(event, f"events[{i}]")
        seen = per_code[event.code] = per_code.get(event.code, 0) + 1
        if seen > MAX_EVENTS_PER_CODE:
            raise InvalidArgument(
                f"events[{i}].code", f"a batch may hold at most {MAX_EVENTS_PER_CODE} clicks of one code "
                                     f"({_show(event.code)} has more)")


def validate_stats_code(code: str) -> None:
    """GetClickStatsRequest.code: required, at most 32 characters (the proto asks no more)."""
    if not code:
        raise InvalidArgument("code", "is required")
    if len(code) > 32:
        raise InvalidArgument("code", f"must be at most 32 characters (got {len(code)})")


def to_tuples(events: Sequence[analytics_pb2.ClickEvent]) -> list[tuple[str, float, str]]:
    """Validated events as ``(code, at_s, country_code)`` for ``ClickCounters.record`` (Unix seconds)."""
    return [
        (e.code, e.click_time.seconds + e.click_time.nanos / 1e9, e.country_code) for e in events
    ]
