"""ALS and the compiled per-entity solve it shares with BPMF, against slow references:
numpy dense solves of each ridge regression, the penalised objective written out in
numpy, Adam on the same objective, and the batched torch path of the BPMF sampler."""

from __future__ import annotations

import itertools

import numba
import numpy as np
import pytest
import torch

from moviegraph.config.models import ALSConfig, BPMFConfig, MFConfig
from moviegraph.train.als import RatingsBy, solve_side, train_als
from moviegraph.train.bpmf import train_bpmf
from moviegraph.train.loop import LoopConfig
from moviegraph.train.mf import train_mf

CPU = torch.device("cpu")

# Small tensors on a shared machine: extra threads only add contention.
pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _synthetic(seed: int = 0, n_users: int = 50, n_items: int = 35, dim: int = 3,
               density: float = 0.4, noise: float = 0.3):
    """Ratings from a known low-rank + bias model; returns (users, items, ratings)."""
    rng = np.random.default_rng(seed)
    p, q = rng.normal(0, 0.6, (n_users, dim)), rng.normal(0, 0.6, (n_items, dim))
    bu, bi = rng.normal(0, 0.3, n_users), rng.normal(0, 0.3, n_items)
    u, i = np.nonzero(rng.random((n_users, n_items)) < density)
    r = 3.5 + bu[u] + bi[i] + np.einsum("nd,nd->n", p[u], q[i]) + rng.normal(0, noise, len(u))
    return u, i, r


