"""search-shards' domain classes without gRPC: :class:`ShardIndex` (AND and phrase matching, replace-on-reindex,
BM25 against a hand-computed value, the PageRank boost, ties by URL, ``top_k``, snippets, ranks) and the property
the shards exist for: a corpus split over 3 shards, searched with the summed statistics, gives exactly the hits (the
same float scores, bit for bit) of one shard holding it all (hypothesis); :class:`ShardSet`'s rebuild state (PutPage
during a rebuild wins over the scan's copy)."""

from __future__ import annotations

import math

import pytest
from casemesh.search.v1 import search_pb2
from casemesh.services.runtime.errors import Unavailable
from casemesh.services.search.contract import shard_of
from casemesh.services.search.shards.index import K1, B, Query, ShardIndex, Statistics, idf
from casemesh.services.search.shards.shard_set import ShardSet
from casemesh.services.search.shards.snippets import LEAD_CHARS, SNIPPET_CHARS, snippet, term_pattern
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def page(n: int | str, body: str, title: str = "") -> search_pb2.WebPage:
    return search_pb2.WebPage(url=f"http://host{n}.web.test/", title=title, body=body)


def statistics(indexes: list[ShardIndex], terms: tuple[str, ...]) -> Statistics:
    """The collection's statistics: every shard's summed (what search-query does between its two phases)."""
    parts = [index.term_statistics(terms) for index in indexes]
    return Statistics(sum(p.doc_count for p in parts), sum(p.total_terms for p in parts),
                      tuple(sum(p.doc_freqs[i] for p in parts) for i in range(len(terms))))


def search(index: ShardIndex, *terms: str, phrases: tuple[tuple[str, ...], ...] = (), top_k: int = 100,
           weight: float = 0.0):
    query = Query(tuple(terms), phrases)
    return index.search(query, statistics([index], query.terms), top_k, weight)


def urls(result) -> list[str]:
    return [hit.url for hit in result.hits]


@pytest.fixture
def index() -> ShardIndex:
    shard = ShardIndex()
    for n, (title, body) in enumerate([
            ("New York", "The city that never sleeps. Big apple."),
            ("York", "A city in England, older than new towns."),
            ("Apples", "Red apple, green apple; the apple of my eye."),
            ("", "new york new york, so good they named it twice"),
            ("York new", "Nothing here matches the phrase in order.")]):
        assert shard.put(page(n, body, title), 0.0)
    return shard


def test_and_of_terms_in_title_or_body(index):
    assert sorted(urls(search(index, "york"))) == [page(n, "").url for n in (0, 1, 3, 4)]
    assert sorted(urls(search(index, "york", "city"))) == [page(0, "").url, page(1, "").url]
    assert urls(search(index, "york", "apple")) == [page(0, "").url]  # title term and body term
    result = search(index, "york", "absent")
    assert (result.hits, result.matched) == ([], 0)
    assert search(index, "the").matched == 3


def test_phrases_need_consecutive_positions_and_never_span_title_and_body(index):
    result = search(index, "new", "york", phrases=(("new", "york"),))
    assert sorted(urls(result)) == [page(0, "").url, page(3, "").url]
    assert result.matched == 2
    assert sorted(urls(search(index, "new", "york", phrases=(("york", "new"),)))) == [page(3, "").url,
                                                                                       page(4, "").url]
    assert urls(search(index, "york", "a", phrases=(("york", "a"),))) == []  # page 1: title "York", body "A city"
    # A phrase repeating a term ("new york new york"), and two phrases at once.
    assert urls(search(index, "new", "york", phrases=(("new", "york", "new", "york"),))) == [page(3, "").url]
    assert urls(search(index, "apple", "green", "red", phrases=(("red", "apple"), ("green", "apple")))) == \
        [page(2, "").url]


