"""social-graph's FollowGraph: both directions in one step, follow-order paging, the follow limit."""

from __future__ import annotations

import asyncio

import pytest

from casemesh.services.runtime.errors import ResourceExhausted
from casemesh.services.social.graph.store import FollowGraph
from casemesh.services.social.limits import MAX_FOLLOWING


async def all_followers(graph: FollowGraph, user: str) -> list[str]:
    page, _ = await graph.followers(user, 0, 1_000_000)
    return page


async def all_following(graph: FollowGraph, user: str) -> list[str]:
    page, _ = await graph.following(user, 0, 1_000_000)
    return [u for u, _ in page]


async def test_empty_graph():
    graph = FollowGraph()
    assert await graph.counts("nobody") == (0, 0)
    assert await graph.followers("nobody", 0, 10) == ([], 0)
    assert await graph.following("nobody", 0, 10) == ([], 0)
    assert graph.edge_count == 0


async def test_follow_is_visible_in_both_directions_at_once():
    graph = FollowGraph()
    assert await graph.follow("alice", "bob") == 1
    # The very next reads, of either direction, see the edge.
    assert await graph.followers("bob", 0, 10) == (["alice"], 1)
    assert await graph.following("alice", 0, 10) == ([("bob", 1)], 1)
    assert await graph.counts("bob") == (1, 0)
    assert await graph.counts("alice") == (0, 1)
    assert graph.edge_count == 1


async def test_follow_returns_the_followees_follower_count():
    graph = FollowGraph()
    assert await graph.follow("a", "star") == 1
    assert await graph.follow("b", "star") == 2
    assert await graph.follow("c", "star") == 3
    assert await graph.follow("a", "other") == 1
    assert await graph.counts("star") == (3, 0)
    assert await graph.counts("a") == (0, 2)
    assert graph.edge_count == 4


async def test_follow_again_is_a_no_op():
    graph = FollowGraph()
    await graph.follow("a", "b")
    await graph.follow("c", "b")
    assert await graph.follow("a", "b") == 2
    assert await graph.follow("a", "b") == 2
    assert graph.edge_count == 2
    assert await graph.counts("b") == (2, 0)
    assert await graph.counts("a") == (0, 1)
    # A repeat does not move the edge in follow order.
    assert await all_followers(graph, "b") == ["a", "c"]


async def test_following_reports_each_followees_current_follower_count():
    graph = FollowGraph()
    for fan in ("f1", "f2", "f3"):
        await graph.follow(fan, "star")
    await graph.follow("me", "star")
    await graph.follow("me", "nobody-else-follows")
    page, total = await graph.following("me", 0, 10)
    assert total == 2
    assert page == [("star", 4), ("nobody-else-follows", 1)]
    await graph.unfollow("f1", "star")
    assert (await graph.following("me", 0, 10))[0] == [("star", 3), ("nobody-else-follows", 1)]


async def test_unfollow_removes_both_directions():
    graph = FollowGraph()
    await graph.follow("a", "b")
    await graph.follow("c", "b")
    await graph.follow("a", "d")
    assert await graph.unfollow("a", "b") == 1
    assert await graph.followers("b", 0, 10) == (["c"], 1)
    assert await graph.following("a", 0, 10) == ([("d", 1)], 1)
    assert await graph.counts("a") == (0, 1)
    assert await graph.counts("b") == (1, 0)
    assert graph.edge_count == 2


async def test_unfollow_of_the_last_edges_leaves_empty_users():
    graph = FollowGraph()
    await graph.follow("a", "b")
    assert await graph.unfollow("a", "b") == 0
    assert await graph.counts("a") == (0, 0)
    assert await graph.counts("b") == (0, 0)
    assert await graph.followers("b", 0, 10) == ([], 0)
    assert await graph.following("a", 0, 10) == ([], 0)
    assert graph.edge_count == 0
    # And the edge can be made again.
    assert await graph.follow("a", "b") == 1
    assert graph.edge_count == 1


async def test_unfollow_without_an_edge_changes_nothing():
    graph = FollowGraph()
    await graph.follow("a", "b")
    await graph.follow("c", "d")
    assert await graph.unfollow("x", "b") == 1      # unknown follower
    assert await graph.unfollow("a", "d") == 1      # follower known, edge absent
    assert await graph.unfollow("b", "a") == 0      # the reverse direction is another edge
    assert await graph.unfollow("a", "nobody") == 0
    assert graph.edge_count == 2
    assert await graph.counts("a") == (0, 1)
    assert await graph.counts("b") == (1, 0)
    assert await graph.counts("d") == (1, 0)


