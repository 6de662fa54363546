"""The ``edges`` stage: item_counts, pair_counts -> edges (PMI-weighted), vertices."""

from __future__ import annotations

import time

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from moviegraph.config import Config
from moviegraph.graph.pmi import EdgeRule, log_total, weighted_edges
from moviegraph.graph.stats import (
    GraphStats,
    choose_method,
    graph_stats,
    graph_stats_arrow,
    vertex_table,
    vertex_table_arrow,
)
from moviegraph.runs import StageRun, input_versions
from moviegraph.stages.base import Stage
from moviegraph.tables import SCHEMAS, Warehouse, one_row


def run_edges(spark: SparkSession, cfg: Config, wh: Warehouse, run: StageRun,
                components_method: str = "auto") -> str:
    """item_counts, pair_counts -> edges (src < dst, once per undirected edge), vertices."""
    t0 = time.time()
    run.inputs.update(input_versions(wh, "item_counts", "pair_counts"))
    items = wh.read("item_counts", run.inputs["item_counts"])
    pairs = wh.read("pair_counts", run.inputs["pair_counts"])
    item_table = wh.read_arrow("item_counts", ["movie_id", "n"], run.inputs["item_counts"])
    d = log_total(item_table.column("n").to_numpy())
    ec = cfg.edges
    min_weight = ec.min_weight
    # Weights, thresholds and the top-k cut in numpy over Arrow batches of the pairs (two
    # passes when top_k > 0; no shuffle of the pairs): moviegraph.graph.pmi.
    kept, shipped = weighted_edges(spark, item_table, pairs, EdgeRule(
        ec.weighting, float(min_weight), int(ec.min_count), int(ec.top_k), d))
    try:
        run.outputs["edges"] = wh.write("edges", kept.orderBy("src", "dst"))
    finally:
        for b in shipped:
            b.destroy()
    num_edges, weight_range, st = _vertices(spark, wh, run, items,
                                                item_table.column("movie_id").to_numpy(),
                                                components_method)
    pair_rows = wh.row_count("pair_counts", run.inputs["pair_counts"])
    seconds = time.time() - t0
    run.rows.update({"pair_counts": pair_rows, "edges": num_edges, "vertices": st.vertices})
    run.notes.update({"weighting": ec.weighting, "min_weight": min_weight,
                      "min_count": ec.min_count,
                      "top_k": ec.top_k, "D": d, "components": st.components,
                      "largest_component": st.largest_component,
                      "largest_share": round(st.largest_share, 6), "isolated": st.isolated,
                      "components_method": st.method, "directions": "src < dst, once",
                      "seconds": round(seconds, 3)})
    weights = (f", weight {weight_range[0]:.3g}..{weight_range[1]:.3g}" if num_edges else "")
    return "\n".join([
        f"edges: {num_edges:,} of {pair_rows:,} pairs kept ({ec.weighting} weight >= "
        f"{min_weight:g}, pair count >= {ec.min_count}"
        + (f", top {ec.top_k} by {ec.weighting} of an end" if ec.top_k else "") + ", "
        f"D = log Σ item_count = {d:.4f}{weights}), stored once each with src < dst",
        f"  vertices {st.vertices:,} ({st.isolated:,} isolated), degree mean "
        f"{st.mean_degree:.1f} max {st.max_degree:,}",
        f"  components {st.components:,} (by {st.method}); largest {st.largest_component:,} "
        f"vertices = {100 * st.largest_share:.1f}%; {seconds:.1f}s",
    ])


def _vertices(spark: SparkSession, wh: Warehouse, run: StageRun, items: DataFrame,
              item_ids: np.ndarray, components_method: str
              ) -> tuple[int, tuple[float, float], GraphStats]:
    """Write ``vertices`` from the ``edges`` just written; return the edge count, the
    weight range and the vertex statistics.

    With components on the driver (any graph up to DRIVER_MAX_EDGES) the edges are read
    once through Arrow and everything is numpy (no Spark job besides the write); the other
    methods aggregate in Spark.
    """
    version = run.outputs["edges"]
    num_edges = wh.row_count("edges", version)
    method = choose_method(spark, num_edges, components_method)
    if method == "driver":
        e = wh.read_arrow("edges", ["src", "dst", "weight"], version)
        table = vertex_table_arrow(item_ids,
                                   e.column("src").to_numpy(), e.column("dst").to_numpy(),
                                   e.column("weight").to_numpy())
        run.outputs["vertices"] = wh.write(
            "vertices", spark.createDataFrame(table.to_pandas(), SCHEMAS["vertices"]).coalesce(1))
        w = e.column("weight").to_numpy()
        weights = (float(w.min()), float(w.max())) if len(w) else (0.0, 0.0)
        return num_edges, weights, graph_stats_arrow(table, num_edges, method)
    edges = wh.read("edges", version)
    row = one_row(edges.agg(F.min("weight").alias("wmin"), F.max("weight").alias("wmax")))
    vertices, method = vertex_table(spark, items, edges, num_edges, method)
    run.outputs["vertices"] = wh.write(
        "vertices", vertices.coalesce(1).sortWithinPartitions("movie_id"))
    st = graph_stats(wh.read("vertices", run.outputs["vertices"]), num_edges, method)
    return num_edges, (row["wmin"] or 0.0, row["wmax"] or 0.0), st


STAGE = Stage(
    name="edges", summary="item_counts, pair_counts -> edges (cosine- or PMI-weighted), vertices",
    reads=("item_counts", "pair_counts"), writes=("edges", "vertices"),
    writes_doc="`edges` (cosine- or PMI-weighted, `edges.weighting`; top-`edges.top_k` per "
               "movie), `vertices` (degree, "
               "strength, component)",
    sections=("pairs", "edges"), run=run_edges)
