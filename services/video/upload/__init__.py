"""``video-upload``: the upload API (metadata only; signs upload tokens, queues transcode jobs)."""
