"""count_within: the SLO evaluator's count of calls at or below a latency threshold."""

from __future__ import annotations

import random

import pytest

from casemesh.harness.stats import HIGHEST_US, count_within, new_histogram


def _by_iteration(histogram, threshold_us):
    total = 0
    for item in histogram.get_recorded_iterator():
        if histogram.get_lowest_equivalent_value(item.value_iterated_to) > threshold_us:
            break
        total += item.count_at_value_iterated_to
    return total


def test_count_within_agrees_with_a_walk_over_the_recorded_values():
    rng = random.Random(7)
    histogram = new_histogram()
    for _ in range(5000):
        histogram.record_value(max(1, int(rng.expovariate(1 / 700_000))))
    for threshold in (0, 1, 999, 1000, 10_000, 250_000, 700_000, 2_000_000, 10_000_000, HIGHEST_US, HIGHEST_US * 2):
        assert count_within(histogram, threshold) == _by_iteration(histogram, threshold), threshold


@pytest.mark.parametrize(("threshold", "expected"), [(9_999, 1), (10_000, 2), (10_005, 2), (10_011, 3), (1_000_000, 3)])
def test_values_equivalent_to_the_threshold_count_as_within(threshold, expected):
    histogram = new_histogram()
    for value in (5_000, 10_000, 10_011):  # 10,000 and 10,005 share a bucket at 3 significant digits; 10,011 does not
        histogram.record_value(value)
    assert count_within(histogram, threshold) == expected


def test_an_empty_histogram_has_nothing_within():
    assert count_within(new_histogram(), 1_000) == 0
