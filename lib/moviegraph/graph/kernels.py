"""Numpy/scipy kernels of the graph jobs: block-pair co-occurrence counts and components.

Two kinds of tasks share one counting core (the incidence-matrix product): the block
pairs of a full count, and the cross tasks of an incremental one (appended movies x the
user's earlier movies, see :mod:`moviegraph.graph.incremental`).

Nothing here knows about Spark: the Spark layer hands in flat numpy arrays (Arrow list
columns as offsets + values) and gets numpy arrays back.

A *task* is one block pair of one user's sorted movie list: the user's kept movies,
sorted by id, are cut into blocks of ``block_size``; task ``(i, j)`` with ``i < j``
pairs every movie of block ``i`` with every movie of block ``j`` (all smaller than
those of block ``j``, since the list is sorted), and the diagonal task ``(i, i)``
pairs the movies of block ``i`` among themselves. The tasks of one user together
produce each unordered pair of the user's movies exactly once.

A pair ``(a, b)`` with ``a < b`` is coded as the int64 ``a * 2**32 + b`` so that the
shuffle moves one integer per distinct pair and sorting codes sorts by ``(a, b)``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

SHIFT = 32
LOW_MASK = (1 << SHIFT) - 1


def encode_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Code pairs of non-negative int32 ids as int64 ``a << 32 | b``."""
    return (np.asarray(a, dtype=np.int64) << SHIFT) | np.asarray(b, dtype=np.int64)


