"""The photo resizer's Pillow work (services/photo/resizer/imaging.py): probe and render, without gRPC.

Seed 003, "Instagram Photo Storage": widths 150, 640 and 1080, "fit: 'inside'"
(no upscaling), JPEG quality 80. Every test image is made here, small.
"""

from __future__ import annotations

import functools
import hashlib
import io
import struct
import time
import zlib

import pytest
from PIL import Image, ImageCms, ImageOps, ImageStat

from casemesh.services.photo.resizer.imaging import MAX_JPEG_SIDE_PX, ImageRejected, Probe, probe, render
from casemesh.services.photo.sizes import SIZES

WIDTHS = [s.width_px for s in SIZES]  # 150, 640, 1080
LIMIT = 40_000_000


def encode(im: Image.Image, kind: str = "JPEG", **params) -> bytes:
    buffer = io.BytesIO()
    im.save(buffer, kind, **params)
    return buffer.getvalue()


def scene(width: int, height: int) -> Image.Image:
    """A smooth RGB test picture: gradients in two channels, a constant third."""
    return Image.merge("RGB", [Image.linear_gradient("L").resize((width, height)),
                               Image.radial_gradient("L").resize((width, height)),
                               Image.new("L", (width, height), 90)])


@functools.cache
def photo_1280x960() -> bytes:
    return encode(scene(1280, 960), quality=90)


def quadrants(width: int, height: int) -> Image.Image:
    """Four solid quadrants: red top-left, green top-right, blue bottom-left, white bottom-right."""
    im = Image.new("RGB", (width, height))
    half_w, half_h = width // 2, height // 2
    for (x, y), colour in {(0, 0): (230, 20, 20), (1, 0): (20, 200, 20), (0, 1): (20, 20, 230), (1, 1): (250, 250, 250)}.items():
        im.paste(colour, (x * half_w, y * half_h, (x + 1) * half_w, (y + 1) * half_h))
    return im


