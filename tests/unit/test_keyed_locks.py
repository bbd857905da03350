"""services/runtime/keyed_locks.py: one lock per key, bounded, dropped when free, several keys taken without deadlock."""

from __future__ import annotations

import asyncio

import pytest

from casemesh.services.payments.acquirer.issuer import TooManyReferences
from casemesh.services.runtime.keyed_locks import KeyedLocks


async def _hold(locks: KeyedLocks, *keys: str, log: list[str] | None = None) -> None:
    async with locks.hold_all(keys):
        if log is not None:
            log.append("+".join(keys))
        await asyncio.sleep(0)


async def test_a_key_waits_for_its_holder_and_its_lock_is_dropped_when_free():
    locks = KeyedLocks()
    async with locks.hold("a"):
        waiter = asyncio.create_task(_hold(locks, "a"))
        other = asyncio.create_task(_hold(locks, "b"))
        await other  # another key does not wait
        await asyncio.sleep(0)
        assert not waiter.done() and len(locks) == 1
    await waiter
    assert len(locks) == 0


async def test_the_bound_refuses_one_key_more_before_waiting_but_not_a_key_already_held():
    locks = KeyedLocks(1, too_many=TooManyReferences)
    async with locks.hold("a"):
        with pytest.raises(TooManyReferences, match="1 references are being decided"):
            async with locks.hold("b"):
                pass
        waiter = asyncio.create_task(_hold(locks, "a"))  # the same key waits: no new lock
        await asyncio.sleep(0)
        assert not waiter.done()
    await waiter
    async with locks.hold("b"):
        assert len(locks) == 1


async def test_overlapping_sets_of_keys_never_deadlock():
    locks, log = KeyedLocks(), []
    await asyncio.wait_for(asyncio.gather(*(_hold(locks, *keys, log=log) for keys in
                                            [("a", "b"), ("b", "a"), ("b", "c"), ("c", "a")] * 5)), 10)
    assert len(log) == 20 and len(locks) == 0
