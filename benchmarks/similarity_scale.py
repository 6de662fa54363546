"""Exact top-20 similar movies at MovieLens-25M scale vs brute force and Spark MLlib's LSH.

Seeded synthetic vectors with cluster structure (59,047 movies x 64 dims by default):

1. exact: the `similar` stage's join (cosine, broadcast catalogue, blocked products, top-k)
   on ``local[<cores>]``, written to a Delta table in a temporary warehouse;
2. references on the same vectors and cores, each in a fresh process (``--references``):
   ``torch`` (blocked float32 matmul + ``torch.topk``, ``torch.set_num_threads(cores)``)
   and ``numpy`` (blocked float32 matmul with ``cores`` BLAS threads + ``np.argpartition``
   and a sort of the k); neither writes anything nor breaks ties. Their lists are compared
   with the stage's table (share of movies with the same 20 neighbours in the same order);
3. ``--profile``: where the stage's time goes: the kernel alone on one core, per phase
   (``Searcher.timings``), and the same Spark join written to the ``noop`` sink (no Delta)
   next to the Delta write;
4. LSH: ``BucketedRandomProjectionLSH`` on the normalised vectors (Euclidean distance on unit
   vectors is a monotone function of cosine), ``approxSimilarityJoin`` of the set with itself
   at a distance threshold, then the 20 nearest per movie by a window; recall@20 against the
   exact answer. With ``--lsh-movies N`` the LSH join runs on the first N movies only (their
   exact answer among themselves is computed for the recall) and its time is extrapolated
   to the full size, both linearly and quadratically (candidate pairs grow with n^2 at a
   fixed bucket length); the output says so.

Wall time, CPU seconds and peak memory are reported per phase: for Spark the process tree
(this driver, the JVM, Spark's Python workers; sampled every 0.2 s), for a reference its
own process (``getrusage``). The load average is printed with each line: on a shared
machine compare CPU seconds and the ratios taken in the same command.

    .venv/bin/python -m benchmarks.similarity_scale --skip-lsh          # stage vs references
    .venv/bin/python -m benchmarks.similarity_scale --skip-lsh --profile
    .venv/bin/python -m benchmarks.similarity_scale --lsh-movies 20000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

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
    results[name] = {"seconds": time.time() - t0, "peak_gb": mem.peak / 1e9, "cpu": mem.cpu,
                     "load": psutil.getloadavg()[0]}
    # CPU seconds of the process tree are less sensitive than wall time to other load.
    print(f"[{name}] {results[name]['seconds']:.1f} s wall, {mem.cpu:.0f} CPU s (process "
          f"tree), peak RSS (process tree) {results[name]['peak_gb']:.2f} GB, load "
          f"{results[name]['load']:.1f}", flush=True)


def exact_reference(vectors: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k positions by cosine, self excluded (the numpy kernel, no Spark)."""
    from moviegraph.similarity.topk import Searcher, exclusion_csr

    n = vectors.shape[0]
    s = Searcher(vectors, "cosine")
    return s.search(vectors, k, exclusion_csr(np.arange(n + 1), np.arange(n), n, n),
                    block_size=512).positions


def _unit32(vectors: np.ndarray) -> np.ndarray:
    v = vectors.astype(np.float64)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def torch_brute_force(unit: np.ndarray, k: int, block: int) -> np.ndarray:
    """Blocked float32 product + ``torch.topk`` (self excluded): top-k positions."""
    import torch

    e = torch.from_numpy(unit)
    n = e.shape[0]
    out = np.empty((n, k), dtype=np.int32)
    for s in range(0, n, block):
        stop = min(s + block, n)
        scores = e[s:stop] @ e.T
        rows = torch.arange(stop - s)
        scores[rows, rows + s] = -torch.inf
        out[s:stop] = torch.topk(scores, k, dim=1, sorted=True).indices.numpy()
    return out