def test_no_phrase_across_title_and_body():
    shard = ShardIndex()
    shard.put(page(1, "york is here", "visit new"), 0.0)  # "new" ends the title, "york" starts the body
    shard.put(page(2, "visit new york"), 0.0)
    assert urls(search(shard, "new", "york", phrases=(("new", "york"),))) == [page(2, "").url]
    assert search(shard, "new", "york").matched == 2


def test_long_positions_lists_in_phrases():
    shard = ShardIndex()
    shard.put(page(1, " ".join(["spam"] * 30 + ["eggs"] + ["spam"] * 30)), 0.0)
    shard.put(page(2, " ".join(["spam", "ham"] * 30 + ["eggs"])), 0.0)
    assert urls(search(shard, "spam", "eggs", phrases=(("spam", "eggs", "spam"),))) == [page(1, "").url]
    assert urls(search(shard, "spam", "ham", phrases=(("ham", "spam", "ham"),))) == [page(2, "").url]


def test_replace_on_reindex_removes_the_old_postings():
    shard = ShardIndex()
    assert shard.put(page(1, "alpha beta beta", "gamma"), 0.25) is True
    shard.put(page(2, "beta"), 0.0)
    assert (shard.doc_count, shard.total_terms, shard.term_count) == (2, 5, 3)
    assert shard.put(page(1, "delta"), 0.5) is False
    assert (shard.doc_count, shard.total_terms, shard.term_count) == (2, 2, 2)
    assert search(shard, "alpha").matched == 0 and search(shard, "gamma").matched == 0
    assert urls(search(shard, "beta")) == [page(2, "").url]
    hit, = search(shard, "delta").hits
    assert (hit.url, hit.title, hit.pagerank) == (page(1, "").url, "", 0.5)
    assert shard.term_statistics(("beta", "delta", "alpha")) == Statistics(2, 2, (1, 1, 0))


def test_bm25_against_a_hand_computed_value():
    shard = ShardIndex()
    shard.put(page(1, "cat cat dog", "pets"), 0.0)  # 4 terms: pets | cat cat dog
    shard.put(page(2, "dog bird"), 0.0)
    shard.put(page(3, "fish fish fish fish fish fish"), 0.0)
    stats = statistics([shard], ("cat", "dog"))
    assert stats == Statistics(3, 12, (1, 2))
    avgdl = 12 / 3

    def term(tf: int, n: int, dl: int) -> float:
        term_idf = math.log(1 + (3 - n + 0.5) / (n + 0.5))
        return term_idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * dl / avgdl))

    result = shard.search(Query(("cat", "dog")), stats, 10, 0.0)
    hit, = result.hits
    assert hit.bm25 == pytest.approx(term(2, 1, 4) + term(1, 2, 4), rel=1e-12)
    # By hand: cat: idf ln(1 + 2.5/1.5) = 0.98083, tf 2, |D| = avgdl: 2 * 2.2 / (2 + 1.2) = 1.375 -> 1.34864;
    # dog: idf ln(1 + 1.5/2.5) = 0.47000, tf 1: 2.2 / 2.2 = 1 -> 0.47000.
    assert hit.bm25 == pytest.approx(1.34864 + 0.47000, abs=1e-5)
    assert hit.score == hit.bm25
    dogs = shard.search(Query(("dog",)), Statistics(3, 12, (2,)), 10, 0.0)
    assert [h.url for h in dogs.hits] == [page(2, "").url, page(1, "").url]  # the shorter page first
    assert dogs.hits[0].bm25 == pytest.approx(term(1, 2, 2), rel=1e-12)
    assert idf(3, 1) == pytest.approx(math.log(1 + 2.5 / 1.5))


