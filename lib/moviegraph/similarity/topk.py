"""Exact blocked top-k search over a catalogue matrix (numpy + BLAS, no Spark, no torch).

A :class:`Searcher` holds the catalogue (``n`` item vectors, row ``i`` = position ``i``;
callers sort items by id so that "lower position" means "lower id") and, optionally, an
additive per-item term (a popularity prior, an item bias):
``score(q, j) = metric(q, e_j) + item_term[j]``. ``search`` scores query rows a block at a
time:

1. one float32 matrix product (BLAS) into a reused ``block x n`` buffer, the item term
   added, excluded items set to ``-inf``;
2. a partial sort per block without sorting the block: the columns are cut into ``c``
   interleaved slices, the element-wise maximum of the slices gives one "chunk maximum"
   per group of ``c`` columns, and the k-th largest chunk maximum (``np.partition`` on
   ``n / c`` values per row) is a lower bound of the row's k-th largest score;
3. every entry within ``2 eps`` of that bound is a candidate (``eps`` bounds the float32
   error of a score: ``(d + 16) u (|q| max|e| + max|t|)``, ``u = 2^-24``), gathered
   from the chunks that can hold one: about ``k`` chunks of ``c`` entries per row;
4. the candidates are rescored in float64, pair by pair, and ranked by (score descending,
   position ascending).

So:

* memory is bounded by ``block_size x n`` float32 scores, never ``n x n``;
* the result is the exact float64 top-k with ties to the lower position: every item of it
  scores, in float32, within ``2 eps`` of the float32 k-th best, so it is a candidate
  (proof in :func:`candidates`); no fixed margin is guessed;
* a row's result does not depend on which other rows share its block, on the block size
  or on the BLAS kernel's summation order (only the candidate set can change, and it
  always holds the answer; final scores are computed per pair), hence not on Spark's
  partitioning.

Cost per score: the product (64 multiply-adds), one pass for the chunk maxima, plus
``O(k c + n / c)`` per row. numpy is used rather than torch so that executors need only
numpy and its BLAS (measured in ``benchmarks/similarity_scale.py``: OpenBLAS's sgemm into
a reused buffer beat torch's CPU matmul, and the chunk-maximum pass costs a fraction of
``torch.topk``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

METRICS = ("cosine", "dot")

#: Unit roundoff of float32.
U32 = 2.0**-24

#: Score entries gathered at once when collecting candidates (a few MB of temporaries);
#: blocks whose rows need more (ties everywhere, rows with fewer than k admissible items)
#: are handled by groups of rows.
MAX_PAIRS = 1 << 18

#: Candidate pairs rescored in float64 at once (two gathers of pairs x d float64).
RESCORE_PAIRS = 1 << 14


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length in float64; all-zero rows stay zero (cosine 0 with all)."""
    v = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norms > 0, norms, 1.0)


def chunk_count(n: int, k: int) -> int:
    """Interleaved slices ``c`` for an ``n``-column block and top-``k``.

    Per row the partial sort costs about ``2 n / c`` (partition of the chunk maxima) plus
    ``8 k c`` (gathering the candidate chunks) nanoseconds: ``c ~ sqrt(n / 4k)``, at most 64.
    """
    return int(min(64, max(1, round(np.sqrt(n / (4.0 * max(k, 1)))))))


