"""``live-edge``: a CDN edge for LL-HLS live streams, built on the video edge's code (docs/case-studies/live.md).

Seed 001 #12 (shared/seeds/001_58dfc580020147d2.txt), "Live Streaming":
"LL-HLS/WebRTC, RTMP ingest, chat moderation, DVR | 1M concurrent viewers".
What lets an edge tier carry a million viewers is that the origin sees about
one request per part per edge, whatever the number of viewers: identical
blocking requests are coalesced, published parts are cached, and streaming
viewers share one origin subscription per stream.

Domain modules (no gRPC): ``node`` (coalescing, cache, the shared per-stream
subscription and its fan-out, WAN pacing), ``settings``, ``validation``,
``metrics``. ``service`` holds the ``ServiceDefinition`` and the origin client.
"""
