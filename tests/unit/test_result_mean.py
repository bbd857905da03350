"""result.json's mean_ms: ``histogram_mean`` gives what hdrh's ``get_mean_value`` gives, without its slow walk."""

from __future__ import annotations

import random

import pytest
from hdrh.histogram import HdrHistogram

from casemesh.harness.result import histogram_mean, latency_summary


@pytest.mark.parametrize("seed,highest_us", [(1, 1_000), (2, 60_000_000), (3, 5)])
def test_the_mean_is_hdrhs_mean(seed: int, highest_us: int):
    histogram = HdrHistogram(1, 60_000_000, 3)
    rng = random.Random(seed)
    for _ in range(5_000):
        histogram.record_value(min(int(rng.lognormvariate(7, 2)) + 1, highest_us), rng.randint(1, 3))
    histogram.record_value(highest_us)
    assert histogram_mean(histogram) == pytest.approx(histogram.get_mean_value(), rel=1e-12)


def test_an_empty_histogram_has_no_mean():
    assert latency_summary(HdrHistogram(1, 60_000_000, 3))["mean_ms"] is None
