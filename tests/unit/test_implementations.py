"""Choosing a service's implementation: topology `impl`, `--set SERVICE.impl=...`, the mesh's and `casemesh serve`'s checks."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from casemesh.harness.errors import ConfigError
from casemesh.harness.implementations import check_impl, implementations
from casemesh.harness.mesh import Mesh, embedded_topology
from casemesh.harness.profile import load_profile, with_settings
from casemesh.services.runtime.secrets import generate_secret
from casemesh.services.runtime.topology import TopologyError, load_topology


def test_set_impl_chooses_the_implementation_not_a_setting():
    profile = load_profile("url-shortener")
    node = with_settings(profile, ["idgen.impl=node", "idgen.counter_reserve_ids=10"])
    assert node.impls == (("idgen", "node"),) and node.settings["idgen"] == {"counter_reserve_ids": 10}
    assert with_settings(node, ["idgen.impl=python"]).impls == ()  # python is the default: nothing to record
    assert implementations("idgen") == ("python", "node") and implementations("analytics") == ("python",)


@pytest.mark.parametrize(("assignment", "message"), [
    ("idgen.impl=rust", "idgen.impl: 'rust' is not an implementation of idgen (has: python, node)"),
    ("analytics.impl=node", "analytics.impl: 'node' is not an implementation of analytics (has: python)"),
    ("video-edge.impl=node", "'video-edge' is not a service this profile starts"),
])
def test_set_impl_refuses_what_does_not_exist(assignment, message):
    with pytest.raises(ConfigError) as error:
        with_settings(load_profile("url-shortener"), [assignment])
    assert error.value.field == "--set" and message in error.value.message


def test_the_topology_endpoint_names_its_implementation(tmp_path):
    topology = embedded_topology(["urlshortener", "idgen"], tmp_path / "data", impls={"idgen": "node"})
    assert topology.endpoint("idgen").impl == "node" and topology.endpoint("urlshortener").impl == "python"
    (tmp_path / "topology.yaml").write_text(topology.dump())
    assert load_topology(tmp_path / "topology.yaml").endpoint("idgen").impl == "node"
    (tmp_path / "bad.yaml").write_text("services:\n  idgen: {address: 127.0.0.1:1, impl: java}\n")
    with pytest.raises(TopologyError) as error:
        load_topology(tmp_path / "bad.yaml")
    assert "services.idgen.impl: Input should be 'python' or 'node'" in str(error.value)


def test_the_mesh_refuses_an_unknown_implementation(tmp_path):
    with pytest.raises(ConfigError, match="not an implementation of analytics"):
        Mesh(["analytics"], tmp_path, impls={"analytics": "node"})
    check_impl("idgen", "node")


def test_serve_refuses_a_node_service_served_with_others(tmp_path):
    topology = tmp_path / "topology.yaml"
    topology.write_text("services:\n  idgen: {address: 127.0.0.1:0, impl: node}\n  analytics: {address: 127.0.0.1:0}\n")
    done = subprocess.run([sys.executable, "-m", "casemesh.harness.cli", "serve", "idgen", "analytics", "--topology", str(topology),
                           "--no-supervise"], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                          env={**os.environ, "CASEMESH_SECRET": generate_secret()})
    assert done.returncode == 2, done.stdout + done.stderr
    assert "idgen has impl: node in the topology and is served by its own process" in " ".join((done.stdout + done.stderr).split())


def test_a_call_fault_on_a_node_service_is_refused_a_process_fault_is_not():
    from casemesh.harness.faults.plan import plan_faults
    from casemesh.harness.implementations import check_faults

    profile = with_settings(load_profile("url-shortener"), ["idgen.impl=node"])
    check_faults(plan_faults(profile, ["idgen:kill,at=1s,restart_after=1s"], external=False), dict(profile.impls))
    with pytest.raises(ConfigError) as error:
        check_faults(plan_faults(profile, ["idgen/LeaseIds:abort=UNAVAILABLE@20%,at=1s,for=1s"], external=False), dict(profile.impls))
    assert error.value.field == "--fault" and "idgen runs its node implementation" in error.value.message
