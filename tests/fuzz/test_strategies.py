"""The descriptor-driven strategies reach every field type and the hostile values the fuzzer relies on.

A test-only message type (built here in a private descriptor pool, not in
protos/) holds one field of every scalar type, an open enum, a map with
message values, a oneof, a proto3 ``optional`` field, and a field of its own
type (recursion). Huge and wide values are drawn at small sizes here (the
mechanism is the same), so that each search takes a second, not minutes.
"""

from __future__ import annotations

import math

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError
from hypothesis import HealthCheck, Phase, given, settings

from .strategies import UNKNOWN_ENUM_NUMBERS, Echoes, MessageStrategies, floats, integers, payloads, strings

F = descriptor_pb2.FieldDescriptorProto
SCALARS = {"f_double": F.TYPE_DOUBLE, "f_float": F.TYPE_FLOAT, "f_int64": F.TYPE_INT64, "f_uint64": F.TYPE_UINT64,
           "f_int32": F.TYPE_INT32, "f_fixed64": F.TYPE_FIXED64, "f_fixed32": F.TYPE_FIXED32, "f_bool": F.TYPE_BOOL,
           "f_string": F.TYPE_STRING, "f_bytes": F.TYPE_BYTES, "f_uint32": F.TYPE_UINT32, "f_sfixed32": F.TYPE_SFIXED32,
           "f_sfixed64": F.TYPE_SFIXED64, "f_sint32": F.TYPE_SINT32, "f_sint64": F.TYPE_SINT64}


def _every_kind():
    file = descriptor_pb2.FileDescriptorProto(name="fuzz_every_kind.proto", package="fuzztest", syntax="proto3")
    file.enum_type.add(name="Color", value=[descriptor_pb2.EnumValueDescriptorProto(name="COLOR_UNSPECIFIED", number=0),
                                            descriptor_pb2.EnumValueDescriptorProto(name="COLOR_RED", number=1)])
    message = file.message_type.add(name="Every")
    number = 0
    for name, kind in SCALARS.items():
        number += 1
        message.field.add(name=name, number=number, type=kind, label=F.LABEL_OPTIONAL)
    message.field.add(name="color", number=20, type=F.TYPE_ENUM, type_name=".fuzztest.Color", label=F.LABEL_OPTIONAL)
    message.field.add(name="child", number=21, type=F.TYPE_MESSAGE, type_name=".fuzztest.Every", label=F.LABEL_OPTIONAL)
    message.field.add(name="names", number=22, type=F.TYPE_STRING, label=F.LABEL_REPEATED)
    entry = message.nested_type.add(name="ByNameEntry", options=descriptor_pb2.MessageOptions(map_entry=True))
    entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=F.TYPE_MESSAGE, type_name=".fuzztest.Every", label=F.LABEL_OPTIONAL)
    message.field.add(name="by_name", number=23, type=F.TYPE_MESSAGE, type_name=".fuzztest.Every.ByNameEntry",
                      label=F.LABEL_REPEATED)
    message.oneof_decl.add(name="choice")
    message.field.add(name="pick_text", number=24, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL, oneof_index=0)
    message.field.add(name="pick_number", number=25, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL, oneof_index=0)
    message.oneof_decl.add(name="_maybe")
    message.field.add(name="maybe", number=26, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL, oneof_index=1,
                      proto3_optional=True)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return pool.FindMessageTypeByName("fuzztest.Every")


EVERY = _every_kind()
HUGE, WIDE = (300,), (20,)
STRATEGIES = MessageStrategies(max_depth=2, huge=HUGE, wide=WIDE)


def depth(message) -> int:
    deepest = 0
    for field, value in message.ListFields():
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            items = value.values() if field.message_type.GetOptions().map_entry else (value if field.is_repeated else [value])
            deepest = max([deepest, *(1 + depth(item) for item in items)])
    return deepest


