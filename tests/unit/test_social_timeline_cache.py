"""social-timeline's home-timeline cache (each ID once, newest ``capacity`` kept) and engagement ranking."""

from __future__ import annotations

import pytest

from casemesh.services.social.limits import TIMELINE_CAPACITY
from casemesh.services.social.timeline.cache import TimelineCache
from casemesh.services.social.timeline.ranking import engagement_score

# --- TimelineCache ------------------------------------------------------------------------------------


def test_empty_cache():
    cache = TimelineCache()
    assert cache.capacity == TIMELINE_CAPACITY == 800
    assert cache.newest("nobody", 50) == []
    assert len(cache) == 0


@pytest.mark.parametrize("capacity", [0, -1])
def test_capacity_must_be_positive(capacity):
    with pytest.raises(ValueError):
        TimelineCache(capacity)


def test_push_reaches_every_follower():
    cache = TimelineCache()
    assert cache.push(100, ["a", "b", "c"]) == 3
    for user in ("a", "b", "c"):
        assert cache.newest(user, 10) == [100]
    assert cache.newest("d", 10) == []
    assert len(cache) == 3
    assert cache.entries_pushed == 3
    assert cache.push(200, []) == 0
    assert cache.entries_pushed == 3


def test_same_id_pushed_twice_counts_once():
    cache = TimelineCache()
    assert cache.push(100, ["a", "b"]) == 2
    assert cache.push(100, ["a", "b"]) == 0  # a replayed log entry
    assert cache.push(100, ["b", "c"]) == 1  # new only to c
    assert cache.newest("a", 10) == [100]
    assert cache.newest("b", 10) == [100]
    assert cache.newest("c", 10) == [100]
    assert cache.entries_pushed == 3


def test_newest_first_whatever_the_push_order():
    cache = TimelineCache()
    for tweet_id in (30, 10, 50, 20, 40):
        cache.push(tweet_id, ["u"])
    assert cache.newest("u", 10) == [50, 40, 30, 20, 10]
    assert cache.newest("u", 5) == [50, 40, 30, 20, 10]
    assert cache.newest("u", 3) == [50, 40, 30]
    assert cache.newest("u", 1) == [50]


def test_newest_with_limit_zero_is_empty():
    cache = TimelineCache()
    cache.push(1, ["u"])
    cache.push(2, ["u"])
    assert cache.newest("u", 0) == []


def test_capacity_keeps_the_newest_ids():
    cache = TimelineCache(capacity=3)
    for tweet_id in range(1, 6):
        cache.push(tweet_id, ["u"])
    assert cache.newest("u", 10) == [5, 4, 3]
    assert cache.entries_pushed == 5
    assert cache.entries_trimmed == 2


def test_capacity_holds_for_out_of_order_pushes():
    cache = TimelineCache(capacity=4)
    for tweet_id in (50, 10, 90, 30, 70, 20, 80):
        cache.push(tweet_id, ["u"])
    assert cache.newest("u", 100) == [90, 80, 70, 50]


def test_an_id_older_than_a_full_timeline_is_not_added():
    cache = TimelineCache(capacity=3)
    for tweet_id in (10, 20, 30):
        cache.push(tweet_id, ["u"])
    assert cache.push(5, ["u"]) == 0
    assert cache.newest("u", 10) == [30, 20, 10]
    assert cache.entries_pushed == 3
    assert cache.entries_trimmed == 1
    # A trimmed ID replayed later does not come back either.
    cache.push(40, ["u"])
    assert cache.newest("u", 10) == [40, 30, 20]
    assert cache.push(10, ["u"]) == 0
    assert cache.newest("u", 10) == [40, 30, 20]


def test_an_old_id_still_fits_a_timeline_that_is_not_full():
    cache = TimelineCache(capacity=3)
    cache.push(30, ["full", "roomy"])
    cache.push(20, ["full"])
    cache.push(10, ["full"])
    assert cache.push(5, ["full", "roomy"]) == 1
    assert cache.newest("full", 10) == [30, 20, 10]
    assert cache.newest("roomy", 10) == [30, 5]


def test_timelines_are_separate():
    cache = TimelineCache(capacity=2)
    cache.push(1, ["a"])
    cache.push(2, ["a", "b"])
    cache.push(3, ["a"])
    assert cache.newest("a", 10) == [3, 2]
    assert cache.newest("b", 10) == [2]
    assert len(cache) == 2


def test_full_default_capacity_timeline():
    cache = TimelineCache()
    for tweet_id in range(1, 1001):
        cache.push(tweet_id, ["u"])
    newest = cache.newest("u", 1000)
    assert newest == list(range(1000, 200, -1))
    assert len(newest) == 800
    assert cache.entries_trimmed == 200


# --- engagement_score ------------------------------------------------------------------------------


def test_more_likes_rank_higher_at_equal_age():
    for age_s in (0.0, 60.0, 3600.0, 86_400.0):
        scores = [engagement_score(likes, age_s) for likes in (0, 1, 5, 100, 10_000)]
        assert scores == sorted(scores) and len(set(scores)) == len(scores)


def test_older_ranks_lower_at_equal_likes():
    for likes in (0, 3, 1000):
        scores = [engagement_score(likes, age_s) for age_s in (0.0, 1.0, 3600.0, 7200.0, 86_400.0, 30 * 86_400.0)]
        assert scores == sorted(scores, reverse=True) and len(set(scores)) == len(scores)


def test_negative_age_counts_as_zero():
    assert engagement_score(4, -10.0) == engagement_score(4, 0.0)
    assert engagement_score(0, -86_400.0) == engagement_score(0, 0.0)


def test_score_is_the_hacker_news_formula():
    assert engagement_score(0, 0.0) == pytest.approx(1 / 2 ** 1.8)
    assert engagement_score(9, 2 * 3600.0) == pytest.approx(10 / 4 ** 1.8)
    # Likes can outweigh age: a day-old tweet with many likes beats a fresh one with none.
    assert engagement_score(1000, 86_400.0) > engagement_score(0, 0.0)
    assert engagement_score(0, 0.0) > 0


def test_entries_held_counts_what_the_timelines_keep():
    cache = TimelineCache(capacity=2)
    cache.push(1, ["a", "b"])
    cache.push(1, ["a"])  # a repeat holds nothing more
    cache.push(2, ["a"])
    cache.push(3, ["a"])  # a is full: 1 is trimmed, the count stays
    assert cache.entries_held == 3 == sum(len(cache.newest(u, 10)) for u in ("a", "b"))
