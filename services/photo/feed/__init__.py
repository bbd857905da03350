"""``photo-feed``: the photo feed, merged at read time from the social graph and photo-media."""
