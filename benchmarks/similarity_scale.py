"""Exact top-20 similar movies at MovieLens-25M scale vs Spark MLlib's LSH similarity join.

Seeded synthetic vectors with cluster structure (59,047 movies x 64 dims by default):

1. exact: the `similar` stage's join (cosine, broadcast catalogue, blocked products, top-k)
   on ``local[<cores>]``, written to a Delta table in a temporary warehouse;
2. LSH: ``BucketedRandomProjectionLSH`` on the normalised vectors (Euclidean distance on unit
   vectors is a monotone function of cosine), ``approxSimilarityJoin`` of the set with itself
   at a distance threshold, then the 20 nearest per movie by a window; recall@20 against the
   exact answer. With ``--lsh-movies N`` the LSH join runs on the first N movies only (their
   exact answer among themselves is computed for the recall) and its time is extrapolated
   to the full size, both linearly and quadratically (candidate pairs grow with n^2 at a
   fixed bucket length); the output says so.

Wall time and peak memory (RSS of the whole process tree: this driver, the JVM, Spark's
Python workers; sampled every 0.1 s) are reported per phase.

    .venv/bin/python -m benchmarks.similarity_scale                   # full size, both
    .venv/bin/python -m benchmarks.similarity_scale --lsh-movies 20000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import contextmanager

import numpy as np
import psutil
import pyarrow as pa

from benchmarks.tree_rss import PeakRSS


def clustered_vectors(n: int, dim: int, clusters: int, noise: float, seed: int) -> np.ndarray:
    """``n`` float32 vectors: a random cluster centre plus Gaussian noise each."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    # Zipf-ish cluster sizes, like genres: a few big clusters, many small ones.
    p = 1.0 / np.arange(1, clusters + 1) ** 0.8
    labels = rng.choice(clusters, size=n, p=p / p.sum())
    return (centres[labels] + noise * rng.standard_normal((n, dim))).astype(np.float32)


@contextmanager
def phase(name: str, results: dict):
    """Time a phase and record its wall time and peak process-tree RSS."""
    t0 = time.time()
    with PeakRSS() as mem:
        yield
    results[name] = {"seconds": time.time() - t0, "peak_gb": mem.peak / 1e9, "cpu": mem.cpu}
    # CPU seconds of the process tree are less sensitive than wall time to other load.
    print(f"[{name}] {results[name]['seconds']:.1f} s wall, {mem.cpu:.0f} CPU s (process "
          f"tree), peak RSS (process tree) {results[name]['peak_gb']:.2f} GB, load "
          f"{psutil.getloadavg()[0]:.1f}", flush=True)


