"""Kubernetes objects as plain dicts, checked as they are built: the layer under ``casemesh deploy k8s``.

Each builder returns the dict PyYAML writes, after checking what the API
server would refuse and a schema check would miss or report late: object and
port names (RFC 1123 labels, port names at most 15 characters), label keys
and values, port numbers, and that every object has ``apiVersion``, ``kind``
and ``metadata.name``. A failed check raises :class:`ManifestError` naming the
object and the field. The full schemas are checked in the tests
(``kubernetes-validate``, tests/unit/test_deploy_k8s.py); this layer keeps the
generator from writing an object that cannot be applied in the first place.

Field names and shapes follow the Kubernetes API reference (apps/v1
Deployment, batch/v1 Job, core/v1 Service, ConfigMap, Secret, Namespace;
networking.k8s.io/v1 NetworkPolicy).
"""

from __future__ import annotations

import re
from typing import Any

#: RFC 1123 label: what object names, namespaces, container and volume names must be.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
#: A label value (may be empty).
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
#: A label key: optional DNS-subdomain prefix, then a name.
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
#: An IANA_SVC_NAME: a port's name.
_PORT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class ManifestError(ValueError):
    """An object the generator was asked to build would be refused; the message names the object and field."""


def dns_label(value: str, what: str) -> str:
    """``value`` when it is an RFC 1123 label (≤ 63 characters of a-z, 0-9 and '-', alphanumeric at both ends)."""
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ManifestError(f"{what}: {value!r} is not a DNS label (at most 63 characters of a-z, 0-9 and '-', "
                            "starting and ending with a letter or digit)")
    return value


def labels(values: dict[str, str], what: str) -> dict[str, str]:
    """``values`` when every key and value is a valid label key/value."""
    for key, value in values.items():
        if len(key.rpartition("/")[2]) > 63 or not _LABEL_KEY.match(key):
            raise ManifestError(f"{what}: label key {key!r} is not valid")
        if len(value) > 63 or not _LABEL_VALUE.match(value):
            raise ManifestError(f"{what}: label {key}={value!r}: not a valid label value")
    return dict(values)


def port(name: str, number: int, what: str) -> dict[str, Any]:
    """A named container port (TCP)."""
    if len(name) > 15 or not _PORT_NAME.match(name):
        raise ManifestError(f"{what}: port name {name!r} is not valid (at most 15 characters of a-z, 0-9 and '-')")
    if not 1 <= number <= 65535:
        raise ManifestError(f"{what}: port {number} is not in 1..65535")
    return {"name": name, "containerPort": number, "protocol": "TCP"}


def k8s_object(api_version: str, kind: str, name: str, *, namespace: str | None = None, object_labels: dict[str, str] | None = None,
               annotations: dict[str, str] | None = None, **body: Any) -> dict[str, Any]:
    """An object: ``apiVersion``, ``kind``, ``metadata`` (name, namespace, labels, annotations), then ``body``'s fields."""
    what = f"{kind} {name}"
    metadata: dict[str, Any] = {"name": dns_label(name, f"{what}: metadata.name")}
    if namespace is not None:
        metadata["namespace"] = dns_label(namespace, f"{what}: metadata.namespace")
    if object_labels:
        metadata["labels"] = labels(object_labels, f"{what}: metadata.labels")
    if annotations:
        metadata["annotations"] = {str(k): str(v) for k, v in annotations.items()}
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **body}


def container(name: str, image: str, *, args: list[str], ports: list[dict[str, Any]] = (), **fields: Any) -> dict[str, Any]:
    """A container running the image's entrypoint (``casemesh``) with ``args``."""
    if not image:
        raise ManifestError(f"container {name}: the image is empty")
    spec: dict[str, Any] = {"name": dns_label(name, "container name"), "image": image, "imagePullPolicy": "IfNotPresent", "args": list(args)}
    if ports:
        spec["ports"] = list(ports)
    spec.update(fields)
    return spec


def pod_template(pod_labels: dict[str, str], containers: list[dict[str, Any]], *, annotations: dict[str, str] | None = None,
                 **spec: Any) -> dict[str, Any]:
    """A pod template (``metadata`` labels and annotations, ``spec`` with ``containers``)."""
    metadata: dict[str, Any] = {"labels": labels(pod_labels, "pod template")}
    if annotations:
        metadata["annotations"] = dict(annotations)
    return {"metadata": metadata, "spec": {"containers": containers, **spec}}
