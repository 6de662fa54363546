"""Biased matrix factorisation on explicit ratings.

``rating(u, i) = mu + b_u + b_i + <p_u, q_i>``, trained by mini-batch (or full-batch)
gradient descent on squared error with L2 penalties, separate for biases and factors.
The penalty is applied per observed rating (as in Funk's SGD), so users and movies with
many ratings are shrunk in proportion to the evidence they carry.

With ``MFConfig(implicit=True)`` the user vector gains SVD++'s implicit-feedback term
(Koren 2008): ``p_u + |N(u)|^-1/2 sum_{j in N(u)} y_j``, ``N(u)`` the movies ``u`` rated in
the *training* ratings (which movies, not how). A user is then also described by what they
chose to rate, which on ml-100k's rating split lowers test RMSE from 0.907 to 0.901.

With ``MFConfig(day_bias=True)`` (timeSVD++'s ``b_{u,t}``, Koren 2009) each (user, day)
seen in training gets its own bias: a user's mood or rating scale on the day of a session.
Pairs not seen in training (a day with no training ratings) get 0, so the term needs the
day of the rating at prediction time (``days=``). On ml-100k's rating split, held-out
ratings mostly share a day with training ratings of the same user, and this term is the
largest single gain with ``implicit=True`` (test RMSE 0.901 -> 0.897; see
``benchmarks/quality_ml100k.py``).

Inputs are dense integer indices (``0 <= user < num_users``); mapping raw ids to indices
is the caller's job.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from moviegraph.config.models import MFConfig
from moviegraph.protocol.metrics import rmse
from moviegraph.train.device import pick_device
from moviegraph.train.loop import FitResult, LoopConfig, epoch_generator, fit


def rated_sets(
    users: np.ndarray, items: np.ndarray, num_users: int
) -> tuple[np.ndarray, np.ndarray]:
    """CSR ``(indptr, indices)`` of the distinct movies each user rated (SVD++'s ``N(u)``)."""
    pairs = np.unique(np.asarray(users, np.int64) * (int(np.max(items)) + 1) + items)
    u, i = np.divmod(pairs, int(np.max(items)) + 1)
    indptr = np.zeros(num_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(u, minlength=num_users), out=indptr[1:])
    return indptr, i.astype(np.int64)


def day_keys(users: np.ndarray | torch.Tensor, days: np.ndarray | torch.Tensor):
    """int64 code ``user * 2**32 + day`` of (user, day) pairs (days must be >= 0)."""
    if isinstance(users, torch.Tensor):
        return users.long() * (1 << 32) + torch.as_tensor(days, device=users.device).long()
    return np.asarray(users, np.int64) * (1 << 32) + np.asarray(days, np.int64)


class BiasedMF(nn.Module):
    """``mu + b_u + b_i + <p_u, q_i>``; with ``history``, SVD++'s ``p_u + |N(u)|^-1/2 sum y_j``.

    ``history`` is :func:`rated_sets`' ``(indptr, indices)`` of the training ratings;
    ``days_seen`` the sorted :func:`day_keys` of training (user, day) pairs, each with a bias.
    """

    global_mean: torch.Tensor  # buffers (declared for type checkers)
    history_indptr: torch.Tensor
    history_items: torch.Tensor
    days_seen: torch.Tensor

    def __init__(
        self,
        num_users: int,
        num_items: int,
        dim: int,
        global_mean: float,
        init_std: float,
        history: tuple[np.ndarray, np.ndarray] | None = None,
        days_seen: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.user_factors = nn.Embedding(num_users, dim)
        self.item_factors = nn.Embedding(num_items, dim)
        self.user_bias = nn.Embedding(num_users, 1)
        self.item_bias = nn.Embedding(num_items, 1)
        self.register_buffer("global_mean", torch.tensor(float(global_mean)))
        nn.init.normal_(self.user_factors.weight, std=init_std)
        nn.init.normal_(self.item_factors.weight, std=init_std)
        nn.init.zeros_(self.user_bias.weight)
        nn.init.zeros_(self.item_bias.weight)
        self.implicit_factors: nn.Embedding | None = None
        if history is not None:
            # y_j start at zero: training begins as plain biased MF.
            self.implicit_factors = nn.Embedding(num_items, dim)
            nn.init.zeros_(self.implicit_factors.weight)
            self.register_buffer("history_indptr", torch.as_tensor(history[0], dtype=torch.long))
            self.register_buffer("history_items", torch.as_tensor(history[1], dtype=torch.long))
        self.day_bias: nn.Embedding | None = None
        if days_seen is not None:
            # One extra, never-trained row (0) for pairs unseen in training.
            self.day_bias = nn.Embedding(len(days_seen) + 1, 1)
            nn.init.zeros_(self.day_bias.weight)
            self.register_buffer("days_seen", torch.as_tensor(days_seen, dtype=torch.long))

    def day_terms(self, users: torch.Tensor, days: torch.Tensor | None) -> torch.Tensor:
        """``b_{u,day}`` (0 without a day-bias table, without days, or for unseen pairs)."""
        if self.day_bias is None or days is None:
            return torch.zeros(len(users), device=users.device)
        keys = day_keys(users, days)
        pos = torch.searchsorted(self.days_seen, keys).clamp(max=len(self.days_seen) - 1)
        row = torch.where(self.days_seen[pos] == keys, pos, len(self.days_seen))
        return self.day_bias(row).squeeze(-1)

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        """``p_u``, plus the implicit term when the model has one."""
        p = self.user_factors(users)
        if self.implicit_factors is None:
            return p
        # Pool each distinct user once (a batch repeats users), then spread back.
        uniq, inverse = torch.unique(users, return_inverse=True)
        starts = self.history_indptr[uniq]
        lengths = self.history_indptr[uniq + 1] - starts
        offsets = torch.cumsum(lengths, 0) - lengths
        bag = torch.repeat_interleave(torch.arange(len(uniq), device=users.device), lengths)
        flat = torch.arange(int(lengths.sum()), device=users.device) - offsets[bag] + starts[bag]
        weights = lengths.clamp(min=1).float().rsqrt()[bag]
        pooled = F.embedding_bag(
            self.history_items[flat], self.implicit_factors.weight, offsets,
            mode="sum", per_sample_weights=weights,
        )
        return p + pooled[inverse]

    def forward(
        self, users: torch.Tensor, items: torch.Tensor, days: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Predicted ratings (unclipped) for aligned ``users`` and ``items`` index tensors
        (and ``days``, used by a model with a day-bias table)."""
        dot = (self.user_vectors(users) * self.item_factors(items)).sum(-1)
        return (
            self.global_mean
            + self.user_bias(users).squeeze(-1)
            + self.item_bias(items).squeeze(-1)
            + dot
            + self.day_terms(users, days)
        )

    def penalised_loss(
        self,
        users: torch.Tensor,
        items: torch.Tensor,
        ratings: torch.Tensor,
        reg_factors: float,
        reg_bias: float,
        reg_implicit: float = 0.0,
        days: torch.Tensor | None = None,
        reg_day_bias: float = 0.0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean squared error plus per-rating L2; returns ``(objective, mse)``.

        ``reg_implicit`` weighs ``|y_i|^2`` of each rating's movie (implicit models only),
        ``reg_day_bias`` the (user, day) bias of each rating (day-bias models only).
        """
        p, q = self.user_factors(users), self.item_factors(items)
        bu, bi = self.user_bias(users).squeeze(-1), self.item_bias(items).squeeze(-1)
        pu = p if self.implicit_factors is None else self.user_vectors(users)
        bd = self.day_terms(users, days)
        pred = self.global_mean + bu + bi + (pu * q).sum(-1) + bd
        mse = ((pred - ratings) ** 2).mean()
        penalty = reg_factors * ((p * p).sum(-1) + (q * q).sum(-1)).mean() + reg_bias * (
            (bu * bu) + (bi * bi)
        ).mean()
        if self.implicit_factors is not None and reg_implicit > 0:
            y = self.implicit_factors(items)
            penalty = penalty + reg_implicit * (y * y).sum(-1).mean()
        if self.day_bias is not None and reg_day_bias > 0:
            penalty = penalty + reg_day_bias * (bd * bd).mean()
        return mse + penalty, mse


@dataclass
class MFResult:
    """A trained model and its training record."""

    model: BiasedMF
    fit: FitResult

    def predict(
        self,
        users: np.ndarray,
        items: np.ndarray,
        clip: tuple[float, float] | None = (1.0, 5.0),
        days: np.ndarray | None = None,
    ) -> np.ndarray:
        """Predicted ratings for index arrays, clipped to ``clip`` (EVALUATION.md: [1, 5]);
        ``days`` (same unit as in training) feed a day-bias model's (user, day) term."""
        return predict(self.model, users, items, clip, days=days)


def predict(
    model: BiasedMF,
    users: np.ndarray,
    items: np.ndarray,
    clip: tuple[float, float] | None = (1.0, 5.0),
    batch_size: int = 1 << 16,
    days: np.ndarray | None = None,
) -> np.ndarray:
    """Predicted ratings of ``model`` for aligned index arrays, as float64 numpy."""
    device = model.global_mean.device
    out = np.empty(len(users), dtype=np.float64)
    model.eval()
    with torch.no_grad():
        for s in range(0, len(users), batch_size):
            u = torch.as_tensor(np.array(users[s : s + batch_size]), device=device).long()
            i = torch.as_tensor(np.array(items[s : s + batch_size]), device=device).long()
            d = None
            if days is not None:
                d = torch.as_tensor(np.array(days[s : s + batch_size]), device=device).long()
            out[s : s + len(u)] = model(u, i, d).double().cpu().numpy()
    if clip is not None:
        np.clip(out, clip[0], clip[1], out=out)
    return out


def make_optimizer(model: nn.Module, cfg: MFConfig) -> torch.optim.Optimizer:
    """``cfg.optimizer`` (Adam or plain SGD) over ``model``'s parameters at ``cfg.lr``."""
    if cfg.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=cfg.lr)
    return torch.optim.SGD(model.parameters(), lr=cfg.lr)


def epoch_batches(cfg: MFConfig, epoch: int, n: int,
                  device: torch.device) -> Iterator[torch.Tensor]:
    """The rating indices of each step of ``epoch``: a permutation of ``n`` seeded by
    ``(cfg.seed, epoch)`` (the same in every DDP process) cut into ``cfg.batch_size``."""
    order = torch.randperm(n, generator=epoch_generator(cfg.seed, epoch)).to(device)
    bs = n if cfg.batch_size is None else cfg.batch_size
    for s in range(0, n, bs):
        yield order[s : s + bs]


def descend(opt: torch.optim.Optimizer, objective: torch.Tensor) -> None:
    """One optimiser step on ``objective``."""
    opt.zero_grad(set_to_none=True)
    objective.backward()
    opt.step()


def validation_rmse(model: BiasedMF, val: tuple[np.ndarray, ...]) -> dict[str, float]:
    """``{"val_rmse": ...}`` of ``model`` on ``(users, items, ratings[, days])``."""
    vu, vi, vr = val[:3]
    vd = val[3] if len(val) > 3 else None
    return {"val_rmse": rmse(predict(model, vu, vi, days=vd), vr)}


def train_mf(
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    num_users: int,
    num_items: int,
    cfg: MFConfig | None = None,
    val: tuple[np.ndarray, ...] | None = None,
    loop: LoopConfig | None = None,
    device: torch.device | None = None,
    days: np.ndarray | None = None,
) -> MFResult:
    """Train biased MF on ``(users, items, ratings)`` index/rating arrays.

    Args:
        users, items, ratings: aligned arrays of the training ratings.
        num_users, num_items: table sizes (indices must be below them).
        cfg: model and optimiser settings.
        val: optional ``(users, items, ratings[, days])`` scored each epoch as ``val_rmse``
            (clipped to [1, 5]); with ``loop.monitor="val_rmse"`` it drives early stopping.
        loop: loop settings (epochs default to ``cfg.epochs``).
        device: defaults to :func:`pick_device`.
        days: non-negative integer day of each training rating (e.g. ``ts // 86400``);
            required with ``cfg.day_bias``. ``val`` may then carry a fourth array, its days.
    """
    cfg = cfg or MFConfig()
    if cfg.day_bias and days is None:
        raise ValueError("MFConfig(day_bias=True) needs the days of the ratings")
    device = device or pick_device()
    loop = loop or LoopConfig(epochs=cfg.epochs, unit="rating", desc="mf")
    torch.manual_seed(cfg.seed)
    u_all = torch.as_tensor(np.array(users), dtype=torch.long, device=device)
    i_all = torch.as_tensor(np.array(items), dtype=torch.long, device=device)
    r_all = torch.as_tensor(np.array(ratings), dtype=torch.float32, device=device)
    if len(u_all) == 0:
        raise ValueError("no training ratings")
    if int(u_all.max()) >= num_users or int(i_all.max()) >= num_items:
        raise ValueError("user or item index out of range of num_users / num_items")
    history = rated_sets(users, items, num_users) if cfg.implicit else None
    d_all = None
    days_seen = None
    if cfg.day_bias and days is not None:  # (checked above: day_bias needs days)
        d_all = torch.as_tensor(np.array(days), dtype=torch.long, device=device)
        days_seen = np.unique(day_keys(users, days))
    model = BiasedMF(
        num_users, num_items, cfg.dim, float(r_all.mean()), cfg.init_std, history, days_seen
    ).to(device)
    reg_implicit = 1.0 if cfg.reg_implicit is None else cfg.reg_implicit
    opt = make_optimizer(model, cfg)
    n = len(r_all)

    def run_epoch(epoch: int) -> Iterator[tuple[float, int]]:
        for idx in epoch_batches(cfg, epoch, n, device):
            obj, mse = model.penalised_loss(
                u_all[idx], i_all[idx], r_all[idx], cfg.reg_factors, cfg.reg_bias, reg_implicit,
                None if d_all is None else d_all[idx], cfg.reg_day_bias,
            )
            descend(opt, obj)
            yield float(mse.detach()), len(idx)

    validate = None if val is None else (lambda: validation_rmse(model, val))
    result = fit(model, run_epoch, loop, optimizer=opt, validate=validate)
    return MFResult(model=model, fit=result)
