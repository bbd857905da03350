"""``photo-media``: photos' metadata and life cycle (upload, processing queue, sizes on first request)."""
