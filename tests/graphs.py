"""Small weighted graphs (token edge lists) the walk tests share."""

from __future__ import annotations

import numpy as np

EdgeList = tuple[np.ndarray, np.ndarray, np.ndarray, int]  # src, dst, weight, num_nodes


def triangle_plus_tail() -> EdgeList:
    """Triangle 0-1-2 with a tail 2-3-4; distinct weights so mistakes show."""
    src = np.array([0, 0, 1, 2, 3])
    dst = np.array([1, 2, 2, 3, 4])
    w = np.array([1.0, 3.0, 2.0, 5.0, 0.5])
    return src, dst, w, 5


def star() -> EdgeList:
    """Centre 0 with leaves 1..5 of weights 1..5 (leaves are never adjacent to each other)."""
    leaves = np.arange(1, 6)
    return np.zeros(5, dtype=np.int64), leaves, leaves.astype(float), 6


def random_weighted(n: int = 50, density: float = 0.12, seed: int = 3) -> EdgeList:
    """Erdős–Rényi graph with log-normal weights (heavy-ish spread)."""
    rng = np.random.default_rng(seed)
    iu, ju = np.triu_indices(n, k=1)
    keep = rng.random(len(iu)) < density
    w = rng.lognormal(0.0, 1.0, keep.sum())
    return iu[keep], ju[keep], w, n


GRAPHS = {"triangle_tail": triangle_plus_tail, "star": star, "random50": random_weighted}
