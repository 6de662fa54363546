"""Partitioned mode: walkers joined with the adjacency of their current node, step by step.

For graphs too big for one executor. Nothing but the token table (one int per vertex)
reaches a single process: the adjacency lists are built, partitioned and cached by Spark,
and each step is one join of the walkers with the adjacency of their current node
(``node, nbrs array<int>, wts array<double>``), followed by ``step.advance`` in
``mapInArrow``. A walker carries its random state and, when the bias needs it (``q != 1``),
the neighbour list of its previous node from the step before -- so one join per step is
enough, and every walk is identical to the broadcast kernel's.

Each step's walkers are checkpointed (``localCheckpoint``) to cut the lineage; walkers
that reach a node without out-neighbours (directed graphs only) leave the loop early.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from functools import reduce

import numpy as np
import pyarrow as pa
from pyspark import Accumulator
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from moviegraph.walks.batches import WALKS_DDL, list_parts, walk_keys, walks_batch
from moviegraph.walks.vocab import EdgeListError

log = logging.getLogger("moviegraph")

WALKER_DDL = ("walk_id long, cur int, prev int, state long, done boolean, "
              "prev_nbrs array<int>, path array<int>")


def _list_array(offsets: np.ndarray, values: np.ndarray, typ: pa.DataType) -> pa.Array:
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)),
                                    pa.array(values, type=typ))


def adjacency(spark: SparkSession, edges: DataFrame, movie_ids: np.ndarray, directed: bool,
              partitions: int) -> DataFrame:
    """``node, nbrs, wts`` over tokens: every vertex, neighbours ascending (empty: a sink).

    Duplicate edges with equal weights collapse (undirected edges may be stored either
    way or both); the same pair with different weights raises ``EdgeListError``.
    """
    mids = spark.sparkContext.broadcast(np.asarray(movie_ids, dtype=np.int32))

    def to_tokens(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        ids = mids.value
        for b in batches:
            src = np.searchsorted(ids, b.column(0).to_numpy()).astype(np.int32)
            dst = np.searchsorted(ids, b.column(1).to_numpy()).astype(np.int32)
            if not directed:
                src, dst = np.minimum(src, dst), np.maximum(src, dst)
            yield pa.RecordBatch.from_arrays([pa.array(src), pa.array(dst), b.column(2)],
                                             names=["a", "b", "w"])

    w = F.col("weight").cast("double")
    bad = edges.filter(~(w > 0) | F.isnan(w) | (w == float("inf"))).limit(1).collect()
    if bad:
        raise EdgeListError(f"edge weights must be finite and > 0; edge {bad[0]['src']}->"
                            f"{bad[0]['dst']} has weight {bad[0]['weight']!r}")
    pairs = (edges.select("src", "dst", F.col("weight").cast("double"))
             .mapInArrow(to_tokens, "a int, b int, w double").dropDuplicates())
    clash = pairs.groupBy("a", "b").count().filter("count > 1").limit(1).collect()
    if clash:
        a, b = int(movie_ids[clash[0]["a"]]), int(movie_ids[clash[0]["b"]])
        raise EdgeListError(f"edge {a}-{b} is stored with different weights; the edges "
                            "table must hold one weight per pair")
    entries = pairs.select(F.col("a").alias("node"), F.col("b").alias("nbr"), "w")
    if not directed:
        back = pairs.filter("a != b").select(F.col("b").alias("node"), F.col("a").alias("nbr"),
                                             "w")
        entries = entries.unionByName(back)
    rows = (entries.groupBy("node")
            .agg(F.array_sort(F.collect_list(F.struct("nbr", "w"))).alias("nw")))
    nodes = spark.range(len(movie_ids), numPartitions=max(1, partitions)).select(
        F.col("id").cast("int").alias("node"))
    return (nodes.join(rows, "node", "left")
            .select("node",
                    F.coalesce(F.transform("nw", lambda s: s["nbr"]),
                               F.array().cast("array<int>")).alias("nbrs"),
                    F.coalesce(F.transform("nw", lambda s: s["w"]),
                               F.array().cast("array<double>")).alias("wts"))
            .repartition(max(1, partitions), "node"))


def partitioned_walks(spark: SparkSession, edges: DataFrame, movie_ids: np.ndarray,
                      num_walks: int, walk_length: int, p: float, q: float, seed: int,
                      partitions: int, directed: bool = False,
                      counts: Accumulator | None = None) -> DataFrame:
    """The walks DataFrame ``walk_id, start, round, path`` computed in partitioned mode.

    ``edges`` holds ``src, dst, weight`` in movie ids; ``movie_ids`` is the sorted token ->
    movie id table. Steps run eagerly (one Spark job each); the result is checkpointed.
    The final (lazy) conversion adds its walks' token counts to ``counts`` when given.
    """
    num_nodes = len(movie_ids)
    parts = max(1, partitions)
    inv_p, inv_q = 1.0 / float(p), 1.0 / float(q)
    carry_prev = inv_q != 1.0  # adjacency of x to the previous node only matters then
    adj = adjacency(spark, edges, movie_ids, directed, parts).localCheckpoint(eager=True)

    def init(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from moviegraph.walks.step import initial_states

        for b in batches:
            ids = b.column(0).to_numpy()
            starts, rounds = walk_keys(ids, num_nodes)
            n = len(ids)
            state = initial_states(seed, starts, rounds).view(np.int64)
            one = np.arange(n + 1, dtype=np.int64)
            yield pa.RecordBatch.from_arrays(
                [pa.array(ids), pa.array(starts.astype(np.int32)),
                 pa.array(np.full(n, -1, dtype=np.int32)), pa.array(state),
                 pa.array(np.zeros(n, dtype=bool)),
                 _list_array(np.zeros(n + 1, dtype=np.int64), np.empty(0, np.int32), pa.int32()),
                 _list_array(one, starts.astype(np.int32), pa.int32())],
                names=["walk_id", "cur", "prev", "state", "done", "prev_nbrs", "path"])

    def step(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from moviegraph.walks.step import advance, append_to_lists

        for b in batches:
            cur = b.column("cur").to_numpy()
            prev = b.column("prev").to_numpy()
            state = b.column("state").to_numpy().view(np.uint64)
            nbr_off, nbrs = list_parts(b.column("nbrs"))
            _, wts = list_parts(b.column("wts"))
            prev_off, prev_nbrs = list_parts(b.column("prev_nbrs"))
            x, new_state = advance(prev, state, nbr_off, nbrs.astype(np.int32),
                                   wts.astype(np.float64), prev_off,
                                   prev_nbrs.astype(np.int32), inv_p, inv_q)
            done = x < 0
            path_off, path = list_parts(b.column("path"))
            new_off, new_path = append_to_lists(path_off, path.astype(np.int32), x)
            if done.any():  # a sink: keep the path as it was (no -1 appended)
                keep = np.ones(len(new_path), dtype=bool)
                keep[new_off[1:][done] - 1] = False
                new_path = new_path[keep]
                new_off = np.concatenate([[0], np.cumsum(np.diff(new_off) - done)])
            carried = (nbr_off, nbrs) if carry_prev else (np.zeros(len(x) + 1, np.int64),
                                                          np.empty(0, np.int32))
            yield pa.RecordBatch.from_arrays(
                [b.column("walk_id"), pa.array(np.where(done, cur, x).astype(np.int32)),
                 pa.array(cur.astype(np.int32)), pa.array(new_state.view(np.int64)),
                 pa.array(done), _list_array(carried[0], carried[1].astype(np.int32),
                                             pa.int32()),
                 _list_array(new_off, new_path, pa.int32())],
                names=["walk_id", "cur", "prev", "state", "done", "prev_nbrs", "path"])

    walkers = (spark.range(0, num_nodes * num_walks, numPartitions=parts)
               .mapInArrow(init, WALKER_DDL).localCheckpoint(eager=True))
    finished: list[DataFrame] = []
    adj_hinted = adj.withColumnRenamed("node", "cur").hint("shuffle_hash")
    for k in range(1, walk_length):
        stepped = (walkers.join(adj_hinted, "cur", "inner")
                   .mapInArrow(step, WALKER_DDL).localCheckpoint(eager=True))
        if directed:
            finished.append(stepped.filter("done"))
            walkers = stepped.filter("not done")
        else:
            walkers = stepped  # every vertex of an undirected graph has a neighbour
        log.debug("walks: partitioned step %d/%d", k, walk_length - 1)
    walkers = reduce(DataFrame.unionByName, finished, walkers)
    mids = spark.sparkContext.broadcast(np.asarray(movie_ids, dtype=np.int32))

    def to_walks(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from moviegraph.walks.counts import tally

        ids_of = mids.value
        seen = np.zeros(num_nodes, dtype=np.int64)
        for b in batches:
            off, path = list_parts(b.column("path"))
            lengths = np.diff(off)
            mat = np.full((len(lengths), walk_length), -1, dtype=np.int32)
            mat[np.arange(walk_length) < lengths[:, None]] = path
            seen += tally(mat, num_nodes)
            yield walks_batch(b.column("walk_id").to_numpy(), mat, ids_of)
        if counts is not None:
            counts.add(seen)

    return walkers.select("walk_id", "path").mapInArrow(to_walks, WALKS_DDL)
