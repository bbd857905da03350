"""The search index of published videos: an inverted index over title and tags, ranked by BM25.

Seed 004, "Search Freshness": an indexing worker "calls the Elasticsearch
bulk API to index title, tags ..."; "Elasticsearch handles inverted-index
updates within ~1 second". The index here is tantivy (the Rust full-text
engine modelled on Lucene, which Elasticsearch is built on), in memory,
through its Python binding. Why tantivy and not a pure-Python BM25 package:
``rank-bm25`` (last release 0.2.2, February 2022) and ``bm25s`` build their
statistics once over a fixed corpus and have no incremental add or delete;
tantivy updates incrementally (add, delete by term, commit), searches in
microseconds, and has BM25 built in.

- **Documents**: ``video_id`` (untokenized, stored; the key of
  replace-on-reindex), ``title`` and ``tags`` (indexed with term frequencies,
  as the tokens of :mod:`.tokenizer` joined by spaces and split again on
  whitespace only, so index and query terms are the same by construction),
  and ``display_title`` (the original title, stored, not indexed, for hits).
- **Replace on reindex**: :meth:`VideoIndex.upsert` deletes every document
  with the video's id, then adds the new version, in one commit (deletes only
  apply to documents added before them), so a video is never found twice.
- **Near-real-time**: a commit makes a new segment; :meth:`VideoIndex.upsert`
  then reloads the reader, so the batch is searchable when it returns (as
  Elasticsearch's ``refresh=wait_for``).
- **Query**: AND semantics: every term must occur in the title or the tags
  (``must`` of ``should(title:t, tags:t)`` per term).
- **Ranking**: Okapi BM25 (Robertson & Zaragoza, "The Probabilistic Relevance
  Framework: BM25 and Beyond", 2009) with k1 = 1.2 and b = 0.75, the
  Elasticsearch and Lucene defaults (fixed in tantivy):
  ``score(D, Q) = Σ_fields Σ_{t∈Q} IDF(t)·tf·(k1+1) / (tf + k1·(1 − b + b·|D|/avgdl))``
  with ``IDF(t) = ln(1 + (N − n_t + 0.5)/(n_t + 0.5))``, computed per field
  (title and tags each have their own term statistics and average length);
  a document's score is the sum over the fields a term matches. As in Lucene,
  a replaced document's old version leaves the term statistics (``N``,
  ``n_t``) only when its segment is merged, so scores drift slightly after
  many reindexes; matching and ``total_hits`` are always exact.

All methods are synchronous; :meth:`VideoIndex.upsert` may take milliseconds
(the service runs it in a worker thread: tantivy releases the GIL), searches
take microseconds. One writer: call :meth:`upsert` from one task at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import tantivy

from .tokenizer import tokenize

#: Smallest writer memory budget tantivy accepts, in bytes.
MIN_WRITER_HEAP_BYTES = 15_000_000


@dataclass(frozen=True, slots=True)
class IndexedVideo:
    """One document to index: id, title, tags."""

    video_id: str
    title: str
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Hit:
    """One matching video: id, title and BM25 score (higher is better)."""

    video_id: str
    title: str
    score: float


def _engine_call(call, *args, **kwargs):
    """Call into tantivy; a Rust panic (a ``BaseException`` in pyo3) becomes a ``RuntimeError``.

    So the server's error mapping answers UNKNOWN for the call instead of the
    panic escaping request handling.
    """
    try:
        return call(*args, **kwargs)
    except Exception:
        raise
    except BaseException as exc:
        if type(exc).__name__ == "PanicException":
            raise RuntimeError(f"search engine panic: {exc}") from exc
        raise


class VideoIndex:
    """In-memory tantivy index of videos. ``writer_heap_bytes`` >= 15,000,000 (tantivy's minimum)."""

    def __init__(self, writer_heap_bytes: int = MIN_WRITER_HEAP_BYTES, writer_threads: int = 1):
        if writer_heap_bytes < MIN_WRITER_HEAP_BYTES:
            raise ValueError(f"writer_heap_bytes must be at least {MIN_WRITER_HEAP_BYTES}")
        builder = tantivy.SchemaBuilder()
        builder.add_text_field("video_id", stored=True, tokenizer_name="raw", index_option="basic")
        builder.add_text_field("title", tokenizer_name="whitespace", index_option="freq")
        builder.add_text_field("tags", tokenizer_name="whitespace", index_option="freq")
        builder.add_bytes_field("display_title", stored=True, indexed=False)
        self._schema = builder.build()
        self._index = tantivy.Index(self._schema)
        self._index.config_reader(reload_policy="Manual")
        self._writer = self._index.writer(heap_size=writer_heap_bytes, num_threads=writer_threads)

    def upsert(self, videos: Sequence[IndexedVideo]) -> int:
        """Add or replace ``videos`` (the last one wins for a repeated id) and make them searchable; returns how many."""
        latest = {video.video_id: video for video in videos}
        for video in latest.values():
            _engine_call(self._writer.delete_documents_by_term, "video_id", video.video_id)
            document = tantivy.Document(
                video_id=video.video_id,
                title=" ".join(tokenize(video.title)),
                tags=" ".join(token for tag in video.tags for token in tokenize(tag)),
            )
            document.add_bytes("display_title", video.title.encode("utf-8"))
            _engine_call(self._writer.add_document, document)
        _engine_call(self._writer.commit)
        _engine_call(self._index.reload)
        return len(latest)

    def _term(self, field: str, term: str) -> tantivy.Query:
        return tantivy.Query.term_query(self._schema, field, term, index_option="freq")

    def search(self, terms: Sequence[str], offset: int, limit: int) -> tuple[int, list[Hit]]:
        """Documents containing every term (title or tags), best BM25 first: ``(total matches, hits[offset:offset+limit])``.

        ``terms`` are tokens as :func:`.tokenizer.query_terms` makes them; none
        means no match.
        """
        if not terms:
            return 0, []
        query = tantivy.Query.boolean_query([
            (tantivy.Occur.Must, tantivy.Query.boolean_query([
                (tantivy.Occur.Should, self._term("title", term)),
                (tantivy.Occur.Should, self._term("tags", term)),
            ]))
            for term in terms
        ])
        searcher = _engine_call(self._index.searcher)
        result = _engine_call(searcher.search, query, limit, count=True, offset=offset)
        hits = []
        for score, address in result.hits:
            document = _engine_call(searcher.doc, address)
            hits.append(Hit(document["video_id"][0], bytes(document["display_title"][0]).decode("utf-8"), float(score)))
        return result.count or 0, hits

    def __len__(self) -> int:
        """Videos searchable now."""
        return _engine_call(self._index.searcher).num_docs

