"""Spark side of the walks: mode choice, task memory, vertex ids and the vocab table.

The ``walks`` stage (:mod:`moviegraph.stages.walks`) reads ``edges`` and writes ``walks``
and ``vocab`` in one of two modes:

- broadcast: the driver reads ``edges`` as Arrow, builds the CSR over tokens and ships
  it (``ship.py``); tasks walk their share of the starts (``broadcast.py``).
- partitioned: adjacency lists stay distributed; walkers are joined with them step by
  step (``partitioned.py``). Same walks, walk for walk.

``walks.mode = "auto"`` picks broadcast while the CSR is below ``walks.broadcast_max_bytes``
and below half of one task's share of executor (and driver) memory, since every Python
worker holds its own copy. The choice and its reason are logged and recorded.

The ``vocab`` table (token, movie_id, count) follows the walks: tokens are the vertices in
ascending movie-id order, counts are occurrences in the walks (the trainer's unigram table),
tallied by the walk tasks as they write (``counts.py``), so the walks are never read back.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from moviegraph.config import WalksConfig

# A broadcast graph may take at most this share of one task slot's memory.
MEMORY_SHARE = 0.5


def _bytes(size: str | None, default: int) -> int:
    """Bytes of a JVM memory string such as ``4g`` or ``512m``."""
    if not size:
        return default
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)b?\s*", size.lower())
    if not m:
        return default
    scale = {"": 2**20, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40, "p": 2**50}[m[2]]
    return int(float(m[1]) * scale)


def task_memory_bytes(spark: SparkSession) -> tuple[int, str]:
    """Memory one task slot may use for a broadcast graph, with how it was derived."""
    conf = spark.sparkContext.getConf()
    master = spark.sparkContext.master or ""
    driver = _bytes(conf.get("spark.driver.memory", "1g"), 2**30)
    if master.startswith("local"):
        slots = spark.sparkContext.defaultParallelism
        return driver // max(1, slots), f"driver {driver / 2**30:.1f} GiB / {slots} slots"
    per_exec = _bytes(conf.get("spark.executor.pyspark.memory")
                      or conf.get("spark.executor.memory", "1g"), 2**30)
    cores = int(conf.get("spark.executor.cores", "1"))
    mem = min(per_exec // max(1, cores), driver)
    return mem, (f"executor {per_exec / 2**30:.1f} GiB / {cores} cores, "
                 f"driver {driver / 2**30:.1f} GiB")


def choose_mode(cfg: WalksConfig, csr_bytes: int, task_bytes: int, task_desc: str
                ) -> tuple[str, str]:
    """``(mode, reason)`` for a CSR of ``csr_bytes``."""
    size = f"CSR {csr_bytes / 2**20:,.1f} MiB"
    if cfg.mode != "auto":
        return cfg.mode, f"walks.mode = {cfg.mode}; {size}"
    limit = min(cfg.broadcast_max_bytes, int(MEMORY_SHARE * task_bytes))
    which = ("walks.broadcast_max_bytes" if limit == cfg.broadcast_max_bytes
             else f"{MEMORY_SHARE:g} x task memory ({task_desc})")
    if csr_bytes < limit:
        return "broadcast", f"auto: {size} < {limit / 2**20:,.1f} MiB ({which})"
    return "partitioned", f"auto: {size} >= {limit / 2**20:,.1f} MiB ({which})"


def vertex_ids(edges: DataFrame) -> np.ndarray:
    """Sorted distinct movie ids of the graph, collected as Arrow (one int per vertex)."""
    ids = (edges.select(F.col("src").alias("v")).union(edges.select(F.col("dst").alias("v")))
           .distinct().toArrow())
    return np.sort(ids.column("v").to_numpy()).astype(np.int32)


def vocab_frame(spark: SparkSession, counts: np.ndarray, movie_ids: np.ndarray) -> DataFrame:
    """``vocab(token, movie_id, count)`` from the walk tasks' token counts."""
    n = len(movie_ids)
    table = pa.table({"token": pa.array(np.arange(n, dtype=np.int32)),
                      "movie_id": pa.array(np.asarray(movie_ids, dtype=np.int32)),
                      "count": pa.array(np.asarray(counts, dtype=np.int64))})
    return spark.createDataFrame(table)
