"""``social-tweets``: the tweet store, its durable log and the user timelines (:mod:`.store`, :mod:`.journal`, :mod:`.service`)."""
