"""Vertex statistics of the edge table: degree, strength, connected component.

Degree and strength are Spark aggregations. Components use GraphFrames'
``connectedComponents`` when its JVM artifact is on the classpath; otherwise the edge
list (at most a few tens of millions of int pairs) is collected through Arrow and
labelled by scipy on the driver, or, for graphs too big for the driver, by a Spark
min-label propagation loop. Every path names a component by its smallest movie id.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from moviegraph.graph.kernels import min_label_components
from moviegraph.session import graphframes_available
from moviegraph.tables import one_row

# Above this many edges the driver path would hold too much: use the Spark loop.
DRIVER_MAX_EDGES = 50_000_000


class GraphFramesUnavailable(RuntimeError):
    """GraphFrames (JVM artifact or Python package) is not available in this session."""


@dataclass
class GraphStats:
    """Summary figures of the vertex table."""

    vertices: int
    edges: int
    isolated: int
    components: int
    largest_component: int
    max_degree: int
    mean_degree: float
    method: str

    @property
    def largest_share(self) -> float:
        """Share of vertices in the largest component."""
        return self.largest_component / self.vertices if self.vertices else 0.0


def degrees(nodes: DataFrame, edges: DataFrame) -> DataFrame:
    """``(movie_id, degree, strength)`` for every node, 0 for isolated ones.

    Each stored edge (``src < dst``, undirected) counts for both its ends.
    """
    ends = edges.select(F.col("src").alias("movie_id"), "weight").unionByName(
        edges.select(F.col("dst").alias("movie_id"), "weight"))
    # A float sum's last bits depend on the order it adds in, and Spark's order follows
    # the partitioning; summing each vertex's weights sorted makes strength reproducible.
    sorted_sum = F.aggregate(F.array_sort(F.collect_list("weight")), F.lit(0.0),
                             lambda acc, w: acc + w)
    agg = ends.groupBy("movie_id").agg(F.count(F.lit(1)).cast("int").alias("degree"),
                                       sorted_sum.alias("strength"))
    return (nodes.select("movie_id").join(agg, "movie_id", "left")
            .fillna({"degree": 0, "strength": 0.0}))


def components_driver(spark: SparkSession, nodes: DataFrame, edges: DataFrame) -> DataFrame:
    """``(movie_id, component)`` by scipy on the driver (edges collected through Arrow)."""
    node_ids = nodes.select("movie_id").toArrow().column("movie_id").to_numpy()
    table = edges.select("src", "dst").toArrow()
    labels = min_label_components(node_ids, table.column("src").to_numpy(),
                                  table.column("dst").to_numpy())
    out = pa.table({"movie_id": pa.array(node_ids.astype(np.int32)),
                    "component": pa.array(labels.astype(np.int32))})
    return spark.createDataFrame(out.to_pandas())


def components_spark(nodes: DataFrame, edges: DataFrame, max_rounds: int = 1000) -> DataFrame:
    """``(movie_id, component)`` by min-label propagation in Spark (any graph size).

    Each round every node takes the smallest label among itself and its neighbours;
    it stops when no label changes (at most the graph's diameter + 1 rounds).
    """
    both = edges.select("src", "dst").unionByName(
        edges.select(F.col("dst").alias("src"), F.col("src").alias("dst")))
    both = both.localCheckpoint()
    labels = nodes.select("movie_id", F.col("movie_id").alias("component")).localCheckpoint()
    for _ in range(max_rounds):
        msgs = both.join(labels.withColumnRenamed("movie_id", "src"), "src").select(
            F.col("dst").alias("movie_id"), F.col("component").alias("cand"))
        best = msgs.groupBy("movie_id").agg(F.min("cand").alias("cand"))
        new = (labels.join(best, "movie_id", "left")
               .select("movie_id", F.least("component", F.coalesce("cand", "component"))
                       .alias("component"), F.col("component").alias("old"))
               .localCheckpoint())
        changed = new.filter(F.col("component") < F.col("old")).count()
        labels = new.drop("old")
        if changed == 0:
            return labels
    raise RuntimeError(f"connected components did not converge in {max_rounds} rounds")


def components_graphframes(nodes: DataFrame, edges: DataFrame) -> DataFrame:
    """``(movie_id, component)`` by GraphFrames, renamed to the smallest movie id."""
    import tempfile

    from graphframes import GraphFrame  # only importable where the artifact is

    sc = nodes.sparkSession.sparkContext
    if sc.getCheckpointDir() is None:  # connectedComponents checkpoints its iterations
        sc.setCheckpointDir(tempfile.mkdtemp(prefix="moviegraph-cc-"))
    g = GraphFrame(nodes.select(F.col("movie_id").alias("id")), edges.select("src", "dst"))
    cc = g.connectedComponents().select(F.col("id").alias("movie_id"), "component")
    smallest = cc.groupBy("component").agg(F.min("movie_id").alias("label"))
    return cc.join(smallest, "component").select(
        "movie_id", F.col("label").cast("int").alias("component"))


def components(spark: SparkSession, nodes: DataFrame, edges: DataFrame, num_edges: int,
               method: str = "auto") -> tuple[DataFrame, str]:
    """``(movie_id, component)`` and the method used (graphframes, driver or spark)."""
    method = choose_method(spark, num_edges, method)
    if method == "graphframes":
        return components_graphframes(nodes, edges), method
    if method == "driver":
        return components_driver(spark, nodes, edges), method
    if method == "spark":
        return components_spark(nodes, edges), method
    raise ValueError(f"unknown components method {method!r}")


def vertex_table(spark: SparkSession, nodes: DataFrame, edges: DataFrame, num_edges: int,
                 method: str = "auto") -> tuple[DataFrame, str]:
    """``vertices(movie_id, degree, strength, component)`` for every node of ``nodes``."""
    comp, used = components(spark, nodes, edges, num_edges, method)
    return degrees(nodes, edges).join(comp, "movie_id"), used


def sorted_strength(vertex: np.ndarray, weight: np.ndarray, n: int) -> np.ndarray:
    """Each vertex's weights summed in ascending order from 0.0, one addition at a time:
    the same float64 result, bit for bit, as :func:`degrees`' sorted sum in Spark.

    ``vertex`` holds positions ``0..n-1``. Vectorised over vertices: step ``r`` adds every
    vertex's ``r``-th smallest weight (max-degree steps, not one Python step per edge).
    """
    order = np.lexsort((weight, vertex))
    w = np.asarray(weight, dtype=np.float64)[order]
    deg = np.bincount(vertex, minlength=n)
    start = np.concatenate([[0], np.cumsum(deg)[:-1]])
    acc = np.zeros(n, dtype=np.float64)
    for r in range(int(deg.max()) if n else 0):
        live = np.flatnonzero(deg > r)
        acc[live] += w[start[live] + r]
    return acc


def vertex_table_arrow(node_ids: np.ndarray, src: np.ndarray, dst: np.ndarray,
                       weight: np.ndarray) -> pa.Table:
    """``vertices(movie_id, degree, strength, component)`` on the driver from the edge
    arrays: the same rows as :func:`vertex_table` with ``method="driver"`` (components by
    scipy), ids ascending, without a Spark job."""
    node_ids = np.sort(np.asarray(node_ids, dtype=np.int64))
    n = len(node_ids)
    ends = np.concatenate([src, dst]).astype(np.int64)
    pos = np.searchsorted(node_ids, ends)
    if len(pos) and (pos.max() >= n or np.any(node_ids[pos] != ends)):
        raise ValueError("an edge names a node that is not in the node list")
    both_w = np.concatenate([weight, weight])
    return pa.table({
        "movie_id": pa.array(node_ids.astype(np.int32)),
        "degree": pa.array(np.bincount(pos, minlength=n).astype(np.int32)),
        "strength": pa.array(sorted_strength(pos, both_w, n)),
        "component": pa.array(min_label_components(node_ids, src, dst).astype(np.int32)),
    })


def graph_stats_arrow(vertices: pa.Table, num_edges: int, method: str) -> GraphStats:
    """:func:`graph_stats` of a vertex table held on the driver."""
    degree = vertices.column("degree").to_numpy()
    _, sizes = np.unique(vertices.column("component").to_numpy(), return_counts=True)
    n = len(degree)
    return GraphStats(vertices=n, edges=num_edges, isolated=int((degree == 0).sum()),
                      components=int(sizes.size), largest_component=int(sizes.max(initial=0)),
                      max_degree=int(degree.max(initial=0)),
                      mean_degree=float(degree.mean()) if n else 0.0, method=method)


def choose_method(spark: SparkSession, num_edges: int, method: str = "auto") -> str:
    """The components method ``auto`` stands for here: graphframes when its artifact is on
    the classpath, else the driver up to DRIVER_MAX_EDGES edges, else Spark."""
    if method != "auto":
        return method
    if graphframes_available(spark):
        return "graphframes"
    return "driver" if num_edges <= DRIVER_MAX_EDGES else "spark"


def graph_stats(vertices: DataFrame, num_edges: int, method: str) -> GraphStats:
    """Counts of the written vertex table (one pass plus a group-by on components)."""
    row = one_row(vertices.agg(F.count(F.lit(1)).alias("v"),
                               F.sum(F.when(F.col("degree") == 0, 1).otherwise(0)).alias("iso"),
                               F.max("degree").alias("maxd"), F.avg("degree").alias("meand"),
                               F.countDistinct("component").alias("comps")))
    largest = one_row(vertices.groupBy("component").count().agg(F.max("count").alias("m")))["m"]
    return GraphStats(vertices=int(row["v"]), edges=num_edges, isolated=int(row["iso"] or 0),
                      components=int(row["comps"]), largest_component=int(largest or 0),
                      max_degree=int(row["maxd"] or 0), mean_degree=float(row["meand"] or 0),
                      method=method)


def load_graphframe(spark: SparkSession, wh):
    """The movie graph as a GraphFrame for ad-hoc analysis.

    Vertices are the ``vertices`` table with ``movie_id`` renamed ``id``; edges are the
    ``edges`` table (``src < dst``, one row per undirected edge). Raises
    GraphFramesUnavailable with what is missing when GraphFrames cannot be used here.
    """
    if not graphframes_available(spark):
        raise GraphFramesUnavailable(
            "GraphFrames' JVM artifact is not on this session's classpath (see "
            "conf/jvm-optional.txt and spark.graphframes); read the `vertices` and `edges` "
            "Delta tables directly instead")
    try:
        from graphframes import GraphFrame
    except ImportError as exc:
        raise GraphFramesUnavailable(
            f"the graphframes Python package is not installed: {exc}") from None
    vertices = wh.read("vertices").withColumnRenamed("movie_id", "id")
    return GraphFrame(vertices, wh.read("edges"))
