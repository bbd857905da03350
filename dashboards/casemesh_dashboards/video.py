"""Video platform: playback start against its SLO, the CDN edge cache, transcoding, views, search and uploads.

Case study: shared/seeds/004_…, "Video playback must start within 2 seconds globally (p95)"
(003_…: "Start streaming < 2 seconds"); contracts in protos/casemesh/video/v1/. Playback
start is read from the edge's own gRPC histogram: ``grpc_server_handling_seconds`` of
``casemesh.video.v1.EdgeService/StreamSegments`` (a server stream: the whole call, first
byte to last), against 2 s at p95.

Service metrics, as the video services expose them (docs/case-studies/video.md, "Metrics" of each plane;
docs/observability.md lists those used here): ``casemesh_video_edge_cache_lookups_total{result}``,
``casemesh_video_edge_served_bytes_total{result}``, ``casemesh_video_edge_cache_bytes``,
``casemesh_video_edge_cache_evictions_total``, ``casemesh_video_edge_coalesced_misses_total``,
``casemesh_video_edge_origin_fetch_seconds``, ``casemesh_video_edge_origin_link_backlog_seconds``,
``casemesh_video_playback_cache_lookups_total{result}``, ``casemesh_video_transcode_queue_depth``,
``casemesh_video_transcode_jobs_in_flight``, ``casemesh_video_transcode_redeliveries_total``,
``casemesh_video_transcode_dead_letters_total``, ``casemesh_video_transcode_jobs_total{outcome}``,
``casemesh_video_transcode_seconds``, ``casemesh_video_views_buffered``,
``casemesh_video_view_events_total{stage}``, ``casemesh_video_search_index_lag_seconds``,
``casemesh_video_upload_bytes_total``. Only the gRPC histograms carry exemplars.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from .common import (
    ERROR_CODES_MATCHER, RATE, latency_panel, le, new_dashboard, quantile, query, query_variable, rate, refs, selector,
    stat_panel, timeseries_panel, within,
)

UID = "casemesh-video"
EDGE = "casemesh.video.v1.EdgeService"
#: Playback start SLO (seed 004): 95% of playbacks start within 2 s. 2.0 is a bucket of the runtime's histograms.
PLAYBACK_START_S = 2.0
PLAYBACK_START_TARGET = 0.95
JOB = 'job=~"$job"'
VIDEO_SERVICES = r'grpc_service=~"casemesh\\.video\\.v1\\..+"'
#: Jobs of the video services: servers of a video gRPC service, and callers of one (video-transcoder is a
#: worker that serves no video API, so it only shows on the client side).
VIDEO_JOBS = r'{__name__=~"grpc_server_handled_total|grpc_client_handled_total", ' + VIDEO_SERVICES + "}"


def build() -> Dashboard:
    streams = selector(JOB, f'grpc_service="{EDGE}"', 'grpc_method="StreamSegments"')
    board = (
        new_dashboard(UID, "casemesh / video",
                      "The video-platform case study: playback start against its 2 s p95 SLO at the edge, the edge's cache and "
                      "origin fetches, the transcode queue, view counting, search indexing lag and uploads.",
                      ["video"])
        .with_variable(query_variable("job", "Job", f"label_values({VIDEO_JOBS}, job)"))
    )

    board = (
        board.with_row(Row("Playback start: 95% within 2 s (edge StreamSegments)"))
        .with_panel(latency_panel(
            "StreamSegments duration vs 2 s",
            "Server handling time of EdgeService/StreamSegments (the whole stream); the dashed line is the playback-start "
            "threshold (2 s at p95, seed 004). This is the edge's part of a playback start, the SLO playback-start-server "
            "of video.slo.yaml; the harness's playback-start SLO adds GetVideo, both playlists and the client. Dots are "
            "exemplars: click one to open the stream's trace in Jaeger.",
            "grpc_server_handling_seconds", streams, (), "", quantiles=(0.5, 0.95, 0.99), width=12,
            threshold_s=PLAYBACK_START_S))
        .with_panel(timeseries_panel(
            "Streams within 2 s",
            f"Share of StreamSegments calls the edge completed within 2 s (le=\"{le(PLAYBACK_START_S)}\" bucket over the count); "
            f"the dashed line is the target {PLAYBACK_START_TARGET:g}.",
            "percentunit", [query(within("grpc_server_handling_seconds", streams, PLAYBACK_START_S), "within 2 s")],
            width=6, threshold_line=(PLAYBACK_START_TARGET, "red"), max_value=1))
        .with_panel(stat_panel(
            "p95 over the range", "95th percentile of StreamSegments over the selected time range, against 2 s.", "s",
            [query(quantile(0.95, "grpc_server_handling_seconds", streams, window="$__range"), instant=True)],
            width=6, height=8, steps=((PLAYBACK_START_S, "red"),)))
    )

    edge_lookups = "casemesh_video_edge_cache_lookups_total"
    edge_bytes = "casemesh_video_edge_served_bytes_total"
    playback_lookups = "casemesh_video_playback_cache_lookups_total"
    board = (
        board.with_row(Row("Edge cache and origin fetches"))
        .with_panel(timeseries_panel(
            "Edge hit ratio", "Segment lookups served from the edge cache over all lookups, and the same by bytes "
            "streamed (a 1080p segment weighs ten times a 360p one).", "percentunit",
            refs([(f'sum(rate({edge_lookups}{{{JOB}, result="hit"}}[{RATE}])) / sum(rate({edge_lookups}{{{JOB}}}[{RATE}]))', "segments"),
                  (f'sum(rate({edge_bytes}{{{JOB}, result="hit"}}[{RATE}])) / sum(rate({edge_bytes}{{{JOB}}}[{RATE}]))', "bytes")]),
            width=6, min_value=0, max_value=1))
        .with_panel(timeseries_panel(
            "Edge cache size", "Bytes held in the edge cache (bounded, LRU).", "bytes",
            [query(f"sum by (instance) (casemesh_video_edge_cache_bytes{selector(JOB)})", "{{instance}}")], width=6))
        .with_panel(timeseries_panel(
            "Evictions and misses", "Per second: segments evicted from the edge cache, lookups that missed, and misses "
            "that joined an origin fetch of the same segment already in flight (coalesced: no fetch of their own).",
            "ops", refs([(rate("casemesh_video_edge_cache_evictions_total", selector(JOB)), "evictions"),
                         (f'sum(rate({edge_lookups}{{{JOB}, result="miss"}}[{RATE}]))', "misses"),
                         (rate("casemesh_video_edge_coalesced_misses_total", selector(JOB)), "coalesced")]), width=6))
        .with_panel(latency_panel(
            "Origin fetch duration", "Time the edge spends fetching a missed segment from the origin: the round trip, "
            "queueing on the shared edge-origin link and the transfer.",
            "casemesh_video_edge_origin_fetch_seconds", selector(JOB), (), "", width=6))
        .with_panel(timeseries_panel(
            "Origin link backlog", "Transfer time still booked ahead on the edge's link to the origin: how long a new "
            "miss queues before its bytes start (the WAN model, docs/case-studies/video.md).", "s",
            [query(f"max by (instance) (casemesh_video_edge_origin_link_backlog_seconds{selector(JOB)})", "{{instance}}")],
            width=12))
        .with_panel(timeseries_panel(
            "Playlist metadata cache hit ratio", "The playback service's video metadata cache (manifests' 60 s TTL): "
            "lookups served without a GetVideo to the catalogue, over all lookups.", "percentunit",
            [query(f'sum(rate({playback_lookups}{{{JOB}, result="hit"}}[{RATE}])) / sum(rate({playback_lookups}{{{JOB}}}[{RATE}]))',
                   "hit ratio")], width=12, min_value=0, max_value=1))
    )

    jobs = "casemesh_video_transcode_jobs_total"
    board = (
        board.with_row(Row("Transcoding (queue with leases)"))
        .with_panel(timeseries_panel(
            "Queue", "Jobs ready in the transcode queue, and jobs leased to workers (in flight).", "short",
            refs([(f"sum(casemesh_video_transcode_queue_depth{selector(JOB)})", "ready"),
                  (f"sum(casemesh_video_transcode_jobs_in_flight{selector(JOB)})", "in flight")]), width=6))
        .with_panel(timeseries_panel(
            "Jobs by outcome", "Transcode jobs per second that workers acknowledged (completed) or gave up on (failed, "
            "left for redelivery); redeliveries are deliveries after an expired lease; dead-lettered jobs were given up "
            "by the queue after max_attempts expired leases.", "ops",
            refs([(rate(jobs, selector(JOB), ("outcome",)), "{{outcome}}"),
                  (rate("casemesh_video_transcode_redeliveries_total", selector(JOB)), "redelivered"),
                  (rate("casemesh_video_transcode_dead_letters_total", selector(JOB)), "dead-lettered")]), width=6))
        .with_panel(latency_panel(
            "Transcode duration", "Time from leasing a transcode job to its acknowledgement (or failure): reading and "
            "hashing the raw object, the modelled encoding time, writing the renditions, publishing.",
            "casemesh_video_transcode_seconds", selector(JOB), (), "", width=6))
        .with_panel(stat_panel(
            "Failed jobs (range)", "Transcode jobs that failed in the selected time range.", "short",
            [query(f'sum(increase({jobs}{{{JOB}, outcome="failed"}}[$__range])) or vector(0)', instant=True)],
            width=6, height=8, steps=((1, "red"),)))
    )

    board = (
        board.with_row(Row("Views, search and uploads"))
        .with_panel(timeseries_panel(
            "View events by stage", "View starts per second by stage: buffered by the playback service, flushed to the "
            "catalogue (RecordViews), snapshotted into the visible view counts, dropped by the catalogue (unknown video).",
            "ops", [query(rate("casemesh_video_view_events_total", selector(JOB), ("stage",)), "{{stage}}")], width=6))
        .with_panel(timeseries_panel(
            "Views buffered", "View starts held by the playback service's buffer, not yet delivered to the catalogue.", "short",
            [query(f"sum(casemesh_video_views_buffered{selector(JOB)})", "buffered")], width=6))
        .with_panel(latency_panel(
            "Search index lag", "Time from publishing a video to it being searchable (seed 004: within a few seconds).",
            "casemesh_video_search_index_lag_seconds", selector(JOB), (), "", width=6))
        .with_panel(timeseries_panel(
            "Upload throughput", "Raw upload bytes per second made durable (fsynced) by the object store's UploadObject; "
            "the bytes go to it directly with a signed token, not through the upload service.", "Bps",
            [query(rate("casemesh_video_upload_bytes_total", selector(JOB)), "uploaded")], width=6))
    )

    calls = selector(JOB, VIDEO_SERVICES)
    board = (
        board.with_row(Row("gRPC per video service"))
        .with_panel(timeseries_panel(
            "Request rate", "Calls handled per second by each video service method.", "reqps",
            [query(rate("grpc_server_handled_total", calls, ("grpc_service", "grpc_method")), "{{grpc_service}}/{{grpc_method}}")],
            width=8))
        .with_panel(timeseries_panel(
            "Errors by code", "Failed calls per second (codes other than OK, NotFound, InvalidArgument, AlreadyExists).", "reqps",
            [query(rate("grpc_server_handled_total", selector(JOB, VIDEO_SERVICES, ERROR_CODES_MATCHER), ("grpc_method", "grpc_code")),
                   "{{grpc_method}} {{grpc_code}}")], width=8, stacked=True))
        .with_panel(timeseries_panel(
            "p99 duration", "99th percentile server handling time per method. Dots are exemplars.", "s",
            [query(quantile(0.99, "grpc_server_handling_seconds", calls, ("grpc_service", "grpc_method")),
                   "{{grpc_service}}/{{grpc_method}}", exemplar=True)], width=8))
    )
    return board