def decode_pairs(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`encode_pairs`: ``(a, b)`` as int32 arrays."""
    codes = np.asarray(codes, dtype=np.int64)
    return (codes >> SHIFT).astype(np.int32), (codes & LOW_MASK).astype(np.int32)


def task_cells(len_a: np.ndarray, len_b: np.ndarray, diag: np.ndarray) -> np.ndarray:
    """Work of each task: cells of the product it computes (``|A|^2`` on the diagonal)."""
    len_a = np.asarray(len_a, dtype=np.int64)
    len_b = np.asarray(len_b, dtype=np.int64)
    return np.where(diag, len_a * len_a, len_a * len_b)


def chunk_bounds(cells: np.ndarray, max_cells: int) -> list[tuple[int, int]]:
    """Split consecutive tasks into ``[start, stop)`` chunks of at most ``max_cells`` work.

    A single task larger than ``max_cells`` forms a chunk of its own (its size is
    bounded by ``block_size**2`` upstream), so a chunk's memory is bounded either way.
    """
    bounds: list[tuple[int, int]] = []
    n = len(cells)
    if n == 0:
        return bounds
    cum = np.cumsum(cells, dtype=np.int64)
    start = 0
    base = 0
    while start < n:
        # Last task whose cumulative work stays within the budget (at least one task).
        stop = int(np.searchsorted(cum, base + max_cells, side="right"))
        stop = max(stop, start + 1)
        bounds.append((start, stop))
        base = int(cum[stop - 1])
        start = stop
    return bounds


def _incidence_product(a_vals: np.ndarray, a_rows: np.ndarray, b_vals: np.ndarray,
                       b_rows: np.ndarray, k: int) -> tuple[np.ndarray, sp.coo_matrix]:
    """``(ids, A^T B)``: the movie x movie product of the task x movie incidence matrices
    of A and B, over local ids (``ids[local]`` is the movie id; local ids keep the order of
    movie ids, so "local a < local b" is "a < b"). scipy's sparse product in C sums the
    co-occurrences across tasks."""
    ids, inverse = np.unique(np.concatenate([a_vals, b_vals]), return_inverse=True)
    m = len(ids)
    a_loc = inverse[:a_vals.size].astype(np.int32)
    b_loc = inverse[a_vals.size:].astype(np.int32)
    at = sp.csr_matrix((np.ones(a_vals.size, np.int32), (a_loc, a_rows)), shape=(m, k))
    bm = sp.csr_matrix((np.ones(b_vals.size, np.int32), (b_rows, b_loc)), shape=(k, m))
    return ids, (at @ bm).tocoo()


def _sorted_codes(ids: np.ndarray, row: np.ndarray, col: np.ndarray,
                  counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(codes, counts)`` of the local pairs ``(row, col)``, sorted by code."""
    codes = encode_pairs(ids[row], ids[col])
    order = np.argsort(codes, kind="stable")
    return codes[order], counts[order].astype(np.int64)


_EMPTY = (np.empty(0, np.int64), np.empty(0, np.int64))


def block_pair_counts(a_ptr: np.ndarray, a_items: np.ndarray, b_ptr: np.ndarray,
                      b_items: np.ndarray, diag: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pair counts of a chunk of tasks, aggregated: ``(codes, counts)``, codes sorted.

    Args:
        a_ptr, a_items: task ``k``'s block A is ``a_items[a_ptr[k]:a_ptr[k+1]]`` (sorted
            movie ids, distinct within the task).
        b_ptr, b_items: block B likewise; ignored for diagonal tasks.
        diag: bool per task, True for a diagonal task (pairs within block A).

    For off-diagonal tasks every id of A must be smaller than every id of B (what
    cutting a sorted list into blocks gives). The counts are the co-occurrence product
    ``A^T B`` of the task x movie incidence matrices, keeping cells ``a < b``: on the
    diagonal that is the upper triangle, off the diagonal every cell.
    """
    a_ptr = np.asarray(a_ptr, dtype=np.int64)
    b_ptr = np.asarray(b_ptr, dtype=np.int64)
    diag = np.asarray(diag, dtype=bool)
    k = len(diag)
    len_a = np.diff(a_ptr)
    len_b = np.where(diag, len_a, np.diff(b_ptr))
    a_items = np.asarray(a_items)
    b_items = np.asarray(b_items)
    a_vals = a_items[_ranges(a_ptr[:-1], len_a)]
    # Block B of a diagonal task is its block A.
    b_idx = _ranges(np.where(diag, a_ptr[:-1], b_ptr[:-1]), len_b)
    b_from_a = np.repeat(diag, len_b)
    b_vals = np.empty(b_idx.size, dtype=a_items.dtype)
    b_vals[b_from_a] = a_items[b_idx[b_from_a]]
    b_vals[~b_from_a] = b_items[b_idx[~b_from_a]]
    if a_vals.size == 0 or b_vals.size == 0:
        return _EMPTY
    ids, prod = _incidence_product(a_vals, np.repeat(np.arange(k, dtype=np.int32), len_a),
                                   b_vals, np.repeat(np.arange(k, dtype=np.int32), len_b), k)
    keep = prod.row < prod.col
    return _sorted_codes(ids, prod.row[keep], prod.col[keep], prod.data[keep])


def cross_pair_counts(a_ptr: np.ndarray, a_items: np.ndarray, b_ptr: np.ndarray,
                      b_items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts of the pairs ``{x, y}``, x in task k's A, y in its B, coded ``min << 32 | max``.

    Task ``k``'s A is ``a_items[a_ptr[k]:a_ptr[k+1]]``, its B likewise; A and B must be
    disjoint (ValueError otherwise) but, unlike the block tasks of a sorted list, their ids
    may interleave (incremental counts: appended movies x earlier ones). Returns
    ``(codes, counts)`` aggregated over the tasks, codes sorted.
    """
    a_ptr = np.asarray(a_ptr, dtype=np.int64)
    b_ptr = np.asarray(b_ptr, dtype=np.int64)
    k = len(a_ptr) - 1
    a_vals = np.asarray(a_items)[a_ptr[0]:a_ptr[-1]]
    b_vals = np.asarray(b_items)[b_ptr[0]:b_ptr[-1]]
    if k <= 0 or a_vals.size == 0 or b_vals.size == 0:
        return _EMPTY
    ids, prod = _incidence_product(a_vals, np.repeat(np.arange(k, dtype=np.int32),
                                                     np.diff(a_ptr)),
                                   b_vals, np.repeat(np.arange(k, dtype=np.int32),
                                                     np.diff(b_ptr)), k)
    if np.any(prod.row == prod.col):
        raise ValueError("a task's A and B share a movie: the pairs would not be distinct")
    # An unordered pair may come as (x, y) or (y, x): fold both onto the upper triangle.
    folded = sp.triu(prod + prod.T, k=1).tocoo()
    return _sorted_codes(ids, folded.row, folded.col, folded.data)


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(s, s + n)`` for each (s, n), vectorised."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, np.int64)
    offsets = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(np.asarray(starts, dtype=np.int64), lengths) + (np.arange(total) - offsets)


def iter_block_pair_counts(a_ptr: np.ndarray, a_items: np.ndarray, b_ptr: np.ndarray,
                           b_items: np.ndarray, diag: np.ndarray,
                           max_cells: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """:func:`block_pair_counts` over chunks of at most ``max_cells`` work each."""
    diag = np.asarray(diag, dtype=bool)
    return _chunked(lambda a, b, lo, hi: block_pair_counts(a, a_items, b, b_items,
                                                            diag[lo:hi]),
                    a_ptr, b_ptr, diag, max_cells)


def iter_cross_pair_counts(a_ptr: np.ndarray, a_items: np.ndarray, b_ptr: np.ndarray,
                           b_items: np.ndarray,
                           max_cells: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """:func:`cross_pair_counts` over chunks of at most ``max_cells`` cells each."""
    return _chunked(lambda a, b, lo, hi: cross_pair_counts(a, a_items, b, b_items),
                    a_ptr, b_ptr, None, max_cells)


def _chunked(kernel, a_ptr: np.ndarray, b_ptr: np.ndarray, diag: np.ndarray | None,
             max_cells: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Run ``kernel(a_ptr chunk, b_ptr chunk, start, stop)`` over consecutive chunks of
    tasks of at most ``max_cells`` work (``task_cells``); yield its non-empty results."""
    a_ptr = np.asarray(a_ptr, dtype=np.int64)
    b_ptr = np.asarray(b_ptr, dtype=np.int64)
    n = len(a_ptr) - 1
    cells = task_cells(np.diff(a_ptr), np.diff(b_ptr),
                       np.zeros(n, bool) if diag is None else diag)
    for start, stop in chunk_bounds(cells, max_cells):
        codes, counts = kernel(a_ptr[start:stop + 1], b_ptr[start:stop + 1], start, stop)
        if codes.size:
            yield codes, counts


def min_label_components(nodes: np.ndarray, src: np.ndarray,
                         dst: np.ndarray) -> np.ndarray:
    """Connected component of every node of ``nodes``, named by its smallest node id.

    ``src``/``dst`` are undirected edges between ids of ``nodes`` (ids not in ``nodes``
    raise ValueError). Returns an array aligned with ``nodes``.
    """
    nodes = np.asarray(nodes, dtype=np.int64)
    order = np.argsort(nodes, kind="stable")
    sorted_nodes = nodes[order]
    n = len(nodes)
    if n == 0:
        return np.empty(0, np.int64)
    s = np.searchsorted(sorted_nodes, src)
    d = np.searchsorted(sorted_nodes, dst)
    if len(s) and (s.max() >= n or d.max() >= n or np.any(sorted_nodes[s] != src)
                   or np.any(sorted_nodes[d] != dst)):
        raise ValueError("an edge names a node that is not in the node list")
    graph = sp.coo_matrix((np.ones(len(s), dtype=np.int8), (s, d)), shape=(n, n)).tocsr()
    _, labels = connected_components(graph, directed=False)
    # Sorted nodes: the first node seen for a label is its smallest id.
    first = np.full(labels.max() + 1, -1, dtype=np.int64)
    uniq, first_pos = np.unique(labels, return_index=True)
    first[uniq] = sorted_nodes[first_pos]
    out = np.empty(n, dtype=np.int64)
    out[order] = first[labels]
    return out
