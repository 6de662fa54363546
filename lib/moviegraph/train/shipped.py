"""Shipped scorers: what ranks a model's ``similar_movies`` and ``recommendations``.

EVALUATION.md: what is scored is what is shipped. So everything that ranks a model's
tables beyond its vectors is fitted here, by the ``train`` stage, on the train part of the
ranking split only, persisted in the ``scorers`` table next to the vectors, and applied by
the ``similar`` stage inside its Spark joins; ``evaluate`` only reads the tables.

A scorer (:class:`~moviegraph.config.models.ScorerConfig`, ``[train.scorers.<model>]``):

* lists: ``metric(movie, neighbour) + list_beta * prior(neighbour) + list_corate *
  corate(movie, neighbour)``: an additive item term and the movies' co-rating cosine in
  the profile ratings (ItemKNN's similarity; the vectors carry taste, co-rating what is
  watched together), both ranked exactly by the top-k kernel
  (:mod:`moviegraph.similarity.topk`); the two weights are set in the config or, with
  ``tune_lists``, chosen by :func:`moviegraph.similarity.list_tuning.tune_lists` on the
  temporal validation cut of train;
* recommendations: the cosine of a movie with the user's recency-weighted profile
  (:func:`recency_weights`) plus ``recommend_beta * prior(movie)``, or the model's user
  vectors (dot) plus that prior;
* priors (:func:`item_priors`): ``popularity`` = log(1 + train users of the movie),
  ``recent`` = log(1 + users whose last 20% of train ratings by time hold the movie).
  Why recent: the test asks what a user rates *next*, and at the end of their histories
  people rate what is new and in fashion then, not the all-time favourites.

Coverage (:func:`fold_in`): a train movie outside an item-only model's vocabulary (a
movie no walk visits) gets the normalised sum over its raters of their profile vectors,
so every movie with a train rating has a list.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from moviegraph.config.models import ScorerConfig
from moviegraph.protocol.splits import ranking_split

#: Rating that puts a train movie in a user's profile (EVALUATION.md).
LIKE_THRESHOLD = 4.0


@dataclass
class TrainRatings:
    """The ranking split's train part as parallel arrays (raw ids)."""

    user_id: np.ndarray
    movie_id: np.ndarray
    rating: np.ndarray
    ts: np.ndarray

    @classmethod
    def of(cls, user_id: np.ndarray, movie_id: np.ndarray, rating: np.ndarray,
           ts: np.ndarray) -> TrainRatings:
        """The train rows (EVALUATION.md's ranking split) of all ratings."""
        train = ~ranking_split(user_id, movie_id, ts)
        return cls(np.asarray(user_id)[train], np.asarray(movie_id)[train],
                   np.asarray(rating, np.float64)[train], np.asarray(ts)[train])


@dataclass
class FittedScorer:
    """One model's shipped scorer: settings and the per-movie terms, aligned with
    ``movie_ids`` (the model's catalogue, ascending)."""

    model: str
    settings: dict[str, Any]
    movie_ids: np.ndarray
    list_term: np.ndarray  # float64
    recommend_term: np.ndarray  # float64

    def row(self, run_id: str) -> dict[str, Any]:
        """The ``scorers`` table row."""
        return {"model": self.model, "run_id": run_id,
                "settings": json.dumps(self.settings, sort_keys=True),
                "movie_id": self.movie_ids.astype(np.int32).tolist(),
                "list_term": self.list_term.astype(np.float64).tolist(),
                "recommend_term": self.recommend_term.astype(np.float64).tolist()}


