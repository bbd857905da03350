"""The service catalogue and the workload registry: every entry loads under its own name, and only on demand."""

from __future__ import annotations

import subprocess
import sys

import pytest

from casemesh.harness.workloads import WORKLOAD_NAMES, get_workload
from casemesh.services.catalog import SERVICES, definitions


def test_every_catalogued_service_loads_under_its_topology_name():
    assert [d.name for d in definitions()] == list(SERVICES)
    with pytest.raises(KeyError, match="unknown service"):
        definitions(["urlshortener", "no-such-service"])


def test_every_workload_loads_under_its_name():
    assert [get_workload(name).name for name in WORKLOAD_NAMES] == list(WORKLOAD_NAMES)
    with pytest.raises(KeyError, match="unknown workload 'nope'; known: "):
        get_workload("nope")


def test_checking_a_url_shortener_profile_imports_no_other_case_studys_libraries():
    """The start-up cost of a run: the catalogue and the workloads load only what the profile uses."""
    code = ("import sys; from casemesh.harness.profile import load_profile; load_profile('url-shortener'); "
            "print(sorted(m for m in ('numpy', 'networkx', 'PIL', 'matplotlib', 'casemesh.services.reco.candidates.model')"
            " if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
