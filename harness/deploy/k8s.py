"""``casemesh deploy k8s``: a Kustomize base that runs a topology's mesh on Kubernetes, and optionally a distributed harness.

For every service of the topology (docs/scale-out.md has the walk-through):

- a **Deployment** of the image built from deploy/Dockerfile running
  ``casemesh serve SERVICE --topology /etc/casemesh/topology.yaml --no-supervise``
  (Kubernetes restarts the container; a supervisor inside it would hide
  crashes from it), with gRPC readiness and liveness probes on
  ``grpc.health.v1`` (the kubelet's native ``grpc:`` probe; with ``tls:`` a
  TCP probe instead, since the kubelet's gRPC probe cannot present a client
  certificate), Prometheus scrape annotations on the metrics port, resource
  requests and limits, ``CASEMESH_SECRET`` from the Secret ``casemesh-mesh-secret``
  (``secretKeyRef``), and with ``tls:`` the Secret ``casemesh-tls`` mounted
  at /etc/casemesh/tls;
- a **Service** with its gRPC port and its metrics port.

One **ConfigMap**, ``casemesh-topology``, holds the topology rewritten for the
cluster: ``topology.yaml`` where every service is ``NAME.NAMESPACE.svc:PORT``
(what clients dial), and one ``NAME.yaml`` per service, the same except that
the service's *own* address is ``0.0.0.0:PORT``: a pod cannot bind its
Service's cluster IP, so each Deployment mounts its own key as
/etc/casemesh/topology.yaml. Binding 0.0.0.0 is not loopback: without
``tls:`` the runtime refuses it unless ``allow_insecure_public_bind: true``
(services/runtime/bind_check.py), which the generated topology then sets, and a
**NetworkPolicy** admits gRPC traffic to the mesh's pods only from pods of
the same mesh (the metrics port stays open to scrapers). With ``tls:`` the
services are dialled by their short names (``NAME:PORT``, same namespace),
which ``casemesh certs init`` certificates carry as DNS SANs.

The **Secret** ``casemesh-mesh-secret`` is a placeholder: its
``CASEMESH_SECRET`` is empty, and ``casemesh serve`` refuses an empty or weak
secret, so nothing starts until you fill it (``openssl rand -hex 32``).

With a harness (``--with-harness PROFILE``): a **coordinator Job** (one pod
running ``casemesh run PROFILE --target ... --coordinator-listen
0.0.0.0:7070 --expect-workers N``) behind a **Service**, and an **Indexed
Job** of N ``casemesh worker --coordinator casemesh-coordinator.NAMESPACE.svc:7070``
pods; the join token comes from the Secret ``casemesh-coordinator-token``
(a placeholder too). The coordinator prints result.json to its log at the end.

Every file is listed in kustomization.yaml.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from casemesh.services.runtime.topology import Topology

from .objects import ManifestError, container, dns_label, k8s_object, pod_template, port

#: Where the topology, the TLS files and the services' data are inside a pod.
TOPOLOGY_PATH = "/etc/casemesh/topology.yaml"
TLS_PATH = "/etc/casemesh/tls"
DATA_PATH = "/var/lib/casemesh"
PROFILE_DIR = "/etc/casemesh/profile"
#: Names of the generated objects users refer to.
TOPOLOGY_CONFIGMAP = "casemesh-topology"
MESH_SECRET = "casemesh-mesh-secret"
TLS_SECRET = "casemesh-tls"
TOKEN_SECRET = "casemesh-coordinator-token"
COORDINATOR = "casemesh-coordinator"
WORKERS = "casemesh-workers"
#: The coordinator's gRPC port.
COORDINATOR_PORT = 7070
#: Metrics port when the topology names none for a service.
DEFAULT_METRICS_PORT = 9464
#: Resources of every service container and of each load worker (the mesh's defaults; patch them with Kustomize).
SERVICE_RESOURCES = {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}
WORKER_RESOURCES = {"requests": {"cpu": "1", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
#: A non-root user for every pod (the image's own user is named, which runAsNonRoot cannot check).
RUN_AS = 10001
#: Label every generated object carries.
PART_OF = {"app.kubernetes.io/part-of": "casemesh"}


@dataclass(frozen=True)
class HarnessPlan:
    """The distributed harness to add: ``profile`` a shipped name or a path, ``workers`` load workers, the run's options."""

    profile: str
    workers: int
    rate_scale: float
    seed: int = 1
    duration_s: float | None = None


