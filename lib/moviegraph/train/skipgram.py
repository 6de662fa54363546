"""node2vec skip-gram with negative sampling, trained on walks.

word2vec's recipe (Mikolov et al. 2013, as in the C tool and gensim):

- frequent-token subsampling: token ``w`` with count ``c`` is kept with probability
  ``(sqrt(c / (sample * total)) + 1) * (sample * total) / c``; dropped tokens are removed
  from the walk *before* windowing, so windows reach past them (as word2vec does);
- dynamic window: each centre token draws ``b`` uniformly in ``1..window`` and pairs with
  the tokens at most ``b`` steps away on either side;
- negatives drawn from the unigram distribution raised to ``ns_exponent`` (0.75);
- plain SGD on the touched rows only, learning rate decaying linearly from ``alpha`` to
  ``min_alpha`` over all tokens of all epochs; input vectors start uniform in
  ``±0.5 / dim``, output vectors at zero.

Two backends. ``numba`` (CPU) is word2vec's own loop compiled: per walk, per position, per
context, one SGD update with its negatives, straight from the walk matrix, in threads that
split the walks and race on the tables (Hogwild) — see ``_sgns_walks_kernel``. ``torch``
(any device, CUDA) vectorises a batch of walks (int tensor ``(B, L)``, ``-1`` padded) into
(centre, context) pairs by shifted slices, one per offset ``d``, masked by padding and the
dynamic window, and takes one summed SGD step per batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numba
import numpy as np
import torch
from numba import njit, prange
from torch import nn

from moviegraph import numba_cache
from moviegraph.config.models import SkipGramConfig
from moviegraph.train.device import pick_device
from moviegraph.train.loop import FitResult, LoopConfig, epoch_generator, fit

numba_cache.install()  # before the @njit(cache=True) kernels below


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


# ---------------------------------------------------------------- CPU: word2vec's loop in numba
#
# The numba backend trains straight from the walk matrix, as word2vec.c and gensim do: per
# walk, subsample into a small buffer, then per centre draw its window and train each
# context in it with its negatives at once (word2vec.c's roles: the context's input row
# against the centre's and the negatives' output rows), so the rows just read are still in
# cache when they are written. Nothing is materialised per batch (no pair or negative
# tensors), randomness comes from one xorshift64* stream per thread seeded from
# (seed, epoch, segment, thread), and threads split the walks of a segment and update the
# tables Hogwild (word2vec's races: only ``threads=1`` is bit-for-bit repeatable).

_SIG_SIZE = 1024  # word2vec's EXP_TABLE: sigmoid and log-sigmoid on [-_MAX_EXP, _MAX_EXP]
_MAX_EXP = 6.0
_SEGMENT_TOKENS = 1 << 20  # walk slots per kernel call: progress and lr checkpoints
_XS_MULT = np.uint64(0x2545F4914F6CDD1D)


def sigmoid_tables(size: int = _SIG_SIZE, max_exp: float = _MAX_EXP
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``(sigmoid, log_sigmoid)`` at the centres of ``size`` bins on ``[-max_exp, max_exp]``
    (float32), word2vec's lookup instead of an ``exp`` per dot product."""
    x = (np.arange(size, dtype=np.float64) + 0.5) / size * 2 * max_exp - max_exp
    sig = 1.0 / (1.0 + np.exp(-x))
    return sig.astype(np.float32), np.log(sig).astype(np.float32)


def alias_table(counts: np.ndarray, exponent: float) -> tuple[np.ndarray, np.ndarray]:
    """Walker's alias table of ``counts ** exponent`` (ids with count 0 never drawn).

    Returns ``(prob, alias)``: draw a uniform bucket ``j`` and a uniform ``u`` in [0, 1);
    the id is ``j`` if ``u < prob[j]`` else ``alias[j]``. Two arrays of the vocabulary's
    size stay in cache, unlike a unigram table of millions of entries.
    """
    c = np.asarray(counts, dtype=np.float64)
    p = np.where(c > 0, c, 0.0) ** exponent
    if p.sum() <= 0:
        raise ValueError("no token has a positive count")
    return _alias_build(p / p.sum() * len(p))


