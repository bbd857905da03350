"""Property test: whatever bytes a user hands the harness, its file loaders answer with exit 2 and a message, never a traceback.

Every file loader is fed random bytes and mutations of a valid file (bits
flipped, bytes set, ranges deleted, duplicated or cut, YAML/CSV/markup tokens
inserted): profile YAML, SLO YAML and the trace and rate-curve CSVs through
``casemesh validate``, recordings through ``casemesh recording info``, the
topology YAML through ``load_topology`` (``casemesh serve`` would start
servers). A mutation may leave the file valid (exit 0); anything else must be
exit 2 with ``config error: ...`` on stderr, and no exception may escape.
``casemesh report`` gets documents that are not results (not UTF-8, other
JSON shapes).

The default run is short and deterministic (``derandomize``, no example
database; 20 examples per loader); ``CASEMESH_FUZZ_EXAMPLES=1500`` runs a longer search
(about 10 minutes here: it found no crash left).
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.main import get_command
from typer.testing import CliRunner

from casemesh.harness.cli import app
from casemesh.harness.recording import format as fmt
from casemesh.services.runtime.topology import DEFAULT_TOPOLOGY, Topology, TopologyError, load_topology

EXAMPLES = int(os.environ.get("CASEMESH_FUZZ_EXAMPLES", "20"))
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
runner = CliRunner()
#: The ``casemesh`` command, built once (``CliRunner.invoke`` builds it again at every call: about 0.1 s here).
CASEMESH = get_command(app)


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None


def casemesh(*args: str) -> Outcome:
    """Run ``casemesh ARGS`` in this process as ``CliRunner.invoke`` does, with the command built once."""
    with runner.isolation() as (stdout, stderr, _):
        code, exception = 0, None
        try:
            CASEMESH.main(args=list(args), prog_name="casemesh")
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else 1
        except Exception as error:  # noqa: BLE001 - what this test looks for
            code, exception = 1, error
        sys.stdout.flush()
        sys.stderr.flush()
        return Outcome(code, stdout.getvalue().decode(), stderr.getvalue().decode(), exception)

PROFILE = """\
apiVersion: casemesh.dev/v1
kind: Profile
metadata: {{name: fuzz, description: the seed of the loader property test}}
workload: url-shortener
services: [urlshortener, idgen, analytics]
seed: {{urls: 10}}
arrival:
{arrival}
warmup_s: 1
duration_s: 5
request_timeout_ms: 500
journeys:
  - {{name: resolve, weight: 9, params: {{zipf_exponent: 1.0}}}}
  - {{name: shorten, weight: 1}}
slos: {slos}
"""
#: A small SLO file (each example parses it): a client-side latency SLO and its Prometheus twin.
SLOS = b"""\
apiVersion: openslo/v1
kind: SLO
metadata:
  name: resolve-latency
  displayName: Resolve p99 within 10 ms
  annotations: {casemesh.dev/reason: the redirect a person waits for}
spec:
  service: url-shortener
  budgetingMethod: Occurrences
  indicator:
    metadata: {name: resolve-within-10ms}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {type: casemesh, spec: {rpc: casemesh.urlshortener.v1.UrlShortenerService/Resolve, latency_le_ms: 10}}}
        total: {metricSource: {type: casemesh, spec: {rpc: casemesh.urlshortener.v1.UrlShortenerService/Resolve, codes: [OK, NOT_FOUND]}}}
  objectives:
    - {displayName: 99% within 10 ms, target: 0.99}
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: resolve-latency-server
  annotations: {casemesh.dev/twin-of: resolve-latency}
spec:
  service: url-shortener
  budgetingMethod: Occurrences
  indicator:
    metadata: {name: resolve-handled-within-10ms}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {type: Prometheus, spec: {query: 'sum(increase(x_bucket{le="0.01"}[$window]))'}}}
        total: {metricSource: {type: Prometheus, spec: {query: 'sum(increase(x_count[$window]))'}}}
  objectives:
    - {target: 0.99}
