"""Popularity-aware scorer: plain-loop reference, beta=0 ranks as summed cosine, and on
ml-100k the tuned prior lifts validation Recall@20 of node2vec vectors well above summed
cosine."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from moviegraph.protocol import metrics as mt
from moviegraph.train.scorers import (
    BLEND_BETAS,
    PopularityScorer,
    fit_timed_tower,
    log_popularity,
    own_scorer,
    recent_popularity,
    tune_popularity_scorer,
)
from moviegraph.train.tower import TowerConfig, train_tower
from tests.conftest import ml100k_fit_validation


def small_case(seed: int = 0):
    rng = np.random.default_rng(seed)
    n_users, n_items = 7, 11
    dense = rng.integers(0, 6, size=(n_users, n_items)).astype(float)
    dense[rng.random(dense.shape) < 0.5] = 0.0
    dense[3] = 0.0
    dense[3, [1, 2]] = [2.0, 3.0]  # a user with no rating >= 4: profile = all train movies
    vectors = rng.standard_normal((n_items, 4))
    vectors[5] = 0.0  # a movie without a vector
    return sp.csr_matrix(dense), dense, vectors


def reference_scores(dense: np.ndarray, vectors: np.ndarray, beta: float) -> np.ndarray:
    """Mean over profile movies of cosine + beta * log(1 + #users), written out plainly."""
    n_users, n_items = dense.shape
    out = np.zeros((n_users, n_items))
    pop = [(dense[:, i] > 0).sum() for i in range(n_items)]
    for u in range(n_users):
        liked = [j for j in range(n_items) if dense[u, j] >= 4]
        profile = liked or [j for j in range(n_items) if dense[u, j] > 0]
        for i in range(n_items):
            total = 0.0
            for j in profile:
                a, b = vectors[i], vectors[j]
                na, nb = np.linalg.norm(a), np.linalg.norm(b)
                total += 0.0 if na == 0 or nb == 0 else float(a @ b) / (na * nb)
            out[u, i] = total / max(len(profile), 1) + beta * np.log(1 + pop[i])
    return out


@pytest.mark.parametrize("beta", [0.0, 0.3])
def test_scores_match_plain_reference(beta: float) -> None:
    train, dense, vectors = small_case()
    got = PopularityScorer(vectors, train, beta)(np.arange(train.shape[0]))
    np.testing.assert_allclose(got, reference_scores(dense, vectors, beta), atol=1e-5)


def test_log_popularity_counts_users() -> None:
    train, dense, _ = small_case(1)
    np.testing.assert_allclose(log_popularity(train), np.log1p((dense > 0).sum(0)), rtol=1e-6)


def test_beta_zero_ranks_like_summed_cosine() -> None:
    train, _, vectors = small_case(2)
    users = np.arange(train.shape[0])
    ours = PopularityScorer(vectors, train, 0.0)(users)
    summed = mt.item_embedding_scores(vectors, train)(users)
    # Mean = sum / (profile size): same order within each user's row.
    for a, b in zip(ours, summed, strict=True):
        np.testing.assert_array_equal(np.argsort(-a, kind="stable"), np.argsort(-b, kind="stable"))


def test_wrong_vector_count_rejected() -> None:
    train, _, vectors = small_case()
    with pytest.raises(ValueError):
        PopularityScorer(vectors[:-1], train, 0.1)


@pytest.fixture(scope="module")
def ml100k_walk_vectors():
    """Fit / validation matrices of ml-100k's ranking split and small node2vec vectors
    trained on the fit part's PMI graph (min_rating 4)."""
    from moviegraph.train.loop import LoopConfig
    from moviegraph.train.skipgram import SkipGramConfig, train_skipgram
    from moviegraph.walks.csr import CSRGraph
    from moviegraph.walks.kernel import random_walks

    fit, validation = ml100k_fit_validation()
    n_items = fit.shape[1]
    x = (fit >= 4).astype(np.float64)
    co = (x.T @ x).tocoo()
    counts = np.asarray(x.sum(0)).ravel()
    upper = co.row < co.col
    a, b, c = co.row[upper], co.col[upper], co.data[upper]
    weight = c * (np.log(c) - np.log(counts[a]) - np.log(counts[b]) + np.log(counts.sum()))
    keep = weight > 0
    graph = CSRGraph.from_edges(a[keep], b[keep], weight[keep], n_items)
    nodes = np.unique(np.r_[a[keep], b[keep]])
    starts, rounds = np.tile(nodes, 4), np.repeat(np.arange(4), len(nodes))
    walks = random_walks(graph, starts, rounds, 10, 1.0, 1.0, seed=3, num_threads=1)
    cfg = SkipGramConfig(dim=32, epochs=2, seed=0, threads=1)
    res = train_skipgram(walks, n_items, cfg, LoopConfig(epochs=2, progress=False),
                         device=torch.device("cpu"))
    vectors = res.vectors
    vectors[~np.isin(np.arange(n_items), nodes)] = 0.0
    return vectors, fit, validation


def test_prior_lifts_validation_recall_on_ml100k(ml100k_walk_vectors) -> None:
    vectors, fit, validation = ml100k_walk_vectors
    plain = mt.ranking_metrics(mt.item_embedding_scores(vectors, fit), fit, validation).recall
    tuning = tune_popularity_scorer(vectors, fit, validation, betas=(0.0, 0.05, 0.1, 0.2))
    # Same ranking up to float32 rounding of near-ties (mean vs sum of cosines).
    assert tuning.recall_by_beta[0.0] == pytest.approx(plain, abs=2e-3)
    assert tuning.best_beta > 0
    # Summed cosine of these small walk vectors sits near 0.045; the prior nearly triples
    # it (0.128 measured; fuller vectors reach 0.235, see benchmarks/quality_ml100k.py).
    assert plain < 0.08
    assert tuning.recall_by_beta[tuning.best_beta] > max(0.11, 2.5 * plain)
    again = tune_popularity_scorer(vectors, fit, validation, betas=(0.0, 0.05, 0.1, 0.2))
    assert again == tuning  # deterministic


def _recent_reference(dense: np.ndarray, when: np.ndarray) -> np.ndarray:
    """log(1 + number of users whose last max(1, n // 5) movies by (time, movie) hold i)."""
    count = np.zeros(dense.shape[1])
    for u in range(dense.shape[0]):
        rated = sorted((when[u, j], j) for j in range(dense.shape[1]) if dense[u, j] != 0)
        for _, j in rated[len(rated) - max(1, len(rated) // 5):] if rated else []:
            count[j] += 1
    return np.log1p(count)


def trend_case(seed: int = 0, n_users: int = 150):
    """Three clusters of 20 movies; items 15-19 of each cluster are "in fashion": every user
    rates them last (4 of their 10 ratings), the rest earlier by a steep popularity. Vectors
    know the cluster only. All-time counts of the two kinds are alike, so only a prior of
    *recent* ratings tells that the next movies are the fashionable ones. Returns (train,
    times, test, vectors, dense train, dense times): the last 2 ratings by time held out."""
    rng = np.random.default_rng(seed)
    n_items = 60
    cluster = np.arange(n_items) // 20
    vectors = np.eye(3)[cluster] + 0.05 * rng.standard_normal((n_items, 3))
    pop = 1.0 / (1 + np.arange(15)) ** 1.2
    train = np.zeros((n_users, n_items))
    test = np.zeros((n_users, n_items))
    when = np.zeros((n_users, n_items))
    for u in range(n_users):
        c = rng.integers(3)
        early = c * 20 + rng.choice(15, size=6, replace=False, p=pop / pop.sum())
        late = c * 20 + 15 + rng.permutation(5)[:4]
        for t, i in enumerate([*early, *late]):
            (train if t < 8 else test)[u, i] = 5.0
            when[u, i] = 1000.0 * u + t
    times = sp.csr_matrix((when[train != 0], np.nonzero(train)), shape=train.shape)
    return (sp.csr_matrix(train), times, sp.csr_matrix(test), vectors.astype(np.float32),
            train, when)


TIMED_FAST = TowerConfig(hidden=16, epochs=25, patience=5, batch_size=64, lr=5e-3, k=3)


def test_recent_popularity_plain_reference() -> None:
    rng = np.random.default_rng(2)
    dense = rng.integers(1, 6, size=(8, 13)).astype(float)
    dense[rng.random(dense.shape) < 0.5] = 0.0
    dense[4] = 0.0
    dense[4, 3] = 2.0
    when = rng.integers(0, 4, size=dense.shape).astype(float)  # ties broken by movie
    times = sp.csr_matrix((when[dense != 0], np.nonzero(dense)), shape=dense.shape)
    got = recent_popularity(sp.csr_matrix(dense), times)
    np.testing.assert_allclose(got, _recent_reference(dense, when), rtol=1e-6)
    assert got.dtype == np.float32


def test_timed_tower_is_tower_plus_tuned_recent_prior() -> None:
    train, times, test, vectors, dense, when = trend_case()
    res = fit_timed_tower(train, vectors, times, TIMED_FAST)
    assert set(res.recall_by_beta) == set(BLEND_BETAS)
    assert res.recall_by_beta[res.beta] == max(res.recall_by_beta.values())
    # Refit on all of train for the chosen epochs, plus beta times the plain prior.
    tower = train_tower(train, vectors, TIMED_FAST, epochs=res.epochs)
    want = tower(np.arange(train.shape[0])) + res.beta * _recent_reference(dense, when)
    np.testing.assert_allclose(res.scores, want, rtol=1e-5, atol=1e-5)
    # The planted next movies are the fashionable ones: the prior must be chosen and help.
    assert res.beta > 0
    plain = mt.ranking_metrics(tower, train, test, k=5).recall
    blended = mt.ranking_metrics(lambda us: res.scores[us], train, test, k=5).recall
    assert blended > plain + 0.05


def test_own_scorer_times_keyword(monkeypatch) -> None:
    train, times, _, vectors, _, _ = trend_case(n_users=40)
    monkeypatch.setattr("moviegraph.train.scorers.TIMED_TOWER", TIMED_FAST)
    monkeypatch.setattr("moviegraph.train.scorers.TOWER", TIMED_FAST)
    scorer = own_scorer("node2vec")
    assert scorer is not None
    timed = scorer(train, vectors, 0, times=times)
    np.testing.assert_array_equal(
        timed, fit_timed_tower(train, vectors, times, TIMED_FAST).scores)
    untimed = scorer(train, vectors, 0)  # no times: the tower alone, random cut, as before
    assert untimed.shape == timed.shape and not np.allclose(untimed, timed)
    # Only the train entries are read: altering the times of nothing else is impossible, and
    # shifting every time by a constant changes nothing.
    shifted = times.copy()
    shifted.data += 1e6
    np.testing.assert_array_equal(scorer(train, vectors, 0, times=shifted), timed)
