"""Photo sharing: photo loads against their 200 ms SLO at the edge, how sizes are made (upload or first request), the
processing queue, the resizer and the feed.

Case study: shared/seeds/003_…, "Instagram Photo Storage" ("Load photo < 200ms", "Availability:
99.9%", thumbnails made after upload); contracts in protos/casemesh/photo/v1/,
docs/case-studies/photo-sharing.md. A photo load's last hop is the CDN edge's
``casemesh.video.v1.EdgeService/StreamSegments`` (the photo-sharing profile runs its own edge).

Service metrics, as the photo services expose them: ``casemesh_photo_renders_total{size,trigger}``,
``casemesh_photo_render_call_seconds{trigger}``, ``casemesh_photo_processing_backlog``,
``casemesh_photo_ready_lag_seconds``, ``casemesh_photo_uploads_total{result}`` (photo-media);
``casemesh_photo_render_seconds{size}``, ``casemesh_photo_rendered_bytes_total{size}`` (photo-resizer);
``casemesh_photo_feed_authors`` (photo-feed); and the edge's ``casemesh_video_edge_cache_lookups_total{result}``.
Only the gRPC histograms carry exemplars.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from .common import (
    ERROR_CODES_MATCHER, RATE, latency_panel, le, new_dashboard, quantile, query, query_variable, rate, refs, selector,
    stat_panel, timeseries_panel, within,
)

UID = "casemesh-photo-sharing"
EDGE = "casemesh.video.v1.EdgeService"
MEDIA = "casemesh.photo.v1.PhotoService"
#: Photo-load SLO (seed 003): 99% of photo loads within 200 ms. 0.2 is a bucket of the runtime's histograms.
PHOTO_LOAD_S = 0.2
PHOTO_LOAD_TARGET = 0.99
JOB = 'job=~"$job"'
PHOTO_SERVICES = r'grpc_service=~"casemesh\\.photo\\.v1\\..+"'
PHOTO_JOBS = r'{__name__=~"grpc_server_handled_total|grpc_client_handled_total", ' + PHOTO_SERVICES + "}"


def build() -> Dashboard:
    streams = selector(JOB, f'grpc_service="{EDGE}"', 'grpc_method="StreamSegments"')
    gets = selector(JOB, f'grpc_service="{MEDIA}"', 'grpc_method="GetPhoto"')
    board = (
        new_dashboard(UID, "casemesh / photo sharing",
                      "The photo-sharing case study: photo loads at the CDN edge against their 200 ms p99 SLO, sizes made "
                      "on upload or on first request (the A/B), the processing queue, the resizer's work and the feed.",
                      ["photo-sharing"])
        .with_variable(query_variable("job", "Job", f"label_values({PHOTO_JOBS}, job)"))
    )
    board = (
        board.with_row(Row("Photo load: 99% within 200 ms (edge StreamSegments, GetPhoto)"))
        .with_panel(latency_panel(
            "Edge stream of a photo size vs 200 ms",
            "Server handling time of EdgeService/StreamSegments (the modelled WAN and any origin fetch included); the "
            "dashed line is the photo-load threshold (seed 003: load photo < 200 ms), the SLO photo-load-server of "
            "photo-sharing.slo.yaml. Dots are exemplars: click one to open the load's trace in Jaeger.",
            "grpc_server_handling_seconds", streams, (), "", quantiles=(0.5, 0.99), width=12, threshold_s=PHOTO_LOAD_S))
        .with_panel(timeseries_panel(
            "Streams within 200 ms",
            f"Share of StreamSegments calls the edge completed within 200 ms (le=\"{le(PHOTO_LOAD_S)}\" bucket over the "
            f"count); the dashed line is the target {PHOTO_LOAD_TARGET:g}.",
            "percentunit", [query(within("grpc_server_handling_seconds", streams, PHOTO_LOAD_S), "within 200 ms")],
            width=6, threshold_line=(PHOTO_LOAD_TARGET, "red"), max_value=1))
        .with_panel(latency_panel(
            "GetPhoto duration", "Server handling time of PhotoService/GetPhoto: a lookup when the size exists, a render "
            "by photo-resizer (and its fsynced store) when it is made on first request. Dots are exemplars.",
            "grpc_server_handling_seconds", gets, (), "", quantiles=(0.5, 0.99), width=6, threshold_s=PHOTO_LOAD_S))
    )
    renders = "casemesh_photo_renders_total"
    lookups = "casemesh_video_edge_cache_lookups_total"
    board = (
        board.with_row(Row("Sizes: made on upload or on first request"))
        .with_panel(timeseries_panel(
            "Sizes made per second", "Photo sizes rendered, by trigger: upload (pre-generation, the seed's "
            "create-thumbnails queue) or first_request (a GetPhoto found the size missing).", "ops",
            [query(rate(renders, selector(JOB), ("trigger",)), "{{trigger}}")], width=6, stacked=True))
        .with_panel(latency_panel(
            "RenderSizes as photo-media waits", "Duration of the RenderSizes calls photo-media makes, by trigger: the "
            "render a first view waits for, or the queue's.", "casemesh_photo_render_call_seconds", selector(JOB),
            ("trigger",), "{{trigger}} p99", quantiles=(0.99,), width=6))
        .with_panel(timeseries_panel(
            "Edge hit ratio", "Photo-size lookups served from the edge cache over all lookups.", "percentunit",
            [query(f'sum(rate({lookups}{{{JOB}, result="hit"}}[{RATE}])) / sum(rate({lookups}{{{JOB}}}[{RATE}]))',
                   "hit ratio")], width=6, min_value=0, max_value=1))
        .with_panel(stat_panel(
            "Renders per upload", "Sizes made (either trigger) per completed upload over the selected range: 3 when every "
            "size is pre-generated, fewer when only viewed sizes are made.", "short",
            [query(f"sum(increase({renders}{{{JOB}}}[$__range])) / sum(increase(casemesh_photo_uploads_total{{{JOB}}}[$__range]))",
                   instant=True)], width=6, height=8))
    )
    board = (
        board.with_row(Row("Processing queue and resizer"))
        .with_panel(timeseries_panel(
            "Processing backlog", "Photos PROCESSING: uploaded and waiting for their pre-generated sizes (not yet listed).",
            "short", [query(f"sum(casemesh_photo_processing_backlog{selector(JOB)})", "photos")], width=6))
        .with_panel(latency_panel(
            "Time to READY", "From InitiatePhotoUpload to READY: the upload, the check and the processing queue.",
            "casemesh_photo_ready_lag_seconds", selector(JOB), (), "", width=6))
        .with_panel(latency_panel(
            "Pillow work per RenderSizes", "Decode, resample and encode in photo-resizer, by the largest size of the call.",
            "casemesh_photo_render_seconds", selector(JOB), ("size",), "{{size}} p99", quantiles=(0.99,), width=6))
        .with_panel(timeseries_panel(
            "Uploads and bytes", "Completed uploads per second by result, and JPEG bytes of sizes made per second.", "ops",
            refs([(rate("casemesh_photo_uploads_total", selector(JOB), ("result",)), "{{result}}"),
                  (rate("casemesh_photo_rendered_bytes_total", selector(JOB)), "rendered bytes/s")]), width=6))
    )
    calls = selector(JOB, PHOTO_SERVICES)
    board = (
        board.with_row(Row("Feed and gRPC per photo service"))
        .with_panel(timeseries_panel(
            "Authors merged per feed page", "Mean followees whose photos one GetPhotoFeed merged (fan-out on read).",
            "short", [query(f"sum(rate(casemesh_photo_feed_authors_sum{{{JOB}}}[{RATE}])) / "
                            f"sum(rate(casemesh_photo_feed_authors_count{{{JOB}}}[{RATE}]))", "authors per page")], width=6))
        .with_panel(timeseries_panel(
            "Request rate", "Calls handled per second by each photo method.", "reqps",
            [query(rate("grpc_server_handled_total", calls, ("grpc_service", "grpc_method")), "{{grpc_service}}/{{grpc_method}}")],
            width=6))
        .with_panel(timeseries_panel(
            "Errors by code", "Failed calls per second (codes other than OK, NotFound, InvalidArgument, AlreadyExists).",
            "reqps", [query(rate("grpc_server_handled_total", selector(JOB, PHOTO_SERVICES, ERROR_CODES_MATCHER),
                                 ("grpc_method", "grpc_code")), "{{grpc_method}} {{grpc_code}}")], width=6, stacked=True))
        .with_panel(timeseries_panel(
            "p99 duration", "99th percentile server handling time per method. Dots are exemplars.", "s",
            [query(quantile(0.99, "grpc_server_handling_seconds", calls, ("grpc_service", "grpc_method")),
                   "{{grpc_service}}/{{grpc_method}}", exemplar=True)], width=6))
    )
    return board
