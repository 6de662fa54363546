"""Compressed sparse row (CSR) graph for the walk kernel.

Rows hold out-neighbours sorted by id (so adjacency tests are binary searches) and
cumulative weights that restart at each row (so a weighted draw is a binary search, and
the cumulative sums stay as precise as the row's own weights allow).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from moviegraph import numba_cache

numba_cache.install()  # before the @njit(cache=True) kernels below


class RepeatConflict(ValueError):
    """The same (src, dst) entry appears with two different weights."""

    def __init__(self, src: int, dst: int, weight_a: float, weight_b: float) -> None:
        super().__init__(f"entry {src}->{dst} is listed with different weights "
                         f"({weight_a!r} and {weight_b!r})")
        self.src, self.dst, self.weights = src, dst, (weight_a, weight_b)


@dataclass(frozen=True)
class CSRGraph:
    """A weighted graph in CSR form.

    Attributes:
        indptr: int64, shape (n + 1,); row ``v`` is ``indptr[v]:indptr[v + 1]``.
        indices: int32, neighbour ids, ascending within each row.
        weights: float64, edge weights aligned with ``indices`` (all finite and > 0).
        cumw: float64, running sum of ``weights`` within each row (restarting per row).
    """

    indptr: np.ndarray
    indices: np.ndarray
    weights: np.ndarray
    cumw: np.ndarray

    @classmethod
    def from_edges(
        cls,
        src: np.ndarray,
        dst: np.ndarray,
        weight: np.ndarray,
        num_nodes: int,
        directed: bool = False,
        merge_repeats: bool = False,
    ) -> CSRGraph:
        """Build a CSR graph from an edge list.

        Args:
            src, dst: node ids in ``[0, num_nodes)``.
            weight: edge weights, finite and strictly positive.
            num_nodes: number of nodes (ids without edges become isolated nodes).
            directed: if False, each edge is stored in both directions.
            merge_repeats: keep a repeated (src, dst) entry once when every repeat has the
                same weight (an undirected edge may then be listed in either orientation
                or both); repeats with different weights still raise.

        Raises:
            ValueError: on mismatched lengths, ids out of range, bad weights, or duplicate
                (src, dst) pairs (after symmetrisation when undirected); with
                ``merge_repeats``, ``RepeatConflict`` for repeats with different weights.
        """
        src = np.asarray(src)
        dst = np.asarray(dst)
        weight = np.asarray(weight, dtype=np.float64)
        if not (src.ndim == dst.ndim == weight.ndim == 1):
            raise ValueError("src, dst and weight must be one-dimensional")
        if not (len(src) == len(dst) == len(weight)):
            raise ValueError(
                f"src, dst and weight lengths differ: {len(src)}, {len(dst)}, {len(weight)}"
            )
        num_nodes = int(num_nodes)
        if num_nodes < 0 or num_nodes >= 2**31:
            raise ValueError(f"num_nodes must be in [0, 2**31), got {num_nodes}")
        if len(src) and not (
            np.issubdtype(src.dtype, np.integer) and np.issubdtype(dst.dtype, np.integer)
        ):
            raise ValueError("src and dst must be integer arrays")
        src = src.astype(np.int64, copy=False)
        dst = dst.astype(np.int64, copy=False)
        if len(src):
            lo = min(src.min(), dst.min())
            hi = max(src.max(), dst.max())
            if lo < 0 or hi >= num_nodes:
                raise ValueError(f"node ids must be in [0, {num_nodes}), found range [{lo}, {hi}]")
        bad = ~(np.isfinite(weight) & (weight > 0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"edge weights must be finite and > 0; edge {i} ({src[i]}->{dst[i]}) "
                f"has weight {weight[i]!r} ({int(bad.sum())} bad weights in all)"
            )

        if not directed:
            # A self-loop would appear twice after symmetrisation; keep it once. Reversed
            # entries go first: for edges listed in (min, max) order, row v then receives
            # its smaller neighbours, then itself and its larger ones, already ascending.
            loop = src == dst
            src, dst = np.concatenate([dst[~loop], src]), np.concatenate([src[~loop], dst])
            weight = np.concatenate([weight[~loop], weight])

        # O(edges) in numba: a counting sort by row, then each (short) row sorted by id.
        indptr, indices, weight, n_dup, first_dup, conflict = _rows_sorted(
            src, dst, weight, num_nodes)
        if n_dup and merge_repeats:
            v, u, w1, w2 = conflict
            if v >= 0:
                raise RepeatConflict(int(v), int(u), float(w1), float(w2))
            indptr, indices, weight = _drop_repeats(indptr, indices, weight)
        elif n_dup:
            s_, d_ = first_dup
            kind = "directed" if directed else "undirected (each pair counts both ways)"
            raise ValueError(
                f"duplicate edge {s_}->{d_} in {kind} edge list "
                f"({n_dup} duplicates in all); aggregate weights before "
                f"building the graph"
            )
        cumw = _row_cumsum(weight, indptr)
        return cls(indptr=indptr, indices=indices, weights=weight, cumw=cumw)

    @property
    def num_nodes(self) -> int:
        """Number of nodes (rows)."""
        return len(self.indptr) - 1

    @property
    def num_edges(self) -> int:
        """Number of stored directed entries (an undirected edge counts twice)."""
        return len(self.indices)

    @property
    def nbytes(self) -> int:
        """Bytes held by the four arrays."""
        return int(
            self.indptr.nbytes + self.indices.nbytes + self.weights.nbytes + self.cumw.nbytes
        )

    def degree(self, v: int) -> int:
        """Number of out-neighbours of ``v``."""
        return int(self.indptr[v + 1] - self.indptr[v])


@njit(cache=True)
def _row_cumsum(weight: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Cumulative sum of ``weight`` restarting at every row of ``indptr``.

    Summing per row (rather than subtracting a global running sum) keeps each row's sums
    as precise as its own weights, however many edges come before it.
    """
    out = np.empty_like(weight)
    for v in range(len(indptr) - 1):
        acc = 0.0
        for j in range(indptr[v], indptr[v + 1]):
            acc += weight[j]
            out[j] = acc
    return out


