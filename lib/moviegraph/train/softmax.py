"""Softmax retrieval model: a user tower over the user's train movies, softmax over movies.

The user is the movies they rated in train: their input embeddings pooled (sum scaled by
``1 / sqrt(n)``), beside the mean of those movies' side features (genre multi-hot, release
year bucket one-hot; see :func:`item_side_features`). An MLP maps that to a ``dim``-vector
``u``; a movie ``i`` scores ``<u, w_i> + b_i`` with an output embedding ``w_i`` and bias
``b_i``, trained with a softmax over the catalogue.

Training predicts each user's train movies from the others (leave-some-out inside train):
every epoch, each train movie of a user is hidden with probability ``holdout``; the tower
sees the rest and the softmax is asked for the hidden ones (``target="held_out"``) or for
all of them (``target="all"``, the denoising-autoencoder variant). Test movies are never
seen. The loss is the mean over a user's targets of ``-log softmax``.

``hide="recent"`` (needs the rating times) hides instead each user's most recent train
movies, past a cut drawn per user and epoch uniformly in ``[1 - 2 holdout, 1]`` of their
time-ordered history: the model learns to predict what comes next from what came before,
which is what the temporal ranking split asks of it.

``loss="full"`` normalises over every movie (fine at 1.7k-10k movies); ``loss="sampled"``
normalises over the target and ``num_sampled`` movies drawn per batch from the training
popularity ``^ 0.75``, with the ``log Q`` correction (Bengio & Senecal 2008; Yi et al.
2019), for catalogues where a full softmax per step is too dear.

Inputs are dense positions (users ``0..n_users-1``, movies ``0..n_items-1``) in a CSR user x
movie matrix; only which entries are stored matters.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from moviegraph.config.models import SoftmaxConfig
from moviegraph.train.device import pick_device
from moviegraph.train.loop import FitResult, LoopConfig, epoch_generator, fit


def item_side_features(
    genres: np.ndarray, years: np.ndarray | None = None, bucket_width: int = 10
) -> np.ndarray:
    """Per-movie side features: genre multi-hot, then a one-hot release-year bucket.

    Args:
        genres: bool (n_items, n_genres) membership.
        years: release years (n_items,), NaN or <= 0 where unknown (no bucket set).
        bucket_width: years per bucket; buckets span the known years.

    Returns:
        float32 (n_items, n_genres + n_buckets).
    """
    g = np.asarray(genres, dtype=np.float32)
    if years is None:
        return g
    y = np.asarray(years, dtype=np.float64)
    known = np.isfinite(y) & (y > 0)
    if not known.any():
        return g
    lo = int(np.min(y[known])) // bucket_width
    bucket = np.where(known, np.floor(np.where(known, y, 0) / bucket_width) - lo, -1).astype(
        np.int64
    )
    onehot = np.zeros((g.shape[0], int(bucket.max()) + 1), dtype=np.float32)
    onehot[np.flatnonzero(known), bucket[known]] = 1.0
    return np.hstack([g, onehot])


class SoftmaxModel(nn.Module):
    """User tower (pooled movie embeddings + pooled side features -> MLP) and output layer."""

    features: torch.Tensor  # buffer: side features per movie (n_items, f)

    def __init__(
        self, n_items: int, cfg: SoftmaxConfig, item_features: np.ndarray | None
    ) -> None:
        super().__init__()
        self.item_in = nn.Embedding(n_items, cfg.input_dim)
        nn.init.normal_(self.item_in.weight, std=cfg.input_dim**-0.5)
        feats = np.zeros((n_items, 0), np.float32) if item_features is None else item_features
        self.register_buffer("features", torch.as_tensor(np.asarray(feats, np.float32)))
        layers: list[nn.Module] = [nn.Dropout(cfg.dropout)]
        width = cfg.input_dim + self.features.shape[1]
        for h in cfg.hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(cfg.dropout)]
            width = h
        layers.append(nn.Linear(width, cfg.dim))
        self.tower = nn.Sequential(*layers)
        self.item_out = nn.Embedding(n_items, cfg.dim)
        nn.init.normal_(self.item_out.weight, std=cfg.dim**-0.5)
        self.item_bias = nn.Parameter(torch.zeros(n_items))

    def user_vectors(self, rows: torch.Tensor, items: torch.Tensor, n_rows: int) -> torch.Tensor:
        """Tower output for ``n_rows`` users given as (row, item) input pairs."""
        count = torch.bincount(rows, minlength=n_rows).clamp(min=1).float()
        # sum / sqrt(n): keeps long and short histories on a similar scale without
        # washing out what a long history says (a plain mean would).
        w = count[rows].rsqrt().unsqueeze(1)
        pooled = torch.zeros(n_rows, self.item_in.embedding_dim, device=items.device)
        pooled.index_add_(0, rows, self.item_in(items) * w)
        parts = [pooled]
        if self.features.shape[1]:
            side = torch.zeros(n_rows, self.features.shape[1], device=items.device)
            side.index_add_(0, rows, self.features[items])
            parts.append(side / count.unsqueeze(1))
        return self.tower(torch.cat(parts, dim=1))

    def logits(self, users: torch.Tensor) -> torch.Tensor:
        """Full scores ``(n_users, n_items)`` of tower outputs ``users``."""
        return users @ self.item_out.weight.T + self.item_bias


def _csr_rows(
    indptr: torch.Tensor, indices: torch.Tensor, users: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(row-in-batch, item) pairs of the CSR rows ``users``."""
    starts, ends = indptr[users], indptr[users + 1]
    lengths = ends - starts
    rows = torch.repeat_interleave(torch.arange(len(users), device=users.device), lengths)
    offsets = torch.cumsum(lengths, 0) - lengths
    pos = torch.arange(int(lengths.sum()), device=users.device) - offsets[rows] + starts[rows]
    return rows, indices[pos]


