"""A TypeScript client generated from protos/ with buf.gen.yaml calls the URL shortener over real gRPC.

The chain a user in another language follows (docs/clients.md): ``buf generate``
with protoc-gen-es, ``tsc`` type-checks and compiles the client
(tests/interop/node/client.ts) against the generated code, Node runs it with
Connect's gRPC transport (HTTP/2) against casemesh's services on 127.0.0.1.
gen/ts is not committed, so the code is generated into a temporary tree laid
out like the repository (gen/ts beside tests/interop/node).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import grpc

from casemesh.urlshortener.v1 import urlshortener_pb2 as pb
from casemesh.urlshortener.v1 import urlshortener_pb2_grpc as pb_grpc

from .support import ROOT, run

CLIENT_DIR = Path(__file__).parent / "node"


def _build_client(tree: Path, buf: str, tsc: str) -> Path:
    """Generate the URL shortener's TypeScript into ``tree``/gen/ts, compile the client with it; the client's .js."""
    generated = run([buf, "generate", "--template", "buf.gen.yaml", "-o", str(tree), "--path", "protos/casemesh/urlshortener"], timeout=60)
    assert generated.returncode == 0, generated.stderr
    assert (tree / "gen/ts/casemesh/urlshortener/v1/urlshortener_pb.ts").is_file()
    sources = tree / "tests/interop/node"
    sources.mkdir(parents=True)
    for name in ("client.ts", "tsconfig.json"):
        shutil.copy(CLIENT_DIR / name, sources / name)
    (tree / "package.json").write_text('{"type": "module"}\n')  # the compiled .js files are ES modules
    (tree / "node_modules").symlink_to(ROOT / "node_modules")  # @bufbuild/protobuf, @connectrpc/*, @types/node
    compiled = run([tsc, "-p", str(sources / "tsconfig.json")], timeout=120)
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
    return tree / "build/interop-node/tests/interop/node/client.js"


def test_typescript_client_shortens_resolves_and_gets_invalid_argument(buf, tsc, node, url_shortener, tmp_path):
    client = _build_client(tmp_path, buf, tsc)
    before = datetime.now(timezone.utc)
    called = run([node, str(client), url_shortener], timeout=60)
    assert called.returncode == 0, called.stderr
    seen = json.loads(called.stdout)

    # Shorten: a generated 7-character base62 code; ttl_seconds (an int64, a bigint in TypeScript) came through
    # as one hour, and expire_time (a google.protobuf.Timestamp) came back as a date and in proto3 JSON form.
    code = seen["shorten"]["code"]
    assert re.fullmatch(r"[A-Za-z0-9]{7}", code)
    expires = datetime.fromisoformat(seen["shorten"]["expireTime"].replace("Z", "+00:00"))
    assert before + timedelta(seconds=3600 - 60) <= expires <= datetime.now(timezone.utc) + timedelta(seconds=3600 + 60)
    assert seen["shorten"]["json"]["code"] == code and seen["shorten"]["json"]["expireTime"].endswith("Z")
    # Resolve: the redirect target is the URL the client sent.
    assert seen["resolve"]["longUrl"] == seen["resolve"]["sent"]
    # A bad request: INVALID_ARGUMENT (Connect's Code.InvalidArgument) whose message names the field.
    assert seen["invalid"]["code"] == "InvalidArgument"
    assert seen["invalid"]["message"].startswith("long_url:"), seen["invalid"]

    # The code the TypeScript client created is an ordinary code for every other client.
    async def resolve_from_python() -> str:
        async with grpc.aio.insecure_channel(url_shortener) as channel:
            return (await pb_grpc.UrlShortenerServiceStub(channel).Resolve(pb.ResolveRequest(code=code), timeout=5)).long_url

    assert asyncio.run(resolve_from_python()) == seen["resolve"]["sent"]
