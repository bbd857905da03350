"""collab-documents' own metrics (``casemesh_collab_*``), beyond the runtime's ``grpc_server_*``.

- ``casemesh_collab_updates_total{duplicate}``: updates merged (``no``: new,
  logged under the next sequence) or answered ``duplicate`` (``yes``: added
  nothing, not logged);
- ``casemesh_collab_updates_refused_total{reason}``: ``malformed`` (not a Yjs
  v1 update) or ``too_large`` (the state would pass 3 MiB);
- ``casemesh_collab_update_bytes`` (histogram): size of each update merged (new or duplicate);
- ``casemesh_collab_update_log_commit_seconds`` (histogram): one group commit
  of the update log (write + fsync, in the worker thread);
- ``casemesh_collab_update_log_commit_batch`` (histogram): records (updates
  and created documents) per group commit, i.e. per fsync;
- ``casemesh_collab_snapshots_total`` and
  ``casemesh_collab_snapshot_duration_seconds`` (histogram): snapshots taken,
  and the time to encode each (the whole state as one update, on the event
  loop; the write is part of its commit);
- ``casemesh_collab_documents`` (gauge): documents held;
- ``casemesh_collab_watchers`` (gauge): Watch streams open;
  ``casemesh_collab_watchers_dropped_total``: watchers dropped for falling
  more than 10,000 messages behind;
- ``casemesh_collab_awareness_updates_total{outcome}``: awareness updates
  ``relayed`` (added, renewed or removed a state), ``stale`` (an older clock:
  nothing merged, not relayed), and sweeps that ``expired`` timed-out states;
- ``casemesh_collab_largest_document_state_bytes`` (gauge): the largest
  document's whole state encoded as one update, as last measured (at creation,
  snapshots, GetDocument and near the size limit).

Label sets are fixed and small (no document IDs).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from .store import StoreObserver

UPDATES = Counter("casemesh_collab_updates", "Updates merged into a document, by whether they added nothing "
                  "(duplicate=yes: not logged) or were logged under the next sequence (duplicate=no).", ["duplicate"])
REFUSED = Counter("casemesh_collab_updates_refused", "Updates refused: malformed (not a Yjs v1 update) or too_large "
                  "(the document's state would pass its limit).", ["reason"])
UPDATE_BYTES = Histogram("casemesh_collab_update_bytes", "Size of each update merged (new or duplicate), in bytes.",
                         buckets=(16, 32, 64, 128, 256, 512, 1024, 4096, 16_384, 65_536, 262_144))
COMMIT_SECONDS = Histogram("casemesh_collab_update_log_commit_seconds",
                           "Seconds of one group commit of the update log (write and fsync).",
                           buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0))
COMMIT_BATCH = Histogram("casemesh_collab_update_log_commit_batch",
                         "Records (updates and created documents) in one group commit (one fsync) of the update log.",
                         buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))
SNAPSHOTS = Counter("casemesh_collab_snapshots", "Snapshots written (a document's whole state; its log compacted).")
SNAPSHOT_SECONDS = Histogram("casemesh_collab_snapshot_duration_seconds",
                             "Seconds to encode a document's whole state for a snapshot (on the event loop).",
                             buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                      1.0, 2.0))
DOCUMENTS = Gauge("casemesh_collab_documents", "Documents held by the documents service.")
WATCHERS = Gauge("casemesh_collab_watchers", "Watch streams open on the documents service.")
WATCHERS_DROPPED = Counter("casemesh_collab_watchers_dropped",
                           "Watchers dropped for falling more than 10,000 messages behind (RESOURCE_EXHAUSTED).")
AWARENESS = Counter("casemesh_collab_awareness_updates", "Awareness updates by outcome: relayed (added, renewed or "
                    "removed a state), stale (nothing merged), expired (a sweep removed timed-out states).", ["outcome"])
LARGEST_STATE = Gauge("casemesh_collab_largest_document_state_bytes",
                      "The largest document's whole state encoded as one update, in bytes, as last measured.")


class DocumentMetrics(StoreObserver):
    """The store's reports as Prometheus series (children resolved once)."""

    def __init__(self) -> None:
        self._updates = {True: UPDATES.labels("yes"), False: UPDATES.labels("no")}
        self._refused = {reason: REFUSED.labels(reason) for reason in ("malformed", "too_large")}
        self._awareness = {outcome: AWARENESS.labels(outcome) for outcome in ("relayed", "stale", "expired")}
        self._sizes: dict[str, int] = {}
        self._largest = 0

    def applied(self, duplicate: bool, size_bytes: int) -> None:
        self._updates[duplicate].inc()
        UPDATE_BYTES.observe(size_bytes)

    def refused(self, reason: str) -> None:
        self._refused[reason].inc()

    def committed(self, records: int, seconds: float) -> None:
        COMMIT_SECONDS.observe(seconds)
        COMMIT_BATCH.observe(records)

    def snapshot(self, seconds: float, state_bytes: int) -> None:
        SNAPSHOTS.inc()
        SNAPSHOT_SECONDS.observe(seconds)

    def documents(self, count: int) -> None:
        DOCUMENTS.set(count)

    def watchers(self, delta: int) -> None:
        WATCHERS.inc(delta)

    def watcher_dropped(self) -> None:
        WATCHERS_DROPPED.inc()

    def awareness(self, outcome: str) -> None:
        self._awareness[outcome].inc()

    def state_size(self, document_id: str, state_bytes: int) -> None:
        previous = self._sizes.get(document_id, 0)
        self._sizes[document_id] = state_bytes
        if state_bytes >= self._largest:
            self._largest = state_bytes
        elif previous == self._largest:  # the largest one shrank (garbage-collected deletes): find the new largest
            self._largest = max(self._sizes.values())
        LARGEST_STATE.set(self._largest)
