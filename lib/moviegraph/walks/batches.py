"""Walk matrices <-> Arrow record batches of the ``walks`` table (no Spark).

A walk row is ``(walk_id, start, round, path)`` with movie ids; ``walk_id = round *
num_nodes + token(start)``, so it is fixed by the graph and the walk's key alone.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

WALKS_ARROW_SCHEMA = pa.schema([
    pa.field("walk_id", pa.int64(), nullable=False),
    pa.field("start", pa.int32(), nullable=False),
    pa.field("round", pa.int32(), nullable=False),
    pa.field("path", pa.list_(pa.int32()), nullable=False),
])
WALKS_DDL = "walk_id long, start int, round int, path array<int>"


def walk_keys(walk_ids: np.ndarray, num_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(start token, round)`` of each walk id (inverse of ``round * num_nodes + token``)."""
    walk_ids = np.asarray(walk_ids, dtype=np.int64)
    return walk_ids % num_nodes, walk_ids // num_nodes


def walks_batch(walk_ids: np.ndarray, walks: np.ndarray, movie_ids: np.ndarray
                ) -> pa.RecordBatch:
    """Arrow batch of walks from a ``-1``-padded token matrix (padding trimmed)."""
    num_nodes = len(movie_ids)
    starts, rounds = walk_keys(walk_ids, num_nodes)
    valid = walks >= 0  # -1 padding only ever follows the walk
    lengths = valid.sum(axis=1)
    offsets = np.zeros(len(walks) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    values = movie_ids[walks[valid]]  # row-major: walk by walk, in step order
    path = pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, type=pa.int32()))
    return pa.RecordBatch.from_arrays(
        [pa.array(np.asarray(walk_ids, dtype=np.int64)),
         pa.array(movie_ids[starts].astype(np.int32)),
         pa.array(rounds.astype(np.int32)), path],
        schema=WALKS_ARROW_SCHEMA)


def list_parts(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """``(offsets int64, values)`` of an Arrow list array, offsets rebased to its slice."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    offsets = arr.offsets.to_numpy().astype(np.int64)
    values = arr.values.to_numpy(zero_copy_only=False)
    values = values[offsets[0]:offsets[-1]]
    return offsets - offsets[0], values