"""
TRACE_ARRIVAL = "  process: trace\n  file: t.csv\n  column: t\n  format: seconds\n  size_column: size\n  end_s: 4"
DATETIME_ARRIVAL = "  process: trace\n  file: d.csv\n  format: datetime"
CURVE_ARRIVAL = "  process: rate_curve\n  file: c.csv\n  interpolation: linear"
TRACE_CSV = b"t,size\n0.0,10\n0.5,20\n1.25,5\n3,7\n"
DATETIME_CSV = b"ts,other\n2023-11-16 18:15:46.6805900,a\n2023-11-16T18:15:47Z,b\n2023-11-16 18:15:49+01:00,c\n"
CURVE_CSV = b"time_s,rate_per_s\n0,10\n2.5,40\n5,20\n"

#: Bytes that mean something to YAML, CSV, Rich markup or number parsers.
TOKENS = [b"[/]", b"[bold]", b"\xff\xfe", b"\x00", b"\r", b"\t", b"\n", b"- ", b": ", b"{", b"}", b"[", b"]", b",", b'"', b"'",
          b"&a ", b"*a", b"<<: *a", b"!!binary ", b"!!python/object:os.system ", b"---\n", b"...\n", b"? ", b"|\n", b"%YAML 1.1\n",
          b"1e999", b"-1", b"nan", b".inf", b"0x10", b"9" * 40, b"2023-13-45 25:61:61", b"\xef\xbb\xbf", b"~", b"null"]


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` with 1 to 4 random edits."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "delete", "insert", "token", "duplicate", "truncate"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[at] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0xFF, ord("["), ord(":"), ord("-")]))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 16))]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "token":
            data[at:at] = draw(st.sampled_from(TOKENS))
        elif op == "duplicate":
            data[at:at] = data[at:at + draw(st.integers(1, 64))]
        elif op == "truncate":
            del data[at:]
    return bytes(data)


def inputs(seed: bytes) -> st.SearchStrategy[bytes]:
    """Mostly mutations of a valid file, sometimes bytes from nowhere."""
    return st.one_of(mutated(seed), mutated(seed), mutated(seed), st.binary(max_size=512))


def assert_exit_2_or_valid(result: Outcome, content: bytes) -> None:
    """Exit 0 (the edit left the file valid) or exit 2 with ``config error: MESSAGE``; no exception, no traceback."""
    shown = content[:300]
    if result.exception is not None:
        trace = "".join(traceback.format_exception(result.exception))
        pytest.fail(f"{type(result.exception).__name__} escaped for input {shown!r}:\n{trace}")
    assert result.exit_code in (0, 2), f"exit {result.exit_code} for input {shown!r}: {result.stdout} {result.stderr}"
    assert "Traceback" not in result.stderr
    if result.exit_code == 2:
        assert result.stderr.startswith("config error: ") and len(result.stderr.strip()) > len("config error:"), (shown, result.stderr)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A profile folder with valid files: each test overwrites one of them with fuzzed bytes and restores it."""
    path = tmp_path_factory.mktemp("fuzz")
    (path / "p.yaml").write_text(PROFILE.format(arrival=TRACE_ARRIVAL, slos="[s.slo.yaml]"))
    (path / "dt.yaml").write_text(PROFILE.format(arrival=DATETIME_ARRIVAL, slos="[]"))
    (path / "curve.yaml").write_text(PROFILE.format(arrival=CURVE_ARRIVAL, slos="[]"))
    (path / "s.slo.yaml").write_bytes(SLOS)
    (path / "t.csv").write_bytes(TRACE_CSV)
    (path / "d.csv").write_bytes(DATETIME_CSV)
    (path / "c.csv").write_bytes(CURVE_CSV)
    return path


def validate(folder: Path, profile: str, name: str, content: bytes) -> None:
    """``casemesh validate FOLDER/PROFILE`` with ``FOLDER/NAME`` holding ``content``, then ``NAME`` restored."""
    target = folder / name
    original = target.read_bytes()
    target.write_bytes(content)
    try:
        assert_exit_2_or_valid(casemesh("validate", str(folder / profile)), content)
    finally:
        target.write_bytes(original)


def test_the_seeds_are_valid(folder: Path):
    for profile in ("p.yaml", "dt.yaml", "curve.yaml"):
        done = casemesh("validate", str(folder / profile))
        assert done.exit_code == 0, done.stderr
    assert casemesh("recording", "info", str(write_recording(folder / "seed.cmrec"))).exit_code == 0


@FUZZ
@given(content=inputs(PROFILE.format(arrival=TRACE_ARRIVAL, slos="[s.slo.yaml]").encode()))
def test_profile_yaml(folder: Path, content: bytes):
    validate(folder, "p.yaml", "p.yaml", content)


@FUZZ
@given(content=inputs(SLOS))
def test_slo_yaml(folder: Path, content: bytes):
    validate(folder, "p.yaml", "s.slo.yaml", content)


@FUZZ
@given(content=inputs(TRACE_CSV))
def test_trace_csv_in_seconds_with_sizes(folder: Path, content: bytes):
    validate(folder, "p.yaml", "t.csv", content)


