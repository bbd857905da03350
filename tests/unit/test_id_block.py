"""Local ID blocks leased from the ID service."""

import asyncio

import pytest

from casemesh.services.idgen.id_block import IdBlockLease


class FakeLease:
    """A counter ID service; ``gate`` lets a test hold lease calls in flight."""

    def __init__(self, split: bool = False):
        self.next = 1
        self.calls: list[int] = []
        self.gate: asyncio.Event | None = None
        self.fail_with: Exception | None = None
        self.split = split

    async def __call__(self, count):
        self.calls.append(count)
        if self.gate is not None:
            await self.gate.wait()
        else:
            await asyncio.sleep(0)
        if self.fail_with is not None:
            raise self.fail_with
        start, self.next = self.next, self.next + count
        if self.split:  # two runs, like a Snowflake lease spanning two ms
            half = count // 2
            return [(start, half), (start + half + 1000, count - half)]
        return [(start, count)]


async def test_ids_are_unique_and_in_lease_order():
    lease = FakeLease()
    ids = IdBlockLease(lease, block_size=10, low_water=3)
    got = [await ids.next_id() for _ in range(55)]
    assert got == list(range(1, 56))
    assert ids.leases == len(lease.calls) >= 6
    assert set(lease.calls) == {10}


async def test_multiple_ranges_per_lease():
    ids = IdBlockLease(FakeLease(split=True), block_size=10, low_water=0)
    got = [await ids.next_id() for _ in range(10)]
    assert got == [1, 2, 3, 4, 5, 1006, 1007, 1008, 1009, 1010]


async def test_refill_happens_once_under_concurrency():
    lease = FakeLease()
    lease.gate = asyncio.Event()
    ids = IdBlockLease(lease, block_size=100, low_water=10)
    waiters = [asyncio.ensure_future(ids.next_id()) for _ in range(50)]
    await asyncio.sleep(0.01)
    assert ids.leases == 1 and ids.refilling  # all 50 wait on one lease
    lease.gate.set()
    got = await asyncio.gather(*waiters)
    assert sorted(got) == list(range(1, 51))
    assert ids.leases == 1


async def test_background_refill_below_low_water_is_single():
    lease = FakeLease()
    ids = IdBlockLease(lease, block_size=10, low_water=5)
    assert await ids.next_id() == 1  # first call waits for the first block
    lease.gate = asyncio.Event()  # hold the next lease in flight
    for expected in range(2, 11):  # drains the block without waiting
        assert await ids.next_id() == expected
    assert ids.available == 0
    assert ids.leases == 2  # one background refill, started when 4 were left
    nxt = asyncio.ensure_future(ids.next_id())  # empty: waits for that refill
    await asyncio.sleep(0.01)
    assert not nxt.done() and ids.leases == 2
    lease.gate.set()
    assert await nxt == 11
    assert ids.leases == 2


async def test_many_concurrent_callers_get_unique_ids():
    lease = FakeLease()
    ids = IdBlockLease(lease, block_size=16, low_water=4)
    got = await asyncio.gather(*(ids.next_id() for _ in range(1000)))
    assert len(set(got)) == 1000
    assert max(got) <= lease.next - 1


async def test_failed_refill_reaches_waiters_and_next_call_retries():
    lease = FakeLease()
    lease.gate = asyncio.Event()
    lease.fail_with = ConnectionError("idgen unavailable")
    ids = IdBlockLease(lease, block_size=10, low_water=2)
    waiters = [asyncio.ensure_future(ids.next_id()) for _ in range(5)]
    await asyncio.sleep(0.01)
    lease.gate.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert ids.leases == 1 and not ids.refilling
    assert isinstance(ids.last_error, ConnectionError)
    lease.fail_with = None
    assert await ids.next_id() == 1
    assert ids.leases == 2 and ids.last_error is None


async def test_failed_background_refill_is_retried_when_empty():
    lease = FakeLease()
    ids = IdBlockLease(lease, block_size=4, low_water=2)
    assert await ids.next_id() == 1
    lease.fail_with = RuntimeError("boom")
    assert await ids.next_id() == 2
    assert await ids.next_id() == 3  # 1 left: starts a background refill
    await asyncio.sleep(0.01)  # ...which fails quietly
    assert ids.leases == 2 and isinstance(ids.last_error, RuntimeError)
    lease.fail_with = None
    assert [await ids.next_id() for _ in range(4)] == [4, 5, 6, 7]
    assert ids.leases == 4  # retry after 4 ran out, then low water again at 7


async def test_cancelled_caller_does_not_cancel_the_refill():
    lease = FakeLease()
    lease.gate = asyncio.Event()
    ids = IdBlockLease(lease, block_size=10, low_water=0)
    impatient = asyncio.ensure_future(ids.next_id())
    patient = asyncio.ensure_future(ids.next_id())
    await asyncio.sleep(0.01)
    impatient.cancel()
    await asyncio.sleep(0)
    lease.gate.set()
    assert await patient == 1
    assert ids.leases == 1


async def test_aclose_cancels_refill_and_arguments_are_checked():
    lease = FakeLease()
    lease.gate = asyncio.Event()
    ids = IdBlockLease(lease, block_size=10)
    waiter = asyncio.ensure_future(ids.next_id())
    await asyncio.sleep(0.01)
    await ids.aclose()
    assert not ids.refilling
    with pytest.raises(asyncio.CancelledError):
        await waiter
    with pytest.raises(ValueError):
        IdBlockLease(lease, block_size=0)
    with pytest.raises(ValueError):
        IdBlockLease(lease, block_size=10, low_water=-1)


async def test_empty_lease_is_an_error():
    async def nothing(count):
        return []

    ids = IdBlockLease(nothing, block_size=10)
    with pytest.raises(RuntimeError):
        await ids.next_id()
