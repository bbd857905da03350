"""Killing social-timeline or social-tweets mid-run loses no acknowledged tweet and breaks no home timeline."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time

import grpc
import pytest

from casemesh.harness.mesh import Mesh

from .social_feed import SERVICES, THRESHOLD, Client, assert_timelines_exact, edges, users

#: What a PostTweet may answer while social-tweets is killed and restarted.
RESTARTING = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


async def wait_restarted(mesh: Mesh, name: str, old_pid: int) -> None:
    deadline = time.monotonic() + 60
    while mesh.restarts[name] < 1 or mesh.pid(name) == old_pid:
        assert time.monotonic() < deadline, f"{name} was not restarted:\n{mesh.log_tail(name)}"
        await asyncio.sleep(0.2)


@pytest.mark.slow  # a process-kill suite: run by .ci/run's crash-safety step, not by default (make test)
async def test_sigkill_of_the_timeline_and_the_tweet_store_loses_nothing(tmp_path):
    rng = random.Random(11)
    ids = users(24)
    follows = edges(24, rng)
    settings = {"social-timeline": {"celebrity_threshold": THRESHOLD}}
    async with Mesh(SERVICES, tmp_path, settings=settings) as mesh:
        channels = [grpc.aio.insecure_channel(mesh.topology.endpoint(name).address)
                    for name in ("social-graph", "social-tweets", "social-timeline")]
        try:
            client = Client(*channels)
            await client.follow_all(follows)
            posted: dict[int, str] = {}
            await client.post_many(ids, 150, rng, posted)

            # The timeline service crashes while tweets keep coming; the restarted one rebuilds from the log.
            old = mesh.pid("social-timeline")
            os.kill(old, signal.SIGKILL)
            await client.post_many(ids, 150, rng, posted)
            await wait_restarted(mesh, "social-timeline", old)
            await client.settle()
            await assert_timelines_exact(client, follows, posted, ids)

            # The tweet store crashes mid-posting: every acknowledged tweet was fsynced, so it is back after the restart.
            old = mesh.pid("social-tweets")
            unanswered: set[str] = set()
            posting = asyncio.create_task(client.post_many(ids, 600, rng, posted, concurrency=8, tolerate=RESTARTING,
                                                           unanswered=unanswered))
            while len(posted) < 300 + 100:  # mid-posting, whatever the machine's speed
                await asyncio.sleep(0.005)
            os.kill(old, signal.SIGKILL)
            failed = await posting
            await wait_restarted(mesh, "social-tweets", old)
            deadline = time.monotonic() + 60
            while True:  # the clients' channels reconnect
                try:
                    await client.settle()
                    break
                except grpc.aio.AioRpcError:
                    assert time.monotonic() < deadline, mesh.log_tail("social-tweets")
                    await asyncio.sleep(0.2)
            assert failed > 0 and len(posted) == 300 + 600 - failed  # the kill hit some posts; every other one was acknowledged
            await assert_timelines_exact(client, follows, posted, ids, unanswered)
        finally:
            for channel in channels:
                await channel.close()