async def test_edges_are_directed():
    graph = FollowGraph()
    await graph.follow("a", "b")
    assert await graph.counts("a") == (0, 1)
    assert await graph.counts("b") == (1, 0)
    assert await graph.follow("b", "a") == 1
    assert await graph.counts("a") == (1, 1)
    assert await graph.counts("b") == (1, 1)
    assert graph.edge_count == 2
    await graph.unfollow("a", "b")
    assert await graph.counts("a") == (1, 0)
    assert await graph.counts("b") == (0, 1)


# --- paging in follow order ----------------------------------------------------------------------


async def test_followers_page_in_follow_order():
    graph = FollowGraph()
    fans = [f"fan{i:02d}" for i in range(25)]
    for fan in reversed(fans[:13]):  # follow order is not name order
        await graph.follow(fan, "star")
    for fan in fans[13:]:
        await graph.follow(fan, "star")
    expected = list(reversed(fans[:13])) + fans[13:]

    pages = []
    for offset in (0, 10, 20):
        page, total = await graph.followers("star", offset, 10)
        assert total == 25
        pages.append(page)
    assert [len(p) for p in pages] == [10, 10, 5]
    assert pages[0] + pages[1] + pages[2] == expected
    assert await graph.followers("star", 25, 10) == ([], 25)
    assert await graph.followers("star", 1000, 10) == ([], 25)
    assert await graph.followers("star", 0, 25) == (expected, 25)
    assert await graph.followers("star", 0, 100) == (expected, 25)
    assert await graph.followers("star", 3, 4) == (expected[3:7], 25)
    assert await graph.followers("star", 24, 10) == (expected[24:], 25)


async def test_following_pages_in_follow_order():
    graph = FollowGraph()
    followees = [f"u{i}" for i in (7, 3, 9, 1, 5, 2, 8)]
    for followee in followees:
        await graph.follow("me", followee)
    got = []
    for offset in range(0, 7, 3):
        page, total = await graph.following("me", offset, 3)
        assert total == 7
        got.extend(u for u, _ in page)
    assert got == followees
    assert (await graph.following("me", 2, 2))[0] == [("u9", 1), ("u1", 1)]


async def test_unfollow_keeps_the_order_and_a_refollow_comes_last():
    graph = FollowGraph()
    for fan in ("a", "b", "c", "d"):
        await graph.follow(fan, "star")
    await graph.unfollow("b", "star")
    assert await all_followers(graph, "star") == ["a", "c", "d"]
    await graph.follow("b", "star")
    assert await all_followers(graph, "star") == ["a", "c", "d", "b"]
    assert await graph.followers("star", 1, 2) == (["c", "d"], 4)


async def test_a_returned_page_is_a_copy():
    graph = FollowGraph()
    await graph.follow("a", "star")
    page, _ = await graph.followers("star", 0, 10)
    page.append("intruder")
    page.clear()
    assert await all_followers(graph, "star") == ["a"]
    assert await graph.counts("star") == (1, 0)


# --- the follow limit ------------------------------------------------------------------------------


async def test_default_follow_limit_is_the_contracts():
    assert MAX_FOLLOWING == 5_000
    graph = FollowGraph()
    for i in range(MAX_FOLLOWING):
        await graph.follow("greedy", f"u{i}")
    with pytest.raises(ResourceExhausted):
        await graph.follow("greedy", "one-too-many")
    assert await graph.counts("greedy") == (0, MAX_FOLLOWING)


async def test_following_more_than_the_limit_is_resource_exhausted():
    graph = FollowGraph(max_following=3)
    for followee in ("a", "b", "c"):
        await graph.follow("me", followee)
    with pytest.raises(ResourceExhausted):
        await graph.follow("me", "d")
    # Nothing changed: neither direction, nor the edge count.
    assert await graph.counts("me") == (0, 3)
    assert await graph.counts("d") == (0, 0)
    assert await graph.followers("d", 0, 10) == ([], 0)
    assert graph.edge_count == 3
    # Following someone already followed is still fine at the limit.
    assert await graph.follow("me", "b") == 1
    # The limit is per follower: others can still follow "d".
    assert await graph.follow("you", "d") == 1
    # After an unfollow there is room again.
    await graph.unfollow("me", "a")
    assert await graph.follow("me", "d") == 2
    assert await all_following(graph, "me") == ["b", "c", "d"]
    assert graph.edge_count == 4


async def test_concurrent_follows_all_land():
    graph = FollowGraph()
    fans = [f"fan{i}" for i in range(200)]
    counts = await asyncio.gather(*(graph.follow(fan, "star") for fan in fans))
    assert sorted(counts) == list(range(1, 201))
    assert graph.edge_count == 200
    page, total = await graph.followers("star", 0, 1000)
    assert total == 200 and sorted(page) == sorted(fans)
    await asyncio.gather(*(graph.unfollow(fan, "star") for fan in fans[::2]))
    assert await graph.counts("star") == (100, 0)
    assert graph.edge_count == 100
    assert sorted(await all_followers(graph, "star")) == sorted(fans[1::2])
