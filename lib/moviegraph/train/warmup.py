"""Compile the numba kernels at set-up (``bin/bootstrap.sh``), not in a user's first run.

numba keeps each compiled kernel in a cache beside its module (``cache=True``), keyed by
the argument types; a fresh checkout compiles on first use, which cost the first
``pipeline`` on ML-100K about 15 s on 2 cores (walks, skip-gram, ALS/BPMF sweeps). This
calls the same functions the stages call, on a tiny graph and tiny rating set with the
dtypes the stages pass (int32 tokens, float64 weights, int64 rating positions, float32
ratings), so the cache holds the kernels a run needs. A kernel called later with other
types still compiles then; nothing here changes a result.

``python -m moviegraph.train.warmup`` (bootstrap runs it when the kernel sources change).
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import torch

from moviegraph.config.models import BPMFConfig, SkipGramConfig
from moviegraph.train.bpmf import train_bpmf
from moviegraph.train.loop import LoopConfig
from moviegraph.train.skipgram import train_skipgram
from moviegraph.walks.batches import walk_keys
from moviegraph.walks.kernel import random_walks
from moviegraph.walks.vocab import build_graph


def warm_up(seed: int = 0) -> float:
    """Run each compiled kernel once on tiny inputs; return the seconds it took."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    # A ring plus chords over movie ids, as the walks stage reads them from `edges`.
    n = 40
    ids = np.arange(1, n + 1, dtype=np.int32) * 3
    src = np.concatenate([ids, ids[:20]])
    dst = np.concatenate([np.roll(ids, 1), ids[20:]])
    keep = src != dst
    lo, hi = np.minimum(src[keep], dst[keep]), np.maximum(src[keep], dst[keep])
    graph, movie_ids = build_graph(lo, hi, rng.random(len(lo)) + 0.1, directed=False)
    starts, rounds = walk_keys(np.arange(2 * len(movie_ids), dtype=np.int64), len(movie_ids))
    for p, q in ((1.0, 1.0), (0.5, 2.0)):  # first-order and second-order steps
        walks = random_walks(graph, starts, rounds, 20, p, q, seed, num_threads=1)
    # Skip-gram on those walks (int32 tokens): one- and multi-thread kernels.
    for threads in (1, None):
        cfg = replace(SkipGramConfig(), dim=8, epochs=1, seed=seed, threads=threads)
        train_skipgram(walks.astype(np.int32), len(movie_ids), cfg,
                       LoopConfig(epochs=1, progress=False), torch.device("cpu"))
    # BPMF's Gibbs sweeps (ALS-style batched solves) on a small dense-index rating set.
    users, items = rng.integers(0, 30, 600), rng.integers(0, 25, 600)
    users, items = np.unique(np.stack([users, items], 1), axis=0).T
    ratings = rng.integers(1, 6, len(users)).astype(np.float32)
    train_bpmf(users.astype(np.int64), items.astype(np.int64), ratings, 30, 25,
               BPMFConfig(dim=4, burn_in=1, samples=1, dtype="float64"), device=torch.device("cpu"))
    return time.perf_counter() - t0


def main() -> None:
    """Entry point of ``python -m moviegraph.train.warmup``."""
    print(f"[bootstrap] numba kernels compiled and cached in {warm_up():.1f}s", flush=True)


if __name__ == "__main__":
    main()
