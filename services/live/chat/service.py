"""``casemesh.live.v1.LiveChatService`` (topology name ``live-chat``): a live stream's chat room, moderated.

Seed 001 #12 (shared/seeds/001_58dfc580020147d2.txt), "Live Streaming":
"chat moderation". A stream's room is a chat group of the chat case study
(``chat-messages``, casemesh.chat.v1.MessageService): viewers receive its
messages on their chat gateway streams; this service moderates what is
posted (:mod:`.moderation`) and sends what passes with SendMessage.

- OpenRoom (internal: live-ingest's CreateStream): CreateGroup(creator =
  broadcaster, members, title ``live STREAM``), then the stream → conversation
  row is committed (fsync) before the answer (:mod:`.rooms`).
  INVALID_ARGUMENT naming ``stream_id``, ``broadcaster_id``, ``member_ids``
  or ``member_ids[i]``; ALREADY_EXISTS when the stream has a room (or one is
  being opened); UNAVAILABLE when chat-messages cannot be reached or fails
  (INTERNAL there), or the room cannot be written here.
- PostMessage (public), in this order: INVALID_ARGUMENT naming
  ``stream_id``, ``user_id``, ``client_message_id`` or ``text`` (1 to 500
  characters); NOT_FOUND for a stream without a room; PERMISSION_DENIED for
  a user not in the room (checked here from the room's members, and passed
  through from chat-messages); then moderation: a banned word → OK with
  outcome BLOCKED and the matched words, sent to nobody and **not counted
  against the rate limit** (the limit protects the room's fan-out, which a
  blocked message never reaches; the word scan costs microseconds); over the
  rate limit → RESOURCE_EXHAUSTED saying when to try again; then
  SendMessage(sender = user, client_message_id, body = the text's UTF-8
  bytes) → OK, DELIVERED with the room's sequence. A retry with the same
  (user_id, client_message_id) returns the stored message (chat-messages'
  idempotency), not a second one (it does count against the rate limit
  again). UNAVAILABLE (DEADLINE_EXCEEDED) when chat-messages cannot be
  reached (ran out of time).

chat-messages' SendMessage is internal: its Access must list ``live-chat``
among the callers (services/chat/messages/service.py).

Settings: :class:`.settings.LiveChatSettings`. Metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import logging
import sqlite3
import time

import grpc

from casemesh.chat.v1 import messages_pb2, messages_pb2_grpc
from casemesh.live.v1 import chat_pb2 as pb
from casemesh.live.v1 import chat_pb2_grpc as pb_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from ...runtime.errors import AlreadyExists, InvalidArgument, NotFound, ResourceExhausted, dependency_error
from ..contract import MAX_CHAT_TEXT_CHARS, MAX_ROOM_MEMBERS, is_id
from . import metrics
from .moderation import BannedWords, ChatRateLimit
from .rooms import Room, RoomExists, RoomStore
from .settings import LiveChatSettings

log = logging.getLogger("casemesh.live.chat")

NAME = "live-chat"
MESSAGES = "chat-messages"
INGEST = "live-ingest"
FULL_NAME = pb.DESCRIPTOR.services_by_name["LiveChatService"].full_name


class PermissionDenied(Exception):
    """The user is not in the room → ``PERMISSION_DENIED``."""


def validate_id(field: str, value: str) -> str:
    """1 to 64 characters of [A-Za-z0-9_-]; else ``InvalidArgument(field)``."""
    if not value:
        raise InvalidArgument(field, "is required (1 to 64 characters of [A-Za-z0-9_-])")
    if not is_id(value):
        raise InvalidArgument(field, "must be 1 to 64 characters of [A-Za-z0-9_-]")
    return value


def validate_members(field: str, member_ids) -> list[str]:
    """At most 499 ids, each valid (``field[i]`` named)."""
    if len(member_ids) > MAX_ROOM_MEMBERS:
        raise InvalidArgument(field, f"names {len(member_ids):,} members; at most {MAX_ROOM_MEMBERS}")
    return [validate_id(f"{field}[{i}]", member) for i, member in enumerate(member_ids)]


def validate_text(field: str, text: str) -> str:
    """1 to 500 characters (code points)."""
    if not text:
        raise InvalidArgument(field, f"is required (1 to {MAX_CHAT_TEXT_CHARS} characters)")
    if len(text) > MAX_CHAT_TEXT_CHARS:
        raise InvalidArgument(field, f"is {len(text):,} characters; at most {MAX_CHAT_TEXT_CHARS}")
    return text


class LiveChat:
    """OpenRoom and PostMessage over chat-messages (``messages``: a MessageService stub), the rooms and moderation."""

    def __init__(self, settings: LiveChatSettings, messages: messages_pb2_grpc.MessageServiceStub, rooms: RoomStore) -> None:
        self.settings = settings
        self.messages = messages
        self.rooms = rooms
        self.banned = BannedWords(settings.banned_words)
        self.rate_limit = ChatRateLimit(settings.rate_limit)
        self._timeout_s = settings.chat_timeout_ms / 1000

    async def open_room(self, stream_id: str, broadcaster_id: str, member_ids: list[str]) -> Room:
        try:
            self.rooms.reserve(stream_id)
        except RoomExists:
            raise AlreadyExists(f"stream {stream_id} has a chat room already") from None
        try:
            try:
                group = await self.messages.CreateGroup(messages_pb2.CreateGroupRequest(
                    creator_id=broadcaster_id, member_ids=member_ids, title=f"live {stream_id}"), timeout=self._timeout_s)
            except grpc.aio.AioRpcError as error:
                raise dependency_error(error) from None
            room = Room(stream_id, group.conversation_id, broadcaster_id,
                        frozenset(group.member_ids) | {broadcaster_id})
            await self.rooms.add(room, int(time.time() * 1000))
        except BaseException:
            self.rooms.release(stream_id)
            raise
        metrics.ROOMS.set(len(self.rooms))
        return room

    def moderate(self, stream_id: str, user_id: str, text: str) -> list[str]:
        """The banned words of ``text`` (a blocked message: not counted); else counts the message against the rate
        limit and returns ``[]``. :class:`ResourceExhausted` when the user is over it."""
        started = time.perf_counter()
        try:
            matched = self.banned.matches(text)
            if matched:
                return matched
            retry_after = self.rate_limit.hit(stream_id, user_id)
        finally:
            metrics.MODERATION_SECONDS.observe(time.perf_counter() - started)
        if retry_after is not None:
            raise ResourceExhausted(f"user {user_id} posted more than {self.settings.rate_limit} in stream {stream_id}'s "
                                    f"chat; try again in {retry_after:.1f} s")
        return []

    async def post(self, stream_id: str, user_id: str, client_message_id: str, text: str) -> pb.PostMessageResponse:
        room = self.rooms.get(stream_id)
        if room is None:
            raise NotFound(f"stream {stream_id} has no chat room")
        if user_id not in room.members:
            raise PermissionDenied(f"user {user_id} is not in stream {stream_id}'s chat room")
        matched = self.moderate(stream_id, user_id, text)
        if matched:
            metrics.BANNED_MATCHED.inc(len(matched))
            return pb.PostMessageResponse(outcome=pb.MODERATION_OUTCOME_BLOCKED, conversation_id=room.conversation_id,
                                          matched_words=matched)
        try:
            sent = await self.messages.SendMessage(messages_pb2.SendMessageRequest(
                sender_id=user_id, client_message_id=client_message_id, conversation_id=room.conversation_id,
                body=text.encode()), timeout=self._timeout_s)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.PERMISSION_DENIED:
                raise PermissionDenied(error.details() or f"user {user_id} is not in the room") from None
            raise dependency_error(error) from None
        return pb.PostMessageResponse(outcome=pb.MODERATION_OUTCOME_DELIVERED, conversation_id=room.conversation_id,
                                      sequence=sent.message.sequence)


class LiveChatServicer(pb_grpc.LiveChatServiceServicer):
    """Validates, calls :class:`LiveChat`, counts outcomes; PERMISSION_DENIED aborted here (no runtime domain error)."""

    def __init__(self, chat: LiveChat) -> None:
        self._chat = chat

    async def OpenRoom(self, request: pb.OpenRoomRequest, context: grpc.aio.ServicerContext) -> pb.OpenRoomResponse:
        stream_id = validate_id("stream_id", request.stream_id)
        broadcaster_id = validate_id("broadcaster_id", request.broadcaster_id)
        members = validate_members("member_ids", request.member_ids)
        try:
            room = await self._chat.open_room(stream_id, broadcaster_id, members)
        except (OSError, sqlite3.Error) as error:  # the room row could not be made durable: not opened, retry later
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"the chat room could not be stored: {error}")
        return pb.OpenRoomResponse(conversation_id=room.conversation_id)

    async def PostMessage(self, request: pb.PostMessageRequest, context: grpc.aio.ServicerContext) -> pb.PostMessageResponse:
        try:
            stream_id = validate_id("stream_id", request.stream_id)
            user_id = validate_id("user_id", request.user_id)
            client_message_id = validate_id("client_message_id", request.client_message_id)
            text = validate_text("text", request.text)
            response = await self._chat.post(stream_id, user_id, client_message_id, text)
        except ResourceExhausted:
            metrics.outcome("rate_limited")
            raise
        except PermissionDenied as error:
            metrics.outcome("refused")
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(error))
        except Exception:
            metrics.outcome("refused")
            raise
        metrics.outcome("blocked" if response.outcome == pb.MODERATION_OUTCOME_BLOCKED else "delivered")
        return response


class LiveChatComponent:
    """The servicer, the room store (``DATA_DIR/live-chat/rooms.sqlite``) and the stub to chat-messages."""

    def __init__(self, context: RuntimeContext) -> None:
        settings = context.settings(NAME, LiveChatSettings)
        self.rooms = RoomStore(context.data_dir(NAME) / "rooms.sqlite")
        stub = messages_pb2_grpc.MessageServiceStub(context.channel(MESSAGES))
        self.chat = LiveChat(settings, stub, self.rooms)
        self.servicer = LiveChatServicer(self.chat)
        metrics.ROOMS.set(len(self.rooms))

    def register(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_LiveChatServiceServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        if len(self.rooms):
            log.info("%s: %d chat rooms loaded", NAME, len(self.rooms))

    async def stop(self) -> None:
        self.rooms.close()


async def build(context: RuntimeContext) -> LiveChatComponent:
    return LiveChatComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(MESSAGES,), build=build, settings_model=LiveChatSettings,
    access=Access(public={"PostMessage"}, internal={"OpenRoom": (INGEST,)}),
)
