"""The photo contract's request rules (services/photo/validation.py), sizes and ids (services/photo/sizes.py) and
photo-media's settings (services/photo/media/settings.py), as protos/casemesh/photo/v1 states them."""

from __future__ import annotations

import pydantic
import pytest

from casemesh.photo.v1 import photo_pb2
from casemesh.services.photo.media.settings import MediaSettings
from casemesh.services.photo.sizes import MAX_CAPTION_CHARS, MAX_UPLOAD_BYTES, PHOTO_ID_PATTERN, SIZES, photo_id, scaled
from casemesh.services.photo.validation import (validate_caption, validate_file_size, validate_photo_id, validate_size,
                                                validate_sizes)
from casemesh.services.runtime.errors import InvalidArgument
from casemesh.services.video.catalog.videos import new_video_id

THUMBNAIL, MEDIUM, LARGE = photo_pb2.PHOTO_SIZE_THUMBNAIL, photo_pb2.PHOTO_SIZE_MEDIUM, photo_pb2.PHOTO_SIZE_LARGE
UNSPECIFIED = photo_pb2.PHOTO_SIZE_UNSPECIFIED


def field_of(call, *args, **kwargs) -> str:
    with pytest.raises(InvalidArgument) as caught:
        call(*args, **kwargs)
    return caught.value.field


# -- photo ids ---------------------------------------------------------------

@pytest.mark.parametrize("value", ["p" + "0" * 20, "p18446744073709551615", photo_id(123_456_789)])
def test_photo_id_accepted(value):
    assert validate_photo_id(value) == value


@pytest.mark.parametrize("value", ["p" + "0" * 19, "p" + "0" * 21, "P" + "0" * 20, "q" + "0" * 20, "p" + "0" * 19 + "a",
                                   " p" + "0" * 20, "p" + "0" * 20 + "\n", "p" + "١" * 20, "abcdefghijk"])
def test_photo_id_refused(value):
    assert field_of(validate_photo_id, value) == "photo_id"


def test_photo_id_required_and_field_name():
    with pytest.raises(InvalidArgument) as caught:
        validate_photo_id("")
    assert caught.value.field == "photo_id" and "required" in caught.value.reason
    assert field_of(validate_photo_id, "nope", "before_photo_id") == "before_photo_id"


def test_photo_id_reason_shortens_long_values():
    with pytest.raises(InvalidArgument) as caught:
        validate_photo_id("x" * 500)
    assert len(str(caught.value)) < 200


# -- sizes -------------------------------------------------------------------

@pytest.mark.parametrize("value", [THUMBNAIL, MEDIUM, LARGE])
def test_size_accepted(value):
    assert validate_size(value) == value


def test_size_unspecified_only_where_allowed():
    assert validate_size(UNSPECIFIED, allow_unspecified=True) == UNSPECIFIED
    assert field_of(validate_size, UNSPECIFIED) == "size"


@pytest.mark.parametrize("value", [4, -1, 99])
def test_size_unknown_value_refused(value):
    with pytest.raises(InvalidArgument) as caught:
        validate_size(value, allow_unspecified=True)
    assert caught.value.field == "size"
    assert str(value) in caught.value.reason and "PHOTO_SIZE_LARGE" in caught.value.reason


def test_sizes_accepted_in_order():
    assert validate_sizes([LARGE, THUMBNAIL]) == [LARGE, THUMBNAIL]
    assert validate_sizes((THUMBNAIL, MEDIUM, LARGE)) == [THUMBNAIL, MEDIUM, LARGE]


def test_sizes_empty_refused():
    assert field_of(validate_sizes, []) == "sizes"


@pytest.mark.parametrize("values, field", [
    ([THUMBNAIL, THUMBNAIL], "sizes[1]"),
    ([MEDIUM, LARGE, MEDIUM], "sizes[2]"),
    ([UNSPECIFIED], "sizes[0]"),
    ([THUMBNAIL, UNSPECIFIED], "sizes[1]"),
    ([THUMBNAIL, 7], "sizes[1]"),
    ([-3, THUMBNAIL], "sizes[0]"),
])
def test_sizes_refused_naming_the_element(values, field):
    assert field_of(validate_sizes, values) == field


def test_sizes_duplicate_reason_names_the_size():
    with pytest.raises(InvalidArgument) as caught:
        validate_sizes([MEDIUM, MEDIUM])
    assert "PHOTO_SIZE_MEDIUM" in caught.value.reason and str(caught.value).startswith("sizes[1]: ")


def test_sizes_custom_field_name():
    assert field_of(validate_sizes, [], "pregenerate") == "pregenerate"
    assert field_of(validate_sizes, [LARGE, LARGE], "pregenerate") == "pregenerate[1]"


# -- caption and file size ---------------------------------------------------

