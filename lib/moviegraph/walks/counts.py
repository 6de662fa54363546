"""Token counts of the walks, gathered by the walk tasks themselves.

The ``vocab`` table needs how often each token occurs in the walks. Rather than reading
the written walks back (one more pass over the table), every walk task bincounts the
token matrices it emits and adds one array per task to a Spark accumulator. Accumulator
updates made in the tasks of the stage that writes the table are applied exactly once
per partition: a failed or retried attempt's updates are dropped, a speculative copy's
are ignored once the partition has finished.
"""

from __future__ import annotations

import numpy as np
from pyspark import Accumulator, AccumulatorParam, SparkContext


class CountsParam(AccumulatorParam):
    """Element-wise sum of int64 count arrays."""

    def zero(self, value: np.ndarray) -> np.ndarray:
        return np.zeros_like(value)

    def addInPlace(self, value1: np.ndarray, value2: np.ndarray) -> np.ndarray:
        value1 += value2
        return value1


def token_counter(sc: SparkContext, num_nodes: int) -> Accumulator:
    """An accumulator of per-token counts (int64, one per token), starting at zero."""
    return sc.accumulator(np.zeros(num_nodes, dtype=np.int64), CountsParam())


def tally(walks: np.ndarray, num_nodes: int) -> np.ndarray:
    """Occurrences of each token in a ``-1``-padded walk matrix (int64, one per token)."""
    return np.bincount(walks[walks >= 0].ravel(), minlength=num_nodes).astype(np.int64)
