"""Numpy kernels of the edges stage: PMI / cosine weights and the exact top-k cut.

The edges of DESIGN.md's recipe: ``D = log(Σ item_count)``;
``pmi = log(n_xy) - log(n_x) - log(n_y) + D`` (evaluated left to right, as a plain-Python
evaluation does); ``weight = pmi * n_xy`` (``pmi``) or ``n_xy / sqrt(n_x n_y)``
(``cosine``); kept when ``weight >= min_weight`` and ``n_xy >= min_count``.

The top-k cut keeps an edge when it is among the ``k`` best edges of either endpoint, by
``(score desc, other end asc)``: a total order, so the cut is exact. It is computed in
two passes over the pair rows, however they are split into batches:

1. :func:`local_top_k`: per batch, each node's ``k`` best edges among the batch's rows
   (both ends). A node's global top-k lies within the union of these candidates.
2. :func:`kth_best`: per node, its ``k``-th best candidate -- the node's threshold;
   :func:`top_k_mask` then keeps a row when it reaches the threshold of one of its ends
   (a node with fewer than ``k`` edges keeps them all).

Nothing here knows about Spark (:mod:`moviegraph.graph.pmi` is the Spark layer).
"""

from __future__ import annotations

import numpy as np


def item_lookup(item_ids: np.ndarray, item_n: np.ndarray, movies: np.ndarray) -> np.ndarray:
    """``item_n`` of each of ``movies`` (``item_ids`` sorted); KeyError-like ValueError
    when a movie has no item count (pair and item tables out of step)."""
    pos = np.searchsorted(item_ids, movies)
    pos = np.minimum(pos, max(len(item_ids) - 1, 0))
    if len(movies) and (len(item_ids) == 0 or np.any(item_ids[pos] != movies)):
        raise ValueError("a pair names a movie with no item count: item_counts and "
                         "pair_counts come from different pairs runs")
    return item_n[pos]


def scores(a: np.ndarray, b: np.ndarray, n: np.ndarray, item_ids: np.ndarray,
           item_n: np.ndarray, d: float, weighting: str) -> tuple[np.ndarray, np.ndarray]:
    """``(weight, pmi)`` of the pairs ``(a, b)`` co-rated ``n`` times (float64)."""
    nf = np.asarray(n, dtype=np.float64)
    na = item_lookup(item_ids, item_n, a).astype(np.float64)
    nb = item_lookup(item_ids, item_n, b).astype(np.float64)
    pmi = ((np.log(nf) - np.log(na)) - np.log(nb)) + d
    if weighting == "cosine":
        weight = nf / np.sqrt(na * nb)
    elif weighting == "pmi":
        weight = pmi * nf
    else:
        raise ValueError(f"edge weighting {weighting!r}: must be pmi or cosine")
    return weight, pmi


def local_top_k(node: np.ndarray, other: np.ndarray, score: np.ndarray,
                k: int) -> np.ndarray:
    """Indices of the rows among the ``k`` best of their ``node`` by ``(score desc, other
    asc)``, ordered by node then rank."""
    if len(node) == 0:
        return np.empty(0, np.int64)
    order = np.lexsort((other, -score, node))
    sn = node[order]
    starts = np.flatnonzero(np.concatenate([[True], sn[1:] != sn[:-1]]))
    rank = np.arange(len(sn)) - np.repeat(starts, np.diff(np.append(starts, len(sn))))
    return order[rank < k]


def both_ends(a: np.ndarray, b: np.ndarray, score: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each undirected edge seen from both ends: ``(node, other, score)``."""
    return (np.concatenate([a, b]), np.concatenate([b, a]), np.concatenate([score, score]))


def kth_best(node: np.ndarray, other: np.ndarray, score: np.ndarray, k: int
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per node with at least ``k`` rows: its ``k``-th best ``(score, other)``.

    Returns ``(nodes, score_k, other_k)``, nodes sorted. Rows must be distinct
    ``(node, other)`` edges.
    """
    idx = local_top_k(node, other, score, k)
    sn = node[idx]
    if len(sn) == 0:
        return np.empty(0, node.dtype), np.empty(0, np.float64), np.empty(0, other.dtype)
    # local_top_k orders by node then rank: the k-th row of a node is its group's last.
    last = np.flatnonzero(np.append(sn[1:] != sn[:-1], True))
    counts = np.diff(np.concatenate([[-1], last]))
    full = last[counts == k]
    return sn[full], score[idx[full]], other[idx[full]]


def within_top_k(node: np.ndarray, other: np.ndarray, score: np.ndarray, nodes: np.ndarray,
                 score_k: np.ndarray, other_k: np.ndarray) -> np.ndarray:
    """Rows ``(node, other, score)`` ranked no worse than their node's ``k``-th best
    ``(score_k, other_k)`` (:func:`kth_best`; nodes not listed keep every row)."""
    if len(nodes) == 0:
        return np.ones(len(node), bool)
    pos = np.minimum(np.searchsorted(nodes, node), len(nodes) - 1)
    listed = nodes[pos] == node
    sk, ok = score_k[pos], other_k[pos]
    return ~listed | (score > sk) | ((score == sk) & (other <= ok))


def top_k_mask(a: np.ndarray, b: np.ndarray, score: np.ndarray, nodes: np.ndarray,
               score_k: np.ndarray, other_k: np.ndarray) -> np.ndarray:
    """Rows ``(a, b)`` that are within the top-k of ``a`` or of ``b``, given each node's
    ``k``-th best ``(score_k, other_k)`` (:func:`kth_best`; nodes not listed have fewer
    than ``k`` edges and keep them all)."""
    return (within_top_k(a, b, score, nodes, score_k, other_k)
            | within_top_k(b, a, score, nodes, score_k, other_k))
