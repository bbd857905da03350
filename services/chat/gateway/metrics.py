"""The connection servers' own metrics (``casemesh_chat_*``), labelled with the gateway's topology name.

- ``casemesh_chat_sessions_open{gateway}``: sessions held (gauge);
- ``casemesh_chat_sessions_ended_total{gateway, reason}``: ``client_closed``,
  ``heartbeat_timeout``, ``replaced``, ``slow_consumer`` (outbound queue full),
  ``shutdown``, ``cancelled`` (the client went away), ``router_unavailable``,
  ``sync_failed``, ``gap_fill_failed``, ``bad_frame``;
- ``casemesh_chat_pushes_total{gateway, kind, outcome}``: Deliver pushes
  (``kind`` message, receipt, replaced) by ``outcome``: ``pushed`` (queued to
  the client), ``held`` (ahead of a gap, or during the initial sync),
  ``duplicate`` (dropped), ``missing`` (no such session here);
- ``casemesh_chat_gap_fills_total{gateway, outcome}``: ListMessages calls
  made to fill gaps (``ok``, ``failed``, ``abandoned``);
- ``casemesh_chat_duplicates_dropped_total{gateway}``: messages dropped by
  the sequencer (every path);
- ``casemesh_chat_offline_messages_pushed_total{gateway}``: messages of the
  offline queue (at or below a cursor's ``last_sequence`` at connect) pushed;
- ``casemesh_chat_push_delay_seconds{gateway, kind}`` (histogram; ``kind``
  ``dm`` or ``group``): for each live
  message (not from the offline queue) queued to a session, the time since
  chat-messages stored it (``stored_at_unix_ms``; one machine's clock): the
  server side of the delivery SLO (harness/profiles/chat.slo.yaml), without
  the client's send and the last write.
"""

from __future__ import annotations

import time

from prometheus_client import Counter, Gauge, Histogram

from ..contract import GROUP_PREFIX

SESSIONS_OPEN = Gauge("casemesh_chat_sessions_open", "Connect sessions a gateway holds.", ("gateway",))
SESSIONS_ENDED = Counter("casemesh_chat_sessions_ended", "Connect sessions ended, by reason.", ("gateway", "reason"))
PUSHES = Counter("casemesh_chat_pushes", "Deliver pushes by kind (message, receipt, replaced) and outcome "
                 "(pushed, held, duplicate, missing).", ("gateway", "kind", "outcome"))
GAP_FILLS = Counter("casemesh_chat_gap_fills", "ListMessages calls made to fill a gap in a session's conversation, "
                    "by outcome (ok, failed, abandoned).", ("gateway", "outcome"))
DUPLICATES = Counter("casemesh_chat_duplicates_dropped", "Messages a session had handed out already (dropped).", ("gateway",))
OFFLINE_PUSHED = Counter("casemesh_chat_offline_messages_pushed",
                         "Messages of the offline queue (waiting at connect time) pushed to a session.", ("gateway",))

#: Buckets (s) of the push delay: the 0.05 and 2.0 of every casemesh latency histogram, and the SLOs' 0.3 and 0.5.
PUSH_DELAY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0)
PUSH_DELAY = Histogram("casemesh_chat_push_delay_seconds",
                       "Live messages queued to a session: seconds since chat-messages stored them.", ("gateway", "kind"),
                       buckets=PUSH_DELAY_BUCKETS)


class GatewayMetrics:
    """The children of one gateway's label, resolved once."""

    def __init__(self, gateway: str) -> None:
        self.gateway = gateway
        self.open = SESSIONS_OPEN.labels(gateway)
        self.duplicates = DUPLICATES.labels(gateway)
        self.offline = OFFLINE_PUSHED.labels(gateway)
        self._push_delay = {kind: PUSH_DELAY.labels(gateway, kind) for kind in ("dm", "group")}
        self._ended: dict[str, object] = {}
        self._pushes: dict[tuple[str, str], object] = {}
        self._fills: dict[str, object] = {}

    def pushed_live(self, conversation_id: str, stored_at_unix_ms: int) -> None:
        """A live message of ``conversation_id`` was queued to a session: observe the time since it was stored."""
        kind = "group" if conversation_id.startswith(GROUP_PREFIX) else "dm"
        self._push_delay[kind].observe(max(time.time() - stored_at_unix_ms / 1000, 0.0))

    def ended(self, reason: str) -> None:
        child = self._ended.get(reason)
        if child is None:
            child = self._ended[reason] = SESSIONS_ENDED.labels(self.gateway, reason)
        child.inc()

    def push(self, kind: str, outcome: str, count: int = 1) -> None:
        key = (kind, outcome)
        child = self._pushes.get(key)
        if child is None:
            child = self._pushes[key] = PUSHES.labels(self.gateway, kind, outcome)
        child.inc(count)

    def fill(self, outcome: str) -> None:
        child = self._fills.get(outcome)
        if child is None:
            child = self._fills[outcome] = GAP_FILLS.labels(self.gateway, outcome)
        child.inc()
