"""Request validation shared by the photo services, rule for rule as protos/casemesh/photo/v1 says.

Every failure raises ``InvalidArgument(field, reason)`` with the proto field
name, so the server answers ``INVALID_ARGUMENT`` with ``"FIELD: REASON"``.
User ids follow the social graph's rule (services/social/validation.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from casemesh.photo.v1 import photo_pb2

from ..runtime.errors import InvalidArgument
from ..social.validation import page_size, validate_user_id
from .sizes import BY_SIZE, MAX_CAPTION_CHARS, MAX_UPLOAD_BYTES, PHOTO_ID_PATTERN

__all__ = ["page_size", "validate_user_id", "validate_photo_id", "validate_size", "validate_sizes",
           "validate_caption", "validate_file_size"]


def _show(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


def validate_photo_id(value: str, field: str = "photo_id") -> str:
    """``value`` when it is a photo id ("p" and 20 digits); else ``InvalidArgument(field)``."""
    if not value:
        raise InvalidArgument(field, "is required")
    if not PHOTO_ID_PATTERN.fullmatch(value):
        raise InvalidArgument(field, f"must be 'p' and 20 digits (got {_show(value)})")
    return value


def validate_size(value: int, field: str = "size", *, allow_unspecified: bool = False) -> int:
    """``value`` when it is a PhotoSize (or UNSPECIFIED where ``allow_unspecified``); else ``InvalidArgument(field)``."""
    if value == photo_pb2.PHOTO_SIZE_UNSPECIFIED and allow_unspecified:
        return value
    if value not in BY_SIZE:
        names = ", ".join(photo_pb2.PhotoSize.Name(s) for s in BY_SIZE)
        raise InvalidArgument(field, f"must be one of {names} (got {value})")
    return value


def validate_sizes(values: Sequence[int], field: str = "sizes") -> list[int]:
    """1 to 3 distinct PhotoSizes, none UNSPECIFIED; else ``InvalidArgument`` naming ``field`` or ``field[i]``."""
    if not values:
        raise InvalidArgument(field, "must list at least one size")
    seen: list[int] = []
    for i, value in enumerate(values):
        validate_size(value, f"{field}[{i}]")
        if value in seen:
            raise InvalidArgument(f"{field}[{i}]", f"{photo_pb2.PhotoSize.Name(value)} is listed twice")
        seen.append(value)
    return seen


def validate_caption(value: str) -> str:
    """A caption: at most 2,200 code points (empty allowed); else ``InvalidArgument("caption")``."""
    if len(value) > MAX_CAPTION_CHARS:
        raise InvalidArgument("caption", f"is {len(value)} characters; at most {MAX_CAPTION_CHARS}")
    return value


def validate_file_size(value: int) -> int:
    """An original's declared size: 1 to 10,485,760 bytes; else ``InvalidArgument("file_size_bytes")``."""
    if not 0 < value <= MAX_UPLOAD_BYTES:
        raise InvalidArgument("file_size_bytes", f"must be 1 to {MAX_UPLOAD_BYTES:,} bytes (the seed's 10 MB) (got {value})")
    return value
