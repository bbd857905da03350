"""``video-transcode`` (the leased work queue) and ``video-transcoder`` (the transcode workers)."""
