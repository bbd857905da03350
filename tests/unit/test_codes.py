"""Base62 codes and the ID scramble (URL-shortener case study, "Short URL Generation")."""

import random
import string

import pytest

from casemesh.services.urlshortener.codes import (
    ALPHABET,
    CODE_LENGTH,
    CODE_SPACE,
    code_for_id,
    decode_base62,
    encode_base62,
    id_for_code,
)


def test_alphabet_is_the_case_studys_base62():
    assert ALPHABET == string.ascii_letters + string.digits
    assert len(set(ALPHABET)) == 62
    assert CODE_LENGTH == 7 and CODE_SPACE == 62**7 == 3_521_614_606_208


@pytest.mark.parametrize(
    "n, encoded",
    [(0, "a"), (1, "b"), (61, "9"), (62, "ba"), (62**7 - 1, "9999999")],
)
def test_encode_known_values(n, encoded):
    assert encode_base62(n) == encoded
    assert decode_base62(encoded) == n


def test_round_trip_and_padding():
    rng = random.Random(7)
    for n in [0, 1, 61, 62, 3843, 3844] + [rng.randrange(CODE_SPACE) for _ in range(1000)]:
        padded = encode_base62(n, 7)
        assert len(padded) == 7
        assert decode_base62(padded) == n
        assert decode_base62(encode_base62(n)) == n
    assert encode_base62(5, 4) == "aaaf"
    assert encode_base62(62**8, 7) == "baaaaaaaa"  # never truncated


def test_bad_input_raises_value_error():
    with pytest.raises(ValueError):
        encode_base62(-1)
    for bad in ["", "abc-", "ab c", "é"]:
        with pytest.raises(ValueError):
            decode_base62(bad)


def test_codes_are_seven_base62_characters_and_invert():
    rng = random.Random(42)
    ids = [1, 2, 3, CODE_SPACE - 1] + [rng.randrange(1, CODE_SPACE) for _ in range(2000)]
    for i in ids:
        code = code_for_id(i)
        assert len(code) == CODE_LENGTH
        assert set(code) <= set(ALPHABET)
        assert id_for_code(code) == i


def test_scramble_is_injective_on_a_sample():
    ids = list(range(1, 20_001)) + list(range(CODE_SPACE - 5000, CODE_SPACE))
    codes = {code_for_id(i) for i in ids}
    assert len(codes) == len(ids)


def test_consecutive_ids_give_non_consecutive_codes():
    for i in range(1, 1000):
        a, b = decode_base62(code_for_id(i)), decode_base62(code_for_id(i + 1))
        assert abs(a - b) > 62**3
        # the codes do not share a long prefix either
        assert code_for_id(i)[:3] != code_for_id(i + 1)[:3]


def test_code_for_id_range():
    for bad in [0, -1, CODE_SPACE, 2**63 - 1]:
        with pytest.raises(ValueError):
            code_for_id(bad)
    for bad in ["aaaaaaa", "abc", "aaaaaaaa", "aaaaaa-"]:
        with pytest.raises(ValueError):
            id_for_code(bad)