def scorer_table(scorers: list[FittedScorer], run_id: str) -> pa.Table:
    """The ``scorers`` rows of ``scorers`` as Arrow."""
    rows = [s.row(run_id) for s in scorers]
    return pa.table({
        "model": pa.array([r["model"] for r in rows], pa.string()),
        "run_id": pa.array([r["run_id"] for r in rows], pa.string()),
        "settings": pa.array([r["settings"] for r in rows], pa.string()),
        "movie_id": pa.array([r["movie_id"] for r in rows], pa.list_(pa.int32())),
        "list_term": pa.array([r["list_term"] for r in rows], pa.list_(pa.float64())),
        "recommend_term": pa.array([r["recommend_term"] for r in rows],
                                   pa.list_(pa.float64()))})


def from_row(row: dict[str, Any]) -> FittedScorer:
    """A :class:`FittedScorer` from a ``scorers`` row (as a dict)."""
    return FittedScorer(row["model"], json.loads(row["settings"]),
                        np.asarray(row["movie_id"], np.int64),
                        np.asarray(row["list_term"], np.float64),
                        np.asarray(row["recommend_term"], np.float64))


def item_priors(train: TrainRatings, movie_ids: np.ndarray) -> dict[str, np.ndarray]:
    """``{"none": 0, "popularity": log(1 + users), "recent": log(1 + recent users)}`` of
    each movie of ``movie_ids`` (float64); recent = the movie is among the user's last
    20% (at least one) of train ratings by (time, movie id)."""
    pos = np.searchsorted(movie_ids, train.movie_id)
    pos = np.minimum(pos, max(len(movie_ids) - 1, 0))
    known = (movie_ids[pos] == train.movie_id) if len(movie_ids) else np.zeros(0, bool)
    n = len(movie_ids)
    recent = ranking_split(train.user_id, train.movie_id, train.ts)
    pop = np.bincount(pos[known], minlength=n).astype(np.float64)
    rec = np.bincount(pos[known & recent], minlength=n).astype(np.float64)
    return {"none": np.zeros(n), "popularity": np.log1p(pop), "recent": np.log1p(rec)}


def fit_scorer(model: str, sc: ScorerConfig, movie_ids: np.ndarray, train: TrainRatings,
               list_dims: int) -> FittedScorer:
    """The scorer of ``model`` on its catalogue ``movie_ids`` (ascending).

    ``list_dims``: leading vector columns the lists use (mf's trailing bias columns are
    not part of the taste a cosine should compare).
    """
    priors = item_priors(train, np.asarray(movie_ids, np.int64))
    settings = {**dataclasses.asdict(sc), "list_dims": int(list_dims),
                "like_threshold": LIKE_THRESHOLD}
    return FittedScorer(model, settings, np.asarray(movie_ids, np.int64),
                        sc.list_beta * priors[sc.list_prior],
                        sc.recommend_beta * priors[sc.recommend_prior])


def recency_weights(row: np.ndarray, movie: np.ndarray, ts: np.ndarray, rating: np.ndarray,
                    half_life: float, like_threshold: float = LIKE_THRESHOLD,
                    liked_only: bool = True) -> np.ndarray:
    """Profile weight of each rating (parallel arrays, ``row`` = the user's query row).

    The profile is the row's ratings ``>= like_threshold`` (all of them when none is, or
    when ``liked_only`` is false); a rating's weight is ``0.5 ** (age / half_life)``, age
    = how many of the row's ratings come after it by (time, movie id) (``half_life`` 0:
    weight 1). Ratings outside the profile weigh 0.
    """
    row = np.asarray(row, np.int64)
    n = row.size
    w = np.zeros(n)
    if n == 0:
        return w
    order = np.lexsort((np.asarray(movie), np.asarray(ts), row))
    srow = row[order]
    starts = np.flatnonzero(np.r_[True, srow[1:] != srow[:-1]])
    sizes = np.diff(np.r_[starts, n])
    age = np.repeat(starts + sizes, sizes) - 1 - np.arange(n)
    liked = np.asarray(rating, np.float64)[order] >= like_threshold
    if liked_only:
        has_liked = np.zeros(int(srow.max()) + 1, bool)
        has_liked[srow[liked]] = True
        keep = liked | ~has_liked[srow]
    else:
        keep = np.ones(n, bool)
    weight = np.ones(n) if half_life <= 0 else 0.5 ** (age / half_life)
    w[order] = np.where(keep, weight, 0.0)
    return w


