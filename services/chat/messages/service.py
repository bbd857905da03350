"""``casemesh.chat.v1.MessageService`` (topology name ``chat-messages``): conversations, messages, the offline queue, receipts.

Seed 000 (shared/seeds/000_69ff90d97cf45f9b.txt), "Chat System (like
WhatsApp)": "Real-time Messaging" (``# Store message``, ``# Persist to
database``, then deliver in real time or through pub/sub) and "Message
Delivery Flow" (sent → delivered → read receipts); seed 003
(shared/seeds/003_1dfe16d8ccfde9ed.txt), "WhatsApp Messaging" (store, then
push when the recipient is online, else queue for offline delivery).

- SendMessage → :meth:`.store.MessageStore.send`: the message is
  committed to the log (:mod:`.journal`: SQLite WAL, group commit, fsync)
  and only then answered; then :mod:`.fanout` routes it to every member
  through chat-router's ``PresenceService.Route``, in sequence order per
  conversation, off the request path.
- Acknowledge → the user's cursor (durable before the answer), then a
  Receipt routed to the senders of the messages it newly covers.
- SyncInbox → the offline queue: what lies beyond the user's delivered
  cursor in each of their conversations.
- ListMessages, CreateGroup, GetConversation: history, groups (≤ 500 members),
  a conversation's members and last sequence.

Status codes, as protos/casemesh/chat/v1/messages.proto says:
INVALID_ARGUMENT naming the field (:mod:`casemesh.services.chat.validation`);
NOT_FOUND for an unknown group; PERMISSION_DENIED when the user is not in
the conversation; INTERNAL when the log cannot be written (nothing of that
commit is acknowledged). Settings: :class:`.settings.MessageSettings`.

Metrics beyond the gRPC ones and :mod:`.fanout`'s:
``casemesh_chat_messages_stored_total{kind}`` (``dm``/``group``),
``casemesh_chat_message_log_commit_batch`` (histogram: messages per group
commit, i.e. per fsync), ``casemesh_chat_offline_messages_total``
(messages handed out by SyncInbox) and ``casemesh_chat_sync_inbox_messages``
(histogram: messages per SyncInbox answer).
"""

from __future__ import annotations

import asyncio
import logging

import grpc
from prometheus_client import Counter, Histogram

from casemesh.chat.v1 import messages_pb2 as pb
from casemesh.chat.v1 import messages_pb2_grpc as pb_grpc
from casemesh.chat.v1 import router_pb2_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from ...runtime.errors import InvalidArgument, NotFound
from ..contract import group_conversation_id
from ..validation import (
    page_size,
    validate_ack_state,
    validate_body,
    validate_conversation_id,
    validate_group_members,
    validate_id,
    validate_max_messages,
    validate_title,
    validate_up_to_sequence,
)
from .fanout import ROUTER, Fanout
from .journal import MessageJournal, StoredMessage
from .settings import MessageSettings
from .store import MessageStore, NotAMember, ReceiptEvent
from .wire import STATE_NAMES, chat_message, receipt

log = logging.getLogger("casemesh.chat.messages")

NAME = "chat-messages"
FULL_NAME = pb.DESCRIPTOR.services_by_name["MessageService"].full_name
#: The connection servers, the only callers of the internal methods (SendMessage, Acknowledge, SyncInbox).
GATEWAYS = ("chat-gateway-1", "chat-gateway-2")
#: The live-streaming chat (services/live/chat): sends a moderated message into a stream's room (a group) for its author.
LIVE_CHAT = "live-chat"
#: How long shutdown waits for queued routes before it leaves them to the offline queue, seconds.
DRAIN_S = 1.0

STORED = Counter("casemesh_chat_messages_stored", "Messages committed to the message log, by conversation kind (dm, group).",
                 ["kind"])
COMMIT_BATCH = Histogram("casemesh_chat_message_log_commit_batch", "Messages in one group commit (one fsync) of the message log.",
                         buckets=(0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024))
OFFLINE = Counter("casemesh_chat_offline_messages", "Undelivered messages handed out by SyncInbox (the offline queue).")
SYNC_SIZE = Histogram("casemesh_chat_sync_inbox_messages", "Messages in one SyncInbox answer.",
                      buckets=(0, 1, 5, 10, 50, 100, 500, 1000, 5000, 10_000))


