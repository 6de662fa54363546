"""Metrics of EVALUATION.md as block-wise numpy kernels (torch.topk, on CPU, for top-k).

Index convention: every function here works on dense positions, users ``0..n_users-1`` and
movies ``0..n_items-1``, never on raw ids. :func:`index_ids` makes the mapping explicit
(``ids[pos]`` is the raw id of position ``pos``) and :func:`user_item_matrix` builds the
CSR user x movie matrices the metrics take. The movie universe of a ranking is the columns
of those matrices: build them with every movie of the dataset (not only the train ones), so
movies seen only in test can be ranked (and missed) like the others.

Ties: wherever a top-k is taken, equal scores are broken by the lower position, so results
are deterministic and independent of BLAS or partition order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

#: Default block size of the block-wise kernels, in scores (rows x n_items) per block.
BLOCK_ENTRIES = 1 << 24

#: Scores for a block of users: ``fn(user_positions) -> (len(user_positions), n_items)``.
ScoreFn = Callable[[np.ndarray], np.ndarray]


def index_ids(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Map raw ids to dense positions.

    Returns:
        ``(unique_ids, positions)``: ``unique_ids`` sorted ascending, ``positions`` int64 with
        ``unique_ids[positions] == ids``.
    """
    unique_ids, positions = np.unique(np.asarray(ids), return_inverse=True)
    return unique_ids, positions.astype(np.int64).reshape(-1)


def user_item_matrix(
    user_pos: np.ndarray,
    item_pos: np.ndarray,
    values: np.ndarray | None,
    n_users: int,
    n_items: int,
) -> sp.csr_matrix:
    """CSR user x movie matrix (float64) from dense positions; ``values=None`` gives ones.

    Pairs must be unique (CSR construction would add up duplicates).
    """
    user_pos = np.asarray(user_pos, dtype=np.int64)
    item_pos = np.asarray(item_pos, dtype=np.int64)
    data = np.ones(user_pos.shape[0]) if values is None else np.asarray(values, np.float64)
    m = sp.csr_matrix((data, (user_pos, item_pos)), shape=(n_users, n_items))
    m.sort_indices()
    return m


def binarize(train: sp.spmatrix, dtype: type = np.float64) -> sp.csr_matrix:
    """0/1 CSR copy of the stored entries of ``train`` (explicit zeros count too): the
    implicit-feedback view of a rating matrix."""
    x = sp.csr_matrix(train, dtype=dtype, copy=True)
    x.data[:] = 1.0
    return x


