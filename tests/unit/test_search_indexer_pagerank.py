"""The search indexer's link graph and PageRank without gRPC (services/search/indexer/graph.py, pagerank.py):
replacing a page replaces its out-edges, self-links are dropped, a URL nobody links to any more leaves the graph
unless it is stored, storing a page with the same links changes nothing, changes made while a pass reads the graph wait for it; the power iteration gives the hand-computed
ranks of small graphs, the same ranks as ``networkx.pagerank`` on random graphs (hypothesis), sums to 1, counts its
iterations and stops at ``max_iterations``.
"""

from __future__ import annotations

import asyncio
import math

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casemesh.services.search.indexer.graph import LinkGraph
from casemesh.services.search.indexer.pagerank import power_iteration, rank


def _url(name: str) -> str:
    return f"http://{name}.web.test/"


A, B, C, D, E = (_url(n) for n in "abcde")


def test_replacing_a_page_replaces_its_out_edges_and_drops_self_links():
    graph = LinkGraph()
    assert graph.set_links(A, [B, C, A, B])  # a self-link and a repeat
    assert set(graph.graph.edges) == {(A, B), (A, C)}
    assert (graph.page_count, graph.link_count) == (1, 2)
    assert not graph.set_links(A, [C, B])  # the same links: the graph did not change (no pass is due)
    assert graph.set_links(B, [C])
    assert graph.set_links(A, [D])  # C is still linked by B; nobody links to B but B is stored
    assert set(graph.graph.edges) == {(A, D), (B, C)}
    assert set(graph.graph.nodes) == {A, B, C, D}
    graph.set_links(B, [])  # C: not stored, not linked any more
    assert set(graph.graph.nodes) == {A, B, D} and set(graph.graph.edges) == {(A, D)}
    assert (graph.page_count, graph.link_count) == (2, 1)
    graph.set_links(D, [A])  # a linked URL becomes a stored page
    assert (graph.page_count, graph.link_count, graph.graph.number_of_nodes()) == (3, 2, 3)


async def test_changes_while_a_pass_reads_the_graph_wait_for_it():
    graph = LinkGraph().load([(A, (B,)), (B, (A,))])
    reading = asyncio.ensure_future(graph.adjacency())
    await asyncio.sleep(0)  # the thread has the graph: it is frozen
    assert graph.set_links(C, [A, B])
    assert graph.set_links(A, [C]) and not graph.set_links(A, [C])  # compared with the waiting change
    assert (graph.page_count, graph.link_count) == (3, 4)  # the counts include the waiting changes
    adjacency = await reading
    assert sorted(adjacency.nodes) == [A, B] and adjacency.edges == 2  # the graph as of the pass's start
    assert set(graph.graph.edges) == {(A, C), (B, A), (C, A), (C, B)}  # applied once the thread was done
    adjacency = await graph.adjacency()
    assert adjacency.edges == 4 and adjacency.stored.all()


def test_small_graphs_have_their_hand_computed_ranks():
    # A -> B, B dangling (its rank spread over both): x_A = 0.075 + 0.425 x_B and x_A + x_B = 1, so x_A = 20/57.
    ranks, iterations, converged = power_iteration(nx.to_scipy_sparse_array(nx.DiGraph([(A, B)]), nodelist=[A, B]),
                                                   tolerance=1e-12, max_iterations=1_000)
    assert converged and iterations > 1
    assert ranks == pytest.approx([20 / 57, 37 / 57], abs=1e-10)
    # A cycle: every page 1/3 from the first iteration (it starts uniform and stays).
    cycle = nx.to_scipy_sparse_array(nx.DiGraph([(A, B), (B, C), (C, A)]), nodelist=[A, B, C])
    ranks, iterations, converged = power_iteration(cycle)
    assert (iterations, converged) == (1, True) and ranks == pytest.approx([1 / 3] * 3)
    # A star: B, C, D and E link to A, A links back to B. No page is dangling.
    star = nx.DiGraph([(B, A), (C, A), (D, A), (E, A), (A, B)])
    ranks, _, converged = power_iteration(nx.to_scipy_sparse_array(star, nodelist=[A, B, C, D, E]), tolerance=1e-12,
                                          max_iterations=1_000)
    # C, D, E: only the teleport, 0.15/5 = 0.03. A = 0.03 + 0.85 (B + 0.09); B = 0.03 + 0.85 A.
    a = (0.03 + 0.85 * 0.03 + 0.85 * 0.09) / (1 - 0.85 ** 2)
    assert converged and ranks == pytest.approx([a, 0.03 + 0.85 * a, 0.03, 0.03, 0.03], abs=1e-10)
    assert math.isclose(ranks.sum(), 1.0)


async def test_an_empty_graph_has_no_ranks():
    adjacency = await LinkGraph().adjacency()
    ranking = rank(adjacency)
    assert (ranking.ranks, ranking.nodes, ranking.edges, ranking.iterations) == ({}, 0, 0, 0)


def test_max_iterations_stops_the_pass_and_says_so():
    chain = nx.to_scipy_sparse_array(nx.DiGraph([(A, B), (B, C), (C, D)]), nodelist=[A, B, C, D])
    _, iterations, converged = power_iteration(chain, tolerance=1e-12, max_iterations=3)
    assert (iterations, converged) == (3, False)


@settings(max_examples=40, deadline=None)
@given(edges=st.lists(st.tuples(st.integers(0, 30), st.integers(0, 40)), max_size=150),
       damping=st.sampled_from([0.85, 0.5, 0.99]))
def test_the_ranks_are_networkx_pageranks(edges, damping):
    graph = LinkGraph()
    sources: dict[int, list[str]] = {}
    for source, target in edges:
        sources.setdefault(source, []).append(_url(f"n{target}"))
    for source, targets in sources.items():
        graph.set_links(_url(f"n{source}"), targets)
    if not graph.page_count:
        return
    adjacency = asyncio.run(graph.adjacency())
    ranking = rank(adjacency, damping=damping, tolerance=1e-9, max_iterations=10_000)
    expected = nx.pagerank(graph.graph, alpha=damping, tol=1e-9, max_iter=10_000)
    stored = {_url(f"n{source}") for source in sources}
    assert set(ranking.ranks) == stored
    assert ranking.nodes == len(expected) and ranking.edges == graph.graph.number_of_edges() == graph.link_count
    for url, value in ranking.ranks.items():
        assert value == pytest.approx(expected[url], abs=1e-12)
    ranks, _, _ = power_iteration(adjacency.matrix, damping, 1e-9, 10_000)
    assert np.isclose(ranks.sum(), 1.0) and (ranks > 0).all()
