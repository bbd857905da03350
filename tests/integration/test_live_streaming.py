"""Live streaming through real gRPC on 127.0.0.1: publish, both kinds of viewer, DVR, blocking reload, bad input, chat.

One in-process mesh (live-ingest, live-origin, live-edge, live-chat and the chat services) for the module; each test
creates streams of its own. The broadcaster publishes faster than real time where a test only needs media (parts are cut
by media time, the chunks' durations, not by the wall clock). live-chat allows 3 messages per 10 s per user here, so
the rate limit shows in a short test.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest
import pytest_asyncio

from casemesh.live.v1 import chat_pb2, chat_pb2_grpc, edge_pb2, edge_pb2_grpc, ingest_pb2, ingest_pb2_grpc, live_pb2
from casemesh.services.live.contract import parse_part_uri, parse_playlist

from .chat import Device
from .live import (KEYFRAME_EVERY, Broadcaster, Continuity, StreamingViewer, chunk, create_stream, eventually,
                   live_mesh)

pytestmark = pytest.mark.asyncio(loop_scope="module")

SETTINGS = {"live-chat": {"rate_limit": "3/10 seconds", "banned_words": ["scamcoin", "spamlink"]}}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh(tmp_path_factory):
    async with live_mesh(tmp_path_factory.mktemp("live-data"), SETTINGS) as running:
        yield running


def edge(mesh) -> edge_pb2_grpc.LiveEdgeServiceStub:
    return edge_pb2_grpc.LiveEdgeServiceStub(mesh.anonymous_channel("live-edge"))


def ingest(mesh) -> ingest_pb2_grpc.LiveIngestServiceStub:
    return ingest_pb2_grpc.LiveIngestServiceStub(mesh.anonymous_channel("live-ingest"))


async def publish(mesh, stream_id: str, key: str, sequences, *, end: bool = False) -> ingest_pb2.PublishResponse:
    """One Publish connection sending ``sequences`` as fast as it can (then ``end`` when asked)."""
    frames = [ingest_pb2.PublishRequest(start=ingest_pb2.PublishStart(stream_id=stream_id, stream_key=key))]
    frames += [chunk(seq) for seq in sequences]
    if end:
        frames.append(ingest_pb2.PublishRequest(end=ingest_pb2.PublishEnd()))
    return await ingest(mesh).Publish(iter(frames), timeout=30)


async def status_of(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value


async def test_streaming_and_llhls_viewers_receive_every_chunk_in_order_without_a_gap(mesh):
    created = await create_stream(mesh.anonymous_channel("live-ingest"), "caster1")
    stream = created.stream
    assert stream.state == live_pb2.STREAM_STATE_WAITING and stream.part_target_ms == 200
    assert stream.segment_target_ms == 2000 and len(created.stream_key) == 43
    broadcaster = Broadcaster(mesh.anonymous_channel("live-ingest"), stream.stream_id, created.stream_key,
                              chunks_per_s=90)  # 3x real time
    publishing = asyncio.create_task(broadcaster.run())
    stub = edge(mesh)
    await eventually(lambda: broadcaster.next > 2 * KEYFRAME_EVERY, "two segments published")
    live = StreamingViewer(mesh.anonymous_channel("live-edge"), stream.stream_id)  # from the live edge
    dvr = StreamingViewer(mesh.anonymous_channel("live-edge"), stream.stream_id,
                          live_pb2.PartRef(media_sequence=0, part_index=0))  # from the start of the DVR window
    viewers = [asyncio.create_task(v.run()) for v in (live, dvr)]
    # An LL-HLS player: the playlist, then each next part by its preload hint (blocking until published).
    playlist = parse_playlist((await stub.GetPlaylist(edge_pb2.GetPlaylistRequest(stream_id=stream.stream_id),
                                                      timeout=10)).playlist)
    assert playlist.can_block_reload and playlist.part_target_ms == 200 and playlist.part_hold_back_ms == 600
    assert not playlist.ended and playlist.preload_hint is not None
    player = Continuity()
    msn, index = playlist.preload_hint
    for _ in range(12):
        part = (await stub.GetPart(edge_pb2.GetPartRequest(
            stream_id=stream.stream_id, ref=live_pb2.PartRef(media_sequence=msn, part_index=index)), timeout=10)).part
        player.add(part)
        msn, index = (msn + 1, 0) if part.ends_segment else (msn, index + 1)
    # A blocking playlist reload for the next part comes back once it is listed.
    reloaded = await stub.GetPlaylist(edge_pb2.GetPlaylistRequest(
        stream_id=stream.stream_id, block=live_pb2.PartRef(media_sequence=msn, part_index=index)), timeout=10)
    assert (reloaded.last_part.media_sequence, reloaded.last_part.part_index) >= (msn, index)
    assert parse_playlist(reloaded.playlist).last_part >= (msn, index)
    await eventually(lambda: live.continuity.parts >= 15 and dvr.continuity.parts >= 40, "both viewers to get parts")
    broadcaster.stop()
    await publishing
    for v in (live, dvr):
        v.stop()
    await asyncio.gather(*viewers)
    for continuity in (live.continuity, dvr.continuity, player):
        assert not continuity.violations, continuity.violations
    assert min(dvr.received_at) == 0  # the DVR viewer started at chunk 0 and saw every one after it
    assert sorted(dvr.received_at) == list(range(len(dvr.received_at)))
    first_live_part = min(live.received_at)
    assert first_live_part % KEYFRAME_EVERY == 0 or first_live_part > 0  # the live edge starts at an independent part


async def test_parts_are_at_most_the_part_target_and_segments_start_at_keyframes(mesh):
    created = await create_stream(mesh.anonymous_channel("live-ingest"), "caster2")
    stream_id = created.stream.stream_id
    reply = await publish(mesh, stream_id, created.stream_key, range(3 * KEYFRAME_EVERY + 10))
    assert reply.chunks_received == 3 * KEYFRAME_EVERY + 10 and reply.state == live_pb2.STREAM_STATE_LIVE
    stub = edge(mesh)
    playlist = parse_playlist((await stub.GetPlaylist(edge_pb2.GetPlaylistRequest(stream_id=stream_id),
                                                      timeout=10)).playlist)
    assert [s.media_sequence for s in playlist.segments] == [0, 1, 2]
    for segment in playlist.segments:
        assert segment.parts and segment.parts[0].independent
        assert all(p.duration_us <= 200_000 for p in segment.parts)
        assert abs(segment.duration_us - 2_000_000) <= 1_000
    segment = await stub.GetSegment(edge_pb2.GetSegmentRequest(stream_id=stream_id, media_sequence=1), timeout=10)
    assert segment.first_chunk_sequence == KEYFRAME_EVERY and segment.chunk_count == KEYFRAME_EVERY
    parts = [(await stub.GetPart(edge_pb2.GetPartRequest(stream_id=stream_id, ref=live_pb2.PartRef(
        media_sequence=1, part_index=p.part_index)), timeout=10)).part for p in playlist.segments[1].parts]
    assert b"".join(p.data for p in parts) == segment.data
    # The connection half-closed without `end`: the stream stays live, and the next connection resumes.
    info = await ingest(mesh).GetStream(ingest_pb2.GetStreamRequest(stream_id=stream_id), timeout=10)
    assert info.stream.state == live_pb2.STREAM_STATE_LIVE
    assert info.stream.next_chunk_sequence == reply.next_chunk_sequence <= 3 * KEYFRAME_EVERY + 10
    resumed = await publish(mesh, stream_id, created.stream_key,
                            range(reply.next_chunk_sequence, 4 * KEYFRAME_EVERY + 1), end=True)
    assert resumed.state == live_pb2.STREAM_STATE_ENDED
    ended = await stub.GetPlaylist(edge_pb2.GetPlaylistRequest(stream_id=stream_id), timeout=10)
    final = parse_playlist(ended.playlist)
    assert final.ended and final.preload_hint is None and ended.state == live_pb2.STREAM_STATE_ENDED
    viewer = StreamingViewer(mesh.anonymous_channel("live-edge"), stream_id,
                             live_pb2.PartRef(media_sequence=0, part_index=0), resume=False)
    await asyncio.wait_for(viewer.run(), 30)  # ends OK after the last part of the ended stream
    assert not viewer.ends and not viewer.continuity.violations
    assert sorted(viewer.received_at) == list(range(4 * KEYFRAME_EVERY + 1))


async def test_a_second_publisher_takes_over_and_the_first_ends_aborted(mesh):
    created = await create_stream(mesh.anonymous_channel("live-ingest"), "caster3")
    stream_id, key = created.stream.stream_id, created.stream_key
    first = Broadcaster(mesh.anonymous_channel("live-ingest"), stream_id, key, chunks_per_s=60, reconnect=False)
    running = asyncio.create_task(first.run())
    await eventually(lambda: first.next > 30, "the first publisher under way")
    info = await ingest(mesh).GetStream(ingest_pb2.GetStreamRequest(stream_id=stream_id), timeout=10)
    second = Broadcaster(mesh.anonymous_channel("live-ingest"), stream_id, key, chunks_per_s=60)
    second.connections = 1  # as after a lost connection: it asks GetStream where to resume
    taking_over = asyncio.create_task(second.run())
    await asyncio.wait_for(running, 30)
    assert first.ends == [grpc.StatusCode.ABORTED]
    await eventually(lambda: second.next > info.stream.next_chunk_sequence + 90, "the second publisher under way")
    second.stop()
    await taking_over
    viewer = StreamingViewer(mesh.anonymous_channel("live-edge"), stream_id,
                             live_pb2.PartRef(media_sequence=0, part_index=0), resume=False)
    task = asyncio.create_task(viewer.run())
    await eventually(lambda: viewer.continuity.parts >= 10, "parts from the start")
    viewer.stop()
    await task
    assert not viewer.continuity.violations, viewer.continuity.violations


async def test_bad_input_is_refused_with_the_field_named(mesh):
    stub = ingest(mesh)
    error = await status_of(stub.CreateStream(ingest_pb2.CreateStreamRequest(broadcaster_id="no spaces"), timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "broadcaster_id" in error.details()
    created = await create_stream(mesh.anonymous_channel("live-ingest"), "caster4")
    stream_id, key = created.stream.stream_id, created.stream_key
    error = await status_of(publish(mesh, stream_id, "x" * 43, [0]))
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    error = await status_of(stub.Publish(iter([chunk(0)]), timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "start" in error.details()
    error = await status_of(publish(mesh, stream_id, key, [1]))  # the stream's first chunk must be 0, a keyframe
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "0" in error.details()
    error = await status_of(publish(mesh, stream_id, key, [0, 1, 3]))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "chunk.sequence" in error.details()
    bad_chunk = ingest_pb2.PublishRequest(chunk=ingest_pb2.MediaChunk(sequence=0, duration_us=0, keyframe=True, data=b"x"))
    error = await status_of(stub.Publish(iter([ingest_pb2.PublishRequest(start=ingest_pb2.PublishStart(
        stream_id=stream_id, stream_key=key)), bad_chunk]), timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "chunk.duration_us" in error.details()
    error = await status_of(publish(mesh, "no-such-stream", key, [0]))
    assert error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED)
    viewer = edge(mesh)
    error = await status_of(viewer.GetPlaylist(edge_pb2.GetPlaylistRequest(stream_id="no-such-stream"), timeout=10))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = await status_of(viewer.GetPlaylist(edge_pb2.GetPlaylistRequest(stream_id="bad id!"), timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "stream_id" in error.details()
    error = await status_of(viewer.GetPart(edge_pb2.GetPartRequest(
        stream_id=stream_id, ref=live_pb2.PartRef(media_sequence=-1, part_index=0)), timeout=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "ref" in error.details()
    error = await status_of(viewer.GetPlaylist(edge_pb2.GetPlaylistRequest(stream_id=stream_id), timeout=10))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION  # nothing published yet
    # None of it harmed the stream: it publishes from chunk 0.
    reply = await publish(mesh, stream_id, key, range(KEYFRAME_EVERY + 1))
    assert reply.chunks_received == KEYFRAME_EVERY + 1
    playlist = parse_playlist((await viewer.GetPlaylist(edge_pb2.GetPlaylistRequest(stream_id=stream_id),
                                                        timeout=10)).playlist)
    assert playlist.segments[0].media_sequence == 0 and parse_part_uri("part-1-0.ts") == (1, 0)


async def test_chat_delivers_clean_messages_blocks_banned_words_and_rate_limits(mesh):
    created = await create_stream(mesh.anonymous_channel("live-ingest"), "caster5", members=["fan1", "fan2"])
    stream_id = created.stream.stream_id
    assert created.chat_conversation_id.startswith("group:")
    fan2 = Device(mesh.anonymous_channel("chat-gateway-2"), "fan2")
    await fan2.connect()
    chat = chat_pb2_grpc.LiveChatServiceStub(mesh.anonymous_channel("live-chat"))

    async def post(user: str, cid: str, text: str) -> chat_pb2.PostMessageResponse:
        return await chat.PostMessage(chat_pb2.PostMessageRequest(
            stream_id=stream_id, user_id=user, client_message_id=cid, text=text), timeout=10)

    hello = await post("fan1", "m1", "hello stream")
    assert hello.outcome == chat_pb2.MODERATION_OUTCOME_DELIVERED and hello.sequence >= 1
    assert hello.conversation_id == created.chat_conversation_id
    blocked = await post("fan1", "m2", "buy SCAMCOIN now!")
    assert blocked.outcome == chat_pb2.MODERATION_OUTCOME_BLOCKED and list(blocked.matched_words) == ["scamcoin"]
    fine = await post("fan1", "m3", "scamcoins are a word I made up")  # whole words only
    assert fine.outcome == chat_pb2.MODERATION_OUTCOME_DELIVERED
    retry = await post("fan1", "m3", "scamcoins are a word I made up")  # the same client message id: not sent twice
    assert retry.sequence == fine.sequence
    await eventually(lambda: len(fan2.messages) >= 2, "both clean messages at fan2")
    bodies = [m.body for m in fan2.messages]
    assert not any(b"SCAMCOIN" in (b if isinstance(b, bytes) else b.encode()) for b in bodies)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        for n in range(4, 8):
            await post("fan1", f"m{n}", f"message {n}")
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await post("stranger", "s1", "let me in")
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await post("fan1", "m9", "x" * 501)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "text" in error.value.details()
    await fan2.close()
