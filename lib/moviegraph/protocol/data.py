"""The rating data of EVALUATION.md's protocol: dense positions and the splits' masks.

:func:`prepare` turns ratings as parallel id columns plus the movie catalogue into
:class:`EvalData` (users ``0..n_users-1`` in ascending id order, movies ``0..n_items-1``
in the catalogue's ascending id order, so a movie seen only in test is still ranked) with
the ranking split, its validation cut and the rating split. The evaluate stage builds it
from the Delta tables; :func:`load_ml100k` from the RecBole copy of MovieLens 100K that
``fetch`` downloads (the benchmarks and tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from moviegraph.protocol.metrics import genre_matrix, index_ids, user_item_matrix
from moviegraph.protocol.splits import ranking_split, rating_split, validation_cut


@dataclass
class EvalData:
    """Ratings in dense positions with the protocol's three row masks."""

    user_ids: np.ndarray  # sorted; user_ids[u] is the raw id of position u
    movie_ids: np.ndarray  # the catalogue, sorted
    u: np.ndarray
    m: np.ndarray
    r: np.ndarray
    ts: np.ndarray  # rating times (seconds), aligned with u / m / r
    is_test: np.ndarray  # ranking split
    is_val: np.ndarray  # validation cut of the ranking split's train part
    rated_test: np.ndarray  # rating split
    genres: np.ndarray  # bool (n_items, n_genres)
    genre_names: list[str] = field(default_factory=list)

    @property
    def n_users(self) -> int:
        """Number of users (positions)."""
        return int(self.user_ids.shape[0])

    @property
    def n_items(self) -> int:
        """Number of catalogue movies (positions)."""
        return int(self.movie_ids.shape[0])

    def matrix(self, mask: np.ndarray) -> sp.csr_matrix:
        """CSR user x movie matrix of the ratings selected by ``mask`` (values = ratings)."""
        return user_item_matrix(self.u[mask], self.m[mask], self.r[mask], self.n_users,
                                   self.n_items)

    @cached_property
    def train(self) -> sp.csr_matrix:
        """Ranking split, train part."""
        return self.matrix(~self.is_test)

    @cached_property
    def train_times(self) -> sp.csr_matrix:
        """Ranking split, train part, with rating times as values (same entries as train)."""
        tr = ~self.is_test
        return user_item_matrix(self.u[tr], self.m[tr], self.ts[tr].astype(np.float64),
                                   self.n_users, self.n_items)

    @cached_property
    def test(self) -> sp.csr_matrix:
        """Ranking split, test part."""
        return self.matrix(self.is_test)

    @cached_property
    def in_train(self) -> np.ndarray:
        """Bool (n_items,): movies with at least one train rating."""
        return np.bincount(self.m[~self.is_test], minlength=self.n_items) > 0

    @cached_property
    def popularity(self) -> np.ndarray:
        """Number of train ratings of each movie (ranking split)."""
        return np.bincount(self.m[~self.is_test], minlength=self.n_items)


def prepare(user_id: np.ndarray, movie_id: np.ndarray, rating: np.ndarray, ts: np.ndarray,
            catalogue: np.ndarray, genre_lists: Sequence[Sequence[str]]) -> EvalData:
    """Dense positions and the protocol's splits.

    Args:
        user_id, movie_id, rating, ts: one entry per rating (any order, unique pairs).
        catalogue: every movie id (the ranking universe); ratings must only name these.
        genre_lists: the genres of ``catalogue[i]``, aligned with ``catalogue``.
    """
    catalogue = np.asarray(catalogue, dtype=np.int64)
    order = np.argsort(catalogue, kind="stable")
    movie_ids = catalogue[order]
    genre_lists = [genre_lists[i] for i in order]
    movie_id = np.asarray(movie_id, dtype=np.int64)
    m = np.clip(np.searchsorted(movie_ids, movie_id), 0, max(len(movie_ids) - 1, 0))
    if movie_id.size and not np.array_equal(movie_ids[m], movie_id):
        raise ValueError("ratings name movies missing from the movie catalogue")
    user_ids, u = index_ids(np.asarray(user_id, dtype=np.int64))
    test = ranking_split(user_id, movie_id, ts)
    genres, names = genre_matrix(genre_lists)
    return EvalData(user_ids=user_ids, movie_ids=movie_ids, u=u, m=m.astype(np.int64),
                    r=np.asarray(rating, dtype=np.float64),
                    ts=np.asarray(ts, dtype=np.int64), is_test=test,
                    is_val=validation_cut(user_id, movie_id, ts, test),
                    rated_test=rating_split(user_id, movie_id), genres=genres,
                    genre_names=names)


def align(ids: np.ndarray, vectors: np.ndarray, universe: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``vectors`` (keyed by ``ids``) placed at their positions in sorted ``universe``.

    Returns ``(aligned, has_vector)``: float32 (len(universe), d) with zero rows where an id
    has no vector (cosine 0 with everything), and the bool mask of filled rows. Ids outside
    the universe are ignored.
    """
    ids = np.asarray(ids, dtype=np.int64)
    vectors = np.asarray(vectors, dtype=np.float32)
    out = np.zeros((len(universe), vectors.shape[1] if vectors.ndim == 2 else 0), np.float32)
    has = np.zeros(len(universe), dtype=bool)
    if len(universe) == 0 or ids.size == 0:
        return out, has
    pos = np.clip(np.searchsorted(universe, ids), 0, len(universe) - 1)
    ok = universe[pos] == ids
    out[pos[ok]] = vectors[ok]
    has[pos[ok]] = True
    return out, has


@dataclass
class MovieLens100K:
    """MovieLens 100K (RecBole copy) in the protocol's positions, with the catalogue."""

    data: EvalData
    titles: list[str]  # aligned with data.movie_ids
    years: np.ndarray  # float64 release year per movie, NaN when unknown

    @property
    def days(self) -> np.ndarray:
        """Day of each rating (``ts // 86400``), aligned with ``data.u``."""
        return self.data.ts // 86400


def load_ml100k(folder: Path | str) -> MovieLens100K:
    """``ml-100k.inter`` / ``ml-100k.item`` of ``folder`` (the RecBole copy ``fetch``
    verifies) through :func:`prepare`; every catalogue movie is rankable."""
    import pandas as pd

    folder = Path(folder)
    ratings = pd.read_csv(folder / "ml-100k.inter", sep="\t")
    ratings.columns = ["user_id", "movie_id", "rating", "ts"]
    movies = pd.read_csv(folder / "ml-100k.item", sep="\t", keep_default_na=False)
    movies.columns = ["movie_id", "title", "year", "genres"]
    movies = movies.sort_values("movie_id", ignore_index=True)
    data = prepare(ratings["user_id"].to_numpy(), ratings["movie_id"].to_numpy(),
                   ratings["rating"].to_numpy(np.float64), ratings["ts"].to_numpy(),
                   movies["movie_id"].to_numpy(), movies["genres"].str.split().tolist())
    years = pd.to_numeric(movies["year"], errors="coerce").to_numpy(np.float64)
    return MovieLens100K(data=data, titles=movies["title"].tolist(), years=years)