def with_orientation(im: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(im, quality=95, exif=exif.tobytes())


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` RGB pixels, with almost no pixel data behind it."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


def decoded(made) -> Image.Image:
    im = Image.open(io.BytesIO(made.data))
    im.load()
    return im


def test_probe_reads_format_and_dimensions():
    assert probe(photo_1280x960(), LIMIT) == Probe("JPEG", 1280, 960)
    assert probe(encode(scene(300, 200), "PNG"), LIMIT) == Probe("PNG", 300, 200)


def test_each_size_of_a_1280x960_photo():
    made = render(photo_1280x960(), WIDTHS, LIMIT)
    assert [(m.width_px, m.height_px) for m in made] == [(150, 113), (640, 480), (1080, 810)]  # 112.5 rounds half up
    for m in made:
        assert decoded(m).size == (m.width_px, m.height_px)
        assert decoded(m).format == "JPEG" and decoded(m).mode == "RGB"


def test_a_small_original_is_never_upscaled():
    data = encode(scene(100, 80))
    assert [(m.width_px, m.height_px) for m in render(data, WIDTHS, LIMIT)] == [(100, 80)] * 3


def test_sizes_asked_in_any_order_come_back_in_that_order():
    made = render(photo_1280x960(), [1080, 150], LIMIT)
    assert [m.width_px for m in made] == [1080, 150]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_as_pillow_exif_transpose_does(orientation):
    source = with_orientation(quadrants(64, 48), orientation)
    expected = ImageOps.exif_transpose(Image.open(io.BytesIO(source)))
    size = (48, 64) if orientation >= 5 else (64, 48)
    assert expected.size == size
    assert probe(source, LIMIT) == Probe("JPEG", *size)
    [made] = render(source, [1080], LIMIT)  # wider than the original: the original's size, rotated
    out = decoded(made)
    assert out.size == size
    for x, y in [(size[0] // 4, size[1] // 4), (3 * size[0] // 4, size[1] // 4),
                 (size[0] // 4, 3 * size[1] // 4), (3 * size[0] // 4, 3 * size[1] // 4)]:
        assert all(abs(a - b) <= 24 for a, b in zip(out.getpixel((x, y)), expected.getpixel((x, y)), strict=True)), (x, y)


def test_a_portrait_photo_with_orientation_6_comes_out_rotated():
    # Stored 1280 x 960 (landscape, as the sensor wrote it), shown 960 x 1280.
    source = with_orientation(scene(1280, 960), 6)
    assert probe(source, LIMIT) == Probe("JPEG", 960, 1280)
    made = render(source, WIDTHS, LIMIT)
    assert [(m.width_px, m.height_px) for m in made] == [(150, 200), (640, 853), (960, 1280)]
    assert all(decoded(m).size == (m.width_px, m.height_px) for m in made)
    assert all("exif" not in decoded(m).info for m in made)


def test_transparent_png_areas_turn_white_not_black():
    im = Image.new("RGBA", (400, 300), (0, 0, 0, 0))  # transparent black
    im.paste((10, 30, 200, 255), (150, 100, 250, 200))  # an opaque blue block in the middle
    made = render(encode(im, "PNG"), [150, 640], LIMIT)
    for m in made:
        out = decoded(m)
        assert out.mode == "RGB"
        assert all(channel >= 245 for channel in out.getpixel((2, 2)))
        centre = out.getpixel((out.width // 2, out.height // 2))
        assert all(abs(a - b) <= 8 for a, b in zip(centre, (10, 30, 200), strict=True))


def test_palette_png_with_transparency_turns_white():
    im = Image.new("P", (120, 90), 0)
    im.putpalette([0, 0, 0, 255, 0, 0])
    im.paste(1, (40, 30, 80, 60))
    made = render(encode(im, "PNG", transparency=0), [150], LIMIT)
    out = decoded(made[0])
    assert all(channel >= 245 for channel in out.getpixel((2, 2)))
    assert out.getpixel((60, 45))[0] >= 230


def test_sixteen_bit_grey_png_is_scaled_not_clipped():
    im = Image.new("I;16", (64, 64), 128 * 257)
    [made] = render(encode(im, "PNG"), [150], LIMIT)
    assert all(abs(channel - 128) <= 3 for channel in ImageStat.Stat(decoded(made)).mean)


def test_pixel_limit_rejects_from_the_header():
    with pytest.raises(ImageRejected, match=r"1,280 x 960 = 1,228,800 pixels; at most 1,228,799"):
        probe(photo_1280x960(), 1280 * 960 - 1)
    with pytest.raises(ImageRejected, match="pixels"):
        render(photo_1280x960(), WIDTHS, 1280 * 960 - 1)


def test_a_huge_image_is_rejected_without_being_decoded():
    started = time.perf_counter()
    over_limit = png_header(8_000, 6_000)  # 48 MP > 40 MP: the limit, before any decoding
    for call in (lambda: probe(over_limit, LIMIT), lambda: render(over_limit, WIDTHS, LIMIT)):
        with pytest.raises(ImageRejected, match=r"8,000 x 6,000 = 48,000,000 pixels; at most 40,000,000"):
            call()
    bomb = png_header(60_000, 60_000)  # past Pillow's own ceiling, whatever max_pixels says
    for call in (lambda: probe(bomb, 10**10), lambda: render(bomb, WIDTHS, 10**10)):
        with pytest.raises(ImageRejected, match="pixels"):
            call()
    assert time.perf_counter() - started < 0.5


def test_a_size_taller_than_jpeg_allows_is_rejected():
    tall = encode(Image.new("L", (1, MAX_JPEG_SIDE_PX + 1)), "PNG")
    with pytest.raises(ImageRejected, match="65,535"):
        probe(tall, LIMIT)
    with pytest.raises(ImageRejected, match="65,535"):
        render(tall, [150], LIMIT)


@pytest.mark.parametrize("data", [b"", b"hello, this is not an image\n" * 10, b"\xff\xd8\xff" + b"\0" * 20],
                         ids=["empty", "text", "broken-jpeg"])
def test_bytes_that_are_not_an_image_are_rejected(data):
    with pytest.raises(ImageRejected):
        probe(data, LIMIT)
    with pytest.raises(ImageRejected):
        render(data, WIDTHS, LIMIT)


@pytest.mark.parametrize("kind", ["GIF", "BMP", "WEBP", "TIFF"])
def test_other_image_formats_are_rejected(kind):
    data = encode(scene(32, 24), kind)
    with pytest.raises(ImageRejected, match="not a JPEG or PNG"):
        probe(data, LIMIT)
    with pytest.raises(ImageRejected, match="not a JPEG or PNG"):
        render(data, WIDTHS, LIMIT)


def test_a_truncated_jpeg_probes_but_does_not_render():
    data = photo_1280x960()[: len(photo_1280x960()) // 2]
    assert probe(data, LIMIT) == Probe("JPEG", 1280, 960)
    with pytest.raises(ImageRejected, match="cannot be decoded"):
        render(data, WIDTHS, LIMIT)


def test_a_size_larger_than_max_bytes_is_rejected():
    with pytest.raises(ImageRejected, match=r"bytes; at most 1,000"):
        render(photo_1280x960(), [640], LIMIT, max_bytes=1_000)


def test_output_is_deterministic_whichever_sizes_are_asked_together():
    first = render(photo_1280x960(), WIDTHS, LIMIT)
    again = render(photo_1280x960(), WIDTHS, LIMIT)
    assert [m.sha256_hex for m in first] == [m.sha256_hex for m in again]
    # Each size is decoded at its own DCT scale: alone or with the others, the same bytes.
    alone = [render(photo_1280x960(), [width], LIMIT)[0] for width in WIDTHS]
    assert [m.sha256_hex for m in alone] == [m.sha256_hex for m in first]
    assert len({m.sha256_hex for m in first}) == 3


def test_output_is_a_bare_jpeg_with_its_sha256():
    tagged = encode(scene(640, 480), quality=90, icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes(),
                    comment=b"from the camera", exif=Image.Exif().tobytes())
    for m in render(tagged, WIDTHS, LIMIT):
        assert m.data[:2] == b"\xff\xd8" and m.data[-2:] == b"\xff\xd9"
        assert m.sha256_hex == hashlib.sha256(m.data).hexdigest()
        info = decoded(m).info
        assert not {"exif", "icc_profile", "comment", "progressive", "progression"} & set(info), info


def test_solid_colour_is_preserved():
    source = encode(Image.new("RGB", (1280, 960), (200, 60, 30)), quality=90)
    for m in render(source, WIDTHS, LIMIT):
        mean = ImageStat.Stat(decoded(m)).mean
        assert all(abs(a - b) <= 8 for a, b in zip(mean, (200, 60, 30), strict=True)), (m.width_px, mean)


def test_an_srgb_profile_keeps_colours_and_a_broken_one_is_ignored():
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    solid = Image.new("RGB", (320, 240), (40, 120, 210))
    for profile in (srgb, b"not an ICC profile"):
        [made] = render(encode(solid, quality=90, icc_profile=profile), [150], LIMIT)
        mean = ImageStat.Stat(decoded(made)).mean
        assert all(abs(a - b) <= 8 for a, b in zip(mean, (40, 120, 210), strict=True)), mean
