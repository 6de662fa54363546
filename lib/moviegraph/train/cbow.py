"""CBOW over users' time-ordered histories (each user's movies, by time, are a sentence).

The mean of the input vectors of the movies within ``window`` positions of a centre
(not the centre itself) predicts the centre, either by full softmax over the catalogue
(exact, fine for a few thousand movies) or by negative sampling from unigram^0.75
(any catalogue size). Trained with autograd + Adam on sparse-free dense tables; the
context windows are built by shifted slices of the padded (B, L) batch, like skip-gram.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from moviegraph.config.models import CBOWConfig
from moviegraph.train.device import pick_device
from moviegraph.train.loop import FitResult, LoopConfig, epoch_generator, fit
from moviegraph.train.skipgram import NegativeSampler, token_counts


class CBOW(nn.Module):
    """Input vectors (the movie embeddings) and output vectors + bias."""

    def __init__(self, num_items: int, dim: int) -> None:
        super().__init__()
        self.w_in = nn.Embedding(num_items, dim)
        self.w_out = nn.Embedding(num_items, dim)
        self.b_out = nn.Embedding(num_items, 1)
        nn.init.uniform_(self.w_in.weight, -0.5 / dim, 0.5 / dim)
        nn.init.zeros_(self.w_out.weight)
        nn.init.zeros_(self.b_out.weight)


def sentences_from_history(
    user: np.ndarray, item: np.ndarray, ts: np.ndarray, max_len: int | None = None
) -> np.ndarray:
    """Each user's items ordered by ``(ts, item)``, as an int32 ``(users, L)`` array, -1 padded.

    Users longer than ``max_len`` are cut into consecutive rows of ``max_len``.
    """
    order = np.lexsort((item, ts, user))
    u, it = np.asarray(user)[order], np.asarray(item)[order]
    starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]])
    pos = np.arange(len(u)) - np.repeat(starts, np.diff(np.r_[starts, len(u)]))
    row = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(u)]))
    if max_len is not None:
        # Split long histories: chunk index within the user becomes part of the row key.
        chunk = pos // max_len
        key = row.astype(np.int64) * (int(pos.max()) + 1) + chunk
        _, row = np.unique(key, return_inverse=True)
        pos = pos % max_len
    out = np.full((int(row.max()) + 1, int(pos.max()) + 1), -1, dtype=np.int32)
    out[row, pos] = it
    return out


def context_windows(batch: torch.Tensor, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Context ids ``(B, L, 2 * window)`` (-1 where none) for every centre of ``batch``."""
    b, length = batch.shape
    pad = torch.full((b, window), -1, dtype=batch.dtype, device=batch.device)
    padded = torch.cat([pad, batch, pad], dim=1)
    offsets = [d for d in range(-window, window + 1) if d != 0]
    ctx = torch.stack([padded[:, window + d : window + d + length] for d in offsets], dim=2)
    return batch, ctx


@dataclass
class CBOWResult:
    """Trained model and record."""

    model: CBOW
    fit: FitResult

    @property
    def vectors(self) -> np.ndarray:
        """Movie vectors (input table), float32."""
        return self.model.w_in.weight.detach().cpu().numpy().copy()


def train_cbow(
    sentences: np.ndarray,
    num_items: int,
    cfg: CBOWConfig | None = None,
    loop: LoopConfig | None = None,
    device: torch.device | None = None,
) -> CBOWResult:
    """Train CBOW on ``sentences`` (int ``(n, L)``, -1 padded item positions)."""
    cfg = cfg or CBOWConfig()
    device = device or pick_device()
    loop = loop or LoopConfig(epochs=cfg.epochs, unit="tok", desc="cbow")
    torch.manual_seed(cfg.seed)
    data = torch.as_tensor(np.array(sentences, dtype=np.int64)).to(device)
    model = CBOW(num_items, cfg.dim).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sampler = None
    if cfg.loss == "negative":
        sampler = NegativeSampler(token_counts(data.cpu(), num_items), 0.75, device)
    n = data.shape[0]

    def run_epoch(epoch: int) -> Iterator[tuple[float, int]]:
        g = epoch_generator(cfg.seed, epoch, device)
        order = torch.randperm(n, generator=g, device=device)
        for s in range(0, n, cfg.batch_sentences):
            centre, ctx = context_windows(data[order[s : s + cfg.batch_sentences]], cfg.window)
            has_ctx = (ctx >= 0).any(-1)
            keep = (centre >= 0) & has_ctx
            centre, ctx = centre[keep], ctx[keep]
            if len(centre) == 0:
                continue
            mask = (ctx >= 0).float().unsqueeze(-1)
            h = (model.w_in(ctx.clamp(min=0)) * mask).sum(1) / mask.sum(1)
            if sampler is None:
                logits = h @ model.w_out.weight.T + model.b_out.weight.T
                loss = F.cross_entropy(logits, centre)
            else:
                neg = sampler.draw((len(centre), cfg.negative), g)
                ids = torch.cat([centre.unsqueeze(1), neg], 1)
                score = (model.w_out(ids) @ h.unsqueeze(2)).squeeze(2) + model.b_out(ids)[..., 0]
                sign = torch.ones_like(score)
                sign[:, 1:] = -1
                loss = -F.logsigmoid(sign * score).sum(1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            yield float(loss.detach()), len(centre)

    result = fit(model, run_epoch, loop, optimizer=opt)
    return CBOWResult(model=model, fit=result)
