"""Collaborative documents: remote edits against their 300 ms SLO, the edit sessions and watches, the editor servers'
coalescing broadcast, the documents service's update log and snapshots.

Case study: shared/seeds/001_…, #06 "Collaborative Docs" ("Operational Transform/CRDT, WebSocket, conflict
resolution", "1M concurrent editors, Google Docs"); contracts in protos/casemesh/collab/v1/,
docs/case-studies/collab.md, SLOs in harness/profiles/collab.slo.yaml.

Service metrics, as the collab services expose them: ``casemesh_collab_relay_delay_seconds{editor_server}`` (logged by
collab-documents → written to another editor's session: the server-side twin of the remote-edit SLO),
``casemesh_collab_sessions_open{editor_server}``, ``casemesh_collab_sessions_ended_total{editor_server,reason,grpc_code}``,
``casemesh_collab_watches_open{editor_server}``, ``casemesh_collab_watches_ended_total{editor_server,reason}``,
``casemesh_collab_applied_updates_total{editor_server}``, ``casemesh_collab_broadcast_batch_updates{editor_server}``,
``casemesh_collab_broadcast_fanout_sessions{editor_server}``, ``casemesh_collab_remote_frames_total{editor_server}``,
``casemesh_collab_echo_skipped_total{editor_server}``, ``casemesh_collab_local_updates_total{editor_server,outcome}``,
``casemesh_collab_awareness_frames_total{editor_server,direction}`` (the editor servers,
services/collab/editor/metrics.py); ``casemesh_collab_updates_total{duplicate}``,
``casemesh_collab_updates_refused_total{reason}``, ``casemesh_collab_update_bytes``,
``casemesh_collab_update_log_commit_seconds``, ``casemesh_collab_update_log_commit_batch``,
``casemesh_collab_snapshots_total``, ``casemesh_collab_snapshot_duration_seconds``, ``casemesh_collab_documents``,
``casemesh_collab_watchers``, ``casemesh_collab_watchers_dropped_total``, ``casemesh_collab_awareness_updates_total{outcome}``,
``casemesh_collab_largest_document_state_bytes`` (collab-documents, services/collab/documents/metrics.py). Only the gRPC
histograms carry exemplars.

``EditorService/Edit`` and ``DocumentSyncService/Watch`` are streams that last as long as an editor has the document
open (or an editor server watches it): their handling time is a session's length and their status how it ended. They
are left out of the gRPC duration and error panels; the Sessions row shows them instead.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from .common import (
    ERROR_CODES_MATCHER, latency_panel, le, mean, new_dashboard, quantile, query, query_variable, rate, refs,
    selector, stat_panel, timeseries_panel, within,
)

UID = "casemesh-collab"
SYNC = "casemesh.collab.v1.DocumentSyncService"
RELAY_DELAY = "casemesh_collab_relay_delay_seconds"
#: remote-edit-server (collab.slo.yaml): 99% of remote updates written to another editor's session within 300 ms of
#: being logged; a bucket of RELAY_DELAY.
REMOTE_EDIT_S = 0.3
REMOTE_EDIT_TARGET = 0.99
#: edit-ack-server: 99% of ApplyUpdate calls within 500 ms (the durable acknowledgement).
ACK_S = 0.5
ACK_TARGET = 0.99
JOB = 'job=~"$job"'
COLLAB_SERVICES = r'grpc_service=~"casemesh\\.collab\\.v1\\..+"'
COLLAB_JOBS = r'{__name__="grpc_server_handled_total", ' + COLLAB_SERVICES + "}"
#: The streams' handling time is a session's (or a watch's) length, their status how it ended: not in duration or errors.
NOT_STREAMS = 'grpc_method!~"Edit|Watch"'


def build() -> Dashboard:
    jobs = selector(JOB)
    applies = selector(JOB, f'grpc_service="{SYNC}"', 'grpc_method="ApplyUpdate"')
    board = (
        new_dashboard(UID, "casemesh / collaborative documents",
                      "The collaborative-documents case study: remote edits written to the other editors' sessions "
                      "against the remote-edit SLO (99% within 300 ms of being logged), edits made durable "
                      "(ApplyUpdate), the Edit sessions and the editor servers' watches, the coalescing broadcast "
                      "(broadcast_window_ms), and the documents service's update log and snapshots.",
                      ["collab"])
        .with_variable(query_variable("job", "Job", f"label_values({COLLAB_JOBS}, job)"))
    )
    board = (
        board.with_row(Row("Remote edits: 99% relayed within 300 ms; edits made durable"))
        .with_panel(latency_panel(
            "Relay delay vs 300 ms",
            "From collab-documents logging an update (fsync'd) to an editor server writing it to each other editor's "
            "Edit stream (casemesh_collab_relay_delay_seconds, every editor server); the broadcast window adds up to "
            "broadcast_window_ms. The dashed line is the remote-edit threshold, the SLO remote-edit-server of "
            "collab.slo.yaml.", RELAY_DELAY, jobs, (), "", quantiles=(0.5, 0.99), width=8, threshold_s=REMOTE_EDIT_S))
        .with_panel(timeseries_panel(
            "Relayed within 300 ms",
            f"Share of remote updates written within 300 ms of being logged (le=\"{le(REMOTE_EDIT_S)}\" bucket over the "
            f"count), per editor server; the dashed line is the target {REMOTE_EDIT_TARGET:g}.", "percentunit",
            [query(within(RELAY_DELAY, jobs, REMOTE_EDIT_S, ("editor_server",)), "{{editor_server}}")],
            width=8, threshold_line=(REMOTE_EDIT_TARGET, "red"), max_value=1))
        .with_panel(latency_panel(
            "ApplyUpdate duration vs 500 ms",
            "Server handling time of DocumentSyncService/ApplyUpdate as the editor servers call it: the CRDT merge and "
            "the wait for the update log's group commit (fsync); the editor's ack follows its answer. The dashed line "
            "is the edit-ack threshold. Dots are exemplars: click one to open the edit's trace in Jaeger.",
            "grpc_server_handling_seconds", applies, (), "", quantiles=(0.5, 0.99), width=8, threshold_s=ACK_S))
        .with_panel(timeseries_panel(
            "Local updates by outcome",
            "Update frames editors sent, per second, by how their editor server answered: acked (durable), duplicate "
            "(acked; it added nothing), rejected (a bad update, or collab-documents refused it).", "ops",
            [query(rate("casemesh_collab_local_updates_total", jobs, ("outcome",)), "{{outcome}}")],
            width=8, stacked=True))
        .with_panel(stat_panel(
            "Relayed within 300 ms over the range",
            "Share of remote updates written to a session within 300 ms of being logged over the selected time range, "
            "against 0.99.", "percentunit",
            [query(within(RELAY_DELAY, jobs, REMOTE_EDIT_S, window="$__range"), instant=True)],
            width=8, height=8, base="red", steps=((REMOTE_EDIT_TARGET, "green"),), decimals=2))
        .with_panel(stat_panel(
            "ApplyUpdate within 500 ms over the range",
            "Share of ApplyUpdate calls answered within 500 ms over the selected time range, against 0.99.",
            "percentunit",
            [query(within("grpc_server_handling_seconds", applies, ACK_S, window="$__range"), instant=True)],
            width=8, height=8, base="red", steps=((ACK_TARGET, "green"),), decimals=2))
    )
    board = (
        board.with_row(Row("Sessions and watches"))
        .with_panel(timeseries_panel(
            "Edit sessions open", "Edit sessions each editor server holds (one per editor with a document open; seed "
            "001 #06: 1M concurrent editors, here scaled to one machine).", "short",
            [query(f"sum by (editor_server) (casemesh_collab_sessions_open{jobs})", "{{editor_server}}")], width=6))
        .with_panel(timeseries_panel(
            "Sessions ended by reason", "Sessions ended per second by editor server and reason: client_closed, "
            "heartbeat_timeout, slow_consumer (outgoing queue full), shutdown, cancelled, watch_lost (the editor server "
            "lost its watch of the document: the editor rejoins), not_found, sync_failed, bad_frame, error.", "ops",
            [query(rate("casemesh_collab_sessions_ended_total", jobs, ("editor_server", "reason")),
                   "{{editor_server}} {{reason}}")], width=6, stacked=True))
        .with_panel(timeseries_panel(
            "Watches", "DocumentSyncService.Watch streams: open per editor server (one per document with editors there), "
            "and open at collab-documents; watchers dropped for falling 10,000 messages behind, per second.", "short",
            refs([(f"sum by (editor_server) (casemesh_collab_watches_open{jobs})", "{{editor_server}}"),
                  (f"sum(casemesh_collab_watchers{jobs})", "collab-documents"),
                  (rate("casemesh_collab_watchers_dropped_total", jobs), "dropped/s")]), width=6))
        .with_panel(timeseries_panel(
            "Awareness", "Awareness (cursor) frames per second received from editors and queued to them, and what "
            "collab-documents did with awareness updates (relayed, stale, expired: timed out after 30 s).", "ops",
            refs([(rate("casemesh_collab_awareness_frames_total", jobs, ("direction",)), "frames {{direction}}"),
                  (rate("casemesh_collab_awareness_updates_total", jobs, ("outcome",)), "documents {{outcome}}")]),
            width=6))
    )
    board = (
        board.with_row(Row("Broadcast: the coalescing window (broadcast_window_ms)"))
        .with_panel(timeseries_panel(
            "Updates per frame", "Mean and 99th percentile of the updates merged into one RemoteUpdate frame (1 with "
            "broadcast_window_ms 0; more when editors type faster than the window).", "short",
            refs([(mean("casemesh_collab_broadcast_batch_updates", jobs), "mean"),
                  (quantile(0.99, "casemesh_collab_broadcast_batch_updates", jobs), "p99")]), width=6))
        .with_panel(timeseries_panel(
            "Fan-out width", "Mean sessions one flush of a document's updates was queued to (the editors of the document "
            "on this editor server, the author left out when alone).", "short",
            [query(mean("casemesh_collab_broadcast_fanout_sessions", jobs), "mean")], width=6))
        .with_panel(timeseries_panel(
            "Frames vs updates", "Updates the editor servers received from their watches per second, and the RemoteUpdate "
            "frames they wrote to sessions: without coalescing frames are updates × editors of the document; the "
            "window merges a burst into one frame per session.", "ops",
            refs([(rate("casemesh_collab_applied_updates_total", jobs, ("editor_server",)), "updates {{editor_server}}"),
                  (rate("casemesh_collab_remote_frames_total", jobs, ("editor_server",)), "frames {{editor_server}}")]),
            width=6))
        .with_panel(timeseries_panel(
            "Echoes skipped", "Flushes not written to a session because they held only that session's own updates, per "
            "second.", "ops", [query(rate("casemesh_collab_echo_skipped_total", jobs, ("editor_server",)),
                                     "{{editor_server}}")], width=6))
    )
    commit_batch = "casemesh_collab_update_log_commit_batch"
    board = (
        board.with_row(Row("Update log and snapshots (collab-documents)"))
        .with_panel(timeseries_panel(
            "Updates merged", "Updates merged into documents per second: logged under the next sequence "
            "(duplicate=no), or adding nothing and not logged (duplicate=yes: a retry); updates refused by reason "
            "(malformed, too_large).", "ops",
            refs([(rate("casemesh_collab_updates_total", jobs, ("duplicate",)), "duplicate={{duplicate}}"),
                  (rate("casemesh_collab_updates_refused_total", jobs, ("reason",)), "refused {{reason}}")]), width=6))
        .with_panel(timeseries_panel(
            "Group commit", "Records (updates and created documents) per group commit (one fsync) of the update log, "
            "mean and p99: large batches under load are the group commit at work.", "short",
            refs([(mean(commit_batch, jobs), "records mean"), (quantile(0.99, commit_batch, jobs), "records p99")]),
            width=6))
        .with_panel(timeseries_panel(
            "Commit and snapshot duration", "99th percentile of one group commit of the update log (write and fsync), "
            "and of encoding a document's whole state for a snapshot (every snapshot_every_updates updates; the log "
            "before it is compacted away).", "s",
            refs([(quantile(0.99, "casemesh_collab_update_log_commit_seconds", jobs), "commit p99"),
                  (quantile(0.99, "casemesh_collab_snapshot_duration_seconds", jobs), "snapshot p99")]), width=6))
        .with_panel(timeseries_panel(
            "Documents and state size", "Documents held, snapshots written per second, and the largest document's whole "
            "state in bytes (the text plus the CRDT's tombstones and metadata).", "short",
            refs([(f"sum(casemesh_collab_documents{jobs})", "documents"),
                  (rate("casemesh_collab_snapshots_total", jobs), "snapshots/s"),
                  (f"max(casemesh_collab_largest_document_state_bytes{jobs})", "largest state (bytes)")]), width=6))
    )
    calls = selector(JOB, COLLAB_SERVICES)
    board = (
        board.with_row(Row("gRPC per collab service"))
        .with_panel(timeseries_panel(
            "Request rate", "Calls handled per second by each collab method. EditorService/Edit and "
            "DocumentSyncService/Watch count streams when they end.", "reqps",
            [query(rate("grpc_server_handled_total", calls, ("grpc_service", "grpc_method")), "{{grpc_service}}/{{grpc_method}}")],
            width=8))
        .with_panel(timeseries_panel(
            "Errors by code", "Failed calls per second (codes other than OK, NotFound, InvalidArgument, AlreadyExists). "
            "Edit and Watch are left out: their status is how a session or watch ended (see Sessions ended by reason).",
            "reqps",
            [query(rate("grpc_server_handled_total", selector(JOB, COLLAB_SERVICES, NOT_STREAMS, ERROR_CODES_MATCHER),
                        ("grpc_method", "grpc_code")), "{{grpc_method}} {{grpc_code}}")], width=8, stacked=True))
        .with_panel(timeseries_panel(
            "p99 duration", "99th percentile server handling time per method, Edit and Watch left out (a session's "
            "length, not a request's). Dots are exemplars.", "s",
            [query(quantile(0.99, "grpc_server_handling_seconds", selector(JOB, COLLAB_SERVICES, NOT_STREAMS),
                            ("grpc_service", "grpc_method")), "{{grpc_service}}/{{grpc_method}}", exemplar=True)], width=8))
    )
    return board
