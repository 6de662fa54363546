"""Biased MF by alternating least squares, and the compiled per-entity solve it shares with BPMF.

The objective is :mod:`moviegraph.train.mf`'s (penalised least squares, L2 per observed
rating, ``mu`` the fixed training mean)::

    sum_(u,i) (r_ui - mu - b_u - b_i - <p_u, q_i>)^2
        + sum_u n_u (reg_f |p_u|^2 + reg_b b_u^2) + sum_i n_i (reg_f |q_i|^2 + reg_b b_i^2)

(Adam minimises the same objective divided by the number of ratings). With the movies
fixed it separates into one ridge regression per user: the state ``x_u = [p_u, b_u]``
(``k = dim + 1`` numbers) regresses ``t_ui = r_ui - mu - b_i`` on ``z_i = [q_i, 1]`` (the 1
meets ``b_u``), with the ``k x k`` normal equations

    (sum_i z_i z_i^T + n_u diag(reg_f, .., reg_f, reg_b)) x_u = sum_i z_i t_ui,

and the same for the movies with the users fixed. Each half-sweep solves them exactly,
so the objective never increases; a handful of sweeps reaches the minimum that many epochs
of stochastic gradients approach (ALS-WR, Zhou et al. 2008, with the biases folded in).

:func:`solve_side` is the compiled kernel: entities in parallel (numba ``prange``), each
one's Gram matrix accumulated over its ratings (a CSR of the ratings by entity), factorised
by a hand-written Cholesky and solved in place: no Python loop over entities or ratings,
no ``(ratings, k, k)`` temporaries. BPMF's Gibbs conditionals (:mod:`moviegraph.train.bpmf`)
are the same regression with a Gaussian prior and a draw, so they use the same kernel.

Cost per sweep: ``ratings * k * (k + 1)`` multiply-adds (two sides) plus ``k^3 / 3`` per
entity, independent of any batch size; each entity's solve is one thread's arithmetic in a
fixed order, so results do not depend on the thread count.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numba
import numpy as np
import torch
from numba import njit, prange

from moviegraph import numba_cache
from moviegraph.config.models import ALSConfig
from moviegraph.train.loop import LoopConfig, fit
from moviegraph.train.mf import BiasedMF, MFResult, validation_rmse

numba_cache.install()  # before the @njit(cache=True) kernels below


@njit(cache=True)
def _counting_order(keys: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(indptr, order)``: ``keys[order]`` sorted (stable), ``indptr`` its CSR offsets."""
    indptr = np.zeros(n + 1, dtype=np.int64)
    for j in range(keys.shape[0]):
        indptr[keys[j] + 1] += 1
    for e in range(n):
        indptr[e + 1] += indptr[e]
    fill = indptr[:-1].copy()
    order = np.empty(keys.shape[0], dtype=np.int64)
    for j in range(keys.shape[0]):
        e = keys[j]
        order[fill[e]] = j
        fill[e] += 1
    return indptr, order


@dataclass
class RatingsBy:
    """The ratings grouped by one side's entity (CSR): ``other[indptr[e]:indptr[e+1]]``
    are the other side's indices of entity ``e``'s ratings, ``order`` maps CSR positions
    back to the caller's rating positions."""

    indptr: np.ndarray
    other: np.ndarray
    order: np.ndarray

    @classmethod
    def build(cls, entity: np.ndarray, other: np.ndarray, n: int) -> RatingsBy:
        """Group ``(entity, other)`` pairs by ``entity`` (``0 <= entity < n``)."""
        indptr, order = _counting_order(np.ascontiguousarray(entity, dtype=np.int64), n)
        return cls(indptr, np.ascontiguousarray(np.asarray(other, np.int64)[order]), order)

    def counts(self) -> np.ndarray:
        """Ratings per entity."""
        return np.diff(self.indptr)


#: LLVM fast-math flags of the kernels: reassociation and fused multiply-adds for the
#: vector units, but no "no NaN / no inf" promise, so the positive-definiteness test of
#: the Cholesky (``not s > 0``) still sees a NaN.
FASTMATH = {"contract", "reassoc", "nsz", "arcp"}

#: Ratings whose outer products are added to the Gram matrix in one pass over it: each
#: element of ``A`` is loaded and stored once per block instead of once per rating (the
#: update is load/store bound). The kernel's pass is written out for four, which fit the
#: registers at k = 33 and 65 (eight ran slower).
BLOCK = 4


