"""``casemesh run --tls``: the URL-shortener mesh end to end over mTLS, as a user runs it (the video mesh: test_cli_video.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from casemesh.harness.certs import init_certs

from .profiles import RESOLVE, write_profile

CLI = [sys.executable, "-m", "casemesh.harness.cli"]
SHORTEN = "casemesh.urlshortener.v1.UrlShortenerService/Shorten"


def casemesh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return init_certs(tmp_path_factory.mktemp("cli-tls") / "certs")


def test_url_shortener_runs_over_mtls_with_load_workers(tmp_path, certs):
    profile = write_profile(tmp_path, rate=60, duration_s=2, warmup_s=0)
    out = tmp_path / "out"
    # Two load processes: each opens its own mTLS channels as the harness.
    done = casemesh("run", str(profile), "--tls", str(certs.directory), "--workers", "2", "--out", str(out),
                    "--no-progress", "--no-control", "--report", "off")
    # 4 only if this machine was so loaded that a worker fell behind by > 10 ms at p99: the result is written either way.
    assert done.returncode in (0, 4), done.stdout + done.stderr
    result = json.loads((out / "result.json").read_text())
    assert result["target"]["mode"] == "embedded" and result["target"]["tls"] is True
    assert result["rpcs"][RESOLVE]["count"] > 30 and result["rpcs"][RESOLVE]["errors"] == {}
    assert result["rpcs"][SHORTEN]["errors"] == {}  # Shorten leases IDs from idgen: a service-to-service mTLS hop
    topology = yaml.safe_load((out / "topology.yaml").read_text())
    assert topology["tls"]["dir"] == str(certs.directory.resolve())


def test_tls_folder_errors_are_configuration_errors(tmp_path):
    done = casemesh("run", "url-shortener", "--tls", str(tmp_path / "missing"), "--out", str(tmp_path / "out"), "--no-progress")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "--tls" in done.stderr and "casemesh certs init" in done.stderr
