"""The photo-sharing contract's sizes and limits, shared by the photo services and the workload.

Part of the contract (protos/casemesh/photo/v1 quotes every number): a
client in any language applies the same rules. Figures from
shared/seeds/003_1dfe16d8ccfde9ed.txt, "Instagram Photo Storage":

- ``SIZES``: each :class:`casemesh.photo.v1.PhotoSize`, its width in pixels
  (150, 640, 1080: the seed's ``createThumbnails``) and the
  ``casemesh.video.v1.Rendition`` the object store and CDN edge keep it under.
- ``JPEG_QUALITY``: 80 (the seed's ``jpeg({ quality: 80 })``). Sizes are
  immutable (generation ``SIZE_GENERATION`` = 1), so the quality is a
  contract constant, not a setting: changing it would need a new generation.
- ``MAX_UPLOAD_BYTES``: 10 MiB (the seed's "Max 10MB").
- ``MAX_CAPTION_CHARS``: 2,200 (Instagram's caption limit; the seed gives none).
- ``PHOTO_ID_PATTERN``: ``p`` and the 20 decimal digits of a Snowflake ID
  (21 characters). Video ids are always 11 characters
  (``secrets.token_urlsafe(8)``, services/video/catalog/videos.py), so photo
  and video ids never collide in the shared object store.
- User ids are the social graph's (``services/social/limits.USER_ID_PATTERN``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from casemesh.photo.v1 import photo_pb2
from casemesh.video.v1 import video_pb2

JPEG_QUALITY = 80
MAX_UPLOAD_BYTES = 10 << 20
MAX_CAPTION_CHARS = 2_200
PHOTO_ID_PATTERN = re.compile(r"p[0-9]{20}")
#: The generation every photo size is stored and served under.
SIZE_GENERATION = 1
#: Photos per ListUserPhotos page: the default (a 3 x 4 profile grid) and the most.
DEFAULT_USER_PAGE_SIZE = 12
MAX_USER_PAGE_SIZE = 60
#: Photos per GetPhotoFeed page: the default and the most.
DEFAULT_FEED_PAGE_SIZE = 12
MAX_FEED_PAGE_SIZE = 50
#: ListRecentPhotos: most authors per call (the social graph's follow limit), most photos per call.
MAX_RECENT_AUTHORS = 5_000
MAX_RECENT_PHOTOS = 1_000


@dataclass(frozen=True)
class Size:
    """One photo size: its ``PhotoSize`` value, short name, target width (px) and edge rendition."""

    size: int
    name: str
    width_px: int
    rendition: int


#: The sizes, smallest first.
SIZES: tuple[Size, ...] = (
    Size(photo_pb2.PHOTO_SIZE_THUMBNAIL, "thumbnail", 150, video_pb2.RENDITION_PHOTO_THUMBNAIL),
    Size(photo_pb2.PHOTO_SIZE_MEDIUM, "medium", 640, video_pb2.RENDITION_PHOTO_MEDIUM),
    Size(photo_pb2.PHOTO_SIZE_LARGE, "large", 1080, video_pb2.RENDITION_PHOTO_LARGE),
)
BY_SIZE: dict[int, Size] = {s.size: s for s in SIZES}
BY_NAME: dict[str, Size] = {s.name: s for s in SIZES}


def photo_id(snowflake: int) -> str:
    """The photo id of a Snowflake ID: ``"p"`` and 20 digits; ``ValueError`` outside 0 .. 2**64 - 1."""
    if not 0 <= snowflake < 1 << 64:
        raise ValueError(f"a Snowflake ID is 0 to 2**64 - 1, not {snowflake}")
    return f"p{snowflake:020d}"


def object_key(photo_id_: str) -> str:
    """The object store key of a photo's original: ``raw/{photo_id}``."""
    return f"raw/{photo_id_}"


def scaled(width_px: int, height_px: int, target_width_px: int) -> tuple[int, int]:
    """(width, height) of a size of a ``width_px`` x ``height_px`` original: never wider than the original (the
    seed's ``fit: 'inside'``, no upscaling), height ``h * w' / w`` rounded half up (``floor(x + 1/2)``, in exact
    integer arithmetic: a 4032 x 3024 original's thumbnail is 150 x 113), at least 1. ``ValueError`` for a
    non-positive dimension."""
    if width_px <= 0 or height_px <= 0 or target_width_px <= 0:
        raise ValueError(f"dimensions must be > 0 (got {width_px}x{height_px} to {target_width_px})")
    width = min(target_width_px, width_px)
    return width, max(1, (2 * height_px * width + width_px) // (2 * width_px))