def test_caption_limit():
    assert MAX_CAPTION_CHARS == 2_200
    assert validate_caption("") == ""
    assert validate_caption("a" * 2_200) == "a" * 2_200
    assert field_of(validate_caption, "a" * 2_201) == "caption"


def test_caption_counts_code_points():
    emoji = "\U0001F4F7"  # 4 bytes in UTF-8, 2 UTF-16 units, 1 code point
    assert validate_caption(emoji * 2_200) == emoji * 2_200
    assert field_of(validate_caption, emoji * 2_201) == "caption"


@pytest.mark.parametrize("value", [1, 2, MAX_UPLOAD_BYTES - 1, 10 * 1024 * 1024])
def test_file_size_accepted(value):
    assert validate_file_size(value) == value


@pytest.mark.parametrize("value", [0, -1, 10 * 1024 * 1024 + 1, 1 << 40])
def test_file_size_refused(value):
    assert MAX_UPLOAD_BYTES == 10 * 1024 * 1024
    with pytest.raises(InvalidArgument) as caught:
        validate_file_size(value)
    assert caught.value.field == "file_size_bytes" and str(value) in caught.value.reason


# -- sizes.photo_id and sizes.scaled -----------------------------------------

def test_photo_id_format():
    assert photo_id(0) == "p" + "0" * 20
    assert photo_id(42) == "p" + "0" * 18 + "42"
    assert photo_id((1 << 64) - 1) == "p18446744073709551615"
    for value in (0, 1, 1 << 40, (1 << 64) - 1):
        assert PHOTO_ID_PATTERN.fullmatch(photo_id(value))
        assert validate_photo_id(photo_id(value)) == photo_id(value)


def test_photo_id_string_order_is_numeric_order():
    values = [0, 9, 10, 99, 100, 1 << 22, (1 << 22) + 1, 1 << 63, (1 << 64) - 1]
    assert sorted(photo_id(v) for v in values) == [photo_id(v) for v in sorted(values)]


@pytest.mark.parametrize("value", [-1, 1 << 64, 1 << 70])
def test_photo_id_refuses_values_outside_64_bits(value):
    with pytest.raises(ValueError):
        photo_id(value)


def test_photo_and_video_ids_never_have_the_same_length():
    assert len(photo_id(0)) == 21 != 11
    assert len(photo_id((1 << 64) - 1)) == 21
    assert {len(new_video_id()) for _ in range(50)} == {11}


def test_scaled_never_upscales():
    assert scaled(100, 50, 150) == (100, 50)
    assert scaled(150, 99, 150) == (150, 99)
    assert scaled(640, 480, 1080) == (640, 480)


def test_scaled_keeps_the_aspect_ratio():
    assert scaled(4000, 3000, 1080) == (1080, 810)
    assert scaled(3000, 4000, 640) == (640, 853)  # 853.33
    assert scaled(1000, 333, 150) == (150, 50)  # 49.95 rounds up
    assert scaled(1000, 331, 150) == (150, 50)  # 49.65
    assert scaled(1000, 329, 150) == (150, 49)  # 49.35 rounds down
    assert [scaled(6000, 4000, s.width_px) for s in SIZES] == [(150, 100), (640, 427), (1080, 720)]


def test_scaled_height_at_least_one():
    assert scaled(10_000, 1, 150) == (150, 1)
    assert scaled(100_000, 2, 150) == (150, 1)


@pytest.mark.parametrize("args", [(0, 10, 150), (10, 0, 150), (10, 10, 0), (-1, 10, 150), (10, -5, 150), (10, 10, -150)])
def test_scaled_refuses_non_positive_dimensions(args):
    with pytest.raises(ValueError):
        scaled(*args)


# -- MediaSettings -----------------------------------------------------------

def test_settings_defaults():
    settings = MediaSettings()
    assert settings.pregenerate_sizes == ["thumbnail", "medium", "large"]
    assert MediaSettings(pregenerate_sizes=[]).pregenerate_sizes == []
    assert MediaSettings(pregenerate_sizes=["large"]).pregenerate_sizes == ["large"]


def test_settings_refuse_a_repeated_size():
    with pytest.raises(pydantic.ValidationError, match="twice"):
        MediaSettings(pregenerate_sizes=["thumbnail", "large", "thumbnail"])


@pytest.mark.parametrize("name", ["huge", "THUMBNAIL", "PHOTO_SIZE_LARGE", ""])
def test_settings_refuse_an_unknown_size_name(name):
    with pytest.raises(pydantic.ValidationError):
        MediaSettings(pregenerate_sizes=["medium", name])


def test_settings_refuse_unknown_keys_and_out_of_range_values():
    with pytest.raises(pydantic.ValidationError):
        MediaSettings(pregenerate=["medium"])
    with pytest.raises(pydantic.ValidationError):
        MediaSettings(render_workers=0)
    with pytest.raises(pydantic.ValidationError):
        MediaSettings(render_timeout_ms=50)
