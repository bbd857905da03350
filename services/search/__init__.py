"""The search engine (seed 000 "Search Engine (like Google)", seed 001 #10): ``shards`` (the document-sharded
inverted index servers, BM25 with collection-wide statistics), ``indexer`` (the document store, routing to shards,
the link graph and PageRank), ``query`` (query parsing and the two-phase scatter-gather with per-shard deadlines),
``autocomplete`` (the query log's prefix index); ``contract`` and ``analysis`` are what they share. The crawler
(services/crawler/) feeds the indexer. See docs/case-studies/search.md.
"""
