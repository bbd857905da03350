"""grpcurl against every case study's mesh: services listed by reflection, one RPC called from JSON.

One :class:`CaseStudy` entry per case study: the services to start, the entry
service grpcurl talks to, and one unary call with its JSON request and a check
of the JSON answer. grpcurl knows nothing but what the server's reflection
tells it, so this is what any client without casemesh's protos sees.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from ..caller_identity import caller_header
from .support import URL_SHORTENER_SERVICES, run

#: grpcurl's exit code for a call that ended with gRPC status N is 64 + N.
GRPCURL_STATUS_BASE = 64
INVALID_ARGUMENT = 3
PERMISSION_DENIED = 7


@dataclass(frozen=True)
class CaseStudy:
    """What grpcurl calls in one case study's mesh.

    ``services``: the topology names to start; ``entry``: the one grpcurl
    talks to, whose full gRPC service name is ``service``; ``method`` is
    called with ``request`` (proto3 JSON) and its JSON answer must pass
    ``check``; ``invalid`` is a request the server must reject with
    INVALID_ARGUMENT naming ``invalid_field``. ``internal``: ``method`` serves
    the mesh only, so grpcurl calls it with the test identity's caller token
    (``-H``), and without one gets PERMISSION_DENIED.
    """

    services: tuple[str, ...]
    entry: str
    service: str
    method: str
    request: dict[str, Any]
    check: Callable[[dict[str, Any]], bool]
    invalid: dict[str, Any]
    invalid_field: str
    internal: bool = False


CASE_STUDIES = [
    pytest.param(
        CaseStudy(
            services=URL_SHORTENER_SERVICES,
            entry="urlshortener",
            service="casemesh.urlshortener.v1.UrlShortenerService",
            method="Shorten",
            request={"long_url": "https://example.com/from-grpcurl", "ttl_seconds": "60"},  # int64 as a JSON string
            check=lambda answer: re.fullmatch(r"[A-Za-z0-9]{7}", answer["code"]) is not None and answer["expire_time"].endswith("Z"),
            invalid={"long_url": "https://example.com/x", "ttl_seconds": "-5"},
            invalid_field="ttl_seconds",
        ),
        id="url-shortener",
    ),
    pytest.param(
        CaseStudy(
            services=("video-catalog", "video-search"),  # the catalogue calls the search index when videos publish
            entry="video-catalog",
            service="casemesh.video.v1.CatalogService",
            method="CreateVideo",
            request={"channel_id": "ch-grpcurl", "title": "Cats on a keyboard", "tags": ["cats"], "duration_s": 60},
            check=lambda answer: answer["video"]["status"] == "VIDEO_STATUS_UPLOADING" and bool(answer["video"]["video_id"])
            and answer["video"]["tags"] == ["cats"] and answer["video"]["create_time"].endswith("Z"),
            invalid={"channel_id": "ch-grpcurl", "title": "", "duration_s": 60},
            invalid_field="title",
            internal=True,  # the upload service's (docs/security.md): grpcurl calls it as the test identity
        ),
        id="video",
    ),
    # Next case study: its services to start, the entry service and one unary RPC grpcurl can call on a fresh mesh.
]


def _grpcurl(grpcurl: str, *args: str):
    return run([grpcurl, "-plaintext", "-max-time", "10", *args], timeout=30)


@pytest.mark.parametrize("case", CASE_STUDIES)
def test_grpcurl_lists_the_services_and_calls_an_rpc(case: CaseStudy, grpcurl, meshes):
    mesh = meshes.get(case.services)
    address = mesh.topology.endpoint(case.entry).address
    identity = ["-H", caller_header(mesh.secret)] if case.internal else []

    listed = _grpcurl(grpcurl, address, "list")
    assert listed.returncode == 0, listed.stderr
    assert {case.service, "grpc.health.v1.Health"} <= set(listed.stdout.split())
    methods = _grpcurl(grpcurl, address, "list", case.service)
    assert f"{case.service}.{case.method}" in methods.stdout.split(), methods.stdout

    if case.internal:
        denied = _grpcurl(grpcurl, "-d", json.dumps(case.request), address, f"{case.service}/{case.method}")
        assert denied.returncode == GRPCURL_STATUS_BASE + PERMISSION_DENIED, denied.stdout + denied.stderr
    called = _grpcurl(grpcurl, *identity, "-d", json.dumps(case.request), address, f"{case.service}/{case.method}")
    assert called.returncode == 0, called.stderr
    assert case.check(json.loads(called.stdout)), called.stdout

    rejected = _grpcurl(grpcurl, *identity, "-format-error", "-d", json.dumps(case.invalid), address, f"{case.service}/{case.method}")
    assert rejected.returncode == GRPCURL_STATUS_BASE + INVALID_ARGUMENT, rejected.stdout + rejected.stderr
    status = json.loads(rejected.stderr)  # -format-error: the status as JSON, on stderr
    assert status["code"] == INVALID_ARGUMENT and status["message"].startswith(f"{case.invalid_field}:"), status


def test_grpcurl_health_check_reports_serving(grpcurl, url_shortener):
    checked = _grpcurl(grpcurl, "-d", json.dumps({"service": "casemesh.urlshortener.v1.UrlShortenerService"}), url_shortener, "grpc.health.v1.Health/Check")
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout) == {"status": "SERVING"}
