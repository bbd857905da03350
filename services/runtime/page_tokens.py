"""Opaque, validated page tokens for every case study's paged lists.

Paged RPCs (the video platform's ListComments, ListChannelVideos, GetHomeFeed,
SearchVideos; the social feed's ListFollowers, ListUserTweets, GetHomeTimeline) hand
out ``next_page_token`` and take it back as ``page_token`` (Google AIP-158,
"Pagination": tokens are opaque to clients and tied to the request that
produced them). A token is the URL-safe base64 (no padding) of a compact JSON
object ``{"v": 1, "k": KIND, "s": SCOPE, "p": POSITION}``:

- ``KIND`` names the listing (``"comments"``, ``"channel"``, ``"feed"``, ``"search"``);
- ``SCOPE`` is the CRC-32 (8 hex digits) of what the listing is about (the
  video id, channel id, user id or normalized query), so a token from another
  listing is refused instead of silently paging something else;
- ``POSITION`` is the listing's cursor: a small object of integers and strings.

Tokens are not signed: altering one only moves the cursor within the same
listing, which the caller may do anyway. Every decoding failure raises
``InvalidArgument("page_token", ...)`` (→ ``INVALID_ARGUMENT`` naming
``page_token``).
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from typing import Any

from casemesh.services.runtime.errors import InvalidArgument

#: Longest accepted token, in characters (ours are well under 200).
MAX_TOKEN_CHARS = 512
_VERSION = 1


def _scope_hash(scope: str) -> str:
    return format(zlib.crc32(scope.encode("utf-8")), "08x")


def encode(kind: str, scope: str, position: dict[str, Any]) -> str:
    """The token of ``position`` (JSON-serializable ints/strings) in listing ``kind`` about ``scope``."""
    body = json.dumps({"v": _VERSION, "k": kind, "s": _scope_hash(scope), "p": position},
                      separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(body.encode("utf-8")).rstrip(b"=").decode("ascii")


def decode(token: str, kind: str, scope: str, fields: dict[str, type]) -> dict[str, Any]:
    """The position in ``token``, checked to belong to listing ``kind`` about ``scope``.

    ``fields`` maps each position key to its type (``int`` or ``str``); ints
    must be >= 0. Returns the position dict; raises :class:`InvalidArgument`
    naming ``page_token`` when the token is malformed, too long, from another
    listing or another scope, or its position is not of the expected shape.
    Call it only for a non-empty token (empty means "first page").
    """
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidArgument("page_token", f"is not a valid page token (longer than {MAX_TOKEN_CHARS} characters)")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeError):
        raise InvalidArgument("page_token", "is not a valid page token (pass next_page_token back unchanged)") from None
    if not isinstance(body, dict) or body.get("v") != _VERSION or not isinstance(body.get("p"), dict):
        raise InvalidArgument("page_token", "is not a valid page token (pass next_page_token back unchanged)")
    if body.get("k") != kind or body.get("s") != _scope_hash(scope):
        raise InvalidArgument("page_token", "belongs to another listing (use it only with the request that returned it)")
    position = body["p"]
    if set(position) != set(fields):
        raise InvalidArgument("page_token", "is not a valid page token (unexpected cursor)")
    for key, kind_of in fields.items():
        value = position[key]
        if kind_of is int:
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidArgument("page_token", "is not a valid page token (bad cursor value)")
        elif not isinstance(value, kind_of):
            raise InvalidArgument("page_token", "is not a valid page token (bad cursor value)")
    return position
