"""A stored page (protos/casemesh/search/v1/search.proto ``WebPage``), as the indexer's modules pass it around."""

from __future__ import annotations

from dataclasses import dataclass

from casemesh.search.v1 import search_pb2

__all__ = ["Page"]


@dataclass(frozen=True, slots=True)
class Page:
    """A valid page: its URL (its identity), title, body and outlinks (self-links and repeats already dropped, in the
    order first given)."""

    url: str
    title: str
    body: str
    outlinks: tuple[str, ...]

    def to_proto(self) -> search_pb2.WebPage:
        """The ``WebPage`` message."""
        return search_pb2.WebPage(url=self.url, title=self.title, body=self.body, outlinks=self.outlinks)
