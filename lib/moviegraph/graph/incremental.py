"""Incremental pair counts: fold the ratings appended since the last pairs run into the tables.

When ``ingest --append`` adds ratings, a user's kept movies grow from ``O`` (old) to
``O ∪ N`` (``N`` new, disjoint from ``O``: ingest rejects a (user, movie) already rated).
The pairs of ``O ∪ N`` are those of ``O`` plus the pairs within ``N`` plus every
``(o, n)`` with ``o ∈ O, n ∈ N``; item counts grow by one per new kept rating. So the
update needs the added ratings and the old kept movies of the users who added some --
never the whole table -- and is applied with one Delta MERGE per table (``n = n + Δn``,
new pairs inserted). The result equals a full recount; the integration test checks it
row for row.

The added ratings are found through ``ratings``' Delta history
(:meth:`~moviegraph.tables.Warehouse.appended_files`): the files the commits after the
version the last successful pairs run read added (``maintain``'s compactions in between
add no rows and are skipped). Anything but plain appends in
between (overwrite, delete, restore, schema change), a changed pairs config, outputs
changed since that run, ``pairs.ratings = ranking_train`` (appends move older ratings
into the held-out part) or a ``max_items_per_user`` cap (samples a user's whole list)
makes the stage fall back to a full recount, with the reason printed and recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from moviegraph.config import PairsConfig
from moviegraph.deltalog import same_data, within_time_travel_window
from moviegraph.graph import pairs as P
from moviegraph.tables import Warehouse, one_row


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


def plan_incremental(wh: Warehouse, pc: PairsConfig, config_hash: str,
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
        now = wh.version(table)
        # maintain's compactions in between keep the rows: not a change.
        if table not in plan.outputs or now is None or not same_data(
                wh.spark, wh.path(table), int(plan.outputs[table]), now):
            plan.reason = f"{table} changed since run {prev['run_id']} wrote it"
            return plan
    rows = dict(prev["rows"] or {})
    inputs = dict(prev["inputs"] or {})
    if "pairs_counted" not in rows or "ratings" not in inputs:
        plan.reason = f"run {prev['run_id']} recorded no pair total or ratings version"
        return plan
    plan.previous_pairs = int(rows["pairs_counted"])
    plan.from_version = int(inputs["ratings"])
    if plan.from_version >= ratings_version:
        plan.reason = (f"ratings unchanged since run {prev['run_id']} (v{plan.from_version}); "
                       "a forced rerun recounts")
        return plan
    # Delta refuses to read a version older than the table's deleted-file retention
    # (and VACUUM may have removed its files): recount rather than fail.
    if not within_time_travel_window(wh.spark, wh.path("ratings"), plan.from_version):
        plan.reason = (f"ratings v{plan.from_version} (read by run {prev['run_id']}) is "
                       "outside the table's time-travel window "
                       "(delta.deletedFileRetentionDuration, see maintain.retain_hours)")
        return plan
    appended = wh.appended_files("ratings", plan.from_version, ratings_version)
    plan.files, plan.added_rows, plan.reason = appended.files, appended.rows, appended.reason
    if not appended.reason and not appended.files:
        plan.reason = "the appended commits added no data files"
    return plan


# ---------------------------------------------------------------------------- Spark


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


def count_delta(wh: Warehouse, pc: PairsConfig, plan: Plan, partitions: int) -> Delta:
    """Item and pair count increments from the files in ``plan`` (see the module doc)."""
    added = wh.read_files("ratings", plan.files)
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
    row = one_row(lists.agg(F.count(F.lit(1)).alias("users"), F.sum(nn).alias("new"),
                            F.sum(no).alias("old"),
                            F.sum(nn * (nn - 1) / 2 + nn * no).alias("pairs"),
                            F.sum(overlap).alias("overlap")))
    within = P.pair_counts(P.block_tasks(lists.select("user_id", "items", "n"),
                                         pc.block_size, partitions))
    crossed = P.pair_counts(P.cross_tasks(lists, pc.block_size, partitions), cross=True)
    pairs = (within.unionByName(crossed).groupBy("movie_a", "movie_b")
             .agg(F.sum("n").cast("long").alias("n"))
             .persist(StorageLevel.MEMORY_AND_DISK))
    items = (lists.select(F.explode("items").alias("movie_id")).groupBy("movie_id")
             .agg(F.count(F.lit(1)).alias("n")).persist(StorageLevel.MEMORY_AND_DISK))
    # Materialise the pair increments while the user lists are cached.
    totals = one_row(pairs.agg(F.count(F.lit(1)).alias("rows"), F.sum("n").alias("n")))
    delta = Delta(items=items, pairs=pairs, new_kept=int(row["new"] or 0),
                  old_kept=int(row["old"] or 0), users=int(row["users"] or 0),
                  expected_pairs=int(row["pairs"] or 0), overlap=int(row["overlap"] or 0),
                  pair_rows=int(totals["rows"]), counted=int(totals["n"] or 0))
    lists.unpersist()
    return delta
