"""Hypothesis strategies built from protobuf descriptors alone: any message type, any field type, hostile values.

:func:`messages` turns a ``Descriptor`` into a strategy of instances of its
message class. Every field type is covered, each with the values that break
servers more often than random ones do:

- integers: small non-negative ones, 0, ±1 and the type's minimum and maximum (``int32`` ±2^31, ``int64``
  ±2^63, ``uint64`` 2^64-1, ...) beside uniform ones; ``sint``/``fixed``/``sfixed``
  alike;
- ``float``/``double``: 0 to 100, NaN, ±inf, -0.0, the largest and the smallest subnormal
  beside any finite value (``float`` within 32 bits);
- ``string``: well-formed ids and URLs (so that some requests pass validation), empty, NUL, right-to-left overrides, byte-order marks,
  non-characters (U+FFFE, U+FFFF, U+10FFFF), emoji, combining marks, path and
  format-string look-alikes, any text without surrogates (a proto string
  cannot hold one), strings handed back by the servers (:class:`Echoes`), and
  huge strings (up to :data:`HUGE_BYTES`);
- ``bytes``: empty, random, huge;
- enums: every declared number and, for open (proto3) enums, unknown ones
  (-1, 2^31-1, -2^31, 99);
- nested messages down to ``max_depth`` (recursive types stop there), unset,
  empty or filled; repeated fields of up to 4 elements, or :data:`WIDE`
  copies of one small element; maps likewise (distinct keys); oneofs: none
  or exactly one member.

A strategy draws only the choices; huge and wide values are made by
repetition after the draw, so hypothesis's buffers stay small. Values that
could multiply (a huge string inside a wide repeated field) are not combined:
inside a wide field every value is small, so one message stays within a
few MiB (past 4 MiB, gRPC's default receive limit, the server answers
``RESOURCE_EXHAUSTED`` before decoding: an answer, not a finding).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

#: Sizes of "huge" strings and bytes (characters or bytes).
HUGE_BYTES = (4_096, 65_536, 1_048_576)
#: Lengths of "wide" repeated fields and maps: many copies of one small element.
WIDE = (64, 1_000, 10_000)
#: Elements of a repeated field or entries of a map, when not wide.
MAX_ELEMENTS = 4

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
UINT32 = (0, 2**32 - 1)
UINT64 = (0, 2**64 - 1)
_INTEGER_RANGES = {
    FieldDescriptor.TYPE_INT32: INT32, FieldDescriptor.TYPE_SINT32: INT32, FieldDescriptor.TYPE_SFIXED32: INT32,
    FieldDescriptor.TYPE_INT64: INT64, FieldDescriptor.TYPE_SINT64: INT64, FieldDescriptor.TYPE_SFIXED64: INT64,
    FieldDescriptor.TYPE_UINT32: UINT32, FieldDescriptor.TYPE_FIXED32: UINT32,
    FieldDescriptor.TYPE_UINT64: UINT64, FieldDescriptor.TYPE_FIXED64: UINT64,
}

ODD_STRINGS = (
    "", " ", "\x00", "a\x00b", "\t\r\n", "\u202eevil\u202c", "\u200f\u05e9\u05dc\u05d5\u05dd", "\ufeffbom",
    "\ufffe", "\uffff", "\U0010ffff", "\U0001f4a9", "e\u0301\u0301\u0301", "\u0130\u0131", "ﬃ", "%s%n%x%d",
    "../../../../etc/passwd", "/", "\\", "' OR '1'='1", "{}", "null", "-1", "0", "NaN", "1e308",
    "https://example.com/", "http://[::1]:80/", "A" * 255,
)
ODD_FLOATS = (0.0, -0.0, 1.0, -1.0, math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, 1e-9, 2.0**63)
ODD_FLOAT32 = (0.0, -0.0, 1.0, -1.0, math.nan, math.inf, -math.inf, 3.4028234663852886e38, 1.401298464324817e-45)
UNKNOWN_ENUM_NUMBERS = (-1, 99, 2**31 - 1, -(2**31))
#: The kinds of request bodies, as often as they are listed: well-formed complete requests, hostile
#: values, truncated and bit-flipped encodings, random bytes (:func:`payloads`).
PAYLOAD_MIX = ("plain", "plain", "plain", "hostile", "hostile", "hostile", "truncated", "flipped", "random")
#: Well-formed look-alikes (ids, names, URLs), so that some requests get past validation into the handlers.
PLAIN_IDS = st.text("abcdefXYZ0123456789_-", min_size=1, max_size=12)
PLAIN_URLS = st.text("abcdefxyz0123456789/", max_size=20).map(lambda path: f"https://example.com/{path}")


class Echoes:
    """Strings and integers the servers handed back (codes, ids, tokens, generations), so fuzzed requests can name things that exist.

    Kept by the name of the field they came in (``video_id``, ``upload_token``),
    so a request field of the same name gets them back first: contracts name
    the same thing the same way across messages. At most ``limit`` distinct
    strings per name and overall, oldest dropped first, each at most
    :data:`MAX_ECHO_CHARS` long. :meth:`pick` is deterministic in its index,
    so a derandomized run that sees the same answers draws the same requests.
    """

    def __init__(self, limit: int = 512):
        self.limit = limit
        self._items: dict[str, None] = {}
        self._by_name: dict[str, dict[str, None]] = {}
        self._numbers: dict[str, dict[int, None]] = {}

    def __len__(self) -> int:
        return len(self._items)

    def add_from(self, message: Message) -> None:
        """Keep the non-empty string fields of ``message`` (at any depth, map keys and values included)."""
        for field, value in message.ListFields():
            if field.type == FieldDescriptor.TYPE_STRING:
                for text in (value if field.is_repeated else [value]):
                    self._add(field.name, text)
            elif field.type in _INTEGER_RANGES and not field.is_repeated:
                kept = self._numbers.setdefault(field.name, {})
                kept.pop(value, None)
                kept[value] = None
                while len(kept) > self.limit:
                    kept.pop(next(iter(kept)))
            elif field.type == FieldDescriptor.TYPE_MESSAGE:
                if _is_map(field):
                    for key, item in value.items():
                        if isinstance(key, str):
                            self._add(field.name, key)
                        if isinstance(item, Message):
                            self.add_from(item)
                        elif isinstance(item, str):
                            self._add(field.name, item)
                else:
                    for item in (value if field.is_repeated else [value]):
                        self.add_from(item)

    def _add(self, name: str, text: str) -> None:
        if 0 < len(text) <= MAX_ECHO_CHARS:
            for kept in (self._items, self._by_name.setdefault(name, {})):
                kept.pop(text, None)
                kept[text] = None
                while len(kept) > self.limit:
                    kept.pop(next(iter(kept)))

    def pick(self, index: int, name: str | None = None) -> str:
        """The ``index``-th string kept under field name ``name`` (else under any name), modulo their number; ``""`` if none."""
        kept = self._by_name.get(name) or self._items
        if not kept:
            return ""
        items = list(kept)
        return items[-1 - index % len(items)]  # the newest first: index 0 is the last one seen

    def number(self, index: int, name: str) -> int:
        """The ``index``-th integer kept under field name ``name`` (a generation, a size), modulo their number; 0 if none."""
        kept = list(self._numbers.get(name, ()))
        return kept[-1 - index % len(kept)] if kept else 0

    def picks(self, name: str | None = None) -> st.SearchStrategy[str]:
        """A strategy of kept strings (those of field ``name`` first), read when drawn."""
        return st.integers(0, 2**16).map(lambda index: self.pick(index, name))


#: Longest string kept by :class:`Echoes` (upload tokens are a few hundred characters).
MAX_ECHO_CHARS = 2048


def _is_map(field: FieldDescriptor) -> bool:
    return field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry


def integers(field_type: int) -> st.SearchStrategy[int]:
    """Any integer of protobuf type ``field_type`` (``FieldDescriptor.TYPE_*``), its extremes and 0/±1 often."""
    low, high = _INTEGER_RANGES[field_type]
    extremes = sorted({v for v in (0, 1, -1, low, high, low + 1, high - 1, 2**31 - 1, 2**32 - 1, -(2**31)) if low <= v <= high})
    plain = st.integers(max(low, 0), min(high, 100))
    return st.one_of(plain, st.sampled_from(extremes), st.integers(low, high))


def floats(width: int) -> st.SearchStrategy[float]:
    """NaN, ±inf, -0.0, extremes and any value representable in ``width`` (32 or 64) bits."""
    plain = st.floats(0, 100, width=width)
    return st.one_of(plain, st.sampled_from(ODD_FLOAT32 if width == 32 else ODD_FLOATS), st.floats(width=width))


def _huge(unit: str, sizes: tuple[int, ...]) -> st.SearchStrategy[str]:
    return st.sampled_from(sizes).map(lambda n: unit * max(1, n // len(unit.encode())))


def strings(echoes: Echoes | None = None, *, small: bool = False, huge: tuple[int, ...] = HUGE_BYTES) -> st.SearchStrategy[str]:
    """Odd and random text (no surrogates), strings from ``echoes``, and unless ``small`` ones of ``huge`` bytes (UTF-8)."""
    options = [PLAIN_IDS, PLAIN_IDS, PLAIN_URLS, st.sampled_from(ODD_STRINGS),
               st.text(st.characters(exclude_categories=("Cs",)), max_size=24)]
    if echoes is not None:
        options += [echoes.picks()] * 2
    if not small:
        options.append(st.sampled_from(("x", "\U0010ffff", "\u202e", "\x00")).flatmap(lambda unit: _huge(unit, huge)))
    return st.one_of(options)


def binaries(*, small: bool = False, huge: tuple[int, ...] = HUGE_BYTES) -> st.SearchStrategy[bytes]:
    """Empty, random and unless ``small`` byte strings of ``huge`` bytes."""
    options = [st.just(b""), st.binary(max_size=64)]
    if not small:
        options.append(st.sampled_from(huge).map(lambda n: b"\xff" * n))
    return st.one_of(options)


def enums(enum: EnumDescriptor) -> st.SearchStrategy[int]:
    """Every declared number of ``enum`` and, when it is open (proto3), unknown numbers too."""
    declared = sorted({v.number for v in enum.values})
    if getattr(enum, "is_closed", False):
        return st.sampled_from(declared)
    return st.one_of(st.sampled_from(declared), st.sampled_from(UNKNOWN_ENUM_NUMBERS))


class MessageStrategies:
    """Builds and caches a strategy per (message type, depth, smallness).

    ``max_depth`` bounds nesting: at that depth a message field is left
    unset (so recursive types terminate). ``echoes`` feeds strings returned by
    the servers back into string fields. ``huge`` are the sizes of huge
    strings and bytes, ``wide`` the lengths of wide repeated fields and maps.
    """

    def __init__(self, max_depth: int = 3, echoes: Echoes | None = None,
                 huge: tuple[int, ...] = HUGE_BYTES, wide: tuple[int, ...] = WIDE):
        self.max_depth = max_depth
        self.echoes = echoes
        self.huge = huge
        self.wide = wide
        self._cache: dict[tuple[str, int, bool], st.SearchStrategy[Message]] = {}

    def message(self, descriptor: Descriptor, depth: int = 0, small: bool = False, plain: bool = False) -> st.SearchStrategy[Message]:
        """Instances of ``descriptor``'s message class.

        ``small`` keeps every string, bytes and repeated field small;
        ``plain`` draws well-formed look-alikes only (ids, URLs, small
        numbers, declared enum values, strings the servers returned), so that
        requests get past validation into the handlers' logic.
        """
        small = small or plain
        key = (descriptor.full_name, depth, small, plain)
        if key not in self._cache:
            self._cache[key] = st.deferred(lambda: self._build(descriptor, depth, small, plain))
        return self._cache[key]

    def _build(self, descriptor: Descriptor, depth: int, small: bool, plain: bool) -> st.SearchStrategy[Message]:
        cls = message_factory.GetMessageClass(descriptor)
        singles: dict[str, st.SearchStrategy[Any]] = {}
        groups: list[st.SearchStrategy[tuple[str, Any] | None]] = []
        for oneof in descriptor.oneofs:
            members = list(oneof.fields)
            if len(members) == 1 and oneof.name == f"_{members[0].name}":  # proto3 `optional`: a field of its own
                continue
            choices = [st.tuples(st.just(f.name), v) for f in members if (v := self.field_value(f, depth, small, plain)) is not None]
            groups.append(st.one_of(*choices) if plain and choices else st.one_of(st.none(), *choices))
        in_group = {f.name for g in descriptor.oneofs if not (len(g.fields) == 1 and g.name == f"_{g.fields[0].name}")
                    for f in g.fields}
        for field in descriptor.fields:
            if field.name in in_group:
                continue
            value = self.field_value(field, depth, small, plain)
            if value is not None:
                singles[field.name] = value
        # A plain message sets every field (a complete, well-formed request); any other sets some.
        chosen = st.fixed_dictionaries(singles) if plain else st.fixed_dictionaries({}, optional=singles)
        return st.tuples(chosen, st.tuples(*groups)).map(lambda parts: _assemble(cls, descriptor, parts[0], parts[1]))

    def field_value(self, field: FieldDescriptor, depth: int, small: bool, plain: bool = False) -> st.SearchStrategy[Any] | None:
        """A strategy of what to put in ``field`` (a list for repeated fields, a dict for maps); ``None``: leave it unset."""
        if _is_map(field):
            entry = field.message_type
            keys = self.single(entry.fields_by_name["key"], depth, small=True, plain=plain)
            values = self.single(entry.fields_by_name["value"], depth + 1, small=True, plain=plain)
            if keys is None or values is None:
                return None
            few = st.dictionaries(keys, values, max_size=MAX_ELEMENTS)
            if small or entry.fields_by_name["key"].type == FieldDescriptor.TYPE_BOOL:
                return few
            key_type = entry.fields_by_name["key"].type
            make_key: Callable[[int], Any] = (lambda i: f"k{i}") if key_type == FieldDescriptor.TYPE_STRING else (lambda i: i)
            wide = st.tuples(st.sampled_from(self.wide), values).map(lambda t: {make_key(i): t[1] for i in range(t[0])})
            return st.one_of(few, wide)
        element = self.single(field, depth, small, plain)
        if element is None:
            return None
        if not field.is_repeated:
            return element
        few = st.lists(element, max_size=MAX_ELEMENTS)
        if small:
            return few
        small_element = self.single(field, depth, small=True)
        wide = st.tuples(st.sampled_from(self.wide), small_element).map(lambda t: [t[1]] * t[0])
        return st.one_of(few, wide)

    def single(self, field: FieldDescriptor, depth: int, small: bool, plain: bool = False) -> st.SearchStrategy[Any] | None:
        """A strategy of one value of ``field``'s type (one element when repeated)."""
        t = field.type
        if plain and t not in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP):
            return self._plain(field)
        if t in _INTEGER_RANGES:
            return integers(t)
        if t == FieldDescriptor.TYPE_DOUBLE:
            return floats(64)
        if t == FieldDescriptor.TYPE_FLOAT:
            return floats(32)
        if t == FieldDescriptor.TYPE_BOOL:
            return st.booleans()
        if t == FieldDescriptor.TYPE_STRING:
            return strings(self.echoes, small=small, huge=self.huge)
        if t == FieldDescriptor.TYPE_BYTES:
            return binaries(small=small, huge=self.huge)
        if t == FieldDescriptor.TYPE_ENUM:
            return enums(field.enum_type)
        if t in (FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_GROUP):
            if depth >= self.max_depth:
                return None
            empty = st.builds(message_factory.GetMessageClass(field.message_type))
            return st.one_of(empty, self.message(field.message_type, depth + 1, small, plain))
        raise TypeError(f"{field.full_name}: field type {t} has no strategy")

    def _plain(self, field: FieldDescriptor) -> st.SearchStrategy[Any]:
        t = field.type
        if t in _INTEGER_RANGES:
            options = [st.integers(1, 100), st.just(0)]
            if self.echoes is not None:
                low, high = _INTEGER_RANGES[t]  # an echoed uint64 may not fit a same-named int32
                options.append(st.integers(0, 2**16).map(
                    lambda index: v if low <= (v := self.echoes.number(index, field.name)) <= high else 0))
            return st.one_of(options)
        if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            return st.floats(0.5, 100, width=64 if t == FieldDescriptor.TYPE_DOUBLE else 32)
        if t == FieldDescriptor.TYPE_BOOL:
            return st.booleans()
        if t == FieldDescriptor.TYPE_STRING:  # the field's name hints at its shape: a generic guess, no per-contract code
            name = field.name.lower()
            if name.endswith(("url", "uri")):
                return PLAIN_URLS
            if "country" in name:
                return st.sampled_from(["US", "DE", "JP"])
            options = [PLAIN_IDS, st.sampled_from(["", "hello world"])]
            if self.echoes is not None:
                options += [self.echoes.picks(field.name)] * 3
            return st.one_of(options)
        if t == FieldDescriptor.TYPE_BYTES:
            return st.binary(max_size=64)
        if t == FieldDescriptor.TYPE_ENUM:
            return st.sampled_from(sorted({v.number for v in field.enum_type.values}))
        raise TypeError(f"{field.full_name}: field type {t} has no plain strategy")


