"""The editor servers' own metrics (``casemesh_collab_*``), labelled with the editor server's topology name.

- ``casemesh_collab_sessions_open{editor_server}``: Edit sessions held (gauge);
- ``casemesh_collab_sessions_ended_total{editor_server, reason, grpc_code}``:
  sessions ended, by ``reason`` (``client_closed``, ``heartbeat_timeout``,
  ``slow_consumer``, ``shutdown``, ``cancelled``, ``watch_lost``,
  ``not_found``, ``sync_failed``, ``bad_frame``, ``error``) and the stream's
  status (CamelCase, as ``grpc_server_handled_total``);
- ``casemesh_collab_watches_open{editor_server}``: DocumentSyncService.Watch
  streams open (one per document with sessions here, or lingering) (gauge);
- ``casemesh_collab_watches_ended_total{editor_server, reason}``: ``closed``
  (no session left), ``not_found``, ``lost`` (the stream failed or ended),
  ``gap`` (a sequence was skipped), ``shutdown``;
- ``casemesh_collab_applied_updates_total{editor_server}``: AppliedUpdate
  events received from the watches;
- ``casemesh_collab_broadcast_batch_updates{editor_server}`` (histogram):
  updates merged into one RemoteUpdate, per flush (1 with
  ``broadcast_window_ms`` 0);
- ``casemesh_collab_broadcast_fanout_sessions{editor_server}`` (histogram):
  sessions one flush was queued to (fan-out width; the author skipped);
- ``casemesh_collab_remote_frames_total{editor_server}``: RemoteUpdate frames
  written to sessions (with coalescing, fewer than applied updates × sessions);
- ``casemesh_collab_echo_skipped_total{editor_server}``: flushes not sent to
  a session because they held only its own updates;
- ``casemesh_collab_relay_delay_seconds{editor_server}`` (histogram): for
  each remote update in a RemoteUpdate frame written to a session (the
  receiver's own updates in a merged frame left out), the time from
  ``AppliedUpdate.applied_at_unix_ns`` (when collab-documents logged it) to
  the frame's write to the stream completing: the server side of the
  "remote edit visible" SLO, without the author's ApplyUpdate and the last
  hop to the client (one machine's clock, as chat's
  ``casemesh_chat_push_delay_seconds``); coalescing adds up to
  ``broadcast_window_ms`` to it;
- ``casemesh_collab_local_updates_total{editor_server, outcome}``: local
  ``update`` frames by ``outcome``: ``acked``, ``duplicate`` (acked, added
  nothing), ``rejected`` (by this server or collab-documents);
- ``casemesh_collab_awareness_frames_total{editor_server, direction}``:
  awareness frames received from clients (``in``) and queued to them (``out``).
"""

from __future__ import annotations

import time

import grpc
from prometheus_client import Counter, Gauge, Histogram

from ...runtime.metrics import code_label

SESSIONS_OPEN = Gauge("casemesh_collab_sessions_open", "Edit sessions an editor server holds.", ("editor_server",))
SESSIONS_ENDED = Counter("casemesh_collab_sessions_ended", "Edit sessions ended, by reason and status.",
                         ("editor_server", "reason", "grpc_code"))
WATCHES_OPEN = Gauge("casemesh_collab_watches_open", "DocumentSyncService.Watch streams an editor server holds open.",
                     ("editor_server",))
WATCHES_ENDED = Counter("casemesh_collab_watches_ended", "Watch streams ended, by reason (closed, not_found, lost, gap, "
                        "shutdown).", ("editor_server", "reason"))
APPLIED_UPDATES = Counter("casemesh_collab_applied_updates", "AppliedUpdate events received from the watches.",
                          ("editor_server",))
#: Updates per RemoteUpdate: 1 when every update goes alone; the tail shows bursts merged within one window.
BATCH_BUCKETS = (1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1_000)
BATCH_UPDATES = Histogram("casemesh_collab_broadcast_batch_updates", "Updates merged into one RemoteUpdate (per flush).",
                          ("editor_server",), buckets=BATCH_BUCKETS)
#: Sessions per flush: up to the contract's 100 editors of a document.
FANOUT_BUCKETS = (0, 1, 2, 3, 5, 10, 20, 50, 100)
FANOUT = Histogram("casemesh_collab_broadcast_fanout_sessions", "Sessions one flush of a document's updates was queued to.",
                   ("editor_server",), buckets=FANOUT_BUCKETS)
REMOTE_FRAMES = Counter("casemesh_collab_remote_frames", "RemoteUpdate frames written to Edit sessions.", ("editor_server",))
ECHO_SKIPPED = Counter("casemesh_collab_echo_skipped", "Flushes not sent to a session: only its own updates.",
                       ("editor_server",))
#: Buckets (s) of the relay delay: the 0.05 and 2.0 of every casemesh latency histogram, finer below 50 ms (the
#: coalescing window is 20 ms by default).
RELAY_DELAY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0)
RELAY_DELAY = Histogram("casemesh_collab_relay_delay_seconds",
                        "Remote updates written to an Edit session: seconds since collab-documents logged them.",
                        ("editor_server",), buckets=RELAY_DELAY_BUCKETS)
LOCAL_UPDATES = Counter("casemesh_collab_local_updates", "Local update frames by outcome (acked, duplicate, rejected).",
                        ("editor_server", "outcome"))
AWARENESS_FRAMES = Counter("casemesh_collab_awareness_frames", "Awareness frames received from (in) and queued to (out) "
                           "clients.", ("editor_server", "direction"))


class EditorMetrics:
    """The children of one editor server's label, resolved once."""

    def __init__(self, editor_server: str) -> None:
        self.editor_server = editor_server
        self.open = SESSIONS_OPEN.labels(editor_server)
        self.watches = WATCHES_OPEN.labels(editor_server)
        self.applied = APPLIED_UPDATES.labels(editor_server)
        self.batch = BATCH_UPDATES.labels(editor_server)
        self.fanout = FANOUT.labels(editor_server)
        self.remote_frames = REMOTE_FRAMES.labels(editor_server)
        self.echo_skipped = ECHO_SKIPPED.labels(editor_server)
        self.relay_delay = RELAY_DELAY.labels(editor_server)
        self.awareness_in = AWARENESS_FRAMES.labels(editor_server, "in")
        self.awareness_out = AWARENESS_FRAMES.labels(editor_server, "out")
        self._local = {outcome: LOCAL_UPDATES.labels(editor_server, outcome) for outcome in ("acked", "duplicate", "rejected")}
        self._ended: dict[tuple[str, grpc.StatusCode], object] = {}
        self._watches_ended: dict[str, object] = {}

    def relayed(self, applied_at_unix_ns: list[int]) -> None:
        """A RemoteUpdate frame was written: one delay per remote update in it (``applied_at_unix_ns`` of each)."""
        self.remote_frames.inc()
        now = time.time_ns()
        observe = self.relay_delay.observe
        for applied in applied_at_unix_ns:
            observe(max(now - applied, 0) / 1e9)

    def local(self, outcome: str) -> None:
        self._local[outcome].inc()

    def ended(self, reason: str, code: grpc.StatusCode) -> None:
        key = (reason, code)
        child = self._ended.get(key)
        if child is None:
            child = self._ended[key] = SESSIONS_ENDED.labels(self.editor_server, reason, code_label(code))
        child.inc()

    def watch_ended(self, reason: str) -> None:
        child = self._watches_ended.get(reason)
        if child is None:
            child = self._watches_ended[reason] = WATCHES_ENDED.labels(self.editor_server, reason)
        child.inc()