def _ridge(z: np.ndarray, t: np.ndarray, w: np.ndarray, prec: np.ndarray,
           rhs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(A, x)`` of ``A x = rhs + Z^T W t``, ``A = prec + Z^T W Z``, by a dense solve."""
    a = prec + (z * w[:, None]).T @ z
    return a, np.linalg.solve(a, rhs + (z * w[:, None]).T @ t)


def _kernel_case(seed: int, k: int = 5, n: int = 9, n_other: int = 7, n_obs: int = 60):
    """Random CSR, other-side states, residuals, weights, per-entity priors; the last
    entity has no ratings."""
    rng = np.random.default_rng(seed)
    entity = rng.integers(0, n - 1, n_obs)
    other = rng.integers(0, n_other, n_obs)
    by = RatingsBy.build(entity, other, n)
    states = rng.normal(size=(n_other, k))
    resid = rng.normal(size=n_obs)[by.order]
    weight = rng.uniform(0.3, 2.0, n_obs)[by.order]
    g = rng.normal(size=(k, k))
    prec = g @ g.T + np.eye(k)
    rhs = rng.normal(size=(n, k))
    reg = rng.uniform(0.01, 0.2, k)
    return by, states, resid, weight, prec, rhs, reg


@pytest.mark.parametrize("weighted", [False, True])
def test_solve_side_is_each_entitys_dense_ridge_solve(weighted: bool) -> None:
    by, states, resid, weight, prec, rhs, reg = _kernel_case(1)
    n, k = rhs.shape
    alpha = 1.7
    w_all = alpha * (weight if weighted else np.ones_like(weight))
    out = np.full((n, k), np.nan)
    failed = solve_side(by.indptr, by.other, resid, weight if weighted else np.zeros(0), alpha,
                        states, prec, rhs, reg, np.zeros((0, k)), out)
    assert failed == 0  # the prior makes even the entity without ratings solvable
    for e in range(n):
        sl = slice(by.indptr[e], by.indptr[e + 1])
        o = by.other[sl]
        z = np.hstack([states[o, :-1], np.ones((len(o), 1))])  # [q, 1]: the 1 meets b_u
        t = resid[sl] - states[o, -1]
        _, want = _ridge(z, t, w_all[sl], prec + len(o) * np.diag(reg), rhs[e])
        np.testing.assert_allclose(out[e], want, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(out[n - 1], np.linalg.solve(prec, rhs[n - 1]), rtol=1e-9)


def test_solve_side_draw_is_mean_plus_inverse_cholesky_noise() -> None:
    by, states, resid, weight, prec, rhs, _ = _kernel_case(2)
    n, k = rhs.shape
    noise = np.random.default_rng(3).normal(size=(n, k))
    out = np.empty((n, k))
    solve_side(by.indptr, by.other, resid, weight, 1.0, states, prec, rhs, np.zeros(k), noise,
               out)
    for e in range(n):
        sl = slice(by.indptr[e], by.indptr[e + 1])
        o = by.other[sl]
        z = np.hstack([states[o, :-1], np.ones((len(o), 1))])
        a, mean = _ridge(z, resid[sl] - states[o, -1], weight[sl], prec, rhs[e])
        lo = np.linalg.cholesky(a)  # x = mean + L^-T eps ~ N(mean, A^-1)
        np.testing.assert_allclose(out[e], mean + np.linalg.solve(lo.T, noise[e]), rtol=1e-9,
                                   atol=1e-11)


def test_solve_side_reports_unsolvable_entities_and_zeros_them() -> None:
    by, states, resid, _, _, _, _ = _kernel_case(4)
    n, k = len(by.indptr) - 1, states.shape[1]
    out = np.full((n, k), 7.0)
    failed = solve_side(by.indptr, by.other, resid, np.zeros(0), 1.0, states, np.zeros((k, k)),
                        np.zeros((n, k)), np.full(k, 0.1), np.zeros((0, k)), out)
    assert failed == 1  # the last entity: no ratings, no prior, no regulariser
    assert (out[n - 1] == 0).all() and np.isfinite(out[: n - 1]).all()


def _objective(model, u, i, r, reg_f: float, reg_b: float) -> float:
    """The penalised least squares ALS minimises, written out in numpy (float64)."""
    p = model.user_factors.weight.detach().double().numpy()
    q = model.item_factors.weight.detach().double().numpy()
    bu = model.user_bias.weight.detach().double().numpy()[:, 0]
    bi = model.item_bias.weight.detach().double().numpy()[:, 0]
    mu = float(model.global_mean)
    err = r - mu - bu[u] - bi[i] - np.einsum("nd,nd->n", p[u], q[i])
    nu, ni = np.bincount(u, minlength=len(p)), np.bincount(i, minlength=len(q))
    return float(err @ err + reg_f * (nu @ (p * p).sum(1) + ni @ (q * q).sum(1))
                 + reg_b * (nu @ bu**2 + ni @ bi**2))


def _als(u, i, r, sweeps: int, threads: int | None = None, **cfg):
    cfg = ALSConfig(**{"dim": 4, "reg_factors": 0.05, "reg_bias": 0.02, **cfg})
    return train_als(u, i, r, u.max() + 1, i.max() + 1, cfg,
                     loop=LoopConfig(epochs=sweeps, progress=False), threads=threads)


def test_objective_never_increases_and_the_last_half_sweep_is_exact() -> None:
    u, i, r = _synthetic(0)
    values = [_objective(_als(u, i, r, s).model, u, i, r, 0.05, 0.02) for s in range(1, 7)]
    # float32 weights: allow their rounding, nothing more.
    assert all(b <= a * (1 + 1e-6) for a, b in itertools.pairwise(values))
    assert values[-1] < 0.6 * values[0] or values[0] < 1e-9
    model = _als(u, i, r, 6).model
    # The movies were solved last: each one's state is its ridge solution given the users.
    p = model.user_factors.weight.detach().double().numpy()
    bu = model.user_bias.weight.detach().double().numpy()[:, 0]
    q = model.item_factors.weight.detach().double().numpy()
    bi = model.item_bias.weight.detach().double().numpy()[:, 0]
    mu = float(model.global_mean)
    reg = np.array([0.05] * 4 + [0.02])
    for m in range(0, i.max() + 1, 5):
        rows = np.flatnonzero(i == m)
        z = np.hstack([p[u[rows]], np.ones((len(rows), 1))])
        _, want = _ridge(z, r[rows] - mu - bu[u[rows]], np.ones(len(rows)),
                         len(rows) * np.diag(reg), np.zeros(5))
        np.testing.assert_allclose(np.append(q[m], bi[m]), want, rtol=2e-5, atol=2e-6)


def test_als_reaches_the_optimum_adam_approaches() -> None:
    u, i, r = _synthetic(5)
    als = _als(u, i, r, 30, dim=3, reg_factors=0.05, reg_bias=0.05)
    adam = train_mf(u, i, r, u.max() + 1, i.max() + 1,
                    MFConfig(dim=3, reg_factors=0.05, reg_bias=0.05, lr=0.02, epochs=300,
                             batch_size=None, init_std=0.1),
                    loop=LoopConfig(epochs=300, progress=False), device=CPU)
    f_als = _objective(als.model, u, i, r, 0.05, 0.05)
    f_adam = _objective(adam.model, u, i, r, 0.05, 0.05)
    assert f_als <= f_adam * (1 + 1e-3)
    baseline = float(((r - r.mean()) ** 2).sum())
    assert f_als < 0.3 * baseline  # the low-rank structure is found


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs 2 numba threads")
def test_same_result_whatever_the_thread_count() -> None:
    u, i, r = _synthetic(7, n_users=120, n_items=60)
    one, two = _als(u, i, r, 3, threads=1), _als(u, i, r, 3, threads=2)
    for name, value in one.model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), two.model.state_dict()[name].numpy())
    cfg = BPMFConfig(dim=3, burn_in=2, samples=3, side="both", noise="user_movie")
    samples = []
    for threads in (1, 2):
        torch.set_num_threads(threads)  # the sampler's kernel follows torch's thread count
        res = train_bpmf(u, i, r, u.max() + 1, i.max() + 1, cfg, device=CPU, compiled=True)
        samples.append(res.user_samples.numpy())
        assert numba.get_num_threads() == threads
    np.testing.assert_array_equal(samples[0], samples[1])


@pytest.mark.parametrize("noise,side", [("global", "none"), ("user_movie", "both")])
def test_bpmf_compiled_kernel_samples_the_torch_paths_chain(noise: str, side: str) -> None:
    # Same generator, same normals: the two paths must give the same draws (up to rounding).
    u, i, r = _synthetic(9)
    cfg = BPMFConfig(dim=3, burn_in=3, samples=4, noise=noise, side=side)
    runs = [train_bpmf(u, i, r, u.max() + 1, i.max() + 1, cfg, evaluate=[(u, i)], device=CPU,
                       compiled=c) for c in (True, False)]
    np.testing.assert_allclose(runs[0].user_samples.numpy(), runs[1].user_samples.numpy(),
                               atol=1e-5)
    np.testing.assert_allclose(runs[0].eval_predictions[0], runs[1].eval_predictions[0],
                               atol=1e-9)


def test_bad_input_is_one_clear_error() -> None:
    u, i, r = _synthetic(0)
    with pytest.raises(ValueError, match="out of range"):
        train_als(u, i, r, u.max(), i.max() + 1, ALSConfig(dim=2))
    with pytest.raises(ValueError, match="no training ratings"):
        train_als(u[:0], i[:0], r[:0], 3, 3, ALSConfig(dim=2))
    with pytest.raises(ValueError, match="reg_factors"):
        ALSConfig(reg_factors=0.0)


def test_benchmark_numpy_reference_is_the_same_als() -> None:
    # benchmarks/mf_speed.py's reference (a numpy loop of dense solves) from ALS's own start
    # must land on ALS's result: the speed ratio compares the same computation.
    from benchmarks.mf_speed import numpy_als_reference

    from moviegraph.train.mf import BiasedMF

    u, i, r = _synthetic(11)
    nu, ni = u.max() + 1, i.max() + 1
    als = _als(u, i, r, 3)
    torch.manual_seed(ALSConfig().seed)
    start = BiasedMF(nu, ni, 4, float(r.mean()), ALSConfig().init_std)
    y0 = np.hstack([start.item_factors.weight.detach().double().numpy(),
                    start.item_bias.weight.detach().double().numpy()])
    x, y = numpy_als_reference(u, i, r, nu, ni, y0, 3, 0.05, 0.02)
    np.testing.assert_allclose(als.model.item_factors.weight.detach().numpy(), y[:, :-1],
                               atol=1e-5)
    np.testing.assert_allclose(als.model.user_bias.weight.detach().numpy()[:, 0], x[:, -1],
                               atol=1e-5)


def test_resume_from_a_checkpoint_equals_the_uninterrupted_run(tmp_path) -> None:
    # The state between sweeps is the model's weights: 2 sweeps, then 2 more resumed from
    # the checkpoint, must equal 4 in one go.
    u, i, r = _synthetic(13)
    cfg = ALSConfig(dim=3)
    whole = train_als(u, i, r, u.max() + 1, i.max() + 1, cfg,
                      loop=LoopConfig(epochs=4, progress=False))
    for epochs in (2, 4):
        part = train_als(u, i, r, u.max() + 1, i.max() + 1, cfg,
                         loop=LoopConfig(epochs=epochs, progress=False, resume=True,
                                         checkpoint_dir=tmp_path))
    assert part.fit.resumed_from == 1  # the second run started after sweep 2 (epoch 1)
    for name, value in whole.model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), part.model.state_dict()[name].numpy())
