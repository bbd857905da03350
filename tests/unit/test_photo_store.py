"""photo-media's photos (services/photo/media/store.py) over their SQLite journal (journal.py).

Every change is committed to the journal before memory changes: a store reopened on the same folder (after a
close or a crash, the object dropped unclosed) holds every acknowledged change, and a failed write changes nothing.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from casemesh.photo.v1 import photo_pb2
from casemesh.services.photo.media.journal import PhotoJournal, PhotoRow, SizeRow
from casemesh.services.photo.media.store import PROCESSING, READY, REJECTED, UPLOADING, PhotoStore
from casemesh.services.photo.sizes import photo_id
from casemesh.services.runtime.errors import NotFound

THUMBNAIL, MEDIUM, LARGE = photo_pb2.PHOTO_SIZE_THUMBNAIL, photo_pb2.PHOTO_SIZE_MEDIUM, photo_pb2.PHOTO_SIZE_LARGE
ALL_SIZES = (THUMBNAIL, MEDIUM, LARGE)
STATUSES = (UPLOADING, PROCESSING, READY, REJECTED)


def new_row(n: int, author: str = "alice", *, status: int = UPLOADING, caption: str = "") -> PhotoRow:
    return PhotoRow(photo_id(n), author, caption or f"photo {n}", 1_700_000_000_000_000_000 + n, status, 1000 + n, 0, 0)


def size_row(pid: str, size: int, size_bytes: int = 500) -> SizeRow:
    width = {THUMBNAIL: 150, MEDIUM: 640, LARGE: 1080}[size]
    return SizeRow(pid, size, width, width * 3 // 4, size_bytes, f"{size_bytes:064x}")


def ids(records) -> list[str]:
    return [r.photo_id for r in records]


async def open_store(folder: Path) -> tuple[PhotoStore, list[str]]:
    store = PhotoStore(folder)
    queued = await store.load()
    return store, queued


async def make_ready(store: PhotoStore, n: int, author: str) -> str:
    await store.create(new_row(n, author))
    await store.transition(photo_id(n), READY, width_px=800, height_px=600)
    return photo_id(n)


@pytest.fixture
async def store(tmp_path):
    store, queued = await open_store(tmp_path)
    assert queued == []
    yield store
    store.journal.close()


# -- create, transition, add_sizes -------------------------------------------

async def test_create_stores_an_uploading_photo(store):
    row = new_row(7, "bob", caption="first")
    record = await store.create(row)
    assert record.row == row and record.status == UPLOADING and record.sizes == {}
    assert store.get(photo_id(7)) is record and store.require(photo_id(7)) is record
    assert store.get(photo_id(8)) is None
    assert store.count(UPLOADING) == 1 and store.count(READY) == 0


async def test_require_unknown_raises_not_found(store):
    with pytest.raises(NotFound, match=photo_id(3)):
        store.require(photo_id(3))
    with pytest.raises(NotFound):
        await store.transition(photo_id(3), READY)
    with pytest.raises(NotFound):
        await store.add_sizes(photo_id(3), [size_row(photo_id(3), THUMBNAIL)])
    assert store.journal.load() == ([], [])


async def test_transition_sets_status_dimensions_and_sizes(store):
    await store.create(new_row(1))
    record = await store.transition(photo_id(1), PROCESSING, width_px=4000, height_px=3000)
    assert (record.status, record.row.width_px, record.row.height_px) == (PROCESSING, 4000, 3000)
    assert record.row.caption == "photo 1" and record.row.declared_bytes == 1001
    thumb, medium = size_row(photo_id(1), THUMBNAIL), size_row(photo_id(1), MEDIUM)
    record = await store.transition(photo_id(1), READY, sizes=[thumb, medium])
    assert record.status == READY and (record.row.width_px, record.row.height_px) == (4000, 3000)  # kept
    assert record.sizes == {THUMBNAIL: thumb, MEDIUM: medium}
    assert store.get(photo_id(1)) is record


async def test_transition_merges_sizes(store):
    await store.create(new_row(1))
    await store.transition(photo_id(1), PROCESSING, sizes=[size_row(photo_id(1), THUMBNAIL, 1)])
    large = size_row(photo_id(1), LARGE, 3)
    record = await store.transition(photo_id(1), READY, sizes=[large])
    assert record.sizes == {THUMBNAIL: size_row(photo_id(1), THUMBNAIL, 1), LARGE: large}


async def test_add_sizes_keeps_status_and_replaces_same_size(store):
    pid = await make_ready(store, 1, "alice")
    record = await store.add_sizes(pid, [size_row(pid, MEDIUM, 10)])
    assert record.status == READY and record.sizes == {MEDIUM: size_row(pid, MEDIUM, 10)}
    record = await store.add_sizes(pid, [size_row(pid, MEDIUM, 11), size_row(pid, LARGE, 12)])
    assert record.sizes == {MEDIUM: size_row(pid, MEDIUM, 11), LARGE: size_row(pid, LARGE, 12)}
    assert store.get(pid).sizes == record.sizes
    assert ids(store.user_photos("alice", None, 10)) == [pid]


async def test_counts_by_status(store):
    for n in range(1, 8):
        await store.create(new_row(n))
    for n in (2, 3, 4):
        await store.transition(photo_id(n), PROCESSING)
    for n in (3, 4):
        await store.transition(photo_id(n), READY)
    await store.transition(photo_id(5), REJECTED)
    await store.transition(photo_id(4), READY)  # READY again: counted once
    assert [store.count(s) for s in STATUSES] == [3, 1, 2, 1]
    await store.transition(photo_id(4), REJECTED)
    assert [store.count(s) for s in STATUSES] == [3, 1, 1, 2]


# -- listing -----------------------------------------------------------------

async def test_user_photos_newest_first_only_ready(store):
    for n in (5, 1, 9, 3, 7):  # ready out of id order
        await make_ready(store, n, "alice")
    await store.create(new_row(8, "alice"))  # UPLOADING
    await store.create(new_row(6, "alice"))
    await store.transition(photo_id(6), PROCESSING)
    await store.create(new_row(4, "alice"))
    await store.transition(photo_id(4), REJECTED)
    await make_ready(store, 2, "bob")
    assert ids(store.user_photos("alice", None, 100)) == [photo_id(n) for n in (9, 7, 5, 3, 1)]
    assert ids(store.user_photos("bob", None, 100)) == [photo_id(2)]
    assert store.user_photos("carol", None, 100) == []
    assert ids(store.user_photos("alice", None, 2)) == [photo_id(9), photo_id(7)]
    assert store.user_photos("alice", None, 0) == []


async def test_user_photos_before_cursor_is_exclusive(store):
    for n in (10, 20, 30, 40):
        await make_ready(store, n, "alice")
    assert ids(store.user_photos("alice", photo_id(30), 100)) == [photo_id(20), photo_id(10)]
    assert ids(store.user_photos("alice", photo_id(31), 100)) == [photo_id(30), photo_id(20), photo_id(10)]
    assert ids(store.user_photos("alice", photo_id(30), 1)) == [photo_id(20)]
    assert store.user_photos("alice", photo_id(10), 100) == []
    assert ids(store.user_photos("alice", photo_id(99), 100)) == [photo_id(n) for n in (40, 30, 20, 10)]
    # paging with the last id of each page visits every photo once
    seen, before = [], None
    while page := store.user_photos("alice", before, 3):
        seen += ids(page)
        before = page[-1].photo_id
    assert seen == [photo_id(n) for n in (40, 30, 20, 10)]


async def test_photo_leaving_ready_is_unlisted(store):
    pid = await make_ready(store, 1, "alice")
    await store.transition(pid, REJECTED)
    assert store.user_photos("alice", None, 10) == [] and store.recent(["alice"], None, 10) == []


async def test_recent_merges_authors_newest_first(store):
    layout = {"alice": (1, 4, 9), "bob": (2, 3, 8), "carol": (5, 6, 7), "dave": (10,)}
    for author, numbers in layout.items():
        for n in numbers:
            await make_ready(store, n, author)
    await store.create(new_row(11, "alice"))  # not READY
    assert ids(store.recent(["alice", "bob", "carol"], None, 100)) == [photo_id(n) for n in range(9, 0, -1)]
    assert ids(store.recent(["alice", "bob", "carol"], None, 4)) == [photo_id(n) for n in (9, 8, 7, 6)]
    assert ids(store.recent(["bob", "alice"], photo_id(8), 3)) == [photo_id(4), photo_id(3), photo_id(2)]
    assert ids(store.recent(["carol", "nobody"], None, 100)) == [photo_id(7), photo_id(6), photo_id(5)]
    assert store.recent([], None, 100) == [] and store.recent(["nobody"], None, 10) == []
    assert store.recent(["alice"], None, 0) == []


async def test_recent_counts_duplicate_authors_once(store):
    for n in (1, 2, 3):
        await make_ready(store, n, "alice")
    await make_ready(store, 4, "bob")
    assert ids(store.recent(["alice", "alice", "bob", "alice"], None, 100)) == [photo_id(n) for n in (4, 3, 2, 1)]
    assert ids(store.recent(["alice"] * 5, None, 2)) == [photo_id(3), photo_id(2)]


# -- durability --------------------------------------------------------------

async def test_reopen_after_close_restores_everything(tmp_path):
    store, _ = await open_store(tmp_path)
    await store.create(new_row(1, "alice"))
    await store.create(new_row(2, "alice"))
    await store.transition(photo_id(2), PROCESSING, width_px=640, height_px=480)
    await make_ready(store, 3, "bob")
    await store.add_sizes(photo_id(3), [size_row(photo_id(3), LARGE, 99)])
    await store.create(new_row(4, "bob"))
    await store.transition(photo_id(4), REJECTED)
    await store.create(new_row(0, "carol"))
    await store.transition(photo_id(0), PROCESSING, sizes=[size_row(photo_id(0), THUMBNAIL)])
    snapshot = {pid: (store.get(pid).row, dict(store.get(pid).sizes)) for pid in map(photo_id, range(5))}
    store.journal.close()

    again, queued = await open_store(tmp_path)
    try:
        assert queued == [photo_id(0), photo_id(2)]  # the PROCESSING photos, oldest first
        assert {pid: (again.get(pid).row, again.get(pid).sizes) for pid in snapshot} == snapshot
        assert [again.count(s) for s in STATUSES] == [1, 2, 1, 1]
        assert ids(again.user_photos("bob", None, 10)) == [photo_id(3)]
    finally:
        again.journal.close()


async def test_reopen_after_crash_restores_acknowledged_changes(tmp_path):
    crashed, _ = await open_store(tmp_path)
    pids = [await make_ready(crashed, n, "alice") for n in (3, 1, 2)]
    await crashed.add_sizes(pids[0], [size_row(pids[0], MEDIUM)])
    await crashed.create(new_row(9, "alice"))
    await crashed.transition(photo_id(9), PROCESSING)
    # a crash: the object is dropped, its connection never closed (no checkpoint of the WAL)
    again, queued = await open_store(tmp_path)
    try:
        assert queued == [photo_id(9)]
        assert ids(again.user_photos("alice", None, 10)) == [photo_id(3), photo_id(2), photo_id(1)]
        assert again.get(pids[0]).sizes == {MEDIUM: size_row(pids[0], MEDIUM)}
        assert again.get(photo_id(9)).status == PROCESSING
    finally:
        again.journal.close()
        crashed.journal.close()


async def test_journal_holds_each_change_when_the_call_returns(store, tmp_path):
    reader = PhotoJournal(tmp_path)  # a second connection: sees only committed transactions
    try:
        await store.create(new_row(1))
        assert [r.status for r in reader.load()[0]] == [UPLOADING]
        await store.transition(photo_id(1), READY, width_px=10, height_px=20, sizes=[size_row(photo_id(1), LARGE)])
        photos, sizes = reader.load()
        assert (photos[0].status, photos[0].width_px, photos[0].height_px) == (READY, 10, 20)
        assert sizes == [size_row(photo_id(1), LARGE)]
        await store.add_sizes(photo_id(1), [size_row(photo_id(1), THUMBNAIL)])
        assert sorted(s.size for s in reader.load()[1]) == [THUMBNAIL, LARGE]
    finally:
        reader.close()


async def test_failed_journal_write_leaves_memory_unchanged(store, tmp_path, monkeypatch):
    await make_ready(store, 1, "alice")
    await store.create(new_row(2, "alice"))
    before = {pid: (store.get(pid).row, dict(store.get(pid).sizes)) for pid in (photo_id(1), photo_id(2))}
    counts = [store.count(s) for s in STATUSES]
    on_disk = store.journal.load()

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.journal, "write", broken)
    with pytest.raises(OSError):
        await store.create(new_row(3, "alice"))
    with pytest.raises(OSError):
        await store.transition(photo_id(2), READY, width_px=5, height_px=5, sizes=[size_row(photo_id(2), LARGE)])
    with pytest.raises(OSError):
        await store.transition(photo_id(1), REJECTED)
    with pytest.raises(OSError):
        await store.add_sizes(photo_id(1), [size_row(photo_id(1), THUMBNAIL)])

    assert store.get(photo_id(3)) is None
    assert {pid: (store.get(pid).row, store.get(pid).sizes) for pid in before} == before
    assert [store.count(s) for s in STATUSES] == counts
    assert ids(store.user_photos("alice", None, 10)) == [photo_id(1)]
    assert ids(store.recent(["alice"], None, 10)) == [photo_id(1)]
    assert store.journal.load() == on_disk

    monkeypatch.undo()  # the disk is back: the lock was released and the store works again
    await asyncio.wait_for(store.transition(photo_id(2), READY), timeout=5)
    assert ids(store.user_photos("alice", None, 10)) == [photo_id(2), photo_id(1)]


# -- the model ---------------------------------------------------------------

AUTHORS = ("a1", "a2", "a3")
PICK = st.integers(min_value=0, max_value=1_000)
SIZE_LISTS = st.lists(st.sampled_from(ALL_SIZES), unique=True, max_size=3)


class PhotoStoreMachine(RuleBasedStateMachine):
    """Any sequence of creates, status changes, added sizes and crashes: the store (and every store reopened on its
    folder) equals a dict of rows and sizes."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = Path(tempfile.mkdtemp(prefix="photo-store-"))
        self.stores: list[PhotoStore] = []
        self.store = self.reopen()
        self.rows: dict[str, PhotoRow] = {}
        self.sizes: dict[str, dict[int, SizeRow]] = {}

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    def reopen(self) -> PhotoStore:
        store = PhotoStore(self.folder)
        queued = self.run(store.load())
        self.stores.append(store)
        if hasattr(self, "rows"):
            assert queued == sorted(pid for pid, row in self.rows.items() if row.status == PROCESSING)
        return store

    def with_status(self, *statuses: int) -> list[str]:
        return sorted(pid for pid, row in self.rows.items() if row.status in statuses)

    def set_status(self, pid: str, status: int, **dims: int) -> None:
        self.rows[pid] = replace(self.rows[pid], status=status, **dims)

    @rule(n=st.integers(min_value=0, max_value=10**9), author=st.sampled_from(AUTHORS))
    def create(self, n: int, author: str) -> None:
        pid = photo_id(n)
        if pid in self.rows:
            return
        record = self.run(self.store.create(new_row(n, author)))
        assert record.status == UPLOADING
        self.rows[pid], self.sizes[pid] = new_row(n, author), {}

    @precondition(lambda self: self.with_status(UPLOADING))
    @rule(pick=PICK, width=st.integers(1, 5000), height=st.integers(1, 5000))
    def to_processing(self, pick: int, width: int, height: int) -> None:
        candidates = self.with_status(UPLOADING)
        pid = candidates[pick % len(candidates)]
        self.run(self.store.transition(pid, PROCESSING, width_px=width, height_px=height))
        self.set_status(pid, PROCESSING, width_px=width, height_px=height)

    @precondition(lambda self: self.with_status(UPLOADING, PROCESSING))
    @rule(pick=PICK, sizes=SIZE_LISTS, size_bytes=st.integers(1, 10**6))
    def to_ready(self, pick: int, sizes: list[int], size_bytes: int) -> None:
        candidates = self.with_status(UPLOADING, PROCESSING)  # UPLOADING: nothing pre-generated, READY at once
        pid = candidates[pick % len(candidates)]
        rows = [size_row(pid, s, size_bytes) for s in sizes]
        self.run(self.store.transition(pid, READY, sizes=rows))
        self.set_status(pid, READY)
        self.sizes[pid].update({r.size: r for r in rows})

    @precondition(lambda self: self.with_status(UPLOADING, PROCESSING))
    @rule(pick=PICK)
    def reject(self, pick: int) -> None:
        candidates = self.with_status(UPLOADING, PROCESSING)
        pid = candidates[pick % len(candidates)]
        self.run(self.store.transition(pid, REJECTED))
        self.set_status(pid, REJECTED)

    @precondition(lambda self: self.with_status(PROCESSING, READY))
    @rule(pick=PICK, size=st.sampled_from(ALL_SIZES), size_bytes=st.integers(1, 10**6))
    def add_size(self, pick: int, size: int, size_bytes: int) -> None:
        candidates = self.with_status(PROCESSING, READY)
        pid = candidates[pick % len(candidates)]
        record = self.run(self.store.add_sizes(pid, [size_row(pid, size, size_bytes)]))
        self.sizes[pid][size] = size_row(pid, size, size_bytes)
        assert record.status == self.rows[pid].status

    @rule()
    def crash_and_reopen(self) -> None:
        self.store = self.reopen()  # the old store is dropped unclosed (closed only in teardown)

    @invariant()
    def store_equals_model(self) -> None:
        for pid, row in self.rows.items():
            record = self.store.get(pid)
            assert record is not None and record.row == row
            assert record.sizes == self.sizes[pid]
        assert [self.store.count(s) for s in STATUSES] == [len(self.with_status(s)) for s in STATUSES]
        for author in AUTHORS:
            ready = sorted((pid for pid, row in self.rows.items() if row.status == READY and row.author_id == author),
                           reverse=True)
            assert ids(self.store.user_photos(author, None, 10_000)) == ready
            if ready:
                middle = ready[len(ready) // 2]
                assert ids(self.store.user_photos(author, middle, 10_000)) == [p for p in ready if p < middle]
        every_ready = self.with_status(READY)[::-1]
        assert ids(self.store.recent(list(AUTHORS) + ["a1"], None, 10_000)) == every_ready
        assert ids(self.store.recent(list(AUTHORS), None, 3)) == every_ready[:3]

    def teardown(self) -> None:
        for store in self.stores:
            store.journal.close()
        self.run(self.loop.shutdown_default_executor())
        self.loop.close()
        shutil.rmtree(self.folder, ignore_errors=True)


TestPhotoStoreModel = PhotoStoreMachine.TestCase
TestPhotoStoreModel.settings = settings(max_examples=30, stateful_step_count=20, deadline=None)


async def test_a_cancelled_change_does_not_let_a_second_write_overlap(store, monkeypatch):
    real_write = store.journal.write
    entered, release = threading.Event(), threading.Event()
    in_flight, most = [0], [0]
    guard = threading.Lock()

    def write(photo=None, sizes=()):
        with guard:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        try:
            if photo is not None and photo.photo_id == photo_id(1):
                entered.set()
                release.wait(5)
            real_write(photo, sizes)
        finally:
            with guard:
                in_flight[0] -= 1

    monkeypatch.setattr(store.journal, "write", write)
    first = asyncio.create_task(store.create(new_row(1)))  # e.g. an InitiatePhotoUpload whose client gave up
    await asyncio.to_thread(entered.wait, 5)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    second = asyncio.create_task(store.create(new_row(2)))
    await asyncio.sleep(0.2)
    overlapped = most[0]
    release.set()
    await second
    assert overlapped == 1
    # The cancelled caller's change still completed, in memory as on disk: the two never disagree.
    assert store.get(photo_id(1)) is not None and store.get(photo_id(2)) is not None
