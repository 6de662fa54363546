"""Softmax retrieval model: batch gathering and side features against plain references,
score = user . item vectors, loss falls (full and sampled), CPU determinism, and on
ml-100k a short run already ranks well above MostPop on the validation cut."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from moviegraph.evaluate.baselines import MostPop
from moviegraph.protocol import metrics as mt
from moviegraph.train.loop import LoopConfig
from moviegraph.train.softmax import (
    SoftmaxConfig,
    _csr_rows,
    item_side_features,
    train_softmax,
)
from tests.conftest import ml100k_fit_validation

CPU = torch.device("cpu")


def random_train(n_users: int = 40, n_items: int = 30, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < 0.25) * rng.integers(1, 6, (n_users, n_items))
    dense[5] = 0  # a user without train movies is skipped, not a crash
    return sp.csr_matrix(dense.astype(float))


def test_csr_rows_matches_plain_gather() -> None:
    x = random_train()
    users = np.array([3, 0, 5, 3, 17])
    rows, items = _csr_rows(
        torch.as_tensor(x.indptr.astype(np.int64)), torch.as_tensor(x.indices.astype(np.int64)),
        torch.as_tensor(users),
    )
    want = [(b, j) for b, u in enumerate(users) for j in np.flatnonzero(x[u].toarray()[0])]
    assert list(zip(rows.tolist(), items.tolist(), strict=True)) == want


def test_item_side_features_plain_reference() -> None:
    genres = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], dtype=bool)
    years = np.array([1931.0, 1999.0, np.nan, 1940.0])
    got = item_side_features(genres, years, bucket_width=10)
    # Buckets from the 1930s: 1931 -> 0, 1940 -> 1, 1999 -> 6; NaN -> no bucket.
    want = np.zeros((4, 2 + 7), np.float32)
    want[:, :2] = genres
    want[0, 2 + 0] = want[1, 2 + 6] = want[3, 2 + 1] = 1.0
    np.testing.assert_array_equal(got, want)


def small_run(train: sp.csr_matrix, times: object = "auto", **kw) -> object:
    cfg = SoftmaxConfig(**{"dim": 8, "input_dim": 8, "hidden": (16,), "epochs": 15,
                           "batch_size": 8, "lr": 0.01, **kw})
    feats = item_side_features(np.eye(train.shape[1], 3, dtype=bool))
    if isinstance(times, str):  # "auto": rating times = storage order
        times = train.copy()
        times.data = np.arange(len(times.data), dtype=float)
    return train_softmax(train, cfg, feats, LoopConfig(epochs=cfg.epochs, progress=False), CPU,
                         times=times)


def clustered_train(seed: int = 0) -> sp.csr_matrix:
    """Three user groups, each rating mostly its own block of 10 movies: learnable."""
    rng = np.random.default_rng(seed)
    group = np.arange(60) % 3
    block = np.arange(30) // 10
    p = np.where(group[:, None] == block[None, :], 0.6, 0.03)
    return sp.csr_matrix((rng.random(p.shape) < p).astype(float))


@pytest.mark.parametrize("loss", ["full", "sampled"])
def test_loss_falls(loss: str) -> None:
    res = small_run(clustered_train(), loss=loss, num_sampled=10, dropout=0.0, epochs=30,
                    batch_size=20, lr=0.02)
    hist = [h["train_loss"] for h in res.fit.history]
    # Per-epoch loss is noisy (a fresh random hold-out each epoch): compare averages.
    assert np.mean(hist[-5:]) < 0.9 * np.mean(hist[:3])


def test_scores_are_user_dot_item_vectors_and_logits() -> None:
    train = random_train()
    res = small_run(train, epochs=2)
    users = np.arange(train.shape[0])
    scores = res(users)
    np.testing.assert_allclose(
        scores, res.user_vectors(users) @ res.item_vectors().T, rtol=1e-5, atol=1e-5
    )
    # The same through the module: tower output, then output layer + bias.
    with torch.no_grad():
        rows, items = _csr_rows(res.indptr, res.indices, torch.as_tensor(users))
        logits = res.model.logits(res.model.user_vectors(rows, items, len(users)))
    np.testing.assert_allclose(scores, logits.numpy(), rtol=1e-5, atol=1e-5)
    assert res.item_vectors(with_bias=False).shape == (train.shape[1], 8)


def test_deterministic_on_cpu() -> None:
    train = random_train(seed=3)
    a, b = small_run(train, epochs=3, seed=7), small_run(train, epochs=3, seed=7)
    np.testing.assert_array_equal(a.item_vectors(), b.item_vectors())
    np.testing.assert_array_equal(a.user_vectors(), b.user_vectors())
    c = small_run(train, epochs=3, seed=8)
    assert not np.array_equal(a.item_vectors(), c.item_vectors())


def test_bad_config_rejected() -> None:
    with pytest.raises(ValueError):
        SoftmaxConfig(holdout=1.0)
    with pytest.raises(ValueError):
        SoftmaxConfig(loss="nce")


def test_beats_most_pop_on_ml100k_validation() -> None:
    fit, validation = ml100k_fit_validation()
    torch.set_num_threads(1)
    cfg = SoftmaxConfig(epochs=5, lr=5e-3)
    res = train_softmax(fit, cfg, loop=LoopConfig(epochs=5, progress=False), device=CPU)
    recall = mt.ranking_metrics(res, fit, validation).recall
    most_pop = mt.ranking_metrics(MostPop(fit), fit, validation).recall  # 0.128
    assert recall > most_pop + 0.04


def test_time_ranks_plain_reference_and_recent_hiding_trains() -> None:
    from moviegraph.train.softmax import time_ranks

    train = random_train(seed=4)
    rng = np.random.default_rng(4)
    times = train.copy()
    times.data = rng.integers(0, 5, len(times.data)).astype(float)  # ties: movie id breaks
    got = time_ranks(train, times)
    for u in range(train.shape[0]):
        lo, hi = train.indptr[u], train.indptr[u + 1]
        order = sorted(range(lo, hi), key=lambda e: (times.data[e], train.indices[e]))
        for rank, e in enumerate(order):
            assert got[e] == pytest.approx(rank / (hi - lo))
    res = small_run(clustered_train(), hide="recent", epochs=2)
    assert len(res.fit.history) == 2
    with pytest.raises(ValueError):
        small_run(clustered_train(), hide="recent", epochs=1, times=None)