def candidate_groups(scores: np.ndarray, k: int, slack: np.ndarray | float = 0.0,
                     chunks: int | None = None, max_pairs: int = MAX_PAIRS
                     ) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """Entries of each row that may belong to its top-k, by groups of whole rows.

    Yields ``(lo, hi, rows, columns)``: the candidates of rows ``lo..hi-1`` (``rows`` are
    row numbers in ``scores``), groups small enough that gathering them reads about
    ``max_pairs`` entries (one row may exceed it alone: ties everywhere).

    The candidates of a row are its finite entries ``>= t - slack``, where ``t`` is a
    lower bound of the row's k-th largest value (all finite entries when the row has
    fewer than ``k``). With ``slack = 2 eps``, where every value is within ``eps`` of an
    exact score, they hold the exact top-k: the k entries ``>= T`` (the k-th largest
    value) have exact scores ``>= T - eps``, so the exact k-th best scores ``>= T - eps``
    and each of the exact top-k has a value ``>= T - 2 eps >= t - slack``.

    ``t`` is the k-th largest "chunk maximum": chunk ``j`` is the columns
    ``j, j + m, j + 2m, ...`` (``m = columns / chunks``), so the maxima are one element-wise
    maximum over ``chunks`` contiguous slices; k chunk maxima are k distinct entries, so
    ``t <= T``, and only chunks whose maximum reaches ``t - slack`` are read.

    Args:
        scores: (b, w) float32 or float64, ``-inf`` = excluded; no NaN. ``w`` must be a
            multiple of ``chunks`` (pad with ``-inf``).
        k: how many the caller will keep per row.
        slack: scalar or (b,) float64, ``>= 0``.
        chunks: interleaved slices (default :func:`chunk_count`).
        max_pairs: entries gathered per group.
    """
    b, w = scores.shape
    c = chunks or chunk_count(w, k)
    if w % c:
        raise ValueError(f"{w} columns are not a multiple of {c} chunks")
    if k <= 0 or b == 0:
        return
    m = w // c
    cube = scores.reshape(b, c, m)
    cmax = cube.max(axis=1)  # (b, m): element-wise maximum of the c slices
    if k < m:
        kth = np.partition(cmax, m - k, axis=1)[:, m - k].astype(np.float64)
    else:
        kth = np.full(b, -np.inf)
    thr = kth - slack  # -inf stays -inf: every finite entry is a candidate
    sel = cmax >= thr[:, None]
    # Whole rows per group, about max_pairs gathered entries each.
    gathered = np.count_nonzero(sel, axis=1) * c
    group = (np.cumsum(gathered) - gathered) // max(max_pairs, 1)
    cuts = np.flatnonzero(np.diff(group)) + 1
    for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, b], strict=True):
        sel_r, sel_c = np.nonzero(sel[lo:hi])
        sel_r += lo
        vals = cube[sel_r, :, sel_c]  # (pairs, c): the chunks' entries
        keep = (vals >= thr[sel_r, None]) & np.isfinite(vals)
        rows = np.broadcast_to(sel_r[:, None], vals.shape)[keep]
        cols = (sel_c[:, None] + m * np.arange(c))[keep]
        yield int(lo), int(hi), rows.astype(np.int64), cols.astype(np.int64)


