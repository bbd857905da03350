"""``search-query``: the search engine's query processor (seed 000 "Search Engine (like Google)",
shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664: "Query Processor: Parse query, retrieve docs, rank results";
"Query processing: Millions of QPS, sub-500ms latency").

:mod:`.parser` (the query syntax, through :func:`services.search.analysis.analyze`), :mod:`.scatter` (the two-phase
scatter-gather over the index shards with a per-shard deadline), :mod:`.merge` (the merge of the shards' best pages),
:mod:`.searcher` (one Search: validation, fan-out, merge, page tokens, the query log), :mod:`.query_log` (the batched
query log sent to ``search-autocomplete``), :mod:`.service` (the servicer and ``DEFINITION``).
"""
