"""A user tower trained over frozen item vectors: an embedding model's own ranking scorer.

Why: EVALUATION.md scores item-embedding models by summed cosine, which knows neither how
popular a movie is nor which directions of the embedding space matter for what a user
rates next. node2vec vectors rank badly under it (see :mod:`moviegraph.train.scorers`).
The vectors are kept as they are (frozen); what is learned is how to read them:

    m = mean of the unit vectors of the user's train movies
    u = MLP(m) + a * m                           (d -> hidden -> d; ``residual``: learned a)
    score(u, i) = <u, e_i> + b_i                 (e_i frozen, unit)

With ``MLP = 0``, ``a = 1`` and ``b = 0`` this is the mean-cosine ranking of EVALUATION.md,
so training starts from a space that contains the plain rule.

trained Mult-DAE style (Liang et al. 2018): every step each input movie is dropped with
probability ``dropout`` before pooling, and a full softmax over the catalogue is asked for
the user's train movies (``target="all"``) or only for the dropped ones
(``target="dropped"``). Only ``MLP``, ``a`` and ``b`` are trained (about
``2 d hidden + n_items`` parameters), so the ranking still comes from the item vectors:
a better embedding ranks better.

Tuning never looks at test: :func:`fit_tower` cuts a validation part out of the matrix
it is given, picks the number of epochs by validation Recall@k with early stopping, then
refits on the whole matrix for that many epochs. With rating times the cut is temporal
(:func:`temporal_cut`: each user's last 20% of train, EVALUATION.md's validation cut), so
validation asks the question the test asks (what comes next); without times it is a seeded
random cut (:func:`random_cut`), which asks an easier one (validation Recall@20 ~0.4 against
~0.2 on the temporal test on ml-100k) and so tends to pick more epochs than pay off.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from moviegraph.protocol.metrics import binarize, normalize_rows, ranking_metrics
from moviegraph.protocol.splits import ranking_split
from moviegraph.train.device import pick_device
from moviegraph.train.loop import epoch_generator


@dataclass(frozen=True)
class TowerConfig:
    """Hyper-parameters of :func:`train_tower` / :func:`fit_tower`.

    Attributes:
        hidden: width of the tower's hidden layer (tanh).
        residual: adds a learned multiple of the pooled input to the tower output.
        item_hidden: > 0 adds an item-side residual MLP ``e + MLP(e)`` of this width.
        dropout: probability that an input movie is dropped in a step (Mult-DAE noise).
        target: ``"all"`` (predict every train movie) or ``"dropped"`` (only hidden ones).
        lr, weight_decay: AdamW settings.
        epochs: maximum passes over the users.
        patience: :func:`fit_tower` stops after this many epochs without a better
            validation Recall@k.
        batch_size: users per step.
        val_fraction: share of each user's rated movies cut out for validation.
        k: cut-off of the validation Recall.
        seed: seeds initialisation, every draw, and the validation cut.
    """

    # Chosen on the random validation cut (ml-100k, node2vec vectors of the top-15-PMI
    # graph): residual + dropout 0.5 + weight decay 0.01 gave 0.407 validation Recall@20,
    # no residual / dropout 0.3 0.403, hidden 256 / dropout 0.5 (q 0.25 graph) 0.355.
    hidden: int = 512
    item_hidden: int = 0
    residual: bool = True
    dropout: float = 0.5
    target: str = "all"
    lr: float = 2e-3
    weight_decay: float = 0.01
    epochs: int = 100
    patience: int = 8
    batch_size: int = 128
    val_fraction: float = 0.2
    k: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        if self.hidden < 1 or self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            raise ValueError("hidden, epochs, batch_size and patience must be >= 1")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.target not in ("all", "dropped"):
            raise ValueError(f"target must be 'all' or 'dropped', got {self.target!r}")
        if self.target == "dropped" and self.dropout == 0:
            raise ValueError("target='dropped' needs dropout > 0")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")


class FrozenItemTower(nn.Module):
    """``score = MLP(mean of input unit vectors) . e_i + b_i`` with frozen unit ``e``."""

    items: torch.Tensor  # buffer: the frozen unit item vectors

    def __init__(self, item_vectors: np.ndarray, hidden: int, item_hidden: int = 0,
                 residual: bool = False) -> None:
        super().__init__()
        # residual: u = a * pooled + MLP(pooled); a = 1, MLP = 0 is mean cosine exactly.
        self.skip = nn.Parameter(torch.ones(1)) if residual else None
        unit = normalize_rows(np.asarray(item_vectors, np.float64)).astype(np.float32)
        self.register_buffer("items", torch.as_tensor(unit))
        d = unit.shape[1]
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.Tanh(), nn.Linear(hidden, d))
        self.bias = nn.Parameter(torch.zeros(unit.shape[0]))
        # Optional item side: e + MLP(e), still a function of the frozen vector only.
        self.item_mlp = None
        if item_hidden:
            self.item_mlp = nn.Sequential(nn.Linear(d, item_hidden), nn.Tanh(),
                                          nn.Linear(item_hidden, d))

    def item_outputs(self) -> torch.Tensor:
        """Item side of the dot product: the frozen unit vectors, or ``e + MLP(e)``."""
        if self.item_mlp is None:
            return self.items
        return self.items + self.item_mlp(self.items)

    def user_vectors(self, inputs: torch.Tensor) -> torch.Tensor:
        """Tower outputs of a dense (b, n_items) 0/1 input batch."""
        count = inputs.sum(1, keepdim=True).clamp(min=1.0)
        pooled = inputs @ self.items / count
        out = self.mlp(pooled)
        return out if self.skip is None else out + self.skip * pooled

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Logits (b, n_items)."""
        return self.user_vectors(inputs) @ self.item_outputs().T + self.bias


