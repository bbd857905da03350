"""video-search: tokenizer, BM25 ranking (hand-checked), AND semantics, replace-on-reindex, paging, validation."""

from __future__ import annotations

import math

import pytest
from prometheus_client import REGISTRY

from casemesh.services.runtime.errors import InvalidArgument
from casemesh.services.video.search.index import IndexedVideo, VideoIndex
from casemesh.services.video.search.service import SearchServicer
from casemesh.services.video.search.settings import SearchSettings
from casemesh.services.video.search.tokenizer import query_terms, tokenize
from casemesh.services.video.search.validation import validate_documents, validate_query
from casemesh.video.v1 import search_pb2 as pb

K1, B = 1.2, 0.75


def bm25(tf: int, doc_len: int, avg_len: float, docs: int, docs_with_term: int) -> float:
    """Okapi BM25 of one term in one field (Robertson & Zaragoza 2009; Lucene's IDF)."""
    idf = math.log(1 + (docs - docs_with_term + 0.5) / (docs_with_term + 0.5))
    return idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * doc_len / avg_len))


CORPUS = [
    IndexedVideo("fox", "Red fox", ("animal",)),
    IndexedVideo("car", "Red, red car!", ("vehicle",)),
    IndexedVideo("blue", "Blue car", ("vehicle", "red")),
]


@pytest.fixture
def index() -> VideoIndex:
    index = VideoIndex()
    assert index.upsert(CORPUS) == 3
    return index


def test_tokenizer_lowercases_words_and_splits_on_everything_else():
    assert tokenize("C++ & Go: 4K60 Streaming") == ["c", "go", "4k60", "streaming"]
    assert tokenize("machine-learning_101") == ["machine", "learning", "101"]
    assert tokenize("Café ÉTÉ, naïve!") == ["café", "été", "naïve"]
    assert tokenize("a" * 41 + " ok") == ["ok"]
    assert tokenize("!!! ...") == []
    assert query_terms("Red red CAR") == ["red", "car"]


def test_bm25_ranking_matches_the_formula_by_hand(index):
    total, hits = index.search(["red"], 0, 10)
    assert total == 3
    # Title: "red fox" (2 tokens), "red red car" (3), "blue car" (2): avgdl 7/3; "red" in 2 of 3 titles.
    # Tags: "animal" (1), "vehicle" (1), "vehicle red" (2): avgdl 4/3; "red" in 1 of 3 tag lists.
    expected = {
        "fox": bm25(1, 2, 7 / 3, 3, 2),
        "car": bm25(2, 3, 7 / 3, 3, 2),
        "blue": bm25(1, 2, 4 / 3, 3, 1),  # a tag match: the rarer field's term weighs more
    }
    assert [h.video_id for h in hits] == ["blue", "car", "fox"]
    for hit in hits:
        assert hit.score == pytest.approx(expected[hit.video_id], rel=1e-4)
    assert {h.video_id: h.title for h in hits}["car"] == "Red, red car!"  # the original title, not the tokens


def test_scores_sum_over_terms_and_fields(index):
    total, hits = index.search(["red", "car"], 0, 10)
    assert total == 2  # AND: the fox has no "car"
    expected = {
        "car": bm25(2, 3, 7 / 3, 3, 2) + bm25(1, 3, 7 / 3, 3, 2),
        "blue": bm25(1, 2, 4 / 3, 3, 1) + bm25(1, 2, 7 / 3, 3, 2),
    }
    assert [h.video_id for h in hits] == sorted(expected, key=expected.get, reverse=True)
    for hit in hits:
        assert hit.score == pytest.approx(expected[hit.video_id], rel=1e-4)


def test_and_semantics(index):
    assert index.search(["red", "animal"], 0, 10)[0] == 1
    assert index.search(["red", "boat"], 0, 10) == (0, [])
    assert index.search(["vehicle"], 0, 10)[0] == 2
    assert index.search([], 0, 10) == (0, [])


def test_reindex_replaces_the_old_version(index):
    assert index.upsert([IndexedVideo("fox", "Arctic fox", ("snow",))]) == 1
    assert len(index) == 3
    assert [h.video_id for h in index.search(["red"], 0, 10)[1]] == ["blue", "car"]
    total, hits = index.search(["arctic", "snow"], 0, 10)
    assert total == 1 and hits[0].title == "Arctic fox"
    # The same id twice in one batch: the last version wins, indexed once.
    assert index.upsert([IndexedVideo("x", "first", ()), IndexedVideo("x", "second", ())]) == 1
    assert index.search(["first"], 0, 10)[0] == 0
    assert index.search(["second"], 0, 10)[0] == 1


def test_offset_paging(index):
    total, first = index.search(["red"], 0, 2)
    _, second = index.search(["red"], 2, 2)
    assert total == 3 and [h.video_id for h in first + second] == ["blue", "car", "fox"]