@njit(parallel=True, fastmath=FASTMATH, cache=True, nogil=True, error_model="numpy")
def solve_side(indptr: np.ndarray, other: np.ndarray, resid: np.ndarray, weight: np.ndarray,
               alpha: float, states: np.ndarray, prior_prec: np.ndarray,
               prior_rhs: np.ndarray, reg_diag: np.ndarray, noise: np.ndarray,
               out: np.ndarray) -> int:
    """Solve (and optionally draw) every entity's state given the other side's ``states``.

    Entity ``e``'s ratings are CSR positions ``j`` in ``indptr[e]:indptr[e+1]``, each with
    the other side's row ``o = other[j]`` (``states[o] = [factors, bias]``), ``resid[j] =
    r - mu`` and precision ``alpha * weight[j]`` (``weight`` empty: ``alpha``). With
    ``z = [states[o, :-1], 1]`` and ``t = resid[j] - states[o, -1]``::

        A_e = prior_prec + n_e diag(reg_diag) + sum_j w_j z z^T
        A_e x = prior_rhs[e] + sum_j w_j z t

    ``out[e]`` gets ``x``, plus ``L^-T noise[e]`` when ``noise`` has rows (``A_e = L L^T``:
    a draw from ``N(x, A_e^-1)``). Entities whose ``A_e`` is not positive definite (e.g.
    no ratings and no prior) get zeros; their number is returned.

    Each entity is one thread's work in a fixed order (gather its design rows, add their
    outer products in blocks of :data:`BLOCK`, Cholesky, two triangular solves), so the
    result does not depend on the number of threads.
    """
    n = indptr.shape[0] - 1
    k = states.shape[1]
    draw = noise.shape[0] > 0
    weighted = weight.shape[0] > 0
    failed = np.zeros(n, dtype=np.int64)
    for e in prange(n):
        start = indptr[e]
        count = indptr[e + 1] - start
        padded = (count + BLOCK - 1) // BLOCK * BLOCK
        a = np.empty((k, k), dtype=np.float64)
        b = np.empty(k, dtype=np.float64)
        # The design rows z and their weights, zero-padded to whole blocks.
        z = np.zeros((padded, k), dtype=np.float64)
        wt = np.zeros(padded, dtype=np.float64)
        for r in range(k):
            for c in range(r + 1):
                a[r, c] = prior_prec[r, c]
            a[r, r] += count * reg_diag[r]
            b[r] = prior_rhs[e, r]
        for q in range(count):
            j = start + q
            o = other[j]
            w = alpha * weight[j] if weighted else alpha
            for c in range(k - 1):
                z[q, c] = states[o, c]
            z[q, k - 1] = 1.0
            wt[q] = w
            t = w * (resid[j] - states[o, k - 1])
            for c in range(k):
                b[c] += z[q, c] * t
        # Lower triangle of sum_q w_q z_q z_q^T, BLOCK ratings per pass.
        for q in range(0, padded, BLOCK):
            for r in range(k):
                w0 = wt[q] * z[q, r]
                w1 = wt[q + 1] * z[q + 1, r]
                w2 = wt[q + 2] * z[q + 2, r]
                w3 = wt[q + 3] * z[q + 3, r]
                for c in range(r + 1):
                    a[r, c] += (w0 * z[q, c] + w1 * z[q + 1, c]) + (
                        w2 * z[q + 2, c] + w3 * z[q + 3, c])
        # Cholesky A = L L^T in the lower triangle of a.
        ok = True
        for c in range(k):
            s = a[c, c]
            for p in range(c):
                s -= a[c, p] * a[c, p]
            if not s > 0.0:
                ok = False
                break
            d = np.sqrt(s)
            a[c, c] = d
            for r in range(c + 1, k):
                s = a[r, c]
                for p in range(c):
                    s -= a[r, p] * a[c, p]
                a[r, c] = s / d
        if not ok:
            failed[e] = 1
            for c in range(k):
                out[e, c] = 0.0
            continue
        # L y = b, then L^T x = y (+ noise: L^T x = y + eps gives the mean plus L^-T eps).
        for r in range(k):
            s = b[r]
            for p in range(r):
                s -= a[r, p] * b[p]
            b[r] = s / a[r, r]
        if draw:
            for r in range(k):
                b[r] += noise[e, r]
        for r in range(k - 1, -1, -1):
            s = b[r]
            for p in range(r + 1, k):
                s -= a[p, r] * b[p]
            b[r] = s / a[r, r]
        for c in range(k):
            out[e, c] = b[c]
    return int(failed.sum())


@njit(parallel=True, fastmath=FASTMATH, cache=True, nogil=True, error_model="numpy")
def squared_error(indptr: np.ndarray, other: np.ndarray, resid: np.ndarray,
                  states: np.ndarray, other_states: np.ndarray) -> float:
    """``sum (resid - b_e - b_o - <f_e, f_o>)^2`` over the CSR's ratings (states ``[f, b]``)."""
    n = indptr.shape[0] - 1
    k = states.shape[1]
    parts = np.zeros(n, dtype=np.float64)
    for e in prange(n):
        s = 0.0
        for j in range(indptr[e], indptr[e + 1]):
            o = other[j]
            pred = states[e, k - 1] + other_states[o, k - 1]
            for c in range(k - 1):
                pred += states[e, c] * other_states[o, c]
            err = resid[j] - pred
            s += err * err
        parts[e] = s
    return float(parts.sum())