@FUZZ
@given(content=inputs(DATETIME_CSV))
def test_trace_csv_of_datetimes(folder: Path, content: bytes):
    validate(folder, "dt.yaml", "d.csv", content)


@FUZZ
@given(content=inputs(CURVE_CSV))
def test_rate_curve_csv(folder: Path, content: bytes):
    validate(folder, "curve.yaml", "c.csv", content)


@FUZZ
@given(content=inputs(DEFAULT_TOPOLOGY.read_bytes()))
def test_topology_yaml(folder: Path, content: bytes):
    path = folder / "topology.yaml"
    path.write_bytes(content)
    try:
        loaded = load_topology(path)
    except TopologyError as error:
        assert str(error).startswith(str(path)) and len(str(error)) > len(str(path)) + 2
    else:
        assert isinstance(loaded, Topology)


def write_recording(path: Path) -> Path:
    header = fmt.new_header(upstream="127.0.0.1:50051", listen="127.0.0.1:50060", recorder="casemesh fuzz", metadata_allow=["x-*"],
                            response_data=True, created=datetime(2026, 12, 1, tzinfo=timezone.utc))
    with fmt.RecordingWriter(path, header) as writer:
        for i, (method, code) in enumerate([("Resolve", 0), ("Shorten", 0), ("Resolve", 5)]):
            call = fmt.RecordedCall(method=f"/casemesh.urlshortener.v1.UrlShortenerService/{method}", start_offset_us=1_000 + i * 250_000,
                                    latency_us=1_800, timeout_us=500_000, status_code=code, status_message="" if code == 0 else "code 'x' not found")
            call.requests.add(offset_us=40, size_bytes=6, data=b"\n\x04abcd")
            call.responses.add(offset_us=1_700, size_bytes=3, data=b"\n\x01z")
            call.metadata.add(key="x-tenant", value=b"acme")
            call.metadata.add(key="x-trace-bin", value=b"\x00\x01")
            writer.write_call(call)
        writer.close(duration_us=900_000, stop_reason="signal")
    return path


def recording_seed() -> bytes:
    with tempfile.TemporaryDirectory() as directory:
        return write_recording(Path(directory) / "seed.cmrec").read_bytes()


RECORDING_SEED = recording_seed()


@FUZZ
@given(content=inputs(RECORDING_SEED))
def test_recording(folder: Path, content: bytes):
    path = folder / "calls.cmrec"
    path.write_bytes(content)
    assert_exit_2_or_valid(casemesh("recording", "info", str(path)), content)


@pytest.mark.parametrize("content", [b"\xff\xfe", b"{}", b"[1]", b'{"rpcs": 5, "slos": 5}', b'{"steps": [1], "capacity_rate_per_s": "x"}',
                                     b'{"rpcs": {"a": 1}, "slos": [{"name": 1}]}'])
def test_report_of_a_document_that_is_not_a_result(folder: Path, content: bytes):
    path = folder / "result.json"
    path.write_bytes(content)
    done = casemesh("report", str(path), "--out", str(folder / "report.html"))
    assert_exit_2_or_valid(done, content)
    assert done.exit_code == 2


@pytest.mark.parametrize("content, lines", [
    (b"services: {a: {address: '127.0.0.1:1', adress: x}}\nserver: {grase_s: 1, max_concurrent_rpcs: 0}\n", [
        "services.a.adress: unknown field 'adress' (did you mean 'address'?)",
        "server.grase_s: unknown field 'grase_s' (did you mean 'grace_s'?)",
        "server.max_concurrent_rpcs: Input should be greater than or equal to 1",
    ]),
    (b"services: [\n", [":2: invalid YAML: while parsing a flow node: expected the node content, but found '<stream end>'"]),
    (b"\xff\xfe", [": not UTF-8 text: invalid start byte at byte 0"]),
    (b"- a\n", [": expected a mapping with services:, found list"]),
    (b"[" * 5000, [": invalid YAML: collections nested too deeply"]),
])
def test_topology_errors_name_the_file_and_every_problem(folder: Path, content: bytes, lines: list[str]):
    path = folder / "bad-topology.yaml"
    path.write_bytes(content)
    with pytest.raises(TopologyError) as caught:
        load_topology(path)
    found = str(caught.value).splitlines()
    assert all(line.startswith(str(path)) for line in found)
    assert sorted(line.removeprefix(str(path)) for line in found) == sorted(
        expected if expected.startswith(":") else f": {expected}" for expected in lines)
