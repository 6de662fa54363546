"""Incremental pair counts: fold the ratings appended since the last pairs run into the tables.

When ``ingest --append`` adds ratings, a user's kept movies grow from ``O`` (old) to
``O ∪ N`` (``N`` new, disjoint from ``O``: ingest rejects a (user, movie) already rated).
The pairs of ``O ∪ N`` are those of ``O`` plus the pairs within ``N`` plus every
``(o, n)`` with ``o ∈ O, n ∈ N``; item counts grow by one per new kept rating. So the
update needs the added ratings and the old kept movies of the users who added some --
never the whole table -- and is applied with one Delta MERGE per table (``n = n + Δn``,
new pairs inserted). The result equals a full recount; the integration test checks it
row for row.

The added ratings are found in ``ratings``' Delta log: the ``add`` actions of the commits
after the version the last successful pairs run read (``maintain``'s compactions in
between add no rows and are skipped; see ``moviegraph.deltalog``). Anything but plain appends in
between (overwrite, delete, restore, schema change), a changed pairs config, outputs
changed since that run, ``pairs.ratings = ranking_train`` (appends move older ratings
into the held-out part) or a ``max_items_per_user`` cap (samples a user's whole list)
makes the stage fall back to a full recount, with the reason printed and recorded.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import scipy.sparse as sp
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from moviegraph import fs
from moviegraph.config import PairsConfig
from moviegraph.deltalog import (
    LogGapError,
    commit_actions,
    data_equivalent_version,
    is_maintenance,
    same_data,
    within_time_travel_window,
)
from moviegraph.graph import pairs as P
from moviegraph.graph.kernels import LOW_MASK, SHIFT, chunk_bounds, encode_pairs
from moviegraph.tables import SCHEMAS, Warehouse

# Actions a commit may hold and still be a plain append.
_APPEND_ACTIONS = {"commitInfo", "add"}


@dataclass
class Plan:
    """Whether the pairs stage can run incrementally, and from what."""

    reason: str  # why a full recount is needed; "" when incremental applies
    previous_run: str = ""
    from_version: int = -1  # ratings version the previous run read
    to_version: int = -1  # ratings version to bring the counts to
    files: list[str] = field(default_factory=list)  # parquet files added in between
    added_rows: int = 0  # numRecords of those files (from the log's stats)
    previous_pairs: int = 0  # Σ pair_counts.n written by the previous run
    outputs: dict[str, int] = field(default_factory=dict)  # versions it wrote

    @property
    def applies(self) -> bool:
        """True when the counts can be updated from the added ratings alone."""
        return not self.reason


# --------------------------------------------------------------------------- kernel


def cross_pair_counts(a_ptr: np.ndarray, a_items: np.ndarray, b_ptr: np.ndarray,
                      b_items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts of the pairs ``{x, y}``, x in task k's A, y in its B, coded ``min << 32 | max``.

    Task ``k``'s A is ``a_items[a_ptr[k]:a_ptr[k+1]]``, its B likewise; A and B must be
    disjoint (ValueError otherwise) but, unlike the block tasks of a sorted list, their ids
    may interleave. Returns ``(codes, counts)`` aggregated over the tasks, codes sorted.
    """
    a_ptr = np.asarray(a_ptr, dtype=np.int64)
    b_ptr = np.asarray(b_ptr, dtype=np.int64)
    k = len(a_ptr) - 1
    a_vals = np.asarray(a_items)[a_ptr[0]:a_ptr[-1]]
    b_vals = np.asarray(b_items)[b_ptr[0]:b_ptr[-1]]
    if k <= 0 or a_vals.size == 0 or b_vals.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    a_rows = np.repeat(np.arange(k, dtype=np.int32), np.diff(a_ptr))
    b_rows = np.repeat(np.arange(k, dtype=np.int32), np.diff(b_ptr))
    ids, inverse = np.unique(np.concatenate([a_vals, b_vals]), return_inverse=True)
    m = len(ids)
    a_loc = inverse[:a_vals.size].astype(np.int32)
    b_loc = inverse[a_vals.size:].astype(np.int32)
    at = sp.csr_matrix((np.ones(a_vals.size, np.int32), (a_loc, a_rows)), shape=(m, k))
    bm = sp.csr_matrix((np.ones(b_vals.size, np.int32), (b_rows, b_loc)), shape=(k, m))
    prod = at @ bm  # prod[x, y] = tasks with x in A and y in B
    if prod.diagonal().any():
        raise ValueError("a task's A and B share a movie: the pairs would not be distinct")
    # An unordered pair may come as (x, y) or (y, x): fold both onto the upper triangle.
    folded = sp.triu(prod + prod.T, k=1).tocoo()
    codes = encode_pairs(ids[folded.row], ids[folded.col])
    order = np.argsort(codes, kind="stable")
    return codes[order], folded.data[order].astype(np.int64)


