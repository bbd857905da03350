"""The social feed's contract limits, shared by its services and its workload (part of the contract).

The protos (protos/casemesh/social/v1/*.proto) quote each number in their
field comments; clients in any language apply the same rules.

- ``MAX_TWEET_CHARS``: 280 Unicode code points (seed 003, "Users can post
  tweets (280 characters)").
- ``USER_ID_PATTERN``: user IDs are 1 to 64 characters of ``[A-Za-z0-9_-]``.
- ``TIMELINE_CAPACITY``: tweet IDs kept per home-timeline cache, 800 (seed
  003, "Keep 800 tweets per timeline"); also the most IDs one GetTweets or
  ListUserTweets call carries.
- ``MAX_FOLLOWING``: most users one user may follow, 5,000 (Twitter's
  historical follow limit).
- ``MAX_HOME_PAGE_SIZE``: largest home-timeline page, 200; the default is 50
  (seed 003, ``getTimeline(userId, limit = 50)``).
- ``MAX_FOR_YOU_PAGE_SIZE``: largest "For you" timeline, 100 (the
  recommendation engine's most recommendations per call); the default is 20
  (seed 003, ``getRecommendations(userId, limit = 20)``).
"""

from __future__ import annotations

import re

MAX_TWEET_CHARS = 280
USER_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
TIMELINE_CAPACITY = 800
MAX_FOLLOWING = 5_000
MAX_HOME_PAGE_SIZE = 200
DEFAULT_HOME_PAGE_SIZE = 50
MAX_FOR_YOU_PAGE_SIZE = 100
DEFAULT_FOR_YOU_PAGE_SIZE = 20
