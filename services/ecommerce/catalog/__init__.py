"""ecommerce-catalog: the shop's products with full-text search (protos/casemesh/ecommerce/v1/catalog.proto; seed 000
"E-commerce Platform (like Amazon)": "Product Service: Catalog, search (Elasticsearch)", SQLite FTS5 and BM25 standing
in for Elasticsearch)."""
