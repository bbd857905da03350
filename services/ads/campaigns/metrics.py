"""ads-campaigns' own metrics (``casemesh_ads_campaigns_*``), seed 001 #15 (shared/seeds/001_58dfc580020147d2.txt
line 40: "Ad Serving").

- ``casemesh_ads_campaigns_campaigns{state}`` (gauge): stored campaigns by state (``active``, ``paused``);
- ``casemesh_ads_campaigns_writes_total{kind}``: durable writes, ``create`` or ``state`` (idempotent repeats and
  unchanged states write nothing and are not counted);
- ``casemesh_ads_campaigns_commit_seconds`` (histogram): one group commit to the SQLite file, fsync included;
- ``casemesh_ads_campaigns_writes_per_commit`` (histogram): writes per group commit;
- ``casemesh_ads_campaigns_version`` (gauge): the store's version (the highest version of any campaign).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CAMPAIGNS = Gauge("casemesh_ads_campaigns_campaigns", "Stored campaigns by state.", ["state"])
WRITES = Counter("casemesh_ads_campaigns_writes", "Durable writes (create, state).", ["kind"])
#: Seconds: a group commit with fsync takes about a millisecond on an SSD, tens on a loaded disk.
COMMIT_BUCKETS = (0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.0)
COMMIT_SECONDS = Histogram("casemesh_ads_campaigns_commit_seconds", "One group commit to the campaigns' SQLite file, "
                           "fsync included, in seconds.", buckets=COMMIT_BUCKETS)
WRITES_PER_COMMIT = Histogram("casemesh_ads_campaigns_writes_per_commit", "Writes per group commit.",
                              buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))
VERSION = Gauge("casemesh_ads_campaigns_version", "The store's version (the highest version of any campaign).")
