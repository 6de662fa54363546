"""node2vec skip-gram with negative sampling, trained on batches of walks.

word2vec's recipe (Mikolov et al. 2013, as in the C tool and gensim), vectorised:

- frequent-token subsampling: token ``w`` with count ``c`` is kept with probability
  ``(sqrt(c / (sample * total)) + 1) * (sample * total) / c``; dropped tokens are removed
  from the walk *before* windowing, so windows reach past them (as word2vec does);
- dynamic window: each centre token draws ``b`` uniformly in ``1..window`` and pairs with
  the tokens at most ``b`` steps away on either side;
- negatives drawn from the unigram distribution raised to ``ns_exponent`` (0.75);
- plain SGD on the touched rows only (``index_add_``), learning rate decaying linearly
  from ``alpha`` to ``min_alpha`` over all tokens of all epochs; input vectors start
  uniform in ``±0.5 / dim``, output vectors at zero.

A batch of walks (int tensor ``(B, L)``, ``-1`` padded) becomes (centre, context) pairs by
shifted slices, one per offset ``d``, masked by padding and the dynamic window: no Python
loop over tokens or pairs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numba
import numpy as np
import torch
from numba import njit, prange
from torch import nn

from moviegraph.config.models import SkipGramConfig
from moviegraph.train.device import pick_device
from moviegraph.train.loop import FitResult, LoopConfig, epoch_generator, fit


class SkipGram(nn.Module):
    """Input (``syn0``, the node vectors) and output (``syn1neg``) embedding tables."""

    def __init__(self, num_nodes: int, dim: int, generator: torch.Generator | None = None):
        super().__init__()
        w_in = (torch.rand(num_nodes, dim, generator=generator) - 0.5) / dim
        self.w_in = nn.Parameter(w_in, requires_grad=False)
        self.w_out = nn.Parameter(torch.zeros(num_nodes, dim), requires_grad=False)

    @property
    def vectors(self) -> torch.Tensor:
        """The node vectors (input table), as word2vec reports them."""
        return self.w_in


def token_counts(walks: np.ndarray | torch.Tensor, num_nodes: int) -> np.ndarray:
    """Occurrences of each node id in ``walks`` (``-1`` padding ignored), int64."""
    w = torch.as_tensor(np.asarray(walks)).reshape(-1).long()
    return torch.bincount(w[w >= 0], minlength=num_nodes).numpy()


def keep_probabilities(counts: np.ndarray, sample: float) -> torch.Tensor:
    """word2vec's probability of keeping each token (1 where ``sample`` is 0)."""
    c = torch.as_tensor(np.asarray(counts), dtype=torch.float64)
    if sample <= 0:
        return torch.ones_like(c, dtype=torch.float32)
    threshold = sample * c.sum()
    p = (torch.sqrt(c / threshold) + 1) * threshold / c.clamp(min=1)
    return p.clamp(max=1.0).float()


