"""proximity-places' own metrics (``casemesh_proximity_places_*``).

- ``casemesh_proximity_places_indexed{category}`` (gauge): places in the indexes, by category (``restaurant``,
  ``cafe``, ... the PlaceCategory names without the prefix, lower case); their sum is every place stored;
- ``casemesh_proximity_places_created_total``: places stored by CreatePlaces (not the identical ones a retry sent
  again), counted once on disk;
- ``casemesh_proximity_places_deleted_total``: places removed by DeletePlace, counted once on disk;
- ``casemesh_proximity_places_search_cells{category}`` (histogram): index cells read by one SearchPlaces page (the
  ring walk's cost: 1, 7, 19, 37, ... for 0, 1, 2, 3 full rings); ``category`` is ``any`` for a search of every
  category, else the category searched (its own index);
- ``casemesh_proximity_places_search_hits{category}`` (histogram): places returned in one SearchPlaces page (0 to
  100);
- ``casemesh_proximity_places_search_seconds`` (histogram): time of the index search of one SearchPlaces page (the
  ring walk alone: the server-side cost the ``index_resolution`` A/B moves);
- ``casemesh_proximity_places_commit_seconds`` (histogram): one group commit to the SQLite file, fsync included;
- ``casemesh_proximity_places_load_seconds`` (gauge): how long the last start took to read every place from the
  SQLite file and index it.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from casemesh.proximity.v1 import places_pb2

_PREFIX = "PLACE_CATEGORY_"
#: The categories a place may have (every PlaceCategory but UNSPECIFIED), value → label.
CATEGORY_LABELS: dict[int, str] = {
    value.number: value.name.removeprefix(_PREFIX).lower()
    for value in places_pb2.PlaceCategory.DESCRIPTOR.values if value.number != places_pb2.PLACE_CATEGORY_UNSPECIFIED}
#: The ``category`` label of a search of every category.
ANY = "any"

INDEXED = Gauge("casemesh_proximity_places_indexed", "Places in the indexes, by category.", ["category"])
CREATED = Counter("casemesh_proximity_places_created", "Places stored by CreatePlaces (new ones only), once on disk.")
DELETED = Counter("casemesh_proximity_places_deleted", "Places removed by DeletePlace, once on disk.")
#: Cells of k full rings: 3k(k+1)+1.
CELL_BUCKETS = (1, 7, 19, 37, 61, 91, 127, 169, 217, 271, 397, 631, 1_027, 2_107, 4_681, 10_000)
SEARCH_CELLS = Histogram("casemesh_proximity_places_search_cells", "Index cells read by one SearchPlaces page, by the "
                         "category searched (any: every category).", ["category"], buckets=CELL_BUCKETS)
HIT_BUCKETS = (0, 1, 2, 5, 10, 20, 30, 50, 75, 100)
SEARCH_HITS = Histogram("casemesh_proximity_places_search_hits", "Places returned by one SearchPlaces page, by the "
                        "category searched (any: every category).", ["category"], buckets=HIT_BUCKETS)
SEARCH_SECONDS = Histogram("casemesh_proximity_places_search_seconds", "Index search time of one SearchPlaces page, "
                           "in seconds.", buckets=(0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5,
                                                   0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5))
#: Seconds: a group commit with fsync takes about a millisecond on an SSD, tens on a loaded disk.
COMMIT_SECONDS = Histogram("casemesh_proximity_places_commit_seconds", "One group commit of place changes to the "
                           "SQLite file, fsync included, in seconds.",
                           buckets=(0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0))
LOAD_SECONDS = Gauge("casemesh_proximity_places_load_seconds", "Time the last start took to read every place from "
                     "the SQLite file and index it, in seconds.")

#: The metric children of each category label (label lookups done once).
INDEXED_BY_CATEGORY = {category: INDEXED.labels(label) for category, label in CATEGORY_LABELS.items()}
_SEARCH_LABELS = {places_pb2.PLACE_CATEGORY_UNSPECIFIED: ANY, **CATEGORY_LABELS}
_SEARCH_CELLS = {category: SEARCH_CELLS.labels(label) for category, label in _SEARCH_LABELS.items()}
_SEARCH_HITS = {category: SEARCH_HITS.labels(label) for category, label in _SEARCH_LABELS.items()}


def searched(category: int, cells: int, hits: int, seconds: float) -> None:
    """Record one SearchPlaces page of ``category`` (UNSPECIFIED: every category): cells read, places returned and
    the index search time in seconds."""
    _SEARCH_CELLS[category].observe(cells)
    _SEARCH_HITS[category].observe(hits)
    SEARCH_SECONDS.observe(seconds)