def test_the_pagerank_boost_is_the_protos_formula():
    shard = ShardIndex()
    shard.put(page(1, "word"), 0.0)
    shard.put(page(2, "word"), 0.5)
    shard.put(page(3, "word"), 0.25)
    stats = Statistics(4, 4, (3,))  # a fourth page elsewhere
    result = shard.search(Query(("word",)), stats, 10, 2.0)
    assert urls(result) == [page(2, "").url, page(3, "").url, page(1, "").url]
    bm25 = result.hits[0].bm25
    assert all(hit.bm25 == bm25 for hit in result.hits)  # the same text: the same BM25
    for hit in result.hits:
        assert hit.score == pytest.approx(bm25 * (1 + 2.0 * math.log(1 + 4 * hit.pagerank)), rel=1e-12)
    assert result.hits[-1].score == bm25  # no rank: no boost
    assert [h.score for h in shard.search(Query(("word",)), stats, 10, 0.0).hits] == [bm25] * 3


def test_ties_by_url_and_top_k():
    shard = ShardIndex()
    for name in ("d", "b", "e", "a", "c"):
        shard.put(page(name, "same words here"), 0.0)
    shard.put(page("z", "same same same words here"), 0.0)
    result = search(shard, "same", top_k=3)
    assert urls(result) == [page("z", "").url, page("a", "").url, page("b", "").url]
    assert result.matched == 6 and result.scanned == 6
    assert urls(search(shard, "same", top_k=100))[1:] == [page(n, "").url for n in "abcde"]
    assert len(search(shard, "same", top_k=1).hits) == 1


def test_statistics_without_terms_score_every_page_as_average():
    shard = ShardIndex()
    shard.put(page(1, "word"), 0.0)
    hit, = shard.search(Query(("word",)), Statistics(0, 0, (0,)), 10, 1.0).hits  # a race with the first put
    assert hit.bm25 == pytest.approx(idf(0, 0) * (K1 + 1) / (1 + K1)) and hit.score == hit.bm25


def test_set_ranks():
    shard = ShardIndex()
    shard.put(page(1, "a"), 0.0)
    shard.put(page(2, "a"), 0.1)

    def ranks() -> dict[str, float]:
        return {hit.url: hit.pagerank for hit in search(shard, "a").hits}

    assert shard.set_ranks([(page(1, "").url, 0.7), (page(9, "").url, 0.2)], 3) == 1
    assert shard.rank_version == 3
    assert ranks() == {page(1, "").url: 0.7, page(2, "").url: 0.1}  # not named: kept
    assert shard.set_ranks([(page(1, "").url, 0.3)], 2) == 0  # an older pass, late: ignored
    assert ranks()[page(1, "").url] == 0.7 and shard.rank_version == 3
    assert shard.set_ranks([(page(2, "").url, 0.4)], 3) == 1  # the same pass in several calls
    assert ranks()[page(2, "").url] == 0.4


def test_analysis_is_the_querys():
    shard = ShardIndex()
    shard.put(page(1, "Hello, WORLD! It's 2025: e-mail Ünïcode."), 0.0)
    for term in ("hello", "world", "it", "s", "2025", "e", "mail", "ünïcode"):
        assert search(shard, term).matched == 1, term
    assert search(shard, "Hello").matched == 0  # queries arrive analysed


def test_a_phrase_term_must_be_a_query_term():
    with pytest.raises(ValueError):
        Query(("a", "b"), (("a", "c"),))
    with pytest.raises(ValueError):
        Query(())


def test_snippets():
    body = "intro " * 30 + "the Needle is here " + "outro " * 60
    text = snippet(body, term_pattern(("needle", "absent")))
    assert len(text) <= SNIPPET_CHARS and "Needle" in text
    assert text.startswith("intro") and body.index(text) >= body.index("Needle") - LEAD_CHARS
    assert snippet(body, term_pattern(("absent",))) == body[:SNIPPET_CHARS].strip()
    assert snippet("short body with needle", term_pattern(("needle",))) == "short body with needle"
    assert snippet("needles " * 40 + "needle", term_pattern(("needle",))).endswith("needles needle")  # whole words
    end = snippet("x" * 500 + " needle end", term_pattern(("needle",)))
    assert end.endswith("needle end") and len(end) <= SNIPPET_CHARS
    cut = snippet("word " * 20 + "averyveryverylongwordhere needle", term_pattern(("needle",)))
    assert cut.startswith(("word", "averyvery")) and "needle" in cut


