"""The recommendation workload's synthetic dataset (harness/workloads/reco/dataset.py) and recall@k."""

from __future__ import annotations

import math

import numpy as np
import pytest

from casemesh.harness.workloads.reco.dataset import (LIKE, VIEW, Spec, generate, mean_recall_at_k, popularity_baseline,
                                                     recall_at_k)
from casemesh.harness.workloads.reco.seeding import SeedParams, batches

SMALL = Spec(users=300, items=400, genres=10, seed=7)


@pytest.fixture(scope="module")
def dataset():
    return generate(SMALL)


def test_the_same_spec_gives_the_same_dataset_and_another_seed_another(dataset):
    again = generate(SMALL)
    assert again.users == dataset.users
    assert np.array_equal(again.item_genre, dataset.item_genre) and np.array_equal(again.popularity, dataset.popularity)
    other = generate(Spec(users=300, items=400, genres=10, seed=8))
    assert other.users != dataset.users


def test_parts_are_disjoint_and_cover_the_history(dataset):
    for user in dataset.users:
        train, held, live = set(user.train), user.held_out, set(user.live)
        assert len(train) == len(user.train) and len(live) == len(user.live)  # no item twice in a part
        assert not train & held and not train & live and not held & live
        assert SMALL.min_interactions <= user.size <= SMALL.max_interactions
        assert user.liked <= train | live  # likes are only ever sent for items the system may see


def test_split_shares(dataset):
    total = sum(u.size for u in dataset.users)
    assert sum(len(u.train) for u in dataset.users) / total == pytest.approx(0.7, abs=0.01)
    assert sum(len(u.held_out) for u in dataset.users) / total == pytest.approx(0.2, abs=0.01)
    assert sum(len(u.live) for u in dataset.users) / total == pytest.approx(0.1, abs=0.01)
    for user in dataset.users:
        assert len(user.held_out) == round(0.2 * user.size) and len(user.live) == round(0.1 * user.size)


def test_like_share_and_train_interactions(dataset):
    seen = sum(len(u.train) + len(u.live) for u in dataset.users)
    assert sum(len(u.liked) for u in dataset.users) / seen == pytest.approx(0.3, abs=0.02)
    interactions = list(dataset.train_interactions())
    views = [(u, i) for u, i, k in interactions if k == VIEW]
    likes = [(u, i) for u, i, k in interactions if k == LIKE]
    assert len(views) == sum(len(u.train) for u in dataset.users)
    assert set(likes) <= set(views)
    held = {(u.user_id, i) for u in dataset.users for i in u.held_out}
    assert not held & set(views)


def test_preferred_genres_dominate(dataset):
    shares = [dataset.preferred_share(u) for u in dataset.users]
    assert np.mean(shares) == pytest.approx(0.87, abs=0.03)  # 0.85 plus what the anywhere-draws land in preferred genres
    # A user's preferred genres hold 1 to 3 of 10 genres, yet most of their history.
    assert np.median(shares) > 0.8
    for user in dataset.users:
        assert 1 <= len(user.genres) <= 3 and math.isclose(sum(user.genre_weights), 1.0)


def test_popularity_is_zipf_and_genres_balanced(dataset):
    ranked = np.sort(dataset.popularity)[::-1]
    assert ranked[0] / ranked[9] == pytest.approx(10.0)  # 1/r with exponent 1
    assert set(np.bincount(dataset.item_genre)) == {40}  # 400 items dealt into 10 genres


def test_held_out_follows_the_model_so_genre_beats_popularity(dataset):
    """The dataset has structure to find: an oracle knowing the latent genres recalls far more than "most popular"."""
    k = 20
    gt = np.bincount(dataset.item_genre, weights=dataset.popularity)
    oracle = {}
    for user in dataset.users:
        weight = np.zeros(SMALL.genres)
        weight[list(user.genres)] = user.genre_weights
        p = 0.85 * weight[dataset.item_genre] * dataset.popularity / gt[dataset.item_genre] + 0.15 * dataset.popularity
        seen = set(user.train) | set(user.live)
        oracle[user.user_id] = [dataset.item_ids[i] for i in np.argsort(-p) if dataset.item_ids[i] not in seen][:k]
    popular = {u.user_id: popularity_baseline(dataset, u, k) for u in dataset.users}
    oracle_recall, counted = mean_recall_at_k(oracle, dataset, k)
    popular_recall, _ = mean_recall_at_k(popular, dataset, k)
    assert counted == len(dataset.users)
    assert oracle_recall > 2 * popular_recall > 0


def test_recall_at_k_edge_cases():
    held = {"a", "b", "c"}
    assert recall_at_k(["a", "x", "b"], held, 20) == pytest.approx(2 / 3)  # min(k, |held|) = 3
    assert recall_at_k(["a", "b", "c", "d"], held, 2) == 1.0  # top-2 both held out: min(2, 3) = 2
    assert recall_at_k(["x", "a"], held, 1) == 0.0  # only the first counts
    assert recall_at_k([], held, 5) == 0.0
    assert recall_at_k(["a", "a", "a"], held, 3) == pytest.approx(1 / 3)  # a repeat counts once
    with pytest.raises(ValueError):
        recall_at_k(["a"], set(), 5)
    with pytest.raises(ValueError):
        recall_at_k(["a"], held, 0)


def test_mean_recall_skips_users_without_held_out():
    data = generate(Spec(users=20, items=50, genres=5, min_interactions=2, max_interactions=3, held_out_share=0.2,
                         live_share=0.0, seed=1))
    empty = [u for u in data.users if not u.held_out]
    assert empty  # round(0.2 * 2) == 0
    recs = {u.user_id: sorted(u.held_out) for u in data.users}
    mean, counted = mean_recall_at_k(recs, data, 5)
    assert counted == len(data.users) - len(empty) and mean == 1.0
    assert math.isnan(mean_recall_at_k({empty[0].user_id: []}, data, 5)[0])


def test_bad_specs_are_refused():
    for bad in (dict(genres=0), dict(items=10, genres=11), dict(min_interactions=5, max_interactions=4),
                dict(items=10, genres=2, max_interactions=11, min_interactions=1), dict(held_out_share=0.6, live_share=0.4),
                dict(max_preferred_genres=0)):
        with pytest.raises(ValueError):
            Spec(**bad)


def test_seed_batches_hold_every_train_interaction_and_respect_the_batch_size():
    params = SeedParams(users=50, items=100, genres=5, batch_size=64, dataset_seed=3)
    data = generate(params.spec())
    requests = list(batches(data, params.batch_size))
    assert all(0 < len(r.interactions) <= 64 for r in requests)
    sent = [(i.user_id, i.item_id, i.kind) for r in requests for i in r.interactions]
    assert len(sent) == sum(1 for _ in data.train_interactions())
    held = {(u.user_id, i) for u in data.users for i in u.held_out} | {(u.user_id, i) for u in data.users for i in u.live}
    assert not {(u, i) for u, i, _ in sent} & held
