"""Counter and Snowflake ID generators (idgen)."""

from datetime import datetime, timezone

import pytest

from casemesh.services.idgen.generators import (
    CASEMESH_EPOCH_MS,
    CounterGenerator,
    SnowflakeGenerator,
    decompose,
)
from casemesh.services.runtime.errors import ResourceExhausted


class FakeClock:
    def __init__(self, ms):
        self.ms = ms

    def __call__(self):
        return self.ms


def expand(ranges):
    return [start + k for start, count in ranges for k in range(count)]


def test_epoch_is_2026():
    assert CASEMESH_EPOCH_MS == int(datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)


# --- counter -----------------------------------------------------------------


def test_counter_leases_dense_runs():
    gen = CounterGenerator()
    assert gen.lease(3) == [(1, 3)]
    assert gen.lease(1) == [(4, 1)]
    assert gen.lease(10_000) == [(5, 10_000)]
    assert gen.next_id == 10_005


def test_counter_exhaustion_is_all_or_nothing():
    gen = CounterGenerator(start=1, maximum=10)
    assert gen.lease(8) == [(1, 8)]
    with pytest.raises(ResourceExhausted):
        gen.lease(3)
    assert gen.lease(2) == [(9, 2)]
    with pytest.raises(ResourceExhausted):
        gen.lease(1)


def test_counter_default_maximum_fits_seven_base62_chars():
    gen = CounterGenerator(start=62**7 - 2)
    assert gen.lease(1) == [(62**7 - 2, 1)]
    assert gen.lease(1) == [(62**7 - 1, 1)]
    with pytest.raises(ResourceExhausted):
        gen.lease(1)
    with pytest.raises(ValueError):
        gen.lease(0)


# --- Snowflake -----------------------------------------------------------------


def test_bit_layout_of_a_known_id():
    # 1000 ms after the epoch, worker 5, sequence 7
    expected = (1000 << 22) | (5 << 12) | 7
    assert expected == 4_194_324_487
    assert SnowflakeGenerator.compose(1000, 5, 7) == expected
    assert decompose(expected) == (1000, 5, 7)
    gen = SnowflakeGenerator(5, clock_ms=FakeClock(CASEMESH_EPOCH_MS + 1000))
    (first, count), = gen.lease(8)
    assert count == 8
    assert first == (1000 << 22) | (5 << 12)
    assert decompose(first + 7) == (1000, 5, 7)
    # largest possible ID: bit 63 stays zero
    top = SnowflakeGenerator.compose(2**41 - 1, 1023, 4095)
    assert top == 2**63 - 1
    assert decompose(top) == (2**41 - 1, 1023, 4095)


def test_worker_id_range():
    for bad in [-1, 1024]:
        with pytest.raises(ValueError):
            SnowflakeGenerator(bad)
    SnowflakeGenerator(0)
    SnowflakeGenerator(1023)
    with pytest.raises(ValueError):
        decompose(-1)
    with pytest.raises(ValueError):
        decompose(2**63)


def test_wall_clock_ids_decode_to_now():
    gen = SnowflakeGenerator(3)
    (first, _), *_ = gen.lease(1)
    ms, worker, seq = decompose(first)
    now_ms = datetime.now(timezone.utc).timestamp() * 1000 - CASEMESH_EPOCH_MS
    assert abs(ms - now_ms) < 60_000
    assert (worker, seq) == (3, 0)


def test_sequence_continues_within_a_millisecond_across_leases():
    clock = FakeClock(CASEMESH_EPOCH_MS + 50)
    gen = SnowflakeGenerator(1, clock_ms=clock)
    a = gen.lease(10)
    b = gen.lease(10)
    assert decompose(b[0][0]) == (50, 1, 10)
    assert expand(a) + expand(b) == list(range(a[0][0], a[0][0] + 20))
    clock.ms += 1
    assert decompose(gen.lease(1)[0][0]) == (51, 1, 0)  # new ms: sequence restarts


def test_sequence_overflow_moves_to_the_next_millisecond():
    gen = SnowflakeGenerator(7, clock_ms=FakeClock(CASEMESH_EPOCH_MS + 100))
    ranges = gen.lease(10_000)
    assert [count for _, count in ranges] == [4096, 4096, 1808]
    assert [decompose(start) for start, _ in ranges] == [(100, 7, 0), (101, 7, 0), (102, 7, 0)]
    # the clock has not moved, but the next lease continues after ms 102
    nxt = gen.lease(4096)
    assert [decompose(s) for s, _ in nxt] == [(102, 7, 1808), (103, 7, 0)]
    assert [c for _, c in nxt] == [2288, 1808]


def test_unique_and_increasing_over_many_leases():
    clock = FakeClock(CASEMESH_EPOCH_MS)
    gen = SnowflakeGenerator(9, clock_ms=clock)
    seen = []
    for i in range(300):
        clock.ms += i % 3  # often the same ms, sometimes not
        ranges = gen.lease(1 + (i * 37) % 5000)
        for start, count in ranges:
            assert 1 <= count <= 4096
            assert decompose(start + count - 1)[2] == decompose(start)[2] + count - 1
        seen.extend(expand(ranges))
    assert seen == sorted(seen)
    assert len(set(seen)) == len(seen)


def test_clock_going_backwards_never_repeats_an_id():
    clock = FakeClock(CASEMESH_EPOCH_MS + 10_000)
    gen = SnowflakeGenerator(2, clock_ms=clock)
    before = expand(gen.lease(100))
    clock.ms -= 5_000  # NTP step back
    during = expand(gen.lease(5000))
    clock.ms += 4_000  # still behind
    during += expand(gen.lease(10))
    clock.ms += 2_000  # past the old time again
    after = expand(gen.lease(10))
    ids = before + during + after
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert decompose(during[0]) == (10_000, 2, 100)  # carried on from the last timestamp
    assert decompose(after[0]) == (11_000, 2, 0)  # back on the real clock


def test_timestamp_overflow_is_resource_exhausted():
    clock = FakeClock(CASEMESH_EPOCH_MS + 2**41 - 1)
    gen = SnowflakeGenerator(0, clock_ms=clock)
    assert len(expand(gen.lease(4096))) == 4096  # the last millisecond still works
    with pytest.raises(ResourceExhausted):
        gen.lease(1)
    clock.ms += 10
    with pytest.raises(ResourceExhausted):
        gen.lease(1)


def test_failed_lease_changes_nothing():
    clock = FakeClock(CASEMESH_EPOCH_MS + 2**41 - 1)
    gen = SnowflakeGenerator(0, clock_ms=clock)
    gen.lease(4000)
    with pytest.raises(ResourceExhausted):
        gen.lease(200)  # would need the next ms
    assert decompose(gen.lease(96)[0][0]) == (2**41 - 1, 0, 4000)


def test_clock_before_epoch_is_an_error():
    gen = SnowflakeGenerator(0, clock_ms=FakeClock(CASEMESH_EPOCH_MS - 1))
    with pytest.raises(RuntimeError):
        gen.lease(1)