def generate(topology: Topology, *, namespace: str = "casemesh", image: str = "casemesh:local",
             harness: HarnessPlan | None = None) -> dict[str, list[dict[str, Any]]]:
    """The Kustomize base for ``topology``: ``{file name: [objects]}``, kustomization.yaml included.

    Raises :class:`~casemesh.harness.deploy.objects.ManifestError` for a
    service name that is not a DNS label, an address without a numeric port,
    or a harness profile whose workload calls a service the topology lacks;
    ``ConfigError`` for a profile that does not load.
    """
    dns_label(namespace, "--namespace")
    tls = topology.tls is not None
    files: dict[str, list[dict[str, Any]]] = {"namespace.yaml": [k8s_object("v1", "Namespace", namespace, object_labels=PART_OF)]}
    ports = {name: _ports(name, topology) for name in topology.services}
    files["topology-configmap.yaml"] = [_topology_configmap(topology, namespace, ports)]
    files["mesh-secret.yaml"] = [_placeholder_secret(MESH_SECRET, namespace, "CASEMESH_SECRET",
                                                     "the mesh secret every service shares (docs/security.md, Secrets): "
                                                     "fill CASEMESH_SECRET with openssl rand -hex 32; casemesh serve refuses it empty")]
    if not tls:
        files["network-policy.yaml"] = [_network_policy(namespace)]
    for name in topology.services:
        grpc_port, metrics_port = ports[name]
        files[f"service-{name}.yaml"] = [_deployment(name, namespace, image, grpc_port, metrics_port, tls),
                                         _service(name, namespace, grpc_port, metrics_port)]
    if harness is not None:
        files.update(_harness(harness, topology, namespace, image, ports))
    files["kustomization.yaml"] = [{"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                                    "namespace": namespace, "resources": sorted(files)}]
    return files


def write(files: dict[str, list[dict[str, Any]]], out: Path) -> list[Path]:
    """Write each file as YAML documents into ``out`` (created); returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, objects in files.items():
        path = out / name
        path.write_text("# Generated by casemesh deploy k8s (docs/scale-out.md); regenerate rather than edit, patch with Kustomize.\n"
                        + yaml.dump_all(objects, Dumper=_Dumper, sort_keys=False, default_flow_style=False), encoding="utf-8")
        written.append(path)
    return written


class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper without anchors and aliases (``&id001``/``*id001``), which many Kubernetes tools reject."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


# --------------------------------------------------------------------------- the mesh


def _ports(name: str, topology: Topology) -> tuple[int, int]:
    dns_label(name, f"service {name}")
    endpoint = topology.endpoint(name)
    grpc_port = _port_of(endpoint.address, f"services.{name}.address")
    metrics_port = _port_of(endpoint.metrics_address, f"services.{name}.metrics_address") if endpoint.metrics_address else DEFAULT_METRICS_PORT
    if grpc_port == 0:
        raise ManifestError(f"services.{name}.address: port 0 (any free port) cannot be a Service's port: give a fixed one")
    if metrics_port in (0, grpc_port):
        raise ManifestError(f"services.{name}.metrics_address: give a fixed port other than the gRPC port {grpc_port}")
    return grpc_port, metrics_port


def _port_of(address: str, what: str) -> int:
    text = address.rpartition(":")[2]
    if not text.isdigit():
        raise ManifestError(f"{what}: {address!r} has no numeric port")
    return int(text)


def _dial_host(name: str, namespace: str, tls: bool) -> str:
    """How other pods reach ``name``: its cluster DNS name, or with mTLS its short name (a SAN of casemesh certs init certificates)."""
    return name if tls else f"{name}.{namespace}.svc"


def cluster_topology(topology: Topology, namespace: str, ports: dict[str, tuple[int, int]], own: str | None = None) -> dict[str, Any]:
    """The topology as pods see it: services at their cluster names; ``own`` (a service) bound on 0.0.0.0. A plain dict for YAML."""
    tls = topology.tls is not None
    data = yaml.safe_load(topology.dump())
    services = {}
    for name, (grpc_port, metrics_port) in ports.items():
        host = "0.0.0.0" if name == own else _dial_host(name, namespace, tls)
        services[name] = {"address": f"{host}:{grpc_port}", "metrics_address": f"{host}:{metrics_port}"}
    data["services"] = services
    data["data_dir"] = DATA_PATH
    data["reflection"] = False  # it lists every internal service; turn it on by a patch for debugging only
    if tls:
        data["tls"] = {"dir": TLS_PATH}
        data.pop("allow_insecure_public_bind", None)
    else:
        # 0.0.0.0 is not loopback: plaintext there is refused unless allowed. The NetworkPolicy keeps the
        # gRPC ports to the mesh's own pods; for encryption and client certificates, add tls: to the topology.
        data["allow_insecure_public_bind"] = True
    return data


def _topology_configmap(topology: Topology, namespace: str, ports: dict[str, tuple[int, int]]) -> dict[str, Any]:
    data = {"topology.yaml": yaml.safe_dump(cluster_topology(topology, namespace, ports), sort_keys=False)}
    for name in ports:
        data[f"{name}.yaml"] = yaml.safe_dump(cluster_topology(topology, namespace, ports, own=name), sort_keys=False)
    return k8s_object("v1", "ConfigMap", TOPOLOGY_CONFIGMAP, namespace=namespace, object_labels=PART_OF, data=data)


def _placeholder_secret(name: str, namespace: str, key: str, note: str) -> dict[str, Any]:
    return k8s_object("v1", "Secret", name, namespace=namespace, object_labels=PART_OF,
                      annotations={"casemesh.dev/fill-in": note}, type="Opaque", stringData={key: ""})


def _network_policy(namespace: str) -> dict[str, Any]:
    mesh_pods = {"matchLabels": {**PART_OF}}
    return k8s_object("networking.k8s.io/v1", "NetworkPolicy", "casemesh-mesh-only", namespace=namespace, object_labels=PART_OF,
                      spec={"podSelector": {"matchLabels": {"casemesh.dev/role": "service"}}, "policyTypes": ["Ingress"],
                            "ingress": [{"from": [{"podSelector": mesh_pods}], "ports": [{"port": "grpc", "protocol": "TCP"}]},
                                        {"ports": [{"port": "metrics", "protocol": "TCP"}]}]})


def _secret_env(name: str, key: str) -> dict[str, Any]:
    return {"name": key, "valueFrom": {"secretKeyRef": {"name": name, "key": key}}}


def _pod_security() -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS, "fsGroup": RUN_AS, "seccompProfile": {"type": "RuntimeDefault"}}


def _container_security() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def _deployment(name: str, namespace: str, image: str, grpc_port: int, metrics_port: int, tls: bool) -> dict[str, Any]:
    pod_labels = {"app.kubernetes.io/name": name, **PART_OF, "casemesh.dev/role": "service"}
    if tls:  # the kubelet's grpc probe speaks plaintext and has no client certificate: the mTLS port refuses it
        probe: dict[str, Any] = {"tcpSocket": {"port": "grpc"}}
    else:
        probe = {"grpc": {"port": grpc_port}}
    volumes: list[dict[str, Any]] = [
        {"name": "topology", "configMap": {"name": TOPOLOGY_CONFIGMAP, "items": [{"key": f"{name}.yaml", "path": "topology.yaml"}]}},
        {"name": "data", "emptyDir": {}},
    ]
    mounts: list[dict[str, Any]] = [{"name": "topology", "mountPath": "/etc/casemesh/topology.yaml", "subPath": "topology.yaml", "readOnly": True},
                                    {"name": "data", "mountPath": DATA_PATH}]
    if tls:
        volumes.append({"name": "tls", "secret": {"secretName": TLS_SECRET, "defaultMode": 0o440}})
        mounts.append({"name": "tls", "mountPath": TLS_PATH, "readOnly": True})
    serve = container(
        "casemesh", image, args=["serve", name, "--topology", TOPOLOGY_PATH, "--no-supervise"],
        ports=[port("grpc", grpc_port, name), port("metrics", metrics_port, name)],
        env=[_secret_env(MESH_SECRET, "CASEMESH_SECRET"), {"name": "OTEL_SERVICE_NAME", "value": name}],
        readinessProbe={**probe, "initialDelaySeconds": 2, "periodSeconds": 5, "failureThreshold": 3},
        livenessProbe={**probe, "initialDelaySeconds": 15, "periodSeconds": 10, "failureThreshold": 3},
        resources=SERVICE_RESOURCES, volumeMounts=mounts, securityContext=_container_security(),
    )
    template = pod_template(pod_labels, [serve], annotations={"prometheus.io/scrape": "true", "prometheus.io/port": str(metrics_port),
                                                              "prometheus.io/path": "/metrics"},
                            volumes=volumes, securityContext=_pod_security(),
                            terminationGracePeriodSeconds=15)  # casemesh serve drains for up to server.grace_s (5 s) on SIGTERM
    return k8s_object("apps/v1", "Deployment", name, namespace=namespace, object_labels={"app.kubernetes.io/name": name, **PART_OF},
                      spec={"replicas": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": name}}, "template": template})


def _service(name: str, namespace: str, grpc_port: int, metrics_port: int) -> dict[str, Any]:
    return k8s_object("v1", "Service", name, namespace=namespace, object_labels={"app.kubernetes.io/name": name, **PART_OF},
                      spec={"selector": {"app.kubernetes.io/name": name},
                            "ports": [{"name": "grpc", "port": grpc_port, "targetPort": "grpc", "protocol": "TCP", "appProtocol": "grpc"},
                                      {"name": "metrics", "port": metrics_port, "targetPort": "metrics", "protocol": "TCP"}]})


# --------------------------------------------------------------------------- the distributed harness


def _harness(plan: HarnessPlan, topology: Topology, namespace: str, image: str, ports: dict[str, tuple[int, int]]) -> dict[str, list[dict[str, Any]]]:
    from ..profile import load_profile

    profile = load_profile(plan.profile)
    missing = [s for s in profile.workload.services if s not in ports]
    if missing:
        raise ManifestError(f"--with-harness {plan.profile}: its workload calls {', '.join(missing)}, which the topology does not have")
    if not 1 <= plan.workers <= 64:
        raise ManifestError(f"--workers: {plan.workers} is not in 1..64")
    tls = topology.tls is not None
    files: dict[str, list[dict[str, Any]]] = {}
    volumes: list[dict[str, Any]] = [{"name": "out", "emptyDir": {}}]
    mounts: list[dict[str, Any]] = [{"name": "out", "mountPath": "/out"}]
    profile_arg = plan.profile
    if "/" in plan.profile or plan.profile.endswith((".yaml", ".yml")):  # a file of the user's: shipped in a ConfigMap
        files["profile-configmap.yaml"] = [_profile_configmap(Path(plan.profile), profile, namespace)]
        volumes.append({"name": "profile", "configMap": {"name": "casemesh-profile"}})
        mounts.append({"name": "profile", "mountPath": PROFILE_DIR, "readOnly": True})
        profile_arg = f"{PROFILE_DIR}/{Path(plan.profile).name}"
    tls_args: list[str] = []
    if tls:
        volumes.append({"name": "tls", "secret": {"secretName": TLS_SECRET, "defaultMode": 0o440}})
        mounts.append({"name": "tls", "mountPath": TLS_PATH, "readOnly": True})
        tls_args = ["--tls", TLS_PATH]
    targets = [f"--target={s}={_dial_host(s, namespace, tls)}:{ports[s][0]}" for s in profile.workload.services]
    run = ["casemesh", "run", profile_arg, *targets, f"--coordinator-listen=0.0.0.0:{COORDINATOR_PORT}",
           f"--expect-workers={plan.workers}", f"--rate-scale={plan.rate_scale:g}", f"--seed={plan.seed}", "--out=/out",
           "--report=off", "--no-progress", *tls_args]
    if plan.duration_s is not None:
        run.append(f"--duration={plan.duration_s:g}")
    # result.json is printed after the summary so that `kubectl logs` keeps it when the pod is gone.
    script = f"{shlex.join(run)}; code=$?; echo '----- result.json -----'; cat /out/result.json; exit $code"
    token_env = [_secret_env(TOKEN_SECRET, "CASEMESH_COORDINATOR_TOKEN")]
    coordinator_labels = {"app.kubernetes.io/name": COORDINATOR, **PART_OF, "casemesh.dev/role": "harness"}
    coordinator_pod = pod_template(
        coordinator_labels,
        [container("coordinator", image, args=[], command=["sh", "-c", script], ports=[port("coordinator", COORDINATOR_PORT, COORDINATOR)],
                   env=token_env, resources=WORKER_RESOURCES, volumeMounts=mounts, securityContext=_container_security())],
        volumes=volumes, securityContext=_pod_security(), restartPolicy="Never")
    coordinator_pod["spec"]["containers"][0].pop("args")
    worker_args = ["worker", f"--coordinator={COORDINATOR}.{namespace}.svc:{COORDINATOR_PORT}", *tls_args]
    worker_pod = pod_template(
        {"app.kubernetes.io/name": WORKERS, **PART_OF, "casemesh.dev/role": "harness"},
        [container("worker", image, args=worker_args, env=token_env, resources=WORKER_RESOURCES,
                   volumeMounts=[m for m in mounts if m["name"] == "tls"], securityContext=_container_security())],
        volumes=[v for v in volumes if v["name"] == "tls"], securityContext=_pod_security(), restartPolicy="Never")
    files["harness-token-secret.yaml"] = [_placeholder_secret(
        TOKEN_SECRET, namespace, "CASEMESH_COORDINATOR_TOKEN",
        "the join token of the distributed harness (docs/scale-out.md): fill it with openssl rand -hex 32; "
        "the coordinator refuses to listen on 0.0.0.0 without one")]
    files["harness-coordinator.yaml"] = [
        k8s_object("batch/v1", "Job", COORDINATOR, namespace=namespace, object_labels=coordinator_labels,
                   spec={"backoffLimit": 0, "template": coordinator_pod}),
        k8s_object("v1", "Service", COORDINATOR, namespace=namespace, object_labels=coordinator_labels,
                   spec={"selector": {"app.kubernetes.io/name": COORDINATOR},
                         "ports": [{"name": "coordinator", "port": COORDINATOR_PORT, "targetPort": "coordinator", "protocol": "TCP",
                                    "appProtocol": "grpc"}]}),
    ]
    files["harness-workers.yaml"] = [
        k8s_object("batch/v1", "Job", WORKERS, namespace=namespace, object_labels={"app.kubernetes.io/name": WORKERS, **PART_OF},
                   spec={"completionMode": "Indexed", "completions": plan.workers, "parallelism": plan.workers,
                         "backoffLimit": 0, "template": worker_pod}),
    ]
    return files


def _profile_configmap(path: Path, profile: Any, namespace: str) -> dict[str, Any]:
    """The user's profile file and the files it names next to it (SLO documents, a CSV), by base name."""
    names = [path.name]
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    named = [*(document.get("slos") or []), *([profile.arrival.file] if getattr(profile.arrival, "file", None) else [])]
    for name in named:
        if Path(name).name != name:
            raise ManifestError(f"--with-harness {path}: it names {name!r}, outside its own folder; the ConfigMap holds files "
                                "next to the profile only: copy it there")
        names.append(name)
    return k8s_object("v1", "ConfigMap", "casemesh-profile", namespace=namespace, object_labels=PART_OF,
                      data={name: (path.parent / name).read_text(encoding="utf-8") for name in names})
