"""ads-budget's own metrics (``casemesh_ads_budget_*``), seed 001 #15 (shared/seeds/001_58dfc580020147d2.txt line 40:
"Ad Serving ... pacing").

- ``casemesh_ads_budget_charges_total{outcome}``: Charge answers: ``charged`` (a new charge, durable),
  ``budget_exhausted``, ``paced``, ``paused`` (refused), ``repeated`` (a retry answered with its first answer);
- ``casemesh_ads_budget_spent_milli_minor_total``: everything charged, in thousandths of a minor unit, over all
  campaigns and currencies (a spend rate; per-campaign spend is GetSpend's, too many series for Prometheus);
- ``casemesh_ads_budget_pacing_throttles_total``: charges refused by pacing (the budget would have allowed them);
- ``casemesh_ads_budget_exhausted_campaigns`` (gauge): campaigns whose bid no longer fits in the day's budget;
- ``casemesh_ads_budget_campaigns`` (gauge): campaigns known (followed from ads-campaigns);
- ``casemesh_ads_budget_sync_errors_total``: ListCampaigns polls that failed (ads-campaigns unreachable or slow);
- ``casemesh_ads_budget_commit_seconds`` (histogram): one group commit to the SQLite file, fsync included;
- ``casemesh_ads_budget_writes_per_commit`` (histogram): charges per group commit.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CHARGES = Counter("casemesh_ads_budget_charges", "Charge answers (charged, budget_exhausted, paced, paused, "
                  "repeated).", ["outcome"])
SPENT = Counter("casemesh_ads_budget_spent_milli_minor", "Everything charged, in thousandths of a minor unit.")
PACING_THROTTLES = Counter("casemesh_ads_budget_pacing_throttles", "Charges refused by pacing.")
EXHAUSTED = Gauge("casemesh_ads_budget_exhausted_campaigns", "Campaigns whose bid no longer fits in the day's budget.")
CAMPAIGNS = Gauge("casemesh_ads_budget_campaigns", "Campaigns known (followed from ads-campaigns).")
SYNC_ERRORS = Counter("casemesh_ads_budget_sync_errors", "ListCampaigns polls that failed.")
#: Seconds: a group commit with fsync takes about a millisecond on an SSD, tens on a loaded disk.
COMMIT_BUCKETS = (0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.0)
COMMIT_SECONDS = Histogram("casemesh_ads_budget_commit_seconds", "One group commit to the budget's SQLite file, "
                           "fsync included, in seconds.", buckets=COMMIT_BUCKETS)
WRITES_PER_COMMIT = Histogram("casemesh_ads_budget_writes_per_commit", "Charges per group commit.",
                              buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))