def kernel_threads(threads: int | None) -> int:
    """Set (and return) the kernels' thread count: ``threads``, or torch's when None,
    capped at numba's pool. The results do not depend on it."""
    n = max(1, min(threads or torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(n)
    return n


def _states(factors: torch.Tensor, bias: torch.Tensor) -> np.ndarray:
    """``[factors, bias]`` as one C-contiguous float64 array (the kernel's layout)."""
    return np.ascontiguousarray(torch.cat([factors.detach(), bias.detach()], 1).double().numpy())


def _store(states: np.ndarray, factors: torch.Tensor, bias: torch.Tensor) -> None:
    """Write a kernel state array back into the model's (float32) tables."""
    with torch.no_grad():
        factors.copy_(torch.as_tensor(states[:, :-1]))
        bias.copy_(torch.as_tensor(states[:, -1:]))


def train_als(
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    num_users: int,
    num_items: int,
    cfg: ALSConfig | None = None,
    val: tuple[np.ndarray, ...] | None = None,
    loop: LoopConfig | None = None,
    threads: int | None = None,
) -> MFResult:
    """Biased MF (:class:`~moviegraph.train.mf.BiasedMF`, on the CPU) by ALS.

    One loop epoch is one sweep: every user solved given the movies, then every movie
    given the users. The state between sweeps is the model's weights, so checkpoints,
    ``resume`` and early stopping (``loop.monitor = "val_rmse"``) work as for Adam.

    Args:
        users, items, ratings: aligned arrays of the training ratings (dense indices).
        num_users, num_items: table sizes (indices must be below them).
        cfg: model settings (``cfg.iterations`` sweeps unless ``loop`` says otherwise).
        val: optional ``(users, items, ratings)`` scored after each sweep as ``val_rmse``.
        loop: loop settings (epochs default to ``cfg.iterations``).
        threads: kernel threads (None: torch's thread count).
    """
    cfg = cfg or ALSConfig()
    loop = loop or LoopConfig(epochs=cfg.iterations, unit="rating", desc="mf als")
    u = np.asarray(users, np.int64)
    i = np.asarray(items, np.int64)
    if len(u) == 0:
        raise ValueError("no training ratings")
    if int(u.max()) >= num_users or int(i.max()) >= num_items or min(u.min(), i.min()) < 0:
        raise ValueError("user or item index out of range of num_users / num_items")
    r = np.asarray(ratings, np.float64)
    mu = float(r.mean())
    by_user = RatingsBy.build(u, i, num_users)
    by_item = RatingsBy.build(i, u, num_items)
    resid_u = np.ascontiguousarray(r[by_user.order] - mu)
    resid_i = np.ascontiguousarray(r[by_item.order] - mu)
    torch.manual_seed(cfg.seed)
    model = BiasedMF(num_users, num_items, cfg.dim, mu, cfg.init_std)
    k = cfg.dim + 1
    reg = np.full(k, cfg.reg_factors)
    reg[-1] = cfg.reg_bias
    no_prior = np.zeros((k, k))
    none = np.zeros(0)
    no_noise = np.zeros((0, k))
    # Entities without ratings have a zero system (no prior): the kernel leaves them at 0.
    empty_u = int((by_user.counts() == 0).sum())
    empty_i = int((by_item.counts() == 0).sum())
    n = len(r)

    def half(by: RatingsBy, resid: np.ndarray, other: np.ndarray, n_out: int,
             empty: int) -> np.ndarray:
        out = np.empty((n_out, k))
        failed = solve_side(by.indptr, by.other, resid, none, 1.0, other, no_prior,
                            np.zeros((n_out, k)), reg, no_noise, out)
        if failed != empty:  # reg > 0 makes every rated entity's system positive definite
            raise FloatingPointError(f"ALS: {failed - empty} normal equations not positive "
                                     "definite (raise reg_factors / reg_bias)")
        return out

    def run_epoch(epoch: int) -> Iterator[tuple[float, int]]:
        kernel_threads(threads)
        y = _states(model.item_factors.weight, model.item_bias.weight)
        x = half(by_user, resid_u, y, num_users, empty_u)
        y = half(by_item, resid_i, x, num_items, empty_i)
        _store(x, model.user_factors.weight, model.user_bias.weight)
        _store(y, model.item_factors.weight, model.item_bias.weight)
        # Training MSE of the stored (float32) weights, the same number Adam reports.
        sse = squared_error(by_user.indptr, by_user.other, resid_u,
                            _states(model.user_factors.weight, model.user_bias.weight),
                            _states(model.item_factors.weight, model.item_bias.weight))
        yield sse / n, n

    validate = None if val is None else (lambda: validation_rmse(model, val))
    result = fit(model, run_epoch, loop, validate=validate)
    return MFResult(model=model, fit=result)

