"""Request validation of casemesh.urlshortener.v1, rule for rule as the .proto says.

The rules live in the comments of protos/casemesh/urlshortener/v1/urlshortener.proto
(validated here in Python rather than with protovalidate annotations). Every
failure raises ``InvalidArgument(field, reason)`` with the proto field name, so
the servicer answers ``INVALID_ARGUMENT`` with ``"FIELD: REASON"``.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from casemesh.services.runtime.errors import InvalidArgument

#: Longest accepted ``long_url``, in bytes of its UTF-8 encoding.
MAX_URL_BYTES = 2048
#: Longest accepted ``ttl_seconds``: 5 years, the case study's storage horizon
#: ("Storage (5 years)" in shared/seeds/000_69ff90d97cf45f9b.txt).
MAX_TTL_SECONDS = 157_680_000

_ALIAS_RE = re.compile(r"[A-Za-z0-9_-]{4,32}")
_CODE_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
_COUNTRY_RE = re.compile(r"[A-Z]{2}")


def _show(value: str, limit: int = 40) -> str:
    """``repr`` of a user value, shortened so an error message stays readable."""
    if len(value) > limit:
        value = value[:limit] + "..."
    return repr(value)


def validate_long_url(long_url: str) -> None:
    """``long_url``: required; absolute http(s) URL with a host; no whitespace; <= 2048 UTF-8 bytes."""
    if not long_url:
        raise InvalidArgument("long_url", "is required")
    size = len(long_url.encode("utf-8"))
    if size > MAX_URL_BYTES:
        raise InvalidArgument("long_url", f"must be at most {MAX_URL_BYTES} bytes (got {size})")
    if any(ch.isspace() for ch in long_url):
        raise InvalidArgument("long_url", "must not contain whitespace")
    shape = "must be an absolute http or https URL with a host"
    try:
        parts = urlsplit(long_url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a non-numeric or out-of-range port
    except ValueError as exc:  # e.g. "Invalid IPv6 URL", "Port out of range 0-65535"
        raise InvalidArgument("long_url", f"{shape} ({exc})") from None
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidArgument("long_url", f"{shape} (got {_show(long_url)})")


def validate_custom_alias(custom_alias: str) -> None:
    """``custom_alias``: empty ("generate a code") or 4 to 32 characters of [A-Za-z0-9_-]."""
    if custom_alias and not _ALIAS_RE.fullmatch(custom_alias):
        raise InvalidArgument(
            "custom_alias",
            f"must be 4 to 32 characters of [A-Za-z0-9_-] (got {_show(custom_alias)})",
        )


def validate_ttl(ttl_seconds: int) -> None:
    """``ttl_seconds``: 0 (never expires) or 1 to 157680000 (5 years)."""
    if not 0 <= ttl_seconds <= MAX_TTL_SECONDS:
        raise InvalidArgument(
            "ttl_seconds",
            f"must be 0 (never expires) or 1 to {MAX_TTL_SECONDS} seconds (got {ttl_seconds})",
        )


def validate_shorten(long_url: str, custom_alias: str, ttl_seconds: int) -> None:
    """Validate a ShortenRequest's fields, in proto order; raises on the first broken rule."""
    validate_long_url(long_url)
    validate_custom_alias(custom_alias)
    validate_ttl(ttl_seconds)


def validate_code(code: str, field: str = "code") -> None:
    """A short code (Resolve, GetStats, Delete): required, 1 to 32 characters of [A-Za-z0-9_-]."""
    if not code:
        raise InvalidArgument(field, "is required")
    if not _CODE_RE.fullmatch(code):
        raise InvalidArgument(
            field, f"must be 1 to 32 characters of [A-Za-z0-9_-] (got {_show(code)})"
        )


def validate_country(country_code: str) -> None:
    """``country_code`` (ResolveRequest): empty (unknown) or two upper-case letters A-Z."""
    if country_code and not _COUNTRY_RE.fullmatch(country_code):
        raise InvalidArgument(
            "country_code",
            f"must be empty or two upper-case letters A-Z, ISO 3166-1 alpha-2 "
            f"(got {_show(country_code)})",
        )
