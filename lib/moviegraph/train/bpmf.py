"""Bayesian biased matrix factorisation by Gibbs sampling (BPMF, Salakhutdinov & Mnih 2008).

Model: ``r_ui ~ N(mu + b_u + b_i + <p_u, q_i>, 1 / alpha)`` with ``mu`` the training mean
(fixed). Each user's state is ``x_u = [p_u, b_u]`` and each movie's ``y_i = [q_i, b_i]``
(``k = dim + 1`` numbers): the bias is one more latent coordinate whose partner on the
other side is the constant 1, so one Gaussian conditional per entity covers both.

Priors: ``x_u ~ N(m_U, L_U^-1)``, ``y_i ~ N(m_V, L_V^-1)`` with Normal-Wishart hyperpriors
(``m0 = 0``, ``beta0``, ``W0 = I``, ``nu0 = k``) sampled each sweep, and ``alpha`` either
fixed or Gamma-distributed (shape ``a0``, rate ``b0``) and sampled too.

Noise (``BPMFConfig.noise``): ``"global"`` is BPMF's one precision ``alpha``;
``"user"`` / ``"user_movie"`` give rating ``(u, i)`` the precision ``alpha * s_u`` /
``alpha * s_u * c_i`` with ``s_u, c_i ~ Gamma(noise_shape, noise_shape)`` (mean 1), as in
robust Bayesian MF (Lakshminarayanan, Bouchard & Archambeau 2011): erratic users and
controversial movies weigh less in everybody's conditionals. Marginally the noise is
Student-t rather than Gaussian. The prediction stays ``mu + b_u + b_i + <p_u, q_i>``.

Side information (``BPMFConfig.side``, :class:`SideLink`, Macau-style): a user's prior
mean also depends on *which* movies they rated (SVD++'s implicit feedback, from the
training ratings only), and a movie's on who rated it. On ml-100k's validation cut this is
the largest gain (dim 10: 0.904 -> 0.889), see ``benchmarks/mf_ml100k.py``.

One sweep: hyperparameters (numpy, ``k x k``, tiny) -> all users at once -> all movies at
once. The users' conditional is Gaussian with precision ``L_U + alpha sum_i z_i z_i^T`` and
``precision @ mean = L_U m_U + alpha sum_i z_i t_ui`` over the user's ratings, where
``z_i = [q_i, 1]`` and ``t_ui = r_ui - mu - b_i``. On the CPU these sums, the Cholesky
factor and the draw are :func:`moviegraph.train.als.solve_side`'s compiled per-entity
solve (the one ALS uses; :class:`CompiledSides`): entities in parallel, each in a fixed
order, so the samples do not depend on the thread count. On CUDA they are built by
``index_add_`` over chunks of ratings and every user is drawn with one batched Cholesky
(``torch.linalg.cholesky`` on an ``(n_users, k, k)`` batch). Neither loops over entities
in Python.

Prediction is the posterior average over the sweeps after burn-in of
``mu + b_u + b_i + <p_u, q_i>``; :func:`interaction_vectors` turns the kept samples into
user and movie matrices whose dot product plus the posterior-mean biases is that average
(exactly, or to a measured tolerance when truncated).

Randomness: a ``torch.Generator`` on the device for the big Gaussian draws and a numpy
``Generator`` for the hyperparameters, both from ``seed``: same seed and device => same
samples (on CUDA, ``index_add_`` accumulates in a nondeterministic order unless
``torch.use_deterministic_algorithms(True)``, i.e. ``train.deterministic``).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from moviegraph.config.models import BPMFConfig
from moviegraph.train.als import RatingsBy, kernel_threads, solve_side
from moviegraph.train.device import pick_device


def normal_wishart_posterior(x: np.ndarray, beta0: float, nu0: float, w0_inv: np.ndarray,
                             m0: np.ndarray) -> tuple[np.ndarray, float, np.ndarray, float]:
    """Normal-Wishart posterior ``(m*, beta*, W*, nu*)`` given rows ``x`` (n, k)."""
    n = x.shape[0]
    xbar = x.mean(axis=0)
    dev = x - xbar
    scatter = dev.T @ dev
    diff = (m0 - xbar)[:, None]
    w_inv = w0_inv + scatter + (beta0 * n / (beta0 + n)) * (diff @ diff.T)
    w = np.linalg.inv((w_inv + w_inv.T) / 2)
    return (beta0 * m0 + n * xbar) / (beta0 + n), beta0 + n, (w + w.T) / 2, nu0 + n


def wishart(nu: float, scale: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One Wishart(``nu``, ``scale``) draw by the Bartlett decomposition (mean ``nu scale``)."""
    k = scale.shape[0]
    chol = np.linalg.cholesky(scale)
    a = np.tril(rng.standard_normal((k, k)), -1)
    a[np.diag_indices(k)] = np.sqrt(rng.chisquare(nu - np.arange(k)))
    la = chol @ a
    return la @ la.T