FEATURES = {
    "huge string": lambda m: len(m.f_string.encode()) >= min(HUGE) // 2, "huge bytes": lambda m: len(m.f_bytes) >= min(HUGE),
    "plain id": lambda m: m.f_string.replace("_", "").replace("-", "").isalnum(),
    "unknown enum": lambda m: m.color in UNKNOWN_ENUM_NUMBERS, "known enum": lambda m: m.color == 1,
    "wide repeated": lambda m: len(m.names) >= min(WIDE), "few repeated": lambda m: 1 <= len(m.names) <= 4,
    "wide map": lambda m: len(m.by_name) >= min(WIDE), "few map": lambda m: 1 <= len(m.by_name) <= 4,
    "oneof text": lambda m: m.WhichOneof("choice") == "pick_text", "oneof number": lambda m: m.WhichOneof("choice") == "pick_number",
    "optional set": lambda m: m.HasField("maybe"), "nested twice": lambda m: m.child.HasField("child"),
    "integer set": lambda m: m.f_int64 != 0, "float set": lambda m: m.f_float != 0, "bool set": lambda m: m.f_bool,
}
EXTREMES = [
    (F.TYPE_INT32, {-(2**31), 2**31 - 1, -1, 0}), (F.TYPE_SINT32, {-(2**31), 2**31 - 1, -1}),
    (F.TYPE_SFIXED32, {-(2**31), 2**31 - 1}), (F.TYPE_INT64, {-(2**63), 2**63 - 1, -1, 0}),
    (F.TYPE_SINT64, {-(2**63), 2**63 - 1}), (F.TYPE_SFIXED64, {-(2**63), 2**63 - 1}),
    (F.TYPE_UINT32, {0, 2**32 - 1}), (F.TYPE_FIXED32, {0, 2**32 - 1}),
    (F.TYPE_UINT64, {0, 2**64 - 1, 2**32 - 1}), (F.TYPE_FIXED64, {0, 2**64 - 1}),
]
EXTREME_FLOATS = {"nan", "inf", "-inf", "-0.0", "max", "subnormal"}


def float_features(value: float, width: int) -> set[str]:
    if math.isnan(value):
        return {"nan"}
    found = {str(value)} & {"inf", "-inf", "-0.0"}
    if abs(value) in (1e308, 3.4028234663852886e38):
        found.add("max")
    if 0 < abs(value) <= (5e-324 if width == 64 else 1.401298464324817e-45):
        found.add("subnormal")
    return found


def test_integer_strategies_draw_each_types_extremes():
    missing = {}
    for field_type, wanted in EXTREMES:
        seen: set[int] = set()

        @settings(max_examples=100, database=None, derandomize=True, deadline=None, phases=[Phase.generate])
        @given(integers(field_type))
        def draw(value):
            seen.add(value)

        draw()
        if wanted - seen:
            missing[field_type] = wanted - seen
    assert missing == {}


@pytest.mark.parametrize("width", [32, 64])
def test_float_strategies_draw_nan_infinities_and_extremes(width):
    seen: set[str] = set()

    @settings(max_examples=150, database=None, derandomize=True, deadline=None, phases=[Phase.generate])
    @given(floats(width))
    def draw(value):
        seen.update(float_features(value, width))

    draw()
    assert EXTREME_FLOATS <= seen


def test_drawn_messages_encode_stay_shallow_and_reach_every_kind_of_value():
    """One derandomized pass of 120 messages: each encodes and decodes, none nests past ``max_depth``, every feature shows up."""
    seen: set[str] = set()

    @settings(max_examples=120, database=None, derandomize=True, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(STRATEGIES.message(EVERY))
    def draw(message):
        data = message.SerializeToString(deterministic=True)
        assert type(message).FromString(data).SerializeToString(deterministic=True) == data
        assert depth(message) <= STRATEGIES.max_depth
        seen.update(name for name, check in FEATURES.items() if check(message))

    draw()
    assert sorted(set(FEATURES) - seen) == []


def test_raw_bodies_include_undecodable_and_truncated_bytes():
    kinds: set[str] = set()

    @settings(max_examples=60, database=None, derandomize=True, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(payloads(timestamp_pb2.Timestamp.DESCRIPTOR, STRATEGIES))
    def draw(body):
        try:
            timestamp_pb2.Timestamp.FromString(body)
            kinds.add("decodable")
        except DecodeError:
            kinds.add("undecodable")

    draw()
    assert kinds == {"decodable", "undecodable"}


def test_strings_are_odd_huge_plain_or_handed_back_by_servers():
    echoes = Echoes()
    reply = message_factory.GetMessageClass(EVERY)(f_string="code-from-a-server")
    reply.child.names.append("id-from-a-server")
    echoes.add_from(reply)
    assert echoes.pick(0) == "id-from-a-server" and echoes.pick(1) == "code-from-a-server"
    assert echoes.pick(0, "f_string") == echoes.pick(5, "f_string") == "code-from-a-server"
    assert echoes.pick(0, "no_such_field") == "id-from-a-server"
    seen: set[str] = set()

    @settings(max_examples=100, database=None, derandomize=True, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strings(echoes, huge=HUGE))
    def draw(text):
        seen.add(text)

    draw()
    assert {"code-from-a-server", "id-from-a-server", "", "\x00", "\u202eevil\u202c", "\U0010ffff"} <= seen
    assert any(len(text.encode()) >= min(HUGE) // 2 for text in seen)
    assert any(text.startswith("https://example.com/") for text in seen)
