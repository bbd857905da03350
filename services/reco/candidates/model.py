"""The candidate-generation model of ``reco-candidates``: pure numpy, no gRPC.

Seed 001 (shared/seeds/001_58dfc580020147d2.txt) #19 "Recommendation Engine":
"Collaborative filtering, two-tower embeddings, candidate generation,
real-time signals". Seed 003 (shared/seeds/003_1dfe16d8ccfde9ed.txt),
Netflix ``getRecommendations``: collaborative, content and trending sources,
already-watched items removed (the merge with weights is the ranker's job;
here every source proposes candidates with a score).

:func:`train` fits a :class:`CandidateModel` on every interaction
``(user_id, item_id, weight)``; ``weight`` is the interaction's confidence,
:data:`CONFIDENCE` of its kind (VIEW 1, LIKE 4). ``r_ui``, the user's
*rating* of the item, is the sum of the weights of its interactions (a view
and a like make 5). The model holds:

- **the confidence matrix** ``R`` (users × items, dense float32): what each
  user interacted with, and how strongly.
- **item co-occurrence** (collaborative filtering, "users who liked this also
  liked"): the cosine similarity of the columns of the binary interaction
  matrix ``B = R > 0``: ``S = BᵀB / (‖b_i‖·‖b_j‖)``, the diagonal set to 0;
  dense float32 (items × items).
- **embeddings** from implicit-feedback alternating least squares (Hu, Koren
  & Volinsky 2008, "Collaborative Filtering for Implicit Feedback Datasets",
  ICDM): preference ``p_ui = 1`` when ``r_ui > 0`` else 0, confidence
  ``c_ui = 1 + alpha·r_ui``; minimise ``Σ c_ui (p_ui − x_uᵀy_i)² +
  λ(Σ‖x_u‖² + Σ‖y_i‖²)`` by alternating the closed-form solves
  ``y_i = (XᵀX + Xᵀ(C_i − I)X + λI)⁻¹ XᵀC_i p(i)`` and
  ``x_u = (YᵀY + Yᵀ(C_u − I)Y + λI)⁻¹ YᵀC_u p(u)``, where ``YᵀY`` is
  computed once per sweep and ``Yᵀ(C_u − I)Y`` sums only over the user's
  items (the paper's trick: ``c_ui − 1 = 0`` elsewhere), each system solved
  with ``numpy.linalg.solve`` (batched). The seed's "two-tower embeddings"
  become one user embedding table ``X`` and one item embedding table ``Y``
  (a matrix factorisation: the towers reduced to a lookup each, scored by the
  dot product, as a two-tower model scores). Items are solved first, users
  last, so a user's stored embedding is exactly the solve against the final
  item table, the same solve that folds in a user at request time.
- **trending**: every item's total confidence ``Σ_u r_ui``.

:meth:`CandidateModel.candidates` proposes items for a user from three
sources, each scored and normalised to 0..1 *within the source for the call*
(``raw / best raw``, so the source's best item scores 1.0; items with a raw
score ≤ 0 are not proposed):

- ``collaborative``: ``Σ_{j ∈ H} S[j]`` over the user's history ``H`` = the
  items of their training interactions ∪ ``recent_item_ids`` (each counted
  once). Recent items are the real-time signal: an item liked after the
  training moves the co-occurrence candidates at once.
- ``embedding``: the items with the largest ``y_iᵀx_u`` (``argpartition``
  top-k). ``x_u`` is the stored embedding, or, when the user is unknown to the
  model or ``recent_item_ids`` holds items not in their training data, the ALS
  user solve against ``Y`` over training ∪ recent items (a fold-in; a recent
  item's ``r`` is :data:`RECENT_WEIGHT`, its kind being unknown here). A user
  with neither training data nor known recent items gets no embedding
  candidates.
- ``trending``: the items of most total confidence.

Items of ``H`` (and unknown recent ids) are never proposed. The pool is
filled by shares (:data:`SHARES`): collaborative up to ⌈40%⌉ of
``pool_size`` new items, then embedding up to ⌈40%⌉ (at most what is left),
then trending the rest; a share a source cannot use (no history, fewer
positive scores) passes to the next source, and trending, which ranks every
item, fills whatever remains. Every pooled item carries the score of each
source whose top ``pool_size`` ranks it, so an item proposed by two sources
has two scores. The result lists the pool in the order it was filled.

Memory (float32, 4 bytes a cell): ``R`` is users × items × 4 bytes (20,000 ×
5,000: 400 MB; :data:`MAX_MATRIX_CELLS`, 200M cells = 800 MB, is refused
beyond); ``S`` is items² × 4 bytes (5,000 items: 100 MB; :data:`MAX_ITEMS`,
10,000 items = 400 MB, is refused beyond); the embeddings (users + items) ×
factors × 4 bytes. Training adds its transients: the similarity's user chunks
(≤ 64 MB), each ALS batch's padded neighbour factors and systems (≤ 32 MB
each, a few at a time, float64) and a few arrays of one value per nonzero
cell. Cost per ALS iteration:
O(nnz·factors² + (users + items)·factors³); the similarity O(users × items²)
as a dense matrix product.

Everything is deterministic for a given ``seed`` and input (ids are indexed
in sorted order, so the input's order does not matter).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from casemesh.reco.v1 import signals_pb2

__all__ = ["CONFIDENCE", "COLLABORATIVE", "EMBEDDING", "TRENDING", "SOURCES", "SHARES", "RECENT_WEIGHT",
           "MAX_MATRIX_CELLS", "MAX_ITEMS", "ModelStats", "CandidateModel", "train"]

#: Confidence weight of an interaction kind (``signals_pb2.InteractionKind`` value → weight), as the contract says:
#: a view is implicit feedback (1), a like explicit positive feedback (4).
CONFIDENCE: dict[int, int] = {signals_pb2.INTERACTION_KIND_VIEW: 1, signals_pb2.INTERACTION_KIND_LIKE: 4}

COLLABORATIVE = "collaborative"
EMBEDDING = "embedding"
TRENDING = "trending"
#: The sources in the order they fill the pool.
SOURCES = (COLLABORATIVE, EMBEDDING, TRENDING)
#: Share of ``pool_size`` each source may fill (rounded up, in :data:`SOURCES` order); unused shares pass on.
SHARES = {COLLABORATIVE: 0.4, EMBEDDING: 0.4, TRENDING: 0.2}

#: ``r`` of a recent item not in the training data when folding a user in (its kind is unknown: a view's weight).
RECENT_WEIGHT = CONFIDENCE[signals_pb2.INTERACTION_KIND_VIEW]

#: Most users × items cells of the dense confidence matrix: 200M cells, 800 MB of float32.
MAX_MATRIX_CELLS = 200_000_000
#: Most items: the dense item-item similarity is items² float32, 400 MB at 10,000.
MAX_ITEMS = 10_000

#: Float32 cells per user chunk of the binary matrix while computing BᵀB (64 MB).
_SIMILARITY_CHUNK_CELLS = 16 * 1024 * 1024
#: Float64 cells per chunk of batched ALS systems (32 MB).
_SOLVE_CHUNK_CELLS = 4 * 1024 * 1024
#: Above this many history items the collaborative sum is a matrix-vector product instead of a row gather.
_GATHER_ROWS = 256


@dataclass(frozen=True)
class ModelStats:
    """What a model was trained on: ``interactions`` is the number of input tuples."""

    users: int
    items: int
    interactions: int
    factors: int


class CandidateModel:
    """A trained candidate model (see the module docstring); immutable after :func:`train` makes it."""

    def __init__(self, user_ids: list[str], item_ids: list[str], confidence: np.ndarray, similarity: np.ndarray,
                 user_factors: np.ndarray, item_factors: np.ndarray, *, interactions: int, regularization: float,
                 alpha: float) -> None:
        self._user_ids = user_ids
        self._item_ids = item_ids
        self._user_index = {u: i for i, u in enumerate(user_ids)}
        self._item_index = {i: n for n, i in enumerate(item_ids)}
        self._confidence = confidence
        self._similarity = similarity
        self._user_factors = user_factors.astype(np.float32)
        self._item_factors = item_factors.astype(np.float32)
        factors = item_factors.shape[1]
        y = item_factors.astype(np.float64)
        #: YᵀY + λI for fold-ins.
        self._gram = y.T @ y + regularization * np.eye(factors)
        self._item_factors64 = y
        self._alpha = alpha
        self._popularity = confidence.sum(axis=0, dtype=np.float64)
        self._trending_order = np.argsort(-self._popularity, kind="stable")
        self.stats = ModelStats(users=len(user_ids), items=len(item_ids), interactions=interactions, factors=factors)

    # -- lookups ---------------------------------------------------------------------------------------------------

    @property
    def user_ids(self) -> list[str]:
        """The users it was trained on, sorted."""
        return list(self._user_ids)

    @property
    def item_ids(self) -> list[str]:
        """The items it was trained on, sorted."""
        return list(self._item_ids)

    def trained_items(self, user_id: str) -> list[str]:
        """The items ``user_id`` interacted with in the training data (sorted; empty for an unknown user)."""
        u = self._user_index.get(user_id)
        return [] if u is None else [self._item_ids[i] for i in np.flatnonzero(self._confidence[u])]

    # -- candidates ------------------------------------------------------------------------------------------------

    def candidates(self, user_id: str, recent_item_ids: Sequence[str], pool_size: int) -> list[tuple[str, dict[str, float]]]:
        """Up to ``pool_size`` items for ``user_id``, each with ``{source: score in 0..1}``, in the order the pool filled.

        ``recent_item_ids`` are the user's newest interactions (ids unknown to
        the model are ignored, and excluded). No item the user interacted
        with (training data or ``recent_item_ids``) is returned.
        ``ValueError`` when ``pool_size`` < 1.
        """
        if pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, not {pool_size}")
        n_items = len(self._item_ids)
        u = self._user_index.get(user_id)
        trained = np.flatnonzero(self._confidence[u]) if u is not None else np.empty(0, dtype=np.int64)
        known = [self._item_index[i] for i in recent_item_ids if i in self._item_index]
        recent = np.unique(np.asarray(known, dtype=np.int64))
        new_recent = np.setdiff1d(recent, trained, assume_unique=True)
        history = np.union1d(trained, recent)
        seen = np.zeros(n_items, dtype=bool)
        seen[history] = True
        k = min(pool_size, n_items)

        ranked: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if history.size:
            if history.size <= _GATHER_ROWS:
                raw = self._similarity[history].sum(axis=0)
            else:
                indicator = np.zeros(n_items, dtype=np.float32)
                indicator[history] = 1.0
                raw = self._similarity @ indicator  # S is symmetric: the same sum of rows
            ranked[COLLABORATIVE] = _top(raw, seen, k)
        vector = self._user_vector(u, trained, new_recent)
        if vector is not None:
            ranked[EMBEDDING] = _top(self._item_factors @ vector, seen, k)
        order = self._trending_order
        top = order[~seen[order]][:k]
        if top.size:
            ranked[TRENDING] = (top, self._popularity[top] / self._popularity[top[0]])
        return self._merge(ranked, pool_size)

    def _user_vector(self, u: int | None, trained: np.ndarray, new_recent: np.ndarray) -> np.ndarray | None:
        """The user's embedding: stored, or folded in over training ∪ new recent items; ``None`` without either."""
        if u is not None and new_recent.size == 0:
            return self._user_factors[u]
        if trained.size == 0 and new_recent.size == 0:
            return None
        items = np.concatenate([trained, new_recent])
        r = np.concatenate([self._confidence[u, trained] if u is not None else np.empty(0, dtype=np.float32),
                            np.full(new_recent.size, RECENT_WEIGHT, dtype=np.float32)]).astype(np.float64)
        y = self._item_factors64[items]
        c = self._alpha * r  # c_ui − 1
        a = self._gram + (y.T * c) @ y
        b = (1.0 + c) @ y
        return np.linalg.solve(a, b).astype(np.float32)

    def _merge(self, ranked: dict[str, tuple[np.ndarray, np.ndarray]], pool_size: int) -> list[tuple[str, dict[str, float]]]:
        """Fill the pool by shares (unused shares passing on), then attach every source's score to the pooled items."""
        first = math.ceil(SHARES[COLLABORATIVE] * pool_size)
        second = min(math.ceil(SHARES[EMBEDDING] * pool_size), pool_size - first)
        quotas = {COLLABORATIVE: first, EMBEDDING: second, TRENDING: pool_size - first - second}
        pool: dict[int, dict[str, float]] = {}
        carry = 0
        for source in SOURCES:
            budget = quotas[source] + carry
            added = 0
            if source in ranked:
                for item in ranked[source][0].tolist():
                    if added >= budget:
                        break
                    if item not in pool:
                        pool[item] = {}
                        added += 1
            carry = budget - added
        for source in SOURCES:
            if source in ranked:
                items, scores = ranked[source]
                for item, score in zip(items.tolist(), scores.tolist()):
                    found = pool.get(item)
                    if found is not None:
                        found[source] = score
        names = self._item_ids
        return [(names[item], {s: sources[s] for s in SOURCES if s in sources}) for item, sources in pool.items()]


