"""The shared group-commit writer (services/runtime/group_commit.py): many concurrent writes share few commits; a write
that raises rolls back alone and its exception reaches its caller; ``apply`` runs in commit order before any caller
resumes; a failed COMMIT fails every write of its batch with Unavailable and leaves nothing half-written; reads and
close.

No test depends on the machine's speed: the concurrent writes are all queued before the event loop runs the committer
(none awaits before ``write``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Histogram

from casemesh.services.runtime.errors import Unavailable
from casemesh.services.runtime.group_commit import GroupCommit
from casemesh.services.runtime.sqlite_journal import open_durable

SCHEMA = ("CREATE TABLE IF NOT EXISTS items (k TEXT PRIMARY KEY, v INTEGER NOT NULL CHECK (v >= 0))",
          "CREATE TABLE IF NOT EXISTS parents (id INTEGER PRIMARY KEY)",
          ("CREATE TABLE IF NOT EXISTS children (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parents (id) "
           "DEFERRABLE INITIALLY DEFERRED)"))


def insert(key: str, value: int):
    def fn(db: sqlite3.Connection) -> int:
        db.execute("INSERT INTO items (k, v) VALUES (?, ?)", (key, value))
        return value
    return fn


def rows(path: Path) -> dict[str, int]:
    db = sqlite3.connect(path)
    try:
        return dict(db.execute("SELECT k, v FROM items"))
    finally:
        db.close()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "log.sqlite3"


def histograms() -> tuple[Histogram, Histogram]:
    registry = CollectorRegistry()
    return (Histogram("t_commit_seconds", "t", registry=registry),
            Histogram("t_writes_per_commit", "t", registry=registry, buckets=(1, 2, 4, 8, 16, 64, 256, 1024)))


def count(histogram: Histogram) -> float:
    return next(s.value for s in histogram.collect()[0].samples if s.name.endswith("_count"))


def total(histogram: Histogram) -> float:
    return next(s.value for s in histogram.collect()[0].samples if s.name.endswith("_sum"))


async def test_concurrent_writes_share_commits(path: Path) -> None:
    commit_seconds, per_commit = histograms()
    store = GroupCommit(open_durable(path, SCHEMA), name="t", commit_seconds=commit_seconds,
                        writes_per_commit=per_commit)
    results = await asyncio.gather(*(store.write(insert(f"k{i}", i)) for i in range(200)))
    assert results == list(range(200))
    assert count(commit_seconds) == count(per_commit)
    assert count(per_commit) < 200 / 2  # all were queued before the first commit: 1 or 2 transactions
    assert total(per_commit) == 200
    await store.close()
    assert rows(path) == {f"k{i}": i for i in range(200)}


async def test_max_writes_bounds_a_batch(path: Path) -> None:
    _, per_commit = histograms()
    store = GroupCommit(open_durable(path, SCHEMA), name="t", max_writes=8, writes_per_commit=per_commit)
    await asyncio.gather(*(store.write(insert(f"k{i}", i)) for i in range(64)))
    assert count(per_commit) >= 8
    await store.close()
    assert len(rows(path)) == 64


async def test_a_failing_write_rolls_back_alone(path: Path) -> None:
    store = GroupCommit(open_durable(path, SCHEMA), name="t")
    applied: list[int] = []

    def half_then_fail(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO items (k, v) VALUES ('half', 1)")
        raise KeyError("refused")

    outcomes = await asyncio.gather(
        store.write(insert("a", 1), applied.append),
        store.write(half_then_fail, applied.append),
        store.write(insert("a", 2), applied.append),  # primary key: refused by SQLite, alone
        store.write(insert("neg", -1), applied.append),  # CHECK constraint
        store.write(insert("b", 3), applied.append),
        return_exceptions=True)
    assert outcomes[0] == 1 and outcomes[4] == 3
    assert isinstance(outcomes[1], KeyError)
    assert isinstance(outcomes[2], sqlite3.IntegrityError)
    assert isinstance(outcomes[3], sqlite3.IntegrityError)
    assert applied == [1, 3]
    await store.close()
    assert rows(path) == {"a": 1, "b": 3}


async def test_apply_runs_in_commit_order_before_any_caller_resumes(path: Path) -> None:
    store = GroupCommit(open_durable(path, SCHEMA), name="t")
    applied: list[int] = []
    seen_at_resume: list[list[int]] = []

    async def writer(i: int) -> None:
        await store.write(insert(f"k{i}", i), applied.append)
        seen_at_resume.append(list(applied))

    await asyncio.gather(*(writer(i) for i in range(50)))
    assert applied == list(range(50))
    # the first caller to resume saw every apply of its batch done already
    assert seen_at_resume[0] != [] and seen_at_resume[0] == applied[:len(seen_at_resume[0])]
    assert all(len(seen) >= 1 for seen in seen_at_resume)
    await store.close()


async def test_a_failed_commit_fails_the_batch_and_writes_nothing(path: Path) -> None:
    db = open_durable(path, SCHEMA)
    db.execute("PRAGMA foreign_keys=ON")
    store = GroupCommit(db, name="t")
    applied: list[object] = []

    def orphan(db: sqlite3.Connection) -> str:  # a deferred foreign key: refused at COMMIT, not at the statement
        db.execute("INSERT INTO children (id, parent) VALUES (1, 99)")
        return "orphan"

    outcomes = await asyncio.gather(store.write(insert("a", 1), applied.append), store.write(orphan, applied.append),
                                    store.write(insert("b", 2), applied.append), return_exceptions=True)
    assert all(isinstance(outcome, Unavailable) for outcome in outcomes), outcomes
    assert isinstance(outcomes[0].__cause__, sqlite3.Error)
    assert applied == []
    # the store carries on: the next batch commits
    assert await store.write(insert("c", 3), applied.append) == 3
    assert applied == [3]
    assert await store.run(lambda db: db.execute("SELECT count(*) FROM children").fetchone()[0]) == 0
    await store.close()
    assert rows(path) == {"c": 3}


async def test_a_failing_apply_fails_its_own_writer_only(path: Path) -> None:
    store = GroupCommit(open_durable(path, SCHEMA), name="t")

    def broken(_: int) -> None:
        raise RuntimeError("bug")

    outcomes = await asyncio.gather(store.write(insert("a", 1), broken), store.write(insert("b", 2)),
                                    return_exceptions=True)
    assert isinstance(outcomes[0], RuntimeError) and outcomes[1] == 2
    await store.close()
    assert rows(path) == {"a": 1, "b": 2}  # committed all the same


async def test_a_cancelled_caller_does_not_stop_its_write(path: Path) -> None:
    store = GroupCommit(open_durable(path, SCHEMA), name="t")
    applied: list[int] = []
    task = asyncio.create_task(store.write(insert("a", 1), applied.append))
    await asyncio.sleep(0)  # queued
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await store.close()  # waits for the queued write
    assert applied == [1]
    assert rows(path) == {"a": 1}


async def test_run_reads_committed_state_and_close_refuses_later_calls(path: Path) -> None:
    store = GroupCommit(open_durable(path, SCHEMA), name="t")
    await store.write(insert("a", 1))
    assert await store.run(lambda db: dict(db.execute("SELECT k, v FROM items"))) == {"a": 1}
    with pytest.raises(ZeroDivisionError):
        await store.run(lambda db: 1 // 0)
    pending = [store.write(insert(f"k{i}", i)) for i in range(10)]
    tasks = [asyncio.ensure_future(p) for p in pending]
    await asyncio.sleep(0)
    await store.close()
    assert [t.result() for t in tasks] == list(range(10))  # close waited for the queued writes
    assert store.closed
    with pytest.raises(Unavailable):
        await store.write(insert("z", 1))
    with pytest.raises(Unavailable):
        await store.run(lambda db: None)
    await store.close()  # twice is harmless
    assert len(rows(path)) == 11


async def test_a_new_writer_on_the_same_file_sees_everything(path: Path) -> None:
    store = GroupCommit(open_durable(path, SCHEMA), name="t")
    await asyncio.gather(*(store.write(insert(f"k{i}", i)) for i in range(20)))
    await store.close()
    again = GroupCommit(open_durable(path, SCHEMA), name="t")
    assert await again.run(lambda db: db.execute("SELECT count(*) FROM items").fetchone()[0]) == 20
    await again.close()