def exact_reference(vectors: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k positions by cosine, self excluded (the numpy kernel, no Spark)."""
    from moviegraph.similarity.topk import Searcher, exclusion_csr

    n = vectors.shape[0]
    s = Searcher(vectors, "cosine", device="cpu")
    return s.search(vectors, k, exclusion_csr(np.arange(n + 1), np.arange(n), n, n),
                    block_size=512).positions


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--movies", type=int, default=59_047)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--clusters", type=int, default=300)
    ap.add_argument("--noise", type=float, default=0.6)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--block-size", type=int, default=256)
    ap.add_argument("--lsh-movies", type=int, default=0,
                    help="run the LSH join on this many movies and extrapolate (0 = all)")
    ap.add_argument("--bucket-length", type=float, default=1.0)
    ap.add_argument("--hash-tables", type=int, default=4)
    ap.add_argument("--skip-lsh", action="store_true")
    args = ap.parse_args()

    from pyspark.ml.feature import BucketedRandomProjectionLSH
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from moviegraph.config import SparkConfig
    from moviegraph.session import build_session
    from moviegraph.similarity.joins import similar_movies
    from moviegraph.tables import Warehouse

    print(f"load before start: {psutil.getloadavg()}, cores {psutil.cpu_count()}", flush=True)
    vectors = clustered_vectors(args.movies, args.dim, args.clusters, args.noise, args.seed)
    ids = np.arange(1, args.movies + 1, dtype=np.int64)
    spark = build_session(SparkConfig(master=f"local[{args.cores}]",
                                      shuffle_partitions=4 * args.cores, progress=False,
                                      driver_memory="8g"), "similarity-bench")
    wh = Warehouse(spark, tempfile.mkdtemp(prefix="simbench-"))
    results: dict = {}

    with phase("exact (Spark, cosine, Delta write)", results):
        df, bc = similar_movies(spark, ids, vectors, "cosine", args.k, args.block_size,
                                args.cores)
        wh.write("similar_movies", df.select(F.lit("bench").alias("model"),
                                             F.lit("cosine").alias("metric"), "*"))
        bc.unpersist()
    exact_rows = wh.read("similar_movies").count()
    print(f"exact: {exact_rows:,} rows = {args.movies:,} x {args.k}", flush=True)
    if args.skip_lsh:
        return

    n_lsh = args.lsh_movies or args.movies
    sub = vectors[:n_lsh]
    unit = sub / np.linalg.norm(sub, axis=1, keepdims=True)
    truth = exact_reference(sub, args.k)  # positions among the subset
    nbr_dist = np.sqrt(np.maximum(
        2 - 2 * np.einsum("nd,nd->n", unit, unit[truth[:, -1]]), 0))
    threshold = float(np.quantile(nbr_dist, 0.99))  # favourable: tuned on the exact answer
    print(f"LSH on {n_lsh:,} movies: bucketLength {args.bucket_length}, numHashTables "
          f"{args.hash_tables}, threshold {threshold:.3f} (99th pct of the exact 20th-"
          f"neighbour distance)", flush=True)
    offsets = pa.array(np.arange(n_lsh + 1, dtype=np.int32) * args.dim)
    frame = spark.createDataFrame(pa.table({
        "id": pa.array(np.arange(n_lsh, dtype=np.int32)),
        "v": pa.ListArray.from_arrays(offsets, pa.array(unit.reshape(-1).astype(np.float64))),
    })).select("id", array_to_vector("v").alias("features"))
    frame = frame.repartition(args.cores).cache()
    frame.count()
    with phase(f"LSH approxSimilarityJoin ({n_lsh:,} movies)", results):
        lsh = BucketedRandomProjectionLSH(inputCol="features", outputCol="hashes",
                                          bucketLength=args.bucket_length,
                                          numHashTables=args.hash_tables, seed=args.seed)
        model = lsh.fit(frame)
        pairs = (model.approxSimilarityJoin(frame, frame, threshold, distCol="dist")
                 .select(F.col("datasetA.id").alias("a"), F.col("datasetB.id").alias("b"),
                         "dist")
                 .where(F.col("a") != F.col("b")))
        w = Window.partitionBy("a").orderBy("dist", "b")
        top = (pairs.withColumn("r", F.row_number().over(w)).where(F.col("r") <= args.k)
               .select("a", "b", "r").toPandas())
    found = {}
    for a, g in top.groupby("a"):
        found[int(a)] = set(g.b.tolist())
    recall = np.mean([len(found.get(i, set()) & set(truth[i].tolist())) / args.k
                      for i in range(n_lsh)])
    print(f"LSH recall@{args.k}: {recall:.4f} ({len(found):,} of {n_lsh:,} movies got any "
          f"neighbour)", flush=True)
    exact_s = results["exact (Spark, cosine, Delta write)"]["seconds"]
    lsh_s = results[f"LSH approxSimilarityJoin ({n_lsh:,} movies)"]["seconds"]
    if n_lsh < args.movies:
        scale = args.movies / n_lsh
        lin, quad = lsh_s * scale, lsh_s * scale**2
        print(f"LSH extrapolated to {args.movies:,} movies: {lin:.0f} s (linear) to "
              f"{quad:.0f} s (quadratic); exact is {lin / exact_s:.1f}x to "
              f"{quad / exact_s:.1f}x faster (wall)", flush=True)
        exact_c = results["exact (Spark, cosine, Delta write)"]["cpu"]
        lsh_c = results[f"LSH approxSimilarityJoin ({n_lsh:,} movies)"]["cpu"]
        print(f"in CPU seconds: LSH {lsh_c * scale:.0f} to {lsh_c * scale**2:.0f} vs exact "
              f"{exact_c:.0f}", flush=True)
    else:
        print(f"exact is {lsh_s / exact_s:.1f}x faster than the LSH join (wall)", flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
