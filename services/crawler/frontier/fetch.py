"""The crawler's HTTP client: ``SyntheticWebService.Fetch`` on ``crawler-web``, as ``contract.USER_AGENT``.

Seed 001 #28 (shared/seeds/001_58dfc580020147d2.txt line 34, "Web Crawler"). Every fetch names its crawl (the web's
referee counts each crawl's fetches) and has the explicit deadline ``fetch_timeout_ms``. A gRPC error is a failed
fetch (:class:`FetchFailed`): NOT_FOUND is the web's DNS failure (a host it does not have); DEADLINE_EXCEEDED a host
slower than the deadline; UNAVAILABLE the web itself unreachable (down, restarting, or the channel's circuit breaker
open after the runtime's own retries), which says nothing of the host: the crawl fetches the URL again later.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from casemesh.crawler.v1 import web_pb2, web_pb2_grpc

from ..contract import USER_AGENT


@dataclass(frozen=True)
class WebResponse:
    """An HTTP answer: ``status`` (200, 404, 503) and ``body``."""

    status: int
    body: bytes


class FetchFailed(Exception):
    """The fetch got no HTTP answer; ``code`` is the gRPC status (NOT_FOUND: the host does not exist)."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code

    @property
    def unknown_host(self) -> bool:
        """True for the web's DNS failure (NOT_FOUND)."""
        return self.code == grpc.StatusCode.NOT_FOUND

    @property
    def unreached(self) -> bool:
        """True when the request never reached the web (UNAVAILABLE: the web is down or restarting, or the channel's
        circuit breaker is open), so nothing happened at the host: the crawler's own network failed, not the host."""
        return self.code == grpc.StatusCode.UNAVAILABLE


class WebClient:
    """Fetches URLs from ``crawler-web`` with a deadline of ``timeout_s`` seconds."""

    def __init__(self, stub: web_pb2_grpc.SyntheticWebServiceStub, timeout_s: float) -> None:
        self._stub = stub
        self._timeout_s = timeout_s

    async def fetch(self, url: str, crawl_id: str) -> WebResponse:
        """Fetch ``url`` for crawl ``crawl_id``; raises :class:`FetchFailed` when there is no HTTP answer."""
        try:
            response = await self._stub.Fetch(web_pb2.FetchRequest(url=url, crawl_id=crawl_id, user_agent=USER_AGENT),
                                              timeout=self._timeout_s)
        except grpc.aio.AioRpcError as error:
            raise FetchFailed(error.code(), error.details() or "") from None
        return WebResponse(response.http_status, response.body)
