"""The recommendation contract's limits, shared by the reco services and the workload (part of the contract).

protos/casemesh/reco/v1/*.proto quotes each number; clients in any language
apply the same rules.

- ``ID_PATTERN``: user and item ids are 1 to 64 characters of ``[A-Za-z0-9_-]``
  (the social graph's user-id rule).
- ``MAX_RECORD_BATCH``: most interactions per RecordInteractions call, 10,000.
- ``MAX_RECENT``: most recent interactions per ListRecentInteractions call,
  and most ``recent_item_ids`` per GetCandidates call, 1,000.
- ``DEFAULT_EXPORT_BATCH`` / ``MAX_EXPORT_BATCH``: ExportInteractions batch
  sizes, 5,000 by default, at most 50,000.
- ``DEFAULT_LIMIT`` / ``MAX_LIMIT``: recommendations per call, 20 by default
  (seed 003: ``getRecommendations(userId, limit = 20)``), at most 100.
- ``MAX_POOL_SIZE``: most candidates per call, 5,000.
- ``MAX_FACTORS`` / ``MAX_ITERATIONS``: TrainModel's limits, 256 and 50.
"""

from __future__ import annotations

from ..social.limits import USER_ID_PATTERN as ID_PATTERN

__all__ = ["ID_PATTERN", "MAX_RECORD_BATCH", "MAX_RECENT", "DEFAULT_EXPORT_BATCH", "MAX_EXPORT_BATCH",
           "DEFAULT_LIMIT", "MAX_LIMIT", "MAX_POOL_SIZE", "MAX_FACTORS", "MAX_ITERATIONS"]

MAX_RECORD_BATCH = 10_000
MAX_RECENT = 1_000
DEFAULT_EXPORT_BATCH = 5_000
MAX_EXPORT_BATCH = 50_000
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_POOL_SIZE = 5_000
MAX_FACTORS = 256
MAX_ITERATIONS = 50
