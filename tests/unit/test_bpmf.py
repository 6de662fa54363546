"""BPMF Gibbs sampler: conditionals against plain numpy posteriors, draws, determinism,
fit on synthetic low-rank data, and the written vectors against the sampler's average."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from moviegraph.train.bpmf import (
    BPMFConfig,
    SideLink,
    conditional,
    draw,
    interaction_vectors,
    normal_wishart_posterior,
    posterior_biases,
    side_conditional,
    train_bpmf,
    wishart,
)

CPU = torch.device("cpu")


# Small tensors on a shared machine: extra threads only add contention.
pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _synthetic(seed: int = 0, n_users: int = 60, n_items: int = 40, dim: int = 3,
               density: float = 0.5, noise: float = 0.3):
    """Ratings from a known low-rank + bias model; returns (users, items, ratings)."""
    rng = np.random.default_rng(seed)
    p = rng.normal(0, 0.6, (n_users, dim))
    q = rng.normal(0, 0.6, (n_items, dim))
    bu, bi = rng.normal(0, 0.3, n_users), rng.normal(0, 0.3, n_items)
    mask = rng.random((n_users, n_items)) < density
    u, i = np.nonzero(mask)
    r = 3.5 + bu[u] + bi[i] + np.einsum("nd,nd->n", p[u], q[i]) + rng.normal(0, noise, len(u))
    return u, i, r


def test_conditional_matches_plain_numpy_posterior() -> None:
    rng = np.random.default_rng(1)
    k, n_ent, n_obs, alpha = 4, 5, 40, 1.7
    entity = rng.integers(0, n_ent - 1, n_obs)  # the last entity has no observations
    design = rng.normal(size=(n_obs, k))
    target = rng.normal(size=n_obs)
    a = rng.normal(size=(k, k))
    prec0 = a @ a.T + k * np.eye(k)
    mean0 = rng.normal(size=k)
    mean, chol = conditional(torch.as_tensor(entity), torch.as_tensor(design),
                             torch.as_tensor(target), n_ent, alpha, torch.as_tensor(mean0),
                             torch.as_tensor(prec0), chunk=7)  # several chunks
    for e in range(n_ent):
        z, t = design[entity == e], target[entity == e]
        # Bayesian linear regression: precision and mean of x given z, t.
        prec = prec0 + alpha * sum((np.outer(row, row) for row in z), np.zeros((k, k)))
        cov = np.linalg.inv(prec)
        want = cov @ (prec0 @ mean0 + alpha * sum((row * tt for row, tt in zip(z, t,
                                                                               strict=True)),
                                                  np.zeros(k)))
        lo = chol[e].numpy()
        np.testing.assert_allclose(mean[e].numpy(), want, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(np.linalg.inv(lo @ lo.T), cov, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(mean[n_ent - 1].numpy(), mean0, atol=1e-12)


def test_users_conditional_given_movies_plain_reference() -> None:
    # One user's posterior given movie states [q_i, b_i]: Bayesian linear regression of
    # r - mu - b_i on [q_i, 1] (the 1 multiplies b_u), per-rating noise precisions.
    rng = np.random.default_rng(6)
    dim, n_items, mu = 3, 7, 3.5
    users = np.array([0, 0, 0, 1, 0, 1, 0])
    items = np.array([0, 2, 3, 3, 5, 6, 6])
    ratings = rng.integers(1, 6, len(users)).astype(np.float64)
    states = rng.normal(size=(n_items, dim + 1))
    noise = rng.uniform(0.5, 2.0, len(users))
    a = rng.normal(size=(dim + 1, dim + 1))
    prec0, mean0 = a @ a.T + np.eye(dim + 1), rng.normal(size=dim + 1)
    mean, chol = side_conditional(torch.as_tensor(users), torch.as_tensor(items),
                                  torch.as_tensor(states), torch.as_tensor(ratings), mu, 2,
                                  torch.as_tensor(noise), torch.as_tensor(mean0),
                                  torch.as_tensor(prec0))
    prec, rhs = prec0.copy(), prec0 @ mean0
    for n in np.flatnonzero(users == 0):
        z = np.append(states[items[n], :dim], 1.0)
        prec += noise[n] * np.outer(z, z)
        rhs += noise[n] * z * (ratings[n] - mu - states[items[n], dim])
    cov = np.linalg.inv(prec)
    np.testing.assert_allclose(mean[0].numpy(), cov @ rhs, rtol=1e-9, atol=1e-12)
    lo = chol[0].numpy()
    np.testing.assert_allclose(np.linalg.inv(lo @ lo.T), cov, rtol=1e-9, atol=1e-12)


def test_draw_has_the_conditional_mean_and_covariance() -> None:
    k, n = 3, 60000
    cov = np.array([[1.0, 0.6, -0.2], [0.6, 2.0, 0.3], [-0.2, 0.3, 0.5]])
    lo = np.linalg.cholesky(np.linalg.inv(cov))  # chol of the precision
    mean = np.array([1.0, -2.0, 0.5])
    gen = torch.Generator().manual_seed(3)
    x = draw(torch.as_tensor(np.tile(mean, (n, 1))), torch.as_tensor(np.tile(lo, (n, 1, 1))),
             gen).numpy()
    assert x.shape == (n, k)
    np.testing.assert_allclose(x.mean(0), mean, atol=0.03)
    np.testing.assert_allclose(np.cov(x.T), cov, atol=0.04)


def test_normal_wishart_batch_update_equals_one_at_a_time() -> None:
    # Conjugacy: updating on all rows at once equals updating on one row at a time.
    rng = np.random.default_rng(2)
    k = 3
    x = rng.normal(size=(7, k)) + 1.0
    m, beta, w_inv, nu = np.zeros(k), 2.0, np.eye(k), float(k)
    for row in x:  # single-observation Normal-Wishart update, written out
        diff = (row - m)[:, None]
        w_inv = w_inv + beta / (beta + 1) * (diff @ diff.T)
        m = (beta * m + row) / (beta + 1)
        beta, nu = beta + 1, nu + 1
    got_m, got_beta, got_w, got_nu = normal_wishart_posterior(x, 2.0, k, np.eye(k), np.zeros(k))
    np.testing.assert_allclose(got_m, m, rtol=1e-12)
    assert got_beta == beta and got_nu == nu
    np.testing.assert_allclose(got_w, np.linalg.inv(w_inv), rtol=1e-10)


def test_wishart_draws_have_mean_nu_scale() -> None:
    rng = np.random.default_rng(4)
    scale = np.array([[0.5, 0.2], [0.2, 0.3]])
    draws = np.stack([wishart(6.0, scale, rng) for _ in range(20000)])
    np.testing.assert_allclose(draws.mean(0), 6.0 * scale, rtol=0.03, atol=0.02)
    # Var(L_11) = 2 nu scale_11^2 for a Wishart.
    assert draws[:, 0, 0].var() == pytest.approx(2 * 6.0 * 0.25, rel=0.06)


def test_side_link_draws_match_the_matrix_normal_conditional() -> None:
    # Entities 0..4 with feature rows (implicit feedback, count^-1/2 scaled); k = 2.
    entity = np.array([0, 0, 1, 2, 2, 2, 3, 4, 4])
    feature = np.array([0, 1, 1, 0, 1, 2, 2, 0, 2])
    reg, k = 0.7, 2
    link = SideLink(entity, feature, 5, 3, reg, CPU, torch.float64)
    f = np.zeros((5, 3))
    for e, j in zip(entity, feature, strict=True):
        f[e, j] = 1.0
    f /= np.sqrt(f.sum(1, keepdims=True))
    np.testing.assert_allclose(link.features.to_dense().numpy(), f)
    rng = np.random.default_rng(0)
    x, m = rng.normal(size=(5, k)), rng.normal(size=k)
    lam = np.array([[2.0, 0.5], [0.5, 1.0]])
    a_inv = np.linalg.inv(f.T @ f + reg * np.eye(3))
    want_mean = a_inv @ f.T @ (x - m)  # ridge regression of x - m on the features
    want_cov = np.kron(a_inv, np.linalg.inv(lam))  # cov of B flattened row by row
    gen = torch.Generator().manual_seed(0)
    draws = []
    for _ in range(6000):
        link.sample(torch.as_tensor(x), torch.as_tensor(m), torch.as_tensor(lam), gen)
        draws.append(link.link.numpy().ravel())
    b = np.array(draws)
    np.testing.assert_allclose(b.mean(0), want_mean.ravel(), atol=0.05)
    np.testing.assert_allclose(np.cov(b.T), want_cov, atol=0.05)
    np.testing.assert_allclose(link.offsets(k).numpy(), f @ link.link.numpy(), atol=1e-12)


def test_same_seed_same_samples_other_seed_differs() -> None:
    u, i, r = _synthetic()
    cfg = BPMFConfig(dim=3, burn_in=2, samples=3, seed=5, side="both", noise="user_movie")
    a = train_bpmf(u, i, r, 60, 40, cfg, device=CPU)
    b = train_bpmf(u, i, r, 60, 40, cfg, device=CPU)
    c = train_bpmf(u, i, r, 60, 40, BPMFConfig(dim=3, burn_in=2, samples=3, seed=6,
                                               side="both", noise="user_movie"), device=CPU)
    assert torch.equal(a.user_samples, b.user_samples)
    assert torch.equal(a.item_samples, b.item_samples)
    assert [h["alpha"] for h in a.history] == [h["alpha"] for h in b.history]
    assert not torch.equal(a.user_samples, c.user_samples)


def test_fit_on_low_rank_data_beats_biases_and_training_error_falls() -> None:
    u, i, r = _synthetic(seed=4, n_users=120, n_items=80, density=0.4)
    test = np.random.default_rng(0).random(len(r)) < 0.15
    fit = ~test
    cfg = BPMFConfig(dim=3, burn_in=15, samples=40, seed=0, side="none")
    res = train_bpmf(u[fit], i[fit], r[fit], 120, 80, cfg, evaluate=[(u[test], i[test])],
                     device=CPU)
    rmse_train = [h["train_rmse"] for h in res.history]
    assert rmse_train[-1] < 0.8 * rmse_train[0]
    pred = res.eval_predictions[0]
    rmse = float(np.sqrt(np.mean((pred - r[test]) ** 2)))
    # Plain biases reference (global mean + damped user/item means), fitted on the train part.
    mu = r[fit].mean()
    bi = np.array([(r[fit][i[fit] == j] - mu).sum() / (5 + (i[fit] == j).sum())
                   for j in range(80)])
    bu = np.array([(r[fit][u[fit] == v] - mu - bi[i[fit][u[fit] == v]]).sum()
                   / (5 + (u[fit] == v).sum()) for v in range(120)])
    rmse_biases = float(np.sqrt(np.mean((mu + bu[u[test]] + bi[i[test]] - r[test]) ** 2)))
    assert rmse < rmse_biases - 0.1
    assert rmse < 0.45  # noise std is 0.3
    # Sampled noise precision near 1 / 0.3^2 (a loose band: the train fit overfits a bit).
    assert 6 < res.history[-1]["alpha"] < 20


def test_written_vectors_reproduce_the_posterior_average() -> None:
    u, i, r = _synthetic(seed=7)
    res = train_bpmf(u, i, r, 60, 40, BPMFConfig(dim=3, burn_in=3, samples=6, seed=1,
                                                 side="none"),
                     evaluate=[(u, i)], device=CPU)
    # Plain reference: average of mu + b_u + b_i + <p, q> over the kept samples.
    us, vs = res.user_samples.double().numpy(), res.item_samples.double().numpy()
    ref = np.zeros((60, 40))
    for s in range(len(us)):
        ref += res.global_mean + us[s, :, -1:] + vs[s, :, -1][None, :] + us[s, :, :-1] @ vs[
            s, :, :-1].T
    ref /= len(us)
    g, f, info = interaction_vectors(res)
    bu, bi = posterior_biases(res)
    got = res.global_mean + bu[:, None] + bi[None, :] + g @ f.T
    np.testing.assert_allclose(got, ref, atol=1e-9)
    assert info["rank"] <= 6 * 3 and info["dropped_energy"] < 1e-12
    # The sampler's running average (float64 states) agrees up to float32 sample storage.
    np.testing.assert_allclose(res.eval_predictions[0], ref[u, i], atol=1e-5)
    np.testing.assert_allclose(res.predict(u, i, clip=None), ref[u, i], atol=1e-9)
    # Truncation: relative squared Frobenius error of the interaction is the dropped energy.
    g2, f2, info2 = interaction_vectors(res, rank=2)
    assert g2.shape == (60, 2) and f2.shape == (40, 2)
    full, trunc = g @ f.T, g2 @ f2.T
    err = float(((full - trunc) ** 2).sum() / (full ** 2).sum())
    assert err == pytest.approx(info2["dropped_energy"], rel=1e-6)
    assert info2["dropped_energy"] > 0


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError):
        BPMFConfig(dim=0)
    with pytest.raises(ValueError):
        BPMFConfig(samples=0)
    with pytest.raises(ValueError):
        BPMFConfig(alpha=-1.0)
    with pytest.raises(ValueError):
        BPMFConfig(side="movies")
    with pytest.raises(ValueError):
        BPMFConfig(noise="movie")
    with pytest.raises(ValueError):
        train_bpmf(np.array([0, 5]), np.array([0, 1]), np.array([3.0, 4.0]), 2, 2,
                   BPMFConfig(dim=2, burn_in=0, samples=1, side="none"), device=CPU)
