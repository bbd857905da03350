"""Per-call CPU cost of per-method authorization (services/runtime/authorization.py), in µs.

Usage::

    .venv/bin/python benchmarks/authz_cost.py [--calls 200000] [--repeat 5]

One process, no network: ``Authorizer.check`` is called the way the server
interceptor calls it, with a stand-in for grpc.aio's ServicerContext that
returns prepared metadata (the real ``invocation_metadata()`` and
``peer_identities()`` are C calls of about 1 µs, not counted here). Cases:

- ``public``: a public method (Resolve): one dictionary lookup, nothing else;
- ``internal, token``: an internal method with a caller token already
  verified (the steady state: a channel's token is the same on every call);
- ``internal, mTLS peer``: an internal method whose caller is identified by
  its certificate's SPIFFE SAN;
- ``first sight of a token``: HMAC-SHA256 verification of a token not yet
  cached (once per channel per refresh, every 10 minutes);
- ``mint``: making a caller token (client side, once per refresh).

Prints the median µs per call over ``--repeat`` rounds of ``--calls`` calls each.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from casemesh.services.catalog import SERVICES
from casemesh.services.runtime.authorization import Authorizer, DeniedMetrics
from casemesh.services.runtime.identity import (CALLER_METADATA_KEY, CallerIdentifier, TokenVerifier, mint_token,
                                                service_identity)
from casemesh.services.runtime.secrets import SERVICE_TOKEN, MeshSecret


class Context:
    """What Authorizer.check reads of a ServicerContext."""

    def __init__(self, metadata: tuple = (), identities: list[bytes] | None = None):
        self._metadata, self._identities = metadata, identities

    def invocation_metadata(self) -> tuple:
        return self._metadata

    def peer_identities(self) -> list[bytes] | None:
        return self._identities


def per_call_us(work: Callable[[], object], calls: int, repeat: int) -> float:
    rounds = []
    for _ in range(repeat):
        began = time.perf_counter()
        for _ in range(calls):
            work()
        rounds.append((time.perf_counter() - began) / calls * 1e6)
    return statistics.median(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    opts = parser.parse_args()

    keys = MeshSecret.generate().keyring(SERVICE_TOKEN)
    authorizer = Authorizer(list(SERVICES.values()), CallerIdentifier(TokenVerifier(keys)),
                            metrics=DeniedMetrics(CollectorRegistry()))
    shortener = service_identity("urlshortener")
    token = mint_token(shortener, keys, int(time.time() * 1000))
    metadata = (("user-agent", "grpc-python-asyncio/1.85.1"), ("traceparent", "00-" + "1" * 32 + "-" + "2" * 16 + "-01"),
                (CALLER_METADATA_KEY, token))
    resolve, record = "/casemesh.urlshortener.v1.UrlShortenerService/Resolve", "/casemesh.analytics.v1.AnalyticsService/RecordClicks"
    by_token, by_peer = Context(metadata), Context(identities=[shortener.encode(), b"localhost", b"127.0.0.1"])
    assert authorizer.check(resolve, Context()) is None and authorizer.check(record, by_token) is None
    assert authorizer.check(record, by_peer) is None
    fresh = iter(range(10**9))

    cases = {
        "public": (lambda: authorizer.check(resolve, by_token), opts.calls),
        "internal, token": (lambda: authorizer.check(record, by_token), opts.calls),
        "internal, mTLS peer": (lambda: authorizer.check(record, by_peer), opts.calls),
        "first sight of a token": (lambda: TokenVerifier(keys).identity(
            mint_token(shortener, keys, int(time.time() * 1000) - next(fresh) % 1000)), opts.calls // 10),
        "mint": (lambda: mint_token(shortener, keys, 1_800_000_000_000), opts.calls // 10),
    }
    for name, (work, calls) in cases.items():
        print(f"{name:>24}: {per_call_us(work, calls, opts.repeat):6.2f} µs per call")


if __name__ == "__main__":
    main()
