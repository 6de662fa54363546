"""Broadcast mode: every task holds the whole CSR graph and walks its share of the starts.

The driver builds the CSR once and ships it (``ship.py``: memory-mapped files on local
masters, a Spark broadcast on clusters). The walks to run are the ids
``0 .. num_nodes * num_walks - 1`` of a ``spark.range`` split into ``partitions``
contiguous slices; walk id ``i`` is round ``i // num_nodes`` from token ``i % num_nodes``.
Each task runs the numba kernel on its slices batch by batch and emits Arrow batches, so
the result depends on the graph, the parameters and the seed only -- never on the
partitioning.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pyarrow as pa
from pyspark import Accumulator
from pyspark.sql import DataFrame, SparkSession

from moviegraph.faults import fail_once
from moviegraph.walks.batches import WALKS_DDL, walk_keys, walks_batch
from moviegraph.walks.csr import CSRGraph
from moviegraph.walks.ship import SharedFiles, SparkBroadcast


def broadcast_walks(spark: SparkSession, graph: CSRGraph, shipped: SharedFiles | SparkBroadcast,
                    num_walks: int, walk_length: int, p: float, q: float, seed: int,
                    partitions: int, threads_per_task: int = 1,
                    counts: Accumulator | None = None) -> DataFrame:
    """The (lazy) walks DataFrame ``walk_id, start, round, path`` computed in broadcast mode.

    Args:
        graph: CSR over tokens; shipped: its handle for the tasks (``ship.ship_graph``,
            with the token -> movie id array).
        partitions: number of tasks the walks are split into.
        threads_per_task: numba threads each task may use (``spark.task.cpus``).
        counts: a ``counts.token_counter`` the tasks add their walks' token counts to.
    """
    num_nodes = graph.num_nodes

    def walk_batches(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import numba

        from moviegraph.walks.counts import tally
        from moviegraph.walks.kernel import random_walks

        g, mids = shipped.load()
        threads = max(1, min(threads_per_task, numba.config.NUMBA_NUM_THREADS))
        for batch in batches:
            ids = batch.column(0).to_numpy()
            if len(ids) == 0:
                continue
            starts, rounds = walk_keys(ids, num_nodes)
            walks = random_walks(g, starts, rounds, walk_length, p, q, seed,
                                 num_threads=threads)
            if counts is not None:
                counts.add(tally(walks, num_nodes))
            yield walks_batch(ids, walks, mids)
            # Test hook (moviegraph.faults), a no-op unless set: failing after a batch was
            # counted and emitted shows a failed attempt leaves no trace in walks or vocab.
            fail_once("walks")

    ids = spark.range(0, num_nodes * num_walks, numPartitions=max(1, partitions))
    return ids.mapInArrow(walk_batches, WALKS_DDL)
