"""``video-edge``: a CDN edge node with a byte-bounded LRU cache, origin fallback and the WAN model (docs/case-studies/video.md).

Domain modules (no gRPC): ``cache`` (LRU by bytes), ``wan`` (the shared origin link and the
per-stream pacing schedule), ``node`` (a segment stream put together).
``service`` holds the ``ServiceDefinition``. One origin fetch per key at a
time uses the runtime's ``coalescing.SingleFlight``.
"""
