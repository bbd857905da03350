"""search-shards: IndexShardService, the document-sharded positional inverted index (``shards`` shards in one
process, the A/B knob), BM25 from collection-wide statistics (Elasticsearch's "DFS query then fetch": a page scores
the same on 1 or N shards) with a PageRank boost, rebuilt at start from search-indexer's document store.

Seed 000 "Search Engine (like Google)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664: "Index Server: Sharded
index", the "Inverted Index Example"); seed 001 #10 (shared/seeds/001_58dfc580020147d2.txt line 27). Modules:
:mod:`.index` (one shard), :mod:`.snippets`, :mod:`.shard_set` (the shards and their rebuild state), :mod:`.rebuild`,
:mod:`.validation`, :mod:`.settings`, :mod:`.metrics`, :mod:`.service`.
"""
