"""Base62 short codes, and the scramble that turns counter IDs into codes.

Source: URL-shortener case study (shared/seeds/000_69ff90d97cf45f9b.txt,
"Short URL Generation", approach 1 "Base62 Encoding of Counter", and "Scale
Estimation": base62 with 7 characters gives 62^7 = 3.5T codes).

The case study encodes the counter value directly, which makes consecutive IDs
give consecutive codes (``aaaaaab``, ``aaaaaac``, ...) that anyone can walk.
Here the ID is first multiplied by an odd constant coprime to 62^7, modulo
62^7: a bijection on ``0 .. 62^7 - 1``, so codes stay unique and 7 characters
long, while consecutive IDs land far apart. It is obfuscation, not secrecy:
someone holding two codes of consecutive IDs can recover the constant.
"""

from __future__ import annotations

import string

#: The 62 code characters in the case study's order (``Base62Encoder.CHARS``).
ALPHABET = string.ascii_letters + string.digits
#: Length of a generated code, in characters.
CODE_LENGTH = 7
#: Number of distinct 7-character codes: 62^7 = 3,521,614,606,208.
CODE_SPACE = 62**CODE_LENGTH

_INDEX = {ch: i for i, ch in enumerate(ALPHABET)}

# Multiplier of the scramble: the odd integer nearest CODE_SPACE / golden ratio
# that is coprime to 62^7 = 2^7 * 31^7 (odd and not a multiple of 31), so the
# map id -> id * _MULTIPLIER mod CODE_SPACE is invertible.
_MULTIPLIER = 2_176_477_521_915
_INVERSE = pow(_MULTIPLIER, -1, CODE_SPACE)


def encode_base62(n: int, width: int = 0) -> str:
    """Encode a non-negative integer in base62, most significant digit first.

    ``width`` left-pads with ``ALPHABET[0]`` (``"a"``, the digit zero) to at
    least that many characters; a longer result is never truncated.
    ``encode_base62(0) == "a"``. Raises ValueError for a negative ``n``.
    """
    if n < 0:
        raise ValueError(f"cannot base62-encode a negative number ({n})")
    digits: list[str] = []
    while n:
        n, r = divmod(n, 62)
        digits.append(ALPHABET[r])
    encoded = "".join(reversed(digits)) or ALPHABET[0]
    return encoded.rjust(width, ALPHABET[0])


def decode_base62(s: str) -> int:
    """Decode a base62 string (inverse of :func:`encode_base62`; padding is ignored).

    Raises ValueError for an empty string or a character outside ``ALPHABET``.
    """
    if not s:
        raise ValueError("cannot base62-decode an empty string")
    n = 0
    for ch in s:
        try:
            n = n * 62 + _INDEX[ch]
        except KeyError:
            raise ValueError(f"{ch!r} is not a base62 character") from None
    return n


def code_for_id(id: int) -> str:
    """Map a counter ID in ``1 .. CODE_SPACE - 1`` to its 7-character code.

    ``code = base62((id * M) mod 62^7, width 7)``. ID 0 is excluded (it would map
    to ``"aaaaaaa"`` whatever the multiplier). Raises ValueError outside the
    range, e.g. for a Snowflake ID: generated codes need the dense counter layout.
    """
    if not 1 <= id < CODE_SPACE:
        raise ValueError(f"id must be in 1..{CODE_SPACE - 1} (got {id})")
    return encode_base62(id * _MULTIPLIER % CODE_SPACE, CODE_LENGTH)


def id_for_code(code: str) -> int:
    """Invert :func:`code_for_id`: the counter ID behind a generated code.

    Raises ValueError when ``code`` is not exactly 7 base62 characters or maps
    to ID 0 (``"aaaaaaa"``), i.e. when no ID in range produces it.
    """
    if len(code) != CODE_LENGTH:
        raise ValueError(f"a generated code has {CODE_LENGTH} characters (got {len(code)})")
    id = decode_base62(code) * _INVERSE % CODE_SPACE
    if id == 0:
        raise ValueError(f"{code!r} is not the code of any id")
    return id