def _assemble(cls: type[Message], descriptor: Descriptor, values: dict[str, Any], chosen: tuple) -> Message:
    message = cls()
    items = list(values.items()) + [c for c in chosen if c is not None]
    for name, value in items:
        field = descriptor.fields_by_name[name]
        target = getattr(message, name) if field.is_repeated else None
        if _is_map(field):
            for key, item in value.items():
                if isinstance(item, Message):
                    target[key].CopyFrom(item)
                else:
                    target[key] = item
        elif field.is_repeated:
            target.extend(value)
        elif isinstance(value, Message):
            getattr(message, name).CopyFrom(value)
            getattr(message, name).SetInParent()
        else:
            setattr(message, name, value)
    return message


def payloads(descriptor: Descriptor, strategies: MessageStrategies) -> st.SearchStrategy[bytes]:
    """Request bodies for ``descriptor``: encoded messages (most; hostile or plain), truncated or bit-flipped encodings, random bytes.

    Sent as raw bytes, so what the server decodes is exactly what was drawn,
    including bodies that are not a valid ``descriptor`` at all.
    """
    encoded = st.one_of(strategies.message(descriptor), strategies.message(descriptor, plain=True)).map(
        lambda m: m.SerializeToString())
    kinds = {
        "plain": strategies.message(descriptor, plain=True).map(lambda m: m.SerializeToString()),
        "hostile": strategies.message(descriptor).map(lambda m: m.SerializeToString()),
        # Where to cut or which bit to flip is drawn apart from the body's length, which may depend on strings
        # the servers returned (Echoes): hypothesis needs the same choices to replay a failing example.
        "truncated": st.tuples(encoded, st.integers(0, 2**20)).map(lambda t: t[0][:t[1] % len(t[0])] if t[0] else t[0]),
        "flipped": st.tuples(encoded, st.integers(0, 2**23)).map(lambda t: _flip(t[0], t[1] % (len(t[0]) * 8)) if t[0] else b"\x80"),
        "random": st.binary(max_size=96),
    }
    # sampled_from picks about uniformly, where one_of favours its first branches in short runs.
    return st.sampled_from(PAYLOAD_MIX).flatmap(kinds.__getitem__)


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)
