"""PMI- or cosine-weighted edges from item and pair counts (the recipe of DESIGN.md).

``D = log(Σ item_count)``; ``pmi = log(n_xy) - log(n_x) - log(n_y) + D``;
``weight = pmi * n_xy`` (``edges.weighting = pmi``) or ``n_xy / sqrt(n_x n_y)``
(``cosine``); an edge is kept when ``weight >= min_weight`` and ``n_xy >= min_count``.
Optionally the graph is then cut to a k-nearest-neighbour graph: an edge stays when it is
among the ``top_k`` strongest edges of either endpoint (ties broken by the smaller
neighbour id, so the cut is exact and independent of partitioning). Each undirected edge
is stored once, ``src < dst`` (``src`` = ``movie_a``): consumers that want both
directions (the walks' CSR) symmetrise it.

The Spark layer only moves Arrow batches of ``pair_counts`` through the numpy kernels of
:mod:`moviegraph.graph.weights`, with the item counts (one row per movie) broadcast:

1. (``top_k > 0``) each batch's candidates -- every node's ``k`` best edges in it, seen
   from both ends -- are hash-partitioned by node, and each node's ``k``-th best edge
   (its threshold) comes back to the driver: at most one row per movie;
2. one more pass over the pairs scores them again, filters, applies the thresholds
   (broadcast) and yields the edges. No shuffle of all pairs, no join.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession

from moviegraph.graph import weights as W

EDGE_SCHEMA = "src int, dst int, weight double, pmi double, n long"
CANDIDATE_SCHEMA = "node int, other int, score double"


def log_total(item_n: np.ndarray) -> float:
    """``D = log(Σ item_count)``; ValueError when there is no kept rating at all."""
    total = int(np.asarray(item_n, dtype=np.int64).sum())
    if not total:
        raise ValueError("no kept ratings: item_counts is empty (is pairs.min_rating too "
                         "high for this data?)")
    return math.log(total)


@dataclass(frozen=True)
class EdgeRule:
    """What makes an edge: the weighting, thresholds and top-k (``edges`` config)."""

    weighting: str  # pmi | cosine
    min_weight: float
    min_count: int
    top_k: int
    d: float  # log Σ item_count


def _scored(batch: pa.RecordBatch, items: tuple[np.ndarray, np.ndarray], rule: EdgeRule
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(a, b, n, weight, pmi)`` of the batch's pairs that pass the thresholds."""
    a = batch.column("movie_a").to_numpy(zero_copy_only=False)
    b = batch.column("movie_b").to_numpy(zero_copy_only=False)
    n = batch.column("n").to_numpy(zero_copy_only=False)
    weight, pmi = W.scores(a, b, n, items[0], items[1], rule.d, rule.weighting)
    keep = weight >= rule.min_weight
    if rule.min_count > 1:
        keep &= n >= rule.min_count
    return a[keep], b[keep], n[keep], weight[keep], pmi[keep]


def _by(weight: np.ndarray, pmi: np.ndarray, rule: EdgeRule) -> np.ndarray:
    """The top-k score: the weight for cosine, PMI itself for the pmi weighting."""
    return weight if rule.weighting == "cosine" else pmi


#: Rows gathered before a local top-k in the candidate pass: Arrow batches are small
#: (spark.sql.execution.arrow.maxRecordsPerBatch), and a top-k over a few thousand rows
#: hardly cuts anything; this bounds a task's memory all the same.
CANDIDATE_CHUNK_ROWS = 1 << 21