@njit(cache=True)
def _alias_build(scaled):  # pragma: no cover - compiled
    # Vose's method: pair each under-full bucket with an over-full id that tops it up.
    n = len(scaled)
    prob = np.ones(n, dtype=np.float64)
    alias = np.arange(n).astype(np.int32)
    rest = scaled.copy()
    small = np.empty(n, dtype=np.int64)
    large = np.empty(n, dtype=np.int64)
    ns = 0
    nl = 0
    for i in range(n):
        if rest[i] < 1.0:
            small[ns] = i
            ns += 1
        else:
            large[nl] = i
            nl += 1
    while ns > 0 and nl > 0:
        ns -= 1
        s = small[ns]
        g = large[nl - 1]
        prob[s] = rest[s]
        alias[s] = g
        rest[g] = (rest[g] + rest[s]) - 1.0
        if rest[g] < 1.0:
            nl -= 1
            small[ns] = g
            ns += 1
    # Leftovers are full buckets up to rounding; an id with zero weight must never be
    # drawn, so a zero-weight leftover (only rounding put it there) points to a drawable id.
    for k in range(ns):
        prob[small[k]] = 1.0
    out = prob.astype(np.float32)
    for i in range(n):
        if scaled[i] <= 0 and out[i] >= 1.0:
            j = 0
            while scaled[j] <= 0:
                j += 1
            out[i] = 0.0
            alias[i] = j
    return out, alias


@njit(cache=True, inline="always")
def _xorshift(x):  # pragma: no cover - compiled
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    return x


@njit(cache=True, inline="always")
def _uniform24(r):  # pragma: no cover - compiled
    # top 24 bits of a 64-bit draw as a float32 in [0, 1)
    return np.float32(r >> np.uint64(40)) * np.float32(1.0 / (1 << 24))


@njit(cache=True, inline="always")
def _alias_draw(x, prob, alias):  # pragma: no cover - compiled
    # One 64-bit draw: high half picks the bucket, low 24 bits the coin.
    x = _xorshift(x)
    r = x * _XS_MULT
    j = np.int64(((r >> np.uint64(32)) * np.uint64(len(prob))) >> np.uint64(32))
    u = np.float32(r & np.uint64(0xFFFFFF)) * np.float32(1.0 / (1 << 24))
    if u < prob[j]:
        return x, j
    return x, np.int64(alias[j])


@njit(cache=True)
def alias_sample(prob, alias, n, state):  # pragma: no cover - compiled
    """``n`` ids drawn with the kernel's own sampler (for tests)."""
    out = np.empty(n, dtype=np.int64)
    x = np.uint64(state)
    for i in range(n):
        x, out[i] = _alias_draw(x, prob, alias)
    return out