def numpy_brute_force(unit: np.ndarray, k: int, block: int) -> np.ndarray:
    """Blocked float32 product (BLAS threads) + ``np.argpartition``: top-k positions."""
    n = unit.shape[0]
    out = np.empty((n, k), dtype=np.int32)
    buf = np.empty((block, n), dtype=np.float32)
    for s in range(0, n, block):
        stop = min(s + block, n)
        scores = np.matmul(unit[s:stop], unit.T, out=buf[:stop - s])
        rows = np.arange(stop - s)
        scores[rows, rows + s] = -np.inf
        top = np.argpartition(scores, n - k, axis=1)[:, n - k:]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
        out[s:stop] = np.take_along_axis(top, order, axis=1)
    return out


def run_reference(name: str, args: argparse.Namespace) -> dict:
    """One reference in a fresh process with ``args.cores`` threads; its figures and lists."""
    out = Path(tempfile.mkdtemp(prefix="simref-")) / f"{name}.npy"
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(args.cores)
    cmd = [sys.executable, "-m", "benchmarks.similarity_scale", "--worker", name, "--out", str(out),
           "--movies", str(args.movies), "--dim", str(args.dim), "--k", str(args.k),
           "--clusters", str(args.clusters), "--noise", str(args.noise),
           "--seed", str(args.seed), "--cores", str(args.cores),
           "--ref-block", str(args.ref_block)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False,
                          cwd=Path(__file__).resolve().parents[1])
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1][:200]}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["positions"] = np.load(out)
    return result


def worker(args: argparse.Namespace) -> None:
    """Child process: time one brute-force reference; print its figures as one JSON line."""
    vectors = clustered_vectors(args.movies, args.dim, args.clusters, args.noise, args.seed)
    unit = _unit32(vectors)
    if args.worker == "torch":
        import torch

        torch.set_num_threads(args.cores)
        fn = torch_brute_force
    else:
        fn = numpy_brute_force
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.time()
    positions = fn(unit, args.k, args.ref_block)
    wall = time.time() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    np.save(args.out, positions)
    print(json.dumps({"seconds": wall, "cpu": (r1.ru_utime + r1.ru_stime)
                      - (r0.ru_utime + r0.ru_stime), "peak_gb": r1.ru_maxrss * 1024 / 1e9,
                      "load": psutil.getloadavg()[0]}))


def stage_lists(table, n: int, k: int) -> np.ndarray:
    """The stage's table as (n, k) neighbour positions (ids are positions + 1)."""
    df = table.select("movie_id", "rank", "neighbor_id").toPandas()
    out = np.full((n, k), -1, dtype=np.int64)
    out[df.movie_id.to_numpy() - 1, df["rank"].to_numpy() - 1] = df.neighbor_id.to_numpy() - 1
    return out


