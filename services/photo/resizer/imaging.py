"""Reading originals and making photo sizes with Pillow: pure functions, no gRPC, no global state.

Seed 003 (shared/seeds/003_1dfe16d8ccfde9ed.txt), "Instagram Photo Storage",
``createThumbnails``: ``sharp(original).resize(width, null, { fit: 'inside' })
.jpeg({ quality: 80 })`` for widths 150, 640 and 1080 (:data:`..sizes.SIZES`).

- :func:`probe` reads an original's header only (no pixel is decoded): its
  format (``"JPEG"`` or ``"PNG"``) and its width and height in pixels after
  the EXIF orientation.
- :func:`render` makes sizes of given target widths (pixels): never wider than
  the original (no upscaling), the height keeping the aspect ratio
  (:func:`..sizes.scaled`), each a baseline JPEG.

How one size is made:

1. A JPEG original is decoded with libjpeg's DCT scaling (``Image.draft``) at
   1/8, 1/4 or 1/2 of its stored size: the largest reduction that still
   leaves at least the size's width and height (sharp's "shrink-on-load").
   The reduction depends on that size's target alone, so a size's bytes are a
   function of the original's bytes and its target width only, whichever
   other sizes the same call makes (an on-demand thumbnail is byte-identical
   to one made at upload). Sizes with the same reduction share one decode; a
   PNG is decoded once, at full size, for all of them.
2. Transparent pixels (PNG alpha or tRNS) are composited onto white, so they
   do not turn black; every mode becomes 8-bit RGB (16-bit grey is scaled to
   8 bits, not clipped).
3. Lanczos resampling to the target (``Image.Resampling.LANCZOS``, in the
   stored orientation), then the EXIF orientation (1 to 8) is applied by
   transposing the small result.
4. An embedded RGB ICC profile (phones' Display P3) is converted to sRGB with
   LittleCMS, as sharp does by default; the output carries no ICC profile,
   no EXIF, no XMP and no comment.
5. Baseline JPEG at quality :data:`..sizes.JPEG_QUALITY` (80), Pillow's
   default 4:2:0 chroma subsampling, no optimize, no progressive.

The bytes of a size are deterministic for a given original and target width
(with the same Pillow and libjpeg-turbo versions): the contract's sizes are
immutable (generation 1) and RenderSizes is idempotent.

The orientation is read from the header (EXIF, or XMP ``tiff:Orientation``)
by :func:`probe` and :func:`render` alike, so they always agree (a PNG's
``eXIf`` chunk after its image data is not read: it would need a decode).
Malformed EXIF counts as orientation 1.

Refusals, all :class:`ImageRejected` (the service answers FAILED_PRECONDITION):
not decodable, not JPEG or PNG (an MPO, a phone's multi-picture JPEG, counts
as JPEG: its first picture is used), more than ``max_pixels`` pixels (width x
height, checked from the header before anything is decoded; Pillow itself
refuses more than twice ``PIL.Image.MAX_IMAGE_PIXELS``, 178,956,970 by
default, whatever ``max_pixels`` says), a size taller or wider than 65,535
pixels (JPEG's limit), a size whose JPEG is larger than ``max_bytes``
(default 2 MiB, what the object store keeps), or pixel data that does not
decode (a truncated file: :func:`probe` accepts it, :func:`render` refuses it).
"""

from __future__ import annotations

import hashlib
import io
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from PIL import Image, ImageCms, ImageFile, UnidentifiedImageError

from ...video.limits import MAX_PHOTO_RENDITION_BYTES
from ..sizes import JPEG_QUALITY, SIZES, scaled

__all__ = ["MAX_JPEG_SIDE_PX", "ImageRejected", "Probe", "Rendered", "probe", "render"]

#: JPEG's largest width or height, in pixels.
MAX_JPEG_SIDE_PX = 65_535

#: Pillow plugins tried by ``Image.open``: no other decoder ever sees the bytes.
_OPENERS = ("JPEG", "PNG")
#: Pillow's format name → the contract's (ProbeOriginalResponse.format).
_FORMATS = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG"}
#: Errors Pillow raises for bytes that do not decode.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError)
_ORIENTATION_TAG = 0x0112
#: EXIF orientation → the transposition that shows the image upright (as ``ImageOps.exif_transpose``).
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_WHITE = (255, 255, 255, 255)