def time_ranks(train: sp.csr_matrix, times: sp.spmatrix) -> np.ndarray:
    """Per stored entry of ``train``: its position in the user's (time, movie) order, scaled
    to ``[0, 1)`` (``rank / n``), aligned with ``train.indices``."""
    t = sp.csr_matrix(times)
    t.sort_indices()
    if t.shape != train.shape or not np.array_equal(t.indices, train.indices) or not (
        np.array_equal(t.indptr, train.indptr)
    ):
        raise ValueError("times must have the same stored entries as train")
    rows = np.repeat(np.arange(train.shape[0]), np.diff(train.indptr))
    order = np.lexsort((train.indices, t.data, rows))
    n = np.diff(train.indptr)
    rank = np.empty(len(order), dtype=np.float64)
    rank[order] = np.arange(len(order)) - np.repeat(train.indptr[:-1], n)
    return rank / np.maximum(n[rows], 1)


@dataclass
class SoftmaxResult:
    """A trained model, the train matrix its users were built from, and the fit record."""

    model: SoftmaxModel
    fit: FitResult
    indptr: torch.Tensor
    indices: torch.Tensor

    def user_vectors(self, users: np.ndarray | None = None) -> np.ndarray:
        """Tower outputs (float32) of the given user positions (default all), from all of
        their train movies; with :meth:`item_vectors` (``with_bias=True``) the dot product is
        the model's score."""
        n = len(self.indptr) - 1
        u = torch.arange(n) if users is None else torch.as_tensor(np.asarray(users)).long()
        u = u.to(self.indptr.device)
        self.model.eval()
        with torch.no_grad():
            rows, items = _csr_rows(self.indptr, self.indices, u)
            vec = self.model.user_vectors(rows, items, len(u))
            ones = torch.ones(len(u), 1, device=vec.device)
            return torch.cat([vec, ones], 1).cpu().numpy()

    def item_vectors(self, with_bias: bool = True) -> np.ndarray:
        """Output embeddings (float32); ``with_bias`` appends the bias as a last column,
        matching the constant 1 of :meth:`user_vectors`."""
        w = self.model.item_out.weight.detach()
        if with_bias:
            w = torch.cat([w, self.model.item_bias.detach().unsqueeze(1)], 1)
        return w.cpu().numpy()

    def __call__(self, users: np.ndarray) -> np.ndarray:
        """Scores (len(users), n_items): the score function of ``ranking_metrics``."""
        return self.user_vectors(users) @ self.item_vectors(with_bias=True).T


