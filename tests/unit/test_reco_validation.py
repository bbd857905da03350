"""The reco services' request validation: every rule of protos/casemesh/reco/v1, each failure naming its field."""

from __future__ import annotations

import pytest

from casemesh.reco.v1 import signals_pb2 as pb
from casemesh.services.reco import validation as v
from casemesh.services.reco.limits import MAX_RECORD_BATCH
from casemesh.services.runtime.errors import InvalidArgument

VIEW, LIKE = pb.INTERACTION_KIND_VIEW, pb.INTERACTION_KIND_LIKE


def field_of(call, *args, **kwargs) -> str:
    with pytest.raises(InvalidArgument) as caught:
        call(*args, **kwargs)
    assert str(caught.value).startswith(f"{caught.value.field}: ")
    return caught.value.field


@pytest.mark.parametrize("good", ["a", "user-1", "item_42", "A" * 64, "0"])
def test_good_ids(good):
    assert v.validate_id("user_id", good) == good


@pytest.mark.parametrize("bad", ["", "A" * 65, "has space", "é", "a/b", "a.b"])
def test_bad_ids_name_the_field(bad):
    assert field_of(v.validate_id, "item_id", bad) == "item_id"


def test_id_lists():
    assert v.validate_ids("recent_item_ids", []) == []
    assert v.validate_ids("recent_item_ids", ["a", "b"]) == ["a", "b"]
    assert field_of(v.validate_ids, "recent_item_ids", ["a"] * 1_001) == "recent_item_ids"
    assert field_of(v.validate_ids, "recent_item_ids", ["a", "b", "bad id"]) == "recent_item_ids[2]"


def test_kinds():
    assert v.validate_kind("kind", VIEW) == VIEW and v.validate_kind("kind", LIKE) == LIKE
    assert v.KINDS == {VIEW: "view", LIKE: "like"}
    assert field_of(v.validate_kind, "kind", pb.INTERACTION_KIND_UNSPECIFIED) == "kind"
    assert field_of(v.validate_kind, "kind", 99) == "kind"


def interaction(user: str = "u", item: str = "i", kind: int = VIEW) -> pb.Interaction:
    return pb.Interaction(user_id=user, item_id=item, kind=kind)


def test_interactions_good():
    assert v.validate_interactions([interaction(), interaction("u2", "j", LIKE)]) == [("u", "i", VIEW), ("u2", "j", LIKE)]
    assert len(v.validate_interactions([interaction()] * MAX_RECORD_BATCH)) == MAX_RECORD_BATCH


def test_interactions_bad_name_the_field():
    assert field_of(v.validate_interactions, []) == "interactions"
    assert field_of(v.validate_interactions, [interaction()] * (MAX_RECORD_BATCH + 1)) == "interactions"
    assert field_of(v.validate_interactions, [interaction(), interaction(user="")]) == "interactions[1].user_id"
    assert field_of(v.validate_interactions, [interaction(item="x y")]) == "interactions[0].item_id"
    assert field_of(v.validate_interactions, [interaction(), interaction(), interaction(kind=0)]) == "interactions[2].kind"


def test_recent_limit():
    assert v.recent_limit(1) == 1 and v.recent_limit(1_000) == 1_000
    for bad in (0, -1, 1_001):
        assert field_of(v.recent_limit, bad) == "limit"


def test_export_batch_size():
    assert v.export_batch_size(0) == 5_000 and v.export_batch_size(7) == 7 and v.export_batch_size(50_000) == 50_000
    for bad in (-1, 50_001):
        assert field_of(v.export_batch_size, bad) == "batch_size"


def test_recommendation_limit():
    assert v.recommendation_limit(0) == 20 and v.recommendation_limit(100) == 100
    for bad in (-1, 101):
        assert field_of(v.recommendation_limit, bad) == "limit"


def test_pool_size():
    assert v.pool_size(0, default=200) == 200 and v.pool_size(1, default=200) == 1 and v.pool_size(5_000, default=200) == 5_000
    for bad in (-1, 5_001):
        assert field_of(v.pool_size, bad, default=200) == "pool_size"


def test_optional_count_for_other_fields():
    assert v.optional_count("factors", 0, default=32, most=256) == 32
    assert field_of(v.optional_count, "iterations", 51, default=10, most=50) == "iterations"
