"""The `pairs` and `edges` stages: config -> graph library calls -> Delta tables."""

from __future__ import annotations

import time

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from moviegraph.config import Config
from moviegraph.graph import pairs as P
from moviegraph.graph.pmi import log_total, pmi_edges
from moviegraph.graph.stats import graph_stats, vertex_table
from moviegraph.runs import StageRun, input_versions
from moviegraph.tables import Warehouse


def stage_pairs(spark: SparkSession, cfg: Config, wh: Warehouse, run: StageRun) -> str:
    """ratings -> item_counts, pair_counts (exact unless pairs.max_items_per_user > 0)."""
    pc = cfg.pairs
    t0 = time.time()
    run.inputs.update(input_versions(wh, "ratings"))
    ratings = wh.read("ratings", run.inputs["ratings"])
    run.rows["ratings"] = ratings.count()
    ul = P.user_lists(P.kept_ratings(ratings, pc.min_rating), pc.max_items_per_user, pc.seed)
    try:
        stats = P.list_stats(ul.lists, pc.block_size)
        partitions = int(spark.conf.get("spark.sql.shuffle.partitions"))
        items_df = P.item_counts(ul.lists).coalesce(1).sortWithinPartitions("movie_id")
        run.outputs["item_counts"] = wh.write("item_counts", items_df)
        tasks = P.block_tasks(ul.lists, pc.block_size, partitions)
        # Range-sorted by (movie_a, movie_b): the edges job and readers scan in order,
        # and the file count follows spark.sql.shuffle.partitions.
        run.outputs["pair_counts"] = wh.write(
            "pair_counts", P.pair_counts(tasks).orderBy("movie_a", "movie_b"))
    finally:
        ul.lists.unpersist()
    written = wh.read("pair_counts", run.outputs["pair_counts"]).agg(
        F.count(F.lit(1)).alias("rows"), F.sum("n").alias("total")).first()
    counted = int(written["total"] or 0)
    if counted != stats["pairs"]:  # every pair of every user, once: a cheap exactness check
        raise RuntimeError(f"pair counts sum to {counted:,}, expected Σ n_u(n_u-1)/2 = "
                           f"{stats['pairs']:,}")
    items = wh.read("item_counts", run.outputs["item_counts"]).count()
    seconds = time.time() - t0
    run.rows.update({"kept_ratings": stats["kept"], "users": stats["users"],
                     "item_counts": items, "pair_counts": int(written["rows"]),
                     "pairs_counted": counted, "tasks": stats["tasks"]})
    run.notes.update({"min_rating": pc.min_rating, "block_size": pc.block_size,
                      "exact": pc.max_items_per_user == 0, "sum_n_squared": stats["sum_sq"],
                      "max_user_movies": stats["max_n"], "split_users": stats["split_users"],
                      "partitions": partitions, "seconds": round(seconds, 3)})
    if pc.max_items_per_user:
        run.notes["cap"] = {"max_items_per_user": pc.max_items_per_user, "seed": pc.seed,
                            "users_capped": ul.capped_users,
                            "ratings_dropped": ul.dropped_ratings}
    mode = ("exact" if not pc.max_items_per_user else
            f"CAPPED at {pc.max_items_per_user} movies/user (seed {pc.seed}): "
            f"{ul.capped_users:,} users, {ul.dropped_ratings:,} ratings dropped")
    return "\n".join([
        f"pairs: ratings >= {pc.min_rating:g}: {stats['kept']:,} of {run.rows['ratings']:,} "
        f"ratings, {stats['users']:,} users, {items:,} movies ({mode})",
        f"  pairs counted {counted:,} (Σ n_u² = {stats['sum_sq']:,}, largest user "
        f"{stats['max_n']:,} movies, {stats['split_users']:,} users split into blocks of "
        f"{pc.block_size:,}; {stats['tasks']:,} tasks over {partitions} partitions)",
        f"  distinct pairs {int(written['rows']):,} -> pair_counts v{run.outputs['pair_counts']}"
        f", item_counts v{run.outputs['item_counts']}; {seconds:.1f}s, "
        f"{counted / max(seconds, 1e-9) / 1e6:.2f}M pairs/s",
    ])


def stage_edges(spark: SparkSession, cfg: Config, wh: Warehouse, run: StageRun,
                components_method: str = "auto") -> str:
    """item_counts, pair_counts -> edges (src < dst, once per undirected edge), vertices."""
    t0 = time.time()
    run.inputs.update(input_versions(wh, "item_counts", "pair_counts"))
    items = wh.read("item_counts", run.inputs["item_counts"])
    pairs = wh.read("pair_counts", run.inputs["pair_counts"])
    d = log_total(items)
    min_weight = cfg.edges.min_weight
    run.outputs["edges"] = wh.write(
        "edges", pmi_edges(items, pairs, min_weight, d).orderBy("src", "dst"))
    edges = wh.read("edges", run.outputs["edges"])
    row = edges.agg(F.count(F.lit(1)).alias("e"), F.min("weight").alias("wmin"),
                    F.max("weight").alias("wmax")).first()
    num_edges = int(row["e"])
    vertices, method = vertex_table(spark, items, edges, num_edges, components_method)
    run.outputs["vertices"] = wh.write(
        "vertices", vertices.coalesce(1).sortWithinPartitions("movie_id"))
    st = graph_stats(wh.read("vertices", run.outputs["vertices"]), num_edges, method)
    pair_rows = pairs.count()
    seconds = time.time() - t0
    run.rows.update({"pair_counts": pair_rows, "edges": num_edges, "vertices": st.vertices})
    run.notes.update({"min_weight": min_weight, "D": d, "components": st.components,
                      "largest_component": st.largest_component,
                      "largest_share": round(st.largest_share, 6), "isolated": st.isolated,
                      "components_method": method, "directions": "src < dst, once",
                      "seconds": round(seconds, 3)})
    weights = (f", weight {row['wmin']:.3g}..{row['wmax']:.3g}" if num_edges else "")
    return "\n".join([
        f"edges: {num_edges:,} of {pair_rows:,} pairs kept (weight >= {min_weight:g}, "
        f"D = log Σ item_count = {d:.4f}{weights}), stored once each with src < dst",
        f"  vertices {st.vertices:,} ({st.isolated:,} isolated), degree mean "
        f"{st.mean_degree:.1f} max {st.max_degree:,}",
        f"  components {st.components:,} (by {method}); largest {st.largest_component:,} "
        f"vertices = {100 * st.largest_share:.1f}%; {seconds:.1f}s",
    ])
