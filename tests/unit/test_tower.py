"""User tower over frozen item vectors: the validation cut against a plain loop, the loss
falls, it beats summed cosine on a planted dataset, it is seeded, and it never reads data
outside the matrix it is given."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from moviegraph.protocol import metrics as mt
from moviegraph.train import tower as tw
from moviegraph.train.scorers import own_scorer
from moviegraph.train.tower import TowerConfig, fit_tower, random_cut, train_tower

CPU = torch.device("cpu")


def planted(seed: int = 0, n_users: int = 240, per_user: int = 10):
    """Three clusters of 20 movies; a user rates movies of one cluster, drawn by a steep
    within-cluster popularity. Item vectors know the cluster (one-hot + noise) but nothing of
    popularity, so summed cosine ranks a cluster's movies at random while a tower with a
    learned bias can rank them by popularity. Returns (train, test, vectors): two movies of
    each user held out, all ratings 5."""
    rng = np.random.default_rng(seed)
    n_items, n_clusters = 60, 3
    cluster = np.arange(n_items) // 20
    pop = 1.0 / (1 + np.arange(20)) ** 1.2
    vectors = np.eye(n_clusters)[cluster] + 0.05 * rng.standard_normal((n_items, n_clusters))
    vectors = np.hstack([vectors, 0.05 * rng.standard_normal((n_items, 5))])
    rows, cols, held = [], [], []
    for u in range(n_users):
        c = rng.integers(n_clusters)
        items = c * 20 + rng.choice(20, size=per_user, replace=False, p=pop / pop.sum())
        rows += [u] * per_user
        cols += list(items)
        held += [False] * (per_user - 2) + [True, True]
    rows, cols, held = np.array(rows), np.array(cols), np.array(held)
    five = np.full(len(rows), 5.0)

    def matrix(mask):
        return mt.user_item_matrix(rows[mask], cols[mask], five[mask], n_users, n_items)

    return matrix(~held), matrix(held), vectors.astype(np.float32)


FAST = TowerConfig(hidden=32, epochs=30, patience=5, batch_size=64, lr=5e-3)


def test_random_cut_plain_reference() -> None:
    rng = np.random.default_rng(4)
    dense = rng.integers(1, 6, size=(9, 15)).astype(float)
    dense[rng.random(dense.shape) < 0.6] = 0.0
    dense[2] = 0.0
    dense[2, 7] = 4.0  # a single rating: stays in fit
    fit_part, val_part = random_cut(sp.csr_matrix(dense), 0.2, seed=1)
    f, v = fit_part.toarray(), val_part.toarray()
    np.testing.assert_array_equal(f + v, dense)  # a partition, values kept
    assert not np.any((f != 0) & (v != 0))
    for u in range(dense.shape[0]):
        n = int((dense[u] != 0).sum())
        want = 0 if n < 2 else max(1, int(np.floor(0.2 * n)))
        assert int((v[u] != 0).sum()) == want
    again = random_cut(sp.csr_matrix(dense), 0.2, seed=1)[1].toarray()
    np.testing.assert_array_equal(again, v)
    other = random_cut(sp.csr_matrix(dense), 0.5, seed=2)[1].toarray()
    assert not np.array_equal(other, v)


def test_scores_are_tower_dot_items_plus_bias() -> None:
    train, _, vectors = planted(n_users=30)
    res = train_tower(train, vectors, TowerConfig(hidden=8, epochs=2), device=CPU)
    users = np.arange(train.shape[0])
    # Plain reference of the forward pass from the module's own weights.
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    x = (train.toarray() != 0).astype(np.float64)
    pooled = x @ unit / x.sum(1, keepdims=True)
    def arr(t: torch.Tensor) -> np.ndarray:
        return t.detach().double().numpy()

    w1, b1 = arr(res.model.mlp[0].weight), arr(res.model.mlp[0].bias)
    w2, b2 = arr(res.model.mlp[2].weight), arr(res.model.mlp[2].bias)
    u = np.tanh(pooled @ w1.T + b1) @ w2.T + b2 + arr(res.model.skip) * pooled
    want = u @ unit.T + res.model.bias.detach().double().numpy()
    np.testing.assert_allclose(res(users), want, atol=1e-4)
    np.testing.assert_allclose(res.user_vectors() @ res.item_vectors().T, want, atol=1e-4)


def test_loss_falls_and_beats_summed_cosine_on_planted_data() -> None:
    train, test, vectors = planted()
    res = fit_tower(train, vectors, FAST, device=CPU)
    assert res.best_epochs >= 1
    probe = train_tower(train, vectors, FAST, epochs=15, device=CPU)
    assert probe.losses[-1] < 0.95 * probe.losses[0]
    cos = mt.ranking_metrics(mt.item_embedding_scores(vectors, train), train, test, k=5).recall
    ours = mt.ranking_metrics(res, train, test, k=5).recall
    # Summed cosine picks within the right cluster at random (0.42 measured, tower 0.57); the
    # tower's bias adds the within-cluster popularity.
    assert ours > cos + 0.1


def test_deterministic_for_a_seed() -> None:
    train, _, vectors = planted(n_users=60)
    users = np.arange(train.shape[0])
    cfg = TowerConfig(hidden=16, epochs=6, patience=3, seed=5)
    a = fit_tower(train, vectors, cfg, device=CPU)
    b = fit_tower(train, vectors, cfg, device=CPU)
    np.testing.assert_array_equal(a(users), b(users))
    assert a.val_recall == b.val_recall
    c = fit_tower(train, vectors, TowerConfig(hidden=16, epochs=6, patience=3, seed=6),
                  device=CPU)
    assert not np.array_equal(a(users), c(users))


def test_own_scorer_only_reads_a_cut_of_its_matrix(monkeypatch) -> None:
    train, _, vectors = planted(n_users=60)
    seen: list[tuple[sp.csr_matrix, sp.csr_matrix]] = []
    real = tw.ranking_metrics

    def spy(scores, fit_part, validation, k):
        seen.append((sp.csr_matrix(fit_part), sp.csr_matrix(validation)))
        return real(scores, fit_part, validation, k=k)

    monkeypatch.setattr(tw, "ranking_metrics", spy)
    monkeypatch.setattr("moviegraph.train.scorers.TOWER", FAST)
    scorer = own_scorer("node2vec")
    assert scorer is not None
    scores = scorer(train, vectors, 0)
    assert scores.shape == train.shape
    assert seen  # early stopping did validate
    stored = train.toarray() != 0
    for fit_part, validation in seen:
        f, v = fit_part.toarray() != 0, validation.toarray() != 0
        assert not np.any(f & v) and np.array_equal(f | v, stored)
    # The test ratings are not an input: altering them cannot change anything, and the
    # same call again gives the same scores.
    np.testing.assert_array_equal(scorer(train, vectors, 0), scores)
    assert own_scorer("mf") is None


def test_bad_config_rejected() -> None:
    with pytest.raises(ValueError):
        TowerConfig(dropout=1.0)
    with pytest.raises(ValueError):
        TowerConfig(target="dropped", dropout=0.0)
    train, _, vectors = planted(n_users=10)
    with pytest.raises(ValueError):
        train_tower(train, vectors[:-1], TowerConfig(epochs=1), device=CPU)


def _temporal_reference(dense: np.ndarray, when: np.ndarray):
    """Per user, the last max(1, n // 5) rated movies by (time, movie) are validation."""
    val = np.zeros(dense.shape, dtype=bool)
    for u in range(dense.shape[0]):
        rated = [(when[u, j], j) for j in range(dense.shape[1]) if dense[u, j] != 0]
        if not rated:
            continue
        for _, j in sorted(rated)[len(rated) - max(1, len(rated) // 5):]:
            val[u, j] = True
    return val


def _timed_case(seed: int = 3):
    rng = np.random.default_rng(seed)
    dense = rng.integers(1, 6, size=(9, 23)).astype(float)
    dense[rng.random(dense.shape) < 0.4] = 0.0
    dense[2] = 0.0
    dense[2, 7] = 4.0  # a single rating: it is the user's validation part
    dense[5] = 0.0  # a user without ratings
    when = rng.integers(0, 6, size=dense.shape).astype(float)  # few values: many time ties
    when[0, np.flatnonzero(dense[0])[0]] = 0.0  # a stored time of exactly 0
    times = sp.csr_matrix((when[dense != 0], np.nonzero(dense)), shape=dense.shape)
    return dense, when, times


def test_temporal_cut_plain_reference() -> None:
    dense, when, times = _timed_case()
    assert times.nnz == np.count_nonzero(dense)  # the stored zero time is kept
    fit_part, val_part, fit_times = tw.temporal_parts(sp.csr_matrix(dense), times)
    want = _temporal_reference(dense, when)
    f, v = fit_part.toarray(), val_part.toarray()
    np.testing.assert_array_equal(v != 0, want)
    np.testing.assert_array_equal(f + v, dense)  # a partition, values kept
    assert v[2, 7] == 4.0 and not f[2].any()
    # fit_times: the times of exactly the fit entries (the stored zero included).
    assert fit_times.nnz == fit_part.nnz
    np.testing.assert_array_equal(fit_times.indices, fit_part.indices)
    np.testing.assert_array_equal(fit_times.toarray(), np.where(f != 0, when, 0.0))
    pair = tw.temporal_cut(sp.csr_matrix(dense), times)
    np.testing.assert_array_equal(pair[1].toarray(), v)


def test_temporal_cut_rejects_misaligned_times() -> None:
    dense, _, times = _timed_case()
    other = times.tolil()
    other[5, 0] = 1.0  # an entry train lacks
    with pytest.raises(ValueError):
        tw.temporal_cut(sp.csr_matrix(dense), other.tocsr())


def test_fit_tower_with_times_validates_on_the_temporal_cut(monkeypatch) -> None:
    train, _, vectors = planted(n_users=40)
    rng = np.random.default_rng(0)
    dense = train.toarray()
    when = rng.permuted(np.tile(np.arange(train.shape[1], dtype=float), (40, 1)), axis=1)
    times = sp.csr_matrix((when[dense != 0], np.nonzero(dense)), shape=dense.shape)
    seen: list[sp.csr_matrix] = []
    real = tw.ranking_metrics

    def spy(scores, fit_part, validation, k):
        seen.append(sp.csr_matrix(validation))
        return real(scores, fit_part, validation, k=k)

    monkeypatch.setattr(tw, "ranking_metrics", spy)
    cfg = TowerConfig(hidden=8, epochs=3, patience=2)
    res = fit_tower(train, vectors, cfg, device=CPU, times=times)
    want = _temporal_reference(dense, when)
    assert seen and all(np.array_equal(v.toarray() != 0, want) for v in seen)
    assert len(res.val_recall) == len(seen)
    seen.clear()
    fit_tower(train, vectors, cfg, device=CPU)  # no times: the random cut, as before
    assert seen and not np.array_equal(seen[0].toarray() != 0, want)
