"""Analytics click counters."""

import asyncio

from casemesh.services.analytics.counters import ClickCounters


async def test_never_clicked_code_has_zero_clicks():
    assert await ClickCounters().stats("nothing") == (0, {}, None)


async def test_record_and_stats():
    counters = ClickCounters()
    n = await counters.record(
        [("abc", 100.0, "DE"), ("abc", 300.5, ""), ("abc", 200.0, "DE"), ("xyz", 50.0, "US")]
    )
    assert n == 4
    assert await counters.stats("abc") == (3, {"DE": 2, "ZZ": 1}, 300.5)
    assert await counters.stats("xyz") == (1, {"US": 1}, 50.0)
    assert await counters.record([]) == 0
    await counters.record(iter([("abc", 250.0, "FR")]))  # older click: last time unchanged
    assert await counters.stats("abc") == (4, {"DE": 2, "ZZ": 1, "FR": 1}, 300.5)


async def test_stats_returns_a_copy():
    counters = ClickCounters()
    await counters.record([("abc", 1.0, "DE")])
    _, by_country, _ = await counters.stats("abc")
    by_country["DE"] = 999
    assert (await counters.stats("abc"))[1] == {"DE": 1}


async def test_malformed_batch_counts_nothing():
    counters = ClickCounters()
    try:
        await counters.record([("abc", 1.0, "DE"), ("bad",)])
    except ValueError:
        pass
    assert await counters.stats("abc") == (0, {}, None)


async def test_concurrent_batches_and_readers():
    counters = ClickCounters()

    async def writer(i):
        await counters.record([(f"c{i % 4}", float(i), "DE")] * 100)

    async def reader():
        total, by_country, _ = await counters.stats("c0")
        assert total == sum(by_country.values())  # never half a batch
        assert total % 100 == 0

    await asyncio.gather(*(writer(i) for i in range(40)), *(reader() for _ in range(40)))
    totals = [(await counters.stats(f"c{k}"))[0] for k in range(4)]
    assert totals == [1000] * 4