def profile_kernel(vectors: np.ndarray, k: int, block: int, rows: int) -> None:
    """The stage's kernel alone on one core for ``rows`` query movies, time per phase."""
    from threadpoolctl import threadpool_limits

    from moviegraph.similarity.topk import Searcher, exclusion_csr

    n = vectors.shape[0]
    rows = min(rows, n)
    with threadpool_limits(1):
        t0 = time.process_time()
        s = Searcher(vectors, "cosine")
        build = time.process_time() - t0
        t0 = time.process_time()
        s.search(vectors[:rows], k, exclusion_csr(np.arange(rows + 1), np.arange(rows), rows, n),
                 block_size=block)
        total = time.process_time() - t0
    scale = n / rows
    parts = ", ".join(f"{name} {sec * scale:.1f}" for name, sec in
                      getattr(s, "timings", {}).items())
    print(f"[profile] kernel alone, 1 core, {rows:,} of {n:,} rows, CPU s scaled to all rows: "
          f"total {total * scale:.1f} (searcher build {build:.2f}){'; ' + parts if parts else ''}",
          flush=True)
    # Recommendations' shape: the same rows as user queries by dot product, each with 150
    # random "rated" movies masked (drawn with replacement: a few users get fewer).
    rated = np.random.default_rng(0).integers(0, n, size=(rows, 150))
    mask = exclusion_csr(np.arange(0, rows * 150 + 1, 150), rated.ravel(), rows, n)
    with threadpool_limits(1):
        s = Searcher(vectors, "dot")
        t0 = time.process_time()
        s.search(vectors[:rows] * 0.1, k, mask, block_size=block)
        total = time.process_time() - t0
    print(f"[profile] same rows as users (dot, 150 rated movies masked each): total "
          f"{total * scale:.1f} CPU s scaled to {n:,} users", flush=True)


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
    ap.add_argument("--references", default="torch,numpy",
                    help="brute-force references to run ('' = none): torch, numpy")
    ap.add_argument("--ref-block", type=int, default=1024, help="query rows per product")
    ap.add_argument("--partitions", type=int, default=0,
                    help="tasks of the stage's join (0 = the stage's default)")
    ap.add_argument("--repeat", type=int, default=2,
                    help="runs of the stage's join in one session (the first one is cold)")
    ap.add_argument("--profile", action="store_true",
                    help="also: kernel alone per phase, and the join without the Delta write")
    ap.add_argument("--profile-rows", type=int, default=8192)
    ap.add_argument("--worker", choices=["torch", "numpy"], help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return

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

    names = []
    for attempt in range(1, args.repeat + 1):
        # The first run also pays the session's warm-up (JIT, Delta classes, Python
        # workers), as `spark-submit similar` alone would; later ones run warm, as in a
        # pipeline.
        names.append(f"exact (Spark, cosine, Delta write), run {attempt}"
                     f"{' (cold session)' if attempt == 1 else ''}")
        with phase(names[-1], results):
            df, bc = similar_movies(spark, ids, vectors, "cosine", args.k, args.block_size,
                                    args.partitions)
            wh.write("similar_movies", df.select(F.lit("bench").alias("model"),
                                                 F.lit("cosine").alias("metric"), "*"))
            bc.unpersist()
    exact_rows = wh.read("similar_movies").count()
    print(f"exact: {exact_rows:,} rows = {args.movies:,} x {args.k}", flush=True)
    if args.profile:
        with phase("exact join, noop sink (no Delta)", results):
            df, bc = similar_movies(spark, ids, vectors, "cosine", args.k, args.block_size,
                                    args.partitions)
            df.write.format("noop").mode("overwrite").save()
            bc.unpersist()
        profile_kernel(vectors, args.k, args.block_size, args.profile_rows)
    refs = [r for r in args.references.split(",") if r]
    if refs:
        exact = stage_lists(wh.read("similar_movies"), args.movies, args.k)
        stage = results[names[-1]]
        print("| run | wall s | CPU s | peak RSS GB | load | wall / stage (last run) | "
              "same lists |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name in names:
            r = results[name]
            print(f"| {name} | {r['seconds']:.1f} | {r['cpu']:.0f} | {r['peak_gb']:.2f} | "
                  f"{r['load']:.1f} | {r['seconds'] / stage['seconds']:.2f} | - |", flush=True)
        for name in refs:
            r = run_reference(name, args)
            if "error" in r:
                print(f"| {name} brute force | failed: {r['error']} |", flush=True)
                continue
            same = float((r["positions"] == exact).all(axis=1).mean())
            print(f"| {name} brute force ({args.cores} threads) | {r['seconds']:.1f} | "
                  f"{r['cpu']:.0f} | {r['peak_gb']:.2f} | {r['load']:.1f} | "
                  f"{r['seconds'] / stage['seconds']:.2f} | {same:.4f} |", flush=True)
    if args.skip_lsh:
        spark.stop()
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
    exact_s = results[names[-1]]["seconds"]
    lsh_s = results[f"LSH approxSimilarityJoin ({n_lsh:,} movies)"]["seconds"]
    if n_lsh < args.movies:
        scale = args.movies / n_lsh
        lin, quad = lsh_s * scale, lsh_s * scale**2
        print(f"LSH extrapolated to {args.movies:,} movies: {lin:.0f} s (linear) to "
              f"{quad:.0f} s (quadratic); exact is {lin / exact_s:.1f}x to "
              f"{quad / exact_s:.1f}x faster (wall)", flush=True)
        exact_c = results[names[-1]]["cpu"]
        lsh_c = results[f"LSH approxSimilarityJoin ({n_lsh:,} movies)"]["cpu"]
        print(f"in CPU seconds: LSH {lsh_c * scale:.0f} to {lsh_c * scale**2:.0f} vs exact "
              f"{exact_c:.0f}", flush=True)
    else:
        print(f"exact is {lsh_s / exact_s:.1f}x faster than the LSH join (wall)", flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
