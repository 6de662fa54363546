"""Movie ids <-> dense token ids, and the CSR graph built from an ``edges`` edge list.

Tokens are ``0..n-1`` in ascending movie-id order over every vertex of the graph, so the
same edge list always gives the same tokens (and hence the same walk streams, which are
keyed by the start's token). No Spark here: numpy arrays in, numpy arrays out.
"""

from __future__ import annotations

import numpy as np

from moviegraph.walks.csr import CSRGraph, RepeatConflict


class EdgeListError(ValueError):
    """The edge list cannot be turned into a walk graph (empty, conflicting weights, ...)."""


def vertex_ids(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Sorted distinct movie ids appearing in ``src`` or ``dst`` (int32): token -> movie id."""
    src, dst = np.asarray(src), np.asarray(dst)
    if len(src) == 0:
        return np.zeros(0, dtype=np.int32)
    lo, hi = int(min(src.min(), dst.min())), int(max(src.max(), dst.max()))
    if lo >= 0 and hi < _dense_limit(len(src)):
        # Movie ids are small non-negative ints: a presence mask is linear, np.unique sorts.
        present = np.zeros(hi + 1, dtype=bool)
        present[src] = True
        present[dst] = True
        return np.flatnonzero(present).astype(np.int32)
    return np.unique(np.concatenate([src, dst])).astype(np.int32)


def _dense_limit(n: int) -> int:
    """Largest id for which an id-indexed array (mask or lookup table) beats sorting."""
    return max(1 << 24, 8 * n)


def tokens_of(movie_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Token of each movie id in ``ids`` (all must be vertices)."""
    ids = np.asarray(ids)
    if len(ids) == 0:
        return np.zeros(0, dtype=np.int32)
    if len(movie_ids) and movie_ids[0] >= 0 and movie_ids[-1] < _dense_limit(len(ids)):
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi > movie_ids[-1]:
            raise EdgeListError("movie ids outside the vocabulary")
        lookup = np.full(int(movie_ids[-1]) + 1, -1, dtype=np.int32)
        lookup[movie_ids] = np.arange(len(movie_ids), dtype=np.int32)
        tok = lookup[ids]
        if (tok < 0).any():
            raise EdgeListError("movie ids outside the vocabulary")
        return tok
    tok = np.searchsorted(movie_ids, ids)
    if tok.max() >= len(movie_ids) or (movie_ids[tok] != ids).any():
        raise EdgeListError("movie ids outside the vocabulary")
    return tok.astype(np.int32)


def build_graph(src: np.ndarray, dst: np.ndarray, weight: np.ndarray, directed: bool
                ) -> tuple[CSRGraph, np.ndarray]:
    """CSR graph over tokens plus the token -> movie id array, from movie-id edges.

    An undirected edge may be stored once (either orientation) or both ways with the same
    weight; a directed one may repeat with the same weight. Linear time: no global sort,
    repeats are found (and merged, or reported) inside the CSR's rows.

    Raises:
        EdgeListError: no edges, or conflicting duplicate edges.
        ValueError: bad weights (from ``CSRGraph.from_edges``, naming the edge).
    """
    if len(src) == 0:
        raise EdgeListError("the edges table is empty: no graph to walk (check edges."
                            "min_weight and the pairs/edges stages' output)")
    movie_ids = vertex_ids(src, dst)
    try:
        graph = CSRGraph.from_edges(tokens_of(movie_ids, src), tokens_of(movie_ids, dst),
                                    weight, len(movie_ids), directed=directed,
                                    merge_repeats=True)
    except RepeatConflict as exc:
        a, b = int(movie_ids[exc.src]), int(movie_ids[exc.dst])
        if not directed:
            a, b = min(a, b), max(a, b)
        raise EdgeListError(
            f"edge {a}-{b} is stored with different weights ({exc.weights[0]!r} and "
            f"{exc.weights[1]!r}); the edges table must hold one weight per "
            f"{'pair' if not directed else 'directed pair'}") from None
    return graph, movie_ids


def csr_nbytes(num_nodes: int, num_entries: int) -> int:
    """Bytes of a CSR graph with ``num_entries`` stored (directed) entries."""
    return 8 * (num_nodes + 1) + num_entries * (4 + 8 + 8)
