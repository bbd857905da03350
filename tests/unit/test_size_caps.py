"""Issue 12's size and memory attacks, on the domain objects: each now fails to do harm.

- A self-minted token declaring 1 TiB: the store opens nothing and writes nothing past its maximum.
- A completed upload's token: refused for offsets and writes (FAILED_PRECONDITION).
- ``duration_s = 1e308`` on EnqueueJob: INVALID_ARGUMENT naming ``job.duration_s``.
- 500k distinct click codes: analytics stays within ``max_counters``, evicting the coldest codes.
- 5,000 clicks of one code in one RecordClicks call: refused past 1,000.
"""

from __future__ import annotations

import pytest

from casemesh.analytics.v1 import analytics_pb2
from casemesh.services.analytics.counters import ClickCounters
from casemesh.services.analytics.validation import MAX_EVENTS_PER_CODE, validate_batch
from casemesh.services.runtime.errors import FailedPrecondition, InvalidArgument
from casemesh.services.video.limits import DEFAULT_MAX_FILE_BYTES, MAX_DURATION_S
from casemesh.services.video.storage.raw_store import RawObjectStore
from casemesh.services.video.tokens import UploadGrant, raw_key
from casemesh.services.video.transcode.validation import validate_enqueue
from casemesh.video.v1 import transcode_pb2

TIB = 1 << 40


def grant(video_id: str, size: int) -> UploadGrant:
    return UploadGrant(video_id, raw_key(video_id), size, 10**15)


async def test_token_declaring_a_tebibyte_opens_nothing(tmp_path):
    store = RawObjectStore(tmp_path)
    assert store.max_object_bytes == DEFAULT_MAX_FILE_BYTES == 256 << 20
    with pytest.raises(InvalidArgument, match="more than this store's largest object") as caught:
        await store.open(grant("huge", TIB))
    assert caught.value.field == "upload_token"
    assert list((tmp_path / "raw").iterdir()) == []  # nothing kept on disk


async def test_a_lowered_maximum_stops_writes_to_objects_declared_larger(tmp_path):
    big = RawObjectStore(tmp_path, max_object_bytes=1000)
    obj = await big.open(grant("v", 1000))
    await big.append(obj, 0, b"x" * 600)
    await big.sync(obj)
    lowered = RawObjectStore(tmp_path, max_object_bytes=700)  # the limit was lowered across a restart
    with pytest.raises(InvalidArgument, match="largest object"):
        await lowered.open(grant("v", 1000))
    obj = lowered._load("v")  # even a caller that skipped open cannot write past the maximum
    with pytest.raises(InvalidArgument, match="largest object") as caught:
        await lowered.append(obj, 600, b"y" * 200)
    assert caught.value.field == "data"
    assert (tmp_path / "raw" / "v.data").stat().st_size == 600  # the refused chunk left no byte


async def test_chunk_past_the_declared_size_is_refused_whole(tmp_path):
    store = RawObjectStore(tmp_path)
    obj = await store.open(grant("v", 100))
    await store.append(obj, 0, b"a" * 90)
    with pytest.raises(InvalidArgument, match="beyond the declared size of 100") as caught:
        await store.append(obj, 90, b"b" * 20)
    assert caught.value.field == "data"
    assert store.offset(obj) == (90, 100)
    assert (tmp_path / "raw" / "v.data").stat().st_size == 90


async def test_completed_upload_token_no_longer_works(tmp_path):
    store = RawObjectStore(tmp_path)
    obj = await store.open(grant("v", 10))
    await store.append(obj, 0, b"0123456789")
    await store.sync(obj)
    with pytest.raises(FailedPrecondition, match="already complete .*no longer works"):
        await store.open(grant("v", 10))  # what GetUploadOffset and UploadObject do first
    with pytest.raises(FailedPrecondition, match="already complete"):
        await RawObjectStore(tmp_path).open(grant("v", 10))  # also after a restart


@pytest.mark.parametrize("duration", [1e308, float("inf"), float("nan"), MAX_DURATION_S + 1, 0.0, -1.0])
def test_enqueue_refuses_durations_out_of_range(duration):
    job = transcode_pb2.TranscodeJob(video_id="v", generation=1, raw_key="raw/v", duration_s=duration)
    with pytest.raises(InvalidArgument, match="at most 43200 seconds") as caught:
        validate_enqueue(job)
    assert caught.value.field == "job.duration_s"


def test_enqueue_accepts_the_longest_video():
    validate_enqueue(transcode_pb2.TranscodeJob(video_id="v", generation=1, raw_key="raw/v", duration_s=MAX_DURATION_S))


async def test_distinct_codes_stay_within_max_counters_coldest_evicted():
    evicted = []
    counters = ClickCounters(max_counters=2_000, on_evict=evicted.append)
    await counters.record([("hot", 1.0, "DE")])
    for batch in range(30):  # 30,000 distinct codes (the attack sent 500,000), with one hot code kept busy
        await counters.record([(f"c{batch}x{i}", 2.0, "US") for i in range(999)] + [("hot", 3.0, "DE")])
    assert counters.counters <= 2_000 and len(counters) <= 1_000
    assert sum(evicted) == counters.evicted_codes == 30 * 999 + 1 - len(counters)
    assert await counters.stats("hot") == (31, {"DE": 31}, 3.0)  # the busy code kept its counts
    assert await counters.stats("c0x0") == (0, {}, None)  # the coldest were evicted


def _event(code: str) -> analytics_pb2.ClickEvent:
    event = analytics_pb2.ClickEvent(code=code)
    event.click_time.FromSeconds(1_700_000_000)
    return event


def test_one_call_cannot_pile_thousands_of_clicks_on_one_code():
    validate_batch([_event("abc")] * MAX_EVENTS_PER_CODE + [_event("other")] * 10)
    with pytest.raises(InvalidArgument, match="at most 1000 clicks of one code") as caught:
        validate_batch([_event("abc")] * 5000)
    assert caught.value.field == f"events[{MAX_EVENTS_PER_CODE}].code"


def test_every_string_has_a_maximum_ignored_ids_and_tokens_included():
    from casemesh.services.video.catalog.validation import validate_views
    from casemesh.services.video.storage.validation import validate_upload_token_size

    with pytest.raises(InvalidArgument, match="1 to 32 characters") as caught:
        validate_views([("x" * 33, 1)])
    assert caught.value.field == "views"
    job = transcode_pb2.TranscodeJob(job_id="j" * 65, video_id="v", generation=1, raw_key="raw/v", duration_s=1)
    with pytest.raises(InvalidArgument) as caught:
        validate_enqueue(job)
    assert caught.value.field == "job.job_id"
    validate_upload_token_size("t" * 2048)
    with pytest.raises(InvalidArgument) as caught:
        validate_upload_token_size("t" * 2049)
    assert caught.value.field == "upload_token"