def train_softmax(
    train: sp.spmatrix,
    cfg: SoftmaxConfig | None = None,
    item_features: np.ndarray | None = None,
    loop: LoopConfig | None = None,
    device: torch.device | None = None,
    validate=None,
    times: sp.spmatrix | None = None,
) -> SoftmaxResult:
    """Train the softmax retrieval model on a user x movie train matrix.

    Args:
        train: CSR (n_users, n_items); stored entries are the user's train movies.
        cfg: hyper-parameters.
        item_features: optional (n_items, f) side features pooled into the tower
            (:func:`item_side_features`).
        loop: loop settings (epochs default to ``cfg.epochs``).
        device: defaults to :func:`pick_device`.
        validate: optional ``f(result: SoftmaxResult) -> dict`` called after each epoch.
        times: CSR like ``train`` holding each rating's time (any increasing number);
            required by ``hide="recent"``.
    """
    cfg = cfg or SoftmaxConfig()
    device = device or pick_device()
    loop = loop or LoopConfig(epochs=cfg.epochs, unit="user", desc="softmax")
    x = sp.csr_matrix(train)
    x.sort_indices()
    n_items = x.shape[1]
    if item_features is not None and len(item_features) != n_items:
        raise ValueError(f"{len(item_features)} feature rows for {n_items} items")
    torch.manual_seed(cfg.seed)
    model = SoftmaxModel(n_items, cfg, item_features).to(device)
    indptr = torch.as_tensor(x.indptr.astype(np.int64), device=device)
    indices = torch.as_tensor(x.indices.astype(np.int64), device=device)
    active = torch.as_tensor(np.flatnonzero(np.diff(x.indptr) > 0), device=device)
    recency = None
    if cfg.hide == "recent":
        if times is None:
            raise ValueError("hide='recent' needs times")
        recency = torch.as_tensor(time_ranks(x, times), dtype=torch.float32, device=device)
    popularity = np.bincount(x.indices, minlength=n_items).astype(np.float64)
    weights = popularity**0.75
    q = torch.as_tensor(weights / weights.sum(), dtype=torch.float32, device=device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    result = SoftmaxResult(model=model, fit=FitResult(), indptr=indptr, indices=indices)

    def batch_loss(users: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        rows, items = _csr_rows(indptr, indices, users)
        if recency is None:
            hidden = torch.rand(len(items), generator=g, device=device) < cfg.holdout
        else:
            cut = 1 - 2 * cfg.holdout * torch.rand(len(users), generator=g, device=device)
            _, flat = _csr_rows(indptr, torch.arange(len(indices), device=device), users)
            hidden = recency[flat] >= cut[rows]
        vec = model.user_vectors(rows[~hidden], items[~hidden], len(users))
        t_rows, t_items = (rows[hidden], items[hidden]) if cfg.target == "held_out" else (
            rows, items)
        n_t = torch.bincount(t_rows, minlength=len(users)).clamp(min=1).float()
        w = 1.0 / n_t[t_rows]  # each user weighs the same, whatever their history length
        if cfg.loss == "full":
            logp = torch.log_softmax(model.logits(vec), dim=1)
            nll = -logp[t_rows, t_items]
        else:
            neg = torch.multinomial(q, cfg.num_sampled, replacement=True, generator=g)
            u = vec[t_rows]
            pos = (u * model.item_out(t_items)).sum(1) + model.item_bias[t_items]
            negs = vec @ model.item_out(neg).T + model.item_bias[neg]
            # log Q correction: logits minus log of the expected number of draws.
            pos = pos - torch.log(q[t_items] * cfg.num_sampled)
            negs = (negs - torch.log(q[neg] * cfg.num_sampled))[t_rows]
            negs = negs.masked_fill(neg.unsqueeze(0) == t_items.unsqueeze(1), float("-inf"))
            nll = torch.logsumexp(torch.cat([pos.unsqueeze(1), negs], 1), 1) - pos
        return (nll * w).sum() / len(users)

    def run_epoch(epoch: int) -> Iterator[tuple[float, int]]:
        g = epoch_generator(cfg.seed, epoch, device)
        order = active[torch.randperm(len(active), generator=g, device=device)]
        for s in range(0, len(order), cfg.batch_size):
            users = order[s : s + cfg.batch_size]
            loss = batch_loss(users, g)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            yield float(loss.detach()), len(users)

    val = None if validate is None else (lambda: validate(result))
    result.fit = fit(model, run_epoch, loop, optimizer=opt, validate=val)
    return result
