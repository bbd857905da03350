"""The candidate model of reco-candidates (services/reco/candidates/model.py) on a synthetic catalogue with genres.

100 items in 5 genres of 20; 200 users, each liking or viewing 8 to 12 items
of one or two genres (and, now and then, one item of any genre). A model
that learns anything puts a user's unseen same-genre items first.
"""

from __future__ import annotations

import numpy as np
import pytest

from casemesh.reco.v1 import signals_pb2
from casemesh.services.reco.candidates.model import (
    COLLABORATIVE,
    CONFIDENCE,
    EMBEDDING,
    MAX_ITEMS,
    MAX_MATRIX_CELLS,
    SOURCES,
    TRENDING,
    CandidateModel,
    train,
)

GENRES = 5
ITEMS_PER_GENRE = 20
USERS = 200
PARAMS = dict(factors=16, iterations=8, regularization=0.05, alpha=10.0, seed=42)


def genre(item_id: str) -> int:
    return int(item_id[1:]) // ITEMS_PER_GENRE


def item(genre_: int, n: int) -> str:
    return f"i{genre_ * ITEMS_PER_GENRE + n:03d}"


def make_dataset(seed: int = 7) -> tuple[list[tuple[str, str, int]], dict[str, list[int]]]:
    """Interactions ``(user, item, weight)`` and each user's genres."""
    rng = np.random.default_rng(seed)
    view, like = CONFIDENCE[signals_pb2.INTERACTION_KIND_VIEW], CONFIDENCE[signals_pb2.INTERACTION_KIND_LIKE]
    out: list[tuple[str, str, int]] = []
    genres_of: dict[str, list[int]] = {}
    for u in range(USERS):
        user = f"u{u:03d}"
        genres = sorted(rng.choice(GENRES, size=int(rng.integers(1, 3)), replace=False).tolist())
        genres_of[user] = genres
        pool = [item(g, n) for g in genres for n in range(ITEMS_PER_GENRE)]
        chosen = set(rng.choice(pool, size=int(rng.integers(8, 13)), replace=False).tolist())
        if rng.random() < 0.2:  # noise: an item of any genre
            chosen.add(item(int(rng.integers(GENRES)), int(rng.integers(ITEMS_PER_GENRE))))
        out.extend((user, i, like if rng.random() < 0.3 else view) for i in sorted(chosen))
    return out, genres_of


@pytest.fixture(scope="module")
def dataset() -> tuple[list[tuple[str, str, int]], dict[str, list[int]]]:
    return make_dataset()


@pytest.fixture(scope="module")
def model(dataset) -> CandidateModel:
    return train(dataset[0], **PARAMS)


def one_genre_user(genres_of: dict[str, list[int]], g: int) -> str:
    return next(u for u, gs in genres_of.items() if gs == [g])


def ranked_by(candidates: list[tuple[str, dict[str, float]]], source: str) -> list[str]:
    """The candidates ``source`` scored, best first."""
    scored = [(scores[source], item_id) for item_id, scores in candidates if source in scores]
    return [item_id for _, item_id in sorted(scored, key=lambda s: (-s[0], s[1]))]


def test_stats(model, dataset):
    interactions, _ = dataset
    assert model.stats.users == USERS
    assert model.stats.items == GENRES * ITEMS_PER_GENRE
    assert model.stats.interactions == len(interactions)
    assert model.stats.factors == PARAMS["factors"]


def test_candidates_exclude_training_and_recent_items(model, dataset):
    interactions, genres_of = dataset
    user = one_genre_user(genres_of, 0)
    trained = {i for u, i, _ in interactions if u == user}
    assert set(model.trained_items(user)) == trained
    recent = [item(3, 0), item(3, 1), "not-in-the-catalogue"]
    pool = model.candidates(user, recent, 100)
    ids = [i for i, _ in pool]
    assert len(ids) == len(set(ids))
    assert not set(ids) & (trained | set(recent))
    assert len(ids) == 100 - len(trained | {item(3, 0), item(3, 1)})  # everything else, trending filling the rest


def test_scores_are_normalised_per_source(model, dataset):
    _, genres_of = dataset
    pool = model.candidates(one_genre_user(genres_of, 1), [], 60)
    for source in SOURCES:
        scores = [s[source] for _, s in pool if source in s]
        assert scores, source
        assert max(scores) == pytest.approx(1.0)
        assert all(0.0 < s <= 1.0 for s in scores)


