"""Spark layer of the similarity joins: partition query rows, move Arrow batches.

The catalogue (one model's movie matrix, float32, sorted by movie id so that "lower
position" is "lower movie id", and the optional additive per-item term) is broadcast once;
each task builds one :class:`~moviegraph.similarity.topk.Searcher` and streams its Arrow
batches of query rows (movie positions, or users with their vector and/or rated movies)
through it with ``mapInArrow``: columns in and out as numpy arrays, no Python object per
row. Tasks run numpy's BLAS on one thread (Spark already runs one task per core). Every
query row is scored on its own, so the result does not depend on the partitioning. Memory
per task: the catalogue twice (float32 + float64) plus ``block_size x catalogue`` scores.

Each join can tally what its tasks emit in an accumulator (:func:`row_tally`): rows and
query rows with at least one result, so the stage need not read its tables back to count.
Updates come from the tasks of the job that writes the table and count once per partition.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
from pyspark import Accumulator, AccumulatorParam, Broadcast, SparkContext
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from moviegraph.errors import InputError
from moviegraph.similarity.topk import (
    CoRating,
    Searcher,
    exclusion_csr,
    profile_queries,
    unit_rows,
)
from moviegraph.vectors import pick_runs, vectors_from_arrow

SIMILAR_SCHEMA = "movie_id int, rank int, neighbor_id int, score float"
RECOMMEND_SCHEMA = "user_id int, rank int, movie_id int, score float"


def select_runs(embeddings: DataFrame, models: list[str], run_id: str = "") -> dict[str, str]:
    """``{model: run_id}`` to use: the configured run, else each model's latest run.

    Run ids sort by time (``runs.new_run_id``), so the latest is the largest.

    Raises:
        InputError: a requested model (or the requested run) is not in the table.
    """
    df = embeddings.select("model", "run_id").distinct()
    if run_id:
        df = df.where(F.col("run_id") == run_id)
    found = {r["model"]: r["run_id"] for r in
             df.groupBy("model").agg(F.max("run_id").alias("run_id")).collect()}
    return pick_runs(found, models, f" with run_id {run_id!r}" if run_id else "")


def vectors_of(df: DataFrame, id_col: str) -> tuple[np.ndarray, np.ndarray]:
    """Collect ``(id, vector)`` rows to the driver: ids ascending (int64), float32 matrix.

    Raises:
        InputError: duplicate ids, null vectors or vectors of different lengths.
    """
    return vectors_from_arrow(df.select(id_col, "vector").toArrow(), id_col)


class _SumParam(AccumulatorParam):
    """Key-wise sum of ``{name: int}`` dicts."""

    def zero(self, value: dict[str, int]) -> dict[str, int]:
        return {}

    def addInPlace(self, value1: dict[str, int], value2: dict[str, int]) -> dict[str, int]:
        for key, v in value2.items():
            value1[key] = value1.get(key, 0) + v
        return value1


def row_tally(sc: SparkContext) -> Accumulator:
    """An accumulator for a join's ``{"rows": ..., "queries": ...}`` (queries = query rows
    with at least one result); read ``.value`` after the write."""
    return sc.accumulator({}, _SumParam())


def check_item_term(item_term: np.ndarray | None, n: int) -> np.ndarray | None:
    """The item term as float64 (n,), or None.

    Raises:
        InputError: wrong length, NaN or infinite values.
    """
    if item_term is None:
        return None
    term = np.asarray(item_term, dtype=np.float64)
    if term.shape != (n,):
        raise InputError(f"item term has shape {term.shape}; the catalogue has {n} movies")
    bad = int(n - np.count_nonzero(np.isfinite(term)))
    if bad:
        raise InputError(f"item term: {bad} value(s) are NaN or infinite")
    return term


def _one_thread():
    """BLAS on one thread inside a task: Spark already runs one task per core, and more
    threads per task only contend (and spin) for the same cores."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _emit(query_ids: np.ndarray, ids: np.ndarray, positions: np.ndarray,
          scores: np.ndarray, names: tuple[str, str]) -> pa.RecordBatch:
    """One output batch of (query id, rank, item id, score) for the valid results."""
    b, k = positions.shape
    valid = (positions >= 0).reshape(-1)
    rank = np.tile(np.arange(1, k + 1, dtype=np.int32), b)[valid]
    qid = np.repeat(query_ids.astype(np.int32), k)[valid]
    item = ids[np.maximum(positions, 0)].astype(np.int32).reshape(-1)[valid]
    score = scores.reshape(-1)[valid].astype(np.float32)
    return pa.RecordBatch.from_arrays(
        [pa.array(qid), pa.array(rank), pa.array(item), pa.array(score)],
        names=[names[0], "rank", names[1], "score"])


