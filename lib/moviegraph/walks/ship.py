"""How broadcast mode gets the CSR graph to every walk task.

- ``SharedFiles`` (local masters: every worker runs on this machine): the arrays are saved
  once as ``.npy`` files and each task memory-maps them. All Python workers then share the
  page cache's single copy -- no pickling, no per-worker copy of the graph.
- ``SparkBroadcast`` (cluster masters): a Spark broadcast, fetched once per executor.

Both are picklable handles: the task calls ``load()``; the driver calls ``release()`` once
the walks are written (files removed, broadcast blocks freed on the driver and executors).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
from pyspark.sql import SparkSession

from moviegraph.walks.csr import CSRGraph

_ARRAYS = ("indptr", "indices", "weights", "cumw")


class SharedFiles:
    """The graph as ``.npy`` files in a temporary folder, memory-mapped by the tasks."""

    def __init__(self, graph: CSRGraph, movie_ids: np.ndarray, parent: str | None) -> None:
        self.folder = tempfile.mkdtemp(prefix="moviegraph-walks-", dir=parent)
        for name in _ARRAYS:
            np.save(Path(self.folder) / f"{name}.npy", getattr(graph, name))
        np.save(Path(self.folder) / "movie_ids.npy", np.asarray(movie_ids, dtype=np.int32))

    def load(self) -> tuple[CSRGraph, np.ndarray]:
        """The graph and token -> movie id array (copy-on-write maps: writable, not copied)."""
        arrays = {name: np.load(Path(self.folder) / f"{name}.npy", mmap_mode="c")
                  for name in (*_ARRAYS, "movie_ids")}
        mids = arrays.pop("movie_ids")
        return CSRGraph(**arrays), mids

    def release(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class SparkBroadcast:
    """The graph as a Spark broadcast variable."""

    def __init__(self, spark: SparkSession, graph: CSRGraph, movie_ids: np.ndarray) -> None:
        self.shared = spark.sparkContext.broadcast(
            (graph, np.asarray(movie_ids, dtype=np.int32)))

    def load(self) -> tuple[CSRGraph, np.ndarray]:
        return self.shared.value

    def release(self) -> None:
        self.shared.destroy()


def ship_graph(spark: SparkSession, graph: CSRGraph, movie_ids: np.ndarray
               ) -> SharedFiles | SparkBroadcast:
    """A handle the tasks load the graph from: shared files on local masters, else a broadcast."""
    master = spark.sparkContext.master or ""
    if master.startswith("local"):  # local[...] and local-cluster[...]: one machine
        local_dir = spark.sparkContext.getConf().get("spark.local.dir", None)
        parent = local_dir.split(",")[0] if local_dir else None
        return SharedFiles(graph, movie_ids, parent)
    return SparkBroadcast(spark, graph, movie_ids)
