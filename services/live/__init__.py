"""Live streaming (seed 001 #12, "Live Streaming": Twitch): RTMP-style ingest, LL-HLS parts with blocking reload, edges, DVR, moderated chat."""
