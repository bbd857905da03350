"""ads-frequency's own metrics (``casemesh_ads_frequency_*``), seed 001 #15 (shared/seeds/001_58dfc580020147d2.txt
line 40: "frequency caps").

- ``casemesh_ads_frequency_reserves_total{outcome}``: Reserve's answers: ``reserved`` (a new reservation, durable),
  ``repeated`` (an impression ID reserved already: its first answer), ``capped`` (FAILED_PRECONDITION
  frequency_capped), ``key_reused`` (the ID holds another user's or campaign's reservation), ``unavailable`` (the
  write failed: nothing reserved);
- ``casemesh_ads_frequency_releases_total``: reservations removed by Release;
- ``casemesh_ads_frequency_users`` (gauge): users with at least one impression in memory (within its window);
- ``casemesh_ads_frequency_reservations`` (gauge): impressions in memory;
- ``casemesh_ads_frequency_commit_seconds`` (histogram): one group commit to the SQLite file, fsync included;
- ``casemesh_ads_frequency_writes_per_commit`` (histogram): writes per group commit;
- ``casemesh_ads_frequency_pruned_total``: rows deleted from the file by the sweeper (older than ``max_window_s``).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RESERVES = Counter("casemesh_ads_frequency_reserves", "Reserve's answers (reserved, repeated, capped, key_reused, "
                   "unavailable).", ["outcome"])
RELEASES = Counter("casemesh_ads_frequency_releases", "Reservations removed by Release.")
USERS = Gauge("casemesh_ads_frequency_users", "Users with at least one impression in memory.")
RESERVATIONS = Gauge("casemesh_ads_frequency_reservations", "Impressions in memory.")
#: Seconds: a group commit with fsync takes about a millisecond on an SSD, tens on a loaded disk.
COMMIT_BUCKETS = (0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.0)
COMMIT_SECONDS = Histogram("casemesh_ads_frequency_commit_seconds", "One group commit to the frequency log, fsync "
                           "included, in seconds.", buckets=COMMIT_BUCKETS)
WRITES_PER_COMMIT = Histogram("casemesh_ads_frequency_writes_per_commit", "Writes per group commit.",
                              buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))
PRUNED = Counter("casemesh_ads_frequency_pruned", "Rows deleted from the file by the sweeper (older than the longest "
                 "window).")
