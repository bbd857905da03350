"""Synthetic photos for the photo workload: real JPEGs, made once while seeding, reused by every upload.

Each image is a gradient background (``Image.linear_gradient`` and
``Image.radial_gradient``), a coarse random texture upscaled bilinearly, and
a few filled ellipses, saved as JPEG at quality 85: photo-like enough that
libjpeg's cost and the output sizes of the resizer behave as for real
photos (about 60-80 KB at 1280 x 960, the phone-camera size after an
app's client-side downscale). The texture comes from the run's seeded
``random.Random`` (not ``Image.effect_noise``, whose C ``rand()`` is not
reproducible), so the same seed gives the same bytes.

Images are made only while seeding (tens of milliseconds each): a journey
never encodes or decodes, so the load generator's send lag stays low.
"""

from __future__ import annotations

import io
import random

from PIL import Image, ImageDraw

#: JPEG quality of the synthetic originals (a phone camera's typical setting).
ORIGINAL_QUALITY = 85


def synthetic_jpeg(width_px: int, height_px: int, rng: random.Random) -> bytes:
    """One ``width_px`` x ``height_px`` JPEG (quality 85) drawn from ``rng``."""
    red = Image.linear_gradient("L").resize((width_px, height_px))
    green = Image.radial_gradient("L").resize((width_px, height_px))
    coarse = (max(1, width_px // 16), max(1, height_px // 16))
    blue = Image.frombytes("L", coarse, rng.randbytes(coarse[0] * coarse[1])).resize(
        (width_px, height_px), Image.Resampling.BILINEAR)
    image = Image.merge("RGB", (red, green, blue))
    draw = ImageDraw.Draw(image)
    for _ in range(8):
        x, y = rng.randrange(width_px), rng.randrange(height_px)
        r = rng.randrange(max(2, width_px // 20), max(3, width_px // 4))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=ORIGINAL_QUALITY)
    return out.getvalue()


def jpeg_pool(count: int, width_px: int, height_px: int, rng: random.Random) -> list[bytes]:
    """``count`` distinct synthetic JPEGs of one size."""
    return [synthetic_jpeg(width_px, height_px, rng) for _ in range(count)]


def looks_like_jpeg(data: bytes) -> bool:
    """Whether ``data`` starts with a JPEG's SOI marker (FF D8) and ends with its EOI marker (FF D9)."""
    return len(data) >= 4 and data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