def test_collaborative_ranks_same_genre_first(model, dataset):
    _, genres_of = dataset
    for g in range(GENRES):
        user = one_genre_user(genres_of, g)
        unseen_same = ITEMS_PER_GENRE - sum(genre(i) == g for i in model.trained_items(user))
        top = ranked_by(model.candidates(user, [], 50), COLLABORATIVE)[:unseen_same]
        assert len(top) == unseen_same
        assert sum(genre(i) == g for i in top) >= unseen_same - 1, (g, top)


def test_als_embeddings_recall_held_out_items(dataset):
    """Hold out 20% of each user's interactions; recall@10 of the embedding source must beat random by far."""
    interactions, _ = dataset
    rng = np.random.default_rng(3)
    held = rng.random(len(interactions)) < 0.2
    train_set = [x for x, h in zip(interactions, held) if not h]
    test_set: dict[str, set[str]] = {}
    for (user, item_id, _), h in zip(interactions, held):
        if h:
            test_set.setdefault(user, set()).add(item_id)
    fitted = train(train_set, **PARAMS)
    recalls, random_recalls, same_genre = [], [], []
    for user, hidden in test_set.items():
        hidden = hidden - set(fitted.trained_items(user))
        if not hidden or user not in fitted.user_ids:
            continue
        top = ranked_by(fitted.candidates(user, [], 100), EMBEDDING)[:10]
        assert len(top) == 10
        recalls.append(len(hidden & set(top)) / len(hidden))
        random_recalls.append(min(10, 100 - len(fitted.trained_items(user))) / (100 - len(fitted.trained_items(user))))
    recall, random = float(np.mean(recalls)), float(np.mean(random_recalls))
    assert len(recalls) > 150
    assert recall > 3 * random, (recall, random)
    assert recall > 0.4, recall  # the ceiling is about 0.66: a two-genre user's hidden items hide among ~30 unseen


def test_embedding_neighbours_share_the_genre(model, dataset):
    _, genres_of = dataset
    for g in range(GENRES):
        top = ranked_by(model.candidates(one_genre_user(genres_of, g), [], 100), EMBEDDING)[:5]
        assert all(genre(i) == g for i in top), (g, top)


def test_a_recent_item_shifts_collaborative_candidates_at_once(model, dataset):
    """The real-time signal: an item of another genre, not in the training data, moves the pool toward its genre."""
    _, genres_of = dataset
    user = one_genre_user(genres_of, 0)
    other = 4
    fresh = next(item(other, n) for n in range(ITEMS_PER_GENRE) if item(other, n) not in model.trained_items(user))
    before = ranked_by(model.candidates(user, [], 30), COLLABORATIVE)[:20]
    after_pool = model.candidates(user, [fresh], 30)
    after = ranked_by(after_pool, COLLABORATIVE)[:20]
    count = lambda items: sum(genre(i) == other for i in items)  # noqa: E731
    assert count(after) >= count(before) + 5, (before, after)
    assert fresh not in [i for i, _ in after_pool]
    # The embedding is folded in with the recent item too: its neighbours move toward that genre.
    emb_before = ranked_by(model.candidates(user, [], 100), EMBEDDING)[:30]
    emb_after = ranked_by(model.candidates(user, [fresh, item(other, 19 if fresh != item(other, 19) else 18)], 100),
                          EMBEDDING)[:30]
    assert count(emb_after) > count(emb_before)


def test_unknown_user_gets_candidates_from_recent_items_and_trending(model, dataset):
    recent = [item(2, 0), item(2, 1), item(2, 2)]
    pool = model.candidates("stranger", recent, 20)
    assert len(pool) == 20
    sources = {s for _, scores in pool for s in scores}
    assert sources == {COLLABORATIVE, EMBEDDING, TRENDING}
    collab = ranked_by(pool, COLLABORATIVE)[:8]
    assert sum(genre(i) == 2 for i in collab) >= 7, collab
    assert not {i for i, _ in pool} & set(recent)

    cold = model.candidates("stranger", [], 20)
    assert [set(s) for _, s in cold] == [{TRENDING}] * 20
    popularity: dict[str, int] = {}
    for _, item_id, weight in dataset[0]:
        popularity[item_id] = popularity.get(item_id, 0) + weight
    best = sorted(popularity, key=lambda i: (-popularity[i], i))[:20]
    assert [i for i, _ in cold] == best
    assert [s[TRENDING] for _, s in cold] == sorted((s[TRENDING] for _, s in cold), reverse=True)
    # Unknown recent ids alone are ignored: trending only.
    assert model.candidates("stranger", ["nope"], 5) == model.candidates("stranger", [], 5)


