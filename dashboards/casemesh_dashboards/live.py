"""Live streaming: parts delivered to viewers against the 1 s glass-to-glass SLO, the edge's mechanism (about one origin
request per part per edge, whatever the number of viewers), the origin's blocking requests and DVR, the ingest's
packaging, and the moderated chat.

Case study: shared/seeds/001_…, #12 "Live Streaming" ("LL-HLS/WebRTC, RTMP ingest, chat moderation, DVR", "1M
concurrent viewers", Twitch); contracts in protos/casemesh/live/v1/, SLOs in harness/profiles/live.slo.yaml.

Service metrics, as the live services expose them: ``casemesh_live_edge_delay_seconds`` (origin published → written to a
StreamParts viewer: the server-side twin of the glass-to-glass SLO), ``casemesh_live_edge_origin_requests_total{kind}``,
``casemesh_live_edge_coalesced_requests_total{kind}``, ``casemesh_live_edge_cache_lookups_total{result}``,
``casemesh_live_edge_cache_bytes``, ``casemesh_live_edge_viewers_open``, ``casemesh_live_edge_subscriptions_open``,
``casemesh_live_edge_resubscribes_total``, ``casemesh_live_edge_fanout_viewers``, ``casemesh_live_edge_parts_sent_total``,
``casemesh_live_edge_viewers_dropped_total{reason}`` (live-edge, services/live/edge/metrics.py);
``casemesh_live_origin_parts_appended_total{duplicate}``, ``casemesh_live_origin_part_bytes``,
``casemesh_live_origin_blocked_requests{kind}``, ``casemesh_live_origin_block_wait_seconds{kind}``,
``casemesh_live_origin_watchers``, ``casemesh_live_origin_watchers_dropped_total``, ``casemesh_live_origin_dvr_bytes``,
``casemesh_live_origin_streams{state}``, ``casemesh_live_origin_playlist_renders_total{cache}`` (live-origin,
services/live/origin/metrics.py); ``casemesh_live_ingest_chunks_received_total``,
``casemesh_live_ingest_chunk_bytes_received_total``, ``casemesh_live_ingest_parts_appended_total{duplicate}``,
``casemesh_live_ingest_publishers``, ``casemesh_live_ingest_publishes_ended_total{code}``,
``casemesh_live_ingest_packaging_delay_seconds``, ``casemesh_live_ingest_append_seconds``,
``casemesh_live_ingest_streams_created_total`` (live-ingest, services/live/ingest/metrics.py);
``casemesh_live_chat_messages_total{outcome}``, ``casemesh_live_chat_banned_words_matched_total``,
``casemesh_live_chat_moderation_seconds``, ``casemesh_live_chat_rooms`` (live-chat, services/live/chat/metrics.py); and
the chat gateways' ``casemesh_chat_push_delay_seconds{kind="group"}`` (a stream's room is a chat group). Only the gRPC
histograms carry exemplars.

``LiveIngestService/Publish``, ``LiveEdgeService/StreamParts`` and ``LiveOriginService/WatchParts`` are streams that last
as long as a broadcast, a viewer or an edge's subscription: their handling time is that length and their status how it
ended. They are left out of the gRPC duration and error panels. GetPlaylist, GetPart (edge) and FetchPlaylist, FetchPart
(origin) block until the part asked for is published (LL-HLS blocking reload and preload hint): their durations are
about one part target by design.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from .common import (
    ERROR_CODES_MATCHER, latency_panel, le, mean, new_dashboard, quantile, query, query_variable, rate, refs,
    selector, stat_panel, timeseries_panel, within,
)

UID = "casemesh-live"
EDGE = "casemesh.live.v1.LiveEdgeService"
CHAT = "casemesh.live.v1.LiveChatService"
EDGE_DELAY = "casemesh_live_edge_delay_seconds"
PACKAGING_DELAY = "casemesh_live_ingest_packaging_delay_seconds"
#: glass-to-glass-edge and glass-to-glass-packaging (live.slo.yaml): 95% of parts written to a viewer within 1 s of being
#: published, 95% of chunks appended in their part within 1 s of arriving; a bucket of both histograms.
GLASS_S = 1.0
GLASS_TARGET = 0.95
#: time-to-first-part-server: 95% of edge GetPlaylist calls within 1 s (a bucket of grpc_server_handling_seconds).
JOIN_S = 1.0
JOIN_TARGET = 0.95
#: chat-delivery-server: 99% of room (group) messages queued to each chatter's session within 500 ms of being stored.
CHAT_DELIVERY_S = 0.5
CHAT_DELIVERY_TARGET = 0.99
#: chat-availability-server: 99.9% of PostMessage answered OK (delivered or blocked) or RESOURCE_EXHAUSTED (rate limit).
CHAT_ANSWERED_TARGET = 0.999
#: grpc_code in the Go spelling (services/runtime/metrics.py).
CHAT_ANSWERED_CODES = 'grpc_code=~"OK|ResourceExhausted"'
JOB = 'job=~"$job"'
LIVE_SERVICES = r'grpc_service=~"casemesh\\.live\\.v1\\..+"'
LIVE_JOBS = r'{__name__="grpc_server_handled_total", ' + LIVE_SERVICES + "}"
#: The streams' handling time is a broadcast's, a viewer's or a subscription's length, their status how it ended.
NOT_STREAMS = 'grpc_method!~"Publish|StreamParts|WatchParts"'


def build() -> Dashboard:
    jobs = selector(JOB)
    playlists = selector(JOB, f'grpc_service="{EDGE}"', 'grpc_method="GetPlaylist"')
    posts = selector(JOB, f'grpc_service="{CHAT}"', 'grpc_method="PostMessage"')
    posts_answered = selector(JOB, f'grpc_service="{CHAT}"', 'grpc_method="PostMessage"', CHAT_ANSWERED_CODES)
    room_pushes = selector('kind="group"')
    board = (
        new_dashboard(UID, "casemesh / live streaming",
                      "The live-streaming case study (LL-HLS): parts written to viewers against the glass-to-glass SLO "
                      "(95% within 1 s of being published), the edge's coalescing, cache and shared origin "
                      "subscriptions (about one origin request per part per edge, whatever the number of viewers), the "
                      "origin's blocking requests, WatchParts and DVR window, the ingest's packaging, and the "
                      "moderated chat.",
                      ["live"])
        .with_variable(query_variable("job", "Job", f"label_values({LIVE_JOBS}, job)"))
    )
    board = (
        board.with_row(Row("Glass to glass: 95% of parts written to a viewer within 1 s of being published"))
        .with_panel(latency_panel(
            "Edge delivery delay vs 1 s",
            "From the origin publishing a part (Part.published_unix_ms) to live-edge writing it to a StreamParts viewer "
            "(casemesh_live_edge_delay_seconds, once per part per viewer, every edge; the WAN model's half round trip "
            "and transfer time included). The dashed line is the glass-to-glass threshold, the SLO glass-to-glass-edge "
            "of live.slo.yaml (the server-side twin of glass-to-glass: the chunk's wait for its part and the player's "
            "hold-back are not in it).", EDGE_DELAY, jobs, (), "", width=8, threshold_s=GLASS_S))
        .with_panel(timeseries_panel(
            "Within 1 s",
            f"Share of parts written to a viewer within 1 s of being published (le=\"{le(GLASS_S)}\" bucket over the "
            f"count of casemesh_live_edge_delay_seconds, SLO glass-to-glass-edge), and of chunks appended to the origin "
            f"in their part within 1 s of reaching the ingest (casemesh_live_ingest_packaging_delay_seconds, SLO "
            f"glass-to-glass-packaging); the dashed line is the target {GLASS_TARGET:g}.", "percentunit",
            refs([(within(EDGE_DELAY, jobs, GLASS_S), "edge delivery"),
                  (within(PACKAGING_DELAY, jobs, GLASS_S), "packaging")]),
            width=8, threshold_line=(GLASS_TARGET, "red"), max_value=1))
        .with_panel(latency_panel(
            "Packaging delay",
            "From a chunk's arrival at live-ingest to the origin's acknowledgement of the part that carries it "
            "(casemesh_live_ingest_packaging_delay_seconds, once per chunk): the wait for the part to fill up (up to "
            "one part target, part_target_ms, 200 ms by default), one chunk more for a part that may end its segment, "
            "and the AppendPart (services/live/ingest/packager.py). The dashed line is the 1 s threshold of "
            "glass-to-glass-packaging.", PACKAGING_DELAY, jobs, (), "", width=8, threshold_s=GLASS_S))
        .with_panel(latency_panel(
            "AppendPart from the ingest",
            "One LiveOriginService/AppendPart as live-ingest sees it, its single retry (after UNAVAILABLE or "
            "DEADLINE_EXCEEDED) included (casemesh_live_ingest_append_seconds): the origin's share of the packaging "
            "delay.", "casemesh_live_ingest_append_seconds", jobs, (), "", quantiles=(0.5, 0.99), width=8))
        .with_panel(timeseries_panel(
            "Joins: GetPlaylist within 1 s",
            f"Share of LiveEdgeService/GetPlaylist calls handled within 1 s (le=\"{le(JOIN_S)}\" bucket of "
            f"grpc_server_handling_seconds over the count), a join's first call: the SLO time-to-first-part-server of "
            f"live.slo.yaml (twin of time-to-first-part); blocking reloads are in it, and wait about a part target. "
            f"The dashed line is the target {JOIN_TARGET:g}.", "percentunit",
            [query(within("grpc_server_handling_seconds", playlists, JOIN_S), "GetPlaylist within 1 s")],
            width=8, threshold_line=(JOIN_TARGET, "red"), max_value=1))
        .with_panel(stat_panel(
            "Edge delivery within 1 s over the range",
            "Share of parts written to a viewer within 1 s of being published over the selected time range, against "
            f"{GLASS_TARGET:g} (glass-to-glass-edge).", "percentunit",
            [query(within(EDGE_DELAY, jobs, GLASS_S, window="$__range"), instant=True)],
            width=4, height=8, base="red", steps=((GLASS_TARGET, "green"),), decimals=3))
        .with_panel(stat_panel(
            "Packaging within 1 s over the range",
            "Share of chunks appended to the origin in their part within 1 s of arriving over the selected time range, "
            f"against {GLASS_TARGET:g} (glass-to-glass-packaging).", "percentunit",
            [query(within(PACKAGING_DELAY, jobs, GLASS_S, window="$__range"), instant=True)],
            width=4, height=8, base="red", steps=((GLASS_TARGET, "green"),), decimals=3))
    )
    board = (
        board.with_row(Row("Edge: about one origin request per part per edge, whatever the number of viewers"))
        .with_panel(timeseries_panel(
            "Origin requests vs parts sent",
            "Calls live-edge made to the origin per second by kind (playlist, part, segment, describe; watch: one per "
            "WatchParts subscription opened, reopenings included), against the parts it wrote to StreamParts viewers. "
            "With coalescing, the cache and one shared subscription per stream the first grows with parts and edges, "
            "the second with viewers: the mechanism (services/live/edge/node.py; A/B switches coalesce_requests and "
            "cache_bytes).", "ops",
            refs([(rate("casemesh_live_edge_origin_requests_total", jobs, ("kind",)), "origin {{kind}}"),
                  (rate("casemesh_live_edge_parts_sent_total", jobs), "parts sent to viewers")]), width=8))
        .with_panel(timeseries_panel(
            "Coalesced requests",
            "Viewer requests per second that joined an origin call already in flight instead of making one, by kind: "
            "players blocked on the same playlist reload or the same preload-hint part share one call "
            "(runtime/coalescing.py SingleFlight).", "ops",
            [query(rate("casemesh_live_edge_coalesced_requests_total", jobs, ("kind",)), "{{kind}}")],
            width=8, stacked=True))
        .with_panel(timeseries_panel(
            "Cache lookups",
            "Part and segment cache lookups per second by result (hit, miss); published parts and complete segments "
            "never change, so they need no TTL (video/edge/cache.py, an LRU of cache_bytes). Parts brought by the "
            "subscription fill it: later GetPart calls and DVR viewers are hits.", "ops",
            [query(rate("casemesh_live_edge_cache_lookups_total", jobs, ("result",)), "{{result}}")],
            width=8, stacked=True))
        .with_panel(timeseries_panel(
            "Viewers and subscriptions",
            "StreamParts viewers open, and origin WatchParts subscriptions held (one per stream with viewers on the "
            "edge, lingering subscription_grace_ms after the last one left): many viewers, one subscription.", "short",
            refs([(f"sum(casemesh_live_edge_viewers_open{jobs})", "viewers"),
                  (f"sum(casemesh_live_edge_subscriptions_open{jobs})", "subscriptions")]), width=6))
        .with_panel(timeseries_panel(
            "Fan-out width",
            "Live StreamParts viewers each part received from a subscription was written to: the mean and the 99th "
            "percentile (casemesh_live_edge_fanout_viewers; 0 while a subscription lingers without viewers).", "short",
            refs([(mean("casemesh_live_edge_fanout_viewers", jobs), "mean"),
                  (quantile(0.99, "casemesh_live_edge_fanout_viewers", jobs), "p99")]), width=6))
        .with_panel(timeseries_panel(
            "Viewers dropped and resubscribes",
            "StreamParts streams the edge ended per second, by reason: slow (more than 64 parts behind: "
            "RESOURCE_EXHAUSTED, the player resumes with from), origin_lost (the subscription could not be reopened: "
            "UNAVAILABLE), not_found (an unknown stream), shutdown; and subscriptions reopened after a failure (from "
            "the last part received, so viewers see no gap).", "ops",
            refs([(rate("casemesh_live_edge_viewers_dropped_total", jobs, ("reason",)), "dropped {{reason}}"),
                  (rate("casemesh_live_edge_resubscribes_total", jobs), "resubscribes")]), width=6))
        .with_panel(timeseries_panel(
            "Cache size", "Bytes held by the edge's part and segment cache (at most cache_bytes, 256 MiB by default).",
            "bytes", [query(f"sum(casemesh_live_edge_cache_bytes{jobs})", "cache")], width=6))
    )
    board = (
        board.with_row(Row("Origin: parts published, blocking requests, WatchParts, DVR"))
        .with_panel(timeseries_panel(
            "Parts appended",
            "AppendPart calls per second at the origin: parts published (duplicate=no), or an identical retry of the "
            "last part answered without storing it again (duplicate=yes).", "ops",
            [query(rate("casemesh_live_origin_parts_appended_total", jobs, ("duplicate",)), "duplicate={{duplicate}}")],
            width=6, stacked=True))
        .with_panel(timeseries_panel(
            "Part size", "Size of the parts published, mean and 99th percentile (casemesh_live_origin_part_bytes; a part "
            "is at most a part target of media).", "bytes",
            refs([(mean("casemesh_live_origin_part_bytes", jobs), "mean"),
                  (quantile(0.99, "casemesh_live_origin_part_bytes", jobs), "p99")]), width=6))
        .with_panel(timeseries_panel(
            "Blocked requests",
            "Requests waiting at the origin for a part not yet published, by kind: playlist (blocking playlist reload, "
            "_HLS_msn/_HLS_part, RFC 8216bis §6.2.5.2) and part (preload hint). With coalescing at the edges these are "
            "about one per edge per stream.", "short",
            [query(f"sum by (kind) (casemesh_live_origin_blocked_requests{jobs})", "{{kind}}")], width=6))
        .with_panel(latency_panel(
            "Block wait",
            "How long each blocked origin request waited, until its part was published (or the stream ended, its "
            "limit of the parts to wait for + 3 part targets passed, or its caller gave up), by kind: about one part "
            "target by design.", "casemesh_live_origin_block_wait_seconds", jobs, ("kind",), "{{kind}}",
            quantiles=(0.5, 0.99), width=6))
        .with_panel(timeseries_panel(
            "WatchParts watchers",
            "WatchParts streams open at the origin (the edges' subscriptions: one per stream per edge), and watchers "
            "dropped per second for falling more than 256 parts behind (RESOURCE_EXHAUSTED; the edge reopens from "
            "its last part).", "short",
            refs([(f"sum(casemesh_live_origin_watchers{jobs})", "watchers"),
                  (rate("casemesh_live_origin_watchers_dropped_total", jobs), "dropped/s")]), width=6))
        .with_panel(timeseries_panel(
            "DVR bytes", "Media bytes held in the DVR windows of every stream (dvr_window_s of media per stream, whole "
            "segments; about the window times the bitrate).", "bytes",
            [query(f"sum(casemesh_live_origin_dvr_bytes{jobs})", "DVR")], width=6))
        .with_panel(timeseries_panel(
            "Streams by state", "Streams held by the origin by state: waiting (registered, no part yet), live, ended "
            "(kept for their DVR window until max_streams forces the oldest out).", "short",
            [query(f"sum by (state) (casemesh_live_origin_streams{jobs})", "{{state}}")], width=6, stacked=True))
        .with_panel(timeseries_panel(
            "Playlist renders",
            "Playlists asked for at the origin per second: rendered (cache=miss) or served from the per-stream cache "
            "of the last rendering (cache=hit, the same last part).", "ops",
            [query(rate("casemesh_live_origin_playlist_renders_total", jobs, ("cache",)), "{{cache}}")],
            width=6, stacked=True))
    )
    board = (
        board.with_row(Row("Ingest: chunks in, parts out"))
        .with_panel(timeseries_panel(
            "Chunks and parts",
            "Media chunks received from broadcasters per second (Publish), and the parts live-ingest appended to the "
            "origin: accepted (duplicate=no) or a retry the origin had applied already (duplicate=yes).", "ops",
            refs([(rate("casemesh_live_ingest_chunks_received_total", jobs), "chunks"),
                  (rate("casemesh_live_ingest_parts_appended_total", jobs, ("duplicate",)), "parts duplicate={{duplicate}}")]),
            width=6))
        .with_panel(timeseries_panel(
            "Bytes received", "Bytes of media chunks received from broadcasters per second: the ingest bitrate of every "
            "stream.", "Bps", [query(rate("casemesh_live_ingest_chunk_bytes_received_total", jobs), "bytes/s")],
            width=6))
        .with_panel(timeseries_panel(
            "Publishers", "Publish connections open (one per broadcasting stream; at most max_publishers per ingest "
            "server).", "short", [query(f"sum(casemesh_live_ingest_publishers{jobs})", "publishers")], width=4))
        .with_panel(timeseries_panel(
            "Streams created", "CreateStream successes per second (registered at the origin, chat room open).", "ops",
            [query(rate("casemesh_live_ingest_streams_created_total", jobs), "created")], width=4))
        .with_panel(timeseries_panel(
            "Publishes ended by code",
            "Publish connections ended per second by status code: OK (end, or a half-close: the broadcaster resumes), "
            "ABORTED (another connection of the stream took over: a reconnecting broadcaster), UNAVAILABLE, "
            "FAILED_PRECONDITION, DEADLINE_EXCEEDED (no start frame), ...", "ops",
            [query(rate("casemesh_live_ingest_publishes_ended_total", jobs, ("code",)), "{{code}}")],
            width=4, stacked=True))
    )
    board = (
        board.with_row(Row("Chat: moderated rooms; 99% of room messages pushed within 500 ms"))
        .with_panel(timeseries_panel(
            "Messages by outcome",
            "LiveChatService/PostMessage calls per second by outcome: delivered (sent to the room's chat group), "
            "blocked (a banned word: answered OK, sent to nobody), rate_limited (RESOURCE_EXHAUSTED, rate_limit: "
            "Twitch's 20 per 30 s by default), refused (any other error: a bad request, no room, not a member, "
            "chat-messages unreachable).", "ops",
            [query(rate("casemesh_live_chat_messages_total", jobs, ("outcome",)), "{{outcome}}")],
            width=6, stacked=True))
        .with_panel(timeseries_panel(
            "Banned words matched", "Banned words found per second (each distinct word of a blocked message once; one "
            "Aho-Corasick pass per message, services/live/chat/moderation.py).", "ops",
            [query(rate("casemesh_live_chat_banned_words_matched_total", jobs), "matched")], width=6))
        .with_panel(latency_panel(
            "Moderation time", "The banned-words scan and the rate-limit check of one message "
            "(casemesh_live_chat_moderation_seconds): microseconds, nothing of the chat-delivery budget.",
            "casemesh_live_chat_moderation_seconds", jobs, (), "", quantiles=(0.5, 0.99), width=6))
        .with_panel(timeseries_panel(
            "Rooms open", "Chat rooms live-chat holds (one per stream created: a chat group of chat-messages).", "short",
            [query(f"sum(casemesh_live_chat_rooms{jobs})", "rooms")], width=6))
        .with_panel(timeseries_panel(
            "Room messages pushed within 500 ms",
            f"Share of group messages the chat gateways queued to each online member's session within 500 ms of "
            f"chat-messages storing them (le=\"{le(CHAT_DELIVERY_S)}\" bucket of casemesh_chat_push_delay_seconds"
            f"{{kind=\"group\"}} over the count): the SLO chat-delivery-server of live.slo.yaml. Every chat group "
            f"counts, not only stream rooms, and the Job variable does not apply (the gateways are chat jobs). The "
            f"dashed line is the target {CHAT_DELIVERY_TARGET:g}.", "percentunit",
            [query(within("casemesh_chat_push_delay_seconds", room_pushes, CHAT_DELIVERY_S), "group within 500 ms")],
            width=12, threshold_line=(CHAT_DELIVERY_TARGET, "red"), max_value=1))
        .with_panel(timeseries_panel(
            "PostMessage answered",
            f"PostMessage calls answered OK (delivered or blocked) or ResourceExhausted (the rate limit, a spammer's "
            f"expected answer) over all of them: the SLO chat-availability-server; the dashed line is the target "
            f"{CHAT_ANSWERED_TARGET:g}.", "percentunit",
            [query(f"{rate('grpc_server_handled_total', posts_answered)} / {rate('grpc_server_handled_total', posts)}",
                   "answered")], width=12, threshold_line=(CHAT_ANSWERED_TARGET, "red"), max_value=1))
    )
    calls = selector(JOB, LIVE_SERVICES)
    board = (
        board.with_row(Row("gRPC per live service"))
        .with_panel(timeseries_panel(
            "Request rate", "Calls handled per second by each live method. Publish, StreamParts and WatchParts count "
            "streams when they end.", "reqps",
            [query(rate("grpc_server_handled_total", calls, ("grpc_service", "grpc_method")), "{{grpc_service}}/{{grpc_method}}")],
            width=8))
        .with_panel(timeseries_panel(
            "Errors by code", "Failed calls per second (codes other than OK, NotFound, InvalidArgument, AlreadyExists). "
            "Publish, StreamParts and WatchParts are left out: their status is how a broadcast, a viewer or a "
            "subscription ended (see Publishes ended by code, Viewers dropped, WatchParts watchers).", "reqps",
            [query(rate("grpc_server_handled_total", selector(JOB, LIVE_SERVICES, NOT_STREAMS, ERROR_CODES_MATCHER),
                        ("grpc_method", "grpc_code")), "{{grpc_method}} {{grpc_code}}")], width=8, stacked=True))
        .with_panel(timeseries_panel(
            "p99 duration", "99th percentile server handling time per method, Publish, StreamParts and WatchParts left "
            "out (a stream's length, not a request's). GetPlaylist, GetPart (edge) and FetchPlaylist, FetchPart "
            "(origin) block until the part asked for is published: about a part target by design. Dots are "
            "exemplars.", "s",
            [query(quantile(0.99, "grpc_server_handling_seconds", selector(JOB, LIVE_SERVICES, NOT_STREAMS),
                            ("grpc_service", "grpc_method")), "{{grpc_service}}/{{grpc_method}}", exemplar=True)], width=8))
    )
    return board
