"""casemesh deploy k8s: the manifests validate offline against the Kubernetes schemas, and say what the mesh needs to start.

kubernetes-validate bundles the OpenAPI schemas of each Kubernetes release;
``strict=True`` also refuses fields the schema does not know (a typo such as
``readinesProbe`` would otherwise pass silently). No cluster is involved.
"""

from __future__ import annotations

import functools
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from typer.testing import CliRunner

from casemesh.harness.cli import app
from casemesh.harness.deploy.k8s import HarnessPlan, generate
from casemesh.harness.deploy.objects import ManifestError
from casemesh.services.runtime.bind_check import check_binds
from casemesh.services.runtime.secrets import SecretError, load_mesh_secret
from casemesh.services.runtime.topology import Topology, load_topology

ROOT = Path(__file__).resolve().parents[2]
#: The oldest Kubernetes the manifests target: the grpc: probe is GA since 1.27, Indexed Jobs since 1.24.
KUBERNETES_VERSION = "1.27.0"


@pytest.fixture(scope="module")
def plain_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("k8s-plain")
    result = CliRunner().invoke(app, ["deploy", "k8s", "--topology", str(ROOT / "deploy/topology.yaml"), "--out", str(out),
                                      "--with-harness", "url-shortener", "--harness-workers", "3", "--rate-scale", "0.5"])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def tls_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("k8s-tls")
    result = CliRunner().invoke(app, ["deploy", "k8s", "--topology", str(ROOT / "deploy/topology.tls.yaml"), "--out", str(out),
                                      "--namespace", "bench", "--with-harness", "url-shortener-trace"])
    assert result.exit_code == 0, result.output
    return out


@functools.cache
def _documents(out: Path) -> dict[str, list[dict]]:
    return {path.name: [d for d in yaml.safe_load_all(path.read_text()) if d] for path in sorted(out.glob("*.yaml"))}


def _objects(out: Path, kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for docs in _documents(out).values() for d in docs if d["kind"] == kind}


@pytest.mark.parametrize("which", ["plain_out", "tls_out"])
def test_every_manifest_validates_against_the_kubernetes_schemas(which: str, request: pytest.FixtureRequest) -> None:
    out = request.getfixturevalue(which)
    documents = _documents(out)
    checked = 0
    for name, docs in documents.items():
        for doc in docs:
            if doc["kind"] == "Kustomization":
                continue
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)  # raises ValidationError naming the field
            checked += 1
    assert checked >= 10
    assert "&id" not in "".join(p.read_text() for p in out.glob("*.yaml")), "YAML anchors: some tools reject them"


def test_the_schema_check_catches_a_misspelt_field() -> None:
    """The validation above is not vacuous: an unknown field is refused."""
    deployment = generate(load_topology(ROOT / "deploy/topology.yaml"))["service-idgen.yaml"][0]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"grpc": {"port": 50051}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("which", ["plain_out", "tls_out"])
def test_the_kustomization_lists_every_manifest(which: str, request: pytest.FixtureRequest) -> None:
    out = request.getfixturevalue(which)
    kustomization = yaml.safe_load((out / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in out.glob("*.yaml") if p.name != "kustomization.yaml")


def test_each_service_runs_casemesh_serve_with_probes_metrics_resources_and_the_secret(plain_out: Path) -> None:
    deployments = _objects(plain_out, "Deployment")
    services = _objects(plain_out, "Service")
    assert set(deployments) == {"urlshortener", "idgen", "analytics"}
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]
        (serve,) = pod["spec"]["containers"]
        assert serve["args"] == ["serve", name, "--topology", "/etc/casemesh/topology.yaml", "--no-supervise"]
        assert serve["readinessProbe"]["grpc"] == {"port": 50051} and serve["livenessProbe"]["grpc"] == {"port": 50051}
        assert pod["metadata"]["annotations"] == {"prometheus.io/scrape": "true", "prometheus.io/port": "9464", "prometheus.io/path": "/metrics"}
        assert serve["resources"]["requests"] and serve["resources"]["limits"]
        assert {"name": "CASEMESH_SECRET", "valueFrom": {"secretKeyRef": {"name": "casemesh-mesh-secret", "key": "CASEMESH_SECRET"}}} in serve["env"]
        assert [p["port"] for p in services[name]["spec"]["ports"]] == [50051, 9464]