def iter_cross_pair_counts(a_ptr: np.ndarray, a_items: np.ndarray, b_ptr: np.ndarray,
                           b_items: np.ndarray,
                           max_cells: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """:func:`cross_pair_counts` over chunks of at most ``max_cells`` cells each."""
    a_ptr = np.asarray(a_ptr, dtype=np.int64)
    b_ptr = np.asarray(b_ptr, dtype=np.int64)
    cells = np.diff(a_ptr) * np.diff(b_ptr)
    for start, stop in chunk_bounds(cells, max_cells):
        codes, counts = cross_pair_counts(a_ptr[start:stop + 1], a_items,
                                          b_ptr[start:stop + 1], b_items)
        if codes.size:
            yield codes, counts


# ------------------------------------------------------------------------ Delta log


def appended_files(spark: SparkSession, table_path: str, after: int,
                   upto: int) -> tuple[list[str], int, str]:
    """Data files added by commits ``after+1 .. upto`` of a Delta table, if all are appends.

    Returns ``(absolute file paths, rows in them, reason)``; ``reason`` is non-empty (and
    the lists empty) when some commit is not a plain append or its log entry is gone.
    Maintenance commits (``maintain``'s OPTIMIZE) are skipped: they add no rows, and the
    appended files they compacted stay on storage while the pairs run that precedes them
    is the latest (``maintain`` keeps the files of every version the runs table names).
    """
    files: list[str] = []
    rows = 0
    for version in range(after + 1, upto + 1):
        try:
            actions = commit_actions(spark, table_path, version)
        except LogGapError:
            return [], 0, f"the Delta log entry of ratings v{version} is gone (log cleanup)"
        if is_maintenance(actions):
            continue  # maintain's compaction: same rows, nothing appended
        kinds = {k for action in actions for k in action}
        info = next((a["commitInfo"] for a in actions if "commitInfo" in a), {})
        operation = info.get("operation", "?")
        mode = info.get("operationParameters", {}).get("mode", "?")
        if kinds - _APPEND_ACTIONS or operation != "WRITE" or mode != "Append":
            return [], 0, (f"ratings v{version} is a {operation} ({mode}; actions "
                           f"{', '.join(sorted(kinds))}), not a plain append")
        for action in actions:
            add = action.get("add")
            if add is None:
                continue
            path = add["path"]
            # Log paths are URI-encoded, relative to the table unless they carry a scheme.
            files.append(path if "://" in path
                         else f"{table_path}/{urllib.parse.unquote(path)}")
            rows += int(json.loads(add.get("stats") or "{}").get("numRecords", 0))
    return files, rows, ""


def plan_incremental(spark: SparkSession, wh: Warehouse, pc: PairsConfig, config_hash: str,
                     ratings_version: int) -> Plan:
    """Decide whether the pairs stage may update its tables from the appended ratings."""
    if not pc.incremental:
        return Plan("pairs.incremental = false")
    if pc.ratings != "all":
        return Plan(f"pairs.ratings = {pc.ratings}: appended ratings move older ones "
                    "into the held-out part of the ranking split")
    if pc.max_items_per_user:
        return Plan(f"pairs.max_items_per_user = {pc.max_items_per_user}: the cap samples "
                    "each user's whole list")
    if not wh.exists("runs"):
        return Plan("no earlier pairs run")
    last = (wh.read("runs").where((F.col("stage") == "pairs")
                                  & (F.col("status") == "succeeded"))
            .orderBy(F.col("started_at").desc()).limit(1).collect())
    if not last:
        return Plan("no earlier successful pairs run")
    prev = last[0]
    plan = Plan("", previous_run=prev["run_id"], to_version=ratings_version,
                outputs=dict(prev["outputs"] or {}))
    if prev["config_hash"] != config_hash:
        plan.reason = f"the pairs config changed since run {prev['run_id']}"
        return plan
    for table in ("item_counts", "pair_counts"):
        current = wh.version(table)
        if (table not in plan.outputs or current is None
                or not same_data(spark, wh.path(table), plan.outputs[table], current)):
            plan.reason = f"{table} changed since run {prev['run_id']} wrote it"
            return plan
    rows = dict(prev["rows"] or {})
    inputs = dict(prev["inputs"] or {})
    if "pairs_counted" not in rows or "ratings" not in inputs:
        plan.reason = f"run {prev['run_id']} recorded no pair total or ratings version"
        return plan
    plan.previous_pairs = int(rows["pairs_counted"])
    # The newest version with the same rows as the one the last run read: compacted
    # files when maintain ran since (the same rows either way).
    plan.from_version = data_equivalent_version(spark, wh.path("ratings"),
                                                int(inputs["ratings"]), ratings_version)
    if plan.from_version >= ratings_version:
        plan.reason = (f"ratings unchanged since run {prev['run_id']} (v{plan.from_version}); "
                       "a forced rerun recounts")
        return plan
    # Delta refuses to read a version older than the table's deleted-file retention
    # (and VACUUM may have removed its files): recount rather than fail.
    if not within_time_travel_window(spark, wh.path("ratings"), plan.from_version):
        plan.reason = (f"ratings v{plan.from_version} (read by run {prev['run_id']}) is "
                       "outside the table's time-travel window "
                       "(delta.deletedFileRetentionDuration, see maintain.retain_hours)")
        return plan
    files, added, reason = appended_files(spark, wh.path("ratings"), plan.from_version,
                                          ratings_version)
    plan.files, plan.added_rows, plan.reason = files, added, reason
    if not reason and not files:
        plan.reason = "the appended commits added no data files"
    elif not reason and not all(fs.exists(spark, f) for f in files):
        plan.files, plan.reason = [], "appended files were compacted and vacuumed since"
    return plan


# ---------------------------------------------------------------------------- Spark


def _cross_batches(max_cells: int):
    """The mapInArrow function: cross tasks (new block ``a``, old block ``b``) -> (code, n)."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            a = batch.column("a")
            b = batch.column("b")
            for codes, counts in iter_cross_pair_counts(
                    a.offsets.to_numpy(), a.values.to_numpy(zero_copy_only=False),
                    b.offsets.to_numpy(), b.values.to_numpy(zero_copy_only=False),
                    max_cells):
                yield pa.RecordBatch.from_arrays([pa.array(codes), pa.array(counts)],
                                                 names=["code", "n"])

    return run


def cross_tasks(lists: DataFrame, block_size: int, partitions: int) -> DataFrame:
    """One row per (user, new block i, old block k): ``user_id, a (new), b (old)``.

    ``lists`` has ``user_id, items`` (new, sorted) and ``old`` (sorted); each task does at
    most ``block_size²`` work, and tasks are hash-spread like the full count's.
    """
    bs = int(block_size)

    def last(col: str):
        return F.floor((F.size(col) - 1) / F.lit(bs)).cast("int")

    with_i = (lists.where((F.size("items") > 0) & (F.size("old") > 0))
              .select("user_id", "items", "old",
                      F.explode(F.sequence(F.lit(0), last("items"))).alias("bi")))
    with_k = with_i.select("user_id", "items", "old", "bi",
                           F.explode(F.sequence(F.lit(0), last("old"))).alias("bk"))
    tasks = with_k.select("user_id", "bi", "bk",
                          F.slice("items", F.col("bi") * bs + 1, bs).alias("a"),
                          F.slice("old", F.col("bk") * bs + 1, bs).alias("b"))
    return tasks.repartition(int(partitions), "user_id", "bi", "bk")


@dataclass
class Delta:
    """What the added ratings contribute to the counts (lazy, persisted frames)."""

    items: DataFrame  # movie_id, n
    pairs: DataFrame  # movie_a, movie_b, n
    new_kept: int  # added ratings >= min_rating
    old_kept: int  # kept old ratings of the users who added some (read to pair with)
    users: int  # users with added kept ratings
    expected_pairs: int  # Σ_u |N|(|N|-1)/2 + |N||O|
    overlap: int  # (user, movie) both old and new, or repeated: must be 0
    pair_rows: int  # distinct pairs touched
    counted: int  # Σ Δn over pairs: must equal expected_pairs

    def unpersist(self) -> None:
        """Release the cached frames."""
        self.items.unpersist()
        self.pairs.unpersist()


def count_delta(spark: SparkSession, wh: Warehouse, pc: PairsConfig, plan: Plan,
                partitions: int) -> Delta:
    """Item and pair count increments from the files in ``plan`` (see the module doc)."""
    added = spark.read.schema(SCHEMAS["ratings"]).parquet(*plan.files)
    new = P.kept_ratings(added, pc.min_rating)
    new_lists = new.groupBy("user_id").agg(
        F.sort_array(F.collect_list("movie_id")).alias("items"))
    old = P.kept_ratings(wh.read("ratings", plan.from_version), pc.min_rating).join(
        new_lists.select("user_id"), "user_id", "left_semi")
    old_lists = old.groupBy("user_id").agg(F.sort_array(F.collect_list("movie_id")).alias("old"))
    empty = F.array().cast(T.ArrayType(T.IntegerType()))
    lists = (new_lists.join(old_lists, "user_id", "left")
             .select("user_id", "items", F.coalesce("old", empty).alias("old"))
             .withColumn("n", F.size("items"))
             .persist(StorageLevel.MEMORY_AND_DISK))
    nn = F.col("n").cast("long")
    no = F.size("old").cast("long")
    # Shared movies (a re-rating that bypassed ingest's duplicate check) break the algebra.
    overlap = F.size(F.array_intersect("items", "old")) + nn - F.size(F.array_distinct("items"))
    row = lists.agg(F.count(F.lit(1)).alias("users"), F.sum(nn).alias("new"),
                    F.sum(no).alias("old"), F.sum(nn * (nn - 1) / 2 + nn * no).alias("pairs"),
                    F.sum(overlap).alias("overlap")).first()
    within = P.pair_counts(P.block_tasks(lists.select("user_id", "items", "n"),
                                         pc.block_size, partitions))
    crossed = (cross_tasks(lists, pc.block_size, partitions)
               .mapInArrow(_cross_batches(P.MAX_CELLS), P.TASK_SCHEMA)
               .groupBy("code").agg(F.sum("n").alias("n"))
               .select(F.shiftright("code", SHIFT).cast("int").alias("movie_a"),
                       F.col("code").bitwiseAND(F.lit(LOW_MASK)).cast("int").alias("movie_b"),
                       F.col("n").cast("long").alias("n")))
    pairs = (within.unionByName(crossed).groupBy("movie_a", "movie_b")
             .agg(F.sum("n").cast("long").alias("n"))
             .persist(StorageLevel.MEMORY_AND_DISK))
    items = (lists.select(F.explode("items").alias("movie_id")).groupBy("movie_id")
             .agg(F.count(F.lit(1)).alias("n")).persist(StorageLevel.MEMORY_AND_DISK))
    # Materialise the pair increments while the user lists are cached.
    totals = pairs.agg(F.count(F.lit(1)).alias("rows"), F.sum("n").alias("n")).first()
    delta = Delta(items=items, pairs=pairs, new_kept=int(row["new"] or 0),
                  old_kept=int(row["old"] or 0), users=int(row["users"] or 0),
                  expected_pairs=int(row["pairs"] or 0), overlap=int(row["overlap"] or 0),
                  pair_rows=int(totals["rows"]), counted=int(totals["n"] or 0))
    lists.unpersist()
    return delta


def merge_counts(spark: SparkSession, wh: Warehouse, name: str, increments: DataFrame,
                 keys: tuple[str, ...]) -> int:
    """Add ``increments.n`` into table ``name`` (insert missing keys): one Delta MERGE."""
    from delta.tables import DeltaTable

    target = DeltaTable.forPath(spark, wh.path(name))
    condition = " AND ".join(f"t.{k} = s.{k}" for k in keys)
    (target.alias("t").merge(wh.conform(name, increments).alias("s"), condition)
     .whenMatchedUpdate(set={"n": "t.n + s.n"})
     .whenNotMatchedInsertAll()
     .execute())
    version = wh.version(name)
    assert version is not None
    return version