def subsample(
    walks: torch.Tensor, keep_prob: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Drop tokens with probability ``1 - keep_prob[token]`` and close the gaps.

    Returns a tensor of the same shape whose rows hold the kept tokens first, in order,
    then ``-1`` padding.
    """
    valid = walks >= 0
    u = torch.rand(walks.shape, generator=generator, device=walks.device)
    keep = valid & (u < keep_prob[walks.clamp(min=0).long()])
    # New column of each kept token = number of kept tokens before it in its row.
    pos = torch.cumsum(keep, dim=1) - 1
    out = torch.full_like(walks, -1)
    rows = torch.arange(walks.shape[0], device=walks.device).unsqueeze(1).expand_as(walks)
    out[rows[keep], pos[keep]] = walks[keep]
    return out


def draw_spans(
    shape: tuple[int, ...], window: int, generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Effective window per centre token, uniform in ``1..window`` (word2vec's ``b``)."""
    return torch.randint(1, window + 1, shape, generator=generator, device=device)


def pairs_from_walks(
    walks: torch.Tensor,
    window: int,
    spans: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """All skip-gram (centre, context) pairs of a batch of walks.

    Args:
        walks: int tensor ``(B, L)``; ``-1`` marks padding (anywhere, e.g. dropped tokens
            not compacted, or the tail of short walks).
        window: maximum offset.
        spans: effective window of each centre position, ints in ``1..window``, shape
            ``(B, L)``; drawn with ``generator`` when None. Pass ``full`` spans
            (all ``window``) for a fixed window.
        generator: randomness for ``spans``.

    Returns:
        ``(centres, contexts)``, two int64 tensors of equal length: for every offset
        ``d`` in ``1..window``, first the pairs whose context lies ``d`` to the right of
        the centre, then ``d`` to the left, each in row-major order of the centre
        position. A pair exists when both tokens are real and ``d <= spans[centre]``.
    """
    if walks.dim() != 2:
        raise ValueError(f"walks must be 2-D (B, L), got shape {tuple(walks.shape)}")
    if spans is None:
        spans = draw_spans(tuple(walks.shape), window, generator, walks.device)
    valid = walks >= 0
    centres: list[torch.Tensor] = []
    contexts: list[torch.Tensor] = []
    length = walks.shape[1]
    for d in range(1, min(window, length - 1) + 1):
        left, right = walks[:, :-d], walks[:, d:]
        both = valid[:, :-d] & valid[:, d:]
        fwd = both & (spans[:, :-d] >= d)  # centre on the left, context d to the right
        bwd = both & (spans[:, d:] >= d)  # centre on the right, context d to the left
        centres += [left[fwd], right[bwd]]
        contexts += [right[fwd], left[bwd]]
    if not centres:
        empty = torch.empty(0, dtype=torch.long, device=walks.device)
        return empty, empty
    return torch.cat(centres).long(), torch.cat(contexts).long()


class NegativeSampler:
    """Draws ids from ``counts ** exponent`` through word2vec's unigram table.

    Id ``i`` fills a share of the table proportional to its probability, so a draw is one
    uniform integer and one gather (a binary search per draw costs ~10x more on CPU). The
    table has ``table_size`` entries (default: 1e8 capped, at least 1000 per vocab entry
    up to 1e7), so probabilities are exact to within ``1 / table_size``.
    """

    def __init__(
        self, counts: np.ndarray, exponent: float, device: torch.device,
        table_size: int | None = None,
    ):
        c = np.asarray(counts, dtype=np.float64)
        p = np.where(c > 0, c, 0.0) ** exponent
        if p.sum() <= 0:
            raise ValueError("no token has a positive count")
        p /= p.sum()
        if table_size is None:
            table_size = int(min(10**7, max(10**6, 1000 * len(c))))
        # Entry j holds the id whose cumulative-probability bucket contains (j + 0.5) / size.
        cdf = np.cumsum(p)
        cdf[-1] = 1.0
        mid = (np.arange(table_size, dtype=np.float64) + 0.5) / table_size
        table = np.searchsorted(cdf, mid, side="right").astype(np.int64)
        self.table = torch.from_numpy(np.minimum(table, len(c) - 1)).to(device)

    def draw(self, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
        """Int64 ids of the given shape."""
        j = torch.randint(0, len(self.table), shape, generator=generator,
                          device=self.table.device)
        return self.table[j]


def sgns_step(
    model: SkipGram, centres: torch.Tensor, contexts: torch.Tensor, negatives: torch.Tensor,
    lr: float,
) -> float:
    """One SGD step of negative-sampling loss on pairs; returns the mean loss per pair.

    As in word2vec, the centre's input vector is updated with the summed gradient of the
    positive and negative terms, and each output vector with its own term.
    """
    h = model.w_in[centres]  # (P, D)
    out_ids = torch.cat([contexts.unsqueeze(1), negatives], dim=1)  # (P, 1 + K)
    v = model.w_out[out_ids]  # (P, 1 + K, D)
    score = torch.bmm(v, h.unsqueeze(2)).squeeze(2)  # (P, 1 + K)
    label = torch.zeros_like(score)
    label[:, 0] = 1.0
    sig = torch.sigmoid(score)
    g = (label - sig) * lr  # word2vec's g = (label - f) * alpha
    grad_h = torch.bmm(g.unsqueeze(1), v).squeeze(1)  # (P, D)
    grad_v = g.unsqueeze(2) * h.unsqueeze(1)  # (P, 1 + K, D)
    model.w_out.index_add_(0, out_ids.reshape(-1), grad_v.reshape(-1, h.shape[1]))
    model.w_in.index_add_(0, centres, grad_h)
    # loss = -log s(pos) - sum log s(-neg), from the scores before the update
    sign = label * 2 - 1
    return float(-torch.nn.functional.logsigmoid(sign * score).sum(1).mean())


@njit(parallel=True, fastmath=True, cache=True, nogil=True)
def _sgns_kernel(w_in, w_out, centres, contexts, negatives, lr0, lr1, n_chunks):  # pragma: no cover
    # word2vec's inner loop, pair by pair: rows stay in cache and each update sees the
    # previous ones (summed batch updates on a small vocabulary overshoot instead).
    n_pairs, n_neg = negatives.shape
    dim = w_in.shape[1]
    chunk = (n_pairs + n_chunks - 1) // n_chunks
    losses = np.zeros(n_chunks)
    for t in prange(n_chunks):
        grad = np.empty(dim, dtype=np.float32)
        loss = 0.0
        stop = min(n_pairs, (t + 1) * chunk)
        for p in range(t * chunk, stop):
            lr = np.float32(lr0 + (lr1 - lr0) * p / max(n_pairs, 1))
            c = centres[p]
            pos = contexts[p]
            grad[:] = 0.0
            for k in range(n_neg + 1):
                if k == 0:
                    target = pos
                    label = np.float32(1.0)
                else:
                    target = negatives[p, k - 1]
                    if target == pos:  # as word2vec: never push the positive away
                        continue
                    label = np.float32(0.0)
                f = np.float32(0.0)
                for j in range(dim):
                    f += w_in[c, j] * w_out[target, j]
                if label > 0:
                    loss += np.log1p(np.exp(-f)) if f > -30 else -f
                else:
                    loss += np.log1p(np.exp(f)) if f < 30 else f
                sig = np.float32(1.0) / (np.float32(1.0) + np.exp(-f))
                g = (label - sig) * lr
                for j in range(dim):
                    grad[j] += g * w_out[target, j]
                    w_out[target, j] += g * w_in[c, j]
            for j in range(dim):
                w_in[c, j] += grad[j]
        losses[t] = loss
    return losses.sum() / max(n_pairs, 1)


def sgns_step_numba(
    model: SkipGram, centres: torch.Tensor, contexts: torch.Tensor, negatives: torch.Tensor,
    lr: float, lr_next: float, threads: int,
) -> float:
    """word2vec's sequential SGD over the pairs (CPU tensors), updating ``model`` in place.

    The learning rate moves linearly from ``lr`` to ``lr_next`` across the pairs. With
    ``threads > 1`` the pairs are split in ``threads`` contiguous chunks trained Hogwild.
    """
    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    return float(
        _sgns_kernel(
            model.w_in.data.numpy(), model.w_out.data.numpy(),
            centres.numpy(), contexts.numpy(), negatives.numpy(),
            float(lr), float(lr_next), max(1, threads),
        )
    )


@dataclass
class SkipGramResult:
    """Trained tables and the training record."""

    model: SkipGram
    fit: FitResult
    counts: np.ndarray

    @property
    def vectors(self) -> np.ndarray:
        """Node vectors, float32 ``(num_nodes, dim)``; rows of unseen nodes stay random."""
        return self.model.w_in.detach().cpu().numpy().copy()


def train_skipgram(
    walks: np.ndarray,
    num_nodes: int,
    cfg: SkipGramConfig | None = None,
    loop: LoopConfig | None = None,
    device: torch.device | None = None,
    validate=None,
) -> SkipGramResult:
    """Train skip-gram with negative sampling on node2vec walks.

    Args:
        walks: int array ``(n, L)`` of node ids in ``[0, num_nodes)``, ``-1`` padded.
        num_nodes: size of the embedding tables.
        cfg: hyper-parameters.
        loop: loop settings (epochs default to ``cfg.epochs``; ``unit`` is walk tokens).
        device: defaults to :func:`pick_device`.
        validate: optional ``f(vectors: torch.Tensor) -> dict`` called after each epoch.
    """
    cfg = cfg or SkipGramConfig()
    device = device or pick_device()
    loop = loop or LoopConfig(epochs=cfg.epochs, unit="tok", desc="skipgram")
    walks_t = torch.as_tensor(np.array(walks, dtype=np.int32, copy=True))
    if walks_t.dim() != 2:
        raise ValueError(f"walks must be 2-D, got shape {tuple(walks_t.shape)}")
    if walks_t.numel() and int(walks_t.max()) >= num_nodes:
        raise ValueError("walk token out of range of num_nodes")
    walks_t = walks_t.to(device)
    counts = token_counts(walks_t.cpu(), num_nodes)
    keep_prob = keep_probabilities(counts, cfg.sample).to(device)
    sampler = NegativeSampler(counts, cfg.ns_exponent, device)
    init_g = torch.Generator().manual_seed(cfg.seed)
    model = SkipGram(num_nodes, cfg.dim, init_g).to(device)

    backend = cfg.backend
    if backend == "auto":
        backend = "numba" if device.type == "cpu" else "torch"
    if backend == "numba" and device.type != "cpu":
        raise ValueError("the numba backend runs on CPU only")
    torch_threads = torch.get_num_threads()
    threads = cfg.threads or torch_threads

    n = walks_t.shape[0]
    tokens_per_epoch = int(counts.sum())
    total = max(tokens_per_epoch * loop.epochs, 1)

    def run_epoch(epoch: int) -> Iterator[tuple[float, int]]:
        if backend == "numba":
            # Batch preparation works on tensors of a few 10k entries, where OpenMP
            # threads cost more than they save; the numba kernel has its own threads.
            torch.set_num_threads(1)
        try:
            yield from _epoch(epoch)
        finally:
            torch.set_num_threads(torch_threads)

    def _epoch(epoch: int) -> Iterator[tuple[float, int]]:
        g = epoch_generator(cfg.seed, epoch, device)
        order = torch.randperm(n, generator=g, device=device)
        done = tokens_per_epoch * epoch
        for s in range(0, n, cfg.batch_walks):
            batch = walks_t[order[s : s + cfg.batch_walks]]
            raw_tokens = int((batch >= 0).sum())
            lr = max(cfg.alpha - (cfg.alpha - cfg.min_alpha) * done / total, cfg.min_alpha)
            done += raw_tokens
            lr_next = max(cfg.alpha - (cfg.alpha - cfg.min_alpha) * done / total, cfg.min_alpha)
            if cfg.sample > 0:
                batch = subsample(batch, keep_prob, g)
            c, o = pairs_from_walks(batch, cfg.window, generator=g)
            if len(c) == 0:
                yield 0.0, raw_tokens
                continue
            neg = sampler.draw((len(c), cfg.negative), g)
            if backend == "numba":
                loss = sgns_step_numba(model, c, o, neg, lr, lr_next, threads)
            else:
                loss = sgns_step(model, c, o, neg, lr)
            yield loss, raw_tokens

    val = None if validate is None else (lambda: validate(model.w_in))
    result = fit(model, run_epoch, loop, optimizer=None, validate=val)
    return SkipGramResult(model=model, fit=result, counts=counts)