class ImageRejected(ValueError):
    """The original cannot be made into sizes; ``reason`` says why (it reads after "the original ...")."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Probe:
    """An original as :func:`probe` reads it: ``format`` ``"JPEG"`` or ``"PNG"``; width and height in pixels,
    as displayed (after the EXIF orientation: swapped for orientations 5 to 8)."""

    format: str
    width_px: int
    height_px: int


@dataclass(frozen=True)
class Rendered:
    """One size made by :func:`render`: its width and height in pixels, its JPEG bytes and their SHA-256 (lowercase hex)."""

    width_px: int
    height_px: int
    data: bytes = field(repr=False)
    sha256_hex: str


@dataclass(frozen=True)
class _Header:
    format: str
    stored: tuple[int, int]
    orientation: int
    icc_profile: bytes | None

    @property
    def swapped(self) -> bool:
        return self.orientation >= 5

    @property
    def displayed(self) -> tuple[int, int]:
        width, height = self.stored
        return (height, width) if self.swapped else (width, height)


def _open(data: bytes) -> ImageFile.ImageFile:
    """``Image.open`` restricted to JPEG and PNG; reads the header only."""
    try:
        return Image.open(io.BytesIO(data), formats=_OPENERS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageRejected(f"has too many pixels to decode safely ({error})") from None
    except UnidentifiedImageError:
        raise ImageRejected("is not a JPEG or PNG image") from None
    except _DECODE_ERRORS as error:
        raise ImageRejected(f"cannot be read as a JPEG or PNG image ({error})") from None


def _orientation(im: Image.Image) -> int:
    """The EXIF (or XMP) orientation in the header, 1 to 8; 1 when absent or malformed.

    ``Image.Image.getexif`` reads what the header parse put in ``im.info``;
    the PNG plugin's override would decode the whole image to look for an
    ``eXIf`` chunk after the pixels.
    """
    try:
        value = Image.Image.getexif(im).get(_ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001 - malformed EXIF: shown as stored, in probe and render alike
        return 1
    return value if isinstance(value, int) and value in _TRANSPOSE else 1


def _header(data: bytes, max_pixels: int) -> _Header:
    with _open(data) as im:
        kind = _FORMATS.get(im.format or "")
        if kind is None:  # pragma: no cover - only the JPEG and PNG plugins are tried
            raise ImageRejected(f"is a {im.format} image, not a JPEG or PNG")
        width, height = im.size
        if width <= 0 or height <= 0:
            raise ImageRejected(f"has no pixels ({width} x {height})")
        if width * height > max_pixels:
            raise ImageRejected(f"is {width:,} x {height:,} = {width * height:,} pixels; at most {max_pixels:,}")
        icc = im.info.get("icc_profile")
        return _Header(kind, (width, height), _orientation(im), icc if isinstance(icc, bytes) and icc else None)


def _check_target(width_px: int, height_px: int) -> None:
    if width_px > MAX_JPEG_SIDE_PX or height_px > MAX_JPEG_SIDE_PX:
        raise ImageRejected(f"would make a {width_px:,} x {height_px:,} pixel size; "
                            f"a JPEG has at most {MAX_JPEG_SIDE_PX:,} pixels a side")


def probe(data: bytes, max_pixels: int) -> Probe:
    """Format and displayed dimensions (pixels) of the original ``data``, from its header alone.

    ``max_pixels``: the most pixels (width x height) accepted. Raises
    :class:`ImageRejected` when ``data`` is not a readable JPEG or PNG header,
    has more pixels, or one of the contract's sizes (:data:`..sizes.SIZES`)
    would be more than 65,535 pixels tall.
    """
    header = _header(data, max_pixels)
    width, height = header.displayed
    for size in SIZES:
        _check_target(*scaled(width, height, size.width_px))
    return Probe(header.format, width, height)


def _reduction(header: _Header, stored_target: tuple[int, int]) -> int:
    """libjpeg's DCT scaling denominator for one size: 8, 4, 2 or 1 (as ``JpegImageFile.draft`` picks it); 1 for PNG."""
    if header.format != "JPEG":
        return 1
    width, height = header.stored
    fits = min(width // stored_target[0], height // stored_target[1])
    return next((s for s in (8, 4, 2) if fits >= s), 1)


def _flatten(im: Image.Image) -> Image.Image:
    """``im`` as 8-bit RGB: transparent pixels composited onto white, 16-bit grey scaled (not clipped) to 8 bits."""
    if im.mode.startswith("I"):  # 16-bit grey PNG: I;16 (a tRNS grey level is dropped)
        im = im.convert("I").point(lambda v: v * (1 / 257)).convert("L")
        im.info.pop("transparency", None)
    if im.has_transparency_data:
        white = Image.new("RGBA", im.size, _WHITE)
        white.alpha_composite(im.convert("RGBA"))
        return white.convert("RGB")
    return im if im.mode == "RGB" else im.convert("RGB")


def _decode(data: bytes, header: _Header, reduction: int) -> tuple[Image.Image, tuple[float, float, float, float]]:
    """The original decoded at 1/``reduction`` of its stored size, as RGB, and the box of its pixels (for ``resize``)."""
    im = _open(data)  # a fresh image: draft() works once per opened image
    box = (0.0, 0.0, float(im.width), float(im.height))
    try:
        if reduction > 1:
            width, height = header.stored
            drafted = im.draft("RGB", (width // reduction, height // reduction))
            if drafted is not None:
                box = drafted[1]
        im.load()
        return _flatten(im), box
    except _DECODE_ERRORS as error:
        raise ImageRejected(f"cannot be decoded ({error})") from None


def _srgb_transform(icc_profile: bytes | None) -> ImageCms.ImageCmsTransform | None:
    """An RGB → sRGB transform from the original's RGB ICC profile; ``None`` without one, or when it is unusable."""
    if icc_profile is None:
        return None
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        if source.profile.xcolor_space.strip() != "RGB":
            return None
        return ImageCms.buildTransform(source, ImageCms.createProfile("sRGB"), "RGB", "RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None


def _encode(decoded: Image.Image, box: tuple[float, float, float, float], stored_target: tuple[int, int],
            orientation: int, transform: ImageCms.ImageCmsTransform | None, max_bytes: int) -> Rendered:
    im = decoded.resize(stored_target, Image.Resampling.LANCZOS, box=box)
    if orientation in _TRANSPOSE:
        im = im.transpose(_TRANSPOSE[orientation])
    if transform is not None:
        im = ImageCms.applyTransform(im, transform)
    im.info = {}  # nothing of the original's (a JPEG comment would be written back)
    buffer = io.BytesIO()
    im.save(buffer, "JPEG", quality=JPEG_QUALITY)
    data = buffer.getvalue()
    width, height = im.size
    if len(data) > max_bytes:
        raise ImageRejected(f"makes a {width:,} x {height:,} size of {len(data):,} bytes; at most {max_bytes:,}")
    return Rendered(width, height, data, hashlib.sha256(data).hexdigest())


def render(data: bytes, widths: Sequence[int], max_pixels: int, *,
           max_bytes: int = MAX_PHOTO_RENDITION_BYTES) -> list[Rendered]:
    """The sizes of the original ``data`` at each target width in ``widths`` (pixels), in the same order.

    Each size is :func:`..sizes.scaled` from the displayed dimensions (never
    upscaled) and made as the module doc says. ``max_pixels``: as for
    :func:`probe`; ``max_bytes``: the largest JPEG accepted per size, in
    bytes (default 2 MiB, ``MAX_PHOTO_RENDITION_BYTES``). Raises
    :class:`ImageRejected` (nothing is returned then), ``ValueError`` for a
    width <= 0. CPU-bound; Pillow releases the GIL while it decodes, resamples
    and encodes, so calls in several threads run in parallel.
    """
    header = _header(data, max_pixels)
    targets = [scaled(*header.displayed, width) for width in widths]
    for target in targets:
        _check_target(*target)
    stored = [(h, w) if header.swapped else (w, h) for w, h in targets]
    reductions = [_reduction(header, target) for target in stored]
    transform = _srgb_transform(header.icc_profile)
    rendered: list[Rendered | None] = [None] * len(widths)
    for reduction in sorted(set(reductions), reverse=True):
        decoded, box = _decode(data, header, reduction)
        for i, target in enumerate(stored):
            if reductions[i] == reduction:
                rendered[i] = _encode(decoded, box, target, header.orientation, transform, max_bytes)
    return [r for r in rendered if r is not None]