def test_hits_carry_title_and_snippet(index):
    hit, = search(index, "eye").hits
    assert (hit.title, hit.snippet) == ("Apples", "Red apple, green apple; the apple of my eye.")
    hit, = search(index, "apples").hits  # only in the title: the body's start
    assert hit.snippet.startswith("Red apple")


WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
TEXTS = st.lists(st.sampled_from(WORDS), min_size=0, max_size=25).map(" ".join)
PAGES = st.lists(st.tuples(st.integers(0, 40), TEXTS, TEXTS), min_size=1, max_size=40)
QUERIES = st.lists(st.sampled_from(WORDS), min_size=1, max_size=3, unique=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pages=PAGES, terms=QUERIES, phrase=st.booleans(), ranks=st.lists(st.floats(0, 1), min_size=41, max_size=41),
       weight=st.sampled_from([0.0, 0.5, 1.0, 3.0]), top_k=st.integers(1, 50))
def test_one_shard_and_three_shards_give_the_same_hits(pages, terms, phrase, ranks, weight, top_k):
    """The DFS-query-then-fetch property: a page's score depends on the collection's statistics and its own data,
    never on the shard that holds it; merging the shards' best ``top_k`` gives one shard's best ``top_k`` exactly."""
    one, three = ShardIndex(), [ShardIndex() for _ in range(3)]
    for n, title, body in pages:  # repeated URLs replace their page, on both sides
        url = f"http://host{n:03d}.web.test/page"
        one.put(search_pb2.WebPage(url=url, title=title, body=body), ranks[n])
        three[shard_of(url, 3)].put(search_pb2.WebPage(url=url, title=title, body=body), ranks[n])
    query = Query(tuple(terms), (tuple(terms),) if phrase and len(terms) > 1 else ())
    stats = statistics(three, query.terms)
    assert stats == statistics([one], query.terms)
    whole = one.search(query, stats, top_k, weight)
    parts = [shard.search(query, stats, top_k, weight) for shard in three]
    merged = sorted((hit for part in parts for hit in part.hits), key=lambda hit: (-hit.score, hit.url))[:top_k]
    assert merged == whole.hits  # the same URLs, titles, snippets and float scores, bit for bit
    assert sum(part.matched for part in parts) == whole.matched
    assert all(hit.score >= hit.bm25 >= 0 for hit in whole.hits)


def test_a_put_during_the_rebuild_wins_over_the_scanned_copy():
    shards = ShardSet(2, rebuilding=True)
    url = "http://host001.web.test/a"
    mine = shard_of(url, 2)
    with pytest.raises(Unavailable):
        shards.ready(mine)
    with pytest.raises(Unavailable):  # taken, but answered as the contract says while rebuilding
        shards.put(mine, search_pb2.WebPage(url=url, body="new text"), 0.0)
    assert shards.take_scanned(mine, search_pb2.WebPage(url=url, body="old text"), 0.2, 4) == "superseded"
    other = "http://host002.web.test/b"
    while shard_of(other, 2) == mine:
        other += "x"
    assert shards.take_scanned(mine, search_pb2.WebPage(url=other, body="old"), 0.2, 4) == "misrouted"
    same = url + "/c"
    while shard_of(same, 2) != mine:
        same += "x"
    assert shards.take_scanned(mine, search_pb2.WebPage(url=same, body="old"), 0.2, 4) == "indexed"
    assert [info.rebuilding for info in shards.info()] == [True, True] and shards.rebuilding_count() == 2
    shards.finish_rebuild(mine)
    index = shards.ready(mine)
    assert (index.doc_count, index.rank_version) == (2, 4)
    assert search(index, "new").matched == 1 and search(index, "old").matched == 1
    assert shards.put(mine, search_pb2.WebPage(url=url, body="newer"), 0.0) == (False, 2)
    assert shards.rebuilding_count() == 1 and shards.info()[mine].rebuilding is False
