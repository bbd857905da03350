"""``live-ingest``: broadcasters' connections (the seed's RTMP ingest), packaged into LL-HLS parts and appended to the origin (:mod:`.packager`, :mod:`.service`)."""
