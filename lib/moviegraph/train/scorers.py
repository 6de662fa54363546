"""Scorers shipped with item-embedding models: summed cosine plus a popularity prior.

Why walk (node2vec) vectors rank badly under EVALUATION.md's summed-cosine rule: cosine
throws away how often a movie is watched, and the walks make it worse. The PMI weighting
and word2vec's frequent-token subsampling both push rare movies forward, so a user's
nearest movies by cosine are obscure ones co-rated by a handful of people, while the
held-out movies people actually rate next are mostly popular (MostPop alone reaches about
three times the Recall@20 of summed cosine on ml-100k). The vectors carry taste; the
ranking lacks the prior.

:class:`PopularityScorer` puts it back: ``score(u, i) = mean_j cos(e_i, e_j) +
beta * log(1 + pop_i)``, ``j`` over the user's profile movies (EVALUATION.md's rule),
``pop_i`` the number of train users of ``i``, ``beta`` tuned on a validation cut of train
(:func:`tune_popularity_scorer`). The mean (not the sum) of cosines keeps ``beta`` on one
scale for light and heavy users. ``beta = 0`` ranks exactly as summed cosine.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from moviegraph.evaluate.metrics import normalize_rows, profile_weights, ranking_metrics

DEFAULT_BETAS = (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5)


def log_popularity(train: sp.spmatrix) -> np.ndarray:
    """``log(1 + number of train users)`` of each movie (float32)."""
    x = sp.csr_matrix(train)
    counts = np.bincount(x.indices, minlength=x.shape[1])
    return np.log1p(counts).astype(np.float32)


class PopularityScorer:
    """``mean_j cos(e_i, e_j) + beta * log(1 + pop_i)``: a score function for ranking_metrics.

    Args:
        item_vectors: (n_items, d); all-zero rows (movies without a vector) score only
            their prior.
        train: CSR (n_users, n_items) of train ratings: profiles and popularity.
        beta: weight of the log-popularity prior.
        like_threshold: rating that puts a train movie in the user's profile.
    """

    def __init__(
        self,
        item_vectors: np.ndarray,
        train: sp.spmatrix,
        beta: float,
        like_threshold: float = 4.0,
    ) -> None:
        train = sp.csr_matrix(train)
        self.unit = normalize_rows(item_vectors).astype(np.float32)
        if self.unit.shape[0] != train.shape[1]:
            raise ValueError(f"{self.unit.shape[0]} item vectors for {train.shape[1]} items")
        w = profile_weights(train, like_threshold)
        n = np.maximum(np.asarray(w.sum(axis=1)).ravel(), 1.0)
        self.user_vectors = (np.asarray(w @ self.unit) / n[:, None]).astype(np.float32)
        self.beta = float(beta)
        self.prior = (self.beta * log_popularity(train)).astype(np.float32)

    def __call__(self, users: np.ndarray) -> np.ndarray:
        """Scores (len(users), n_items) for a block of user positions."""
        return self.user_vectors[users] @ self.unit.T + self.prior[None, :]


@dataclass(frozen=True)
class ScorerTuning:
    """Outcome of :func:`tune_popularity_scorer`."""

    best_beta: float
    recall_by_beta: dict[float, float]


def tune_popularity_scorer(
    item_vectors: np.ndarray,
    fit: sp.spmatrix,
    validation: sp.spmatrix,
    betas: Iterable[float] = DEFAULT_BETAS,
    k: int = 20,
) -> ScorerTuning:
    """Pick ``beta`` by validation Recall@k (ties: the smaller ``beta``).

    Args:
        item_vectors: vectors trained on ``fit`` only (never on validation or test).
        fit: CSR of train minus the validation cut
            (:func:`~moviegraph.evaluate.splits.validation_cut`).
        validation: CSR of the validation ratings (relevant >= 4).
    """
    recall = {
        float(b): ranking_metrics(PopularityScorer(item_vectors, fit, b), fit, validation, k=k)
        .recall
        for b in sorted(set(betas))
    }
    best = max(recall, key=lambda b: (recall[b], -b))
    return ScorerTuning(best_beta=best, recall_by_beta=recall)
