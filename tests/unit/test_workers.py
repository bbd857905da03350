"""Splitting a run's plan across worker processes (harness/workers.py), without starting any.

The property: worker w of N gets arrivals w, w + N, w + 2N, ... of the whole
schedule, each with the journey the single-process driver gives it, so the
workers together send exactly the single-process schedule. Checked on the
driver's own ``plan`` (``Driver.plan`` / ``WorkerDriver.plan``) for Poisson
arrivals with several journeys, constant arrivals, and a trace with sizes.
"""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

import grpc
import pytest

from casemesh.harness.driver import Driver, plan_rngs
from casemesh.harness.profile import load_profile
from casemesh.harness.stats import new_histogram
from casemesh.harness.workers import PartitionedChoice, WorkerDriver, behind_schedule, partition_plan, plan_arrivals

from ..integration.profiles import write_profile

MIX = "  - {name: resolve, weight: 80}\n  - {name: resolve_miss, weight: 5}\n  - {name: shorten, weight: 10}\n  - {name: get_stats, weight: 5}\n"
TRACE = "t,size\n" + "".join(f"{i * 0.013:.3f},{100 + i}\n" for i in range(400))


def profile_at(tmp_path: Path, **options):
    return load_profile(write_profile(tmp_path, **options))


def whole(profile, seed: int) -> list[tuple[float, str]]:
    """The single-process plan's (offset, journey) pairs: the driver's RNG streams, unsplit."""
    arrivals, journeys = plan_rngs(seed)
    return list(plan_arrivals((profile.arrival.schedule(arrivals, profile.warmup_s + profile.duration_s), journeys.choices), profile))


def part(profile, seed: int, index: int, count: int) -> list[tuple[float, str]]:
    arrivals, journeys = plan_rngs(seed)
    schedule = profile.arrival.schedule(arrivals, profile.warmup_s + profile.duration_s)
    return list(plan_arrivals(partition_plan(schedule, journeys.choices, index, count), profile))


@pytest.mark.parametrize("count", [1, 2, 3, 7])
@pytest.mark.parametrize("process", ["poisson", "constant"])
def test_the_workers_parts_are_exactly_the_schedule(tmp_path: Path, process: str, count: int):
    profile = profile_at(tmp_path, process=process, rate=900, duration_s=4, warmup_s=1, journeys=MIX)
    schedule = whole(profile, seed=11)
    assert len(schedule) > 3000 and len({j for _, j in schedule}) == 4  # several journeys were drawn
    parts = [part(profile, 11, index, count) for index in range(count)]
    for index, got in enumerate(parts):
        assert got == schedule[index::count]  # offsets and journeys, in order
    # Together: every arrival once, with its journey.
    assert sorted(itertools.chain.from_iterable(parts)) == sorted(schedule)
    assert Counter(j for p in parts for _, j in p) == Counter(j for _, j in schedule)


def test_another_seed_is_another_schedule(tmp_path: Path):
    profile = profile_at(tmp_path, rate=500, duration_s=2, journeys=MIX)
    assert whole(profile, 1) == whole(profile, 1)
    assert whole(profile, 1) != whole(profile, 2)


async def test_the_drivers_plans_split_the_single_process_plan(tmp_path: Path):
    # The drivers' own plan methods, as Driver.run and the workers call them (no connection is made).
    profile = profile_at(tmp_path, rate=600, duration_s=3, warmup_s=0.5, journeys=MIX)
    end_s = profile.warmup_s + profile.duration_s
    channel = grpc.aio.insecure_channel("127.0.0.1:9")
    try:
        single = list(plan_arrivals(Driver(profile, {"urlshortener": channel}, rng_seed=5).plan(end_s), profile))
        assert single == whole(profile, 5)
        workers = [WorkerDriver(profile, {"urlshortener": channel}, rng_seed=5, index=i, count=3) for i in range(3)]
        for worker in workers:
            assert list(plan_arrivals(worker.plan(end_s), profile)) == single[worker.index::3]
        # Request contents are drawn per worker, not in lockstep.
        assert len({worker._rng.random() for worker in workers}) == 3
    finally:
        await channel.close()


def test_trace_sizes_are_split_with_their_arrivals(tmp_path: Path):
    (tmp_path / "t.csv").write_text(TRACE)
    profile = profile_at(tmp_path, duration_s=10, warmup_s=0)
    text = profile.path.read_text().replace("  process: poisson\n  rate_per_s: 100\n",
                                            "  process: trace\n  file: t.csv\n  format: seconds\n  column: t\n  size_column: size\n")
    profile.path.write_text(text)
    profile = load_profile(profile.path)
    arrivals, journeys = plan_rngs(3)
    full = profile.arrival.schedule(arrivals, 10)
    offsets, sizes = list(full.offsets), list(full.sizes)
    for index in range(3):
        arrivals, journeys = plan_rngs(3)
        schedule, _ = partition_plan(profile.arrival.schedule(arrivals, 10), journeys.choices, index, 3)
        assert list(schedule.offsets) == offsets[index::3]
        assert list(schedule.sizes) == sizes[index::3]
        assert schedule.length_s == full.length_s  # every worker stops where the trace ends


def test_partitioned_choice_keeps_its_own_draw_of_each_round():
    draws = iter("abcdefghi")
    choose = PartitionedChoice(lambda population, cum_weights: [next(draws)], index=1, count=3)
    assert [choose(None, cum_weights=None)[0] for _ in range(3)] == ["b", "e", "h"]
    with pytest.raises(ValueError):
        partition_plan(None, None, 3, 3)  # type: ignore[arg-type]


def test_a_worker_behind_its_schedule_is_named():
    on_time, late = new_histogram(), new_histogram()
    on_time.record_value(800, 990)
    on_time.record_value(9_000, 10)  # the slowest 1 % at 9 ms: p99 = 0.8 ms
    late.record_value(800, 980)
    late.record_value(25_000, 20)    # 2 % at 25 ms: p99 = 25 ms
    reasons = behind_schedule([(0, 100, on_time), (1, 101, late), (2, 102, new_histogram())], max_p99_ms=10)
    assert len(reasons) == 1
    assert reasons[0].startswith("worker 1 (pid 101): send lag p99 25.0 ms > 10 ms")