@pytest.mark.parametrize("pool_size", [1, 2, 5, 37, 80, 500])
def test_pool_size_is_respected(model, dataset, pool_size):
    _, genres_of = dataset
    user = one_genre_user(genres_of, 3)
    pool = model.candidates(user, [item(0, 5)], pool_size)
    unseen = 100 - len(set(model.trained_items(user)) | {item(0, 5)})
    assert len(pool) == min(pool_size, unseen)
    assert len({i for i, _ in pool}) == len(pool)
    if pool_size == 1:
        assert COLLABORATIVE in pool[0][1]  # the first share is collaborative


def test_shares_pass_on_when_a_source_has_nothing(model):
    """A cold user has neither co-occurrence nor embedding candidates: trending fills the whole pool."""
    assert len(model.candidates("stranger", [], 50)) == 50


def test_deterministic_for_a_seed(dataset):
    interactions, genres_of = dataset
    first = train(interactions, **PARAMS)
    second = train(list(reversed(interactions)), **PARAMS)  # the input's order does not matter either
    for user in list(genres_of)[:20]:
        assert first.candidates(user, [item(1, 1)], 40) == second.candidates(user, [item(1, 1)], 40)
    other = train(interactions, **{**PARAMS, "seed": 43})
    user = one_genre_user(genres_of, 2)
    emb = lambda m: [s.get(EMBEDDING) for _, s in m.candidates(user, [], 40)]  # noqa: E731
    assert emb(first) != emb(other)


def test_views_and_likes_of_the_same_item_add_up(dataset):
    interactions = [("a", "x", 1), ("a", "x", 4), ("b", "x", 1), ("b", "y", 1), ("c", "y", 1)]
    fitted = train(interactions, **PARAMS)
    pool = fitted.candidates("z", [], 2)
    assert [i for i, _ in pool] == ["x", "y"]  # x: 6, y: 2
    assert pool[1][1][TRENDING] == pytest.approx(2 / 6)


def test_memory_caps(monkeypatch):
    users = MAX_MATRIX_CELLS // MAX_ITEMS + 1
    too_many_cells = [(f"u{u}", "i0", 1) for u in range(users)] + [("u0", f"i{i}", 1) for i in range(MAX_ITEMS)]
    with pytest.raises(ValueError, match="cells"):
        train(too_many_cells, **PARAMS)
    too_many_items = [("u0", f"i{i}", 1) for i in range(MAX_ITEMS + 1)]
    with pytest.raises(ValueError, match="items"):
        train(too_many_items, **PARAMS)


@pytest.mark.parametrize("interactions, params, message", [
    ([], {}, "no interactions"),
    ([("a", "x", 0)], {}, "weight"),
    ([("a", "x", 1)], {"factors": 0}, "factors"),
    ([("a", "x", 1)], {"iterations": 0}, "iterations"),
    ([("a", "x", 1)], {"regularization": 0.0}, "regularization"),
])
def test_bad_training_input(interactions, params, message):
    with pytest.raises(ValueError, match=message):
        train(interactions, **{**PARAMS, **params})


def test_bad_pool_size(model):
    with pytest.raises(ValueError, match="pool_size"):
        model.candidates("u000", [], 0)


def test_stored_embedding_is_the_fold_in_against_the_final_item_table(model, dataset):
    """Users are solved last, so the ALS user solve over a user's own items reproduces their stored embedding."""
    _, genres_of = dataset
    user = one_genre_user(genres_of, 1)
    u = model.user_ids.index(user)
    trained = np.flatnonzero(model._confidence[u])
    r = model._confidence[u, trained].astype(np.float64)
    y = model._item_factors64[trained]
    c = PARAMS["alpha"] * r
    solved = np.linalg.solve(model._gram + (y.T * c) @ y, (1 + c) @ y)
    assert np.allclose(solved, model._user_factors[u], atol=1e-4)