@njit(cache=True)
def _rows_sorted(src: np.ndarray, dst: np.ndarray, weight: np.ndarray, num_nodes: int):
    """CSR arrays of the entries ``(src, dst, weight)``: rows by ``src``, ids ascending.

    Returns ``(indptr, indices, weights, duplicate count, (src, dst) of the first
    duplicate, (src, dst, weight, other weight) of the first repeat with a different
    weight or all -1)``. A counting sort places the entries in their rows (linear), then each
    row is sorted on its own -- rows are short, and usually already sorted when the
    entries arrive in ``(src, dst)`` order, which is checked first.
    """
    n = len(src)
    indptr = np.zeros(num_nodes + 1, dtype=np.int64)
    for k in range(n):
        indptr[src[k] + 1] += 1
    for v in range(num_nodes):
        indptr[v + 1] += indptr[v]
    fill = indptr[:-1].copy()
    indices = np.empty(n, dtype=np.int32)
    out_w = np.empty(n, dtype=np.float64)
    for k in range(n):
        j = fill[src[k]]
        indices[j] = dst[k]
        out_w[j] = weight[k]
        fill[src[k]] = j + 1
    n_dup = 0
    dup_src = -1
    dup_dst = -1
    conflict = (-1, -1, 0.0, 0.0)
    for v in range(num_nodes):
        a, b = indptr[v], indptr[v + 1]
        ordered = True
        for j in range(a + 1, b):
            if indices[j] < indices[j - 1]:
                ordered = False
                break
        if not ordered:
            order = np.argsort(indices[a:b], kind="mergesort")
            indices[a:b] = indices[a:b][order]
            out_w[a:b] = out_w[a:b][order]
        for j in range(a + 1, b):
            if indices[j] == indices[j - 1]:
                if n_dup == 0:
                    dup_src, dup_dst = v, indices[j]
                n_dup += 1
                if conflict[0] < 0 and out_w[j] != out_w[j - 1]:
                    conflict = (v, indices[j], out_w[j - 1], out_w[j])
    return indptr, indices, out_w, n_dup, (dup_src, dup_dst), conflict


@njit(cache=True)
def _drop_repeats(indptr: np.ndarray, indices: np.ndarray, weight: np.ndarray):
    """The CSR arrays with each run of equal ids in a row kept once (rows already sorted)."""
    n = len(indptr) - 1
    new_ptr = np.zeros(n + 1, dtype=np.int64)
    keep = np.empty(len(indices), dtype=np.int32)
    new_w = np.empty(len(indices), dtype=np.float64)
    k = 0
    for v in range(n):
        for j in range(indptr[v], indptr[v + 1]):
            if j > indptr[v] and indices[j] == indices[j - 1]:
                continue
            keep[k] = indices[j]
            new_w[k] = weight[j]
            k += 1
        new_ptr[v + 1] = k
    return new_ptr, keep[:k].copy(), new_w[:k].copy()
