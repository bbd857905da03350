"""PageRank by power iteration over the link graph's sparse matrix, counting its iterations.

Seed 000 "Search Engine (like Google)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664, "PageRank Algorithm":
"PageRank scores pages based on incoming links", ``damping=0.85``, ``iterations=100``); Page, Brin, Motwani and
Winograd, "The PageRank citation ranking: Bringing order to the Web" (1999).

The formula and the stopping rule are exactly ``networkx.pagerank``'s (networkx 3.6 ``_pagerank_scipy``, the
scipy-backed implementation ``networkx.pagerank`` runs): the adjacency matrix from ``networkx.to_scipy_sparse_array``
(:mod:`.graph`), each row divided by its out-degree; a dangling node (no outlinks: most URLs not crawled yet) gives
its rank to every node evenly; from the uniform vector, ``x = d * (x @ M + sum(x[dangling]) / N) + (1 - d) / N``
until the L1 distance between two iterates is below ``N * tolerance``. networkx returns only the ranks, and a pass must
report its iterations (``PageRankPass.iterations``), so this module runs that same loop itself and counts; it differs
from networkx only in two ways: it keeps the ranks (and says it did not converge) when ``max_iterations`` is reached,
where networkx raises ``PowerIterationFailedConvergence``, and it multiplies by the transposed matrix (the same
product, a faster sparse kernel). tests/unit/test_search_indexer_pagerank.py checks it against ``networkx.pagerank``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse

from .graph import Adjacency

__all__ = ["Ranking", "power_iteration", "rank"]


def power_iteration(matrix: scipy.sparse.sparray, damping: float = 0.85, tolerance: float = 1e-6,
                    max_iterations: int = 100) -> tuple[np.ndarray, int, bool]:
    """PageRank of the graph whose adjacency matrix is ``matrix`` (row: from, column: to; weights ignored but for
    their sum per row). Returns ``(ranks, iterations, converged)``: ranks in matrix order, summing to 1."""
    n = matrix.shape[0]
    if n == 0:
        return np.zeros(0), 0, True
    out_weight = np.asarray(matrix.sum(axis=1)).ravel()
    linking = out_weight != 0
    inverse = np.zeros(n)
    inverse[linking] = 1.0 / out_weight[linking]
    # (diag(1 / out-degree) @ A) transposed: x @ M computed as M.T @ x.
    transposed = (scipy.sparse.diags_array(inverse) @ matrix).T.tocsr()
    dangling = ~linking
    uniform = np.full(n, 1.0 / n)
    ranks = uniform
    for iteration in range(1, max_iterations + 1):
        previous = ranks
        ranks = damping * (transposed @ previous + previous[dangling].sum() * uniform) + (1 - damping) * uniform
        if np.abs(ranks - previous).sum() < n * tolerance:
            return ranks, iteration, True
    return ranks, max_iterations, False


@dataclass(frozen=True, slots=True)
class Ranking:
    """A pass's result: ``ranks`` of the stored pages (URL -> rank; the ranks of every node sum to 1), the graph's
    ``nodes`` and ``edges``, the power ``iterations`` and whether they ``converged``."""

    ranks: dict[str, float]
    nodes: int
    edges: int
    iterations: int
    converged: bool


def rank(adjacency: Adjacency, damping: float = 0.85, tolerance: float = 1e-6, max_iterations: int = 100) -> Ranking:
    """PageRank of ``adjacency`` (:func:`power_iteration`), keeping the ranks of its stored pages. CPU-bound: run it
    in a worker thread."""
    ranks, iterations, converged = power_iteration(adjacency.matrix, damping, tolerance, max_iterations)
    stored = np.flatnonzero(adjacency.stored)
    return Ranking({adjacency.nodes[i]: float(ranks[i]) for i in stored}, len(adjacency.nodes), adjacency.edges,
                   iterations, converged)