# --- the servicer (no gRPC: called directly) ---------------------------------------------------


async def test_search_pages_with_tokens_and_total_hits():
    index = VideoIndex()
    index.upsert([IndexedVideo(f"v{i}", f"cooking pasta {i}", ("food",)) for i in range(7)])
    servicer = SearchServicer(index, SearchSettings())
    seen, token, pages = [], "", 0
    while True:
        response = await servicer.SearchVideos(pb.SearchVideosRequest(query="Pasta COOKING", page_size=3, page_token=token), None)
        pages += 1
        assert response.total_hits == 7
        seen += [h.video_id for h in response.hits]
        token = response.next_page_token
        if not token:
            break
    assert pages == 3 and sorted(seen) == [f"v{i}" for i in range(7)]
    # The token belongs to the query that made it (normalized: case and order of repeats do not matter).
    first = await servicer.SearchVideos(pb.SearchVideosRequest(query="pasta cooking", page_size=3), None)
    again = await servicer.SearchVideos(pb.SearchVideosRequest(query="PASTA, cooking", page_size=3,
                                                               page_token=first.next_page_token), None)
    assert len(again.hits) == 3
    with pytest.raises(InvalidArgument) as caught:
        await servicer.SearchVideos(pb.SearchVideosRequest(query="food", page_token=first.next_page_token), None)
    assert caught.value.field == "page_token"


async def test_result_window_bounds_paging_not_total_hits():
    index = VideoIndex()
    index.upsert([IndexedVideo(f"v{i}", "same title", ()) for i in range(5)])
    servicer = SearchServicer(index, SearchSettings(max_result_window=4))
    first = await servicer.SearchVideos(pb.SearchVideosRequest(query="title", page_size=3), None)
    last = await servicer.SearchVideos(pb.SearchVideosRequest(query="title", page_size=3, page_token=first.next_page_token), None)
    assert (first.total_hits, len(first.hits), len(last.hits), last.next_page_token) == (5, 3, 1, "")


async def test_index_videos_observes_the_freshness_lag():
    servicer = SearchServicer(VideoIndex(), SearchSettings(), clock=lambda: 1000.0)
    count_before = REGISTRY.get_sample_value("casemesh_video_search_index_lag_seconds_count") or 0.0
    sum_before = REGISTRY.get_sample_value("casemesh_video_search_index_lag_seconds_sum") or 0.0
    response = await servicer.IndexVideos(pb.IndexVideosRequest(documents=[
        pb.VideoDocument(video_id="a", title="Alpha", publish_time_unix_s=999.25),
        pb.VideoDocument(video_id="b", title="Beta"),  # no publish time: not observed
    ]), None)
    assert response.indexed == 2
    assert REGISTRY.get_sample_value("casemesh_video_search_index_lag_seconds_count") - count_before == 1
    assert REGISTRY.get_sample_value("casemesh_video_search_index_lag_seconds_sum") - sum_before == pytest.approx(0.75)
    found = await servicer.SearchVideos(pb.SearchVideosRequest(query="alpha"), None)
    assert [h.video_id for h in found.hits] == ["a"] and found.hits[0].title == "Alpha"
    punctuation = await servicer.SearchVideos(pb.SearchVideosRequest(query="?!"), None)
    assert punctuation.total_hits == 0 and not punctuation.hits


@pytest.mark.parametrize(("query", "ok"), [("", False), ("   ", False), ("x" * 201, False), ("x" * 200, True), ("cats", True)])
def test_query_validation(query, ok):
    if ok:
        validate_query(query)
    else:
        with pytest.raises(InvalidArgument) as caught:
            validate_query(query)
        assert caught.value.field == "query"


@pytest.mark.parametrize(("documents", "field"), [
    ([], "documents"),
    ([pb.VideoDocument(title="t")] , "documents[0].video_id"),
    ([pb.VideoDocument(video_id="a", title="t"), pb.VideoDocument(video_id="b")], "documents[1].title"),
    ([pb.VideoDocument(video_id="a/b", title="t")], "documents[0].video_id"),
    ([pb.VideoDocument(video_id="a", title="t", tags=["x" * 31])], "documents[0].tags[0]"),
    ([pb.VideoDocument(video_id="a", title="t", publish_time_unix_s=-1)], "documents[0].publish_time_unix_s"),
    ([pb.VideoDocument(video_id="a", title="t")] * 1001, "documents"),
])
def test_document_validation_names_the_field(documents, field):
    with pytest.raises(InvalidArgument) as caught:
        validate_documents(documents)
    assert caught.value.field == field


def test_settings_refuse_unknown_keys_and_too_small_heaps():
    with pytest.raises(ValueError):
        SearchSettings(writer_heap_bytes=1_000_000)
    with pytest.raises(ValueError):
        SearchSettings(max_results=5)
