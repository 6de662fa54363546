"""The ``pairs`` stage: ratings -> item_counts, pair_counts (exact co-rating counts)."""

from __future__ import annotations

import time

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from moviegraph.config import Config, PairsConfig
from moviegraph.graph import pairs as P
from moviegraph.graph.incremental import Plan, count_delta, plan_incremental
from moviegraph.runs import StageRun, input_versions
from moviegraph.stages.base import Stage
from moviegraph.tables import Warehouse, one_row


def run_pairs(spark: SparkSession, cfg: Config, wh: Warehouse, run: StageRun) -> str:
    """ratings -> item_counts, pair_counts (exact unless pairs.max_items_per_user > 0).

    After appends to ``ratings`` the counts are updated from the appended ratings alone
    when :func:`moviegraph.graph.incremental.plan_incremental` allows it; else recounted.
    """
    pc = cfg.pairs
    t0 = time.time()
    run.inputs.update(input_versions(wh, "ratings"))
    plan = plan_incremental(wh, pc, run.config_hash, run.inputs["ratings"])
    if plan.applies:
        summary = _pairs_incremental(spark, pc, wh, run, plan, t0)
        if summary:
            return summary
    else:
        print(f"[pairs] full recount: {plan.reason}", flush=True)
        run.notes["incremental"] = {"applied": False, "reason": plan.reason}
    ratings = wh.read("ratings", run.inputs["ratings"])
    run.rows["ratings"] = wh.row_count("ratings", run.inputs["ratings"])
    if pc.ratings == "ranking_train":
        ratings = P.ranking_train_part(ratings)
    ul = P.user_lists(P.kept_ratings(ratings, pc.min_rating), pc.max_items_per_user, pc.seed)
    try:
        # The kept incidence on the driver (one int32 per kept rating), then one task per
        # balanced movie range: each pair is counted, exactly, by one task; no shuffle.
        inc = P.collect_incidence(ul.lists)
    finally:
        ul.lists.unpersist()
    stats = P.incidence_stats(inc, pc.block_size)
    partitions = int(spark.conf.get("spark.sql.shuffle.partitions", "200") or 200)
    ranges = P.plan_ranges(inc, partitions, pc.block_size * pc.block_size)
    items_df = wh.spark.createDataFrame(P.item_counts_arrow(inc).to_pandas(),
                                        schema="movie_id int, n long").coalesce(1)
    run.outputs["item_counts"] = wh.write("item_counts", items_df)
    pairs_df, release = P.range_pair_counts(spark, inc, ranges)
    try:
        # Range-sorted by (movie_a, movie_b) as it comes: task t writes range t, in order.
        run.outputs["pair_counts"] = wh.write("pair_counts", pairs_df)
    finally:
        release()
    written = one_row(wh.read("pair_counts", run.outputs["pair_counts"]).agg(
        F.count(F.lit(1)).alias("rows"), F.sum("n").alias("total")))
    counted = int(written["total"] or 0)
    if counted != stats["pairs"]:  # every pair of every user, once: a cheap exactness check
        raise RuntimeError(f"pair counts sum to {counted:,}, expected Σ n_u(n_u-1)/2 = "
                           f"{stats['pairs']:,}")
    items = wh.row_count("item_counts", run.outputs["item_counts"])
    seconds = time.time() - t0
    run.rows.update({"kept_ratings": stats["kept"], "users": stats["users"],
                     "item_counts": items, "pair_counts": int(written["rows"]),
                     "pairs_counted": counted, "tasks": ranges.tasks})
    run.notes.update({"ratings": pc.ratings, "min_rating": pc.min_rating,
                      "block_size": pc.block_size,
                      "exact": pc.max_items_per_user == 0, "sum_n_squared": stats["sum_sq"],
                      "max_user_movies": stats["max_n"], "heavy_users": stats["heavy_users"],
                      "chunks": ranges.chunks, "chunk_cells": ranges.max_cells,
                      "largest_chunk": ranges.largest_chunk,
                      "partitions": partitions, "seconds": round(seconds, 3)})
    if pc.max_items_per_user:
        run.notes["cap"] = {"max_items_per_user": pc.max_items_per_user, "seed": pc.seed,
                            "users_capped": ul.capped_users,
                            "ratings_dropped": ul.dropped_ratings}
    mode = ("exact" if not pc.max_items_per_user else
            f"CAPPED at {pc.max_items_per_user} movies/user (seed {pc.seed}): "
            f"{ul.capped_users:,} users, {ul.dropped_ratings:,} ratings dropped")
    return "\n".join([
        f"pairs: ratings >= {pc.min_rating:g}"
        + (" (ranking split's train part)" if pc.ratings == "ranking_train" else "")
        + f": {stats['kept']:,} of {run.rows['ratings']:,} ratings, "
        f"{stats['users']:,} users, {items:,} movies ({mode})",
        f"  pairs counted {counted:,} (Σ n_u² = {stats['sum_sq']:,}, largest user "
        f"{stats['max_n']:,} movies; {ranges.tasks:,} movie-range tasks, {ranges.chunks:,} "
        f"chunks of <= {ranges.max_cells:,} cells (block_size²) unless one movie is heavier)",
        f"  distinct pairs {int(written['rows']):,} -> pair_counts v{run.outputs['pair_counts']}"
        f", item_counts v{run.outputs['item_counts']}; {seconds:.1f}s, "
        f"{counted / max(seconds, 1e-9) / 1e6:.2f}M pairs/s",
    ])