def sample_hyper(x: np.ndarray, beta0: float, rng: np.random.Generator,
                 link_scatter: np.ndarray | None = None, link_rows: int = 0
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``(mean, precision)`` of the prior of the rows of ``x`` from its Normal-Wishart
    conditional (``m0 = 0``, ``W0 = I``, ``nu0 = k``). With side information the link
    matrix ``B`` (``link_rows`` rows, prior ``N(0, (lambda Lambda)^-1)`` per row) also
    informs the precision: ``link_scatter = lambda B^T B`` and ``link_rows`` degrees of
    freedom are added to the Wishart's."""
    k = x.shape[1]
    w0_inv = np.eye(k)
    m, beta, w, nu = normal_wishart_posterior(x, beta0, k, w0_inv, np.zeros(k))
    if link_scatter is not None:
        w = np.linalg.inv(np.linalg.inv(w) + link_scatter)
        w, nu = (w + w.T) / 2, nu + link_rows
    lam = wishart(nu, w, rng)
    cov = np.linalg.inv(beta * lam)
    mean = rng.multivariate_normal(m, (cov + cov.T) / 2)
    return mean, lam


def conditional(entity: torch.Tensor, design: torch.Tensor, target: torch.Tensor,
                n_entities: int, alpha: float | torch.Tensor, mean0: torch.Tensor,
                prec0: torch.Tensor, chunk: int = 1 << 20) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian conditional of every entity's state given the other side.

    ``entity[n]`` is the entity of observation ``n``, ``design[n]`` its row ``z`` (k,)
    and ``target[n]`` its target ``t``; the state ``x`` has prior ``N(mean0, prec0^-1)``
    (``mean0`` of shape (k,) or one row per entity)
    and ``t ~ N(<z, x>, 1/alpha)`` (``alpha`` a number or one precision per observation).
    Returns ``(mean, chol)``: the posterior means
    (n_entities, k) and the lower Cholesky factors of the posterior precisions.
    """
    k = design.shape[1]
    prec = prec0.expand(n_entities, k, k).clone()
    rhs = (mean0 @ prec0).expand(n_entities, k).clone()  # prec0 is symmetric
    for s in range(0, len(entity), chunk):
        e, z, t = entity[s:s + chunk], design[s:s + chunk], target[s:s + chunk]
        a = alpha[s:s + chunk, None] if isinstance(alpha, torch.Tensor) else alpha
        az = a * z
        prec.index_add_(0, e, az[:, :, None] * z[:, None, :])
        rhs.index_add_(0, e, az * t[:, None])
    chol = torch.linalg.cholesky(prec)
    mean = torch.cholesky_solve(rhs[:, :, None], chol)[:, :, 0]
    return mean, chol


def side_conditional(entity: torch.Tensor, other: torch.Tensor, other_states: torch.Tensor,
                     ratings: torch.Tensor, mu: float, n_entities: int,
                     prec_obs: float | torch.Tensor, mean0: torch.Tensor, prec0: torch.Tensor,
                     chunk: int = 1 << 20) -> tuple[torch.Tensor, torch.Tensor]:
    """One side's conditional (:func:`conditional`) given the other side's states.

    For users: ``entity = users``, ``other = movies``, ``other_states`` rows ``[q_i, b_i]``;
    each rating gives the design row ``z = [q_i, 1]`` (the 1 meets ``b_u``) and the target
    ``t = r - mu - b_i``. Movies are the same with the roles swapped.
    """
    design = _with_one(other_states[:, :-1])[other]
    target = ratings - mu - other_states[other, -1]
    return conditional(entity, design, target, n_entities, prec_obs, mean0, prec0, chunk)


def draw(mean: torch.Tensor, chol: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """``mean + L^-T z`` with ``z ~ N(0, I)``: a draw from ``N(mean, (L L^T)^-1)``."""
    z = torch.randn(mean.shape, generator=gen, device=mean.device, dtype=mean.dtype)
    return mean + torch.linalg.solve_triangular(chol.mT, z[:, :, None], upper=True)[:, :, 0]


def _gamma_scales(weighted_sq: torch.Tensor, entity: torch.Tensor, n_entities: int,
                  shape: float, rng: np.random.Generator) -> torch.Tensor:
    """Per-entity noise scales from their Gamma conditionals: prior Gamma(shape, shape),
    ``weighted_sq[n]`` = the other precision factors times observation n's squared error."""
    count = torch.bincount(entity, minlength=n_entities).double().cpu().numpy()
    ss = torch.zeros(n_entities, dtype=torch.float64, device=entity.device)
    ss.index_add_(0, entity, weighted_sq)
    draws = rng.gamma(shape + count / 2) / (shape + ss.cpu().numpy() / 2)
    return torch.as_tensor(draws, device=entity.device)


class SideLink:
    """Side information on one side (Macau-style BPMF): the prior mean of entity ``e`` is
    ``m + B^T f_e`` with ``f_e`` a fixed sparse feature row and the link ``B``
    (n_features, k) sampled each sweep from its matrix-normal conditional
    ``MN(A^-1 F^T (X - m), A^-1, Lambda^-1)``, ``A = F^T F + lambda I``.

    Here ``f_e`` is the implicit feedback of SVD++: for a user the movies rated in training,
    for a movie the users who rated it, scaled by ``count^-1/2``. ``A`` is dense
    (n_features^2), built and factorised once: fine for thousands of features, not for
    MovieLens 25M's 59k movies (which would need conjugate gradients).
    """

    def __init__(self, entity: np.ndarray, feature: np.ndarray, n_entities: int,
                 n_features: int, reg: float, device: torch.device, dtype: torch.dtype):
        pairs = np.unique(np.asarray(entity, np.int64) * n_features + feature)
        e, f = np.divmod(pairs, n_features)
        count = np.bincount(e, minlength=n_entities).astype(np.float64)
        val = 1.0 / np.sqrt(count[e])
        self.features = torch.sparse_coo_tensor(
            torch.as_tensor(np.stack([e, f])), torch.as_tensor(val),
            (n_entities, n_features), check_invariants=True,
        ).coalesce().to(device=device, dtype=dtype)
        # CSR copies of F and F^T for the per-sweep products (COO's are ~8x slower).
        with warnings.catch_warnings():  # "sparse CSR support is in beta"
            warnings.simplefilter("ignore", UserWarning)
            self.rows = self.features.to_sparse_csr()
            self.columns = self.features.t().coalesce().to_sparse_csr()
        # F^T F by pairs sharing an entity, accumulated as a dense (n_features^2) matrix.
        ft = torch.sparse_coo_tensor(torch.as_tensor(np.stack([f, e])), torch.as_tensor(val),
                                     (n_features, n_entities), check_invariants=True).coalesce()
        dense = torch.sparse.mm(ft, ft.t().to_dense()) + reg * torch.eye(n_features,
                                                                         dtype=torch.float64)
        self.chol = torch.linalg.cholesky(dense).to(device=device, dtype=dtype)
        self.reg = reg
        self.link = torch.zeros((n_features, 0), dtype=dtype, device=device)

    def offsets(self, k: int) -> torch.Tensor:
        """``F B``: each entity's prior-mean offset (zeros before the first link draw)."""
        if self.link.shape[1] != k:
            return torch.zeros((self.features.shape[0], k), dtype=self.chol.dtype,
                               device=self.chol.device)
        return self.rows @ self.link

    def scatter(self) -> tuple[np.ndarray | None, int]:
        """``(lambda B^T B, rows of B)`` for :func:`sample_hyper`."""
        if self.link.shape[1] == 0:
            return None, 0
        b = self.link.double().cpu().numpy()
        return self.reg * (b.T @ b), b.shape[0]

    def sample(self, x: torch.Tensor, mean: torch.Tensor, prec: torch.Tensor,
               gen: torch.Generator) -> None:
        """Draw ``B`` given the states ``x``, the prior mean ``m`` and precision ``Lambda``."""
        rhs = self.columns @ (x - mean)
        centre = torch.cholesky_solve(rhs, self.chol)
        z = torch.randn(centre.shape, generator=gen, device=x.device, dtype=x.dtype)
        lo = torch.linalg.cholesky(prec)
        # Rows: C^-T z has covariance A^-1; columns: z L^-1 has covariance Lambda^-1.
        rows = torch.linalg.solve_triangular(self.chol.mT, z, upper=True)
        self.link = centre + torch.linalg.solve_triangular(lo, rows, upper=False, left=False)


def _with_one(factors: torch.Tensor) -> torch.Tensor:
    """``[factors, 1]``: the design rows the other side sees (the 1 multiplies its bias)."""
    return torch.cat([factors, torch.ones_like(factors[:, :1])], dim=1)


class CompiledSides:
    """Both sides' Gibbs draws on the CPU by :func:`moviegraph.train.als.solve_side`.

    The ratings are grouped by user and by movie once; each draw hands the kernel the
    other side's states, the prior (precision ``Lambda`` and ``Lambda m`` per entity), the
    noise precisions and standard normals from the sampler's ``torch.Generator`` (the same
    numbers :func:`draw` would take, so both paths sample the same chain up to rounding).
    No ``(ratings, k, k)`` temporaries, no Python loop over entities; torch's thread count
    (``train.threads``) is the kernel's.
    """

    def __init__(self, users: np.ndarray, items: np.ndarray, ratings: np.ndarray, mu: float,
                 num_users: int, num_items: int) -> None:
        u = np.asarray(users, np.int64)
        i = np.asarray(items, np.int64)
        r = np.asarray(ratings, np.float64)
        self.u, self.i = u, i
        self.by_user = RatingsBy.build(u, i, num_users)
        self.by_item = RatingsBy.build(i, u, num_items)
        self.resid_user = np.ascontiguousarray(r[self.by_user.order] - mu)
        self.resid_item = np.ascontiguousarray(r[self.by_item.order] - mu)

    def users(self, items: torch.Tensor, alpha: float, scale_u: torch.Tensor,
              scale_v: torch.Tensor, weighted: bool, mean: torch.Tensor, prec: torch.Tensor,
              gen: torch.Generator) -> torch.Tensor:
        """One draw of every user's state given the movies' ``items`` states."""
        return self._side(self.by_user, self.resid_user, items, alpha, scale_u, scale_v,
                          weighted, mean, prec, gen)

    def items(self, users: torch.Tensor, alpha: float, scale_u: torch.Tensor,
              scale_v: torch.Tensor, weighted: bool, mean: torch.Tensor, prec: torch.Tensor,
              gen: torch.Generator) -> torch.Tensor:
        """One draw of every movie's state given the users' ``users`` states."""
        return self._side(self.by_item, self.resid_item, users, alpha, scale_u, scale_v,
                          weighted, mean, prec, gen)

    def _side(self, by: RatingsBy, resid: np.ndarray, other: torch.Tensor, alpha: float,
              scale_u: torch.Tensor, scale_v: torch.Tensor, weighted: bool,
              mean: torch.Tensor, prec: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        n, k = len(by.indptr) - 1, other.shape[1]
        kernel_threads(None)
        weight = np.zeros(0)
        if weighted:  # rating j's precision is alpha * s_u * c_i
            w = (scale_u.double().numpy()[self.u] * scale_v.double().numpy()[self.i])
            weight = np.ascontiguousarray(w[by.order])
        lam = prec.double().numpy()
        rhs = np.ascontiguousarray(np.broadcast_to(mean.double().numpy() @ lam, (n, k)))
        noise = torch.randn((n, k), generator=gen, dtype=other.dtype).double().numpy()
        out = np.empty((n, k))
        failed = solve_side(by.indptr, by.other, resid, weight, float(alpha),
                            np.ascontiguousarray(other.double().numpy()), lam, rhs,
                            np.zeros(k), noise, out)
        if failed:  # a Wishart draw is positive definite: this is a numerical breakdown
            raise FloatingPointError(f"BPMF: {failed} conditional precisions not positive "
                                     "definite")
        return torch.from_numpy(out).to(other.dtype)


@dataclass
class BPMFResult:
    """Posterior summary of :func:`train_bpmf`.

    ``user_samples`` / ``item_samples``: (samples, n, dim + 1) states ``[p, b]`` of the
    averaged sweeps (CPU, empty when not kept); ``eval_predictions``: the posterior-average
    predictions (unclipped) at each ``evaluate`` pair set; ``history``: one dict per sweep.
    """

    global_mean: float
    user_samples: torch.Tensor
    item_samples: torch.Tensor
    eval_predictions: list[np.ndarray]
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    def predict(self, users: np.ndarray, items: np.ndarray,
                clip: tuple[float, float] | None = (1.0, 5.0)) -> np.ndarray:
        """Posterior-average prediction from the kept samples, clipped to ``clip``."""
        if len(self.user_samples) == 0:
            raise ValueError("no samples kept (BPMFConfig.keep_samples=False)")
        u = self.user_samples[:, torch.as_tensor(users, dtype=torch.long)].double()
        v = self.item_samples[:, torch.as_tensor(items, dtype=torch.long)].double()
        pred = (self.global_mean + u[..., -1] + v[..., -1]
                + (u[..., :-1] * v[..., :-1]).sum(-1)).mean(0).numpy()
        return pred if clip is None else np.clip(pred, clip[0], clip[1])


def train_bpmf(users: np.ndarray, items: np.ndarray, ratings: np.ndarray, num_users: int,
               num_items: int, cfg: BPMFConfig | None = None,
               evaluate: list[tuple[np.ndarray, np.ndarray]] | None = None,
               device: torch.device | None = None,
               on_sweep: Callable[[dict[str, float]], None] | None = None,
               compiled: bool | None = None) -> BPMFResult:
    """Gibbs-sample biased MF on dense-index ratings.

    Args:
        users, items, ratings: aligned arrays of the training ratings.
        num_users, num_items: table sizes (indices must be below them).
        cfg: sampler settings.
        evaluate: ``(users, items)`` pair sets whose running posterior-average predictions
            are kept (e.g. validation and test); the first one's truth is not needed here.
        device: defaults to :func:`pick_device` (CUDA when present).
        on_sweep: called with each sweep's record (progress, validation scores).
        compiled: draw with the compiled kernel (:class:`CompiledSides`, CPU only) or the
            batched torch path; None: the kernel on the CPU, torch on CUDA.
    """
    cfg = cfg or BPMFConfig()
    device = device or pick_device()
    dtype = torch.float64 if cfg.dtype == "float64" else torch.float32
    if len(ratings) == 0:
        raise ValueError("no training ratings")
    if int(np.max(users)) >= num_users or int(np.max(items)) >= num_items:
        raise ValueError("user or item index out of range of num_users / num_items")
    t0 = time.perf_counter()
    gen = torch.Generator(device=device)
    gen.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    u = torch.as_tensor(np.asarray(users), dtype=torch.long, device=device)
    i = torch.as_tensor(np.asarray(items), dtype=torch.long, device=device)
    r = torch.as_tensor(np.asarray(ratings), dtype=dtype, device=device)
    mu = float(r.mean())
    k = cfg.dim + 1
    x = cfg.init_std * torch.randn((num_users, k), generator=gen, device=device, dtype=dtype)
    y = cfg.init_std * torch.randn((num_items, k), generator=gen, device=device, dtype=dtype)
    alpha = 2.0 if cfg.alpha is None else cfg.alpha
    scale_u = torch.ones(num_users, dtype=dtype, device=device)
    scale_v = torch.ones(num_items, dtype=dtype, device=device)
    pairs = [(torch.as_tensor(np.asarray(a), dtype=torch.long, device=device),
              torch.as_tensor(np.asarray(b), dtype=torch.long, device=device))
             for a, b in (evaluate or [])]
    sums = [torch.zeros(len(a), dtype=torch.float64, device=device) for a, _ in pairs]
    kept_u: list[torch.Tensor] = []
    kept_v: list[torch.Tensor] = []
    history: list[dict[str, float]] = []

    def as_t(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=dtype, device=device)

    side_u = side_v = None
    if cfg.side != "none":
        side_u = SideLink(users, items, num_users, num_items, cfg.side_reg, device, dtype)
    if cfg.side == "both":
        side_v = SideLink(items, users, num_items, num_users, cfg.side_reg, device, dtype)

    def prior(states: torch.Tensor, side: SideLink | None) -> tuple[torch.Tensor, ...]:
        # Hyperparameters given the current states (k x k: numpy, float64), then the link.
        off = side.offsets(k) if side is not None else 0.0
        extra, rows = side.scatter() if side is not None else (None, 0)
        m_np, lam_np = sample_hyper((states - off).double().cpu().numpy(), cfg.beta0, rng,
                                    extra, rows)
        m, lam = as_t(m_np), as_t(lam_np)
        if side is None:
            return m, lam
        side.sample(states, m, lam, gen)
        return m + side.offsets(k), lam

    if compiled is None:
        compiled = device.type == "cpu"
    if compiled and device.type != "cpu":
        raise ValueError("the compiled BPMF kernel runs on the CPU only")
    sides = CompiledSides(users, items, ratings, mu, num_users, num_items) if compiled \
        else None
    # The hyperparameters' k x k numpy algebra is tiny: BLAS threads would only spin
    # against the kernel's and torch's threads.
    with threadpool_limits(limits=1, user_api="blas"):
        for sweep in range(cfg.burn_in + cfg.samples):
            mean_u, lam_u = prior(x, side_u)
            mean_v, lam_v = prior(y, side_v)
            if sides is not None:  # CPU: the compiled per-entity kernel shared with ALS
                weighted = cfg.noise != "global"
                x = sides.users(y, alpha, scale_u, scale_v, weighted, mean_u, lam_u, gen)
                y = sides.items(x, alpha, scale_u, scale_v, weighted, mean_v, lam_v, gen)
            else:  # batched scatter + batched Cholesky (any device)
                prec_obs = alpha * scale_u[u] * scale_v[i]  # each rating's noise precision
                mean, chol = side_conditional(u, i, y, r, mu, num_users, prec_obs, mean_u, lam_u,
                                              cfg.chunk)
                x = draw(mean, chol, gen)
                mean, chol = side_conditional(i, u, x, r, mu, num_items, prec_obs, mean_v, lam_v,
                                              cfg.chunk)
                y = draw(mean, chol, gen)
            resid = r - (mu + x[u, -1] + y[i, -1] + (x[u, :-1] * y[i, :-1]).sum(-1))
            sq = resid.double() ** 2
            sse = float(sq.sum())
            if cfg.noise != "global":  # per-user (then per-movie) scales, Gamma conditionals
                scale_u = _gamma_scales(sq * alpha * scale_v[i].double(), u, num_users,
                                        cfg.noise_shape, rng).to(dtype)
            if cfg.noise == "user_movie":
                scale_v = _gamma_scales(sq * alpha * scale_u[u].double(), i, num_items,
                                        cfg.noise_shape, rng).to(dtype)
            if cfg.alpha is None:
                wsse = float((sq * (scale_u[u] * scale_v[i]).double()).sum())
                alpha = float(rng.gamma(cfg.a0 + len(r) / 2, 1.0 / (cfg.b0 + wsse / 2)))
            rec = {"sweep": float(sweep), "train_rmse": (sse / len(r)) ** 0.5, "alpha": alpha}
            if sweep >= cfg.burn_in:
                for s, (a, b) in zip(sums, pairs, strict=True):
                    s += (mu + x[a, -1] + y[b, -1] + (x[a, :-1] * y[b, :-1]).sum(-1)).double()
                if cfg.keep_samples:
                    kept_u.append(x.float().cpu())
                    kept_v.append(y.float().cpu())
            history.append(rec)
            if on_sweep is not None:
                on_sweep(rec)
    n_avg = cfg.samples
    empty = torch.zeros((0, 0, k))
    return BPMFResult(
        global_mean=mu,
        user_samples=torch.stack(kept_u) if kept_u else empty,
        item_samples=torch.stack(kept_v) if kept_v else empty,
        eval_predictions=[(s / n_avg).cpu().numpy() for s in sums],
        history=history, seconds=time.perf_counter() - t0)


def interaction_vectors(result: BPMFResult, rank: int | None = None
                        ) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """User and movie matrices whose dot product is the posterior average of ``<p_u, q_i>``.

    With S kept samples that average is ``A B^T``, ``A = [p_1 .. p_S] / S`` and
    ``B = [q_1 .. q_S]`` (samples side by side). Thin QR of both and an SVD of the small
    core give the exact factorisation ``(Q_A U sqrt(s)) (Q_B W sqrt(s))^T``, truncated to
    ``rank`` singular values (None: all above 1e-9 of the largest). Returns
    ``(user_vectors, movie_vectors, info)``; ``info["rank"]`` is the width kept and
    ``info["dropped_energy"]`` the share of the squared singular values dropped (the
    relative squared Frobenius error of the truncation). The biases' posterior means are
    in :func:`posterior_biases`; ``mu + b_u + b_i + user . movie`` is then the posterior
    average prediction.
    """
    us, vs = result.user_samples.double(), result.item_samples.double()
    s = us.shape[0]
    if s == 0:
        raise ValueError("no samples kept (BPMFConfig.keep_samples=False)")
    a = (us[..., :-1] / s).permute(1, 0, 2).reshape(us.shape[1], -1)
    b = vs[..., :-1].permute(1, 0, 2).reshape(vs.shape[1], -1)
    qa, ra = torch.linalg.qr(a)
    qb, rb = torch.linalg.qr(b)
    uu, sv, wh = torch.linalg.svd(ra @ rb.T)
    keep = int((sv > sv[0] * 1e-9).sum()) if rank is None else min(rank, len(sv))
    root = sv[:keep].sqrt()
    user = (qa @ uu[:, :keep]) * root
    movie = (qb @ wh[:keep].T) * root
    energy = float((sv[keep:] ** 2).sum() / (sv ** 2).sum()) if float(sv[0]) > 0 else 0.0
    return user.numpy(), movie.numpy(), {"rank": float(keep), "dropped_energy": energy}


def posterior_biases(result: BPMFResult) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means of ``(b_u, b_i)`` over the kept samples (float64)."""
    if len(result.user_samples) == 0:
        raise ValueError("no samples kept (BPMFConfig.keep_samples=False)")
    return (result.user_samples[..., -1].double().mean(0).numpy(),
            result.item_samples[..., -1].double().mean(0).numpy())
