"""live-ingest's own metrics (``casemesh_live_ingest_*``), beyond the runtime's ``grpc_server_*``.

- ``casemesh_live_ingest_chunks_received_total`` and
  ``casemesh_live_ingest_chunk_bytes_received_total``: media chunks taken
  from broadcasters, and their bytes;
- ``casemesh_live_ingest_parts_appended_total{duplicate}``: parts the origin
  accepted (``no``) or answered as a retry already applied (``yes``);
- ``casemesh_live_ingest_publishers`` (gauge): Publish connections open;
- ``casemesh_live_ingest_publishes_ended_total{code}``: Publish connections
  by the status they ended with (``OK``, ``ABORTED`` taken over,
  ``UNAVAILABLE``, ...);
- ``casemesh_live_ingest_packaging_delay_seconds`` (histogram): from a
  chunk's arrival at the ingest server to its part's acknowledgement by the
  origin: the server-side share of glass-to-glass latency (waiting for the
  part to fill up, one chunk more for a part that may end its segment, the
  append); observed per chunk;
- ``casemesh_live_ingest_append_seconds`` (histogram): one AppendPart call
  (with its retry);
- ``casemesh_live_ingest_streams_created_total``: CreateStream successes.

Label sets are fixed and small (no stream IDs).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CHUNKS = Counter("casemesh_live_ingest_chunks_received", "Media chunks received from broadcasters.")
CHUNK_BYTES = Counter("casemesh_live_ingest_chunk_bytes_received", "Bytes of media chunks received from broadcasters.")
PARTS = Counter("casemesh_live_ingest_parts_appended", "Parts appended to the origin, by whether the origin had "
                "applied them already (duplicate=yes: a retry) or not (duplicate=no).", ["duplicate"])
PUBLISHERS = Gauge("casemesh_live_ingest_publishers", "Publish connections open on the ingest server.")
ENDED = Counter("casemesh_live_ingest_publishes_ended", "Publish connections ended, by status code.", ["code"])
PACKAGING_DELAY = Histogram(
    "casemesh_live_ingest_packaging_delay_seconds", "Seconds from a chunk's arrival at the ingest server to the "
    "origin's acknowledgement of the part that carries it (the server-side share of glass-to-glass latency).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0))
APPEND_SECONDS = Histogram("casemesh_live_ingest_append_seconds", "Seconds of one AppendPart to the origin (with "
                           "its retry).", buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                   1.0, 2.0))
CREATED = Counter("casemesh_live_ingest_streams_created", "Streams created (registered at the origin, chat room open).")


class IngestMetrics:
    """Children resolved once."""

    def __init__(self) -> None:
        self.chunks = CHUNKS
        self.chunk_bytes = CHUNK_BYTES
        self.parts = {True: PARTS.labels("yes"), False: PARTS.labels("no")}
        self.publishers = PUBLISHERS
        self.packaging_delay = PACKAGING_DELAY
        self.append_seconds = APPEND_SECONDS
        self.created = CREATED

    def ended(self, code: str) -> None:
        ENDED.labels(code).inc()
