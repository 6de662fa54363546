"""The edges stage's driver path for ``vertices`` (numpy over one Arrow read) against the
Spark aggregation it replaces, and strength against a plain-Python sorted sum."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from moviegraph.graph.stats import sorted_strength, vertex_table, vertex_table_arrow


def _random_graph(seed: int = 7, n: int = 60, m: int = 400):
    rng = np.random.default_rng(seed)
    ids = np.sort(rng.choice(np.arange(1, 10_000), n, replace=False)).astype(np.int32)
    a, b = rng.integers(0, n - 10, m), rng.integers(0, n - 10, m)  # the last 10 isolated
    keep = a < b
    pairs = np.unique(np.stack([a[keep], b[keep]], axis=1), axis=0)
    # Few distinct weights, so vertices see ties; magnitudes apart so order matters.
    w = rng.choice([1e-3, 0.1, 0.3, 0.7, 1.0, 1e3], len(pairs)) * rng.choice([1, 1 + 1e-12],
                                                                             len(pairs))
    return ids, ids[pairs[:, 0]], ids[pairs[:, 1]], w


def test_sorted_strength_is_the_sequential_sorted_sum():
    ids, src, dst, w = _random_graph()
    pos = np.searchsorted(ids, np.concatenate([src, dst]))
    got = sorted_strength(pos, np.concatenate([w, w]), len(ids))
    for v in range(len(ids)):
        acc = 0.0
        for x in sorted(np.concatenate([w, w])[pos == v].tolist()):
            acc += x
        assert got[v] == acc  # bit for bit, not approx


def test_driver_vertex_table_equals_the_spark_path(spark):
    ids, src, dst, w = _random_graph()
    nodes = spark.createDataFrame(pa.table({"movie_id": pa.array(ids)}).to_pandas())
    edges = spark.createDataFrame(pa.table({"src": pa.array(src), "dst": pa.array(dst),
                                            "weight": pa.array(w)}).to_pandas())
    by_spark, method = vertex_table(spark, nodes, edges, len(src), "driver")
    assert method == "driver"
    want = by_spark.orderBy("movie_id").toArrow()
    got = vertex_table_arrow(ids, src, dst, w)
    for col in ("movie_id", "degree", "strength", "component"):
        assert got.column(col).to_pylist() == want.column(col).to_pylist(), col
    assert got.column("degree").to_numpy()[-10:].tolist() == [0] * 10
