"""Exact co-rating counts by movie ranges: rows of ``XᵀX`` with no shuffle of pairs.

``X`` is the binary user x movie incidence of the kept ratings (one int32 per rating,
small next to the pairs it makes). The movies, sorted by id, are cut into contiguous
ranges; the task of range ``[lo, hi)`` computes the rows ``a ∈ [lo, hi)`` of ``XᵀX``
restricted to columns ``b > a``: the exact count of every pair whose smaller movie lies
in its range. So every pair comes out of exactly one task, already summed over all
users, and nothing is aggregated afterwards.

Cost of row ``a`` (its *work*): Σ over its raters ``u`` of the movies of ``u`` after
``a``; summed over all rows that is Σ_u n_u(n_u-1)/2, the pairs to count. Ranges are
balanced on that work (plus one per rating for the slicing). Inside a task the range is
processed in chunks of at most ``max_cells`` work (a row heavier than that is a chunk
of its own and makes at most one output per movie), so a task's memory is bounded
whatever the users look like: a heavy user only spreads more work over more chunks.

Nothing here knows about Spark: the Spark layer (:mod:`moviegraph.graph.pairs`) ships the
incidence to its tasks and moves the Arrow batches these functions' arrays become.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from moviegraph.graph.kernels import _ranges, chunk_bounds


@dataclass
class Incidence:
    """The kept user x movie incidence, both ways (CSR by user and CSC by movie).

    Movies are local indices ``0..M-1`` in the order of their ids (``ids[local]`` is the
    movie id), so "local a < local b" is "id a < id b".
    """

    ids: np.ndarray  # int32, sorted movie ids
    indptr: np.ndarray  # int64, users + 1: user u's movies are indices[indptr[u]:indptr[u+1]]
    indices: np.ndarray  # int32, local movie indices, sorted within each user
    col_ptr: np.ndarray  # int64, movies + 1: movie m's raters are col_users[col_ptr[m]:...]
    col_users: np.ndarray  # int32, user rows, sorted within each movie

    @property
    def users(self) -> int:
        """Number of user rows."""
        return len(self.indptr) - 1

    @property
    def movies(self) -> int:
        """Number of movies (columns)."""
        return len(self.ids)


def build_incidence(offsets: np.ndarray, values: np.ndarray) -> Incidence:
    """:class:`Incidence` of user lists given as a list column's ``offsets`` + ``values``
    (each list sorted and distinct, as :func:`moviegraph.graph.pairs.user_lists` makes)."""
    offsets = np.asarray(offsets, dtype=np.int64)
    values = np.asarray(values)[offsets[0]:offsets[-1]]
    offsets = offsets - offsets[0]
    ids, local = np.unique(values, return_inverse=True)
    local = local.astype(np.int32)
    users = len(offsets) - 1
    x = sp.csr_matrix((np.ones(local.size, np.int8), local, offsets),
                      shape=(users, len(ids)))
    xc = x.tocsc()  # in C; keeps users sorted within each movie
    return Incidence(ids.astype(np.int32), offsets, local, xc.indptr.astype(np.int64),
                     xc.indices.astype(np.int32))


def row_work(inc: Incidence) -> np.ndarray:
    """Work of each movie's row (int64 per movie): Σ over its raters of their movies
    after it, plus one per rater (the cost of slicing the rater's list)."""
    lens = np.diff(inc.indptr)
    pos = np.arange(inc.indices.size, dtype=np.int64) - np.repeat(inc.indptr[:-1], lens)
    after = np.repeat(lens, lens) - pos  # movies after this one, plus one
    return np.bincount(inc.indices, weights=after, minlength=inc.movies).astype(np.int64)


def split_ranges(work: np.ndarray, tasks: int) -> np.ndarray:
    """Cut movies ``0..len(work)-1`` into at most ``tasks`` contiguous, non-empty ranges of
    about equal total work: returns the bounds ``[0, c1, ..., len(work)]``.

    A movie heavier than an equal share makes a range of its own; ranges are never empty.
    """
    m = len(work)
    if m == 0:
        return np.zeros(1, np.int64)
    tasks = max(1, min(int(tasks), m))
    cum = np.cumsum(np.asarray(work, dtype=np.int64))
    total = int(cum[-1])
    targets = (np.arange(1, tasks, dtype=np.float64) * (total / tasks))
    # The movie whose cumulative work reaches a target closes a range.
    cuts = np.searchsorted(cum, targets, side="left") + 1
    bounds = np.unique(np.concatenate([[0], np.clip(cuts, 1, m), [m]]))
    return bounds.astype(np.int64)


def range_pair_counts(inc: Incidence, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray,
                                                                    np.ndarray]:
    """Exact counts of the pairs ``(a, b)``, ``a`` in local range ``[lo, hi)``, ``b > a``.

    Returns ``(movie_a, movie_b, n)`` (ids, int32/int32/int64) sorted by ``(a, b)``.
    """
    s, e = int(inc.col_ptr[lo]), int(inc.col_ptr[hi])
    raters = inc.col_users[s:e]
    if raters.size == 0:
        return _EMPTY
    users, pos = np.unique(raters, return_inverse=True)
    # The raters' movies from ``lo`` on (b > a >= lo): each list is sorted, so a suffix.
    starts, ends = inc.indptr[users], inc.indptr[users + 1]
    lens = ends - starts
    idx = _ranges(starts, lens)
    cols = inc.indices[idx]
    keep = cols > lo  # b > a >= lo; b = lo can pair with no a of the range
    kept_per_user = np.bincount(np.repeat(np.arange(users.size), lens)[keep],
                                minlength=users.size)
    b_ptr = np.concatenate([[0], np.cumsum(kept_per_user)])
    bm = sp.csr_matrix((np.ones(int(b_ptr[-1]), np.int32), cols[keep], b_ptr),
                       shape=(users.size, inc.movies))
    at = sp.csr_matrix((np.ones(raters.size, np.int32), pos.astype(np.int32),
                        inc.col_ptr[lo:hi + 1] - s), shape=(hi - lo, users.size))
    prod = at @ bm  # rows a in [lo, hi), summed over users by scipy in C
    prod.sort_indices()
    rows = np.repeat(np.arange(lo, hi, dtype=np.int64), np.diff(prod.indptr))
    upper = prod.indices > rows
    if not upper.any():
        return _EMPTY
    return (inc.ids[rows[upper]], inc.ids[prod.indices[upper]],
            prod.data[upper].astype(np.int64))


_EMPTY = (np.empty(0, np.int32), np.empty(0, np.int32), np.empty(0, np.int64))


def iter_range_pair_counts(inc: Incidence, lo: int, hi: int, work: np.ndarray,
                           max_cells: int) -> Iterator[tuple[np.ndarray, np.ndarray,
                                                             np.ndarray]]:
    """:func:`range_pair_counts` of ``[lo, hi)`` in chunks of at most ``max_cells`` work
    (``work`` from :func:`row_work`); yields the non-empty results in ``(a, b)`` order."""
    for start, stop in chunk_bounds(np.asarray(work[lo:hi], dtype=np.int64), max_cells):
        out = range_pair_counts(inc, lo + start, lo + stop)
        if out[0].size:
            yield out


def chunk_count(work: np.ndarray, bounds: np.ndarray, max_cells: int) -> tuple[int, int]:
    """``(chunks, largest chunk's work)`` over the ranges ``bounds`` (for the run record)."""
    chunks, largest = 0, 0
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        w = np.asarray(work[lo:hi], dtype=np.int64)
        for start, stop in chunk_bounds(w, max_cells):
            chunks += 1
            largest = max(largest, int(w[start:stop].sum()))
    return chunks, largest
