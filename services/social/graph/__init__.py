"""``social-graph``: who follows whom (:mod:`.store`, :mod:`.service`)."""