def _candidates(shipped, rule: EdgeRule):
    """mapInArrow: pair batches in, each node's ``k`` best edges of the task's rows out
    (a running top-k over chunks of about :data:`CANDIDATE_CHUNK_ROWS` candidate rows;
    rows below a node's k-th best so far are dropped on arrival)."""

    def run(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        items = shipped.value
        k = rule.top_k
        best = (np.empty(0, np.int32), np.empty(0, np.int32), np.empty(0, np.float64))
        cut = W.kth_best(*best, k)  # each node's k-th best so far: worse rows are dropped
        pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        rows = 0
        for batch in batches:
            a, b, _, weight, pmi = _scored(batch, items, rule)
            node, other, score = W.both_ends(a, b, _by(weight, pmi, rule))
            # Exact: a row below its node's k-th best so far cannot be in its top k.
            keep = W.within_top_k(node, other, score, *cut)
            pending.append((node[keep], other[keep], score[keep]))
            rows += int(keep.sum())
            if rows >= CANDIDATE_CHUNK_ROWS:
                best = _reduce(best, pending, k)
                cut, pending, rows = W.kth_best(*best, k), [], 0
        if pending:
            best = _reduce(best, pending, k)
        if best[0].size:
            yield pa.RecordBatch.from_arrays(
                [pa.array(best[0]), pa.array(best[1]), pa.array(best[2])],
                names=["node", "other", "score"])

    return run


def _reduce(best: tuple[np.ndarray, np.ndarray, np.ndarray],
            pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]], k: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each node's ``k`` best rows among ``best`` and ``pending``."""
    node, other, score = (np.concatenate(x) for x in zip(best, *pending, strict=True))
    idx = W.local_top_k(node, other, score, k)
    return node[idx], other[idx], score[idx]


def _thresholds(k: int):
    """mapInArrow over candidates partitioned by node: each node's ``k``-th best."""

    def run(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        # All candidates of a node are in this partition; gather them, then rank once.
        tables = [b for b in batches if b.num_rows]
        if not tables:
            return
        t = pa.Table.from_batches(tables)
        node = t.column("node").to_numpy()
        other = t.column("other").to_numpy()
        score = t.column("score").to_numpy()
        nodes, score_k, other_k = W.kth_best(node, other, score, k)
        if nodes.size:
            yield pa.RecordBatch.from_arrays(
                [pa.array(nodes), pa.array(score_k), pa.array(other_k)],
                names=["node", "score", "other"])

    return run


def _edges(shipped, rule: EdgeRule):
    """mapInArrow: pair batches in, the kept edges out (thresholds of the top-k cut, if
    any, broadcast with the item counts)."""

    def run(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        items, cut = shipped.value
        for batch in batches:
            a, b, n, weight, pmi = _scored(batch, items, rule)
            if cut is not None:
                keep = W.top_k_mask(a, b, _by(weight, pmi, rule), *cut)
                a, b, n, weight, pmi = a[keep], b[keep], n[keep], weight[keep], pmi[keep]
            if a.size:
                yield pa.RecordBatch.from_arrays(
                    [pa.array(a, pa.int32()), pa.array(b, pa.int32()), pa.array(weight),
                     pa.array(pmi), pa.array(n, pa.int64())],
                    names=["src", "dst", "weight", "pmi", "n"])

    return run


def weighted_edges(spark: SparkSession, items: pa.Table, pairs: DataFrame,
                   rule: EdgeRule) -> tuple[DataFrame, list]:
    """``(src, dst, weight, pmi, n)`` of the kept edges (see the module doc); returns the
    frame and the broadcasts to destroy once it is written.

    ``items`` (``movie_id, n``) is small (one row per movie) and shipped to every task.
    """
    table = items.sort_by("movie_id")
    arrays = (table.column("movie_id").to_numpy(), table.column("n").to_numpy())
    sc = spark.sparkContext
    cut = None
    shipped = []
    if rule.top_k > 0:
        for_items = sc.broadcast(arrays)
        shipped.append(for_items)
        partitions = int(spark.conf.get("spark.sql.shuffle.partitions", "200") or 200)
        cands = pairs.mapInArrow(_candidates(for_items, rule), CANDIDATE_SCHEMA)
        kth = (cands.repartition(partitions, "node")
               .mapInArrow(_thresholds(rule.top_k), "node int, score double, other int")
               .toArrow().sort_by("node"))
        cut = (kth.column("node").to_numpy(), kth.column("score").to_numpy(),
               kth.column("other").to_numpy())
    both = sc.broadcast((arrays, cut))
    shipped.append(both)
    return pairs.mapInArrow(_edges(both, rule), EDGE_SCHEMA), shipped
