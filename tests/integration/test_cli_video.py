"""``casemesh run`` on the video mesh as a user runs it: eight services, uploads seeded through the upload plane, playback start judged."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hdrh.histogram import HdrHistogram

from .profiles import verdict_exit

CLI = [sys.executable, "-m", "casemesh.harness.cli"]
STREAM = "casemesh.video.v1.EdgeService/StreamSegments"
SLO = """apiVersion: openslo/v1
kind: SLO
metadata: {name: playback-start}
spec:
  service: video
  budgetingMethod: Occurrences
  indicator:
    metadata: {name: playback-start-sli}
    spec:
      ratioMetric:
        counter: true
        good: {metricSource: {type: casemesh, spec: {journey: playback_start, latency_le_ms: 5000}}}
        total: {metricSource: {type: casemesh, spec: {journey: playback_start}}}
  objectives:
    - target: 0.9
"""


def video_profile(directory: Path) -> Path:
    (directory / "video.slo.yaml").write_text(SLO)
    path = directory / "video.yaml"
    path.write_text("""apiVersion: casemesh.dev/v1
kind: Profile
metadata: {name: video-test}
workload: video
services: [video-catalog, video-search, video-playback, video-edge, video-storage, video-upload, video-transcode, video-transcoder]
settings:
  video-edge: {cache_bytes: 4194304, client_rtt_ms: 5, client_bandwidth_kbps: 100000, origin_rtt_ms: 5}
  video-transcoder: {concurrency: 4, cost_ms_per_video_s: 1}
seed: {videos: 6, channels: 2, viewers: 20, min_duration_s: 4, max_duration_s: 8}
arrival: {process: poisson, rate_per_s: 6}
warmup_s: 1
duration_s: 3
request_timeout_ms: 5000
journeys:
  - {name: playback_start, weight: 8}
  - {name: upload, weight: 1, params: {raw_bytes: 65536, chunk_bytes: 16384, min_duration_s: 4, max_duration_s: 6, poll_interval_ms: 50}}
  - {name: search, weight: 1}
slos: [video.slo.yaml]
""")
    return path


def casemesh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL)


def test_video_run_judges_playback_start_and_records_stream_first_message(tmp_path):
    out = tmp_path / "out"
    # Over mTLS (certificates made for the run in OUT/certs): every hop of both planes, and the harness, with certificates.
    done = casemesh("run", str(video_profile(tmp_path)), "--out", str(out), "--no-progress", "--tls", "auto")
    result = json.loads((out / "result.json").read_text())
    assert verdict_exit(done, result) == 0, done.stdout + done.stderr
    assert result["target"]["tls"] is True and (out / "certs" / "video-edge.pem").is_file()
    playback = result["journeys"]["playback_start"]
    assert playback["count"] > 5 and playback["errors"] == {}
    histogram = HdrHistogram.decode(playback["histogram"])  # the journey's histogram, exact and mergeable
    assert histogram.get_total_count() == playback["count"]
    stream = result["rpcs"][STREAM]
    assert stream["first_message"]["count"] == stream["count"]
    assert stream["first_message"]["p50_ms"] <= stream["p50_ms"]
    # Every first segment was either an edge hit or a miss; the uploads were published.
    edge = sum(result["journeys"].get(m, {}).get("count", 0) for m in ("first_segment_edge_hit", "first_segment_edge_miss"))
    assert edge == playback["count"]
    if "upload" in result["journeys"]:
        assert result["journeys"]["upload_publish"]["count"] == result["journeys"]["upload"]["count"]
    [slo] = result["slos"]
    assert slo["name"] == "playback-start" and slo["passed"]
    assert "Server streams: time to first message" in done.stdout
    # The object store kept its files under the run's output.
    assert (out / "data" / "video-storage").is_dir()


def test_bad_service_setting_fails_before_any_load(tmp_path):
    done = casemesh("run", str(video_profile(tmp_path)), "--out", str(tmp_path / "out"), "--no-progress",
                    "--set", "video-edge.cache_bytes=-1")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "--set" in done.stderr and "cache_bytes" in done.stderr
    assert not (tmp_path / "out" / "result.json").exists()


def test_profile_setting_errors_name_file_line_and_field(tmp_path):
    path = video_profile(tmp_path)
    path.write_text(path.read_text().replace("client_rtt_ms: 5,", "client_rtt_ms: fast,"))
    done = casemesh("validate", str(path))
    assert done.returncode == 2
    assert f"{path}:7" in done.stderr and "settings.video-edge.client_rtt_ms" in done.stderr
