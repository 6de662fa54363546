"""The models' inputs: Delta tables -> Arrow -> numpy, and the splits' train parts.

Tables are read as Arrow by :meth:`moviegraph.tables.Warehouse.read_arrow` (delta-rs,
Spark as fallback) and turned into numpy columns and matrices without a Python loop over
rows; the data preparation of each model (histories for cbow, the rating split for mf,
the ranking split's binary matrix for softmax and edlae) follows EVALUATION.md's splits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from moviegraph.protocol.splits import RATING_SPLIT_PRIME, ranking_split, rating_split
from moviegraph.tables import Warehouse


def padded_lists(column: pa.ChunkedArray | pa.Array, width: int | None = None,
                 fill: int = -1) -> np.ndarray:
    """A list<int> column as an int32 matrix, rows padded with ``fill`` (vectorised)."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    offsets = arr.offsets.to_numpy().astype(np.int64)
    values = arr.flatten().to_numpy(zero_copy_only=False).astype(np.int32)
    lengths = np.diff(offsets)
    width = int(lengths.max(initial=0)) if width is None else width
    out = np.full((len(lengths), width), fill, dtype=np.int32)
    rows = np.repeat(np.arange(len(lengths)), lengths)
    cols = np.arange(len(values)) - np.repeat(offsets[:-1] - offsets[0], lengths)
    keep = cols < width
    out[rows[keep], cols[keep]] = values[keep]
    return out


@dataclass(frozen=True)
class Vocab:
    """Dense token ids for movie ids: ``token_of`` maps ids, ``movie_ids[token]`` back."""

    movie_ids: np.ndarray  # int32, sorted by token

    @property
    def size(self) -> int:
        """Number of tokens."""
        return len(self.movie_ids)

    def tokens(self, movie_ids: np.ndarray, missing: int = -1) -> np.ndarray:
        """Token of each movie id (``missing`` where the id is unknown)."""
        movie_ids = np.asarray(movie_ids)
        if self.size == 0:
            return np.full(movie_ids.shape, missing, dtype=np.int32)
        order = np.argsort(self.movie_ids, kind="stable")
        sorted_ids = self.movie_ids[order]
        pos = np.clip(np.searchsorted(sorted_ids, movie_ids), 0, self.size - 1)
        return np.where(sorted_ids[pos] == movie_ids, order[pos], missing).astype(np.int32)


def vocab_from_table(table: pa.Table) -> Vocab:
    """Vocab from a ``vocab(token, movie_id, count)`` Arrow table."""
    token = table.column("token").to_numpy()
    movie = table.column("movie_id").to_numpy()
    ids = np.empty(len(token), dtype=np.int32)
    ids[token] = movie
    return Vocab(ids)


def walks_matrix(wh: Warehouse, vocab: Vocab) -> np.ndarray:
    """``walks.path`` (movie ids) as an int32 token matrix padded with -1, in walk_id order."""
    table = wh.read_arrow("walks", ["walk_id", "path"]).sort_by("walk_id")
    movies = padded_lists(table.column("path"))
    tokens = vocab.tokens(movies.ravel()).reshape(movies.shape)
    tokens[movies < 0] = -1
    return tokens


@dataclass(frozen=True)
class Ratings:
    """The ratings table as aligned numpy columns."""

    user_id: np.ndarray
    movie_id: np.ndarray
    rating: np.ndarray
    ts: np.ndarray


def read_ratings(wh: Warehouse) -> Ratings:
    """All ratings, sorted by (user_id, movie_id) so every reader sees the same order."""
    table = wh.read_arrow("ratings", ["user_id", "movie_id", "rating", "ts"]).sort_by(
        [("user_id", "ascending"), ("movie_id", "ascending")])
    return Ratings(*(table.column(c).to_numpy() for c in ("user_id", "movie_id", "rating", "ts")))


# ---------------------------------------------------------------- data preparation

def cbow_sentences(r: Ratings, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Train-part histories of the ranking split as ``(sentences, movie_ids)``.

    ``sentences`` holds dense movie positions (``movie_ids[pos]`` is the id), each user's
    train ratings ordered by ``(ts, movie id)``, -1 padded, cut into rows of ``max_len``.
    """
    from moviegraph.train.cbow import sentences_from_history

    train = ~ranking_split(r.user_id, r.movie_id, r.ts)
    movie_ids, pos = np.unique(r.movie_id[train], return_inverse=True)
    sentences = sentences_from_history(r.user_id[train], pos.astype(np.int64), r.ts[train],
                                       max_len)
    return sentences, movie_ids.astype(np.int32)


def validation_rows(user: np.ndarray, movie: np.ndarray) -> np.ndarray:
    """Validation cut of the rating split's train part: ``(u * 1000003 + m) % 10 == 1``.

    Disjoint from the test rows (``% 10 == 0``) by construction, and as deterministic.
    """
    return (user.astype(np.int64) * RATING_SPLIT_PRIME + movie.astype(np.int64)) % 10 == 1


@dataclass
class MFData:
    """The rating split as dense indices: fit rows, optional validation rows, test rows."""

    user_ids: np.ndarray
    movie_ids: np.ndarray
    fit: tuple[np.ndarray, np.ndarray, np.ndarray]
    val: tuple[np.ndarray, np.ndarray, np.ndarray] | None
    test_user: np.ndarray  # raw ids
    test_movie: np.ndarray
    test_rating: np.ndarray


def mf_data(r: Ratings, hold_out_validation: bool) -> MFData:
    """Index the rating split's train part (minus the validation cut when asked)."""
    test = rating_split(r.user_id, r.movie_id)
    val = validation_rows(r.user_id, r.movie_id) & ~test if hold_out_validation else None
    fit_rows = ~test if val is None else ~test & ~val
    user_ids, u = np.unique(r.user_id[fit_rows], return_inverse=True)
    movie_ids, i = np.unique(r.movie_id[fit_rows], return_inverse=True)
    val_arrays = None
    if val is not None:
        vu = positions(user_ids, r.user_id[val])
        vi = positions(movie_ids, r.movie_id[val])
        known = (vu >= 0) & (vi >= 0)
        val_arrays = (vu[known], vi[known], r.rating[val][known])
    return MFData(user_ids.astype(np.int32), movie_ids.astype(np.int32),
                  (u.astype(np.int64), i.astype(np.int64), r.rating[fit_rows]), val_arrays,
                  r.user_id[test], r.movie_id[test], r.rating[test])


def positions(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Position of each id in ``sorted_ids``, -1 where absent."""
    if len(sorted_ids) == 0:
        return np.full(len(ids), -1, dtype=np.int64)
    pos = np.clip(np.searchsorted(sorted_ids, ids), 0, len(sorted_ids) - 1)
    return np.where(sorted_ids[pos] == ids, pos, -1).astype(np.int64)


def ranking_train_matrix(r: Ratings) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Binary users x movies matrix of the ranking split's train part, with its ids."""
    train = ~ranking_split(r.user_id, r.movie_id, r.ts)
    user_ids, u = np.unique(r.user_id[train], return_inverse=True)
    movie_ids, i = np.unique(r.movie_id[train], return_inverse=True)
    x = sp.csr_matrix((np.ones(len(u), np.float32), (u, i)),
                      shape=(len(user_ids), len(movie_ids)))
    return x, user_ids, movie_ids
