"""Recording files (harness/recording/format.py), the recorder's metadata and address rules, and recording → profile."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from casemesh.harness.recording import format as fmt
from casemesh.harness.recording.proxy import MetadataAllowList, check_loopback
from casemesh.harness.recording.to_profile import OFFSET_COLUMN, draft_profile, snake_case, write_profile
from casemesh.harness.workloads import get_workload
from casemesh.urlshortener.v1 import urlshortener_pb2 as pb

RESOLVE = "/casemesh.urlshortener.v1.UrlShortenerService/Resolve"
SHORTEN = "/casemesh.urlshortener.v1.UrlShortenerService/Shorten"
WATCH = "/grpc.health.v1.Health/Watch"
CREATED = datetime(2026, 11, 22, 1, 2, 3, 456789, tzinfo=timezone.utc)


def header(**changes) -> fmt.RecordingHeader:
    values = dict(upstream="127.0.0.1:50051", listen="127.0.0.1:50060", recorder="casemesh test", metadata_allow=["x-*"],
                  response_data=False, created=CREATED)
    values.update(changes)
    return fmt.new_header(**values)


def call(method: str, start_us: int, *, code: int = 0, requests: list[bytes] = (b"",), responses: int = 1, **fields) -> fmt.RecordedCall:
    recorded = fmt.RecordedCall(method=method, start_offset_us=start_us, status_code=code, latency_us=fields.pop("latency_us", 1500), **fields)
    for i, data in enumerate(requests):
        recorded.requests.add(offset_us=100 + i * 1000, size_bytes=len(data), data=data)
    for i in range(responses):
        recorded.responses.add(offset_us=1200 + i * 1000, size_bytes=10 + i)
    return recorded


def write(path: Path, calls: list[fmt.RecordedCall], *, end: bool = True, head: fmt.RecordingHeader | None = None) -> Path:
    with fmt.RecordingWriter(path, head or header()) as writer:
        for recorded in calls:
            writer.write_call(recorded)
        if end:
            writer.close(duration_us=9_000_000, stop_reason="signal")
    return path


def varint_frames(data: bytes) -> list[bytes]:
    """Split a file by hand, as a reader in another language would: base-128 varint length, then that many bytes."""
    frames, pos = [], 0
    while pos < len(data):
        size = shift = 0
        while True:
            byte = data[pos]
            pos += 1
            size |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        frames.append(data[pos:pos + size])
        pos += size
    assert pos == len(data)
    return frames


# -- the file format ---------------------------------------------------------------------------------


def test_round_trip_keeps_every_field_and_sorts_calls_by_start(tmp_path):
    stream = call(WATCH, 3_000_000, code=4, responses=3, timeout_us=500_000, ended_by=fmt.pb.CALL_END_DEADLINE_EXCEEDED,
                  status_message="Deadline Exceeded")
    shorten = call(SHORTEN, 1_000_000, requests=[pb.ShortenRequest(long_url="https://example.com/a").SerializeToString()],
                   latency_us=2_500_000)
    shorten.metadata.add(key="x-tenant", value=b"acme")
    shorten.metadata.add(key="x-trace-bin", value=b"\x00\xff")
    missing = call(RESOLVE, 2_000_000, code=5, responses=0, status_message="code not found", latency_us=1_600_000)
    path = write(tmp_path / "r.cmrec", [stream, shorten, missing])  # written in completion order, not start order

    recording = fmt.read_recording(path)
    assert recording.header.format_version == fmt.FORMAT_VERSION == 1
    assert recording.created_at == CREATED
    assert recording.header.upstream_address == "127.0.0.1:50051" and list(recording.header.metadata_allow) == ["x-*"]
    assert [c.method for c in recording.calls] == [SHORTEN, RESOLVE, WATCH]
    assert list(recording.calls) == [shorten, missing, stream]  # message equality: every field survived
    assert recording.end is not None and recording.end.call_count == 3 and recording.end.stop_reason == "signal"
    assert recording.span_us == 2_000_000 and recording.methods == [SHORTEN, RESOLVE, WATCH]
    assert pb.ShortenRequest.FromString(recording.calls[0].requests[0].data).long_url == "https://example.com/a"
    assert fmt.call_metadata(recording.calls[0]) == (("x-tenant", "acme"), ("x-trace-bin", b"\x00\xff"))


def test_the_file_is_varint_delimited_recording_entries(tmp_path):
    path = write(tmp_path / "r.cmrec", [call(RESOLVE, 10), call(SHORTEN, 20)])
    frames = varint_frames(path.read_bytes())
    entries = [fmt.RecordingEntry.FromString(frame) for frame in frames]
    assert [e.WhichOneof("entry") for e in entries] == ["header", "call", "call", "end"]
    assert entries[1].call.method == RESOLVE


def test_a_growing_file_reads_without_its_end_entry(tmp_path):
    path = tmp_path / "live.cmrec"
    writer = fmt.RecordingWriter(path, header())
    writer.write_call(call(RESOLVE, 10))
    # Each entry is flushed: another process can read the calls so far while recording goes on.
    recording = fmt.read_recording(path)
    assert len(recording.calls) == 1 and recording.end is None
    writer.write_call(call(RESOLVE, 20))
    writer.close()  # no duration: no end entry, the file reads as cut short
    assert len(fmt.read_recording(path).calls) == 2 and fmt.read_recording(path).end is None


def test_a_file_cut_inside_an_entry_names_the_entry_and_its_byte_offset(tmp_path):
    path = write(tmp_path / "r.cmrec", [call(RESOLVE, 10), call(RESOLVE, 20)], end=False)
    data = path.read_bytes()
    last_frame = varint_frames(data)[-1]
    last_offset = len(data) - len(last_frame) - 1  # one-byte length prefix
    path.write_bytes(data[:-5])
    with pytest.raises(fmt.RecordingError) as caught:
        fmt.read_recording(path)
    error = caught.value
    assert (error.index, error.offset) == (2, last_offset)
    assert str(error).startswith(f"{path}: entry 2 at byte {last_offset}: ") and "cut short" in str(error)


@pytest.mark.parametrize("content, expected", [
    (b"", "the file is empty"),
    (b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", "entry 0 at byte 0: not a casemesh recording"),
])
def test_files_that_are_not_recordings_are_refused(tmp_path, content, expected):
    path = tmp_path / "other.bin"
    path.write_bytes(content)
    with pytest.raises(fmt.RecordingError, match=expected):
        fmt.read_recording(path)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(fmt.RecordingError, match=f"{tmp_path / 'nope.cmrec'}: cannot open"):
        fmt.read_recording(tmp_path / "nope.cmrec")


def test_an_unknown_format_version_is_refused(tmp_path):
    future = header()
    future.format_version = 2
    path = write(tmp_path / "v2.cmrec", [], head=future)
    with pytest.raises(fmt.RecordingError, match="entry 0 at byte 0: format version 2 is not supported"):
        fmt.read_recording(path)


@pytest.mark.parametrize("bad, problem", [
    (fmt.RecordedCall(method="Resolve"), "not a full method name"),
    (fmt.RecordedCall(method=RESOLVE, status_code=42), "status_code: 42 is not a gRPC status code"),
    (fmt.RecordedCall(method=RESOLVE, latency_us=-1), "negative"),
])
def test_invalid_calls_are_refused_with_their_index(tmp_path, bad, problem):
    path = write(tmp_path / "bad.cmrec", [call(RESOLVE, 10), bad])
    with pytest.raises(fmt.RecordingError, match=f"entry 2 at byte \\d+: .*{problem}"):
        fmt.read_recording(path)


def test_entries_after_the_end_are_refused(tmp_path):
    path = write(tmp_path / "r.cmrec", [call(RESOLVE, 10)])
    with path.open("ab") as file:
        from google.protobuf import proto

        proto.serialize_length_prefixed(fmt.RecordingEntry(call=call(RESOLVE, 20)), file)
    with pytest.raises(fmt.RecordingError, match="entry 3 at byte \\d+: call after the end entry"):
        fmt.read_recording(path)


def test_status_names_and_replayed_metadata():
    assert fmt.status_name(0) == "OK" and fmt.status_name(5) == "NOT_FOUND" and fmt.status_name(99) == "CODE_99"
    recorded = fmt.RecordedCall(method=RESOLVE)
    recorded.metadata.add(key="grpc-timeout", value=b"1S")  # never replayed, even when a file holds it
    recorded.metadata.add(key="x-user", value=b"ann")
    assert fmt.call_metadata(recorded) == (("x-user", "ann"),)


# -- what the recorder keeps and where it listens ----------------------------------------------------


def test_metadata_allow_list_never_records_credentials_through_a_wildcard():
    allow = MetadataAllowList(["x-*"])
    assert allow("x-tenant-id") and allow("x-request-id")
    assert not allow("authorization") and not allow("cookie") and not allow("traceparent")
    assert not allow("x-api-key") and not allow("x-auth-token")  # credential-like, matched only by a wildcard
    assert not allow("user-agent") and not allow(":authority") and not allow("grpc-timeout")
    assert not MetadataAllowList(["*"])("casemesh-caller")  # the mesh's caller token (a credential)
    named = MetadataAllowList(["x-*", "X-API-Key"])
    assert named("x-api-key") and not named("authorization")  # an exact name is a deliberate choice


@pytest.mark.parametrize("address", ["127.0.0.1:0", "127.0.0.1:50060", "[::1]:50060"])
def test_loopback_listen_addresses_are_accepted(address):
    assert check_loopback(address) == address


@pytest.mark.parametrize("address", ["0.0.0.0:50060", "10.1.2.3:50060", "localhost:50060", "[::]:50060", "example.com:80", "127.0.0.1"])
def test_other_listen_addresses_are_refused(address):
    with pytest.raises(ValueError, match="loopback|host:port"):
        check_loopback(address)


# -- recording → profile -----------------------------------------------------------------------------


def url_shortener_recording(tmp_path: Path) -> fmt.Recording:
    calls = [call(RESOLVE, 1_000_000 + i * 100_000) for i in range(6)]
    calls += [call("/grpc.health.v1.Health/Check", 1_050_000)]  # written as they end: out of start order, within the slack
    calls += [call(RESOLVE, 1_650_000, code=5, responses=0), call(SHORTEN, 1_700_000), call(SHORTEN, 2_900_000, timeout_us=750_000)]
    return fmt.read_recording(write(tmp_path / "traffic.cmrec", calls))


def test_snake_case_of_method_names():
    assert [snake_case(n) for n in ("Resolve", "GetStats", "HTTPGet", "LeaseIds")] == ["resolve", "get_stats", "http_get", "lease_ids"]


def test_profile_weights_follow_the_recorded_method_mix(tmp_path):
    draft = draft_profile(url_shortener_recording(tmp_path), get_workload("url-shortener"), csv_name="p.csv", name="p")
    assert draft.weights == {"resolve": 6.0, "resolve_miss": 1.0, "shorten": 2.0}
    assert not draft.equal_weights and draft.unmapped == {"grpc.health.v1.Health/Check": 1}
    lines = draft.csv.splitlines()
    assert lines[0] == OFFSET_COLUMN and len(lines) == 1 + 9  # the health check is not an arrival
    assert lines[1:3] == ["0.000000", "0.100000"] and lines[-1] == "1.900000"
    document = yaml.safe_load(draft.yaml)
    assert document["arrival"] == {"process": "trace", "file": "p.csv", "column": "offset_s", "format": "seconds", "speed": 1}
    assert document["journeys"] == [{"name": "resolve", "weight": 6}, {"name": "resolve_miss", "weight": 1}, {"name": "shorten", "weight": 2}]
    assert document["services"] == ["urlshortener", "idgen", "analytics"] and document["workload"] == "url-shortener"
    assert document["duration_s"] == 2 and document["request_timeout_ms"] == 750 and document["warmup_s"] == 0
    assert "grpc.health.v1.Health/Check" in draft.yaml  # left-out methods are named in a comment


def test_equal_weights_when_no_method_maps_onto_a_journey(tmp_path):
    recording = fmt.read_recording(write(tmp_path / "h.cmrec", [call("/grpc.health.v1.Health/Check", i * 10_000) for i in range(3)]))
    draft = draft_profile(recording, get_workload("url-shortener"), csv_name="h.csv", name="h")
    assert draft.equal_weights and set(draft.weights) == set(get_workload("url-shortener").journeys)
    assert set(draft.weights.values()) == {1.0} and draft.arrivals == 3
    assert "No recorded method maps onto a journey" in draft.yaml


def test_written_profile_loads_with_its_trace(tmp_path):
    from casemesh.harness.profile import ARRIVAL_PROCESSES, load_profile

    csv_path, _ = write_profile(url_shortener_recording(tmp_path), get_workload("url-shortener"), tmp_path / "out" / "from-rec.yaml")
    assert csv_path == tmp_path / "out" / "from-rec.csv" and csv_path.read_text().startswith("offset_s\n")
    if "trace" not in ARRIVAL_PROCESSES:
        pytest.skip("the trace arrival process is not available in this tree")
    profile = load_profile(tmp_path / "out" / "from-rec.yaml")
    assert profile.name == "from-rec" and profile.arrival.process == "trace"
    assert len(profile.arrival.trace) == 9
