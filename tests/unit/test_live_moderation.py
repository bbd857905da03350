"""live-chat's moderation and rooms (services/live/chat) without gRPC: a fake chat-messages stub.

BannedWords matches whole words only, in any case, next to punctuation, never inside another word; the rate limit
allows 20 messages per 30 s per (stream, user) and says when to try again; a blocked message is not sent and not
counted; a room survives a restart of its store (SQLite, fsynced); OpenRoom twice is ALREADY_EXISTS; a non-member is
refused.
"""

from __future__ import annotations

import asyncio

import pytest

from casemesh.chat.v1 import message_pb2, messages_pb2
from casemesh.live.v1 import chat_pb2
from casemesh.services.live.chat.moderation import BannedWords, ChatRateLimit
from casemesh.services.live.chat.rooms import RoomStore
from casemesh.services.live.chat.service import LiveChat, PermissionDenied, validate_text
from casemesh.services.live.chat.settings import LiveChatSettings
from casemesh.services.runtime.errors import AlreadyExists, InvalidArgument, NotFound, ResourceExhausted

WORDS = BannedWords(["badword", "Spamlink", "scam coin"])


@pytest.mark.parametrize(("text", "expected"), [
    ("hello world", []),
    ("badword", ["badword"]),
    ("this is a BadWord!", ["badword"]),
    ("(badword), spamlink.", ["badword", "spamlink"]),
    ("SPAMLINK badword spamlink", ["spamlink", "badword"]),
    ("buy scam coin now", ["scam coin"]),
    ("notbadword badwords badword2 2badword", []),  # inside another word, next to a letter or a digit: no match
    ("badword_x", ["badword"]),  # an underscore is not alphanumeric: a boundary
    ("élan badwordé", []),  # a non-ASCII letter is part of the word
    ("", []),
])
def test_banned_words_match_whole_words_in_any_case(text, expected):
    assert WORDS.matches(text) == expected


def test_an_empty_list_matches_nothing_and_an_empty_word_is_refused():
    assert BannedWords([]).matches("badword") == []
    with pytest.raises(ValueError):
        BannedWords(["ok", "  "])


def test_the_rate_limit_allows_20_per_30_seconds_per_user_and_stream():
    limit = ChatRateLimit("20/30 seconds")
    assert all(limit.hit("s1", "u1") is None for _ in range(20))
    retry_after = limit.hit("s1", "u1")
    assert retry_after is not None and 0 < retry_after <= 30
    assert limit.hit("s1", "u2") is None  # another user
    assert limit.hit("s2", "u1") is None  # another stream
    with pytest.raises(ValueError):
        ChatRateLimit("lots")


def test_text_validation_names_the_field():
    with pytest.raises(InvalidArgument) as empty:
        validate_text("text", "")
    assert empty.value.field == "text"
    with pytest.raises(InvalidArgument):
        validate_text("text", "x" * 501)
    assert validate_text("text", "é" * 500) == "é" * 500


class FakeMessages:
    """MessageService: CreateGroup and SendMessage, idempotent on (sender, client_message_id)."""

    def __init__(self) -> None:
        self.groups: dict[str, list[str]] = {}
        self.sent: dict[tuple[str, str], message_pb2.ChatMessage] = {}
        self.sequence: dict[str, int] = {}

    async def CreateGroup(self, request, timeout=None):
        await asyncio.sleep(0)
        conversation_id = f"group:{len(self.groups) + 1}"
        members = [request.creator_id, *[m for m in dict.fromkeys(request.member_ids) if m != request.creator_id]]
        self.groups[conversation_id] = members
        return messages_pb2.CreateGroupResponse(conversation_id=conversation_id, member_ids=members)

    async def SendMessage(self, request, timeout=None):
        key = (request.sender_id, request.client_message_id)
        if key in self.sent:
            return messages_pb2.SendMessageResponse(message=self.sent[key], duplicate=True)
        sequence = self.sequence[request.conversation_id] = self.sequence.get(request.conversation_id, 0) + 1
        message = message_pb2.ChatMessage(conversation_id=request.conversation_id, sequence=sequence,
                                          sender_id=request.sender_id, body=request.body)
        self.sent[key] = message
        return messages_pb2.SendMessageResponse(message=message)


async def test_post_message_moderates_then_delivers_once(tmp_path):
    messages = FakeMessages()
    chat = LiveChat(LiveChatSettings(rate_limit="3/30 seconds"), messages, RoomStore(tmp_path / "rooms.sqlite"))
    room = await chat.open_room("s1", "host", ["v1", "v2"])
    assert room.conversation_id == "group:1"
    with pytest.raises(AlreadyExists):
        await chat.open_room("s1", "host", [])

    blocked = await chat.post("s1", "v1", "m0", "what a BADWORD!")
    assert blocked.outcome == chat_pb2.MODERATION_OUTCOME_BLOCKED and list(blocked.matched_words) == ["badword"]
    assert not messages.sent
    first = await chat.post("s1", "v1", "m1", "hello")
    assert first.outcome == chat_pb2.MODERATION_OUTCOME_DELIVERED and first.sequence == 1
    retry = await chat.post("s1", "v1", "m1", "hello")  # the same client_message_id: not sent twice
    assert retry.sequence == 1 and len(messages.sent) == 1
    await chat.post("s1", "v1", "m2", "again")
    with pytest.raises(ResourceExhausted):  # 3 counted (the blocked one was not)
        await chat.post("s1", "v1", "m3", "one too many")
    assert (await chat.post("s1", "host", "m1", "hi all")).sequence == 3

    with pytest.raises(NotFound):
        await chat.post("nope", "v1", "m9", "hello")
    with pytest.raises(PermissionDenied):
        await chat.post("s1", "stranger", "m9", "hello")
    chat.rooms.close()


async def test_rooms_survive_a_restart_and_concurrent_opens_make_one_room(tmp_path):
    messages = FakeMessages()
    store = RoomStore(tmp_path / "rooms.sqlite")
    chat = LiveChat(LiveChatSettings(), messages, store)
    results = await asyncio.gather(*(chat.open_room("s1", "host", ["v1"]) for _ in range(5)), return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert sum(isinstance(r, AlreadyExists) for r in results) == 4
    assert len(messages.groups) == 1
    store.close()

    reopened = RoomStore(tmp_path / "rooms.sqlite")
    room = reopened.get("s1")
    assert room is not None and room.conversation_id == "group:1" and room.members == {"host", "v1"}
    chat2 = LiveChat(LiveChatSettings(), messages, reopened)
    with pytest.raises(AlreadyExists):
        await chat2.open_room("s1", "host", [])
    assert (await chat2.post("s1", "v1", "m1", "still here")).outcome == chat_pb2.MODERATION_OUTCOME_DELIVERED
    reopened.close()


async def test_a_failed_create_group_releases_the_stream(tmp_path):
    class Failing(FakeMessages):
        async def CreateGroup(self, request, timeout=None):
            raise ConnectionError("chat-messages is down")

    chat = LiveChat(LiveChatSettings(), Failing(), RoomStore(None))
    with pytest.raises(ConnectionError):
        await chat.open_room("s1", "host", [])
    chat.messages = FakeMessages()
    assert (await chat.open_room("s1", "host", [])).conversation_id == "group:1"