def random_cut(
    train: sp.spmatrix, fraction: float, seed: int
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Split each user's stored entries into fit and validation parts (seeded, no times).

    Each user with at least two entries gives ``max(1, floor(fraction * n))`` of them, drawn
    uniformly, to validation; values (ratings) are kept, so validation relevance (>= 4)
    works as for test.
    """
    x = sp.csr_matrix(train, dtype=np.float64)
    x.sort_indices()
    n = np.diff(x.indptr)
    rows = np.repeat(np.arange(x.shape[0]), n)
    key = np.random.default_rng(seed).random(len(rows))
    order = np.lexsort((key, rows))  # per user, a random order of their entries
    rank = np.empty(len(rows), np.int64)
    rank[order] = np.arange(len(rows)) - np.repeat(x.indptr[:-1], n)
    n_val = np.where(n >= 2, np.maximum(1, np.floor(fraction * n).astype(np.int64)), 0)
    val = rank < n_val[rows]

    def part(mask: np.ndarray) -> sp.csr_matrix:
        m = sp.csr_matrix((x.data[mask], (rows[mask], x.indices[mask])), shape=x.shape)
        m.sort_indices()
        return m

    return part(~val), part(val)


def temporal_cut(
    train: sp.spmatrix, times: sp.spmatrix, test_fraction_inverse: int = 5
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Split each user's stored entries into fit and validation parts by time.

    The ranking split's rule on ``train`` (EVALUATION.md; ``validation_cut`` of
    :mod:`moviegraph.protocol.splits`): per user, the last ``max(1, n // 5)`` entries by
    (time, column) go to validation. ``times`` must store a value at exactly the entries
    of ``train`` (explicit zeros count as stored).
    """
    fit, val, _ = temporal_parts(train, times, test_fraction_inverse)
    return fit, val


def temporal_parts(
    train: sp.spmatrix, times: sp.spmatrix, test_fraction_inverse: int = 5
) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]:
    """:func:`temporal_cut` plus the times of the fit part, ``(fit, validation, fit_times)``
    (explicit zeros kept, so the fit part can be cut again)."""
    x = sp.csr_matrix(train, dtype=np.float64, copy=True)
    t = sp.csr_matrix(times, dtype=np.float64, copy=True)
    x.sort_indices()
    t.sort_indices()
    if (x.shape != t.shape or not np.array_equal(x.indptr, t.indptr)
            or not np.array_equal(x.indices, t.indices)):
        raise ValueError("times must store a value at exactly the entries of train")
    rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
    val = ranking_split(rows, x.indices, t.data, test_fraction_inverse)

    def part(values: np.ndarray, mask: np.ndarray) -> sp.csr_matrix:
        # Built from CSR arrays, not COO: stored zeros (a time of 0) stay stored.
        counts = np.bincount(rows[mask], minlength=x.shape[0])
        indptr = np.r_[0, np.cumsum(counts)]
        return sp.csr_matrix((values[mask], x.indices[mask], indptr), shape=x.shape)

    return part(x.data, ~val), part(x.data, val), part(t.data, ~val)