def profile_matrix(row: np.ndarray, pos: np.ndarray, weight: np.ndarray, n_rows: int,
                   n_items: int) -> sp.csr_matrix:
    """CSR (n_rows, n_items) of profile weights; entries with ``pos < 0`` (movies outside
    the catalogue) or weight 0 are dropped."""
    keep = (np.asarray(pos) >= 0) & (np.asarray(weight) > 0)
    m = sp.csr_matrix((np.asarray(weight)[keep], (np.asarray(row)[keep],
                                                  np.asarray(pos)[keep])),
                      shape=(n_rows, n_items))
    m.sum_duplicates()
    return m


def unit_rows64(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length in float64 (zero rows stay zero)."""
    v = np.asarray(vectors, np.float64)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norms > 0, norms, 1.0)


def profile_queries(unit_items: np.ndarray, weights: sp.csr_matrix) -> np.ndarray:
    """Each row's profile: the weighted mean of its movies' unit vectors (float64).

    Scored against the unit item vectors by dot product this is the cosine with the
    mean direction scaled by its length; ranking per user is that of the cosine, and the
    scale (at most 1) keeps ``recommend_beta`` on one scale for light and heavy users.
    """
    w = sp.csr_matrix(weights)
    total = np.asarray(w.sum(axis=1)).ravel()
    q = np.asarray(w @ np.asarray(unit_items, np.float64))
    return q / np.where(total > 0, total, 1.0)[:, None]


def fold_in(movie_ids: np.ndarray, vectors: np.ndarray, train: TrainRatings
            ) -> tuple[np.ndarray, np.ndarray, int]:
    """Vectors for the train movies outside ``movie_ids``: each is the normalised sum over
    its raters of their profile (mean unit vector of the rater's liked movies that have a
    vector). Returns ``(movie_ids, vectors, added)`` with ids ascending; a movie none of
    whose raters has a profile stays without a vector."""
    movie_ids = np.asarray(movie_ids, np.int64)
    all_ids = np.unique(np.asarray(train.movie_id, np.int64))
    missing = np.setdiff1d(all_ids, movie_ids)
    if missing.size == 0 or movie_ids.size == 0:
        return movie_ids, vectors, 0
    users, urow = np.unique(np.asarray(train.user_id, np.int64), return_inverse=True)
    pos = np.searchsorted(movie_ids, train.movie_id)
    pos = np.where((pos < movie_ids.size)
                   & (movie_ids[np.minimum(pos, movie_ids.size - 1)] == train.movie_id),
                   pos, -1)
    w = recency_weights(urow, train.movie_id, train.ts, train.rating, 0.0)
    prof = profile_queries(unit_rows64(vectors),
                           profile_matrix(urow, pos, w, users.size, movie_ids.size))
    prof = unit_rows64(prof)
    mpos = np.searchsorted(missing, train.movie_id)
    mpos = np.minimum(mpos, missing.size - 1)
    is_missing = missing[mpos] == train.movie_id
    raters = sp.csr_matrix((np.ones(int(is_missing.sum())),
                            (mpos[is_missing], urow[is_missing])),
                           shape=(missing.size, users.size))
    folded = np.asarray(raters @ prof)
    ok = np.linalg.norm(folded, axis=1) > 0
    added = missing[ok]
    ids = np.concatenate([movie_ids, added])
    vec = np.concatenate([np.asarray(vectors, np.float32),
                          (unit_rows64(folded[ok])
                           * float(np.median(np.linalg.norm(vectors, axis=1)))
                           ).astype(np.float32)])
    order = np.argsort(ids, kind="stable")
    return ids[order], np.ascontiguousarray(vec[order]), int(added.size)