def _top(raw: np.ndarray, seen: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best unseen items of ``raw`` with a positive score, best first (ties: lower index), scores / best."""
    scores = np.where(seen, -np.inf, raw)
    n = scores.size
    picked = np.argpartition(-scores, k - 1)[:k] if k < n else np.arange(n)
    picked = picked[scores[picked] > 0]
    if not picked.size:
        return picked, np.empty(0)
    picked = picked[np.lexsort((picked, -scores[picked]))]
    best = scores[picked]
    return picked, (best / best[0]).astype(np.float64)


# -- training ----------------------------------------------------------------------------------------------------------

def train(interactions: Sequence[tuple[str, str, int]], *, factors: int, iterations: int, regularization: float,
          alpha: float, seed: int) -> CandidateModel:
    """Fit a :class:`CandidateModel` on ``(user_id, item_id, weight)`` interactions (see the module docstring).

    ``factors``: embedding size (≥ 1); ``iterations``: ALS sweeps (≥ 1);
    ``regularization``: λ (> 0); ``alpha``: the confidence scale (≥ 0);
    ``seed``: the embeddings' random start. ``ValueError`` when there are no
    interactions, a weight is not positive, a parameter is out of range, or
    the model would exceed :data:`MAX_ITEMS` items or :data:`MAX_MATRIX_CELLS`
    users × items cells.
    """
    if factors < 1:
        raise ValueError(f"factors must be at least 1, not {factors}")
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, not {iterations}")
    if not regularization > 0:
        raise ValueError(f"regularization must be positive, not {regularization}")
    if not alpha >= 0:
        raise ValueError(f"alpha must be at least 0, not {alpha}")
    if not interactions:
        raise ValueError("no interactions to train on")
    user_ids = sorted({u for u, _, _ in interactions})
    item_ids = sorted({i for _, i, _ in interactions})
    n_users, n_items = len(user_ids), len(item_ids)
    if n_items > MAX_ITEMS:
        raise ValueError(f"{n_items:,} items; at most {MAX_ITEMS:,} (the item-item similarity is items² × 4 bytes)")
    if n_users * n_items > MAX_MATRIX_CELLS:
        raise ValueError(f"{n_users:,} users × {n_items:,} items = {n_users * n_items:,} cells; at most "
                         f"{MAX_MATRIX_CELLS:,} (the confidence matrix is users × items × 4 bytes)")
    user_index = {u: n for n, u in enumerate(user_ids)}
    item_index = {i: n for n, i in enumerate(item_ids)}
    count = len(interactions)
    rows = np.fromiter((user_index[u] for u, _, _ in interactions), dtype=np.int64, count=count)
    cols = np.fromiter((item_index[i] for _, i, _ in interactions), dtype=np.int64, count=count)
    weights = np.fromiter((w for _, _, w in interactions), dtype=np.float64, count=count)
    if not (weights > 0).all():
        bad = int(np.flatnonzero(~(weights > 0))[0])
        raise ValueError(f"interaction {bad} has weight {weights[bad]}; weights must be positive")

    confidence = np.zeros((n_users, n_items), dtype=np.float32)
    np.add.at(confidence, (rows, cols), weights.astype(np.float32))
    similarity = _cosine_similarity(confidence)

    # The nonzero cells in both orders (CSR by user, CSR by item); every user and item has at least one.
    user_of, item_of = np.nonzero(confidence)
    values = confidence[user_of, item_of].astype(np.float64)
    user_ptr = np.concatenate([[0], np.cumsum(np.bincount(user_of, minlength=n_users))])
    by_item = np.argsort(item_of, kind="stable")
    item_ptr = np.concatenate([[0], np.cumsum(np.bincount(item_of, minlength=n_items))])

    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 0.01, size=(n_users, factors))
    y = np.empty((n_items, factors))
    for _ in range(iterations):
        y = _als_sweep(x, item_ptr, user_of[by_item], values[by_item], regularization, alpha)
        x = _als_sweep(y, user_ptr, item_of, values, regularization, alpha)
    return CandidateModel(user_ids, item_ids, confidence, similarity, x, y, interactions=count,
                          regularization=regularization, alpha=alpha)


def _cosine_similarity(confidence: np.ndarray) -> np.ndarray:
    """Items × items cosine similarity of the binary interaction matrix's columns (diagonal 0), float32."""
    n_users, n_items = confidence.shape
    co = np.zeros((n_items, n_items), dtype=np.float32)
    chunk = max(1, _SIMILARITY_CHUNK_CELLS // n_items)
    for start in range(0, n_users, chunk):
        binary = (confidence[start:start + chunk] > 0).astype(np.float32)
        co += binary.T @ binary
    norm = np.sqrt(np.diag(co).copy())  # √(users of the item), > 0 for every item
    co /= norm[:, None]
    co /= norm[None, :]
    np.fill_diagonal(co, 0.0)
    return co


def _als_sweep(fixed: np.ndarray, ptr: np.ndarray, indices: np.ndarray, r: np.ndarray, regularization: float,
               alpha: float) -> np.ndarray:
    """One half of an ALS iteration: every row's closed-form solve against the ``fixed`` factors (Hu et al. 2008, eq. 4).

    Row ``u`` (a user against item factors, or an item against user factors)
    interacted with ``indices[ptr[u]:ptr[u+1]]`` with ratings ``r``:
    ``(FᵀF + λI + Σ_i alpha·r_i f_i f_iᵀ) x_u = Σ_i (1 + alpha·r_i) f_i``.
    Rows are taken in order of length and batched: each batch pads its rows
    to its longest one (padding has confidence 0 and a zero factor row, so it
    adds nothing), builds the systems with one stacked ``matmul`` and solves
    them with one batched ``numpy.linalg.solve``.
    """
    n, factors = len(ptr) - 1, fixed.shape[1]
    gram = fixed.T @ fixed + regularization * np.eye(factors)
    padded = np.vstack([fixed, np.zeros((1, factors))])  # the last row is the padding's zero factor
    c = alpha * r  # c_ui − 1 for each nonzero cell
    lengths = np.diff(ptr)
    order = np.argsort(lengths, kind="stable")
    sorted_lengths = lengths[order]
    out = np.empty((n, factors))
    start = 0
    while start < n:
        # The longest batch from ``start`` whose padded cells (rows × longest × factors) and systems fit the budget.
        rows_cost = (np.arange(1, n - start + 1) * np.maximum(sorted_lengths[start:] * factors, factors * factors))
        stop = start + max(1, int(np.searchsorted(rows_cost, _SOLVE_CHUNK_CELLS, side="right")))
        rows = order[start:stop]
        longest = int(sorted_lengths[stop - 1])
        offsets = np.arange(longest)
        mask = offsets[None, :] < lengths[rows][:, None]
        cells = np.minimum(ptr[rows][:, None] + offsets[None, :], len(indices) - 1)
        neighbours = np.where(mask, indices[cells], fixed.shape[0])
        weight = np.where(mask, c[cells], 0.0)
        g = padded[neighbours]  # rows × longest × factors
        a = gram + np.matmul((g * weight[:, :, None]).transpose(0, 2, 1), g)
        b = np.matmul(((1.0 + weight) * mask)[:, None, :], g)[:, 0, :]
        out[rows] = np.linalg.solve(a, b[:, :, None])[:, :, 0]
        start = stop
    return out