@dataclass
class TowerResult:
    """A trained tower with the inputs its users are built from, and the training record."""

    model: FrozenItemTower
    inputs: sp.csr_matrix
    losses: list[float] = field(default_factory=list)
    val_recall: list[float] = field(default_factory=list)
    best_epochs: int = 0

    def __call__(self, users: np.ndarray) -> np.ndarray:
        """Scores (len(users), n_items): a score function for ``ranking_metrics``."""
        device = self.model.items.device
        self.model.eval()
        with torch.no_grad():
            x = torch.as_tensor(self.inputs[np.asarray(users)].toarray(), device=device)
            return self.model(x).cpu().numpy()

    def user_vectors(self) -> np.ndarray:
        """Tower outputs of every user, with a constant 1 column matching
        :meth:`item_vectors` (so ``user . item`` is the score)."""
        self.model.eval()
        parts = []
        # Blocks of users: the dense inputs of every user at once would be users x movies.
        step = max(1, 2**24 // max(1, self.inputs.shape[1]))
        with torch.no_grad():
            for s in range(0, self.inputs.shape[0], step):
                x = torch.as_tensor(self.inputs[s : s + step].toarray(),
                                    device=self.model.items.device)
                u = self.model.user_vectors(x)
                parts.append(torch.cat([u, torch.ones(len(u), 1, device=u.device)], 1).cpu())
        return torch.cat(parts).numpy() if parts else np.zeros((0, 0), np.float32)

    def item_vectors(self) -> np.ndarray:
        """Item side of the score (frozen unit vectors, or ``e + MLP(e)``) with the learned
        bias appended as a last column."""
        with torch.no_grad():
            out = self.model.item_outputs()
            return torch.cat([out, self.model.bias.unsqueeze(1)], 1).cpu().numpy()


def train_tower(
    train: sp.spmatrix,
    item_vectors: np.ndarray,
    cfg: TowerConfig,
    epochs: int | None = None,
    validation: sp.spmatrix | None = None,
    device: torch.device | None = None,
) -> TowerResult:
    """Train a :class:`FrozenItemTower` on the stored entries of ``train``.

    Args:
        train: CSR (n_users, n_items); only which entries are stored matters.
        item_vectors: (n_items, d), aligned with the columns; zero rows = no vector.
        cfg: settings; ``epochs`` overrides ``cfg.epochs``.
        validation: when given, validation Recall@k is computed after each epoch, training
            stops after ``cfg.patience`` epochs without improvement and the best epoch's
            weights are kept (``best_epochs`` = epochs run up to it).
    """
    device = device or pick_device()
    x = binarize(train, np.float32)
    if item_vectors.shape[0] != x.shape[1]:
        raise ValueError(f"{item_vectors.shape[0]} item vectors for {x.shape[1]} items")
    torch.manual_seed(cfg.seed)
    model = FrozenItemTower(item_vectors, cfg.hidden, cfg.item_hidden, cfg.residual).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    result = TowerResult(model=model, inputs=x)
    active = np.flatnonzero(np.diff(x.indptr) > 0)
    best, best_state, since = -1.0, None, 0
    for epoch in range(epochs or cfg.epochs):
        model.train()
        g = epoch_generator(cfg.seed, epoch, device)
        order = active[torch.randperm(len(active), generator=g, device=device).cpu().numpy()]
        total = 0.0
        for s in range(0, len(order), cfg.batch_size):
            batch = torch.as_tensor(x[order[s : s + cfg.batch_size]].toarray(), device=device)
            keep = (torch.rand(batch.shape, generator=g, device=device) >= cfg.dropout).float()
            inputs = batch * keep
            targets = batch - inputs if cfg.target == "dropped" else batch
            logp = torch.log_softmax(model(inputs), dim=1)
            # Mean over each user's targets, then over users: every user weighs the same.
            n_t = targets.sum(1)
            per_user = -(logp * targets).sum(1) / n_t.clamp(min=1.0)
            loss = per_user[n_t > 0].mean() if bool((n_t > 0).any()) else per_user.sum() * 0
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(batch)
        result.losses.append(total / max(len(order), 1))
        if validation is None:
            result.best_epochs = epoch + 1
            continue
        rec = ranking_metrics(result, x, sp.csr_matrix(validation), k=cfg.k).recall
        result.val_recall.append(rec)
        if rec > best:
            best, since, result.best_epochs = rec, 0, epoch + 1
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            since += 1
            if since >= cfg.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return result


def validation_split(
    train: sp.spmatrix, cfg: TowerConfig, times: sp.spmatrix | None = None
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """``(fit, validation)``: :func:`temporal_cut` when ``times`` is given, else
    :func:`random_cut` (``cfg.val_fraction``, ``cfg.seed``)."""
    if times is not None:
        return temporal_cut(train, times)
    return random_cut(train, cfg.val_fraction, cfg.seed)


def fit_tower(
    train: sp.spmatrix,
    item_vectors: np.ndarray,
    cfg: TowerConfig | None = None,
    device: torch.device | None = None,
    times: sp.spmatrix | None = None,
) -> TowerResult:
    """Pick the number of epochs on a validation cut of ``train``, then refit on all of it.

    The cut is :func:`temporal_cut` when ``times`` (rating times at the entries of
    ``train``) is given, else :func:`random_cut`. Nothing outside ``train`` is read, so a
    scorer built this way never sees test data.
    """
    cfg = cfg or TowerConfig()
    fit_part, val_part = validation_split(train, cfg, times)
    probe = train_tower(fit_part, item_vectors, cfg, validation=val_part, device=device)
    final = train_tower(train, item_vectors, cfg, epochs=max(probe.best_epochs, 1),
                        device=device)
    final.val_recall = probe.val_recall
    return final