#: Scores per task below which a similarity join uses fewer tasks than cores: ~0.4 CPU s
#: of kernel work, about what a Python task costs Spark to start and feed.
SCORES_PER_TASK = 1 << 27


def auto_partitions(spark: SparkSession, scores: int) -> int:
    """Tasks for a join computing ``scores`` scores: Spark's default parallelism, fewer
    (at least one) when there is too little work to repay a task each (a small catalogue
    joined for several models and metrics in one write)."""
    return max(1, min(spark.sparkContext.defaultParallelism, -(-scores // SCORES_PER_TASK)))


def _tally(tally: Accumulator | None, res_positions: np.ndarray) -> None:
    if tally is not None:
        valid = res_positions >= 0
        tally.add({"rows": int(valid.sum()), "queries": int(valid.any(axis=1).sum())})


def similar_movies(spark: SparkSession, ids: np.ndarray, vectors: np.ndarray, metric: str,
                   k: int, block_size: int = 256, partitions: int = 0,
                   item_term: np.ndarray | None = None,
                   tally: Accumulator | None = None,
                   co_rating: CoRatingInput | None = None) -> tuple[DataFrame, Broadcast]:
    """Top-k most similar other movies of every movie: ``movie_id, rank, neighbor_id, score``.

    Args:
        ids: movie ids ascending; ``vectors``: float32 (n, d), same order.
        metric: ``"cosine"`` or ``"dot"``; ties go to the lower neighbour id.
        partitions: query tasks; 0 = :func:`auto_partitions` (Spark's default
            parallelism; one task per ~134M scores for small catalogues).
        item_term: optional (n,) additive per-item term, same order as ``ids`` (a
            popularity prior, an item bias): ``score = metric(movie, neighbour) +
            item_term[neighbour]``, ranked exactly, ties to the lower neighbour id.
            None: the metric alone.
        tally: optional :func:`row_tally` accumulator.
        co_rating: optional ``(movie_id, user_id, weight)``: ratings (parallel id arrays;
            movies outside ``ids`` ignored) whose co-rating cosine of the two movies
            (:class:`~moviegraph.similarity.topk.CoRating`), times ``weight``, is added
            to every score; ranked exactly like the rest.

    Returns:
        The (lazy) DataFrame and the catalogue's broadcast, to unpersist once written.

    Raises:
        InputError: a bad item term or co-rating weight.
    """
    n = int(ids.shape[0])
    term = check_item_term(item_term, n)
    parts = partitions or auto_partitions(spark, n * n)
    corate = co_rating_arrays(co_rating, ids)
    bc = spark.sparkContext.broadcast({"ids": ids, "vectors": vectors, "item_term": term,
                                       "co_rating": corate})

    def task(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        with _one_thread():
            cat: dict[str, Any] = bc.value
            searcher = Searcher(cat["vectors"], metric, cat["item_term"])
            co = None if cat["co_rating"] is None else CoRating(*cat["co_rating"])
            for batch in batches:
                pos = batch.column(0).to_numpy().astype(np.int64)
                if pos.size == 0:
                    continue
                # A movie is not its own neighbour (duplicates of it, with other ids, are).
                exclude = exclusion_csr(np.arange(pos.size + 1), pos, pos.size, n)
                pair = None if co is None else (
                    lambda lo, hi, pos=pos, co=co: co.rows(pos[lo:hi]))
                res = searcher.search(cat["vectors"][pos], k, exclude, block_size, pair)
                _tally(tally, res.positions)
                yield _emit(cat["ids"][pos], cat["ids"], res.positions, res.scores,
                            ("movie_id", "neighbor_id"))

    df = spark.range(0, n, numPartitions=max(1, min(parts, n))).mapInArrow(task, SIMILAR_SCHEMA)
    return df, bc


#: ``(movie_id, user_id, weight)`` of a co-rating term (:func:`similar_movies`).
CoRatingInput = tuple[np.ndarray, np.ndarray, float]


def co_rating_arrays(co_rating: CoRatingInput | None, ids: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray, int, float] | None:
    """``CoRating`` arguments (catalogue positions, dense user index, n, weight), or None
    when there is no term (none given or weight 0).

    Raises:
        InputError: a negative or non-finite weight, arrays of different lengths.
    """
    if co_rating is None:
        return None
    movie, user, weight = co_rating
    weight = float(weight)
    if not np.isfinite(weight) or weight < 0:
        raise InputError(f"co-rating weight must be finite and >= 0, got {weight}")
    movie = np.asarray(movie, np.int64)
    user = np.asarray(user, np.int64)
    if movie.shape != user.shape:
        raise InputError(f"co-rating: {movie.size} movie ids for {user.size} user ids")
    if weight == 0:
        return None
    pos = np.searchsorted(ids, movie)
    pos = np.where((pos < ids.size) & (ids[np.minimum(pos, max(ids.size - 1, 0))] == movie),
                   pos, -1) if ids.size else np.full(movie.shape, -1)
    _, upos = np.unique(user, return_inverse=True)
    return pos.astype(np.int32), upos.astype(np.int32), int(ids.size), weight


def rated_lists(ratings: DataFrame) -> DataFrame:
    """``user_id, rated array<struct<movie_id, rating, ts>>``: each user's ratings, one row
    (``ts`` 0 when the ratings have no time)."""
    ts = F.col("ts") if "ts" in ratings.columns else F.lit(0).cast("long").alias("ts")
    return ratings.groupBy("user_id").agg(
        F.collect_list(F.struct("movie_id", "rating", ts)).alias("rated"))


def _rated_csr(col: pa.Array, ids: np.ndarray) -> sp.csr_matrix:
    """CSR (rows, n) of ratings by catalogue position; movies outside it are dropped."""
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    n_rows = len(col)
    lengths = pc.fill_null(pc.list_value_length(col), 0).to_numpy(zero_copy_only=False)
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    flat = pc.list_flatten(col)  # null lists contribute nothing
    movie = flat.field("movie_id").to_numpy(zero_copy_only=False).astype(np.int64)
    rating = flat.field("rating").to_numpy(zero_copy_only=False).astype(np.float64)
    pos = np.searchsorted(ids, movie)
    pos = np.where((pos < ids.size) & (ids[np.minimum(pos, ids.size - 1)] == movie), pos, -1)
    rows = np.repeat(np.arange(n_rows), np.diff(indptr))
    keep = pos >= 0
    m = sp.csr_matrix((rating[keep], (rows[keep], pos[keep])), shape=(n_rows, ids.size))
    m.sum_duplicates()
    return m


def _recency_profiles(col: pa.Array, ids: np.ndarray, unit: np.ndarray, half_life: float,
                      like_threshold: float) -> np.ndarray:
    """Shipped profiles of a batch of users (:mod:`moviegraph.train.shipped`): the
    recency-weighted mean unit vector of each user's liked movies in the catalogue."""
    from moviegraph.train.shipped import profile_matrix, profile_queries, recency_weights

    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    lengths = pc.fill_null(pc.list_value_length(col), 0).to_numpy(zero_copy_only=False)
    rows = np.repeat(np.arange(len(col)), lengths)
    flat = pc.list_flatten(col)
    movie = flat.field("movie_id").to_numpy(zero_copy_only=False).astype(np.int64)
    rating = flat.field("rating").to_numpy(zero_copy_only=False).astype(np.float64)
    ts = flat.field("ts").to_numpy(zero_copy_only=False).astype(np.int64)
    pos = np.searchsorted(ids, movie)
    pos = np.where((pos < ids.size) & (ids[np.minimum(pos, ids.size - 1)] == movie), pos, -1)
    w = recency_weights(rows, movie, ts, rating, half_life, like_threshold)
    return profile_queries(unit, profile_matrix(rows, pos, w, len(col), ids.size))


def recommendations(spark: SparkSession, ids: np.ndarray, vectors: np.ndarray,
                    users: DataFrame, k: int, user_vectors: bool, like_threshold: float = 4.0,
                    block_size: int = 256, partitions: int = 0,
                    item_term: np.ndarray | None = None,
                    tally: Accumulator | None = None,
                    half_life: float | None = None) -> tuple[DataFrame, Broadcast]:
    """Top-k unrated movies per user: ``user_id, rank, movie_id, score``.

    Args:
        ids, vectors: the model's movie catalogue (ids ascending).
        users: ``user_id, rated`` (:func:`rated_lists`, may be null) and, with
            ``user_vectors``, ``vector``: the user's embedding, scored by dot product.
            Without it, a user's score of movie i is EVALUATION.md's sum of cosines of i
            with the user's movies rated >= ``like_threshold`` (all of them if none is).
        partitions: query tasks; 0 = Spark's default parallelism.
        item_term: optional (n,) additive per-item term, same order as ``ids``: ``score =
            user score + item_term[movie]``, ranked exactly; None: the user score alone.
        tally: optional :func:`row_tally` accumulator.
        half_life: item-embedding models: None = EVALUATION.md's summed cosine; a number
            = the shipped scorer's profile, the mean of the liked movies' unit vectors
            weighted ``0.5 ** (age / half_life)`` (0: equal weights), ``users.rated``
            holding ``ts`` (:func:`moviegraph.train.shipped.recency_weights`).

    Rated movies are never returned; ties go to the lower movie id. Returns the (lazy)
    DataFrame and the catalogue's broadcast, to unpersist once written.

    Raises:
        InputError: a bad item term.
    """
    term = check_item_term(item_term, int(ids.shape[0]))
    parts = partitions or spark.sparkContext.defaultParallelism
    bc = spark.sparkContext.broadcast({"ids": ids, "vectors": vectors, "item_term": term})
    cols = ["user_id", "rated"] + (["vector"] if user_vectors else [])

    def task(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        with _one_thread():
            cat: dict[str, Any] = bc.value
            if user_vectors:
                searcher = Searcher(cat["vectors"], "dot", cat["item_term"])
            else:
                unit = unit_rows(cat["vectors"])
                searcher = Searcher(unit, "dot", cat["item_term"])
            for batch in batches:
                if batch.num_rows == 0:
                    continue
                rated = _rated_csr(batch.column(1), cat["ids"])
                if user_vectors:
                    vec = batch.column(2)
                    dim = cat["vectors"].shape[1]
                    queries = vec.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)
                elif half_life is not None:
                    queries = _recency_profiles(batch.column(1), cat["ids"], unit, half_life,
                                                like_threshold)
                else:
                    queries = profile_queries(unit, rated, like_threshold)
                res = searcher.search(queries, k, rated.astype(bool), block_size)
                _tally(tally, res.positions)
                uid = batch.column(0).to_numpy(zero_copy_only=False)
                yield _emit(uid, cat["ids"], res.positions, res.scores,
                            ("user_id", "movie_id"))

    df = users.select(*cols).repartition(parts).mapInArrow(task, RECOMMEND_SCHEMA)
    return df, bc
