"""Recordings are checked entry by entry before anything is replayed: a corrupt one exits 2 naming the entry and field.

Regression tests for harness inputs that hurt (issue 12): a start offset of
2^62 µs (one flipped bit) made ``casemesh replay`` die with MemoryError and
exit 1 while ``recording info`` read the file fine; 1e12 µs became a silent
replay of days. Both commands now refuse such files with exit 2, before any
call is sent.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from casemesh.harness.cli import app
from casemesh.harness.recording import format as fmt
from casemesh.harness.recording.replay import Replayer

METHOD = "/casemesh.urlshortener.v1.UrlShortenerService/Resolve"
runner = CliRunner()


def good_call(start_us: int, **fields) -> fmt.RecordedCall:
    call = fmt.RecordedCall(method=fields.pop("method", METHOD), start_offset_us=start_us, latency_us=fields.pop("latency_us", 2_000), **fields)
    call.requests.add(offset_us=100, size_bytes=3, data=b"abc")
    call.responses.add(offset_us=1_500, size_bytes=7)
    return call


def write(path: Path, calls: list[fmt.RecordedCall], *, duration_us: int | None = 9_000_000, raw: bytes = b"") -> Path:
    """A recording of ``calls`` (in this order), then ``raw`` bytes, then the end entry unless ``duration_us`` is None."""
    header = fmt.new_header(upstream="127.0.0.1:50051", listen="127.0.0.1:50060", recorder="test", metadata_allow=["x-*"],
                            response_data=False, created=datetime(2026, 11, 30, tzinfo=timezone.utc))
    writer = fmt.RecordingWriter(path, header)
    for call in calls:
        writer.write_call(call)
    if raw:
        writer._file.write(raw)  # noqa: SLF001 - an entry no writer of ours would produce
        writer.calls_written += 1
    writer.close(duration_us=duration_us, stop_reason="signal")
    return path


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def call_entry_with_unknown_field(call: fmt.RecordedCall) -> bytes:
    """A length-prefixed RecordingEntry whose call carries field number 99 (a varint), which format version 1 does not define."""
    body = call.SerializeToString() + varint(99 << 3) + varint(1)
    entry = varint(2 << 3 | 2) + varint(len(body)) + body
    return varint(len(entry)) + entry


def read_error(path: Path) -> fmt.RecordingError:
    with pytest.raises(fmt.RecordingError) as caught:
        fmt.read_recording(path)
    return caught.value


def entry_offset(path: Path, index: int) -> int:
    return next(offset for i, offset, _ in fmt.iter_entries(path) if i == index)


# -- the two corruptions of issue 12, through both commands ------------------------------------------


@pytest.mark.parametrize("start_us, end", [(2**62, False), (2**62, True), (10**12, False), (10**12, True)])
def test_a_flipped_offset_exits_2_in_info_and_replay_naming_entry_and_field(tmp_path, start_us, end):
    path = write(tmp_path / "flipped.cmrec", [good_call(0), good_call(start_us), good_call(20_000)],
                 duration_us=9_000_000 if end else None)
    where = f"{path}: entry 2 at byte {entry_offset(path, 2)}: call.start_offset_us: "

    info = runner.invoke(app, ["recording", "info", str(path)])
    assert info.exit_code == 2, info.output
    assert where in info.stderr and "7 days" in info.stderr and "Traceback" not in info.stderr

    out = tmp_path / "out"
    replay = runner.invoke(app, ["replay", str(path), "--target", "127.0.0.1:1", "--out", str(out), "--no-progress"])
    assert replay.exit_code == 2, replay.output
    assert where in replay.stderr and "Traceback" not in replay.stderr
    assert replay.exception is None or isinstance(replay.exception, SystemExit)
    assert not out.exists()  # refused before anything was sent


def test_a_call_after_the_recorded_end_is_refused(tmp_path):
    path = write(tmp_path / "late.cmrec", [good_call(0), good_call(30_000_000)], duration_us=9_000_000)
    error = read_error(path)
    assert (error.index, error.field) == (2, "call.start_offset_us")
    assert "ends at 30.002000 s, after the recording ended at 9.000000 s" in error.message
    info = runner.invoke(app, ["recording", "info", str(path)])
    assert info.exit_code == 2 and "entry 2 at byte" in info.stderr


def test_calls_must_be_written_in_completion_order_within_the_slack(tmp_path):
    # Written as they end: a call ending 1 s before an earlier-written one is fine (other writers' clocks) ...
    write(tmp_path / "ok.cmrec", [good_call(2_000_000), good_call(1_200_000)])
    assert len(fmt.read_recording(tmp_path / "ok.cmrec").calls) == 2
    # ... 5 s before it means one of the two offsets is corrupt.
    path = write(tmp_path / "jumbled.cmrec", [good_call(0), good_call(6_000_000), good_call(1_000_000)], duration_us=None)
    error = read_error(path)
    assert (error.index, error.field) == (3, "call.start_offset_us")
    assert "before the call of entry 2, which was written earlier" in error.message


def test_the_end_entry_must_count_the_calls(tmp_path):
    path = write(tmp_path / "count.cmrec", [good_call(0)])
    data = path.read_bytes()
    frames = list(fmt.iter_entries(path))
    end_index, end_offset, end = frames[-1]
    end.end.call_count = 5
    body = end.SerializeToString()
    path.write_bytes(data[:end_offset] + varint(len(body)) + body)
    error = read_error(path)
    assert (error.index, error.offset, error.field) == (end_index, end_offset, "end.call_count")
    assert error.message == "5 calls, but the file holds 1"


@pytest.mark.parametrize("change, field, message", [
    (lambda c: c.requests[0].__setattr__("size_bytes", 10), "call.requests[0].size_bytes", "10, but the message's data holds 3 bytes"),
    (lambda c: c.responses[0].__setattr__("size_bytes", 2**40), "call.responses[0].size_bytes", "more than a gRPC message can hold"),
    (lambda c: c.responses[0].__setattr__("offset_us", 90_000_000), "call.responses[0].offset_us", "but the call ended 0.002000 s after it"),
    (lambda c: c.requests[0].__setattr__("offset_us", -5), "call.requests[0].offset_us", "negative (-5 µs)"),
    (lambda c: c.__setattr__("timeout_us", 2**62), "call.timeout_us", "beyond 604,800,000,000 µs (7 days)"),
    (lambda c: c.__setattr__("latency_us", 10**13), "call.latency_us", "beyond 604,800,000,000 µs (7 days)"),
    (lambda c: c.__setattr__("ended_by", 7), "call.ended_by", "7 is not a CallEnd value"),
    (lambda c: c.__setattr__("status_code", 17), "call.status_code", "17 is not a gRPC status code"),
    (lambda c: c.__setattr__("method", "/casemesh.X/Y/Z"), "call.method", "is not a full method name"),
    (lambda c: c.metadata.add(key="X-Tenant", value=b"a"), "call.metadata[0].key", "'X-Tenant' is not a gRPC metadata key"),
    (lambda c: c.metadata.add(key="x-tenant", value=b"a\nb"), "call.metadata[0].value", "not printable ASCII"),
])
def test_each_field_of_a_call_is_checked(tmp_path, change, field, message):
    bad = good_call(10_000)
    change(bad)
    path = write(tmp_path / "bad.cmrec", [good_call(0), bad])
    error = read_error(path)
    assert (error.index, error.offset, error.field) == (2, entry_offset(path, 2), field)
    assert message in error.message
    assert str(error) == f"{path}: entry 2 at byte {error.offset}: {field}: {error.message}"


def test_binary_metadata_may_hold_any_bytes(tmp_path):
    call = good_call(0)
    call.metadata.add(key="x-trace-bin", value=b"\x00\xff\n")
    assert fmt.read_recording(write(tmp_path / "bin.cmrec", [call])).calls[0].metadata[0].value == b"\x00\xff\n"


def test_fields_format_version_1_does_not_define_are_refused(tmp_path):
    path = write(tmp_path / "unknown.cmrec", [good_call(0)], raw=call_entry_with_unknown_field(good_call(5_000)))
    error = read_error(path)
    assert (error.index, error.field) == (2, "call")
    assert error.message == "field number 99 is not part of format version 1: the entry is corrupt"


def test_an_impossible_creation_time_is_refused(tmp_path):
    path = write(tmp_path / "when.cmrec", [good_call(0)])
    data = path.read_bytes()
    header = next(fmt.iter_entries(path))[2]
    header.header.create_time.seconds = 2**40  # beyond year 9999
    body = header.SerializeToString()
    path.write_bytes(varint(len(body)) + body + data[entry_offset(path, 1):])
    error = read_error(path)
    assert (error.index, error.field) == (0, "header.create_time")
    info = runner.invoke(app, ["recording", "info", str(path)])
    assert info.exit_code == 2 and "header.create_time" in info.stderr


def test_a_recording_built_in_memory_beyond_7_days_is_not_replayed(tmp_path):
    header = fmt.new_header(upstream="u", listen="l", recorder="t", metadata_allow=[], response_data=False)
    recording = fmt.Recording(path=tmp_path / "x.cmrec", header=header, calls=(good_call(0), good_call(2**62)), end=None)
    with pytest.raises(ValueError, match="7 days"):
        Replayer(recording, channel=None)  # type: ignore[arg-type]


# -- user text is printed as written -------------------------------------------------------------


def test_markup_in_paths_and_recorded_methods_is_printed_as_written(tmp_path):
    folder = tmp_path / "odd[/]name[bold]"
    folder.mkdir(parents=True)  # two folders, "odd[" and "]name[bold]": the path reads odd[/]name[bold]
    path = write(folder / "calls.cmrec", [good_call(0, method="/[red]pkg.S/M")])
    info = runner.invoke(app, ["recording", "info", str(path)])
    assert info.exit_code == 0, info.output
    assert str(path) in info.stdout and "/[red]pkg.S/M" in info.stdout
    path.write_bytes(path.read_bytes()[:-3])  # cut inside the end entry
    info = runner.invoke(app, ["recording", "info", str(path)])
    assert info.exit_code == 2 and f"config error: {path}: entry 2 at byte" in info.stderr and "MarkupError" not in info.output


def test_record_refuses_a_duration_its_reader_would_refuse(tmp_path):
    done = runner.invoke(app, ["record", "--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:1", "--out", str(tmp_path / "r.cmrec"),
                               "--duration", str(8 * 86_400)])
    assert done.exit_code == 2 and "--duration: at most 604,800 s (7 days" in done.stderr
    assert not (tmp_path / "r.cmrec").exists()
