"""``search-indexer``: the search engine's document store, its routing of pages to the index shards, the link graph and
PageRank (seed 000 "Search Engine (like Google)", shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664: "Document
Store: Raw HTML storage", "Indexer: Build inverted index (word -> document IDs)", "Ranker: PageRank + ML models",
"PageRank Algorithm" with damping 0.85).

Modules: :mod:`.records` (a page), :mod:`.validation` (the proto's input rules), :mod:`.store` (the durable SQLite
document store, group-committed), :mod:`.graph` (the link graph, a ``networkx.DiGraph``), :mod:`.pagerank` (the power
iteration), :mod:`.ranking` (PageRank passes: when they run, one at a time, pushing ranks to the shards),
:mod:`.routing` (the client of ``search-shards``), :mod:`.indexer` (the domain the servicer calls), :mod:`.service`
(servicer and DEFINITION), :mod:`.settings`, :mod:`.metrics`.
"""
