"""idgen's durable high-water marks: a restart (or a crash) never hands out an ID twice."""

import os

import pytest

from casemesh.idgen.v1 import idgen_pb2 as pb
from casemesh.services.idgen import service as idgen
from casemesh.services.idgen.generators import CASEMESH_EPOCH_MS, MAX_TIMESTAMP, SnowflakeGenerator
from casemesh.services.idgen.high_water import DurableLeases, HighWaterMark, MarkFileError
from casemesh.services.runtime.component import RuntimeContext
from casemesh.services.runtime.topology import Endpoint, Topology


def ids_of(response):
    return [r.start + k for r in response.ranges for k in range(r.count)]


async def start_idgen(data_dir, **settings):
    """A fresh idgen process' worth of state over ``data_dir`` (what a restart builds)."""
    topology = Topology(services={"idgen": Endpoint(address="127.0.0.1:1")}, data_dir=str(data_dir),
                        settings={"idgen": settings} if settings else {})
    component = await idgen.build(RuntimeContext(topology))
    return component.servicer


async def lease(servicer, count, layout=pb.ID_LAYOUT_COUNTER):
    return ids_of(await servicer.LeaseIds(pb.LeaseIdsRequest(count=count, layout=layout), None))


async def test_counter_restart_never_reissues(tmp_path):
    first = await start_idgen(tmp_path)
    before = await lease(first, 256) + await lease(first, 10)
    assert before == list(range(1, 267))
    second = await start_idgen(tmp_path)  # the first "crashed": nothing but the mark survives
    after = await lease(second, 256)
    assert min(after) > max(before)
    assert after == list(range(267, 523))  # with no reserve, not even a gap


async def test_counter_reserve_skips_at_most_the_reserve(tmp_path):
    first = await start_idgen(tmp_path, counter_reserve_ids=1000)
    before = await lease(first, 10) + await lease(first, 10)
    assert HighWaterMark(tmp_path / "idgen" / "counter.mark").load() == 10 + 1000  # one write covered both
    after = await lease(await start_idgen(tmp_path, counter_reserve_ids=1000), 5)
    assert after[0] == 1011 and not set(after) & set(before)


async def test_counter_start_setting_applies_to_a_fresh_folder_only(tmp_path):
    assert await lease(await start_idgen(tmp_path, counter_start=1_000_000), 3) == [1_000_000, 1_000_001, 1_000_002]
    # A stored mark above the configured start wins; a start above the mark wins too.
    assert (await lease(await start_idgen(tmp_path, counter_start=5), 1)) == [1_000_003]
    assert (await lease(await start_idgen(tmp_path, counter_start=2_000_000), 1)) == [2_000_000]


async def test_mark_is_fsynced_before_the_lease_returns(tmp_path, monkeypatch):
    synced: list[int] = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    servicer = await start_idgen(tmp_path)
    mark = HighWaterMark(tmp_path / "idgen" / "counter.mark")
    for _ in range(3):
        synced.clear()
        got = await lease(servicer, 100)
        assert len(synced) >= 2  # the new file's data, then the folder holding the rename
        assert mark.load() >= max(got)  # on disk before the IDs left the service


async def test_snowflake_restart_with_the_clock_behind_never_reissues(tmp_path):
    mark = HighWaterMark(tmp_path / "snowflake-0.mark")
    clock = [CASEMESH_EPOCH_MS + 10_000_000]  # Unix ms

    def start():
        generator = SnowflakeGenerator(0, clock_ms=lambda: clock[0])
        stored = mark.load()
        if stored is not None:
            generator.resume_after(stored)
        return DurableLeases(generator, mark, top=lambda _r: generator.last_ms,
                             ceiling=-1 if stored is None else stored, reserve=50, limit=MAX_TIMESTAMP)

    def expand(ranges):
        return [s + k for s, n in ranges for k in range(n)]

    first = start()
    before = expand(await first.lease(5000)) + expand(await first.lease(100))  # runs a ms ahead of the clock
    clock[0] -= 5_000  # NTP stepped the clock back 5 s across the restart
    after = expand(await start().lease(5000))
    assert min(after) > max(before)
    assert len(set(before) | set(after)) == len(before) + len(after)


async def test_a_failed_mark_write_hands_out_nothing_and_is_unavailable(tmp_path, monkeypatch):
    servicer = await start_idgen(tmp_path)
    before = await lease(servicer, 10)

    def broken(self, value):
        raise OSError(28, "No space left on device")

    class Aborted(Exception):
        pass

    class Context:
        async def abort(self, code, details):
            raise Aborted(code, details)

    monkeypatch.setattr(HighWaterMark, "store", broken)
    with pytest.raises(Aborted) as failed:
        await servicer.LeaseIds(pb.LeaseIdsRequest(count=10, layout=pb.ID_LAYOUT_COUNTER), Context())
    code, details = failed.value.args
    assert code.name == "UNAVAILABLE" and "No space left on device" in details
    monkeypatch.undo()
    after = await lease(await start_idgen(tmp_path), 10)
    assert min(after) > max(before)


async def test_a_corrupt_mark_fails_start_naming_the_file(tmp_path):
    (tmp_path / "idgen").mkdir()
    (tmp_path / "idgen" / "counter.mark").write_text("not a number\n")
    with pytest.raises(MarkFileError, match="counter.mark"):
        await start_idgen(tmp_path)
