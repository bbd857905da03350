"""A deterministic synthetic interaction dataset from a latent genre model, and recall@k against its held-out part.

What it exercises. Seed 001 (shared/seeds/001_58dfc580020147d2.txt, line 31,
#19 "Recommendation Engine": "Collaborative filtering, two-tower embeddings,
candidate generation, real-time signals", "100M users, Netflix/YouTube") and
seed 003 (shared/seeds/003_1dfe16d8ccfde9ed.txt, lines 522-559, Netflix's
``getRecommendations(userId, limit = 20)``: collaborative filtering over
similar users' watches, content matches by the genres of the watch history
(``extractGenres`` / ``findByGenres``), trending, "Remove already watched").
A recommender can only beat "most popular" on data that has structure for it
to find; this dataset has exactly one such structure, hidden from the system:
every item belongs to one genre and every user prefers a few genres. Users
who share genres watch overlapping items (what co-occurrence finds), the
user-item matrix has low rank (what the embeddings find), and popularity
alone explains the rest (what trending finds). Since the generating model is
known, how much of each user's unseen history a recommender recovers
(recall@k on the held-out part) measures the mechanism, not just its speed.

The model (every draw from one ``numpy.random.Generator`` seeded with
``seed``, in a fixed order: the same parameters give the same dataset with the
same numpy, which does not promise identical streams across its versions):

- **Items**: ``items`` items ``item-000000`` ...; item genres are balanced:
  a random permutation of the items is dealt round-robin into ``genres``
  genres (``items // genres`` or one more each).
- **Popularity**: Zipf over the whole catalogue: a random permutation gives
  each item a rank r (1 = most popular) and the weight ``1 / r**zipf_exponent``
  (exponent 1.0 by default: the classic web/media popularity law). Genres
  therefore differ in total popularity only by chance.
- **Users**: ``users`` users ``user-000000`` ...; each prefers 1 to
  ``max_preferred_genres`` genres (uniform count, distinct genres chosen
  uniformly), with weights from a flat Dirichlet (so one genre may dominate).
- **Histories**: each user interacts with ``n`` distinct items, ``n`` uniform
  in ``[min_interactions, max_interactions]``. Each interaction comes from the
  preferred genres with probability ``preferred_share`` (0.85), else from
  anywhere: so ``Binomial(n, preferred_share)`` of the items (at most as many
  as the preferred genres hold) are drawn from the preferred genres (genre by
  the user's weight, item within it by popularity), the others from the whole
  catalogue by popularity. An item is interacted with once: each part is a
  successive draw without replacement (each next item in proportion to its
  weight among those not yet drawn, implemented exactly as Gumbel top-n of
  ``log p``), the anywhere part among the items the first part left. The
  preferred-genre share is therefore ``preferred_share`` plus what the
  anywhere part lands in preferred genres, less the shortfall of one-genre users
  whose genre runs out (0.85 measured with the defaults).
- **Kinds**: every interaction is a VIEW (confidence 1 in the contract); with
  probability ``like_share`` (0.3) the user also LIKEs it (confidence 4). A
  liked item is therefore two interactions, a VIEW and a LIKE.
- **Split**: per user, a random permutation of the ``n`` items (not the
  draw order, which favours popular items) is cut into three disjoint
  parts: ``held_out`` (``round(held_out_share * n)``, 0.2), ``live``
  (``round(live_share * n)``, 0.1) and ``train`` (the rest, about 0.7).
  ``train`` is seeded before load and the model trained on it; ``live`` is
  what the user views and likes during the load (the real-time signals), so
  the load never touches ``held_out``; ``held_out`` is never sent to the
  system at all: it is the ground truth of recall@k, items the user would
  watch that the system has never seen them watch.

Users and their activity: a user's activity weight (how often they open the
app in the workload) is their history length ``n``: heavy viewers come back more.

Pure Python and numpy: no gRPC, no service code (a workload talks to the
system only through the contracts).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

#: The interaction kinds, as the contract's InteractionKind names them without the prefix.
VIEW = "VIEW"
LIKE = "LIKE"


def user_id(index: int) -> str:
    """The id of user ``index`` (the contract's id rule: ``[A-Za-z0-9_-]{1,64}``)."""
    return f"user-{index:06d}"


def item_id(index: int) -> str:
    """The id of item ``index``."""
    return f"item-{index:06d}"


@dataclass(frozen=True)
class Spec:
    """Every parameter of the dataset; the same spec always gives the same dataset.

    - ``users``, ``items``, ``genres``: sizes (``genres`` <= ``items``).
    - ``min_interactions`` / ``max_interactions``: a user's history length, uniform in the range (<= ``items``).
    - ``max_preferred_genres``: a user prefers 1 to this many genres (uniform count; at most ``genres``).
    - ``preferred_share``: probability that one interaction is drawn from the preferred genres (else from anywhere).
    - ``zipf_exponent``: popularity of the item of rank r is ``1 / r**zipf_exponent`` (0: uniform).
    - ``like_share``: probability that an interacted item is also liked.
    - ``held_out_share`` / ``live_share``: the per-user split; ``train`` is the rest (must stay > 0).
    - ``seed``: the random seed.
    """

    users: int = 2000
    items: int = 1000
    genres: int = 20
    min_interactions: int = 20
    max_interactions: int = 60
    max_preferred_genres: int = 3
    preferred_share: float = 0.85
    zipf_exponent: float = 1.0
    like_share: float = 0.3
    held_out_share: float = 0.2
    live_share: float = 0.1
    seed: int = 19

    def __post_init__(self) -> None:
        problems = []
        if self.users < 1 or self.items < 1:
            problems.append("users and items must be >= 1")
        if not 1 <= self.genres <= self.items:
            problems.append("genres must be 1 to items")
        if not 1 <= self.min_interactions <= self.max_interactions <= self.items:
            problems.append("need 1 <= min_interactions <= max_interactions <= items")
        if not 1 <= self.max_preferred_genres <= self.genres:
            problems.append("max_preferred_genres must be 1 to genres")
        for name in ("preferred_share", "like_share", "held_out_share", "live_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name} must be 0 to 1")
        if self.zipf_exponent < 0:
            problems.append("zipf_exponent must be >= 0")
        if self.held_out_share + self.live_share >= 1.0:
            problems.append("held_out_share + live_share must be < 1 (train is the rest)")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass(frozen=True)
class UserHistory:
    """One user's latent preferences and the three disjoint parts of their history."""

    user_id: str
    #: Preferred genres and their weights (same order, weights sum to 1).
    genres: tuple[int, ...]
    genre_weights: tuple[float, ...]
    #: Item ids, in the user's (random) split order.
    train: tuple[str, ...]
    held_out: frozenset[str]
    live: tuple[str, ...]
    #: The items of ``train`` and ``live`` the user also likes (held-out likes are not needed: recall counts any interaction).
    liked: frozenset[str]

    @property
    def size(self) -> int:
        """The history length n (train + held-out + live): the user's activity weight."""
        return len(self.train) + len(self.held_out) + len(self.live)


@dataclass(frozen=True)
class Dataset:
    """Items with their genre and popularity, and every user's history."""

    spec: Spec
    item_ids: tuple[str, ...]
    #: Genre of each item (index as ``item_ids``).
    item_genre: np.ndarray
    #: Popularity of each item, normalised to sum 1.
    popularity: np.ndarray
    users: tuple[UserHistory, ...]

    def genre_of(self, item: str) -> int:
        """The genre of an item id of this dataset."""
        return int(self.item_genre[int(item.rsplit("-", 1)[1])])

    def by_id(self) -> dict[str, UserHistory]:
        """Users by id."""
        return {u.user_id: u for u in self.users}

    def train_interactions(self, users: Iterable[UserHistory] | None = None) -> Iterator[tuple[str, str, str]]:
        """``(user_id, item_id, kind)`` of every train interaction: a VIEW per item, and a LIKE after it for liked ones."""
        for user in self.users if users is None else users:
            for item in user.train:
                yield user.user_id, item, VIEW
                if item in user.liked:
                    yield user.user_id, item, LIKE

    def preferred_share(self, user: UserHistory) -> float:
        """The share of a user's items (all three parts) that belong to their preferred genres."""
        items = [*user.train, *user.held_out, *user.live]
        preferred = set(user.genres)
        return sum(self.genre_of(i) in preferred for i in items) / len(items)


def generate(spec: Spec) -> Dataset:
    """The dataset of ``spec`` (deterministic: the module docstring gives the model)."""
    rng = np.random.default_rng(spec.seed)
    n_items = spec.items
    item_genre = np.empty(n_items, dtype=np.int64)
    item_genre[rng.permutation(n_items)] = np.arange(n_items) % spec.genres
    ranks = rng.permutation(n_items) + 1
    popularity = 1.0 / ranks.astype(np.float64) ** spec.zipf_exponent
    popularity /= popularity.sum()
    # Popularity within each genre, normalised per genre: the item part of the preferred-genre draw.
    genre_total = np.bincount(item_genre, weights=popularity, minlength=spec.genres)
    within_genre = popularity / genre_total[item_genre]
    item_ids = tuple(item_id(i) for i in range(n_items))

    users = []
    for index in range(spec.users):
        count = int(rng.integers(1, spec.max_preferred_genres + 1))
        genres = rng.choice(spec.genres, size=count, replace=False)
        weights = rng.dirichlet(np.ones(count))
        genre_weight = np.zeros(spec.genres)
        genre_weight[genres] = weights
        mix = genre_weight[item_genre] * within_genre
        n = int(rng.integers(spec.min_interactions, spec.max_interactions + 1))
        n_preferred = min(int(rng.binomial(n, spec.preferred_share)), int(np.count_nonzero(mix)))
        first = _successive(mix, n_preferred, rng)
        rest = popularity.copy()
        rest[first] = 0.0
        drawn = np.sort(np.concatenate([first, _successive(rest, n - n_preferred, rng)]))
        liked_mask = rng.random(n) < spec.like_share
        order = rng.permutation(n)
        n_held = round(spec.held_out_share * n)
        n_live = round(spec.live_share * n)
        n_train = n - n_held - n_live
        items = [item_ids[i] for i in drawn]
        split = [items[j] for j in order]
        train = tuple(split[:n_train])
        held = frozenset(split[n_train:n_train + n_held])
        live = tuple(split[n_train + n_held:])
        liked = frozenset(items[j] for j in range(n) if liked_mask[j]) - held
        order_g = np.argsort(genres)
        users.append(UserHistory(
            user_id=user_id(index), genres=tuple(int(genres[g]) for g in order_g),
            genre_weights=tuple(float(weights[g]) for g in order_g),
            train=train, held_out=held, live=live, liked=liked))
    return Dataset(spec=spec, item_ids=item_ids, item_genre=item_genre, popularity=popularity, users=tuple(users))


def _successive(p: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``n`` draws without replacement, each in proportion to ``p`` among those left (Gumbel top-n of ``log p``).

    Only indices with ``p`` > 0 are drawn (the caller keeps ``n`` within their count); the order is not part of the model.
    """
    with np.errstate(divide="ignore"):
        keys = np.log(p) + rng.gumbel(size=p.size)
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    return np.argpartition(-keys, n - 1)[:n] if n < p.size else np.arange(p.size)


def recall_at_k(recommended: list[str], held_out: set[str] | frozenset[str], k: int) -> float:
    """``|top-k ∩ held_out| / min(k, |held_out|)``: the share of the held-out items a list of k could hold that it holds.

    ``top-k`` is the first ``k`` of ``recommended`` (best first; a repeated id
    counts once). The denominator is ``min(k, |held_out|)`` rather than
    ``|held_out|`` so that 1.0 is reachable for every user (a user with 12
    held-out items and k = 20 scores 1.0 when all 12 are in the list; a user
    with 40 and k = 20 when the list is all held-out items). ``ValueError``
    when ``held_out`` is empty (recall is undefined there: skip such users,
    as :func:`mean_recall_at_k` does) or ``k`` < 1.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, not {k}")
    if not held_out:
        raise ValueError("recall@k is undefined for a user without held-out items")
    return len(set(recommended[:k]) & held_out) / min(k, len(held_out))


def mean_recall_at_k(recommended: Mapping[str, list[str]], dataset: Dataset, k: int) -> tuple[float, int]:
    """Mean recall@k over the users in ``recommended`` (user id → list), skipping users without held-out items.

    Returns ``(mean, users counted)``; ``(nan, 0)`` when none counts.
    """
    users = dataset.by_id()
    scores = [recall_at_k(items, users[u].held_out, k) for u, items in recommended.items() if users[u].held_out]
    return (float(np.mean(scores)) if scores else float("nan")), len(scores)


def popularity_baseline(dataset: Dataset, user: UserHistory, k: int) -> list[str]:
    """The k most popular items the user has not interacted with in train or live: the "trending only" reference.

    A recommender's recall@k is worth quoting next to this one's: only the part
    above it comes from personalisation.
    """
    seen = set(user.train) | set(user.live)
    order = np.argsort(-dataset.popularity, kind="stable")
    return [dataset.item_ids[i] for i in order if dataset.item_ids[i] not in seen][:k]