def _pairs_incremental(spark: SparkSession, pc: PairsConfig, wh: Warehouse, run: StageRun,
                       plan: Plan, t0: float) -> str | None:
    """Fold the appended ratings into the counts (one MERGE per table); None = recount."""
    partitions = int(spark.conf.get("spark.sql.shuffle.partitions", "200") or 200)
    delta = count_delta(wh, pc, plan, partitions)
    try:
        notes = {"applied": True, "previous_run": plan.previous_run,
                 "from_version": plan.from_version, "to_version": plan.to_version,
                 "files": len(plan.files), "rows_read": plan.added_rows,
                 "old_rows_read": delta.old_kept, "new_kept": delta.new_kept,
                 "users": delta.users}
        if delta.overlap:
            reason = (f"{delta.overlap:,} appended ratings repeat a (user, movie) already "
                      "counted")
            print(f"[pairs] full recount: {reason}", flush=True)
            run.notes["incremental"] = {"applied": False, "reason": reason}
            return None
        if delta.counted != delta.expected_pairs:  # the same exactness check as a recount
            raise RuntimeError(f"incremental pair counts sum to {delta.counted:,}, expected "
                               f"Σ |N|(|N|-1)/2 + |N||O| = {delta.expected_pairs:,}")
        run.outputs.update(plan.outputs)  # unchanged when nothing new is kept
        if delta.new_kept:
            run.outputs["item_counts"] = wh.merge_add("item_counts", delta.items,
                                                      ("movie_id",))
        if delta.pair_rows:
            run.outputs["pair_counts"] = wh.merge_add("pair_counts", delta.pairs,
                                                      ("movie_a", "movie_b"))
    finally:
        delta.unpersist()
    written = one_row(wh.read("pair_counts", run.outputs["pair_counts"]).agg(
        F.count(F.lit(1)).alias("rows"), F.sum("n").alias("total")))
    counted = int(written["total"] or 0)
    if counted != plan.previous_pairs + delta.counted:
        raise RuntimeError(f"pair counts sum to {counted:,} after the merge, expected "
                           f"{plan.previous_pairs:,} + {delta.counted:,}")
    items = wh.row_count("item_counts", run.outputs["item_counts"])
    seconds = time.time() - t0
    run.rows.update({"ratings_read": plan.added_rows, "old_ratings_read": delta.old_kept,
                     "kept_ratings_added": delta.new_kept, "users": delta.users,
                     "item_counts": items, "pair_counts": int(written["rows"]),
                     "pairs_counted": counted, "pairs_added": delta.counted})
    run.notes["incremental"] = notes
    run.notes.update({"ratings": pc.ratings, "min_rating": pc.min_rating,
                      "block_size": pc.block_size, "exact": True, "partitions": partitions,
                      "seconds": round(seconds, 3)})
    return "\n".join([
        f"pairs: INCREMENTAL from ratings v{plan.from_version} to v{plan.to_version} "
        f"({len(plan.files)} files appended since run {plan.previous_run}): read "
        f"{plan.added_rows:,} new ratings, {delta.new_kept:,} >= {pc.min_rating:g} by "
        f"{delta.users:,} users, and their {delta.old_kept:,} earlier kept ratings",
        f"  +{delta.counted:,} pairs over {delta.pair_rows:,} distinct pairs; MERGEd -> "
        f"pair_counts "
        f"v{run.outputs['pair_counts']} ({int(written['rows']):,} pairs, total {counted:,}), "
        f"item_counts v{run.outputs['item_counts']} ({items:,} movies); {seconds:.1f}s",
    ])


STAGE = Stage(
    name="pairs", summary="ratings -> item_counts, pair_counts (exact co-rating counts)",
    reads=("ratings",), writes=("item_counts", "pair_counts"),
    writes_doc="`item_counts`, `pair_counts`: exact co-rating counts of ratings >= "
               "`pairs.min_rating` (incremental after `ingest --append`)",
    sections=("pairs",), run=run_pairs)
