"""The ``edges`` stage: item_counts, pair_counts -> edges (PMI-weighted), vertices."""

from __future__ import annotations

import time

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from moviegraph.config import Config
from moviegraph.graph.pmi import EdgeRule, log_total, weighted_edges
from moviegraph.graph.stats import graph_stats, vertex_table
from moviegraph.runs import StageRun, input_versions
from moviegraph.stages.base import Stage
from moviegraph.tables import Warehouse, one_row


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
    edges = wh.read("edges", run.outputs["edges"])
    row = one_row(edges.agg(F.count(F.lit(1)).alias("e"), F.min("weight").alias("wmin"),
                            F.max("weight").alias("wmax")))
    num_edges = int(row["e"])
    vertices, method = vertex_table(spark, items, edges, num_edges, components_method)
    run.outputs["vertices"] = wh.write(
        "vertices", vertices.coalesce(1).sortWithinPartitions("movie_id"))
    st = graph_stats(wh.read("vertices", run.outputs["vertices"]), num_edges, method)
    pair_rows = wh.row_count("pair_counts", run.inputs["pair_counts"])
    seconds = time.time() - t0
    run.rows.update({"pair_counts": pair_rows, "edges": num_edges, "vertices": st.vertices})
    run.notes.update({"weighting": ec.weighting, "min_weight": min_weight,
                      "min_count": ec.min_count,
                      "top_k": ec.top_k, "D": d, "components": st.components,
                      "largest_component": st.largest_component,
                      "largest_share": round(st.largest_share, 6), "isolated": st.isolated,
                      "components_method": method, "directions": "src < dst, once",
                      "seconds": round(seconds, 3)})
    weights = (f", weight {row['wmin']:.3g}..{row['wmax']:.3g}" if num_edges else "")
    return "\n".join([
        f"edges: {num_edges:,} of {pair_rows:,} pairs kept ({ec.weighting} weight >= "
        f"{min_weight:g}, pair count >= {ec.min_count}"
        + (f", top {ec.top_k} by {ec.weighting} of an end" if ec.top_k else "") + ", "
        f"D = log Σ item_count = {d:.4f}{weights}), stored once each with src < dst",
        f"  vertices {st.vertices:,} ({st.isolated:,} isolated), degree mean "
        f"{st.mean_degree:.1f} max {st.max_degree:,}",
        f"  components {st.components:,} (by {method}); largest {st.largest_component:,} "
        f"vertices = {100 * st.largest_share:.1f}%; {seconds:.1f}s",
    ])


STAGE = Stage(
    name="edges", summary="item_counts, pair_counts -> edges (cosine- or PMI-weighted), vertices",
    reads=("item_counts", "pair_counts"), writes=("edges", "vertices"),
    writes_doc="`edges` (cosine- or PMI-weighted, `edges.weighting`; top-`edges.top_k` per "
               "movie), `vertices` (degree, "
               "strength, component)",
    sections=("pairs", "edges"), run=run_edges)
