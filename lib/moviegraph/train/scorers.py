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

:func:`own_scorer` is what the ``evaluate`` stage reports beside summed cosine: for the
item-only models (node2vec, cbow) a user tower trained over their frozen vectors
(:mod:`moviegraph.train.tower`; on ml-100k it ranks above the tuned prior, see
benchmarks/quality_ml100k.py); models with user vectors (mf, softmax) have none here, they
are ranked by their own dot product.

Given the rating times (``times=``), the tower is tuned the way it is tested: epochs on a
temporal validation cut (each user's last 20% of train), and its scores are blended with a
*recent* popularity prior, ``beta * log(1 + r_i)`` with ``r_i`` the number of users whose
last 20% of train ratings holds ``i``, ``beta`` tuned on the same cut. Why recent: the test
asks what a user rates *next*, and at the end of their histories people rate what is new
and in fashion then, not the all-time favourites the tower's learned bias already encodes
(on ml-100k the all-train prior blended in adds ~0.005 Recall@20, the recent one ~0.01).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
import scipy.sparse as sp

from moviegraph.protocol.metrics import normalize_rows, profile_weights
from moviegraph.protocol.tuning import recall_search
from moviegraph.train.tower import TowerConfig, fit_tower, temporal_parts, train_tower

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
            (:func:`~moviegraph.protocol.splits.validation_cut`).
        validation: CSR of the validation ratings (relevant >= 4).
    """
    grid = recall_search((float(b) for b in sorted(set(betas))),
                         lambda b: PopularityScorer(item_vectors, fit, b), fit, validation, k)
    return ScorerTuning(best_beta=grid.best, recall_by_beta=grid.scores)


#: Settings of the tower behind :func:`own_scorer` (chosen on ml-100k's validation cut).
TOWER = TowerConfig()

#: The tower when times are given. Chosen on the temporal validation cut of ml-100k
#: (node2vec, top-15-PMI graph; seeds 0-2): patience 20 gave validation Recall@20
#: 0.267-0.271 against 0.252-0.259 for patience 8 (the validation curve is noisy and still
#: climbing when patience 8 stops it), dropout 0.7 / weight decay 0.1 / lr 1e-3 /
#: target "dropped" were no better.
TIMED_TOWER = replace(TOWER, patience=20, epochs=200)

#: Weights of the recent-popularity prior tried on the temporal validation cut.
BLEND_BETAS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)


class OwnScorer(Protocol):
    """``scorer(train, item_vectors, seed, times=None) -> dense scores (n_users, n_items)``."""

    def __call__(self, train: sp.csr_matrix, item_vectors: np.ndarray, seed: int, *,
                 times: sp.csr_matrix | None = None) -> np.ndarray: ...


def recent_popularity(train: sp.spmatrix, times: sp.spmatrix) -> np.ndarray:
    """``log(1 + r_i)`` (float32), ``r_i`` = how many users' last 20% of stored entries
    by time (the ranking split's rule, at least one per user) hold movie ``i``."""
    _, recent, _ = temporal_parts(train, times)
    return np.log1p(np.bincount(recent.indices, minlength=recent.shape[1])).astype(np.float32)


@dataclass
class TimedTower:
    """Outcome of :func:`fit_timed_tower`: scores and what was chosen on validation."""

    scores: np.ndarray
    epochs: int
    beta: float
    recall_by_beta: dict[float, float] = field(default_factory=dict)
    val_recall: list[float] = field(default_factory=list)


def fit_timed_tower(
    train: sp.csr_matrix,
    item_vectors: np.ndarray,
    times: sp.csr_matrix,
    cfg: TowerConfig = TIMED_TOWER,
    betas: Iterable[float] = BLEND_BETAS,
) -> TimedTower:
    """Tower + ``beta *`` :func:`recent_popularity`, tuned on a temporal cut of ``train``.

    Epochs (early stopping) and then ``beta`` are chosen by Recall@``cfg.k`` on each user's
    last 20% of train (fit on the rest, the prior counted on the rest); the tower is then
    refitted on all of ``train`` for that many epochs and blended with the prior of all of
    ``train``. Ties in ``beta``: the smaller one.
    """
    vectors = np.asarray(item_vectors, np.float32)
    fit, val, fit_times = temporal_parts(train, times)
    probe = train_tower(fit, vectors, cfg, validation=val)
    prior = recent_popularity(fit, fit_times)
    grid = recall_search((float(b) for b in sorted(set(betas))),
                         lambda b: lambda us: probe(us) + b * prior[None, :], fit, val, cfg.k)
    beta = grid.best
    epochs = max(probe.best_epochs, 1)
    final = train_tower(train, vectors, cfg, epochs=epochs)
    scores = final(np.arange(train.shape[0])) + beta * recent_popularity(train, times)[None, :]
    return TimedTower(scores=scores, epochs=epochs, beta=beta, recall_by_beta=grid.scores,
                      val_recall=probe.val_recall)


def tower_scores(train: sp.csr_matrix, item_vectors: np.ndarray, seed: int, *,
                 times: sp.csr_matrix | None = None) -> np.ndarray:
    """Scores of a user tower trained over the frozen ``item_vectors`` (see
    :mod:`moviegraph.train.tower`).

    Without ``times``: epochs chosen on a seeded random cut of ``train``, no prior. With
    ``times`` (rating times at the entries of ``train``): :func:`fit_timed_tower`.
    """
    if times is None:
        res = fit_tower(train, np.asarray(item_vectors, np.float32), replace(TOWER, seed=seed))
        return res(np.arange(train.shape[0]))
    return fit_timed_tower(train, item_vectors, times, replace(TIMED_TOWER, seed=seed)).scores


#: Item-only embedding models (no user vectors of their own) get the tower as own scorer.
_OWN = {"node2vec": tower_scores, "cbow": tower_scores}


def own_scorer(model: str) -> OwnScorer | None:
    """The model's own ranking scorer, or None when it has none (models with user vectors
    are ranked by their own dot product).

    The returned function takes the train user x movie rating matrix (0 = unrated), item
    vectors aligned with its columns (zero rows for movies without a vector), a seed and,
    optionally, keyword ``times``: a CSR with the rating times (e.g. unix seconds) at exactly
    the entries of the train matrix. It returns dense scores (n_users, n_items). Any tuning
    it does uses a cut of that matrix (temporal when ``times`` is given, else seeded random),
    never anything else.
    """
    return _OWN.get(model)
