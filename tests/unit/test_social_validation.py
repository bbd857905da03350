"""The social feed's request validation: the rules protos/casemesh/social/v1 states, each naming its field."""

from __future__ import annotations

import pytest

from casemesh.services.runtime.errors import InvalidArgument
from casemesh.services.social.limits import MAX_TWEET_CHARS, TIMELINE_CAPACITY
from casemesh.services.social.validation import page_size, validate_text, validate_tweet_ids, validate_user_id

# --- user IDs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("user_id", ["a", "Z", "0", "_", "-", "user_42", "Alice-Bob_9", "x" * 64])
def test_valid_user_ids_are_returned_unchanged(user_id):
    assert validate_user_id("author_id", user_id) == user_id


@pytest.mark.parametrize("user_id", [
    "",              # required
    "x" * 65,        # too long
    "a b",           # space
    " alice",        # leading space
    "alice\n",       # trailing newline (fullmatch, not match)
    "a.b",
    "a/b",
    "é",             # not ASCII
    "١٢٣",           # Arabic-Indic digits are not [0-9]
    "alice@example",
])
def test_invalid_user_ids_name_the_field(user_id):
    with pytest.raises(InvalidArgument) as raised:
        validate_user_id("follower_id", user_id)
    assert raised.value.field == "follower_id"
    assert str(raised.value).startswith("follower_id: ")


def test_user_id_field_name_is_the_callers():
    for field in ("followee_id", "user_id", "author_ids[3]"):
        with pytest.raises(InvalidArgument) as raised:
            validate_user_id(field, "bad id")
        assert raised.value.field == field


# --- tweet text ---------------------------------------------------------------------------------


def test_text_of_280_code_points_is_accepted():
    assert MAX_TWEET_CHARS == 280
    assert validate_text("x" * 280) == "x" * 280


def test_text_of_280_emoji_is_accepted_as_280_code_points():
    text = "\U0001F600" * 280  # 280 code points, 1,120 UTF-8 bytes
    assert len(text.encode()) == 1120
    assert validate_text(text) == text
    mixed = "h\u00e9llo w\u00f6rld \U0001F44D " * 20  # 14 code points each, 25 UTF-8 bytes
    assert len(mixed) == 280
    assert validate_text(mixed) == mixed
    with pytest.raises(InvalidArgument):
        validate_text(mixed + "\U0001F44D")


@pytest.mark.parametrize("text", ["x" * 281, "\U0001F600" * 281, "a" * 1000])
def test_text_over_280_code_points_is_rejected(text):
    with pytest.raises(InvalidArgument) as raised:
        validate_text(text)
    assert raised.value.field == "text"
    assert str(len(text)) in raised.value.reason


@pytest.mark.parametrize("text", ["", " ", "   \t\n", "\u3000", "\r\n\r\n"])
def test_empty_or_whitespace_only_text_is_rejected(text):
    with pytest.raises(InvalidArgument) as raised:
        validate_text(text)
    assert raised.value.field == "text"


def test_text_with_surrounding_whitespace_is_kept_as_is():
    assert validate_text("  hello  ") == "  hello  "
    # 280 code points counting the whitespace is still fine; 281 is not.
    assert validate_text(" " * 279 + "x") == " " * 279 + "x"
    with pytest.raises(InvalidArgument):
        validate_text(" " * 280 + "x")


# --- page sizes -------------------------------------------------------------------------------


def test_page_size_zero_means_the_default():
    assert page_size(0, default=50, most=200) == 50


@pytest.mark.parametrize("value", [1, 49, 51, 200])
def test_page_size_in_range_is_kept(value):
    assert page_size(value, default=50, most=200) == value


@pytest.mark.parametrize("value", [-1, -50, 201, 10_000])
def test_page_size_out_of_range_is_rejected(value):
    with pytest.raises(InvalidArgument) as raised:
        page_size(value, default=50, most=200)
    assert raised.value.field == "page_size"
    assert str(value) in raised.value.reason


# --- tweet ID lists -----------------------------------------------------------------------------


def test_tweet_ids_are_returned_as_a_list_in_order():
    ids = (5, 3, 9, 3)
    got = validate_tweet_ids(ids, TIMELINE_CAPACITY)
    assert got == [5, 3, 9, 3] and isinstance(got, list)
    assert validate_tweet_ids([1] * TIMELINE_CAPACITY, TIMELINE_CAPACITY) == [1] * TIMELINE_CAPACITY


def test_no_tweet_ids_is_rejected():
    with pytest.raises(InvalidArgument) as raised:
        validate_tweet_ids([], TIMELINE_CAPACITY)
    assert raised.value.field == "tweet_ids"


def test_too_many_tweet_ids_is_rejected():
    with pytest.raises(InvalidArgument) as raised:
        validate_tweet_ids(list(range(1, 802)), 800)
    assert raised.value.field == "tweet_ids"
    assert "801" in raised.value.reason


def test_a_zero_tweet_id_names_its_index():
    with pytest.raises(InvalidArgument) as raised:
        validate_tweet_ids([7, 8, 0, 9], 800)
    assert raised.value.field == "tweet_ids[2]"
    with pytest.raises(InvalidArgument) as raised:
        validate_tweet_ids([0], 800)
    assert raised.value.field == "tweet_ids[0]"
