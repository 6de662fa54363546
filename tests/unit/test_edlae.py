"""Low-rank EDLAE: full rank equals the plain ridge solve, the closed form beats other
rank-k candidates on the plainly written objective, scores are user . item vectors, and the
grid search picks its best validation cell."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from moviegraph.protocol import metrics as mt
from moviegraph.train.edlae import EDLAEConfig, decompose, train_edlae, tune_edlae


def small_matrix(seed: int = 0, n_users: int = 40, n_items: int = 12) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = rng.integers(1, 6, size=(n_users, n_items)).astype(float)
    dense[rng.random(dense.shape) < 0.6] = 0.0
    return sp.csr_matrix(dense)


def objective(x: np.ndarray, b: np.ndarray, p: float, lam: float) -> float:
    """||X - XB||^2 + sum_i (p/(1-p) G_ii + lam) ||B_i||^2, written out."""
    g = x.T @ x
    total = float(((x - x @ b) ** 2).sum())
    for i in range(b.shape[0]):
        total += (p / (1 - p) * g[i, i] + lam) * float((b[i] ** 2).sum())
    return total


def test_full_rank_is_the_ridge_solution() -> None:
    train = small_matrix()
    x = (train.toarray() != 0).astype(float)
    p, lam = 0.25, 3.0
    g = x.T @ x
    want = np.linalg.solve(g + np.diag(p / (1 - p) * np.diag(g) + lam), g)
    got = train_edlae(train, EDLAEConfig(dim=x.shape[1], dropout=p, lam=lam)).weights()
    np.testing.assert_allclose(got, want, atol=1e-9)


@pytest.mark.parametrize("dim", [1, 3, 6])
def test_low_rank_closed_form_minimises_the_objective(dim: int) -> None:
    train = small_matrix(1)
    x = (train.toarray() != 0).astype(float)
    p, lam = 0.33, 2.0
    res = train_edlae(train, EDLAEConfig(dim=dim, dropout=p, lam=lam))
    assert res.input_factors.shape == res.item_vectors.shape == (x.shape[1], dim)
    best = objective(x, res.weights(), p, lam)
    # Naive rank-k candidate: truncated SVD of the full-rank solution.
    full = train_edlae(train, EDLAEConfig(dim=x.shape[1], dropout=p, lam=lam)).weights()
    u, s, vt = np.linalg.svd(full)
    assert best <= objective(x, (u[:, :dim] * s[:dim]) @ vt[:dim], p, lam) + 1e-9
    rng = np.random.default_rng(2)
    for _ in range(20):
        w = res.input_factors + 0.01 * rng.standard_normal(res.input_factors.shape)
        v = res.item_vectors + 0.01 * rng.standard_normal(res.item_vectors.shape)
        assert best <= objective(x, w @ v.T, p, lam) + 1e-9


def test_scores_are_user_dot_item_vectors() -> None:
    train = small_matrix(3)
    res = train_edlae(train, EDLAEConfig(dim=4, dropout=0.2, lam=1.0))
    users = np.array([0, 5, 7])
    x = (train.toarray() != 0).astype(float)
    want = x[users] @ res.weights()
    np.testing.assert_allclose(res(users), want, atol=1e-9)
    np.testing.assert_allclose(res.user_vectors(users) @ res.item_vectors.T, want, atol=1e-9)
    # Rank-independent part computed once gives the same model.
    again = decompose(train, 0.2, 1.0).result(4)
    np.testing.assert_allclose(again(users), want, atol=1e-9)


def test_tuning_picks_the_best_cell() -> None:
    fit, val = small_matrix(4, n_users=60), small_matrix(5, n_users=60)
    tuning = tune_edlae(fit, val, dims=(2, 5), dropouts=(0.1, 0.5), lams=(1.0,), k=3)
    assert set(tuning.recall) == {(2, 0.1, 1.0), (5, 0.1, 1.0), (2, 0.5, 1.0), (5, 0.5, 1.0)}
    best = tuning.best
    assert tuning.recall[(best.dim, best.dropout, best.lam)] == max(tuning.recall.values())
    cell = train_edlae(fit, best)
    assert mt.ranking_metrics(cell, fit, val, k=3).recall == pytest.approx(
        tuning.recall[(best.dim, best.dropout, best.lam)])


def test_bad_config_rejected() -> None:
    with pytest.raises(ValueError):
        EDLAEConfig(dim=0)
    with pytest.raises(ValueError):
        EDLAEConfig(dropout=1.0)
    with pytest.raises(ValueError):
        EDLAEConfig(dropout=0.0, lam=0.0)


def test_train_stage_edlae_vectors_reproduce_the_model() -> None:
    """The ``edlae`` model's written user . movie vectors = the model's scores."""
    from moviegraph.train.models import fit_edlae_matrix

    train = small_matrix(6)
    user_ids, movie_ids = np.arange(train.shape[0]) * 3 + 1, np.arange(train.shape[1]) + 10
    t = fit_edlae_matrix(train, user_ids, movie_ids, EDLAEConfig(dim=4, dropout=0.2, lam=1.0))
    assert t.model == "edlae" and t.vectors.shape == (train.shape[1], 4)
    assert t.user_vectors.dtype == np.float32 and t.notes["dim"] == 4
    np.testing.assert_array_equal(t.movie_ids, movie_ids)
    want = train_edlae(train, EDLAEConfig(dim=4, dropout=0.2, lam=1.0))(np.arange(40))
    np.testing.assert_allclose(t.user_vectors @ t.vectors.T, want, atol=1e-4)
