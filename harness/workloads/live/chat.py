"""Chat viewers: the chat workload's connected devices, in the stream's chat room, checking moderation as messages arrive.

Each chatter holds a ChatGatewayService.Connect stream to one of the chat
case study's gateways (the chat workload's :class:`~..chat.clients.Clients`:
hello, acknowledgements, heartbeats, reconnection to the other gateway);
messages are posted with LiveChatService.PostMessage by the ``chat`` journey.

A posted text (:func:`compose`) starts with the post's client message id and
its intended send time (Unix ns), then words; a post with a banned word
carries one of the seed's ``banned_words`` as a word of its own. When a room
message reaches a chatter other than its author:

- ``chat_delivery``: the post's intended send → this chatter has it (one
  sample per receiving chatter, as the chat workload's ``group_delivery``);
  out of sequence order in one session it is DATA_LOSS;
- ``moderation``: a message that carries a banned word must never reach
  anyone: each such arrival is a ``moderation`` sample with DATA_LOSS (the
  ``chat`` journey adds a sample per banned post: OK when it came back
  BLOCKED).

The spammer's check (:class:`RateLimitCheck`, measure ``rate_limit``): live
chat allows ``limit`` messages per user and room in a moving window of
``window_s`` (Twitch's 20 in 30 s); a post accepted while this process saw
``limit`` of the spammer's posts accepted within the window (less a second of
margin for the client's and the server's clocks) breaks it (DATA_LOSS).
RESOURCE_EXHAUSTED is the expected answer beyond the limit: the ``spam``
journey counts it as OK.
"""

from __future__ import annotations

import collections
import itertools
import random
import re
import secrets
import time

from casemesh.chat.v1 import gateway_pb2, message_pb2

from ...streams import Streams
from ..chat.clients import Clients, Device
from ..chat.seeding import State as ChatState
from .seeding import State

#: Measures: a post's intended send → another chatter's stream has it; a banned word kept out of every stream; the
#: spammer held to the rate limit.
CHAT_DELIVERY = "chat_delivery"
MODERATION = "moderation"
RATE_LIMIT = "rate_limit"
DATA_LOSS = "DATA_LOSS"
#: Words of an ordinary chat line (the filler of a post).
WORDS = ("gg", "pog", "lol", "nice", "play", "wow", "clip", "that", "was", "close", "hype", "lets", "go", "kappa")

#: A post's id (``lv{run}-{connection nonce}-w{worker}-{n}``: :meth:`Chatters.next_message_id`) and send time.
_TOKEN = re.compile(r"(lv[0-9a-f]{8}-[0-9a-f]{6}-w\d+-\d+) (\d{1,20})")


def post_id_prefix(run: str, worker: int) -> str:
    """The prefix of one connection's post ids: ``lv{run}-{nonce}-w{worker}-`` (a post id adds its number).

    A connection nonce besides the run: ``casemesh capacity`` seeds once and connects once per step, and
    chat-messages answers a (sender, client_message_id) it has stored with the stored message, routed to nobody
    again.
    """
    return f"lv{run}-{secrets.token_hex(3)}-w{worker}-"


def compose(client_message_id: str, sent_wall_ns: int, words: list[str], banned: str | None = None,
            rng: random.Random | None = None) -> str:
    """A post's text: its id and intended send time, then ``words``, with ``banned`` as a word among them."""
    body = list(words)
    if banned is not None:
        body.insert((rng or random).randint(0, len(body)), banned)
    return " ".join([client_message_id, str(sent_wall_ns), *body])


def parse_token(text: str) -> tuple[str, int] | None:
    """``(client message id, intended send ns)`` of a text made by :func:`compose`, ``None`` for any other."""
    match = _TOKEN.match(text)
    return (match[1], int(match[2])) if match else None


def carries_banned(text: str, banned: frozenset[str]) -> bool:
    """True when ``text`` has one of ``banned`` as a whole word (case-insensitive), as live chat's filter finds them."""
    return bool(banned) and any(word in banned for word in re.findall(r"[a-z0-9]+", text.lower()))


class RateLimitCheck:
    """The spammer's posts against the moving-window limit (see the module docstring)."""

    def __init__(self, limit: int, window_s: float, margin_s: float = 1.0):
        self.limit = limit
        self.window_s = max(window_s - margin_s, 0.0)
        self.accepted: collections.deque[float] = collections.deque()
        self.refused = 0
        self.breaches = 0

    def outcome(self, sent_at: float, accepted: bool) -> str:
        """The post sent at ``sent_at`` (monotonic s) was accepted or refused: OK, or DATA_LOSS for an acceptance over
        the limit."""
        window = self.accepted
        while window and window[0] <= sent_at - self.window_s:
            window.popleft()
        if not accepted:
            self.refused += 1
            return "OK"
        over = len(window) >= self.limit
        window.append(sent_at)
        if over:
            self.breaches += 1
            return DATA_LOSS
        return "OK"


class Chatters(Clients):
    """This process's chatters (the chat workload's devices) with live chat's checks on arrival."""

    def __init__(self, streams: Streams, state: State):
        super().__init__(streams, ChatState(users=list(state.chatters), dms={u: [] for u in state.chatters}))
        self.live = state
        self.banned = frozenset(state.banned_words)
        index, _ = streams.share
        self._post_ids = itertools.count(1)
        self._post_prefix = post_id_prefix(state.run, index)
        self.leaks = 0

    def next_message_id(self) -> str:
        return f"{self._post_prefix}{next(self._post_ids)}"

    def _on_message(self, device: Device, stream, message: message_pb2.ChatMessage) -> None:  # noqa: ANN001
        now_ns = time.time_ns()
        conversation, sequence = message.conversation_id, message.sequence
        stream.send(gateway_pb2.ConnectRequest(ack=gateway_pb2.Ack(
            conversation_id=conversation, up_to_sequence=sequence, state=message_pb2.RECEIPT_STATE_DELIVERED)))
        device.last_frame_at = time.perf_counter()
        in_order = sequence > device.session_last.get(conversation, 0)
        if in_order:
            device.session_last[conversation] = sequence
        text = message.body.decode("utf-8", "replace")
        streams = self.streams
        if carries_banned(text, self.banned):
            self.leaks += 1
            streams.observe(MODERATION, 0.0, DATA_LOSS, sent_at=time.perf_counter())
        if message.sender_id == device.user:
            return
        token = parse_token(text)
        if token is None or not token[0].startswith(f"lv{self.live.run}-"):
            return  # not this run's post
        code = "OK"
        if not in_order:
            self.integrity_errors += 1
            code = DATA_LOSS
        streams.observe(CHAT_DELIVERY, (now_ns - token[1]) / 1e9, code, sent_at=streams.perf_at(token[1]))