@njit(parallel=True, fastmath=True, cache=True, nogil=True, error_model="numpy")
def _sgns_walks_kernel(w_in, w_out, walks, order, keep, neg_prob, neg_alias, sig, logsig,
                       window, negative, alpha, min_alpha, done, total, states
                       ):  # pragma: no cover - compiled
    """Train the walks ``order`` (rows of ``walks``) in ``len(states)`` Hogwild chunks.

    ``done``: walk tokens trained before this call, ``total``: all tokens of the run; the
    learning rate falls linearly with (estimated) global progress. Returns per chunk
    ``(loss sum, pairs)``; ``states`` is left at each chunk's final RNG state.
    """
    n_chunks = len(states)
    n = len(order)
    length = walks.shape[1]
    dim = w_in.shape[1]
    chunk = (n + n_chunks - 1) // n_chunks
    seg_tokens = 0
    for i in range(n):
        for p in range(length):
            seg_tokens += walks[order[i], p] >= 0
    losses = np.zeros(n_chunks)
    pairs = np.zeros(n_chunks, dtype=np.int64)
    table_scale = np.float32(len(sig) / (2 * _MAX_EXP))
    max_exp = np.float32(_MAX_EXP)
    n_table = len(sig)
    for t in prange(n_chunks):
        lo = t * chunk
        hi = min(n, lo + chunk)
        own = 0
        for i in range(lo, hi):
            for p in range(length):
                own += walks[order[i], p] >= 0
        # This thread trains `own` of the segment's tokens while the others train the
        # rest at about the same pace: its progress stands for the segment's.
        scale = seg_tokens / max(own, 1)
        x = states[t]
        sent = np.empty(length, dtype=np.int64)
        grad = np.empty(dim, dtype=np.float32)
        mine = 0
        loss = 0.0
        n_pairs = 0
        for i in range(lo, hi):
            row = walks[order[i]]
            m = 0
            raw = 0
            for p in range(length):
                w = row[p]
                if w < 0:
                    continue
                raw += 1
                k = keep[w]
                if k < 1.0:
                    x = _xorshift(x)
                    if _uniform24(x * _XS_MULT) >= k:
                        continue
                sent[m] = w
                m += 1
            frac = min(1.0, (done + mine * scale) / total)
            lr = np.float32(alpha - (alpha - min_alpha) * frac)
            mine += raw
            for p in range(m):
                x = _xorshift(x)
                b = window - np.int64((x * _XS_MULT) >> np.uint64(33)) % window
                o = sent[p]  # the centre: positive output row of every pair here
                for q in range(max(0, p - b), min(m, p + b + 1)):
                    if q == p:
                        continue
                    h = w_in[sent[q]]  # the context's input row, as word2vec.c's l1
                    n_pairs += 1
                    for j in range(dim):
                        grad[j] = 0.0
                    for d in range(negative + 1):
                        if d == 0:
                            target = o
                        else:
                            x, target = _alias_draw(x, neg_prob, neg_alias)
                            if target == o:  # as word2vec: never push the positive away
                                continue
                        v = w_out[target]
                        f = np.float32(0.0)
                        for j in range(dim):
                            f += h[j] * v[j]
                        # score for the label: f for the positive, -f for a negative
                        s = f if d == 0 else -f
                        if s >= max_exp:
                            e = np.float32(1.0)  # sigmoid(s) ~ 1: no gradient, no loss
                            ls = np.float32(0.0)
                        elif s <= -max_exp:
                            e = np.float32(0.0)
                            ls = s
                        else:
                            idx = min(int((s + max_exp) * table_scale), n_table - 1)
                            e = sig[idx]
                            ls = logsig[idx]
                        loss -= ls
                        # word2vec's g = (label - sigmoid(f)) * lr = +-(1 - sigmoid(s)) * lr
                        g = (np.float32(1.0) - e) * lr
                        if d > 0:
                            g = -g
                        for j in range(dim):
                            grad[j] += g * v[j]
                            v[j] += g * h[j]
                    for j in range(dim):
                        h[j] += grad[j]
        states[t] = x
        losses[t] = loss
        pairs[t] = n_pairs
    return losses, pairs


def _stream_states(seed: int, epoch: int, segment: int, n: int) -> np.ndarray:
    """``n`` non-zero xorshift states from (seed, epoch, segment, index) by splitmix64."""
    mask = (1 << 64) - 1
    out = np.empty(n, dtype=np.uint64)
    for i in range(n):
        z = (int(seed) * 0x9E3779B97F4A7C15 + int(epoch) * 0xBF58476D1CE4E5B9
             + int(segment) * 0x94D049BB133111EB + (i + 1) * 0xD6E8FEB86659FD93) & mask
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        out[i] = (z ^ (z >> 31)) or 1
    return out


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