class MessageServicer(pb_grpc.MessageServiceServicer):
    """Validates, calls the :class:`MessageStore`, maps its errors to status codes."""

    def __init__(self, store: MessageStore) -> None:
        self._store = store

    async def SendMessage(self, request: pb.SendMessageRequest, context: grpc.aio.ServicerContext) -> pb.SendMessageResponse:
        sender = validate_id("sender_id", request.sender_id)
        client_message_id = validate_id("client_message_id", request.client_message_id)
        validate_conversation_id("conversation_id", request.conversation_id)
        body = validate_body("body", request.body)
        message, duplicate = await self._write(context, self._store.send(sender, client_message_id, request.conversation_id, body))
        return pb.SendMessageResponse(message=chat_message(message), duplicate=duplicate)

    async def Acknowledge(self, request: pb.AcknowledgeRequest, context: grpc.aio.ServicerContext) -> pb.AcknowledgeResponse:
        user = validate_id("user_id", request.user_id)
        validate_conversation_id("conversation_id", request.conversation_id)
        up_to = validate_up_to_sequence("up_to_sequence", request.up_to_sequence)
        state = STATE_NAMES[validate_ack_state("state", request.state)]
        cursor = await self._write(context, self._store.acknowledge(user, request.conversation_id, up_to, state))
        return pb.AcknowledgeResponse(delivered_up_to=cursor.delivered_up_to, read_up_to=cursor.read_up_to)

    async def SyncInbox(self, request: pb.SyncInboxRequest, context: grpc.aio.ServicerContext) -> pb.SyncInboxResponse:
        user = validate_id("user_id", request.user_id)
        most = validate_max_messages("max_messages", request.max_messages)
        page = self._store.sync_inbox(user, most)
        OFFLINE.inc(len(page.messages))
        SYNC_SIZE.observe(len(page.messages))
        return pb.SyncInboxResponse(
            messages=[chat_message(m) for m in page.messages], truncated=page.truncated,
            cursors=[pb.Cursor(conversation_id=cid, delivered_up_to=c.delivered_up_to, read_up_to=c.read_up_to,
                               last_sequence=last) for cid, c, last in page.cursors])

    async def ListMessages(self, request: pb.ListMessagesRequest, context: grpc.aio.ServicerContext) -> pb.ListMessagesResponse:
        user = validate_id("user_id", request.user_id)
        validate_conversation_id("conversation_id", request.conversation_id)
        size = page_size("page_size", request.page_size)
        try:
            messages, last = self._store.list_messages(user, request.conversation_id, request.after_sequence, size)
        except NotAMember as error:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(error))
        return pb.ListMessagesResponse(messages=[chat_message(m) for m in messages], last_sequence=last)

    async def CreateGroup(self, request: pb.CreateGroupRequest, context: grpc.aio.ServicerContext) -> pb.CreateGroupResponse:
        creator = validate_id("creator_id", request.creator_id)
        members = validate_group_members("member_ids", creator, request.member_ids)
        title = validate_title("title", request.title)
        group = await self._write(context, self._store.create_group(creator, members, title))
        return pb.CreateGroupResponse(conversation_id=group_conversation_id(group.group_id), member_ids=group.members)

    async def GetConversation(self, request: pb.GetConversationRequest, context: grpc.aio.ServicerContext) -> pb.GetConversationResponse:
        validate_conversation_id("conversation_id", request.conversation_id)
        conversation = self._store.conversation(request.conversation_id)
        return pb.GetConversationResponse(conversation_id=conversation.conversation_id, member_ids=conversation.members,
                                          title=conversation.title, last_sequence=conversation.last_sequence)

    @staticmethod
    async def _write(context: grpc.aio.ServicerContext, write):
        """Await a store write: NotAMember → PERMISSION_DENIED, a failed commit → INTERNAL (not acknowledged)."""
        try:
            return await write
        except (InvalidArgument, NotFound):
            raise  # the interceptor's mapping
        except NotAMember as error:
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(error))
        except Exception as error:  # noqa: BLE001 - OSError, sqlite3.Error: not durable, so not acknowledged
            await context.abort(grpc.StatusCode.INTERNAL, f"the message log could not be written: {error}")


class MessageComponent:
    """The servicer, the store and its journal, and the fan-out to chat-router."""

    def __init__(self, context: RuntimeContext) -> None:
        settings = context.settings(NAME, MessageSettings)
        self.journal = MessageJournal(context.data_dir(NAME)) if settings.durable else None
        self.fanout: Fanout | None = None
        if ROUTER in context.topology.services:
            self.fanout = Fanout(router_pb2_grpc.PresenceServiceStub(context.channel(ROUTER)),
                                 concurrency=settings.fanout_concurrency, max_pending=settings.max_pending_routes,
                                 timeout_s=settings.route_timeout_ms / 1000)
        else:
            log.warning("%s is not in the topology: messages reach their recipients only through SyncInbox", ROUTER)
        self.store = MessageStore(self.journal, settings.max_commit_batch, on_commit=self._committed,
                                  on_batch=COMMIT_BATCH.observe)
        self.servicer = MessageServicer(self.store)

    def _committed(self, messages: list[StoredMessage], receipts: list[ReceiptEvent]) -> None:
        """After each commit (in commit order): count the messages and queue them and the receipts for routing."""
        for message in messages:
            conversation = self.store.conversation(message.conversation_id)
            STORED.labels(conversation.kind).inc()
            if self.fanout is not None:  # every member, the sender too (their other devices)
                self.fanout.submit_message(message.conversation_id, conversation.members, chat_message(message))
        if self.fanout is not None:
            for event in receipts:
                self.fanout.submit_receipt(event.conversation_id, event.notify, receipt(event))

    def register(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_MessageServiceServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        loaded = await self.store.start()
        if loaded:
            log.info("%s: %d messages loaded from the message log", NAME, loaded)
        if self.fanout is not None:
            await self.fanout.start()

    async def stop(self) -> None:
        await self.store.stop()
        if self.fanout is not None:
            try:
                await asyncio.wait_for(self.fanout.wait_idle(), DRAIN_S)
            except TimeoutError:
                log.info("%s: %d items left unrouted at shutdown (their recipients get them from the offline queue)",
                         NAME, self.fanout.pending)
            await self.fanout.stop()
        if self.journal is not None:
            self.journal.close()


async def build(context: RuntimeContext) -> MessageComponent:
    return MessageComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(ROUTER,), build=build, settings_model=MessageSettings,
    # Sends are acknowledged while chat-router is down (the messages wait in the offline queue).
    optional_dependencies=(ROUTER,),
    access=Access(public={"ListMessages", "CreateGroup", "GetConversation"},
                  # A user's own traffic comes through the connection server that authenticated their session.
                  internal={"SendMessage": GATEWAYS + (LIVE_CHAT,), "Acknowledge": GATEWAYS, "SyncInbox": GATEWAYS}),
)
