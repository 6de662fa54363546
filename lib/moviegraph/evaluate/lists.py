"""EVALUATION.md's metrics of the shipped tables: neighbour lists and recommendation lists.

The evaluate stage reads ``similar_movies`` and ``recommendations`` as they are (built by
the ``similar`` stage from the ranking split's train part) and scores the rows; nothing
here ranks a movie by a model. Lists are dense arrays of catalogue positions
(:class:`~moviegraph.protocol.data.EvalData`'s), ``-1`` padded, in the table's rank order.

- neighbour hit rate: query = the user's last train movie rated >= 4 (by time, then movie
  id); answer = the query's top-k list minus the user's train movies; HR@k = share of
  evaluated users with a relevant test movie in it, Recall@k = hits / min(k, |relevant|);
  a user without a query or whose query has no list is a miss;
- genre precision@10 of the lists: for each train movie with a genre that has a list, the
  share of its first 10 neighbours sharing a genre with it, averaged (and the share of
  such movies that have a list: ``list_coverage``);
- Recall@k / NDCG@k of recommendation lists, as :func:`moviegraph.protocol.metrics.
  ranking_metrics` defines them for a full ranking.

The baselines' lists (ItemKNN and co-count neighbours) come from :func:`baseline_lists`,
in blocks of query movies (no dense movies x movies matrix).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from moviegraph.protocol.data import EvalData
from moviegraph.protocol.metrics import binarize, top_k


def table_lists(query_ids: np.ndarray, ranks: np.ndarray, item_ids: np.ndarray,
                query_universe: np.ndarray, item_universe: np.ndarray, k: int
                ) -> np.ndarray:
    """Rows of a list table as ``(len(query_universe), k)`` item positions, -1 padded.

    Rows whose query or item is outside its (sorted) universe, or whose rank is above
    ``k``, are dropped; the list keeps rank order.
    """
    out = np.full((len(query_universe), k), -1, np.int64)
    q = _positions(query_universe, np.asarray(query_ids, np.int64))
    i = _positions(item_universe, np.asarray(item_ids, np.int64))
    r = np.asarray(ranks, np.int64) - 1
    ok = (q >= 0) & (i >= 0) & (r >= 0) & (r < k)
    out[q[ok], r[ok]] = i[ok]
    # Compact: a list whose ranks skip (an item outside the universe) keeps its order.
    for row in np.flatnonzero(((out[:, :-1] < 0) & (out[:, 1:] >= 0)).any(axis=1)):
        vals = out[row][out[row] >= 0]
        out[row] = -1
        out[row, :vals.size] = vals
    return out


def lists_of(table: pa.Table, query_col: str, item_col: str, query_universe: np.ndarray,
             item_universe: np.ndarray, k: int) -> np.ndarray:
    """:func:`table_lists` of an Arrow table with ``query_col``, ``rank``, ``item_col``."""
    col = {c: table.column(c).to_numpy() for c in (query_col, "rank", item_col)}
    return table_lists(col[query_col], col["rank"], col[item_col], query_universe,
                       item_universe, k)


def _positions(universe: np.ndarray, ids: np.ndarray) -> np.ndarray:
    universe = np.asarray(universe, np.int64)
    if universe.size == 0:
        return np.full(ids.shape, -1, np.int64)
    pos = np.minimum(np.searchsorted(universe, ids), universe.size - 1)
    return np.where(universe[pos] == ids, pos, -1)


def query_movies(d: EvalData, like_threshold: float = 4.0) -> np.ndarray:
    """Each user's last train movie rated >= ``like_threshold`` by (time, movie id); -1
    for a user with none."""
    mask = ~d.is_test & (d.r >= like_threshold)
    u, m, t = d.u[mask], d.m[mask], d.ts[mask]
    order = np.lexsort((m, t, u))
    last = np.full(d.n_users, -1, np.int64)
    last[u[order]] = m[order]  # later rows overwrite: the last by (time, movie id)
    return last


def _relevant(d: EvalData, like_threshold: float = 4.0) -> sp.csr_matrix:
    rel = d.test.copy()
    rel.data = (rel.data >= like_threshold).astype(np.float64)
    rel.eliminate_zeros()
    return rel


@dataclass(frozen=True)
class NeighbourScore:
    """Neighbour hit rate of one set of lists."""

    hr: float
    recall: float
    users: int
    no_list: float  # share of evaluated users whose query has no list (or who have none)


def neighbour_hit_rate(lists: np.ndarray, d: EvalData, k: int = 20) -> NeighbourScore:
    """EVALUATION.md's neighbour hit rate of ``lists`` (n_items, >= k) against the test."""
    rel = _relevant(d)
    n_rel = np.diff(rel.indptr)
    users = np.flatnonzero(n_rel > 0)
    query = query_movies(d)[users]
    train = d.train
    hits = np.zeros(users.size)
    recall = np.zeros(users.size)
    no_list = 0
    for a, (u, q) in enumerate(zip(users, query, strict=True)):
        lst = lists[q, :k] if q >= 0 else lists[:0, 0]
        lst = lst[lst >= 0]
        if lst.size == 0:
            no_list += 1
            continue
        lst = lst[~np.isin(lst, train.indices[train.indptr[u]:train.indptr[u + 1]])]
        h = int(np.isin(lst, rel.indices[rel.indptr[u]:rel.indptr[u + 1]]).sum())
        hits[a] = h > 0
        recall[a] = h / min(k, n_rel[u])
    n = max(users.size, 1)
    return NeighbourScore(float(hits.sum() / n), float(recall.sum() / n), int(users.size),
                          no_list / n)


