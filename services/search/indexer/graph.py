"""The link graph PageRank runs over: a ``networkx.DiGraph`` of the stored pages' outlinks, kept in memory.

Seed 000 "Search Engine (like Google)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664, "PageRank Algorithm":
"graph: dict of page -> list of outgoing links"). Nodes are the stored pages and every URL they link to (a URL not
stored yet is ranked too: it is where the links point); edges are outlinks, one per (page, URL) (self-links and
repeats are dropped before: :mod:`.validation`). Storing a page again replaces its out-edges; a URL that is not stored
and that no page links to any more leaves the graph. The graph is loaded from the store at start and changed, on the
event loop, in the store's commit order (:mod:`.store`'s ``apply``); a page stored again with the same links
leaves it as it was (and no PageRank pass is due for it).

A PageRank pass needs the graph as a sparse matrix, built in a worker thread (``networkx.to_scipy_sparse_array``:
tenths of a second for 200,000 links, too long for the event loop). While the thread reads the graph it is *frozen*:
:meth:`LinkGraph.set_links` records the change and applies it once the thread is done, so the event loop never waits
for a pass and never copies the graph, and the pass sees the graph as of its start. The counts of pages and links
(:attr:`LinkGraph.page_count`, :attr:`LinkGraph.link_count`) always include the recorded changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

import networkx as nx
import numpy as np
import scipy.sparse

__all__ = ["Adjacency", "LinkGraph"]


@dataclass(frozen=True, slots=True)
class Adjacency:
    """The graph as of a pass's start: ``nodes`` in matrix order, ``matrix`` (``nodes`` x ``nodes``, CSR, 1.0 for each
    link from row to column) and ``stored`` (True for the nodes that are stored pages)."""

    nodes: list[str]
    matrix: scipy.sparse.csr_array
    stored: np.ndarray

    @property
    def edges(self) -> int:
        """Links (distinct page-to-URL edges)."""
        return int(self.matrix.nnz)


class LinkGraph:
    """The link graph (see the module docstring). Single event loop; only the thread of :meth:`adjacency` reads it
    from elsewhere, while it is frozen."""

    def __init__(self) -> None:
        self._graph = nx.DiGraph()
        self._stored: set[str] = set()
        #: Outlinks of each stored page, pending changes included (the page and link counts).
        self._degrees: dict[str, int] = {}
        self._links = 0
        self._frozen = False
        self._pending: dict[str, tuple[str, ...]] = {}

    @property
    def page_count(self) -> int:
        """Stored pages."""
        return len(self._degrees)

    @property
    def link_count(self) -> int:
        """Links of the stored pages (distinct page-to-URL edges)."""
        return self._links

    @property
    def graph(self) -> nx.DiGraph:
        """The ``networkx.DiGraph`` (read it, don't change it; while frozen it lacks the pending changes)."""
        return self._graph

    def load(self, pages: Iterable[tuple[str, tuple[str, ...]]]) -> LinkGraph:
        """Add every ``(url, outlinks)`` (the stored pages at start; may run in a worker thread before the graph is
        shared); returns the graph."""
        for url, outlinks in pages:
            self.set_links(url, outlinks)
        return self

    def set_links(self, url: str, outlinks: Iterable[str]) -> bool:
        """Make ``url`` a stored page linking to exactly ``outlinks`` (replacing its out-edges); a link to itself is
        dropped. Recorded and applied later while a pass reads the graph. True when the graph changed (a new page, or
        other links than before), False when ``url`` was stored with the same links."""
        links = tuple(dict.fromkeys(link for link in outlinks if link != url))
        if url in self._pending:
            before: set[str] | None = set(self._pending[url])
        else:
            before = set(self._graph.successors(url)) if url in self._stored else None
        self._links += len(links) - self._degrees.get(url, 0)
        self._degrees[url] = len(links)
        if self._frozen:
            self._pending[url] = links
        else:
            self._apply(url, links)
        return before is None or before != set(links)

    def _apply(self, url: str, links: tuple[str, ...]) -> None:
        graph = self._graph
        old = set(graph.successors(url)) if url in graph else set()
        new = set(links)
        graph.add_node(url)
        self._stored.add(url)
        graph.remove_edges_from((url, gone) for gone in old - new)
        graph.add_edges_from((url, added) for added in new - old)
        for gone in old - new:
            if gone not in self._stored and graph.in_degree(gone) == 0:
                graph.remove_node(gone)

    def _build(self) -> Adjacency:
        nodes = list(self._graph)
        if not nodes:  # networkx refuses an empty graph
            return Adjacency(nodes, scipy.sparse.csr_array((0, 0)), np.zeros(0, dtype=bool))
        matrix = nx.to_scipy_sparse_array(self._graph, nodelist=nodes, weight=None, dtype=float, format="csr")
        stored = np.fromiter((node in self._stored for node in nodes), dtype=bool, count=len(nodes))
        return Adjacency(nodes, matrix, stored)

    def _thaw(self) -> None:
        self._frozen = False
        pending, self._pending = self._pending, {}
        for url, links in pending.items():
            self._apply(url, links)

    async def adjacency(self) -> Adjacency:
        """The graph as a sparse matrix, built in a worker thread while the graph is frozen (see the module
        docstring). Raises ``RuntimeError`` when called while another call's thread runs. Cancelling the caller does
        not thaw the graph before the thread is done."""
        if self._frozen:
            raise RuntimeError("the link graph is frozen by another pass")
        loop = asyncio.get_running_loop()
        self._frozen = True
        try:
            done = loop.run_in_executor(None, self._build)
        except BaseException:
            self._thaw()
            raise
        done.add_done_callback(lambda _: self._thaw())
        return await asyncio.shield(done)
