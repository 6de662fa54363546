"""Baselines of EVALUATION.md: MostPop, ItemKNN, EASE (ranking); global mean, biases (RMSE).

Ranking baselines are fitted on a CSR (n_users, n_items) train matrix (dense positions, see
:mod:`moviegraph.protocol.metrics`); only which entries are stored matters (binary
implicit feedback). Each fitted model is a score function ``model(user_positions) ->
(len(user_positions), n_items)`` for :func:`~moviegraph.protocol.metrics.ranking_metrics`.
Train items get scores too; the metric masks them.

ItemKNN and EASE hold a dense item x item matrix (n_items^2 floats): right for MovieLens
100K-1M sized catalogues (1.7k-4k movies), not for 59k movies.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from moviegraph.protocol.metrics import binarize
from moviegraph.protocol.tuning import recall_search


class MostPop:
    """Every user gets the same scores: the number of train users of each movie."""

    def __init__(self, train: sp.spmatrix) -> None:
        x = binarize(train)
        self.popularity = np.asarray(x.sum(axis=0)).ravel()

    def __call__(self, users: np.ndarray) -> np.ndarray:
        """Scores (len(users), n_items)."""
        return np.broadcast_to(self.popularity, (len(users), self.popularity.shape[0]))


class ItemKNN:
    """Item-based nearest neighbours on the binary train matrix X (no neighbourhood cut).

    ``S[i, j] = |users(i) & users(j)| / sqrt(|users(i)| |users(j)|)`` (cosine of the item
    columns of X), zero diagonal; ``score(u, i) = sum over u's train items j of S[j, i]``.
    """

    def __init__(self, train: sp.spmatrix) -> None:
        self.x = binarize(train)
        co = (self.x.T @ self.x).toarray()
        norms = np.sqrt(np.diag(co))
        inv = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
        self.similarity = co * inv[:, None] * inv[None, :]
        np.fill_diagonal(self.similarity, 0.0)

    def __call__(self, users: np.ndarray) -> np.ndarray:
        """Scores (len(users), n_items)."""
        return np.asarray(self.x[users] @ self.similarity)


def ease_weights(x: sp.spmatrix, lam: float, gram: np.ndarray | None = None) -> np.ndarray:
    """EASE item-item weights (Steck 2019): ``B = I - P / diag(P)``, ``P = (X^T X + lam I)^-1``.

    Column ``j`` is divided by ``P[j, j]``, so ``B[i, j] = -P[i, j] / P[j, j]`` off the
    diagonal and ``B[j, j] = 0`` (the closed form of the zero-diagonal constrained ridge
    regression of X on itself). ``gram``: ``X^T X`` of the binarised ``x`` when the caller
    already has it (a lambda grid: computed once, not once per lambda); not modified.
    """
    if gram is None:
        x = binarize(x)
        gram = (x.T @ x).toarray()
    else:
        gram = gram.copy()
    gram[np.diag_indices_from(gram)] += lam
    p = np.linalg.inv(gram)
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return b


class EASE:
    """EASE scores ``X[u] @ B`` with :func:`ease_weights` at a fixed ``lam``."""

    def __init__(self, train: sp.spmatrix, lam: float, gram: np.ndarray | None = None
                 ) -> None:
        self.lam = float(lam)
        self.x = binarize(train)
        self.weights = ease_weights(self.x, self.lam, gram)

    def __call__(self, users: np.ndarray) -> np.ndarray:
        """Scores (len(users), n_items)."""
        return np.asarray(self.x[users] @ self.weights)


DEFAULT_EASE_GRID = (10.0, 50.0, 100.0, 200.0, 500.0, 1000.0)


@dataclass(frozen=True)
class EaseTuning:
    """Outcome of :func:`tune_ease`: best ``lam`` and validation Recall@k per ``lam``."""

    best_lambda: float
    recall_by_lambda: dict[float, float]


def tune_ease(
    fit: sp.spmatrix,
    validation: sp.spmatrix,
    lambdas: Iterable[float] = DEFAULT_EASE_GRID,
    k: int = 20,
) -> EaseTuning:
    """Pick EASE's ``lam`` by validation Recall@k (ties: the smaller ``lam``).

    Args:
        fit: CSR of the train part minus the validation cut (see
            :func:`~moviegraph.protocol.splits.validation_cut`).
        validation: CSR of the validation ratings (values = ratings; relevant >= 4).
        lambdas: grid to try.
        k: cut-off of the Recall used for choosing.
    """
    x = binarize(fit)
    gram = (x.T @ x).toarray()  # shared by every lambda of the grid (same values)
    grid = recall_search((float(lam) for lam in sorted(lambdas)),
                         lambda lam: EASE(x, lam, gram), x, validation, k)
    return EaseTuning(best_lambda=grid.best, recall_by_lambda=grid.scores)


@dataclass(frozen=True)
class Biases:
    """Rating predictor ``mu + b_user[u] + b_item[i]``."""

    mu: float
    b_user: np.ndarray
    b_item: np.ndarray

    def predict(self, user_pos: np.ndarray, item_pos: np.ndarray) -> np.ndarray:
        """Predicted ratings (unclipped; :func:`~moviegraph.protocol.metrics.rmse` clips)."""
        return self.mu + self.b_user[user_pos] + self.b_item[item_pos]


def global_mean(rating: np.ndarray, n_users: int, n_items: int) -> Biases:
    """The constant predictor: the mean train rating, no biases."""
    return Biases(float(np.mean(rating)), np.zeros(n_users), np.zeros(n_items))


def fit_biases(
    user_pos: np.ndarray,
    item_pos: np.ndarray,
    rating: np.ndarray,
    n_users: int,
    n_items: int,
    reg_user: float = 5.0,
    reg_item: float = 5.0,
    n_iter: int = 20,
) -> Biases:
    """Regularised user + item biases by exact alternating least squares.

    Minimises ``sum (r - mu - b_u - b_i)^2 + reg_user sum b_u^2 + reg_item sum b_i^2`` with
    ``mu`` the train mean: each half-step is the closed-form ridge solution
    ``b_i = sum_{u in R(i)} (r - mu - b_u) / (reg_item + |R(i)|)`` (and likewise for
    ``b_u``), so the objective never increases. Unseen users/items keep bias 0.
    """
    user_pos = np.asarray(user_pos, dtype=np.int64)
    item_pos = np.asarray(item_pos, dtype=np.int64)
    r = np.asarray(rating, dtype=np.float64)
    mu = float(r.mean())
    n_u = np.bincount(user_pos, minlength=n_users)
    n_i = np.bincount(item_pos, minlength=n_items)
    b_user = np.zeros(n_users)
    b_item = np.zeros(n_items)
    # The floor only guards 0/0 for unseen ids when a reg is 0 (their sums are 0 anyway).
    den_item = np.maximum(reg_item + n_i, 1e-300)
    den_user = np.maximum(reg_user + n_u, 1e-300)
    for _ in range(n_iter):
        b_item = np.bincount(item_pos, r - mu - b_user[user_pos], n_items) / den_item
        b_user = np.bincount(user_pos, r - mu - b_item[item_pos], n_users) / den_user
    return Biases(mu, b_user, b_item)
