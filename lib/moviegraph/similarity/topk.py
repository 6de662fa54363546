"""Exact blocked top-k search over a catalogue matrix (numpy/torch, no Spark).

A :class:`Searcher` holds the catalogue (``n`` item vectors, row ``i`` = position ``i``;
callers sort items by id so that "lower position" means "lower id"). ``search`` scores
query rows a block at a time with one matrix product (torch, on CUDA when present), masks
excluded items with ``-inf`` and keeps the ``k + margin`` best candidates per row. Those
candidates are then rescored in float64, pair by pair, and ranked by (score descending,
position ascending). So:

* memory is bounded by ``block_size x n`` scores, never ``n x n``;
* the result is the exact float64 top-k (float32 rounding in the product can only reorder
  candidates that lie within rounding error of each other, and the margin keeps those in
  the candidate set);
* a row's result does not depend on which other rows share its block (the final scores
  are computed per pair), hence not on Spark's partitioning.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from moviegraph.train.device import pick_device

METRICS = ("cosine", "dot")


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length in float64; all-zero rows stay zero (cosine 0 with all)."""
    v = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norms > 0, norms, 1.0)


def block_topk(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k of each row, best first, equal scores ordered by lower column.

    Args:
        scores: (b, n) float tensor; ``-inf`` marks excluded entries. No NaN.
        k: how many (capped at n).

    Returns:
        ``(values, columns)``, each (b, min(k, n)); columns of ``-inf`` entries (rows with
        fewer than k admissible items) are set to -1.
    """
    b, n = scores.shape
    k = min(k, n)
    if k == 0 or b == 0:
        return (scores.new_empty((b, k)), torch.empty((b, k), dtype=torch.long,
                                                      device=scores.device))
    # torch.topk picks arbitrarily among values tied with the k-th. Taking k + 1 (sorted)
    # shows where such a tie straddles the cut (the (k+1)-th equals the k-th) without another
    # pass over the block; those rows are redone with a stable sort (lower column first).
    vals, cols = torch.topk(scores, min(k + 1, n), dim=1, sorted=True)
    if k < n:
        straddle = torch.nonzero(vals[:, k] == vals[:, k - 1]).flatten()
        vals, cols = vals[:, :k].clone(), cols[:, :k].clone()
        if straddle.numel():
            sv, si = torch.sort(scores[straddle], dim=1, descending=True, stable=True)
            vals[straddle] = sv[:, :k]
            cols[straddle] = si[:, :k]
    # Order: column ascending, then a stable sort by score descending.
    order = torch.argsort(cols, dim=1)
    cols, vals = cols.gather(1, order), vals.gather(1, order)
    order = torch.sort(vals, dim=1, descending=True, stable=True).indices
    cols, vals = cols.gather(1, order), vals.gather(1, order)
    cols[torch.isneginf(vals)] = -1
    return vals, cols


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


class Searcher:
    """Exact top-k of query rows against a fixed catalogue by cosine or dot product.

    Args:
        items: (n, d) item vectors (any float dtype), row = position.
        metric: ``"cosine"`` (queries and items normalised; zero vectors score 0) or
            ``"dot"``.
        device: torch device for the products; default CUDA when present.
    """

    def __init__(self, items: np.ndarray, metric: str = "dot",
                 device: str | torch.device | None = None) -> None:
        if metric not in METRICS:
            raise ValueError(f"metric {metric!r}: must be one of {', '.join(METRICS)}")
        items = np.asarray(items)
        if items.ndim != 2:
            raise ValueError(f"items must be 2-D, got shape {items.shape}")
        self.metric = metric
        self.device = pick_device(device)
        # float64 copy for the exact rescoring of candidates; float32 one for the products.
        self.items64 = unit_rows(items) if metric == "cosine" else items.astype(np.float64)
        self.items32 = torch.from_numpy(self.items64.astype(np.float32)).to(self.device)

    @property
    def n_items(self) -> int:
        """Catalogue size."""
        return int(self.items64.shape[0])

    def search(self, queries: np.ndarray, k: int, exclude: sp.csr_matrix | None = None,
               block_size: int = 256, margin: int = 16) -> TopK:
        """Top-k items of every query row.

        Args:
            queries: (b, d) query vectors (normalised here when the metric is cosine).
            k: results per row (rows with fewer admissible items get -1 / -inf padding).
            exclude: optional bool CSR (b, n) of items a row must not return (the query
                movie itself, a user's rated movies); see :func:`exclusion_csr`.
            block_size: query rows per matrix product (memory ~ block_size x n x 4 bytes,
                plus a same-sized bool temporary).
            margin: extra float32 candidates per row, rescored exactly in float64.
        """
        q64 = unit_rows(queries) if self.metric == "cosine" else np.asarray(queries, np.float64)
        b, n = q64.shape[0], self.n_items
        if q64.ndim != 2 or (b and q64.shape[1] != self.items64.shape[1]):
            raise ValueError(f"queries shape {q64.shape} vs items {self.items64.shape}")
        kk = min(k, n)
        positions = np.full((b, kk), -1, dtype=np.int64)
        scores = np.full((b, kk), -np.inf)
        if exclude is not None:
            exclude = sp.csr_matrix(exclude)
            if exclude.shape != (b, n):
                raise ValueError(f"exclude shape {exclude.shape} != {(b, n)}")
        q32 = q64.astype(np.float32)
        for start in range(0, b, block_size):
            stop = min(start + block_size, b)
            block = torch.from_numpy(q32[start:stop]).to(self.device)
            s = block @ self.items32.T
            if exclude is not None:
                ex = exclude[start:stop]
                rows = np.repeat(np.arange(stop - start), np.diff(ex.indptr))
                s[torch.from_numpy(rows).to(self.device),
                  torch.from_numpy(ex.indices.astype(np.int64)).to(self.device)] = -np.inf
            _, cand_t = block_topk(s, kk + margin)
            del s
            cand = cand_t.cpu().numpy()
            valid = cand >= 0
            # Exact float64 scores of the candidates, computed pair by pair.
            exact = np.einsum("bd,bcd->bc", q64[start:stop],
                              self.items64[np.where(valid, cand, 0)])
            exact = np.where(valid, exact, -np.inf)
            order = np.lexsort((np.where(valid, cand, n), -exact), axis=1)[:, :kk]
            positions[start:stop] = np.take_along_axis(cand, order, axis=1)
            scores[start:stop] = np.take_along_axis(exact, order, axis=1)
        return TopK(positions=positions, scores=scores)


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
