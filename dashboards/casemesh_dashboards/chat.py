"""Chat: delivery against its 300 ms (one-to-one) and 500 ms (group) SLOs, the connections and presence, the fan-out
through the router to the gateways, the message store.

Case study: shared/seeds/000_…, "Chat System (like WhatsApp)" ("1:1 messaging with delivery
receipts", "Group chats (up to 500 members)", "Online/offline status", "Message history and sync
across devices"; "Real-time Messaging": store, then push through the recipient's connection server;
"Message Delivery Flow": sent → delivered → read); contracts in protos/casemesh/chat/v1/,
docs/case-studies/chat.md, SLOs in harness/profiles/chat.slo.yaml.

Service metrics, as the chat services expose them: ``casemesh_chat_push_delay_seconds{gateway,kind}``
(stored → queued to a session, live messages; ``kind`` dm or group: the server-side twins of the
delivery SLOs), ``casemesh_chat_sessions_open{gateway}``, ``casemesh_chat_sessions_ended_total{gateway,reason}``,
``casemesh_chat_pushes_total{gateway,kind,outcome}``, ``casemesh_chat_gap_fills_total{gateway,outcome}``,
``casemesh_chat_duplicates_dropped_total{gateway}``, ``casemesh_chat_offline_messages_pushed_total{gateway}``
(the gateways, services/chat/gateway/metrics.py); ``casemesh_chat_presence_sessions``,
``casemesh_chat_presence_expiries_total``, ``casemesh_chat_presence_dropped_total{reason}``,
``casemesh_chat_presence_replaced_total``, ``casemesh_chat_deliver_calls_total{gateway,outcome}``,
``casemesh_chat_deliver_recipients_total{gateway}``, ``casemesh_chat_route_offline_users_total`` (chat-router);
``casemesh_chat_messages_stored_total{kind}``, ``casemesh_chat_message_log_commit_batch``,
``casemesh_chat_offline_messages_total``, ``casemesh_chat_sync_inbox_messages`` (chat-messages),
``casemesh_chat_fanout_width``, ``casemesh_chat_route_recipients_total{item,outcome}``,
``casemesh_chat_route_delay_seconds``, ``casemesh_chat_route_pending`` (chat-messages' fan-out).
Only the gRPC histograms carry exemplars.

``ChatGatewayService/Connect`` is a bidi stream that lasts as long as the device is online: its
handling time is the session's length and its status how the session ended (ABORTED when replaced,
DEADLINE_EXCEEDED after missed heartbeats, ...). It is left out of the gRPC duration and error panels;
the Connections row shows sessions and their endings by reason instead.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from .common import (
    ERROR_CODES_MATCHER, RATE, latency_panel, le, mean, new_dashboard, quantile, query, query_variable, rate, refs,
    selector, stat_panel, timeseries_panel, within,
)

UID = "casemesh-chat"
MESSAGES = "casemesh.chat.v1.MessageService"
PUSH_DELAY = "casemesh_chat_push_delay_seconds"
#: Delivery SLOs (chat.slo.yaml, delivery-server and group-delivery-server): 99% of live one-to-one messages queued to
#: the recipient's session within 300 ms of being stored, group messages within 500 ms; both are buckets of PUSH_DELAY.
DM_DELIVERY_S = 0.3
GROUP_DELIVERY_S = 0.5
DELIVERY_TARGET = 0.99
#: send-availability(-server): 99.9% of SendMessage calls answered OK.
SEND_TARGET = 0.999
JOB = 'job=~"$job"'
CHAT_SERVICES = r'grpc_service=~"casemesh\\.chat\\.v1\\..+"'
CHAT_JOBS = r'{__name__="grpc_server_handled_total", ' + CHAT_SERVICES + "}"
#: The Connect stream's handling time is a session's length, its status how the session ended: not in duration or errors.
NOT_CONNECT = 'grpc_method!="Connect"'


def build() -> Dashboard:
    dm = selector(JOB, 'kind="dm"')
    group = selector(JOB, 'kind="group"')
    sends = selector(JOB, f'grpc_service="{MESSAGES}"', 'grpc_method="SendMessage"')
    sends_ok = selector(JOB, f'grpc_service="{MESSAGES}"', 'grpc_method="SendMessage"', 'grpc_code="OK"')
    board = (
        new_dashboard(UID, "casemesh / chat",
                      "The chat case study: messages pushed to online devices against the delivery SLOs (one-to-one "
                      "within 300 ms, groups within 500 ms, p99) and sends stored (99.9%), the Connect sessions and "
                      "presence, the fan-out from chat-messages through chat-router to the gateways, and the message log.",
                      ["chat"])
        .with_variable(query_variable("job", "Job", f"label_values({CHAT_JOBS}, job)"))
    )
    board = (
        board.with_row(Row("Delivery: 99% of 1:1 messages within 300 ms, of group messages within 500 ms; 99.9% of sends OK"))
        .with_panel(latency_panel(
            "1:1 push delay vs 300 ms",
            "From chat-messages storing a one-to-one message to the recipient's gateway queueing it to each connected "
            "session (casemesh_chat_push_delay_seconds{kind=\"dm\"}, live messages only, every gateway); the dashed line "
            "is the delivery threshold, the SLO delivery-server of chat.slo.yaml.",
            PUSH_DELAY, dm, (), "", quantiles=(0.5, 0.99), width=8, threshold_s=DM_DELIVERY_S))
        .with_panel(latency_panel(
            "Group push delay vs 500 ms",
            "The same for group messages, once per online member's session (kind=\"group\"; seed 000: groups of up to 500 "
            "members); the dashed line is the group-delivery threshold, the SLO group-delivery-server.",
            PUSH_DELAY, group, (), "", quantiles=(0.5, 0.99), width=8, threshold_s=GROUP_DELIVERY_S))
        .with_panel(timeseries_panel(
            "Pushed within the bound",
            f"Share of live pushes queued within their bound: one-to-one within 300 ms (le=\"{le(DM_DELIVERY_S)}\" bucket "
            f"over the count), group within 500 ms (le=\"{le(GROUP_DELIVERY_S)}\"); the dashed line is the target "
            f"{DELIVERY_TARGET:g}.", "percentunit",
            refs([(within(PUSH_DELAY, dm, DM_DELIVERY_S), "1:1 within 300 ms"),
                  (within(PUSH_DELAY, group, GROUP_DELIVERY_S), "group within 500 ms")]),
            width=8, threshold_line=(DELIVERY_TARGET, "red"), max_value=1))
        .with_panel(latency_panel(
            "SendMessage duration",
            "Server handling time of MessageService/SendMessage as the gateways call it: validation and the wait for the "
            "message log's group commit (fsync); the sender's \"sent\" receipt follows its answer. Dots are exemplars: "
            "click one to open the send's trace in Jaeger.",
            "grpc_server_handling_seconds", sends, (), "", quantiles=(0.5, 0.99), width=8))
        .with_panel(timeseries_panel(
            "SendMessage OK ratio",
            f"SendMessage calls answered OK over all of them (the SLO send-availability-server); the dashed line is the "
            f"target {SEND_TARGET:g}. Sends a gateway refused before calling chat-messages are not in it.", "percentunit",
            [query(f"{rate('grpc_server_handled_total', sends_ok)} / {rate('grpc_server_handled_total', sends)}", "OK ratio")],
            width=8, threshold_line=(SEND_TARGET, "red"), max_value=1))
        .with_panel(stat_panel(
            "1:1 within 300 ms over the range",
            "Share of live one-to-one pushes queued within 300 ms over the selected time range, against 0.99.",
            "percentunit", [query(within(PUSH_DELAY, dm, DM_DELIVERY_S, window="$__range"), instant=True)],
            width=4, height=8, base="red", steps=((DELIVERY_TARGET, "green"),), decimals=2))
        .with_panel(stat_panel(
            "Group within 500 ms over the range",
            "Share of live group pushes queued within 500 ms over the selected time range, against 0.99.",
            "percentunit", [query(within(PUSH_DELAY, group, GROUP_DELIVERY_S, window="$__range"), instant=True)],
            width=4, height=8, base="red", steps=((DELIVERY_TARGET, "green"),), decimals=2))
    )
    board = (
        board.with_row(Row("Connections and presence"))
        .with_panel(timeseries_panel(
            "Sessions open", "Connect sessions each gateway holds (one per connected device; seed 000: every user keeps "
            "a connection), and the sessions chat-router knows; the two differ while registrations, unregistrations and "
            "refreshes are on their way.", "short",
            refs([(f"sum by (gateway) (casemesh_chat_sessions_open{selector(JOB)})", "{{gateway}}"),
                  (f"sum(casemesh_chat_presence_sessions{selector(JOB)})", "chat-router")]), width=6))
        .with_panel(timeseries_panel(
            "Sessions ended by reason", "Sessions ended per second by gateway and reason: client_closed, heartbeat_timeout, "
            "replaced (the device connected again), slow_consumer (outbound queue full), shutdown, cancelled, "
            "router_unavailable, sync_failed, gap_fill_failed, bad_frame.", "ops",
            [query(rate("casemesh_chat_sessions_ended_total", selector(JOB), ("gateway", "reason")), "{{gateway}} {{reason}}")],
            width=6, stacked=True))
        .with_panel(timeseries_panel(
            "Presence churn at the router", "Sessions chat-router dropped per second: expired (their gateway stopped "
            "refreshing them: a gateway died), dropped by reason (missing: a Deliver found no such session; refresh: "
            "its gateway's refresh left it out), and sessions replaced by a newer session of the same device.", "ops",
            refs([(rate("casemesh_chat_presence_expiries_total", selector(JOB)), "expired"),
                  (rate("casemesh_chat_presence_dropped_total", selector(JOB), ("reason",)), "dropped {{reason}}"),
                  (rate("casemesh_chat_presence_replaced_total", selector(JOB)), "replaced")]), width=6))
        .with_panel(timeseries_panel(
            "Offline queue", "Messages handed out by SyncInbox at connect (the offline queue, chat-messages), messages of "
            "the offline queue the gateways pushed to sessions (including those paged by gap fills), and route "
            "recipients with no session (chat-router), per second.", "ops",
            refs([(rate("casemesh_chat_offline_messages_total", selector(JOB)), "SyncInbox handed out"),
                  (rate("casemesh_chat_offline_messages_pushed_total", selector(JOB), ("gateway",)), "pushed {{gateway}}"),
                  (rate("casemesh_chat_route_offline_users_total", selector(JOB)), "recipients offline")]), width=6))
    )
    board = (
        board.with_row(Row("Fan-out and routing"))
        .with_panel(timeseries_panel(
            "Fan-out width", "Mean recipients (conversation members) per routed message, and recipients per second: the "
            "write amplification of groups.", "short",
            refs([(mean("casemesh_chat_fanout_width", selector(JOB)), "mean width"),
                  (f"sum(rate(casemesh_chat_fanout_width_sum{selector(JOB)}[{RATE}]))", "recipients/s")]), width=6))
        .with_panel(timeseries_panel(
            "Route recipients by outcome", "Recipients of routed items per second by item (message, receipt) and outcome: "
            "routed (pushed to a session), offline (no session), failed (the Route call failed), dropped (the fan-out "
            "queue was full). All but routed get their messages from the offline queue.", "ops",
            [query(rate("casemesh_chat_route_recipients_total", selector(JOB), ("item", "outcome")), "{{item}} {{outcome}}")],
            width=6, stacked=True))
        .with_panel(latency_panel(
            "Route delay", "From a message's commit to the answer of its PresenceService/Route call (queued, routed, pushed "
            "to every gateway): chat-messages' and chat-router's share of the delivery bound.",
            "casemesh_chat_route_delay_seconds", selector(JOB), (), "", width=6))
        .with_panel(timeseries_panel(
            "Route pending", "Items (messages and receipts) queued in chat-messages for routing.", "short",
            [query(f"sum(casemesh_chat_route_pending{selector(JOB)})", "pending")], width=6))
        .with_panel(timeseries_panel(
            "Deliver calls per gateway", "chat-router's ChatDeliveryService/Deliver calls per second by gateway and outcome "
            "(ok, failed: the gateway's users count as offline), and the sessions pushed to.", "ops",
            refs([(rate("casemesh_chat_deliver_calls_total", selector(JOB), ("gateway", "outcome")), "calls {{gateway}} {{outcome}}"),
                  (rate("casemesh_chat_deliver_recipients_total", selector(JOB), ("gateway",)), "sessions {{gateway}}")]),
            width=6))
        .with_panel(timeseries_panel(
            "Pushes by kind and outcome", "Deliver pushes the gateways handled per second, by kind (message, receipt, "
            "replaced) and outcome: pushed (queued to the client), held (ahead of a gap, or during the initial sync), "
            "duplicate (dropped), missing (no such session here).", "ops",
            [query(rate("casemesh_chat_pushes_total", selector(JOB), ("kind", "outcome")), "{{kind}} {{outcome}}")],
            width=6, stacked=True))
        .with_panel(timeseries_panel(
            "Gap fills and duplicates", "ListMessages calls the gateways made per second to fill a gap in a session's "
            "conversation (or page a long offline queue), by outcome (ok, failed, abandoned), and messages dropped because "
            "the session had them already.", "ops",
            refs([(rate("casemesh_chat_gap_fills_total", selector(JOB), ("outcome",)), "fill {{outcome}}"),
                  (rate("casemesh_chat_duplicates_dropped_total", selector(JOB)), "duplicates dropped")]), width=6))
        .with_panel(timeseries_panel(
            "Messages per SyncInbox", "Mean messages in one SyncInbox answer (a connecting session's first page of its "
            "offline queue).", "short", [query(mean("casemesh_chat_sync_inbox_messages", selector(JOB)), "mean")], width=6))
    )
    batch = "casemesh_chat_message_log_commit_batch"
    board = (
        board.with_row(Row("Message log"))
        .with_panel(timeseries_panel(
            "Messages stored", "Messages committed to the durable message log per second by conversation kind (dm, group), "
            "and the group commits (fsyncs) that carried them.", "ops",
            refs([(rate("casemesh_chat_messages_stored_total", selector(JOB), ("kind",)), "{{kind}}"),
                  (rate(f"{batch}_count", selector(JOB)), "commits")]), width=12))
        .with_panel(timeseries_panel(
            "Group commit batch", "Messages per group commit (one fsync) of the message log: the mean and the 99th "
            "percentile. Large batches under load are the group commit at work.", "short",
            refs([(mean(batch, selector(JOB)), "mean"), (quantile(0.99, batch, selector(JOB)), "p99")]), width=12))
    )
    calls = selector(JOB, CHAT_SERVICES)
    board = (
        board.with_row(Row("gRPC per chat service"))
        .with_panel(timeseries_panel(
            "Request rate", "Calls handled per second by each chat method. ChatGatewayService/Connect counts sessions "
            "when they end.", "reqps",
            [query(rate("grpc_server_handled_total", calls, ("grpc_service", "grpc_method")), "{{grpc_service}}/{{grpc_method}}")],
            width=8))
        .with_panel(timeseries_panel(
            "Errors by code", "Failed calls per second (codes other than OK, NotFound, InvalidArgument, AlreadyExists). "
            "Connect is left out: its status is how a session ended (see Sessions ended by reason).", "reqps",
            [query(rate("grpc_server_handled_total", selector(JOB, CHAT_SERVICES, NOT_CONNECT, ERROR_CODES_MATCHER),
                        ("grpc_method", "grpc_code")), "{{grpc_method}} {{grpc_code}}")], width=8, stacked=True))
        .with_panel(timeseries_panel(
            "p99 duration", "99th percentile server handling time per method, Connect left out (a session's length, not a "
            "request's). Dots are exemplars.", "s",
            [query(quantile(0.99, "grpc_server_handling_seconds", selector(JOB, CHAT_SERVICES, NOT_CONNECT),
                            ("grpc_service", "grpc_method")), "{{grpc_service}}/{{grpc_method}}", exemplar=True)], width=8))
    )
    return board
