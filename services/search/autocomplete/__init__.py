"""``search-autocomplete``: suggestions from the query log (seed 000 "Search Engine (like Google)",
shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664: "Autocomplete and spell correction"; seed 001 #10,
shared/seeds/001_58dfc580020147d2.txt line 27: "query processing, autocomplete").

:mod:`.prefix_index` (the counts and the top-k-per-prefix index rebuilt in the background), :mod:`.validation`,
:mod:`.service` (the servicer, the rebuild loop and ``DEFINITION``).
"""
