"""ads-server's own metrics (``casemesh_ads_server_*``), seed 001 #15 (shared/seeds/001_58dfc580020147d2.txt line 40:
"<100ms decisioning, frequency caps, first-price auction").

- ``casemesh_ads_server_decisions_total{outcome}``: Decide's answers: ``served``, ``repeated`` (a request ID served
  already: the same ad again), ``no_candidates``, ``budget``, ``frequency_capped``, ``unavailable``;
- ``casemesh_ads_server_candidates`` / ``..._bidders`` (histograms): candidates retrieved by targeting, bidders left
  after the budget and frequency filters, per decision that got that far;
- ``casemesh_ads_server_auction_attempts`` (histogram): bidders tried per auction (1 when the winner served);
- ``casemesh_ads_server_decide_phase_seconds{phase}`` (histogram): ``retrieve`` (the index), ``filter``
  (CheckEligibility and GetCounts), ``reserve``, ``charge`` (summed over the attempts), ``log`` (the impression's
  durable write);
- ``casemesh_ads_server_decide_seconds`` (histogram): a whole decision (the repeated ones excluded);
- ``casemesh_ads_server_index_campaigns`` (gauge): active campaigns in the targeting index;
- ``casemesh_ads_server_index_version`` (gauge): the campaigns' version the index is at;
- ``casemesh_ads_server_sync_failures_total``: ListCampaigns polls that failed (the index stays as it was);
- ``casemesh_ads_server_clicks_total{first}``: RecordClick's answers (``true``: the first click);
- ``casemesh_ads_server_dependency_calls_total{method,code}``: outgoing calls by method and status code;
- ``casemesh_ads_server_commit_seconds`` / ``..._writes_per_commit`` (histograms): the log's group commits.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DECISIONS = Counter("casemesh_ads_server_decisions", "Decide's answers (served, repeated, no_candidates, budget, "
                    "frequency_capped, unavailable).", ["outcome"])
_COUNT_BUCKETS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
CANDIDATES = Histogram("casemesh_ads_server_candidates", "Candidates retrieved by targeting per decision.",
                       buckets=_COUNT_BUCKETS)
BIDDERS = Histogram("casemesh_ads_server_bidders", "Bidders after the budget and frequency filters per decision.",
                    buckets=_COUNT_BUCKETS)
AUCTION_ATTEMPTS = Histogram("casemesh_ads_server_auction_attempts", "Bidders tried per auction.",
                             buckets=(1, 2, 3, 5, 10, 20))
_SECONDS = (0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0)
PHASE_SECONDS = Histogram("casemesh_ads_server_decide_phase_seconds", "One phase of a decision (retrieve, filter, "
                          "reserve, charge, log), in seconds.", ["phase"], buckets=_SECONDS)
DECIDE_SECONDS = Histogram("casemesh_ads_server_decide_seconds", "A whole decision, in seconds.", buckets=_SECONDS)
INDEX_CAMPAIGNS = Gauge("casemesh_ads_server_index_campaigns", "Active campaigns in the targeting index.")
INDEX_VERSION = Gauge("casemesh_ads_server_index_version", "The campaigns' version the index is at.")
SYNC_FAILURES = Counter("casemesh_ads_server_sync_failures", "ListCampaigns polls that failed.")
CLICKS = Counter("casemesh_ads_server_clicks", "RecordClick's answers (first: the impression's first click).",
                 ["first"])
DEPENDENCY_CALLS = Counter("casemesh_ads_server_dependency_calls", "Outgoing calls by method and status code.",
                           ["method", "code"])
COMMIT_SECONDS = Histogram("casemesh_ads_server_commit_seconds", "One group commit to the event log, fsync included, "
                           "in seconds.", buckets=(0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                   0.25, 1.0, 2.0))
WRITES_PER_COMMIT = Histogram("casemesh_ads_server_writes_per_commit", "Writes per group commit.",
                              buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))