def list_genre_precision(lists: np.ndarray, d: EvalData, k: int = 10) -> tuple[float, float]:
    """``(genre precision@k of the lists, coverage)`` over train movies with a genre."""
    g = d.genres
    queries = np.flatnonzero(d.in_train & g.any(axis=1))
    values = []
    for q in queries:
        lst = lists[q, :k]
        lst = lst[lst >= 0]
        if lst.size:
            values.append((g[lst] & g[q]).any(axis=1).mean())
    if not queries.size:
        return float("nan"), float("nan")
    return (float(np.mean(values)) if values else float("nan"),
            len(values) / queries.size)


@dataclass(frozen=True)
class RankingScore:
    """Recall@k / NDCG@k of recommendation lists."""

    recall: float
    ndcg: float
    users: int


def list_ranking_metrics(recs: np.ndarray, d: EvalData, k: int = 20) -> RankingScore:
    """Recall@k and NDCG@k (binary, log2 discount, ideal = min(k, |relevant|) hits) of
    recommendation lists ``recs`` (n_users, >= k) against the test part; a user's train
    movies in a list are dropped (the table never holds them when built from train)."""
    rel = _relevant(d)
    n_rel = np.diff(rel.indptr)
    users = np.flatnonzero(n_rel > 0)
    train = d.train
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    recall = np.zeros(users.size)
    ndcg = np.zeros(users.size)
    for a, u in enumerate(users):
        lst = recs[u]
        lst = lst[lst >= 0]
        lst = lst[~np.isin(lst, train.indices[train.indptr[u]:train.indptr[u + 1]])][:k]
        hit = np.isin(lst, rel.indices[rel.indptr[u]:rel.indptr[u + 1]])
        recall[a] = hit.sum() / n_rel[u]
        ndcg[a] = (discount[:lst.size] * hit).sum() / discount[:min(k, n_rel[u])].sum()
    n = max(users.size, 1)
    return RankingScore(float(recall.sum() / n), float(ndcg.sum() / n), int(users.size))


def baseline_lists(train: sp.csr_matrix, kind: str, k: int = 20, block: int = 256
                   ) -> np.ndarray:
    """Neighbour lists of the baselines over train movies: ``itemknn`` (cosine of the
    binary item columns) or ``cocount`` (most co-rated); ties to the lower position, the
    movie itself and movies without a train rating never listed."""
    x = binarize(train).tocsc()
    xt = x.T.tocsr()
    n_items = x.shape[1]
    counts = np.asarray(x.sum(axis=0)).ravel()
    inv = np.divide(1.0, np.sqrt(counts), out=np.zeros_like(counts, dtype=np.float64),
                    where=counts > 0)
    out = np.full((n_items, k), -1, np.int64)
    queries = np.flatnonzero(counts > 0)
    for start in range(0, queries.size, block):
        q = queries[start:start + block]
        co = np.asarray((xt[q] @ x).todense(), np.float64)
        if kind == "itemknn":
            co *= inv[q][:, None] * inv[None, :]
        elif kind != "cocount":
            raise ValueError(f"baseline lists: unknown kind {kind!r}")
        co[:, counts == 0] = -np.inf
        co[np.arange(q.size), q] = -np.inf
        top = top_k(co, k)
        ok = np.isfinite(np.take_along_axis(co, top, axis=1))
        out[q] = np.where(ok, top, -1)
    return out


def vector_lists(vectors: np.ndarray, candidates: np.ndarray, k: int = 20,
                 block: int = 256) -> np.ndarray:
    """Cosine neighbour lists among ``candidates`` (the random baseline's)."""
    v = np.asarray(vectors, np.float64)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-300)
    out = np.full((v.shape[0], k), -1, np.int64)
    queries = np.flatnonzero(candidates)
    for start in range(0, queries.size, block):
        q = queries[start:start + block]
        s = v[q] @ v.T
        s[:, ~candidates] = -np.inf
        s[np.arange(q.size), q] = -np.inf
        top = top_k(s, k)
        ok = np.isfinite(np.take_along_axis(s, top, axis=1))
        out[q] = np.where(ok, top, -1)
    return out
