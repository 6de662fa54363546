"""Exact co-rating pair counts in Spark, safe with heavy users.

A full count (:func:`range_pair_counts`) collects the kept user x movie incidence once
(one int32 per kept rating), broadcasts it, and splits the work by MOVIE RANGES: the task
of a range computes the exact counts of the pairs whose smaller movie is in it (rows of
``XᵀX``, :mod:`moviegraph.graph.ranges`), so every pair comes out of one task, already
summed, and no pair is shuffled. The incremental count (:mod:`moviegraph.graph.incremental`)
still uses the per-user block tasks below, on the few users who appended ratings.

Per-user block tasks: counting costs Σ n_u² over users (n_u = a user's kept movies):
one user with 30,000 movies alone makes 450M pairs.
So no task ever holds a user's whole square: each
user's sorted movie list is cut into blocks of ``block_size`` movies and every block
pair ``(i, j)``, ``i <= j``, becomes one task. Tasks are hash-partitioned on
``(user, i, j)`` (salting), so a heavy user's square is spread over all partitions,
and each task does at most ``block_size²`` work. The numpy/scipy kernel
(:mod:`moviegraph.graph.kernels`) runs inside ``mapInArrow`` and pre-aggregates each
chunk of tasks to ``(pair code, count)`` before the shuffle; Spark then sums counts
per int64 pair code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.window import Window

from moviegraph.faults import fail_once
from moviegraph.graph import ranges as R
from moviegraph.graph.kernels import (
    LOW_MASK,
    SHIFT,
    iter_block_pair_counts,
    iter_cross_pair_counts,
)
from moviegraph.tables import one_row

# Work budget of one kernel call (cells of the block product): bounds a Python worker's
# memory to a few hundred MB whatever the users look like.
MAX_CELLS = 1 << 22

TASK_SCHEMA = "code long, n long"

#: A ``mapInArrow`` function: Arrow batches in, Arrow batches out.
ArrowFn = Callable[[Iterable[pa.RecordBatch]], Iterator[pa.RecordBatch]]


@dataclass
class UserLists:
    """Kept (optionally capped) sorted movie lists per user, and what the cap did."""

    lists: DataFrame  # user_id int, items array<int> (sorted, distinct), n int
    capped_users: int
    dropped_ratings: int


def ranking_train_part(ratings: DataFrame) -> DataFrame:
    """The train part of EVALUATION.md's ranking split, in Spark.

    Each user's ratings ordered by ``(ts, movie_id)``; the last ``max(1, n // 5)`` are
    test and dropped (the same rule as :func:`moviegraph.protocol.splits.ranking_split`,
    which the trainer applies on the driver). The movie id breaks timestamp ties, so the
    result does not depend on partitioning.
    """
    by_user = Window.partitionBy("user_id")
    ordered = by_user.orderBy(F.col("ts").desc(), F.col("movie_id").desc())
    return (ratings.withColumn("_from_end", F.row_number().over(ordered))
            .withColumn("_n", F.count(F.lit(1)).over(by_user))
            .filter(F.col("_from_end") > F.greatest(F.lit(1), F.floor(F.col("_n") / 5)))
            .drop("_from_end", "_n"))


def kept_ratings(ratings: DataFrame, min_rating: float) -> DataFrame:
    """``(user_id, movie_id)`` of the ratings ``>= min_rating``."""
    return ratings.filter(F.col("rating") >= F.lit(float(min_rating))).select(
        "user_id", "movie_id")


def user_lists(kept: DataFrame, max_items_per_user: int = 0, seed: int = 0) -> UserLists:
    """Each user's kept movies as one sorted array; optionally capped by a seeded sample.

    With ``max_items_per_user > 0`` a user with more kept movies keeps the ones with the
    smallest ``xxhash64(seed, user, movie)`` (ties by movie id): reproducible, and the
    same whatever the partitioning.
    """
    if max_items_per_user <= 0:
        lists = kept.groupBy("user_id").agg(
            F.sort_array(F.collect_list("movie_id")).alias("items"))
        lists = lists.withColumn("n", F.size("items")).persist(StorageLevel.MEMORY_AND_DISK)
        return UserLists(lists, 0, 0)
    cap = int(max_items_per_user)
    keyed = kept.select("user_id", F.struct(
        F.xxhash64(F.lit(int(seed)), "user_id", "movie_id").alias("h"),
        F.col("movie_id").alias("m")).alias("hm"))
    grouped = keyed.groupBy("user_id").agg(F.sort_array(F.collect_list("hm")).alias("hms"))
    lists = grouped.select(
        "user_id", F.size("hms").alias("full"),
        F.sort_array(F.transform(F.slice("hms", 1, cap), lambda x: x["m"])).alias("items"))
    lists = lists.withColumn("n", F.size("items")).persist(StorageLevel.MEMORY_AND_DISK)
    row = one_row(lists.agg(F.sum(F.when(F.col("full") > cap, 1).otherwise(0)).alias("users"),
                            F.sum(F.col("full") - F.col("n")).alias("dropped")))
    return UserLists(lists.drop("full"), int(row["users"] or 0), int(row["dropped"] or 0))


def item_counts(lists: DataFrame) -> DataFrame:
    """``(movie_id, n)``: kept ratings per movie (after the cap, if any)."""
    return (lists.select(F.explode("items").alias("movie_id"))
            .groupBy("movie_id").agg(F.count(F.lit(1)).alias("n")))


def _last_block(n: Column, block_size: int) -> Column:
    """Index of the last block of a list of ``n`` movies."""
    return F.floor((n - 1) / F.lit(int(block_size))).cast("int")


def _explode_blocks(df: DataFrame, keep: list[str], name: str, first: Column,
                    last: Column) -> DataFrame:
    """``df`` (its ``keep`` columns) with one row per block index ``first..last`` in
    column ``name``."""
    return df.select(*keep, F.explode(F.sequence(first, last)).alias(name))


def block_tasks(lists: DataFrame, block_size: int, partitions: int) -> DataFrame:
    """One row per (user, block i, block j), i <= j, hash-spread over ``partitions``.

    Columns ``user_id, bi, bj, a, b``: ``a`` is block i, ``b`` block j (empty when
    ``i == j``: the task pairs block i with itself). Users with one movie make no task.
    """
    bs = int(block_size)
    with_last = lists.filter(F.col("n") >= 2).select(
        "user_id", "items", _last_block(F.col("n"), bs).alias("last"))
    with_i = _explode_blocks(with_last, ["user_id", "items", "last"], "bi", F.lit(0),
                             F.col("last"))
    with_j = _explode_blocks(with_i, ["user_id", "items", "bi"], "bj", F.col("bi"),
                             F.col("last"))
    empty = F.array().cast(T.ArrayType(T.IntegerType()))
    tasks = with_j.select(
        "user_id", "bi", "bj",
        F.slice("items", F.col("bi") * bs + 1, bs).alias("a"),
        F.when(F.col("bi") == F.col("bj"), empty)
        .otherwise(F.slice("items", F.col("bj") * bs + 1, bs)).alias("b"))
    return tasks.repartition(int(partitions), "user_id", "bi", "bj")


def cross_tasks(lists: DataFrame, block_size: int, partitions: int) -> DataFrame:
    """One row per (user, new block i, old block k): ``user_id, bi, bj, a (new), b (old)``.

    ``lists`` has ``user_id, items`` (new, sorted) and ``old`` (sorted); each task does at
    most ``block_size²`` work, and tasks are hash-spread like :func:`block_tasks`' (the
    incremental count's tasks, :mod:`moviegraph.graph.incremental`).
    """
    bs = int(block_size)
    with_i = _explode_blocks(lists.where((F.size("items") > 0) & (F.size("old") > 0)),
                             ["user_id", "items", "old"], "bi", F.lit(0),
                             _last_block(F.size("items"), bs))
    with_k = _explode_blocks(with_i, ["user_id", "items", "old", "bi"], "bj", F.lit(0),
                             _last_block(F.size("old"), bs))
    tasks = with_k.select("user_id", "bi", "bj",
                          F.slice("items", F.col("bi") * bs + 1, bs).alias("a"),
                          F.slice("old", F.col("bj") * bs + 1, bs).alias("b"))
    return tasks.repartition(int(partitions), "user_id", "bi", "bj")


def _count_batches(max_cells: int, cross: bool) -> ArrowFn:
    """The mapInArrow function: task batches in, pre-aggregated ``(code, n)`` out."""

    def run(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            fail_once("pairs")  # test hook (moviegraph.faults); a no-op unless set
            a = batch.column("a")
            b = batch.column("b")
            lists = (a.offsets.to_numpy(), a.values.to_numpy(zero_copy_only=False),
                     b.offsets.to_numpy(), b.values.to_numpy(zero_copy_only=False))
            if cross:
                chunks = iter_cross_pair_counts(*lists, max_cells)
            else:
                diag = (batch.column("bi").to_numpy(zero_copy_only=False)
                        == batch.column("bj").to_numpy(zero_copy_only=False))
                chunks = iter_block_pair_counts(*lists, diag, max_cells)
            for codes, counts in chunks:
                yield pa.RecordBatch.from_arrays([pa.array(codes), pa.array(counts)],
                                                 names=["code", "n"])

    return run


def pair_counts(tasks: DataFrame, max_cells: int = MAX_CELLS, cross: bool = False) -> DataFrame:
    """``(movie_a, movie_b, n)`` with ``movie_a < movie_b``, summed over all tasks
    (:func:`block_tasks`, or :func:`cross_tasks` with ``cross=True``)."""
    coded = tasks.mapInArrow(_count_batches(max_cells, cross), TASK_SCHEMA)
    summed = coded.groupBy("code").agg(F.sum("n").alias("n"))
    return summed.select(
        F.shiftright("code", SHIFT).cast("int").alias("movie_a"),
        F.col("code").bitwiseAND(F.lit(LOW_MASK)).cast("int").alias("movie_b"),
        F.col("n").cast("long").alias("n"))


def list_stats(lists: DataFrame, block_size: int) -> dict[str, int]:
    """Users, kept ratings, Σ n_u(n_u-1)/2 (pairs to count), Σ n_u², largest n_u, tasks."""
    n = F.col("n").cast("long")
    nb = F.floor((n - 1) / F.lit(int(block_size))) + 1
    row = one_row(lists.agg(
        F.count(F.lit(1)).alias("users"), F.sum(n).alias("kept"),
        F.sum(n * (n - 1) / 2).cast("long").alias("pairs"),
        F.sum(n * n).alias("sum_sq"), F.max(n).alias("max_n"),
        F.sum(F.when(n >= 2, nb * (nb + 1) / 2).otherwise(0)).cast("long").alias("tasks"),
        F.sum(F.when(n > int(block_size), 1).otherwise(0)).alias("split_users"),
    ))
    return {k: int(row[k] or 0) for k in row.asDict()}



# ------------------------------------------------------------------ full count by ranges

PAIR_SCHEMA = "movie_a int, movie_b int, n long"

#: Below this much work (cells) per task, fewer tasks than partitions: a Python task's
#: start costs more than counting a few hundred thousand pairs.
MIN_TASK_CELLS = 1 << 21


def collect_incidence(lists: DataFrame) -> R.Incidence:
    """The user lists (``items`` sorted, distinct) as an :class:`~moviegraph.graph.ranges.
    Incidence` on the driver: one int32 per kept rating (users in no particular order;
    the counts do not depend on it)."""
    col = lists.select("items").toArrow().column("items").combine_chunks()
    if len(col) == 0:
        return R.build_incidence(np.zeros(1, np.int64), np.empty(0, np.int32))
    return R.build_incidence(col.offsets.to_numpy(),
                             col.values.to_numpy(zero_copy_only=False))


@dataclass
class RangePlan:
    """How a full count is cut: movie ranges (one task each) and their work."""

    work: np.ndarray  # per movie, :func:`moviegraph.graph.ranges.row_work`
    bounds: np.ndarray  # range bounds over local movie indices
    max_cells: int  # work budget of one kernel call inside a task
    chunks: int  # kernel calls over all tasks
    largest_chunk: int  # work of the heaviest call (> max_cells only for one heavy row)

    @property
    def tasks(self) -> int:
        """Number of ranges (Spark tasks)."""
        return len(self.bounds) - 1


def plan_ranges(inc: R.Incidence, partitions: int, max_cells: int) -> RangePlan:
    """Balance movie ranges over at most ``partitions`` tasks (fewer on small data)."""
    work = R.row_work(inc)
    total = int(work.sum())
    tasks = max(1, min(int(partitions), -(-total // MIN_TASK_CELLS)))
    bounds = R.split_ranges(work, tasks)
    chunks, largest = R.chunk_count(work, bounds, max_cells)
    return RangePlan(work, bounds, int(max_cells), chunks, largest)


def _range_batches(shipped, max_cells: int) -> ArrowFn:
    """The mapInArrow function: task ids in, ``(movie_a, movie_b, n)`` of their ranges out
    (sorted by ``(a, b)`` within a task; task ``t``'s range precedes task ``t + 1``'s)."""

    def run(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        inc, bounds, work = shipped.value
        for batch in batches:
            for t in batch.column("id").to_numpy(zero_copy_only=False).tolist():
                fail_once("pairs")  # test hook (moviegraph.faults); a no-op unless set
                for a, b, n in R.iter_range_pair_counts(inc, int(bounds[t]),
                                                        int(bounds[t + 1]), work, max_cells):
                    yield pa.RecordBatch.from_arrays(
                        [pa.array(a), pa.array(b), pa.array(n)],
                        names=["movie_a", "movie_b", "n"])

    return run


def range_pair_counts(spark: SparkSession, inc: R.Incidence, plan: RangePlan
                      ) -> tuple[DataFrame, Callable[[], None]]:
    """``(movie_a, movie_b, n)`` of every co-rated pair, ``movie_a < movie_b``, exact.

    One Spark partition per range of ``plan`` (``spark.range`` puts one id in each), so
    the rows come out range-sorted by ``(movie_a, movie_b)`` with no shuffle. Returns the
    frame and a function releasing the broadcast incidence (call it after the write).
    """
    shipped = spark.sparkContext.broadcast((inc, plan.bounds, plan.work))
    ids = spark.range(0, plan.tasks, 1, numPartitions=max(plan.tasks, 1))
    df = ids.mapInArrow(_range_batches(shipped, plan.max_cells), PAIR_SCHEMA)
    return df, lambda: shipped.destroy()


def incidence_stats(inc: R.Incidence, block_size: int) -> dict[str, int]:
    """Users, kept ratings, Σ n_u(n_u-1)/2 (pairs to count), Σ n_u², largest n_u, and
    the users longer than ``block_size`` (heavy users), from the collected incidence."""
    n = np.diff(inc.indptr).astype(np.int64)
    return {"users": int(n.size), "kept": int(n.sum()), "pairs": int((n * (n - 1) // 2).sum()),
            "sum_sq": int((n * n).sum()), "max_n": int(n.max(initial=0)),
            "heavy_users": int((n > block_size).sum())}


def item_counts_arrow(inc: R.Incidence) -> pa.Table:
    """``(movie_id, n)`` of the incidence: kept ratings per movie, by movie id."""
    return pa.table({"movie_id": pa.array(inc.ids, pa.int32()),
                     "n": pa.array(np.diff(inc.col_ptr).astype(np.int64), pa.int64())})