def _numba_epochs(model: SkipGram, walks: np.ndarray, counts: np.ndarray,
                  cfg: SkipGramConfig, threads: int, total: int
                  ) -> Callable[[int], Iterator[tuple[float, int]]]:
    """``run_epoch`` of the CPU backend: the numba kernel over segments of shuffled walks."""
    walks = np.ascontiguousarray(walks, dtype=np.int32)
    keep = keep_probabilities(counts, cfg.sample).numpy()
    neg_prob, neg_alias = alias_table(counts, cfg.ns_exponent)
    sig, logsig = sigmoid_tables()
    w_in, w_out = model.w_in.data.numpy(), model.w_out.data.numpy()
    tokens_per_epoch = int(counts.sum())
    # Segments depend on the walk matrix only, so a one-thread run draws the same streams
    # whatever the machine; each is one kernel call (one progress update).
    per_segment = max(1, _SEGMENT_TOKENS // max(walks.shape[1], 1))
    n = walks.shape[0]

    def run_epoch(epoch: int) -> Iterator[tuple[float, int]]:
        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
        g = epoch_generator(cfg.seed, epoch)
        order = torch.randperm(n, generator=g).numpy()
        done = tokens_per_epoch * epoch
        for k, s in enumerate(range(0, n, per_segment)):
            part = order[s : s + per_segment]
            states = _stream_states(cfg.seed, epoch, k, max(1, threads))
            losses, pairs = _sgns_walks_kernel(
                w_in, w_out, walks, part, keep, neg_prob, neg_alias, sig, logsig,
                cfg.window, cfg.negative, cfg.alpha, cfg.min_alpha, done, total, states)
            raw = int((walks[part] >= 0).sum())
            done += raw
            yield float(losses.sum()) / max(int(pairs.sum()), 1), raw

    return run_epoch


def _torch_epochs(model: SkipGram, walks_t: torch.Tensor, counts: np.ndarray,
                  cfg: SkipGramConfig, device: torch.device, total: int
                  ) -> Callable[[int], Iterator[tuple[float, int]]]:
    """``run_epoch`` of the torch backend: tensor-built pairs, batched SGD steps."""
    keep_prob = keep_probabilities(counts, cfg.sample).to(device)
    sampler = NegativeSampler(counts, cfg.ns_exponent, device)
    n = walks_t.shape[0]
    tokens_per_epoch = int(counts.sum())

    def run_epoch(epoch: int) -> Iterator[tuple[float, int]]:
        g = epoch_generator(cfg.seed, epoch, device)
        order = torch.randperm(n, generator=g, device=device)
        done = tokens_per_epoch * epoch
        for s in range(0, n, cfg.batch_walks):
            batch = walks_t[order[s : s + cfg.batch_walks]]
            raw_tokens = int((batch >= 0).sum())
            lr = max(cfg.alpha - (cfg.alpha - cfg.min_alpha) * done / total, cfg.min_alpha)
            done += raw_tokens
            if cfg.sample > 0:
                batch = subsample(batch, keep_prob, g)
            c, o = pairs_from_walks(batch, cfg.window, generator=g)
            if len(c) == 0:
                yield 0.0, raw_tokens
                continue
            neg = sampler.draw((len(c), cfg.negative), g)
            yield sgns_step(model, c, o, neg, lr), raw_tokens

    return run_epoch


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
    init_g = torch.Generator().manual_seed(cfg.seed)
    model = SkipGram(num_nodes, cfg.dim, init_g).to(device)

    backend = cfg.backend
    if backend == "auto":
        backend = "numba" if device.type == "cpu" else "torch"
    if backend == "numba" and device.type != "cpu":
        raise ValueError("the numba backend runs on CPU only")
    threads = cfg.threads or torch.get_num_threads()

    tokens_per_epoch = int(counts.sum())
    total = max(tokens_per_epoch * loop.epochs, 1)
    if backend == "numba":
        run_epoch = _numba_epochs(model, walks_t.numpy(), counts, cfg, threads, total)
    else:
        run_epoch = _torch_epochs(model, walks_t, counts, cfg, device, total)

    val = None if validate is None else (lambda: validate(model.w_in))
    result = fit(model, run_epoch, loop, optimizer=None, validate=val)
    return SkipGramResult(model=model, fit=result, counts=counts)
