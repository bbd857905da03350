"""ecommerce-catalog's own metrics (``casemesh_ecommerce_catalog_*``), seed 000 "E-commerce Platform"
(shared/seeds/000_69ff90d97cf45f9b.txt lines 513 and 519: "Latency: Sub-200ms for search", "Product Service: Catalog,
search (Elasticsearch)").

- ``casemesh_ecommerce_catalog_searches_total{outcome}``: SearchProducts pages answered: ``hits`` (at least one
  product) or ``no_hits``;
- ``casemesh_ecommerce_catalog_search_hits`` (histogram): products returned by one SearchProducts page (0 to 50);
- ``casemesh_ecommerce_catalog_search_seconds`` (histogram): the FTS5 query of one SearchProducts page (MATCH, BM25
  ranking and filters), in seconds: the server-side part of the seed's 200 ms search budget;
- ``casemesh_ecommerce_catalog_products`` (gauge): products in the catalogue (set from the SQLite file at start);
- ``casemesh_ecommerce_catalog_created_total``: products stored by CreateProduct (not an identical retry), counted
  once on disk;
- ``casemesh_ecommerce_catalog_commit_seconds`` (histogram): one group commit to the SQLite file (rows and their
  FTS5 index), fsync included, in seconds.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SEARCHES = Counter("casemesh_ecommerce_catalog_searches", "SearchProducts pages answered, by outcome (hits, no_hits).",
                   ["outcome"])
#: Products on a page: 0 to MAX_SEARCH_PAGE_SIZE (50).
HIT_BUCKETS = (0, 1, 2, 5, 10, 20, 30, 40, 50)
SEARCH_HITS = Histogram("casemesh_ecommerce_catalog_search_hits", "Products returned by one SearchProducts page.",
                        buckets=HIT_BUCKETS)
#: Seconds: an FTS5 query over ten thousand products takes about a millisecond; the seed's budget is 0.2 s.
SEARCH_BUCKETS = (0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
SEARCH_SECONDS = Histogram("casemesh_ecommerce_catalog_search_seconds", "The FTS5 query of one SearchProducts page, "
                           "in seconds.", buckets=SEARCH_BUCKETS)
PRODUCTS = Gauge("casemesh_ecommerce_catalog_products", "Products in the catalogue.")
CREATED = Counter("casemesh_ecommerce_catalog_created", "Products stored by CreateProduct (new ones only), once on "
                  "disk.")
#: Seconds: a group commit with fsync takes about a millisecond on an SSD, tens on a loaded disk.
COMMIT_BUCKETS = (0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.0)
COMMIT_SECONDS = Histogram("casemesh_ecommerce_catalog_commit_seconds", "One group commit to the catalogue's SQLite "
                           "file, fsync included, in seconds.", buckets=COMMIT_BUCKETS)