def candidates(scores: np.ndarray, k: int, slack: np.ndarray | float = 0.0,
               chunks: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All of :func:`candidate_groups` at once: ``(rows, columns)``."""
    parts = list(candidate_groups(scores, k, slack, chunks))
    if not parts:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return (np.concatenate([p[2] for p in parts]), np.concatenate([p[3] for p in parts]))


def rank_pairs(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, b: int,
               k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of (row, column, value) triples per row by (value desc, column asc).

    Returns ``(columns, values)``, each (b, k); rows with fewer than k triples are padded
    with column -1 and value ``-inf``.
    """
    out_c = np.full((b, k), -1, dtype=np.int64)
    out_v = np.full((b, k), -np.inf)
    if rows.size == 0 or k == 0:
        return out_c, out_v
    order = np.lexsort((cols, -values, rows))
    rows, cols, values = rows[order], cols[order], values[order]
    first = np.searchsorted(rows, np.arange(b))
    rank = np.arange(rows.size) - first[rows]
    top = rank < k
    out_c[rows[top], rank[top]] = cols[top]
    out_v[rows[top], rank[top]] = values[top]
    return out_c, out_v


def block_topk(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of each row, best first, equal scores ordered by lower column.

    Args:
        scores: (b, n) float array; ``-inf`` marks excluded entries. No NaN.
        k: how many (capped at n).

    Returns:
        ``(values, columns)``, each (b, min(k, n)), values as float64; columns of ``-inf``
        entries (rows with fewer than k admissible items) are -1.
    """
    scores = np.asarray(scores)
    b, n = scores.shape
    k = min(k, n)
    c = chunk_count(n, k)
    w = -(-n // c) * c
    if w != n:
        padded = np.full((b, w), -np.inf, dtype=scores.dtype)
        padded[:, :n] = scores
        scores = padded
    rows, cols = candidates(scores, k, 0.0, c)
    cols_out, vals = rank_pairs(rows, cols, scores[rows, cols].astype(np.float64), b, k)
    return vals, cols_out


@dataclass(frozen=True)
class TopK:
    """Per query row: item positions (-1 = no item left) and scores (-inf there), best first."""

    positions: np.ndarray  # int64 (b, k)
    scores: np.ndarray  # float64 (b, k)


def exclusion_csr(indptr: np.ndarray, positions: np.ndarray, n_rows: int,
                  n_items: int) -> sp.csr_matrix:
    """Bool CSR (n_rows, n_items) of excluded items from per-row position lists.

    Positions < 0 (items unknown to the catalogue) are dropped; duplicates are harmless.
    """
    indptr = np.asarray(indptr, dtype=np.int64)
    positions = np.asarray(positions, dtype=np.int64)
    rows = np.repeat(np.arange(n_rows, dtype=np.int64), np.diff(indptr))
    keep = positions >= 0
    m = sp.csr_matrix((np.ones(int(keep.sum()), dtype=bool), (rows[keep], positions[keep])),
                      shape=(n_rows, n_items))
    m.sum_duplicates()
    return m


def _finite_float64(values: np.ndarray, what: str) -> np.ndarray:
    out = np.asarray(values, dtype=np.float64)
    bad = int(np.size(out) - np.count_nonzero(np.isfinite(out)))
    if bad:
        raise ValueError(f"{what}: {bad} value(s) are NaN or infinite")
    return out


class Searcher:
    """Exact top-k of query rows against a fixed catalogue by cosine or dot product.

    Args:
        items: (n, d) item vectors (any float dtype), row = position.
        metric: ``"cosine"`` (queries and items normalised; zero vectors score 0) or
            ``"dot"``.
        item_term: optional (n,) additive per-item term; a query's score of item j is
            ``metric(q, e_j) + item_term[j]`` (default: none, i.e. zero).

    ``timings`` accumulates CPU seconds of the calling thread per phase of :meth:`search`
    (product, chunk maxima + candidates, float64 rescoring + ranking), for profiling; with
    BLAS on one thread (as in the Spark tasks) that is all of the work.

    One searcher per thread: it keeps its score buffer between calls.

    Raises:
        ValueError: unknown metric, wrong shapes, NaN or infinite values.
    """

    def __init__(self, items: np.ndarray, metric: str = "dot",
                 item_term: np.ndarray | None = None) -> None:
        if metric not in METRICS:
            raise ValueError(f"metric {metric!r}: must be one of {', '.join(METRICS)}")
        items = np.asarray(items)
        if items.ndim != 2:
            raise ValueError(f"items must be 2-D, got shape {items.shape}")
        items64 = _finite_float64(items, "item vectors")
        self.metric = metric
        # float64 copy for the exact rescoring of candidates; float32 one for the products.
        self.items64 = unit_rows(items64) if metric == "cosine" else items64
        n = self.items64.shape[0]
        self.term64: np.ndarray | None = None
        if item_term is not None:
            term = _finite_float64(item_term, "item term")
            if term.shape != (n,):
                raise ValueError(f"item term has shape {term.shape}, expected ({n},)")
            self.term64 = term
        self.items32 = np.ascontiguousarray(self.items64, dtype=np.float32)
        self.term32 = None if self.term64 is None else self.term64.astype(np.float32)
        # Bounds for eps (float64 norms of the float32 copies, rounded up by a hair).
        norms = np.linalg.norm(self.items32.astype(np.float64), axis=1)
        self.max_norm = float(norms.max(initial=0.0)) * (1 + 1e-12)
        self.max_term = (0.0 if self.term64 is None
                         else float(np.abs(self.term64).max(initial=0.0)))
        self.timings: dict[str, float] = {"product": 0.0, "candidates": 0.0, "rescore": 0.0}
        self._scratch = np.empty(0, dtype=np.float32)

    @property
    def n_items(self) -> int:
        """Catalogue size."""
        return int(self.items64.shape[0])

    def eps(self, query_norms: np.ndarray) -> np.ndarray:
        """Per query: bound on |float32 score - float64 score| over every item.

        A float32 dot product of length d (any summation order, FMA or not) is off by at
        most ``gamma_d sum |q_i e_i| <= gamma_d |q| |e|``, ``gamma_d ~ d u``; rounding q and
        e to float32 adds ``2u |q| |e|``, the item term ``u |t|`` and the sum ``u |s + t|``.
        ``(d + 16) u`` covers all of it with room to spare.
        """
        d = self.items64.shape[1]
        return (d + 16) * U32 * (np.asarray(query_norms, np.float64) * (1 + 1e-12)
                                 * self.max_norm + self.max_term)

    def search(self, queries: np.ndarray, k: int, exclude: sp.csr_matrix | None = None,
               block_size: int = 256,
               pair_term: Callable[[int, int], np.ndarray] | None = None) -> TopK:
        """Top-k items of every query row.

        Args:
            queries: (b, d) query vectors (normalised here when the metric is cosine).
            k: results per row (rows with fewer admissible items get -1 / -inf padding).
            exclude: optional bool CSR (b, n) of items a row must not return (the query
                movie itself, a user's rated movies); see :func:`exclusion_csr`.
            block_size: query rows per matrix product (memory ~ block_size x n x 4 bytes).
            pair_term: optional ``(start, stop) -> float64 (stop - start, n)``: an additive
                term of each (query row, item) pair (e.g. :class:`CoRating`), asked for one
                block of query rows at a time. Its float64 values enter the rescoring as
                they are, so a pair's score must not depend on the block it is asked in.
        """
        q64 = np.asarray(queries, dtype=np.float64)
        if q64.ndim != 2 or (q64.shape[0] and q64.shape[1] != self.items64.shape[1]):
            raise ValueError(f"queries shape {q64.shape} vs items {self.items64.shape}")
        q64 = _finite_float64(q64, "query vectors")
        if self.metric == "cosine":
            q64 = unit_rows(q64)
        b, n = q64.shape[0], self.n_items
        kk = min(k, n)
        positions = np.full((b, kk), -1, dtype=np.int64)
        scores = np.full((b, kk), -np.inf)
        if exclude is not None:
            exclude = sp.csr_matrix(exclude)
            if exclude.shape != (b, n):
                raise ValueError(f"exclude shape {exclude.shape} != {(b, n)}")
        if b == 0 or kk == 0:
            return TopK(positions=positions, scores=scores)
        c = chunk_count(n, kk)
        w = -(-n // c) * c  # columns padded to a multiple of c with -inf
        q32 = q64.astype(np.float32)
        slack = 2 * self.eps(np.linalg.norm(q32.astype(np.float64), axis=1))
        items_t = self.items32.T
        block_size = max(1, min(block_size, b))
        buf = self._buffer(block_size, w)
        for start in range(0, b, block_size):
            stop = min(start + block_size, b)
            t0 = time.thread_time()
            s = buf[:stop - start]
            np.matmul(q32[start:stop], items_t, out=s[:, :n])
            if self.term32 is not None:
                s[:, :n] += self.term32
            s[:, n:] = -np.inf
            pair = None
            block_slack = slack[start:stop]
            if pair_term is not None:
                pair = _finite_float64(pair_term(start, stop), "pair term")
                if pair.shape != (stop - start, n):
                    raise ValueError(f"pair term shape {pair.shape} != {(stop - start, n)}")
                s[:, :n] += pair.astype(np.float32)
                # Rounding the pair term to float32 and adding it: u |p| + u |sum| per
                # entry, covered by (d + 16) u max|p| like the item term (see eps).
                d = self.items64.shape[1]
                block_slack = block_slack + 2 * (d + 16) * U32 * np.abs(pair).max(
                    axis=1, initial=0.0)
            if exclude is not None:
                ex = exclude[start:stop]
                s[np.repeat(np.arange(stop - start), np.diff(ex.indptr)), ex.indices] = -np.inf
            t1 = time.thread_time()
            self.timings["product"] += t1 - t0
            for lo, hi, rows, cols in candidate_groups(s, kk, block_slack, c):
                t2 = time.thread_time()
                self.timings["candidates"] += t2 - t1
                exact = self._rescore(q64, start + rows, cols)
                if pair is not None:
                    exact += pair[rows, cols]
                pos, sc = rank_pairs(rows - lo, cols, exact, hi - lo, kk)
                positions[start + lo:start + hi] = pos
                scores[start + lo:start + hi] = sc
                t1 = time.thread_time()
                self.timings["rescore"] += t1 - t2
        return TopK(positions=positions, scores=scores)

    def _buffer(self, rows: int, width: int) -> np.ndarray:
        """A (rows, width) float32 score buffer, kept between calls: a fresh one of tens of
        MB would be page-faulted in again on every call (one per Arrow batch)."""
        size = rows * width
        if self._scratch.size < size:
            self._scratch = np.empty(size, dtype=np.float32)
        return self._scratch[:size].reshape(rows, width)

    def _rescore(self, q64: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Exact float64 scores of (query row, item) pairs, pair by pair.

        Each pair's arithmetic is the same whatever block or group it is in (element-wise
        products, then numpy's fixed-order sum over d), so results do not depend on them.
        """
        out = np.empty(rows.size)
        for lo in range(0, rows.size, RESCORE_PAIRS):
            hi = min(lo + RESCORE_PAIRS, rows.size)
            r, c = rows[lo:hi], cols[lo:hi]
            out[lo:hi] = (q64[r] * self.items64[c]).sum(axis=1)
        if self.term64 is not None:
            out += self.term64[cols]
        return out


def profile_queries(unit_items: np.ndarray, user_ratings: sp.csr_matrix,
                    like_threshold: float = 4.0) -> np.ndarray:
    """Item-embedding user queries of EVALUATION.md: sum of the profile's unit vectors.

    ``score(u, i) = sum_j cos(e_i, e_j)`` over u's movies ``j`` rated >= ``like_threshold``
    (all of u's movies when none is) equals ``unit_i . sum_j unit_j``, so the query of u is
    that sum and the search metric is ``"dot"`` against the unit item vectors.

    Args:
        unit_items: (n, d) unit-length item vectors (:func:`unit_rows`).
        user_ratings: CSR (b, n) of each user's ratings (value = rating, stored = rated).

    Returns:
        float64 (b, d).
    """
    r = sp.csr_matrix(user_ratings)
    row = np.repeat(np.arange(r.shape[0]), np.diff(r.indptr))
    liked = r.data >= like_threshold
    has_liked = np.bincount(row[liked], minlength=r.shape[0]) > 0
    keep = (liked | ~has_liked[row]).astype(np.float64)
    weights = sp.csr_matrix((keep, r.indices, r.indptr), shape=r.shape)
    return np.asarray(weights @ np.asarray(unit_items, dtype=np.float64))


class CoRating:
    """Co-rating cosine of catalogue items, ``weight * n_ij / sqrt(n_i n_j)``, by blocks.

    ``n_ij`` = users who rated both items, ``n_i`` = users who rated ``i`` (ItemKNN's
    similarity of binary rating columns); 0 where either has no rater. Held as the sparse
    item x user incidence (never items x items): a block of query items costs one sparse
    product with integer counts, exact, and each pair's float64 value is computed the same
    way whatever block it is in, so results do not depend on partitioning.

    Args:
        item_pos: catalogue position of each rating (entries < 0 are dropped).
        user_pos: user index of each rating (any non-negative ints); duplicates count once.
        n_items: catalogue size.
        weight: the term's weight (``>= 0``).
    """

    def __init__(self, item_pos: np.ndarray, user_pos: np.ndarray, n_items: int,
                 weight: float) -> None:
        item_pos = np.asarray(item_pos, np.int64)
        user_pos = np.asarray(user_pos, np.int64)
        keep = item_pos >= 0
        item_pos, user_pos = item_pos[keep], user_pos[keep]
        n_users = int(user_pos.max()) + 1 if user_pos.size else 0
        x = sp.csr_matrix((np.ones(item_pos.size, np.int64), (item_pos, user_pos)),
                          shape=(n_items, n_users))
        x.sum_duplicates()
        x.data[:] = 1
        self.x = x
        self.xt = x.T.tocsr()
        self.counts = np.diff(x.indptr).astype(np.float64)
        self.weight = float(weight)

    def rows(self, positions: np.ndarray) -> np.ndarray:
        """Dense float64 (len(positions), n_items): the term of the query items at
        ``positions`` with every catalogue item."""
        pos = np.asarray(positions, np.int64)
        co = (self.x[pos] @ self.xt).toarray().astype(np.float64)
        denom = np.sqrt(self.counts[pos][:, None] * self.counts[None, :])
        out = np.divide(co, denom, out=np.zeros_like(co), where=denom > 0)
        return self.weight * out
