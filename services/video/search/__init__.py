"""``video-search``: SearchService, an inverted index over published videos' titles and tags, ranked by BM25.

Modules: ``tokenizer`` (the one tokenizer of documents and queries), ``index``
(the tantivy index: replace-on-reindex, AND queries, BM25), ``validation``,
``settings`` and ``service`` (the thin servicer and ``DEFINITION``).
"""