def test_each_pod_gets_a_topology_that_binds_all_interfaces_for_itself_and_dials_the_others_by_cluster_name(plain_out: Path) -> None:
    configmap = _objects(plain_out, "ConfigMap")["casemesh-topology"]
    shared = Topology.model_validate(yaml.safe_load(configmap["data"]["topology.yaml"]))
    assert shared.endpoint("idgen").address == "idgen.casemesh.svc:50051"
    assert shared.reflection is False
    for name in ("urlshortener", "idgen", "analytics"):
        own = Topology.model_validate(yaml.safe_load(configmap["data"][f"{name}.yaml"]))
        assert own.endpoint(name).address == "0.0.0.0:50051" and own.endpoint(name).metrics_address == "0.0.0.0:9464"
        assert all(own.endpoint(o).address == f"{o}.casemesh.svc:50051" for o in own.services if o != name)
        # Plaintext on 0.0.0.0 would be refused without the opt-in: the runtime's own check accepts this topology.
        assert own.allow_insecure_public_bind is True
        check_binds(own, [name], warn=False)
        items = _objects(plain_out, "Deployment")[name]["spec"]["template"]["spec"]["volumes"][0]["configMap"]["items"]
        assert items == [{"key": f"{name}.yaml", "path": "topology.yaml"}]
    policy = _objects(plain_out, "NetworkPolicy")["casemesh-mesh-only"]
    assert policy["spec"]["ingress"][0]["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/part-of": "casemesh"}}}]


def test_the_secrets_are_placeholders_that_casemesh_refuses_until_filled(plain_out: Path) -> None:
    secrets = _objects(plain_out, "Secret")
    assert secrets["casemesh-mesh-secret"]["stringData"] == {"CASEMESH_SECRET": ""}
    assert secrets["casemesh-coordinator-token"]["stringData"] == {"CASEMESH_COORDINATOR_TOKEN": ""}
    with pytest.raises(SecretError):
        load_mesh_secret({"CASEMESH_SECRET": secrets["casemesh-mesh-secret"]["stringData"]["CASEMESH_SECRET"]})


def test_the_harness_is_a_coordinator_job_and_service_plus_an_indexed_job_of_workers(plain_out: Path) -> None:
    jobs = _objects(plain_out, "Job")
    workers = jobs["casemesh-workers"]["spec"]
    assert (workers["completionMode"], workers["completions"], workers["parallelism"]) == ("Indexed", 3, 3)
    (worker,) = workers["template"]["spec"]["containers"]
    assert worker["args"] == ["worker", "--coordinator=casemesh-coordinator.casemesh.svc:7070"]
    (coordinator,) = jobs["casemesh-coordinator"]["spec"]["template"]["spec"]["containers"]
    script = coordinator["command"][2]
    for part in ("casemesh run url-shortener", "--target=urlshortener=urlshortener.casemesh.svc:50051",
                 "--coordinator-listen=0.0.0.0:7070", "--expect-workers=3", "--rate-scale=0.5"):
        assert part in script
    token = {"name": "CASEMESH_COORDINATOR_TOKEN",
             "valueFrom": {"secretKeyRef": {"name": "casemesh-coordinator-token", "key": "CASEMESH_COORDINATOR_TOKEN"}}}
    assert token in worker["env"] and token in coordinator["env"]
    assert _objects(plain_out, "Service")["casemesh-coordinator"]["spec"]["ports"][0]["port"] == 7070


def test_with_tls_the_certificates_are_mounted_and_probes_do_not_need_a_client_certificate(tls_out: Path) -> None:
    assert "network-policy.yaml" not in _documents(tls_out)
    configmap = _objects(tls_out, "ConfigMap")["casemesh-topology"]
    own = Topology.model_validate(yaml.safe_load(configmap["data"]["idgen.yaml"]))
    assert own.tls is not None and own.tls.dir == "/etc/casemesh/tls"
    assert own.endpoint("urlshortener").address == "urlshortener:50051"  # a DNS SAN of casemesh certs init certificates
    check_binds(own, ["idgen"], warn=False)
    pod = _objects(tls_out, "Deployment")["idgen"]["spec"]["template"]["spec"]
    assert {"name": "tls", "secret": {"secretName": "casemesh-tls", "defaultMode": 0o440}} in pod["volumes"]
    assert pod["containers"][0]["readinessProbe"]["tcpSocket"] == {"port": "grpc"}
    worker = _objects(tls_out, "Job")["casemesh-workers"]["spec"]["template"]["spec"]["containers"][0]
    assert worker["args"][-2:] == ["--tls", "/etc/casemesh/tls"]


def test_unusable_input_is_a_configuration_error_naming_it(tmp_path: Path) -> None:
    topology = tmp_path / "t.yaml"
    topology.write_text("services:\n  Bad_Name: {address: '127.0.0.1:50051'}\n")
    result = CliRunner().invoke(app, ["deploy", "k8s", "--topology", str(topology), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "Bad_Name" in result.output
    with pytest.raises(ManifestError, match="video-edge"):
        generate(load_topology(ROOT / "deploy/topology.yaml"), harness=HarnessPlan("video-playback", 2, 1.0))
