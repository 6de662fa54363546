"""The train stage's mf path without Spark: written vectors reproduce the model's
predictions (bpmf, adam and als), same config => same vectors, and the layouts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moviegraph import config as config_mod
from moviegraph.train.data import Ratings
from moviegraph.train.models import ModelData, fit_mf, mf_vector_layout

CPU = torch.device("cpu")


# Small tensors on a shared machine: extra threads only add contention.
pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _ratings(seed: int = 0, n_users: int = 80, n_items: int = 50) -> Ratings:
    """Low-rank synthetic ratings in [1, 5] with raw ids (users from 1, movies from 101)."""
    rng = np.random.default_rng(seed)
    p, q = rng.normal(0, 0.7, (n_users, 3)), rng.normal(0, 0.7, (n_items, 3))
    mask = rng.random((n_users, n_items)) < 0.45
    u, i = np.nonzero(mask)
    r = np.clip(np.round(3.4 + np.einsum("nd,nd->n", p[u], q[i]) + rng.normal(0, 0.4, len(u))),
                1, 5)
    return Ratings(user_id=(u + 1).astype(np.int32), movie_id=(i + 101).astype(np.int32),
                   rating=r.astype(np.float32), ts=np.arange(len(u), dtype=np.int64))


def _cfg(*overrides: str):
    return config_mod.load([], ["train.threads=1", "spark.progress=false", *overrides])


def _test_part(r: Ratings):
    """EVALUATION.md's rating split, written out here."""
    test = (r.user_id.astype(np.int64) * 1000003 + r.movie_id) % 10 == 0
    return r.user_id[test], r.movie_id[test], r.rating[test].astype(np.float64)


@pytest.mark.parametrize("method", ["bpmf", "adam", "als"])
def test_full_layout_vectors_give_the_reported_test_rmse(method: str, tmp_path) -> None:
    r = _ratings()
    cfg = _cfg(f"train.mf.method={method}", "train.mf.biases=full", "train.mf.bpmf.dim=3",
               "train.mf.bpmf.burn_in=10", "train.mf.bpmf.samples=30", "train.mf.adam.dim=8",
               "train.mf.adam.epochs=20", "train.mf.adam.lr=0.02", "train.mf.als.dim=3")
    t = fit_mf(ModelData(loaded=r), cfg, CPU, tmp_path / "ckpt")
    movie = dict(zip(t.movie_ids.tolist(), t.vectors.astype(np.float64), strict=True))
    user = dict(zip(t.user_ids.tolist(), t.user_vectors.astype(np.float64), strict=True))
    tu, tm, tr = _test_part(r)
    known = np.array([a in user and b in movie for a, b in zip(tu, tm, strict=True)])
    assert known.all()  # dense synthetic data: every test user and movie has train ratings
    pred = np.clip([user[a] @ movie[b] for a, b in zip(tu[known], tm[known], strict=True)], 1, 5)
    from_vectors = float(np.sqrt(np.mean((pred - tr[known]) ** 2)))
    assert t.metrics["test_rmse"] == pytest.approx(from_vectors, abs=1e-4)
    mu = t.notes["global_mean"]
    assert t.vectors[:, -1] == pytest.approx(np.full(len(t.vectors), mu), abs=1e-6)
    # Better than predicting the train mean for everybody.
    assert from_vectors < float(np.sqrt(np.mean((mu - tr[known]) ** 2))) - 0.05
    if method == "bpmf":
        assert t.notes["max_abs_diff_vectors_vs_sampler"] < 1e-4
        assert t.fit.history[-1]["train_loss"] < t.fit.history[0]["train_loss"]


def test_bpmf_same_config_same_vectors(tmp_path) -> None:
    r = _ratings(seed=3)
    cfg = _cfg("train.mf.bpmf.dim=3", "train.mf.bpmf.burn_in=2", "train.mf.bpmf.samples=4",
               "train.mf.biases=append")
    a = fit_mf(ModelData(loaded=r), cfg, CPU, tmp_path / "a")
    b = fit_mf(ModelData(loaded=r), cfg, CPU, tmp_path / "b")
    np.testing.assert_array_equal(a.vectors, b.vectors)
    np.testing.assert_array_equal(a.user_vectors, b.user_vectors)
    c = fit_mf(ModelData(loaded=r), _cfg("train.mf.bpmf.dim=3", "train.mf.bpmf.burn_in=2",
                                         "train.mf.bpmf.samples=4", "train.mf.biases=append",
                                         "train.seed=9"), CPU, tmp_path / "c")
    assert not np.array_equal(a.vectors, c.vectors)


def test_layouts_plain_reference() -> None:
    rng = np.random.default_rng(0)
    q, p = rng.normal(size=(4, 2)), rng.normal(size=(3, 2))
    bi, bu, mu = rng.normal(size=4), rng.normal(size=3), 3.6
    want = mu + bu[:, None] + bi[None, :] + p @ q.T
    movie, user = mf_vector_layout(q, p, bi, bu, mu, "full")
    np.testing.assert_allclose(user.astype(np.float64) @ movie.T, want, atol=1e-5)
    movie, user = mf_vector_layout(q, p, bi, bu, mu, "append")
    np.testing.assert_allclose(mu + user.astype(np.float64) @ movie.T, want, atol=1e-5)
    assert (movie[:, -1] == 1).all()
    movie, user = mf_vector_layout(q, p, bi, bu, mu, "drop")
    np.testing.assert_allclose(movie, q, atol=1e-6)
    np.testing.assert_allclose(user, p, atol=1e-6)