def _top_k_exact(scores: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` lowest-position entries among the row's ``k`` largest (unordered, ascending)."""
    b = scores.shape[0]
    # Threshold = k-th largest value per row; take everything above it, then the first
    # (lowest-position) entries equal to it until k are taken.
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1 : k]
    above = scores > kth
    at = scores == kth
    need = k - above.sum(axis=1, keepdims=True)
    selected = above | (at & (np.cumsum(at, axis=1, dtype=np.int32) <= need))
    return np.nonzero(selected)[1].reshape(b, k)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` largest scores of each row, best first; ties to lower position.

    Args:
        scores: float array (b, n); use ``-inf`` for excluded entries. NaN is not allowed.
        k: how many (capped at n).

    Returns:
        int64 array (b, min(k, n)).
    """
    scores = np.ascontiguousarray(scores)
    b, n = scores.shape
    k = min(k, n)
    if k == 0 or b == 0:
        return np.zeros((b, k), dtype=np.int64)
    # A candidate set; its choice among values tied with the k-th is arbitrary, so rows
    # where such a tie straddles the cut are redone exactly. Continuous scores almost
    # never need that.
    vals, cols = _candidates(scores, k)
    kth = vals.min(axis=1, keepdims=True)
    straddle = np.flatnonzero((scores >= kth).sum(axis=1) > k)
    if straddle.size:
        cols[straddle] = _top_k_exact(scores[straddle], k)
    order = np.lexsort((cols, -np.take_along_axis(scores, cols, axis=1)))  # per row
    return np.take_along_axis(cols, order, axis=1)


def _candidates(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """k of each row's largest scores (any order) and their columns: torch.topk where torch
    is installed (multi-threaded, ~3x faster than numpy's partition here), numpy's
    partition where it is not (the executors' slim environment, see moviegraph.package)."""
    try:
        import torch
    except ImportError:
        cols = np.argpartition(-scores, k - 1, axis=1)[:, :k].astype(np.int64)
        return np.take_along_axis(scores, cols, axis=1), cols
    vals, cols_t = torch.topk(torch.from_numpy(scores), k, dim=1, sorted=False)
    return vals.numpy(), cols_t.numpy().astype(np.int64)


@dataclass(frozen=True)
class RankingResult:
    """Mean Recall@k and NDCG@k over evaluated users, plus the per-user values."""

    recall: float
    ndcg: float
    k: int
    users: np.ndarray  # positions of the evaluated users (>= 1 relevant test item)
    user_recall: np.ndarray
    user_ndcg: np.ndarray

    @property
    def n_users(self) -> int:
        """Number of evaluated users."""
        return int(self.users.shape[0])


def _is_stored(m: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``m[rows[a], cols[a, b]]`` is a stored entry, for a (len(rows), c) array of columns.

    Searches the sorted keys ``row * n_cols + col`` of the block's entries, so no dense
    (rows x n_cols) array is built.
    """
    sub = m[rows]
    sub.sort_indices()
    n_cols = m.shape[1]
    keys = np.repeat(np.arange(rows.shape[0], dtype=np.int64), np.diff(sub.indptr)) * n_cols
    keys += sub.indices
    query = np.arange(rows.shape[0], dtype=np.int64)[:, None] * n_cols + cols
    pos = np.minimum(np.searchsorted(keys, query), max(keys.shape[0] - 1, 0))
    return keys[pos] == query if keys.size else np.zeros(query.shape, dtype=bool)


def ranking_metrics(
    scores: np.ndarray | ScoreFn,
    train: sp.csr_matrix,
    test: sp.csr_matrix,
    k: int = 20,
    relevance_threshold: float = 4.0,
    block_size: int | None = None,
) -> RankingResult:
    """Recall@k and NDCG@k with full ranking over all movies outside each user's train set.

    Args:
        scores: dense (n_users, n_items) scores, or a function giving them for a block of
            user positions (so 162k x 59k never has to exist at once).
        train: CSR (n_users, n_items); its stored entries are masked out of the ranking.
        test: CSR (n_users, n_items) of test ratings; relevant = rating >= threshold.
        k: cut-off.
        relevance_threshold: minimum test rating counted relevant (the protocol's 4).
        block_size: users scored per block; default: about 2^24 scores per block
            (~130 MB of float64, plus a few same-shaped bool temporaries).

    Users with at least one relevant test item are evaluated; recall = hits / |relevant|;
    NDCG = sum over hits at 1-based rank r of 1 / log2(r + 1), divided by the same sum over
    ranks 1..min(k, |relevant|). A relevant item that is also in train (duplicate ratings)
    counts in |relevant| but can never be hit.
    """
    train = sp.csr_matrix(train)
    test = sp.csr_matrix(test)
    if train.shape != test.shape:
        raise ValueError(f"train {train.shape} and test {test.shape} shapes differ")
    n_users, n_items = train.shape
    relevant = test.copy()
    relevant.data = (relevant.data >= relevance_threshold).astype(np.float64)
    relevant.eliminate_zeros()
    n_relevant = np.diff(relevant.indptr)
    users = np.flatnonzero(n_relevant > 0)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discounts)
    recall = np.empty(users.shape[0])
    ndcg = np.empty(users.shape[0])
    if block_size is None:
        block_size = max(1, BLOCK_ENTRIES // max(n_items, 1))
    if callable(scores):
        score_block: ScoreFn = scores
    else:
        dense = np.asarray(scores)
        if dense.shape != (n_users, n_items):
            raise ValueError(f"scores shape {dense.shape} != {(n_users, n_items)}")

        def score_block(block: np.ndarray) -> np.ndarray:
            return dense[block]

    for start in range(0, users.shape[0], block_size):
        block = users[start : start + block_size]
        s = score_block(block)
        # A copy (masking must not touch the caller's array); float32 scores stay float32.
        s = np.array(s, dtype=np.result_type(np.asarray(s).dtype, np.float32))
        if s.shape != (block.shape[0], n_items):
            raise ValueError(f"score block shape {s.shape} != {(block.shape[0], n_items)}")
        tr = train[block]
        rows = np.repeat(np.arange(block.shape[0]), np.diff(tr.indptr))
        s[rows, tr.indices] = -np.inf
        top = top_k(s, k)
        # Masked (train) entries reach the top k only when fewer than k others are left;
        # they never count as hits.
        hits = _is_stored(relevant, block, top) & np.isfinite(np.take_along_axis(s, top, 1))
        hits = hits.astype(np.float64)
        nrel = n_relevant[block]
        recall[start : start + block.shape[0]] = hits.sum(axis=1) / nrel
        dcg = hits @ discounts[: top.shape[1]]
        ndcg[start : start + block.shape[0]] = dcg / ideal[np.minimum(k, nrel) - 1]
    return RankingResult(
        recall=float(recall.mean()) if users.size else float("nan"),
        ndcg=float(ndcg.mean()) if users.size else float("nan"),
        k=k,
        users=users,
        user_recall=recall,
        user_ndcg=ndcg,
    )


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; all-zero rows stay zero (cosine 0 with everything)."""
    v = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norms > 0, norms, 1.0)


def profile_weights(train: sp.csr_matrix, like_threshold: float = 4.0) -> sp.csr_matrix:
    """0/1 matrix of the train movies that define each user's profile.

    A user's movies rated >= ``like_threshold`` in train, or all their train movies when they
    rated none that high (EVALUATION.md's item-embedding rule).
    """
    train = sp.csr_matrix(train)
    row = np.repeat(np.arange(train.shape[0]), np.diff(train.indptr))
    liked = train.data >= like_threshold
    user_has_liked = np.bincount(row[liked], minlength=train.shape[0]) > 0
    keep = liked | ~user_has_liked[row]
    w = sp.csr_matrix(
        (keep.astype(np.float64), train.indices.copy(), train.indptr.copy()), shape=train.shape
    )
    w.eliminate_zeros()
    return w


class EmbeddingScorer:
    """Scores of an item-embedding model: ``score(u, i) = sum_j cos(e_i, e_j)``.

    ``j`` runs over ``u``'s profile movies (:func:`profile_weights`). Since the sum of cosines
    is the dot product of ``e_i / |e_i|`` with the sum of the profile's unit vectors, a block
    costs one (block x d) @ (d x n_items) product.
    """

    def __init__(
        self, item_vectors: np.ndarray, train: sp.csr_matrix, like_threshold: float = 4.0
    ) -> None:
        # float32: half the time of float64 products, ample for ranking.
        self.unit = normalize_rows(item_vectors).astype(np.float32)
        if self.unit.shape[0] != train.shape[1]:
            raise ValueError(f"{self.unit.shape[0]} item vectors for {train.shape[1]} items")
        self.user_vectors = np.asarray(
            profile_weights(train, like_threshold) @ self.unit, dtype=np.float32
        )

    def __call__(self, users: np.ndarray) -> np.ndarray:
        """Scores (len(users), n_items) for a block of user positions."""
        return self.user_vectors[users] @ self.unit.T


def item_embedding_scores(
    item_vectors: np.ndarray, train: sp.csr_matrix, like_threshold: float = 4.0
) -> EmbeddingScorer:
    """Score function of EVALUATION.md's item-embedding rule, for :func:`ranking_metrics`.

    Args:
        item_vectors: (n_items, d), row ``i`` = movie position ``i``.
        train: CSR (n_users, n_items) of train ratings (values are the ratings).
        like_threshold: rating that puts a train movie in the user's profile.
    """
    return EmbeddingScorer(item_vectors, train, like_threshold)


def rmse(pred: np.ndarray, truth: np.ndarray, low: float = 1.0, high: float = 5.0) -> float:
    """Root mean squared error with predictions clipped to ``[low, high]`` first (the
    protocol's rating scale; clipping clipped predictions again changes nothing)."""
    pred = np.clip(np.asarray(pred, dtype=np.float64), low, high)
    truth = np.asarray(truth, dtype=np.float64)
    if pred.shape != truth.shape:
        raise ValueError(f"pred {pred.shape} and truth {truth.shape} shapes differ")
    return float(np.sqrt(np.mean((pred - truth) ** 2)))


#: MovieLens placeholders meaning "no genre" (100K: ``unknown``; 20M+: ``(no genres listed)``).
NO_GENRE_LABELS = frozenset({"unknown", "(no genres listed)"})


def genre_matrix(
    genre_lists: Sequence[Sequence[str]],
    ignore: frozenset[str] = NO_GENRE_LABELS,
) -> tuple[np.ndarray, list[str]]:
    """Bool (n_movies, n_genres) membership matrix and the genre names (sorted).

    Labels in ``ignore`` are dropped, so a movie labelled only ``unknown`` has no genre (and
    two such movies do not "share" one).
    """
    genre_lists = [[g for g in gs if g not in ignore] for gs in genre_lists]
    names = sorted({g for gs in genre_lists for g in gs})
    col = {g: j for j, g in enumerate(names)}
    m = np.zeros((len(genre_lists), len(names)), dtype=bool)
    for i, gs in enumerate(genre_lists):  # once per movie, at load time
        m[i, [col[g] for g in gs]] = True
    return m, names


def genre_precision_at_k(
    vectors: np.ndarray,
    genres: np.ndarray,
    k: int = 10,
    include: np.ndarray | None = None,
    block_size: int | None = None,
) -> float:
    """Share of each movie's ``k`` nearest other movies (cosine) sharing >= 1 genre, averaged.

    Args:
        vectors: (n_movies, d) embeddings, row ``i`` = movie position ``i``.
        genres: bool (n_movies, n_genres) membership (:func:`genre_matrix`).
        k: neighbours per movie.
        include: optional bool mask (n_movies,) of movies taking part, both as queries and as
            candidate neighbours (e.g. movies that have train ratings); default all.
        block_size: query movies per block; default about 2^24 similarities per block.

    Movies without any genre cannot share one: they are not queries (their precision would
    be 0 by construction, measuring the metadata, not the vectors) but stay candidate
    neighbours, where they count as not sharing. Zero vectors have cosine 0 with everything.
    Ties are broken by lower position.
    """
    genres = np.asarray(genres, dtype=bool)
    n = genres.shape[0]
    keep = np.ones(n, dtype=bool) if include is None else np.asarray(include, dtype=bool)
    cand = np.flatnonzero(keep)
    unit = normalize_rows(np.asarray(vectors)[cand])
    g = genres[cand].astype(np.float32)
    queries = np.flatnonzero(g.sum(axis=1) > 0)  # positions within `cand`
    if queries.size == 0:
        return float("nan")
    if block_size is None:
        block_size = max(1, BLOCK_ENTRIES // cand.shape[0])
    total = 0.0
    for start in range(0, queries.shape[0], block_size):
        q = queries[start : start + block_size]
        sims = unit[q] @ unit.T
        sims[np.arange(q.shape[0]), q] = -np.inf  # "other" movies only
        nbrs = top_k(sims, k)
        shared = np.einsum("bg,bkg->bk", g[q], g[nbrs]) > 0
        total += shared.mean(axis=1).sum()
    return float(total / queries.shape[0])


def random_genre_precision_at_k(
    genres: np.ndarray,
    dim: int = 64,
    k: int = 10,
    seed: int = 0,
    include: np.ndarray | None = None,
) -> float:
    """:func:`genre_precision_at_k` of standard normal random vectors (the chance level)."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((np.asarray(genres).shape[0], dim))
    return genre_precision_at_k(vectors, genres, k=k, include=include)
